//! The console's pages, compiled into the binary: no build step, nothing fetched from
//! elsewhere (the page's Content-Security-Policy allows this origin only).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{no_store, ApiError};

const INDEX: &str = include_str!("assets/index.html");

/// (name, content type, bytes) of every static file.
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("assets/style.css")),
    // hls.js 1.6.15 (Apache-2.0), the light build: HLS over MPEG-TS into Media Source
    // Extensions, remuxed in the browser without transcoding.
    ("hls.light.min.js", "text/javascript; charset=utf-8", include_bytes!("assets/hls.light.min.js")),
    ("hls.LICENSE.txt", "text/plain; charset=utf-8", include_bytes!("assets/hls.LICENSE.txt")),
];

/// The headers every page carries: scripts and media from this origin only, no framing.
fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
             worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    no_store(r)
}

pub(super) async fn index() -> Response {
    let mut r = INDEX.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    secure(r)
}

pub(super) async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, bytes)) => {
            let mut r = bytes.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            secure(r)
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "the console has no such file").into_response(),
    }
}

//! Playing footage in the console: reviews, their timelines, and HLS over the verified
//! segments.
//!
//! A review is what one viewing is audited as. Starting one commits the audit entries
//! (user, role, client address, purpose, cameras, range) through Raft before anything is
//! returned; only then does the session hold the review, and media requests are served
//! only inside a review's ranges. Every media request also passes the session's token
//! through the node's authentication again (leader lease, revocation, disabled user) and
//! must carry the session's CSRF token in a header, which only the console's own player
//! sends: a link opened in a tab, a download manager or another site gets nothing. Each
//! segment is read through `segment::open_segment`, which checks its BLAKE3 against the
//! catalog before a byte leaves the node. The console offers no download of footage; the
//! browser receives the 4-second MPEG-TS pieces it plays, as any player must.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::session::Review;
use super::{no_store, ApiError, Authed, Console};
use crate::access::Action;
use crate::server::FootageRequest;

/// Longest window one review covers.
pub const REVIEW_SPAN_MAX_MS: i64 = 24 * 3600 * 1000;
/// Most cameras one review plays at once (the 2×2 grid).
pub const REVIEW_CAMERAS_MAX: usize = 4;
/// Most segments one track lists (a day of 4-second segments, with room).
pub const TRACK_SEGMENTS_MAX: usize = 30_000;
/// Width of the stills shown for a camera the browser cannot decode.
pub const STILL_WIDTH: usize = 640;
/// Segments closer than this are one recorded span on the timeline.
const SPAN_JOIN_MS: i64 = 1500;

type Api = Result<Response, ApiError>;

#[derive(Deserialize)]
pub(super) struct ReviewAsk {
    cameras: Vec<String>,
    from_ms: i64,
    to_ms: i64,
    purpose: String,
}

/// Ends the session if the node refused its token, and passes the refusal on.
fn refused(c: &Console, a: &Authed, s: tonic::Status) -> ApiError {
    if s.code() == tonic::Code::Unauthenticated {
        c.sessions.end_because(&a.id, s.message());
    }
    s.into()
}

/// Starts a review of up to four cameras over one window: audited (purpose, user, client)
/// before anything is returned.
pub(super) async fn review(State(c): State<Arc<Console>>, headers: HeaderMap, Json(b): Json<ReviewAsk>) -> Api {
    let a = c.session(&headers, true)?;
    // Each camera once, in the order chosen (the tiles' order).
    let mut cameras: Vec<String> = Vec::new();
    for cam in &b.cameras {
        if !cameras.contains(cam) {
            cameras.push(cam.clone());
        }
    }
    if cameras.is_empty() || cameras.len() > REVIEW_CAMERAS_MAX {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "choose one to four cameras to review"));
    }
    if b.to_ms - b.from_ms > REVIEW_SPAN_MAX_MS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a review covers at most 24 hours; choose a shorter window",
        ));
    }
    let purpose = b.purpose.trim().to_string();
    for cam in &cameras {
        let req = a.request(());
        let f = FootageRequest { camera: cam, from_ms: b.from_ms, to_ms: b.to_ms, purpose: &purpose };
        c.services.guard_footage(&req, Action::ViewFootage, f).await.map_err(|s| refused(&c, &a, s))?;
    }
    let ranges: Vec<(String, i64, i64)> = cameras.iter().map(|cam| (cam.clone(), b.from_ms, b.to_ms)).collect();
    tracing::info!(user = %a.s.user, cameras = ?cameras, "console review started");
    started(&c, &a, Review { id: 0, purpose, ranges, export: None }).await
}

/// Starts the approval review of a pending export: exactly its ranges, audited with the
/// purpose `approval review of export ID`.
pub(super) async fn review_export(State(c): State<Arc<Console>>, headers: HeaderMap, Path(id): Path<String>) -> Api {
    let a = c.session(&headers, true)?;
    let req = a.request(());
    let caller = c.services.authenticate(&req, Action::ReviewExport).await.map_err(|s| refused(&c, &a, s))?;
    let ranges = c.services.guard_export_review(&caller, &id).await.map_err(|s| refused(&c, &a, s))?;
    tracing::info!(user = %a.s.user, export = %id, "console approval review started");
    let purpose = format!("approval review of export {id}");
    started(&c, &a, Review { id: 0, purpose, ranges, export: Some(id) }).await
}

/// Records the audited review in the session and returns its tracks.
async fn started(c: &Console, a: &Authed, review: Review) -> Api {
    let mut tracks = Vec::new();
    for (i, (cam, from, to)) in review.ranges.iter().enumerate() {
        tracks.push(track(c, i, cam, *from, *to).await?);
    }
    let purpose = review.purpose.clone();
    let export = review.export.clone();
    let rid = c
        .sessions
        .add_review(&a.id, review)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "your session ended; sign in again"))?;
    for t in tracks.iter_mut() {
        let i = t["index"].as_u64().unwrap_or(0);
        t["playlist"] = json!(format!("/media/{rid}/{i}/index.m3u8"));
    }
    Ok(no_store(Json(json!({"review": rid, "purpose": purpose, "export": export, "tracks": tracks})).into_response()))
}

/// One camera's timeline over a window: recorded spans, lost segments, holds.
async fn track(c: &Console, index: usize, camera: &str, from_ms: i64, to_ms: i64) -> Result<Value, ApiError> {
    let cam = camera.to_string();
    let (segs, truncated, lost, holds) = c
        .services
        .meta
        .read(move |cat| {
            let (segs, truncated) = cat.search(&cam, from_ms, to_ms, TRACK_SEGMENTS_MAX)?;
            let lost = cat.lost_in(&cam, from_ms, to_ms)?;
            let holds: Vec<_> = cat
                .holds()?
                .into_iter()
                .filter(|h| h.released_ms.is_none() && h.cameras.contains(&cam))
                .filter(|h| h.from_ms < to_ms && h.to_ms.is_none_or(|t| t > from_ms))
                .collect();
            Ok((segs, truncated, lost, holds))
        })
        .await?;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for s in &segs {
        match spans.last_mut() {
            Some(last) if s.start_ms - last.1 <= SPAN_JOIN_MS => last.1 = last.1.max(s.end_ms),
            _ => spans.push((s.start_ms, s.end_ms)),
        }
    }
    Ok(json!({
        "index": index,
        "camera": camera,
        "from_ms": from_ms,
        "to_ms": to_ms,
        "spans": spans,
        "segments": segs.len(),
        "truncated": truncated,
        "lost": lost.iter().map(|(s, l)| json!({"start_ms": s, "end_ms": l.end_ms, "reason": l.reason})).collect::<Vec<_>>(),
        "holds": holds.iter().map(|h| json!({"id": h.id, "case_id": h.case_id, "from_ms": h.from_ms, "to_ms": h.to_ms})).collect::<Vec<_>>(),
    }))
}

/// A track's playlist (`index.m3u8`) or one of its segments (`START.ts`).
pub(super) async fn media(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path((review, track, file)): Path<(u64, usize, String)>,
) -> Api {
    let a = c.session(&headers, true)?;
    let r = a.s.reviews.iter().find(|r| r.id == review).cloned().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "this review is not open in your session; start it again")
    })?;
    let (camera, from_ms, to_ms) =
        r.ranges.get(track).cloned().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such track"))?;
    // The token again: revoked, disabled or cut off from the leader stops playback here.
    let req = a.request(());
    let action = if r.export.is_some() { Action::ReviewExport } else { Action::ViewFootage };
    let caller = c.services.authenticate(&req, action).await.map_err(|s| refused(&c, &a, s))?;
    if file == "index.m3u8" {
        return playlist(&c, &camera, from_ms, to_ms).await;
    }
    // START.ts: the segment; START.jpg: its first picture, for a browser that cannot
    // decode the camera's codec.
    let (start, still) = match (file.strip_suffix(".ts"), file.strip_suffix(".jpg")) {
        (Some(s), _) => (s, false),
        (_, Some(s)) => (s, true),
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such media file")),
    };
    let start_ms: i64 = start.parse().map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such media file"))?;
    let cam = camera.clone();
    let seg = c
        .services
        .meta
        .read(move |cat| cat.segment(&cam, start_ms))
        .await?
        .filter(|s| s.end_ms > from_ms && s.start_ms < to_ms)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "that segment is not in this review"))?;
    let s = &c.services;
    let plain = crate::segment::open_segment(&seg, &s.store, &s.keys, &s.replicator).await.map_err(|e| {
        tracing::error!(camera = %seg.camera, start_ms = seg.start_ms, user = %caller.who.name, error = %e, "console playback: segment failed verification");
        ApiError::from(e)
    })?;
    if still {
        let jpeg = tokio::task::spawn_blocking(move || crate::picture::still_jpeg(&plain, STILL_WIDTH))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("no still of that segment: {e}")))?;
        let mut resp = jpeg.into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
        return Ok(no_store(resp));
    }
    let mut resp = plain.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    Ok(no_store(resp))
}

/// A VOD playlist of the segments of `camera` in the window, each with its wall-clock
/// start (`EXT-X-PROGRAM-DATE-TIME`, which the player uses to keep cameras in step) and a
/// discontinuity wherever recording stopped.
async fn playlist(c: &Console, camera: &str, from_ms: i64, to_ms: i64) -> Api {
    let cam = camera.to_string();
    let (segs, _) = c.services.meta.read(move |cat| cat.search(&cam, from_ms, to_ms, TRACK_SEGMENTS_MAX)).await?;
    let lost: std::collections::HashSet<i64> = {
        let cam = camera.to_string();
        c.services.meta.read(move |cat| cat.lost_in(&cam, from_ms, to_ms)).await?.into_iter().map(|(s, _)| s).collect()
    };
    let segs: Vec<_> = segs.into_iter().filter(|s| !lost.contains(&s.start_ms)).collect();
    let target = segs.iter().map(|s| (s.end_ms - s.start_ms + 999) / 1000).max().unwrap_or(4).max(1);
    let mut m3u = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n"
    );
    let mut prev_end: Option<i64> = None;
    for s in &segs {
        if prev_end.is_some_and(|e| s.start_ms - e > SPAN_JOIN_MS) {
            m3u.push_str("#EXT-X-DISCONTINUITY\n");
        }
        m3u.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.3},\n{}.ts\n",
            rfc3339_ms(s.start_ms),
            (s.end_ms - s.start_ms) as f64 / 1000.0,
            s.start_ms
        ));
        prev_end = Some(s.end_ms);
    }
    m3u.push_str("#EXT-X-ENDLIST\n");
    let mut resp = m3u.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl"));
    Ok(no_store(resp))
}

/// `2026-12-02T09:38:37.123Z`.
fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn program_date_times_are_utc_with_milliseconds() {
        assert_eq!(super::rfc3339_ms(1_764_668_317_123), "2025-12-02T09:38:37.123Z");
    }
}

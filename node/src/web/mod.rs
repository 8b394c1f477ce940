//! The web console: HTTPS on `web_listen`, for the people who decide and look.
//!
//! It is a front end to this node's own services, not a second API: every request is
//! answered by calling the same gRPC service code the CLI reaches, with the session's
//! token, so the roles, the authorisation table and the audit-before-data rule are the
//! ones `server` enforces. What the console adds is sign-in with a password (`password`,
//! `session`), the reviews that play footage in the browser (`media`: HLS over the
//! verified segments, no download anywhere), and the pages themselves (`assets`: plain
//! HTML, CSS and JavaScript compiled into the binary, with a vendored hls.js).

mod api;
mod assets;
mod media;
pub mod password;
pub mod session;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tonic::Status;

use crate::server::Services;
use session::{NoSession, Session, Sessions};

/// Failed sign-ins one client address may make per [`FAILURE_WINDOW`].
pub const FAILURES_PER_ADDRESS: u32 = 5;
/// Failed sign-ins one user name may suffer per [`FAILURE_WINDOW`], from anywhere.
pub const FAILURES_PER_NAME: u32 = 10;
/// The window sign-in failures are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Header carrying the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Header a page's background refresh sends, so that it does not count as activity.
pub const BACKGROUND_HEADER: &str = "x-custos-background";

/// The console of one node.
pub struct Console {
    pub services: Services,
    pub sessions: Sessions,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_addr: HashMap<IpAddr, (Instant, u32)>,
    by_name: HashMap<String, (Instant, u32)>,
}

fn bump<K: std::hash::Hash + Eq>(m: &mut HashMap<K, (Instant, u32)>, k: K) {
    let e = m.entry(k).or_insert((Instant::now(), 0));
    if e.0.elapsed() >= FAILURE_WINDOW {
        *e = (Instant::now(), 0);
    }
    e.1 += 1;
}

fn over<K: std::hash::Hash + Eq>(m: &HashMap<K, (Instant, u32)>, k: &K, max: u32) -> Option<Duration> {
    m.get(k).filter(|(t, n)| *n >= max && t.elapsed() < FAILURE_WINDOW).map(|(t, _)| FAILURE_WINDOW - t.elapsed())
}

impl Console {
    pub fn new(services: Services, idle: Duration) -> Console {
        Console { services, sessions: Sessions::new(idle), failures: Mutex::default() }
    }

    /// How long sign-ins from `addr` or for `name` are refused, if they are.
    fn locked_out(&self, addr: IpAddr, name: &str) -> Option<Duration> {
        let f = self.failures.lock().expect("failures");
        over(&f.by_addr, &addr, FAILURES_PER_ADDRESS).or_else(|| over(&f.by_name, &name.to_string(), FAILURES_PER_NAME))
    }

    fn failed(&self, addr: IpAddr, name: &str) {
        let mut f = self.failures.lock().expect("failures");
        if f.by_addr.len() > 100_000 {
            f.by_addr.retain(|_, (t, _)| t.elapsed() < FAILURE_WINDOW);
        }
        if f.by_name.len() > 100_000 {
            f.by_name.retain(|_, (t, _)| t.elapsed() < FAILURE_WINDOW);
        }
        bump(&mut f.by_addr, addr);
        bump(&mut f.by_name, name.to_string());
    }

    /// The session a request carries. `csrf`: the request changes something or fetches
    /// media, so it must echo the session's CSRF token. A request without the background
    /// header counts as activity.
    pub(crate) fn session(&self, headers: &HeaderMap, csrf: bool) -> Result<Authed, ApiError> {
        let id = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| session::cookie_value(h, session::COOKIE))
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not signed in"))?
            .to_string();
        let touch = !headers.contains_key(BACKGROUND_HEADER);
        let s = match self.sessions.get(&id, touch) {
            Ok(s) => s,
            Err(NoSession::Missing) => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "not signed in")),
            Err(NoSession::Expired { token_id, user }) => {
                self.revoke_later(token_id, user, "idle");
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, self.sessions.idle_reason()));
            }
            Err(NoSession::Ended(why)) => return Err(ApiError::new(StatusCode::UNAUTHORIZED, why)),
        };
        if csrf {
            let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !session::same_secret(given, &s.csrf) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "this request did not come from the console page (its CSRF token is missing or wrong); reload the \
                     page",
                ));
            }
        }
        Ok(Authed { id, s })
    }

    /// Revokes an ended session's token in the background (best effort: it expires on its
    /// own within 12 hours, and a disabled user's is refused anyway).
    pub(crate) fn revoke_later(&self, token_id: String, user: String, why: &'static str) {
        let meta = self.services.meta.clone();
        tokio::spawn(async move {
            let ev = crate::audit::AuditEvent {
                user: user.clone(),
                action: crate::audit::AuditAction::ConsoleSignOut,
                outcome: crate::audit::Outcome::Ok,
                detail: format!("session token {token_id} revoked ({why})"),
                token_id: token_id.clone(),
                ..Default::default()
            };
            if let Err(e) = meta.propose_audited(crate::meta::Command::RevokeToken { id: token_id.clone() }, ev).await {
                tracing::warn!(user, token = token_id, error = %e, "could not revoke an ended console session's token");
            }
        });
    }

    /// Ends sessions gone idle, every few seconds, until `shutdown`.
    pub async fn sweep(self: Arc<Self>, shutdown: crate::Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = crate::wait_shutdown(shutdown.clone()) => return,
            }
            for (token_id, user) in self.sessions.sweep() {
                tracing::info!(user, "console session ended after inactivity");
                self.revoke_later(token_id, user, "idle");
            }
        }
    }
}

/// A request with a live session.
pub(crate) struct Authed {
    /// The cookie value.
    pub id: String,
    pub s: Session,
}

impl Authed {
    /// A request to this node's services in the session's name, from the browser's
    /// address.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = format!("Bearer {}", self.s.token).parse() {
            r.metadata_mut().insert("authorization", v);
        }
        r.extensions_mut()
            .insert(tonic::transport::server::TcpConnectInfo { local_addr: None, remote_addr: Some(self.s.client) });
        r
    }
}

/// An error as the console's scripts receive it: a status and `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub msg: String,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError { status, msg: msg.into() }
    }
}

impl From<Status> for ApiError {
    fn from(s: Status) -> ApiError {
        use tonic::Code as C;
        let status = match s.code() {
            C::Unauthenticated => StatusCode::UNAUTHORIZED,
            C::PermissionDenied => StatusCode::FORBIDDEN,
            C::NotFound => StatusCode::NOT_FOUND,
            C::InvalidArgument | C::OutOfRange => StatusCode::BAD_REQUEST,
            C::FailedPrecondition | C::AlreadyExists | C::Aborted => StatusCode::CONFLICT,
            C::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            C::DataLoss => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, msg: s.message().to_string() }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        e.into_status().into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        no_store((self.status, Json(json!({ "error": self.msg }))).into_response())
    }
}

/// Marks a response as never to be cached or kept by the browser.
pub(crate) fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

/// The address a connection came from, put in each of its requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub SocketAddr);

/// The TLS configuration of the console: this node's certificate chain and key (from the
/// cluster CA), TLS 1.3 only, HTTP/2 or 1.1.
pub fn tls_config(cert_pem: &str, key_pem: &str) -> crate::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: String| crate::Error::Internal(format!("the console's TLS {what}: {e}"));
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad("key", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| bad("versions", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate", e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Binds the console's address, saying what to change when it is taken.
pub async fn bind(addr: SocketAddr) -> crate::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::Error::Internal(format!(
            "cannot serve the web console on {addr}: {e}. Change web_listen in custos.toml (or remove it to serve no \
             console)"
        ))
    })
}

/// The console's bound address and TLS configuration, made with the node's other
/// listeners so that a taken port stops the node at start.
pub struct Listener {
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    idle: Duration,
    url: String,
}

impl Listener {
    /// Binds `config.web_listen` with the node's certificate and key (PEM), if the node
    /// serves a console: it needs both a `web_listen` and TLS.
    pub async fn bind(
        config: &crate::config::NodeConfig,
        tls: Option<(&str, &str)>,
    ) -> crate::Result<Option<Listener>> {
        let Some(addr) = config.web_listen else { return Ok(None) };
        let Some((cert, key)) = tls else {
            tracing::warn!(%addr, "web_listen is set but the node serves plaintext: the console needs TLS and is off");
            return Ok(None);
        };
        Ok(Some(Listener {
            tls: tls_config(cert, key)?,
            listener: bind(addr).await?,
            idle: Duration::from_secs(config.web_idle_timeout_s.max(1)),
            url: crate::config::web_url(addr),
        }))
    }

    /// Serves the console with `services` until `shutdown`.
    pub async fn serve(self, services: Services, shutdown: crate::Shutdown) {
        tracing::info!(url = %self.url, "serving the web console");
        let console = Arc::new(Console::new(services, self.idle));
        serve(self.listener, self.tls, console, shutdown).await
    }
}

/// Serves the console on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    console: Arc<Console>,
    shutdown: crate::Shutdown,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::Service;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let router = api::router(console.clone());
    tokio::spawn(console.clone().sweep(shutdown.clone()));
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    loop {
        let (stream, addr) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "web console: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(client = %addr, error = %e, "web console: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(addr));
                let mut router = router.clone();
                async move { Ok::<_, Infallible>(router.call(req).await.unwrap_or_else(|e| match e {})) }
            });
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = conn.serve_connection(TokioIo::new(tls), svc).await;
        });
    }
}

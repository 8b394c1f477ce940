//! The console's routes: its pages, sign-in, and JSON over this node's own services.
//!
//! Each handler takes the session (`Console::session`, with the CSRF check for anything
//! that changes state), calls the gRPC service method the CLI would reach, with the
//! session's token, and returns the reply as JSON. Nothing here decides who may do what:
//! the services do, exactly as for the CLI.

use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use custos_proto::v1 as pb;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_store, password, session, ApiError, Authed, ClientAddr, Console};
use crate::audit::{AuditAction, Outcome};
use crate::meta::{Command, Response as Reply};

type Api = Result<Response, ApiError>;
type Shared = State<Arc<Console>>;

fn ok<T: serde::Serialize>(v: T) -> Api {
    Ok(no_store(Json(v).into_response()))
}

/// Every route of the console.
pub(super) fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(super::assets::index))
        .route("/static/{file}", get(super::assets::file))
        .route("/api/session", get(session_info))
        .route("/api/sign-in", post(sign_in))
        .route("/api/enrol", post(enrol))
        .route("/api/sign-out", post(sign_out))
        .route("/api/status", get(status))
        .route("/api/cameras", get(cameras))
        .route("/api/exports", get(exports).post(request_export))
        .route("/api/exports/{id}/decide", post(decide_export))
        .route("/api/exports/{id}/review", post(super::media::review_export))
        .route("/api/changes", get(changes))
        .route("/api/changes/{id}/decide", post(decide_change))
        .route("/api/holds", get(holds).post(place_hold))
        .route("/api/holds/{id}/approve-release", post(approve_release))
        .route("/api/alarms", get(alarms))
        .route("/api/alarms/{id}/ack", post(ack_alarm))
        .route("/api/audit", get(audit_log))
        .route("/api/audit/verify", get(audit_verify))
        .route("/api/patrol", post(patrol))
        .route("/api/handover", post(handover))
        .route("/api/duty", get(duty))
        .route("/api/nodes", get(nodes))
        .route("/api/policies", get(policies))
        .route("/api/report", get(report))
        .route("/api/users", get(users))
        .route("/api/review", post(super::media::review))
        .route("/media/{review}/{track}/{file}", get(super::media::media))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(same_origin))
        .with_state(console)
}

/// Refuses a request that changes something when the browser says it comes from another
/// site (`Origin` naming another host than the one asked): sign-in and enrolment have no
/// session to carry a CSRF token yet, and a page elsewhere must not sign a browser in
/// under someone else's name.
async fn same_origin(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() != axum::http::Method::GET {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let from = origin.strip_prefix("https://").unwrap_or(origin);
            if host.as_deref() != Some(from) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "a request from {origin} to this console is refused: only the console's own pages may send it"
                    ),
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "the console has no such page").into_response()
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
    password: String,
}

/// What the page learns about its session.
fn session_json(s: &session::Session, idle_s: u64) -> Value {
    json!({
        "user": s.user,
        "role": s.role.as_str(),
        "csrf": s.csrf,
        "idle_timeout_s": idle_s,
    })
}

async fn session_info(State(c): Shared, headers: HeaderMap) -> Api {
    let a = c.session(&headers, false)?;
    ok(session_json(&a.s, c.sessions.idle().as_secs()))
}

/// Signs a user in with their password: a token is issued in their name through Raft (the
/// sign-in's audit entry in the same entry), kept in the session, never sent out.
async fn sign_in(State(c): Shared, Extension(ClientAddr(addr)): Extension<ClientAddr>, Json(b): Json<SignIn>) -> Api {
    let name = b.name.trim().to_string();
    let client = addr.to_string();
    if let Some(wait) = c.locked_out(addr.ip(), &name) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins; try again in {} s", wait.as_secs() + 1),
        ));
    }
    let s = &c.services;
    let lookup = name.clone();
    let (user, cred) = s.meta.read(move |cat| Ok((cat.user(&lookup)?, cat.credential(&lookup)?))).await?;
    let phc = cred.as_ref().map(|c| c.phc.clone());
    let pw = b.password.clone();
    // Off the reactor: argon2 takes tens of milliseconds, and so does making the dummy
    // hash an unknown name is checked against the first time.
    let matches =
        tokio::task::spawn_blocking(move || password::verify(&pw, phc.as_deref().unwrap_or(password::dummy_phc())))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let refused = match (&user, &cred) {
        (None, _) => Some(format!("no user {name:?}")),
        (Some(_), None) => Some(format!("{name} has no console password yet")),
        (Some(u), Some(_)) if u.disabled => Some(format!("user {name} is disabled")),
        (Some(_), Some(_)) if !matches => Some(format!("wrong password for {name}")),
        _ => None,
    };
    if let Some(why) = refused {
        c.failed(addr.ip(), &name);
        tracing::info!(user = %name, client, "console sign-in refused: {why}");
        let _ = s.refuse_authentication(AuditAction::ConsoleSignIn, client, why).await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong name or password. A new user first sets a password with the enrolment code they were given",
        ));
    }
    let user = user.expect("checked");
    let (secret, hash, token) = s.new_token_ms(
        &user.name,
        session::SESSION_TOKEN_TTL_MS,
        &format!("{} from {}", crate::meta::CONSOLE_SESSION, addr.ip()),
    );
    let token_id = token.id.clone();
    let ev = crate::audit::AuditEvent {
        user: user.name.clone(),
        role: user.role.as_str().into(),
        action: AuditAction::ConsoleSignIn,
        outcome: Outcome::Ok,
        client: client.clone(),
        token_id: token_id.clone(),
        token_issued_by: token.issued_by.clone(),
        detail: format!("session token {token_id}"),
        ..Default::default()
    };
    match s.meta.propose_audited(Command::IssueToken { token_hash: hash, token }, ev).await {
        Ok(Reply::Rejected(kind, why)) => return Err(crate::server::rejected(kind, why).into()),
        Ok(_) => {}
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the sign-in cannot be recorded, so it is refused: {e}"),
            ))
        }
    }
    let sess = session::Session {
        user: user.name.clone(),
        role: user.role,
        token: secret,
        token_id,
        csrf: session::Sessions::new_csrf(),
        client: addr,
        last_active: std::time::Instant::now(),
        reviews: vec![],
    };
    let body = session_json(&sess, c.sessions.idle().as_secs());
    let id = c.sessions.start(sess);
    tracing::info!(user = %user.name, client, "console sign-in");
    let mut r = no_store(Json(body).into_response());
    let cookie = format!("{}={id}; HttpOnly; Secure; SameSite=Strict; Path=/", session::COOKIE);
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie"));
    Ok(r)
}

#[derive(Deserialize)]
struct Enrol {
    name: String,
    code: String,
    password: String,
}

/// Sets a user's first password with their enrolment code (one of their live tokens).
async fn enrol(State(c): Shared, Extension(ClientAddr(addr)): Extension<ClientAddr>, Json(b): Json<Enrol>) -> Api {
    let name = b.name.trim().to_string();
    let client = addr.to_string();
    if let Some(wait) = c.locked_out(addr.ip(), &name) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed attempts; try again in {} s", wait.as_secs() + 1),
        ));
    }
    password::check_new(&name, &b.password).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let s = &c.services;
    let token_hash = *blake3::hash(b.code.trim().as_bytes()).as_bytes();
    let found = s.meta.read(move |cat| cat.token(&token_hash)).await?;
    let now = s.clock.now_ms();
    let tok = match found {
        Some((t, u)) if u.name == name && !t.revoked && t.expires_ms > now && !u.disabled => t,
        _ => {
            c.failed(addr.ip(), &name);
            let why = format!("enrolment code for {name:?} not recognised");
            let _ = s.refuse_authentication(AuditAction::ConsoleEnrol, client, why).await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "that enrolment code is not valid for that name: check both, or ask an administrator for a new one \
                 (custos user reset-password NAME, accepted by an approver)",
            ));
        }
    };
    let pw = b.password.clone();
    let phc = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let ev = crate::audit::AuditEvent {
        user: name.clone(),
        action: AuditAction::PasswordSet,
        outcome: Outcome::Ok,
        client,
        token_id: tok.id.clone(),
        token_issued_by: tok.issued_by.clone(),
        detail: format!("console password set with token {}", tok.id),
        ..Default::default()
    };
    match s.meta.propose_audited(Command::SetPassword { user: name.clone(), token_hash, phc }, ev).await? {
        Reply::Rejected(kind, why) => Err(crate::server::rejected(kind, why).into()),
        _ => {
            tracing::info!(user = %name, "console password set");
            ok(json!({"user": name, "password_set": true}))
        }
    }
}

async fn sign_out(State(c): Shared, headers: HeaderMap) -> Api {
    let a = c.session(&headers, true)?;
    if let Some(s) = c.sessions.end(&a.id) {
        c.revoke_later(s.token_id, s.user, "signed out");
    }
    let mut r = no_store(Json(json!({"signed_out": true})).into_response());
    let cookie = format!("{}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0", session::COOKIE);
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie"));
    Ok(r)
}

/// Calls a service method with the session's token; a refusal of the token itself ends
/// the session.
async fn call<T, R>(
    c: &Console,
    a: &Authed,
    msg: T,
    f: impl AsyncFnOnce(tonic::Request<T>) -> Result<tonic::Response<R>, tonic::Status>,
) -> Result<R, ApiError> {
    match f(a.request(msg)).await {
        Ok(r) => Ok(r.into_inner()),
        Err(s) => {
            if s.code() == tonic::Code::Unauthenticated {
                c.sessions.end_because(&a.id, s.message());
            }
            Err(s.into())
        }
    }
}

async fn status(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::footage_server::Footage;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::StatusRequest {}, async |r| s.status(r).await).await?)
}

async fn cameras(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::footage_server::Footage;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListCamerasRequest {}, async |r| s.list_cameras(r).await).await?)
}

async fn exports(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::exports_server::Exports;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListExportsRequest {}, async |r| s.list_exports(r).await).await?)
}

#[derive(Deserialize)]
struct ExportAsk {
    case_id: String,
    organisation: String,
    letter: String,
    purpose: String,
    ranges: Vec<RangeArg>,
}

#[derive(Deserialize)]
struct RangeArg {
    camera: String,
    from_ms: i64,
    to_ms: i64,
}

async fn request_export(State(c): Shared, headers: HeaderMap, Json(b): Json<ExportAsk>) -> Api {
    use pb::exports_server::Exports;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    let msg = pb::RequestExportRequest {
        case_id: b.case_id,
        organisation: b.organisation,
        letter: b.letter,
        purpose: b.purpose,
        ranges: b
            .ranges
            .into_iter()
            .map(|r| pb::ExportRange { camera: r.camera, from_ms: r.from_ms, to_ms: r.to_ms })
            .collect(),
        ..Default::default()
    };
    ok(call(&c, &a, msg, async |r| s.request_export(r).await).await?)
}

#[derive(Deserialize)]
struct Decision {
    approve: bool,
    #[serde(default)]
    note: String,
    /// For a redacted export: the originals go into the package too.
    #[serde(default)]
    include_original: bool,
}

async fn decide_export(State(c): Shared, headers: HeaderMap, Path(id): Path<String>, Json(b): Json<Decision>) -> Api {
    use pb::exports_server::Exports;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    let msg = pb::DecideExportRequest { id, approve: b.approve, reason: b.note, include_original: b.include_original };
    ok(call(&c, &a, msg, async |r| s.decide_export(r).await).await?)
}

#[derive(Deserialize)]
struct AllArg {
    #[serde(default)]
    all: bool,
}

async fn changes(State(c): Shared, headers: HeaderMap, Query(q): Query<AllArg>) -> Api {
    use pb::admin_server::Admin;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListChangesRequest { all: q.all }, async |r| s.list_changes(r).await).await?)
}

async fn decide_change(State(c): Shared, headers: HeaderMap, Path(id): Path<u64>, Json(b): Json<Decision>) -> Api {
    use pb::admin_server::Admin;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    let msg = pb::DecideChangeRequest { id, approve: b.approve, note: b.note };
    ok(call(&c, &a, msg, async |r| s.decide_change(r).await).await?)
}

async fn holds(State(c): Shared, headers: HeaderMap, Query(q): Query<AllArg>) -> Api {
    use pb::holds_server::Holds;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListHoldsRequest { all: q.all }, async |r| s.list_holds(r).await).await?)
}

#[derive(Deserialize)]
struct HoldAsk {
    case_id: String,
    cameras: Vec<String>,
    from_ms: i64,
    to_ms: i64,
    reason: String,
}

async fn place_hold(State(c): Shared, headers: HeaderMap, Json(b): Json<HoldAsk>) -> Api {
    use pb::holds_server::Holds;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    let msg = pb::PlaceHoldRequest {
        case_id: b.case_id,
        cameras: b.cameras,
        from_ms: b.from_ms,
        to_ms: b.to_ms,
        reason: b.reason,
    };
    ok(call(&c, &a, msg, async |r| s.place_hold(r).await).await?)
}

async fn approve_release(State(c): Shared, headers: HeaderMap, Path(id): Path<String>) -> Api {
    use pb::holds_server::Holds;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ApproveReleaseRequest { id }, async |r| s.approve_release(r).await).await?)
}

async fn alarms(State(c): Shared, headers: HeaderMap, Query(q): Query<AllArg>) -> Api {
    use pb::operations_server::Operations;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListAlarmsRequest { all: q.all, limit: 200 }, async |r| s.list_alarms(r).await).await?)
}

async fn ack_alarm(State(c): Shared, headers: HeaderMap, Path(id): Path<u64>, Json(b): Json<Decision>) -> Api {
    use pb::operations_server::Operations;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::AckAlarmRequest { id, note: b.note }, async |r| s.ack_alarm(r).await).await?)
}

#[derive(Deserialize, Default)]
struct AuditArgs {
    #[serde(default)]
    user: String,
    #[serde(default)]
    camera: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    after_seq: u64,
    #[serde(default)]
    limit: u64,
}

async fn audit_log(State(c): Shared, headers: HeaderMap, Query(q): Query<AuditArgs>) -> Api {
    let a = c.session(&headers, false)?;
    let msg = pb::AuditLogRequest {
        after_seq: q.after_seq,
        user: q.user,
        camera: q.camera,
        action: q.action,
        from_ms: 0,
        to_ms: 0,
        limit: if q.limit == 0 { 500 } else { q.limit.min(5000) },
    };
    let entries = audit_entries(&c, &a, msg).await?.into_iter().map(|e| {
        let mut body: Value = serde_json::from_slice(&e.body).unwrap_or_else(|_| json!({}));
        body["seq"] = json!(e.seq);
        body["hash"] = json!(hex::encode(&e.hash));
        body
    });
    ok(json!({ "entries": entries.collect::<Vec<_>>() }))
}

/// The audit entries `msg` asks for, through the audit service (auditors only).
async fn audit_entries(c: &Console, a: &Authed, msg: pb::AuditLogRequest) -> Result<Vec<pb::AuditEntry>, ApiError> {
    use futures::StreamExt;
    use pb::audit_server::Audit;
    let s = c.services.clone();
    let mut stream = call(c, a, msg, async |r| s.log(r).await).await?;
    let mut entries = Vec::new();
    while let Some(e) = stream.next().await {
        entries.push(e.map_err(ApiError::from)?);
    }
    Ok(entries)
}

/// Checks the whole audit chain as `custos audit verify` does, here on the node: every
/// entry's hash, its link to the one before, and its sequence number.
async fn audit_verify(State(c): Shared, headers: HeaderMap) -> Api {
    let a = c.session(&headers, false)?;
    let entries = audit_entries(&c, &a, pb::AuditLogRequest::default()).await?;
    // Hashing the whole chain is CPU work: off the reactor.
    let verdict = tokio::task::spawn_blocking(move || {
        let hashes: Vec<custos_evidence::Hash> =
            entries.iter().map(|e| e.hash.as_slice().try_into().unwrap_or([0; 32])).collect();
        match custos_evidence::verify_chain(entries.iter().zip(&hashes).map(|(e, h)| (e.body.as_slice(), h))) {
            Ok((n, head)) => json!({"intact": true, "entries": n, "head": hex::encode(head)}),
            Err(b) => json!({"intact": false, "entries": entries.len(), "broken_at": b.seq, "problem": b.problem}),
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    ok(verdict)
}

#[derive(Deserialize)]
struct Notes {
    #[serde(default)]
    to: String,
    notes: String,
}

async fn patrol(State(c): Shared, headers: HeaderMap, Json(b): Json<Notes>) -> Api {
    use pb::operations_server::Operations;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::PatrolRequest { notes: b.notes }, async |r| s.patrol(r).await).await?)
}

async fn handover(State(c): Shared, headers: HeaderMap, Json(b): Json<Notes>) -> Api {
    use pb::operations_server::Operations;
    let a = c.session(&headers, true)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::HandoverRequest { to: b.to, notes: b.notes }, async |r| s.handover(r).await).await?)
}

async fn duty(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::operations_server::Operations;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListDutyRequest { kind: String::new(), limit: 50 }, async |r| s.list_duty(r).await).await?)
}

async fn nodes(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::cluster_server::Cluster;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListNodesRequest {}, async |r| s.list_nodes(r).await).await?)
}

async fn policies(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::admin_server::Admin;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListPoliciesRequest {}, async |r| s.list_policies(r).await).await?)
}

async fn report(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::operations_server::Operations;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ComplianceRequest { days: 30 }, async |r| s.compliance_report(r).await).await?)
}

async fn users(State(c): Shared, headers: HeaderMap) -> Api {
    use pb::admin_server::Admin;
    let a = c.session(&headers, false)?;
    let s = c.services.clone();
    ok(call(&c, &a, pb::ListUsersRequest {}, async |r| s.list_users(r).await).await?)
}

//! The gate every RPC passes: authenticate the token, authorise the action through the
//! one table in `access`, and write the audit entry. For footage the entry is committed
//! through Raft before the handler may serve a byte; if it cannot be committed, the
//! request fails with Unavailable and nothing is served.

use tonic::{Request, Status};

use super::Services;
use crate::access::{authorize, Action, FootageScope, Principal};
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::meta::{Command, Response};

/// An authenticated, authorised caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Principal,
    pub client: String,
}

impl Caller {
    /// An audit event for this caller.
    pub fn event(&self, action: &str, outcome: &str) -> AuditEvent {
        AuditEvent {
            user: self.who.name.clone(),
            role: self.who.role.as_str().into(),
            action: action.into(),
            outcome: outcome.into(),
            client: self.client.clone(),
            ..Default::default()
        }
    }
}

/// Footage a request wants to read.
#[derive(Debug, Clone)]
pub struct FootageRequest<'a> {
    pub camera: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
    pub purpose: &'a str,
}

fn client_addr<T>(req: &Request<T>) -> String {
    req.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "-".into())
}

impl Services {
    /// Appends an audit entry on its own; Unavailable if it cannot be committed.
    pub(super) async fn audit(&self, ev: AuditEvent) -> Result<(), Status> {
        self.meta
            .propose_audited(Command::Audit, ev)
            .await
            .map(|_| ())
            .map_err(|e| Status::unavailable(format!("the audit log cannot be written, so nothing is served: {e}")))
    }

    /// Authenticates the caller's bearer token. Failures are audited as `unauthenticated`
    /// (a few per address, the rest summarised: `throttle.rs`).
    pub(super) async fn authenticate<T>(&self, req: &Request<T>, action: Action) -> Result<Caller, Status> {
        let client = client_addr(req);
        match self.resolve_token(req).await {
            Ok(who) => Ok(Caller { who, client }),
            // Rate-limited: see `throttle` (only a few are audited one by one).
            Err(reason) => Err(self.refuse_authentication(action.as_str(), client, reason).await),
        }
    }

    async fn resolve_token<T>(&self, req: &Request<T>) -> Result<Principal, String> {
        let header = req.metadata().get("authorization").ok_or("no token: pass --token or set CUSTOS_TOKEN")?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("authorization header must be `Bearer <token>`")?;
        let hash = *blake3::hash(token.trim().as_bytes()).as_bytes();
        let found = self.meta.read(move |c| c.token(&hash)).await.map_err(|e| e.to_string())?;
        let (tok, user) = found.ok_or("token not recognised: it is wrong or was never issued")?;
        if tok.revoked {
            return Err(format!("token {} was revoked", tok.id));
        }
        if tok.expires_ms <= self.clock.now_ms() {
            return Err(format!("token {} expired; ask an administrator for a new one (custos token issue)", tok.id));
        }
        if user.disabled {
            return Err(format!("user {} is disabled", user.name));
        }
        Ok(Principal { name: user.name, role: user.role, grants: user.grants, case: user.case })
    }

    /// Authenticates and authorises a non-footage action. Denials are audited; when
    /// `audit_allowed` is set, so are permitted calls.
    pub(super) async fn guard<T>(
        &self,
        req: &Request<T>,
        action: Action,
        audit_allowed: bool,
    ) -> Result<Caller, Status> {
        let caller = self.authenticate(req, action).await?;
        if let Err(why) = authorize(&caller.who, action, None, self.clock.now_ms()) {
            let mut ev = caller.event(action.as_str(), "denied");
            ev.reason = why.clone();
            self.audit(ev).await?;
            return Err(Status::permission_denied(why));
        }
        if audit_allowed {
            self.audit(caller.event(action.as_str(), "allowed")).await?;
        }
        Ok(caller)
    }

    /// Authenticates, validates and authorises a footage read, and commits its audit
    /// entry. Returns only once the entry is committed.
    pub(super) async fn guard_footage<T>(
        &self,
        req: &Request<T>,
        action: Action,
        f: FootageRequest<'_>,
    ) -> Result<Caller, Status> {
        let caller = self.authenticate(req, action).await?;
        super::validate_range(f.from_ms, f.to_ms)?;
        crate::access::validate_purpose(f.purpose).map_err(Status::invalid_argument)?;
        crate::ingest::validate_camera_id(f.camera).map_err(Status::invalid_argument)?;
        let cam_id = f.camera.to_string();
        let (known, sensitive) = self
            .meta
            .read(move |c| {
                let cam = c.camera(&cam_id)?;
                let known = cam.is_some() || c.last_segment(&cam_id)?.is_some();
                Ok((known, cam.map(|c| c.sensitive).unwrap_or(false)))
            })
            .await?;
        let mut ev = caller.event(action.as_str(), "allowed");
        ev.purpose = f.purpose.trim().to_string();
        ev.cameras = vec![f.camera.to_string()];
        ev.from_ms = Some(f.from_ms);
        ev.to_ms = Some(f.to_ms);
        let scope = FootageScope { camera: f.camera, sensitive, from_ms: f.from_ms };
        if let Err(why) = authorize(&caller.who, action, Some(&scope), self.clock.now_ms()) {
            ev.outcome = "denied".into();
            ev.reason = why.clone();
            self.audit(ev).await?;
            return Err(Status::permission_denied(why));
        }
        if !known {
            return Err(Error::NotFound { what: "camera", id: f.camera.to_string() }.into());
        }
        self.audit(ev).await?;
        Ok(caller)
    }

    /// Proposes an administrative command with its audit entry in the same Raft entry.
    /// A rejection becomes FailedPrecondition/NotFound/AlreadyExists with the reason.
    pub(super) async fn admin_change(
        &self,
        caller: &Caller,
        action: &str,
        detail: String,
        command: Command,
    ) -> Result<(), Status> {
        let mut ev = caller.event(action, "ok");
        ev.detail = detail;
        match self.meta.propose_audited(command, ev).await? {
            Response::Rejected(why) if why.contains("does not exist") || why.starts_with("no ") => {
                Err(Status::not_found(why))
            }
            Response::Rejected(why) if why.contains("already exists") => Err(Status::already_exists(why)),
            Response::Rejected(why) => Err(Status::failed_precondition(why)),
            _ => Ok(()),
        }
    }
}

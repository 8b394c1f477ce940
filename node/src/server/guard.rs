//! The gate every RPC passes: authenticate the token, authorise the action through the
//! one table in `access`, and write the audit entry. For footage the entry is committed
//! through Raft before the handler may serve a byte; if it cannot be committed, the
//! request fails with Unavailable and nothing is served.

use tonic::{Request, Status};

use super::Services;
use crate::access::{authorize, Action, FootageScope, Principal};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::error::Error;
use crate::meta::Command;

/// How long a node that is not in touch with the Raft leader keeps honouring tokens. A
/// revocation is applied on every node within milliseconds of its commit; a node cut off
/// from the leader cannot know of one, so after this long it refuses token-authenticated
/// calls instead of trusting what it last saw.
pub const LEADER_LEASE: std::time::Duration = std::time::Duration::from_secs(5);

/// An authenticated, authorised caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Principal,
    pub client: String,
    /// BLAKE3 of the bearer token, so long transfers can check it is still valid.
    pub token_hash: crate::segment::Hash,
    /// The token's public id and who issued it, recorded in every audit entry.
    pub token_id: String,
    pub token_issued_by: String,
}

impl Caller {
    /// An audit event for this caller.
    pub fn event(&self, action: AuditAction, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            user: self.who.name.clone(),
            role: self.who.role.as_str().into(),
            action,
            outcome,
            client: self.client.clone(),
            token_id: self.token_id.clone(),
            token_issued_by: self.token_issued_by.clone(),
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
    pub(crate) async fn audit(&self, ev: AuditEvent) -> Result<(), Status> {
        self.meta
            .propose_audited(Command::Audit, ev)
            .await
            .map(|_| ())
            .map_err(|e| Status::unavailable(format!("the audit log cannot be written, so nothing is served: {e}")))
    }

    /// Authenticates the caller's bearer token. Failures are audited as `unauthenticated`
    /// (a few per address, the rest summarised: `throttle.rs`).
    pub(crate) async fn authenticate<T>(&self, req: &Request<T>, action: Action) -> Result<Caller, Status> {
        let client = client_addr(req);
        if action != Action::ViewStatus {
            self.check_leader_lease()?;
        }
        match self.resolve_token(req).await {
            Ok((who, token_hash, tok)) => {
                Ok(Caller { who, client, token_hash, token_id: tok.id, token_issued_by: tok.issued_by })
            }
            // Rate-limited: see `throttle` (only a few are audited one by one).
            Err(reason) => Err(self.refuse_authentication(action.into(), client, reason).await),
        }
    }

    /// Refuses to honour tokens on a node that has not been in touch with the Raft leader
    /// for [`LEADER_LEASE`] (a partitioned follower, or a leader that lost its quorum):
    /// it cannot know whether a token was revoked or a user disabled meanwhile. Status
    /// stays readable so an operator can see what the node sees.
    fn check_leader_lease(&self) -> Result<(), Status> {
        let m = self.meta.metrics();
        let me = self.meta.node_id;
        let lease_ms = LEADER_LEASE.as_millis() as u64;
        let fresh = match m.current_leader {
            Some(l) if l == me => {
                let voters = m.membership_config.membership().voter_ids().count();
                voters <= 1 || m.millis_since_quorum_ack.is_some_and(|ms| ms <= lease_ms)
            }
            Some(l) => self.health.leader_in_touch(l, LEADER_LEASE),
            None => false,
        };
        if fresh {
            return Ok(());
        }
        Err(Status::unavailable(format!(
            "node {me} has not been in touch with the cluster leader for over {} s, so it cannot tell whether \
             your token is still valid; nothing is served here until it is. Try another node, or wait for the \
             cluster to heal",
            LEADER_LEASE.as_secs()
        )))
    }

    /// Checks again, during a long transfer, that the caller's token and user are still
    /// valid: a revocation or a disabled user stops a stream before its next segment.
    pub(crate) async fn recheck(&self, caller: &Caller) -> Result<(), Status> {
        self.check_leader_lease()?;
        let hash = caller.token_hash;
        let found = self.meta.read(move |c| c.token(&hash)).await?;
        let why = match found {
            None => "its token is no longer known".to_string(),
            Some((tok, _)) if tok.revoked => format!("token {} was revoked", tok.id),
            Some((tok, _)) if tok.expires_ms <= self.clock.now_ms() => format!("token {} expired", tok.id),
            Some((_, user)) if user.disabled => format!("user {} was disabled", user.name),
            Some(_) => return Ok(()),
        };
        Err(Status::unauthenticated(format!("the transfer was stopped: {why}")))
    }

    async fn resolve_token<T>(
        &self,
        req: &Request<T>,
    ) -> Result<(Principal, crate::segment::Hash, crate::meta::TokenRecord), String> {
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
        Ok((Principal { name: user.name, role: user.role, grants: user.grants, case: user.case }, hash, tok))
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
        self.authorize_caller(&caller, action, audit_allowed).await?;
        Ok(caller)
    }

    /// Authorises an authenticated caller for a non-footage action; denials are audited,
    /// and with `audit_allowed` so are permitted calls.
    pub(crate) async fn authorize_caller(
        &self,
        caller: &Caller,
        action: Action,
        audit_allowed: bool,
    ) -> Result<(), Status> {
        if let Err(why) = authorize(&caller.who, action, None, self.clock.now_ms()) {
            let mut ev = caller.event(action.into(), Outcome::Denied);
            ev.reason = why.clone();
            self.audit(ev).await?;
            return Err(Status::permission_denied(why));
        }
        if audit_allowed {
            self.audit(caller.event(action.into(), Outcome::Allowed)).await?;
        }
        Ok(())
    }

    /// Authenticates, validates and authorises a footage read, and commits its audit
    /// entry. Returns only once the entry is committed.
    pub(crate) async fn guard_footage<T>(
        &self,
        req: &Request<T>,
        action: Action,
        f: FootageRequest<'_>,
    ) -> Result<Caller, Status> {
        let caller = self.authenticate(req, action).await?;
        super::validate_range(f.from_ms, f.to_ms)?;
        crate::access::validate_purpose(f.purpose).map_err(Status::invalid_argument)?;
        crate::ingest::validate_camera_id(f.camera).map_err(Status::invalid_argument)?;
        let (cam_id, from, to) = (f.camera.to_string(), f.from_ms, f.to_ms);
        let (known, sensitive) = self
            .meta
            .read(move |c| {
                let known = c.camera(&cam_id)?.is_some() || c.last_segment(&cam_id)?.is_some();
                Ok((known, c.footage_sensitive(&cam_id, from, to)?))
            })
            .await?;
        let mut ev = caller.event(action.into(), Outcome::Allowed);
        ev.purpose = f.purpose.trim().to_string();
        ev.cameras = vec![f.camera.to_string()];
        ev.from_ms = Some(f.from_ms);
        ev.to_ms = Some(f.to_ms);
        let scope = FootageScope { camera: f.camera, sensitive, from_ms: f.from_ms };
        if let Err(why) = authorize(&caller.who, action, Some(&scope), self.clock.now_ms()) {
            ev.outcome = Outcome::Denied;
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

    /// Authorises an approver to play the ranges of pending export `id`, to decide it, and
    /// commits the audit entry (purpose `approval review of export ID`) before anything is
    /// served. Returns the ranges, read from the request itself: an approver sees exactly
    /// what they are asked to release.
    pub(crate) async fn guard_export_review(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Vec<(String, i64, i64)>, Status> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Status::invalid_argument(format!("{id:?} is not an export id (like E-000001)")));
        }
        let key = id.to_string();
        let rec = self
            .meta
            .read(move |c| c.export(&key))
            .await?
            .ok_or_else(|| Status::not_found(format!("export {id} does not exist")))?;
        let mut ev = caller.event(AuditAction::ExportReview, Outcome::Allowed);
        ev.purpose = format!("approval review of export {id}");
        ev.cameras = rec.ranges.iter().map(|(c, _, _)| c.clone()).collect();
        ev.cameras.dedup();
        ev.from_ms = rec.ranges.iter().map(|r| r.1).min();
        ev.to_ms = rec.ranges.iter().map(|r| r.2).max();
        ev.detail = format!(
            "case {} for {}: {}",
            rec.case_id,
            rec.organisation,
            rec.ranges
                .iter()
                .map(|(c, f, t)| format!("{c} {}..{}", super::fmt_ms(*f), super::fmt_ms(*t)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let refused = if let Err(why) = authorize(&caller.who, Action::ReviewExport, None, self.clock.now_ms()) {
            Some(Status::permission_denied(why))
        } else if rec.status != crate::meta::ExportStatus::Requested {
            Some(Status::failed_precondition(format!(
                "export {id} is {}: only a pending request is reviewed before its decision",
                rec.status.as_str()
            )))
        } else if rec.requester == caller.who.name {
            Some(Status::permission_denied(format!(
                "you requested export {id}; a second person reviews and decides it"
            )))
        } else {
            None
        };
        if let Some(status) = refused {
            ev.outcome = Outcome::Denied;
            ev.reason = status.message().to_string();
            self.audit(ev).await?;
            return Err(status);
        }
        self.audit(ev).await?;
        Ok(rec.ranges)
    }
}

//! Four eyes on the roots of trust: which administrative commands wait for a second
//! person, how they are queued, and how approvers list and decide them.
//!
//! An administrator's command that would let one person reach footage, keys or deletion
//! (see [`needs_approval`]) is not proposed as such: it is stored as a pending change
//! (`Command::RequestChange`), and takes effect only when an approver other than the
//! requester accepts it (`Command::DecideChange`, checked again by the state machine).
//! A change that creates a user or issues a token gets its token at acceptance, made by
//! the approver's node and returned only to the approver: the administrator who asked
//! never sees it.

use custos_proto::v1 as pb;
use tonic::Status;

use super::guard::Caller;
use super::Services;
use crate::access::{Role, TOKEN_TTL_DEFAULT_MS, TOKEN_TTL_MAX_MS};
use crate::audit::{AuditAction, Outcome};
use crate::meta::{Catalog, ChangeRecord, ChangeState, Command, Response, TokenRecord};

/// Why `command` needs a second person, or `None` if an administrator may do it alone.
/// Withdrawing access (disabling a user, revoking a token or a grant), marking a camera
/// sensitive and lengthening retention never wait.
pub fn needs_approval(command: &Command, catalog: &Catalog) -> crate::Result<Option<String>> {
    Ok(match command {
        Command::CreateUser { user, .. } => match user.role {
            Role::Operator => Some("an operator may view footage".into()),
            Role::Security | Role::Investigator => Some(format!("a {} user may view footage", user.role.as_str())),
            Role::Approver => Some("an approver decides exports, hold releases and changes".into()),
            Role::Auditor | Role::Admin => None,
        },
        Command::IssueToken { token, .. } => Some(format!(
            "a token lets whoever holds it act as {}; only {} may renew their own",
            token.user, token.user
        )),
        Command::GrantCamera { grant: true, camera, .. } => {
            Some(format!("a grant opens sensitive footage of camera {camera}"))
        }
        Command::SetSensitive { sensitive: false, camera } => {
            Some(format!("clearing the flag opens camera {camera}'s future footage to staff without a grant"))
        }
        Command::RemoveCamera { id } => Some(format!("removing camera {id} stops its recording")),
        Command::SetPrivacyZones { camera, .. } => Some(format!(
            "camera {camera}'s privacy zones decide what every redacted export of it hides: a zone removed shows \
             patients, one added hides what an investigator may need"
        )),
        Command::SetPolicy { camera, policy } => {
            let now = match camera {
                Some(c) => catalog.policy_for(c)?,
                None => catalog.policies()?.0,
            };
            (policy.max_days < now.max_days).then(|| {
                format!(
                    "it shortens retention from {} to {} days, so the next expiry pass deletes footage sooner",
                    now.max_days, policy.max_days
                )
            })
        }
        Command::CreateJoinToken { .. } => {
            Some("a node that joins receives the cluster's keys: it can decrypt every recording".into())
        }
        Command::RetireNode { id } => Some(format!("retiring node {id} removes it from the cluster")),
        Command::DefineShift(s) => {
            Some(format!("shift {} decides when the monitoring centre owes its patrols and hands over", s.name))
        }
        Command::SetPictureReference { camera, still: None } => Some(format!(
            "camera {camera}'s next picture becomes its reference: if it was re-aimed (at a private area, or away \
             from what it must watch), that view is accepted"
        )),
        Command::ResetPassword { user, .. } => {
            Some(format!("a reset lets whoever receives the new enrolment token set {user}'s console password"))
        }
        Command::ConfirmClock { node } => Some(format!(
            "node {node} expires footage at its clock's new time once confirmed: a wrong clock would delete footage \
             early"
        )),
        _ => None,
    })
}

/// The effect as stored in the queue: a token's secret made before the decision to queue
/// is dropped, since the approver's node makes the one that is used.
fn without_secret(command: Command) -> Command {
    let blank = |t: TokenRecord| TokenRecord { id: String::new(), ..t };
    match command {
        Command::CreateUser { user, token, .. } => {
            Command::CreateUser { user, token_hash: [0; 32], token: blank(token) }
        }
        Command::IssueToken { token, .. } => Command::IssueToken { token_hash: [0; 32], token: blank(token) },
        Command::ResetPassword { user, token, .. } => {
            Command::ResetPassword { user, token_hash: [0; 32], token: blank(token) }
        }
        other => other,
    }
}

pub(super) fn change(c: &ChangeRecord, now_ms: i64) -> pb::Change {
    pb::Change {
        id: c.id,
        state: c.state_at(now_ms).into(),
        requested_by: c.requested_by.clone(),
        requested_ms: c.requested_ms,
        expires_ms: c.expires_ms(),
        action: c.action.to_string(),
        detail: c.detail.clone(),
        why: c.why.clone(),
        decided_by: c.decided_by.clone().unwrap_or_default(),
        decided_ms: c.decided_ms.unwrap_or(0),
        note: c.note.clone(),
    }
}

impl Services {
    /// A new token for `user` valid `ttl_ms`, issued by `issued_by`: the secret, its hash
    /// and its record.
    pub(crate) fn new_token_ms(&self, user: &str, ttl_ms: i64, issued_by: &str) -> (String, [u8; 32], TokenRecord) {
        let secret = crate::init::new_token();
        let hash = *blake3::hash(secret.as_bytes()).as_bytes();
        let rec = TokenRecord {
            id: hex::encode(&hash[..6]),
            user: user.to_string(),
            created_ms: 0,
            expires_ms: self.clock.now_ms() + ttl_ms.clamp(1, TOKEN_TTL_MAX_MS),
            revoked: false,
            issued_by: issued_by.to_string(),
        };
        (secret, hash, rec)
    }

    /// Proposes an administrative command with its audit entry in the same Raft entry, or,
    /// if it needs a second person, queues it: `Some(change id)`. A refusal becomes the
    /// gRPC status of its kind, with the reason.
    pub(super) async fn admin_change(
        &self,
        caller: &Caller,
        action: AuditAction,
        detail: String,
        command: Command,
    ) -> Result<Option<u64>, Status> {
        let probe = command.clone();
        if let Some(why) = self.meta.read(move |c| needs_approval(&probe, c)).await? {
            return self.request_change(caller, action, detail, why, command).await.map(Some);
        }
        let mut ev = caller.event(action, Outcome::Ok);
        ev.detail = detail;
        match self.meta.propose_audited(command, ev).await? {
            Response::Rejected(kind, why) => Err(super::rejected(kind, why)),
            _ => Ok(None),
        }
    }

    async fn request_change(
        &self,
        caller: &Caller,
        action: AuditAction,
        detail: String,
        why: String,
        command: Command,
    ) -> Result<u64, Status> {
        let mut effect_audit = caller.event(action.clone(), Outcome::Ok);
        effect_audit.detail = detail.clone();
        let rec = ChangeRecord {
            id: 0,
            requested_by: caller.who.name.clone(),
            requested_ms: 0,
            action: action.clone(),
            detail: detail.clone(),
            why: why.clone(),
            effect: without_secret(command),
            effect_audit,
            state: ChangeState::Pending,
            decided_by: None,
            decided_ms: None,
            note: String::new(),
        };
        let mut ev = caller.event(action.clone(), Outcome::Pending);
        ev.detail = format!("{detail}; waits for an approver: {why}");
        match self.meta.propose_audited(Command::RequestChange(Box::new(rec)), ev).await? {
            Response::Created(id) => {
                let id = id.parse().map_err(|_| Status::internal("bad change id"))?;
                let action = action.as_str();
                tracing::info!(change = id, user = %caller.who.name, action, "change queued for an approver");
                Ok(id)
            }
            Response::Rejected(kind, why) => Err(super::rejected(kind, why)),
            other => Err(Status::internal(format!("unexpected reply {other:?}"))),
        }
    }

    pub(super) async fn list_changes_for(&self, all: bool) -> Result<pb::ListChangesResponse, Status> {
        let now = self.clock.now_ms();
        let v = self.meta.read(move |c| c.changes(all, now)).await?;
        Ok(pb::ListChangesResponse { changes: v.iter().map(|c| change(c, now)).collect() })
    }

    pub(super) async fn get_change_by_id(&self, id: u64) -> Result<pb::Change, Status> {
        let rec = self.meta.read(move |c| c.change(id)).await?;
        let rec =
            rec.ok_or_else(|| Status::not_found(format!("change {id} does not exist (custos change list --all)")))?;
        Ok(change(&rec, self.clock.now_ms()))
    }

    /// Accepts or rejects change `r.id` as `caller`.
    pub(super) async fn decide_change_as(
        &self,
        caller: &Caller,
        r: pb::DecideChangeRequest,
    ) -> Result<pb::ChangeDecided, Status> {
        let id = r.id;
        let note = r.note.trim().to_string();
        if !r.approve && note.is_empty() {
            return Err(Status::invalid_argument(
                "a rejection needs --reason: say why, for the requester and the audit",
            ));
        }
        if note.len() > 1000 {
            return Err(Status::invalid_argument("the note is longer than 1000 bytes"));
        }
        let rec = self.meta.read(move |c| c.change(id)).await?;
        let rec =
            rec.ok_or_else(|| Status::not_found(format!("change {id} does not exist (custos change list --all)")))?;
        // The token a user-creating change needs is made here, on the approver's node.
        let mut issued = None;
        let token = match (&rec.effect, r.approve) {
            (
                Command::CreateUser { token: wanted, .. }
                | Command::IssueToken { token: wanted, .. }
                | Command::ResetPassword { token: wanted, .. },
                true,
            ) => {
                let ttl = if wanted.expires_ms > rec.requested_ms {
                    wanted.expires_ms - rec.requested_ms
                } else {
                    TOKEN_TTL_DEFAULT_MS
                };
                let (secret, hash, t) = self.new_token_ms(&wanted.user, ttl, "");
                issued = Some(pb::TokenIssued {
                    user: t.user.clone(),
                    token_id: t.id.clone(),
                    token: secret,
                    expires_ms: t.expires_ms,
                    change_id: 0,
                });
                Some((hash, t))
            }
            _ => None,
        };
        let verb = if r.approve { AuditAction::ChangeApprove } else { AuditAction::ChangeReject };
        let mut ev = caller.event(verb, Outcome::Ok);
        ev.detail = format!("change {id} by {}: {} {}", rec.requested_by, rec.action, rec.detail);
        if !note.is_empty() {
            ev.detail = format!("{}; {}: {note}", ev.detail, if r.approve { "note" } else { "reason" });
        }
        let cmd = Command::DecideChange { id, user: caller.who.name.clone(), approve: r.approve, note, token };
        let created = match self.meta.propose_audited(cmd, ev).await? {
            Response::Rejected(kind, why) => return Err(super::rejected(kind, why)),
            Response::Created(x) => x,
            _ => String::new(),
        };
        tracing::info!(change = id, user = %caller.who.name, approve = r.approve, action = %rec.action, "change decided");
        let after = self.meta.read(move |c| c.change(id)).await?.unwrap_or(rec);
        Ok(pb::ChangeDecided { change: Some(change(&after, self.clock.now_ms())), token: issued, created })
    }
}

//! The change queue in the state machine: four eyes on the roots of trust.
//!
//! A change is requested by one person (`RequestChange`) and takes effect only when an
//! approver who is not that person accepts it (`DecideChange`), in the same Raft entry as
//! the decision. What needs a second person is decided by the API (`server::changes`);
//! what is checked here, on every replica alike, is who may decide, that a change is
//! decided once, and that a lapsed one is never applied. Its effect is applied by the
//! ordinary command code, so every rule of the command (floors, duplicates) still holds.

use rocksdb::{WriteBatch, DB};

use super::apply_command;
use super::table::*;
use crate::access::Role;
use crate::audit::{AuditEvent, Outcome};
use crate::meta::types::Hash;
use crate::meta::types::{ChangeRecord, ChangeState, Command, RejectKind, Request, Response, TokenRecord};

/// The last change id given (in `sm_meta`).
pub(super) const KEY_CHANGE_SEQ: &[u8] = b"change_seq";

fn read_failed(e: String) -> Response {
    Response::StorageFailed(format!("catalog read failed: {e}"))
}

/// Stores a new pending change under the next id.
pub(super) fn request(db: &DB, batch: &mut WriteBatch, now_ms: i64, rec: &ChangeRecord) -> Response {
    if matches!(rec.effect, Command::RequestChange(_) | Command::DecideChange { .. }) {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            "a change cannot queue or decide another change".into(),
        );
    }
    // A change that could not take effect now is refused when asked, with the reason,
    // rather than queued for an approver to find out.
    let probe = Request { time_ms: now_ms, command: rec.effect.clone(), audit: None };
    let r = apply_command(db, &mut WriteBatch::default(), &probe, 0, &mut 0);
    if matches!(r, Response::Rejected(..) | Response::StorageFailed(_)) {
        return r;
    }
    let seq: u64 = match CHANGE_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return read_failed(e),
    };
    let mut rec = rec.clone();
    rec.id = seq;
    rec.requested_ms = now_ms;
    rec.state = ChangeState::Pending;
    (rec.decided_by, rec.decided_ms, rec.note) = (None, None, String::new());
    CHANGE_SEQ.put(db, batch, &seq);
    CHANGES.put(db, batch, &seq, &rec);
    Response::Created(seq.to_string())
}

/// Reads change `id`.
pub(super) fn load(db: &DB, id: u64) -> Result<ChangeRecord, Response> {
    match CHANGES.get(db, &id) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("change {id} does not exist"))),
        Err(e) => Err(read_failed(e)),
    }
}

/// The effect as applied at acceptance: with the approver's token in one that issues a
/// token, and a join token's lifetime counted from now (`waited_ms` after the request).
fn effect_now(
    effect: &Command,
    token: Option<&(Hash, TokenRecord)>,
    issued_by: String,
    waited_ms: i64,
) -> Result<Command, Response> {
    let needs = |what: &str| {
        Response::Rejected(
            RejectKind::InvalidArgument,
            format!("the decision carries no token, and this change {what}; decide it through the API"),
        )
    };
    Ok(match effect {
        Command::CreateUser { user, .. } => {
            let (hash, rec) = token.ok_or_else(|| needs("creates a user"))?;
            let rec = TokenRecord { user: user.name.clone(), issued_by, ..rec.clone() };
            Command::CreateUser { user: user.clone(), token_hash: *hash, token: rec }
        }
        Command::IssueToken { token: wanted, .. } => {
            let (hash, rec) = token.ok_or_else(|| needs("issues a token"))?;
            let rec = TokenRecord { user: wanted.user.clone(), issued_by, ..rec.clone() };
            Command::IssueToken { token_hash: *hash, token: rec }
        }
        Command::ResetPassword { user, .. } => {
            let (hash, rec) = token.ok_or_else(|| needs("gives a new enrolment token"))?;
            let rec = TokenRecord { user: user.clone(), issued_by, ..rec.clone() };
            Command::ResetPassword { user: user.clone(), token_hash: *hash, token: rec }
        }
        Command::CreateJoinToken { token_hash, token } => Command::CreateJoinToken {
            token_hash: *token_hash,
            token: crate::meta::types::JoinTokenRecord {
                expires_ms: token.expires_ms.saturating_add(waited_ms.max(0)),
                ..token.clone()
            },
        },
        other => other.clone(),
    })
}

/// Accepts or rejects change `id` as `user`. Accepting applies the effect into `batch`;
/// if the effect is refused, so is the decision, and the change stays pending.
pub(super) fn decide(db: &DB, batch: &mut WriteBatch, req: &Request, segment_count: &mut u64) -> Response {
    let Command::DecideChange { id, user, approve, note, token } = &req.command else {
        return Response::Rejected(RejectKind::InvalidArgument, "not a change decision".into());
    };
    let mut rec = match load(db, *id) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match rec.state_at(req.time_ms) {
        "pending" => {}
        "expired" => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!(
                    "change {id} lapsed {} days after it was requested without a decision; ask for it again",
                    crate::meta::types::CHANGE_TTL_MS / 86_400_000
                ),
            )
        }
        state => return Response::Rejected(RejectKind::FailedPrecondition, format!("change {id} was already {state}")),
    }
    if rec.requested_by == *user {
        return Response::Rejected(
            RejectKind::PermissionDenied,
            format!("{user} requested change {id} and cannot also decide it: a second person must"),
        );
    }
    match USERS.get(db, user) {
        Ok(Some(u)) if u.role == Role::Approver && !u.disabled => {}
        Ok(_) => {
            return Response::Rejected(
                RejectKind::PermissionDenied,
                format!("{user} is not an active approver; only an approver may decide a change"),
            )
        }
        Err(e) => return read_failed(e),
    }
    if !*approve && note.trim().is_empty() {
        return Response::Rejected(RejectKind::InvalidArgument, "a rejection needs a reason".into());
    }
    let out = if *approve {
        let issued_by = format!("{}, approved by {user}", rec.requested_by);
        let effect = match effect_now(&rec.effect, token.as_ref(), issued_by, req.time_ms - rec.requested_ms) {
            Ok(e) => e,
            Err(r) => return r,
        };
        let inner = Request { time_ms: req.time_ms, command: effect, audit: None };
        match apply_command(db, batch, &inner, 0, segment_count) {
            Response::Rejected(kind, why) => {
                return Response::Rejected(
                    kind,
                    format!(
                        "change {id} cannot take effect: {why}. It stays pending: reject it, or approve it again once \
                         the cause is fixed"
                    ),
                )
            }
            other => other,
        }
    } else {
        Response::Ok
    };
    rec.state = if *approve { ChangeState::Approved } else { ChangeState::Rejected };
    rec.decided_by = Some(user.clone());
    rec.decided_ms = Some(req.time_ms);
    rec.note = note.trim().to_string();
    CHANGES.put(db, batch, id, &rec);
    out
}

/// The audit entry of an accepted change's effect, in the requester's name, appended after
/// the decision's own entry.
pub(super) fn effect_audit(db: &DB, req: &Request, resp: &Response) -> Option<AuditEvent> {
    let Command::DecideChange { id, user, approve: true, .. } = &req.command else { return None };
    if matches!(resp, Response::Rejected(..)) {
        return None;
    }
    // Read before this entry's batch is written: the record is still pending here.
    let rec = load(db, *id).ok()?;
    let mut ev = rec.effect_audit;
    ev.outcome = Outcome::Ok;
    ev.detail = format!("{} (change {id}, approved by {user})", ev.detail);
    Some(ev)
}

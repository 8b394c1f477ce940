//! User and token commands.

use rocksdb::{IteratorMode, WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, CF_TOKENS, CF_USERS};
use crate::meta::types::Hash;
use crate::meta::types::{decode, Credential, RejectKind, Request, Response, TokenRecord, User};

/// Reads a user for a command that modifies it.
pub(super) fn user_for_update(db: &DB, name: &str) -> Result<User, Response> {
    match USERS.get(db, name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("user {name:?} does not exist"))),
        Err(e) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    }
}

/// Creates a user together with a first token.
pub(super) fn create_user(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    user: &User,
    token_hash: &Hash,
    token: &TokenRecord,
) -> Response {
    match USERS.get(db, &user.name) {
        Ok(Some(_)) => {
            return Response::Rejected(RejectKind::AlreadyExists, format!("user {:?} already exists", user.name))
        }
        Ok(None) => {}
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    let mut u = user.clone();
    u.created_ms = req.time_ms;
    let mut t = token.clone();
    t.created_ms = req.time_ms;
    USERS.put(db, batch, &u.name, &u);
    TOKENS.put(db, batch, token_hash, &t);
    Response::Ok
}

/// Commits the founding users, only into a catalog that has none.
pub(super) fn found_cluster(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    founders: &[(User, Hash, TokenRecord)],
) -> Response {
    match db.iterator_cf(cf(db, CF_USERS), IteratorMode::Start).next() {
        None => {}
        Some(Ok(_)) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                "the cluster was founded already; users are added through the change queue".into(),
            )
        }
        Some(Err(e)) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    for (user, token_hash, token) in founders {
        let u = User { created_ms: req.time_ms, ..user.clone() };
        let t = TokenRecord { created_ms: req.time_ms, ..token.clone() };
        USERS.put(db, batch, &u.name, &u);
        TOKENS.put(db, batch, token_hash, &t);
    }
    Response::Ok
}

/// Refuses a user from now on.
pub(super) fn disable_user(db: &DB, batch: &mut WriteBatch, name: &str) -> Response {
    match user_for_update(db, name) {
        Ok(mut u) => {
            u.disabled = true;
            USERS.put(db, batch, name, &u);
            Response::Ok
        }
        Err(r) => r,
    }
}

/// Gives an existing, enabled user another token.
pub(super) fn issue_token(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    token_hash: &Hash,
    token: &TokenRecord,
) -> Response {
    match user_for_update(db, &token.user) {
        Ok(u) if u.disabled => {
            Response::Rejected(RejectKind::FailedPrecondition, format!("user {:?} is disabled", u.name))
        }
        Ok(_) => {
            let mut t = token.clone();
            t.created_ms = req.time_ms;
            TOKENS.put(db, batch, token_hash, &t);
            Response::Ok
        }
        Err(r) => r,
    }
}

/// Revokes a token by its public id.
pub(super) fn revoke_token(db: &DB, batch: &mut WriteBatch, id: &str) -> Response {
    let c = cf(db, CF_TOKENS);
    for kv in db.iterator_cf(c, IteratorMode::Start) {
        let Ok((k, v)) = kv else { return Response::StorageFailed("catalog read failed".into()) };
        let Ok(mut t) = decode::<TokenRecord>(&v) else { continue };
        if t.id == *id {
            t.revoked = true;
            TOKENS.put(db, batch, &k, &t);
            return Response::Ok;
        }
    }
    Response::Rejected(RejectKind::NotFound, format!("no token with id {id:?}"))
}

/// Longest PHC string a password record may carry.
pub const PHC_MAX: usize = 256;

/// Sets `user`'s console password, proven by one of their live tokens (the enrolment
/// code), while they have none.
pub(super) fn set_password(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    user: &str,
    token_hash: &Hash,
    phc: &str,
) -> Response {
    let u = match user_for_update(db, user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if u.disabled {
        return Response::Rejected(RejectKind::FailedPrecondition, format!("user {user:?} is disabled"));
    }
    if !phc.starts_with("$argon2id$") || phc.len() > PHC_MAX {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            format!("a password is stored as an argon2id PHC string of at most {PHC_MAX} bytes"),
        );
    }
    let token = match TOKENS.get(db, token_hash) {
        Ok(Some(t)) if t.user == user && !t.revoked && t.expires_ms > req.time_ms => t,
        Ok(_) => {
            return Response::Rejected(
                RejectKind::PermissionDenied,
                format!("the enrolment code is not a live token of {user}; ask for a new one (custos user reset-password {user})"),
            )
        }
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    match CREDENTIALS.get(db, user) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!(
                    "{user} has a password already; to set another, an administrator asks for a reset (custos user \
                     reset-password {user}) and an approver accepts it"
                ),
            )
        }
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    let cred = Credential { phc: phc.to_string(), set_ms: req.time_ms, enrolled_with: token.id };
    CREDENTIALS.put(db, batch, user, &cred);
    Response::Ok
}

/// Clears `user`'s console password, revokes their console session tokens, and gives
/// them a new token to enrol again with.
pub(super) fn reset_password(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    user: &str,
    token_hash: &Hash,
    token: &TokenRecord,
) -> Response {
    match user_for_update(db, user) {
        Ok(u) if u.disabled => {
            return Response::Rejected(RejectKind::FailedPrecondition, format!("user {user:?} is disabled"))
        }
        Ok(_) => {}
        Err(r) => return r,
    }
    if token.user != user {
        return Response::Rejected(RejectKind::InvalidArgument, "the new token is for another user".into());
    }
    let c = cf(db, CF_TOKENS);
    for kv in db.iterator_cf(c, IteratorMode::Start) {
        let Ok((k, v)) = kv else { return Response::StorageFailed("catalog read failed".into()) };
        let Ok(mut t) = decode::<TokenRecord>(&v) else { continue };
        if t.user == user && !t.revoked && t.issued_by.starts_with(CONSOLE_SESSION) {
            t.revoked = true;
            TOKENS.put(db, batch, &k, &t);
        }
    }
    CREDENTIALS.delete(db, batch, user);
    let t = TokenRecord { created_ms: req.time_ms, ..token.clone() };
    TOKENS.put(db, batch, token_hash, &t);
    Response::Ok
}

/// How a console session's token names its issuer (`issued_by` starts with this).
pub const CONSOLE_SESSION: &str = "console sign-in";

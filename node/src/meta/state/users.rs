//! User and token commands.

use rocksdb::{IteratorMode, WriteBatch, DB};

use super::get_decoded;
use crate::meta::db::{cf, CF_TOKENS, CF_USERS};
use crate::meta::types::{decode, encode, RejectKind, Request, Response, TokenRecord, User};
use crate::segment::Hash;

/// Reads a user for a command that modifies it.
pub(super) fn user_for_update(db: &DB, name: &str) -> Result<User, Response> {
    match get_decoded::<User>(db, CF_USERS, name.as_bytes()) {
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
    match get_decoded::<User>(db, CF_USERS, user.name.as_bytes()) {
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
    batch.put_cf(cf(db, CF_USERS), u.name.as_bytes(), encode(&u));
    batch.put_cf(cf(db, CF_TOKENS), token_hash, encode(&t));
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
        batch.put_cf(cf(db, CF_USERS), u.name.as_bytes(), encode(&u));
        batch.put_cf(cf(db, CF_TOKENS), token_hash, encode(&t));
    }
    Response::Ok
}

/// Refuses a user from now on.
pub(super) fn disable_user(db: &DB, batch: &mut WriteBatch, name: &str) -> Response {
    match user_for_update(db, name) {
        Ok(mut u) => {
            u.disabled = true;
            batch.put_cf(cf(db, CF_USERS), name.as_bytes(), encode(&u));
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
            batch.put_cf(cf(db, CF_TOKENS), token_hash, encode(&t));
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
            batch.put_cf(c, k, encode(&t));
            return Response::Ok;
        }
    }
    Response::Rejected(RejectKind::NotFound, format!("no token with id {id:?}"))
}

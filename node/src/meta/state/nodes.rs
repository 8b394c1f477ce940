//! Node commands: join tokens, registering and retiring nodes, pinned certificate keys, and
//! the cluster version (the newest format every voter decodes).

use rocksdb::{WriteBatch, DB};

use super::table::*;
use super::{cluster_version, node_key_key};
use crate::meta::types::Hash;
use crate::meta::types::{JoinTokenRecord, NodeId, NodeRecord, RejectKind, Request, Response};

/// Records a join token an administrator created.
pub(super) fn create_join_token(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    token_hash: &Hash,
    token: &JoinTokenRecord,
) -> Response {
    let mut t = token.clone();
    t.created_ms = req.time_ms;
    t.used_by = None;
    JOIN_TOKENS.put(db, batch, token_hash, &t);
    Response::Ok
}

/// Adds a node under the next free id, consuming its join token.
pub(super) fn register_node(
    db: &DB,
    batch: &mut WriteBatch,
    now_ms: i64,
    (campus, addr): (&str, &str),
    token_hash: &Option<Hash>,
    founder: Option<NodeId>,
) -> Response {
    let nodes: Vec<NodeRecord> = match NODES.all(db) {
        Ok(n) => n,
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    if let Some(n) = nodes.iter().find(|n| n.addr == addr && !n.retired) {
        return Response::Rejected(
            RejectKind::FailedPrecondition,
            format!("node {} already uses address {addr}", n.id),
        );
    }
    let next = match founder {
        Some(id) if nodes.is_empty() && token_hash.is_none() => id,
        Some(_) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                "the cluster already has its founding node".into(),
            )
        }
        None => nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1,
    };
    match token_hash {
        None if founder.is_some() => {}
        None => {
            return Response::Rejected(RejectKind::FailedPrecondition, "a join token is required to add a node".into())
        }
        Some(h) => match JOIN_TOKENS.get(db, h) {
            Ok(Some(t)) if t.used_by.is_some() => {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    "this join token was already used; ask for a new one".into(),
                )
            }
            Ok(Some(t)) if t.expires_ms <= now_ms => {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    "this join token has expired; ask for a new one".into(),
                )
            }
            Ok(Some(mut t)) => {
                t.used_by = Some(next);
                JOIN_TOKENS.put(db, batch, h, &t);
            }
            Ok(None) => return Response::Rejected(RejectKind::FailedPrecondition, "unknown join token".into()),
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        },
    }
    let id = next;
    let rec = NodeRecord { id, campus: campus.to_string(), addr: addr.to_string(), joined_ms: now_ms, retired: false };
    NODES.put(db, batch, &id, &rec);
    Response::Created(id.to_string())
}

/// Retires a node; the last active node cannot be retired.
pub(super) fn retire_node(db: &DB, batch: &mut WriteBatch, id: NodeId) -> Response {
    match NODES.get(db, &id) {
        Ok(Some(mut n)) if !n.retired => {
            let active = NODES.all(db).map(|v| v.iter().filter(|n| !n.retired).count());
            if active.unwrap_or(0) <= 1 {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    "the last active node cannot be retired".into(),
                );
            }
            n.retired = true;
            NODES.put(db, batch, &id, &n);
            Response::Ok
        }
        Ok(Some(_)) => Response::Rejected(RejectKind::FailedPrecondition, format!("node {id} is already retired")),
        Ok(None) => Response::Rejected(RejectKind::NotFound, format!("node {id} does not exist")),
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

/// Pins the key of node `id`'s certificate; the first pin stands.
pub(super) fn pin_node_key(db: &DB, batch: &mut WriteBatch, id: NodeId, key_hash: &Hash) -> Response {
    match NODES.get(db, &id) {
        Ok(Some(n)) if !n.retired => {}
        Ok(Some(_)) => return Response::Rejected(RejectKind::FailedPrecondition, format!("node {id} is retired")),
        Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("node {id} does not exist")),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    match NODE_KEYS.get(db, &node_key_key(id)) {
        Ok(Some(h)) if h == *key_hash => Response::Ok,
        Ok(Some(_)) => Response::Rejected(
            RejectKind::FailedPrecondition,
            format!(
                "node {id}'s certificate key is already pinned to another key; a node keeps the key it joined with"
            ),
        ),
        Ok(None) => {
            NODE_KEYS.put(db, batch, &node_key_key(id), key_hash);
            Response::Ok
        }
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

/// Raises the cluster version to `version`. Raising it to where it is changes nothing; it
/// never goes down, since some node may already have written the newer format.
pub(super) fn set_cluster_version(db: &DB, batch: &mut WriteBatch, version: u32) -> Response {
    match cluster_version(db) {
        Ok(v) if version < v => Response::Rejected(
            RejectKind::FailedPrecondition,
            format!("the cluster version is {v} and never goes down (asked for {version})"),
        ),
        Ok(v) if version == v => Response::Ok,
        Ok(_) => {
            CLUSTER_VERSION.put(db, batch, &version);
            Response::Ok
        }
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

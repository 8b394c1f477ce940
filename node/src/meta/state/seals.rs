//! Daily seals in the state machine: each is stored only if it is the next in the seal
//! chain, names an audit entry this catalog holds with the hash it records, and is signed
//! by the key the cluster's first seal was signed with (pinned then).

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::types::{RejectKind, Response};
use custos_evidence::seal::{SealFile, SealStatement};

/// The newest seal: its number, hash and last receipt (in `sm_meta`).
pub(super) const KEY_SEAL_HEAD: &[u8] = b"seal_head";
/// The hex public key seals are signed with, pinned by the first seal.
pub(super) const KEY_SEAL_KEY: &[u8] = b"seal_key";

/// The newest seal's (seq, hash, last receipt), or zeros before the first.
pub(super) type SealHead = (u64, [u8; 32], u64);

fn refuse(why: String) -> Response {
    Response::Rejected(RejectKind::FailedPrecondition, why)
}

pub(super) fn store_seal(db: &DB, batch: &mut WriteBatch, file: &SealFile) -> Response {
    let read = |e: String| Response::StorageFailed(format!("catalog read failed: {e}"));
    let statement: SealStatement = match serde_json::from_str(&file.statement) {
        Ok(s) => s,
        Err(e) => return Response::Rejected(RejectKind::InvalidArgument, format!("not a seal statement: {e}")),
    };
    let hash = custos_evidence::seal::seal_hash(file.statement.as_bytes());
    if hex::encode(hash) != file.hash {
        return Response::Rejected(RejectKind::InvalidArgument, "the seal's hash does not match its statement".into());
    }
    let head: SealHead = match SEAL_HEAD.get(db) {
        Ok(h) => h.unwrap_or((0, [0; 32], 0)),
        Err(e) => return read(e),
    };
    if statement.seq != head.0 + 1 || statement.prev_seal != hex::encode(head.1) {
        return refuse(format!(
            "seal {} does not follow seal {} (its previous-seal hash or number differs); it is not stored",
            statement.seq, head.0
        ));
    }
    let pinned: Option<String> = match SEAL_KEY.get(db) {
        Ok(k) => k,
        Err(e) => return read(e),
    };
    if pinned.as_ref().is_some_and(|k| *k != statement.signing_key) {
        return refuse("the seal is signed by another key than the cluster's earlier seals".into());
    }
    if let Err(problems) = file.verify(Some(&statement.signing_key)) {
        return Response::Rejected(RejectKind::InvalidArgument, problems.join("; "));
    }
    // Entry 0 is the chain's start, whose hash is the genesis value.
    let held = match statement.audit_seq {
        0 => Some(crate::audit::GENESIS),
        seq => match AUDIT.get(db, &seq) {
            Ok(r) => r.map(|r| r.hash),
            Err(e) => return read(e),
        },
    };
    if held.map(hex::encode).as_deref() != Some(statement.audit_hash.as_str()) {
        return refuse(format!(
            "the seal names audit entry {} with a hash this catalog does not hold",
            statement.audit_seq
        ));
    }
    if pinned.is_none() {
        SEAL_KEY.put(db, batch, &statement.signing_key);
    }
    SEALS.put(db, batch, &statement.seq, file);
    let head: SealHead = (statement.seq, hash, statement.deletions.last_receipt.max(head.2));
    SEAL_HEAD.put(db, batch, &head);
    Response::Created(statement.seq.to_string())
}

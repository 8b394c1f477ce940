//! Retention commands: policies, holds, and expiry with its deletion receipts.

use rocksdb::{WriteBatch, DB};

use super::backup::Packs;
use super::cameras::camera_for_update;
use super::table::*;
use crate::meta::db::{cf, segment_key, CF_BACKUP_QUEUE};
use crate::meta::types::{DeletionReceipt, RejectKind, Request, Response, SegmentRecord};

/// Sets the retention policy of one camera, or the default (`camera: None`).
pub(super) fn set_policy(
    db: &DB,
    batch: &mut WriteBatch,
    camera: &Option<String>,
    policy: &crate::retention::Policy,
) -> Response {
    // The floor is enforced here too: no command, however it was made, lowers it.
    if let Err(why) = policy.validated() {
        return Response::Rejected(RejectKind::FailedPrecondition, why);
    }
    if let Some(c) = camera {
        if let Err(r) = camera_for_update(db, c) {
            return r;
        }
    }
    POLICIES.put(db, batch, camera.as_deref().unwrap_or(""), policy);
    Response::Ok
}

/// Stores a new hold under the next id.
pub(super) fn place_hold(
    db: &DB,
    batch: &mut WriteBatch,
    now_ms: i64,
    h: &crate::retention::Hold,
) -> Result<String, Response> {
    let seq: u64 = match HOLD_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    };
    let mut h = h.clone();
    h.id = format!("H-{seq:06}");
    h.placed_ms = now_ms;
    h.release_approvals.clear();
    h.released_ms = None;
    HOLD_SEQ.put(db, batch, &seq);
    HOLDS.put(db, batch, &h.id, &h);
    Ok(h.id)
}

/// Records one user's approval to release a hold.
pub(super) fn approve_hold_release(db: &DB, batch: &mut WriteBatch, req: &Request, id: &str, user: &str) -> Response {
    let mut h: crate::retention::Hold = match HOLDS.get(db, id) {
        Ok(Some(h)) => h,
        Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("hold {id} does not exist")),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    // Format 2's rules (leadership among the two; never the export's requester) bind from
    // the moment the cluster runs format 2: an older entry applied after an upgrade is
    // decided as the nodes that applied it before did.
    let v2 = match super::cluster_version(db) {
        Ok(v) => v >= u32::from(crate::meta::schema::FORMAT_V2),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    if !v2 {
        return match h.approve_release(user, req.time_ms, true) {
            Ok(_) => {
                HOLDS.put(db, batch, id, &h);
                Response::Ok
            }
            Err(why) => Response::Rejected(RejectKind::FailedPrecondition, why),
        };
    }
    // The person who asked for an export may not help release the hold that keeps the
    // hospital's copy of it.
    let exports: Vec<crate::meta::types::ExportRecord> = match EXPORTS.all(db) {
        Ok(v) => v,
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    if let Some(e) = exports.iter().find(|e| e.hold_id.as_deref() == Some(id) && e.requester == user) {
        return Response::Rejected(
            RejectKind::PermissionDenied,
            format!(
                "{user} requested export {} and may not approve releasing hold {id}, which keeps its archived copy",
                e.id
            ),
        );
    }
    // Leadership must be among the two: is an approver among those who approved so far,
    // or the one approving now?
    let is_approver = |name: &str| -> Result<bool, String> {
        Ok(USERS.get(db, name)?.is_some_and(|u| u.role == crate::access::Role::Approver))
    };
    let mut with_approver = false;
    for name in h.release_approvals.iter().map(|(u, _)| u.as_str()).chain([user]) {
        match is_approver(name) {
            Ok(true) => with_approver = true,
            Ok(false) => {}
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        }
    }
    match h.approve_release(user, req.time_ms, with_approver) {
        Ok(_) => {
            HOLDS.put(db, batch, id, &h);
            Response::Ok
        }
        Err(why) => Response::Rejected(RejectKind::FailedPrecondition, why),
    }
}

/// Deletes the nominated segments that are expired and unprotected at `now_ms`, writing a
/// receipt for each. Protected or missing ones are skipped and counted as `duplicate`.
pub(super) fn expire_segments(
    db: &DB,
    batch: &mut WriteBatch,
    now_ms: i64,
    keys: &[(String, i64)],
    segment_count: &mut u64,
) -> Response {
    let holds: Vec<crate::retention::Hold> = match HOLDS.all(db) {
        Ok(h) => h,
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let mut seq: u64 = match RECEIPT_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let (mut deleted, mut skipped) = (0u32, 0u32);
    let mut seen = std::collections::HashSet::new();
    let mut policies = std::collections::HashMap::new();
    let mut packs = Packs::default();
    for (camera, start_ms) in keys {
        let key = segment_key(camera, *start_ms);
        let rec: SegmentRecord = match SEGMENTS.get(db, &key) {
            Ok(Some(r)) if seen.insert(key.clone()) => r,
            Ok(_) => {
                skipped += 1;
                continue;
            }
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        };
        let policy = match policies.get(camera) {
            Some(p) => *p,
            None => match policy_of(db, camera) {
                Ok(p) => *policies.entry(camera.clone()).or_insert(p),
                Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
            },
        };
        let held = holds.iter().any(|h| h.covers(camera, rec.start_ms, rec.end_ms));
        if held || !policy.expired(rec.end_ms, now_ms) {
            skipped += 1;
            continue;
        }
        seq += 1;
        let receipt = DeletionReceipt {
            seq,
            camera: rec.camera.clone(),
            start_ms: rec.start_ms,
            end_ms: rec.end_ms,
            bytes: rec.bytes,
            content_hash: rec.content_hash,
            blob_hash: rec.blob_hash,
            min_days: policy.min_days,
            max_days: policy.max_days,
            deleted_ms: now_ms,
        };
        RECEIPTS.put(db, batch, &seq, &receipt);
        batch.delete_cf(cf(db, CF_BACKUP_QUEUE), &key);
        SEGMENT_CLOCKS.delete(db, batch, &key);
        LOST.delete(db, batch, &key);
        match BACKUP_LOCS.get(db, &key) {
            Ok(Some(loc)) => {
                BACKUP_LOCS.delete(db, batch, &key);
                if let Err(e) = packs.release(db, &loc.pack, loc.len) {
                    return Response::StorageFailed(format!("catalog read failed: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        }
        SEGMENTS.delete(db, batch, &key);
        deleted += 1;
    }
    if let Err(e) = packs.write(db, batch) {
        return Response::StorageFailed(format!("catalog read failed: {e}"));
    }
    if deleted > 0 {
        RECEIPT_SEQ.put(db, batch, &seq);
        *segment_count = segment_count.saturating_sub(u64::from(deleted));
    }
    Response::Committed { new: deleted, duplicate: skipped, superseded: 0 }
}

pub(super) fn policy_of(db: &DB, camera: &str) -> Result<crate::retention::Policy, String> {
    match POLICIES.get(db, camera)? {
        Some(p) => Ok(p),
        None => Ok(POLICIES.get(db, "")?.unwrap_or_default()),
    }
}

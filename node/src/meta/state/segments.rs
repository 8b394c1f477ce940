//! Segment commands: committing segments and adding replicas.

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, segment_key, CF_BACKUP_QUEUE, CF_SEGMENTS};
use crate::meta::types::{NodeId, Response, SegmentRecord};

/// Catalogs a batch of durable segments, skipping those already present, and queues
/// them for the backup store.
pub(super) fn commit_segments(
    db: &DB,
    batch: &mut WriteBatch,
    segs: &[SegmentRecord],
    segment_count: &mut u64,
) -> Response {
    let c = cf(db, CF_SEGMENTS);
    let (mut new, mut duplicate) = (0u32, 0u32);
    let mut in_batch = std::collections::HashSet::new();
    for s in segs {
        let k = segment_key(&s.camera, s.start_ms);
        let present = match db.get_pinned_cf(c, &k) {
            Ok(v) => v.is_some(),
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        };
        if !in_batch.insert(k.clone()) || present {
            duplicate += 1;
        } else {
            batch.put_cf(cf(db, CF_BACKUP_QUEUE), &k, []);
            SEGMENTS.put(db, batch, &k, s);
            new += 1;
        }
    }
    *segment_count += u64::from(new);
    Response::Committed { new, duplicate }
}

/// Adds replicas to committed segments (repair); segments gone meanwhile are skipped.
pub(super) fn add_replicas(db: &DB, batch: &mut WriteBatch, adds: &[(String, i64, NodeId)]) -> Response {
    let _c = cf(db, CF_SEGMENTS);
    let mut updated: std::collections::HashMap<Vec<u8>, SegmentRecord> = std::collections::HashMap::new();
    let (mut new, mut skipped) = (0u32, 0u32);
    for (camera, start_ms, node) in adds {
        let k = segment_key(camera, *start_ms);
        let rec = match updated.remove(&k) {
            Some(r) => Some(r),
            None => SEGMENTS.get(db, &k).ok().flatten(),
        };
        let Some(mut rec) = rec else {
            skipped += 1; // expired meanwhile
            continue;
        };
        if rec.replicas.contains(node) {
            skipped += 1;
        } else {
            rec.replicas.push(*node);
            new += 1;
        }
        updated.insert(k, rec);
    }
    for (k, rec) in updated {
        SEGMENTS.put(db, batch, &k, &rec);
    }
    Response::Committed { new, duplicate: skipped }
}

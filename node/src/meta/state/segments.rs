//! Segment commands: committing segments and adding replicas.

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, segment_key, CF_BACKUP_QUEUE, CF_SEGMENTS};
use crate::meta::types::{NodeId, Response, SegmentRecord};

/// Catalogs a batch of durable segments, skipping those already present, and queues
/// them for the backup store.
///
/// A segment sealed (first replica) by the node the camera's last takeover replaced, and
/// ending after that takeover's seam, is superseded, not catalogued: the standby that took
/// over covers that time from its held pictures, so search and fetch never meet two
/// versions of it. Such segments come from a recorder that was paused or cut off, or that
/// restarted, while its standby took over. Every other segment is catalogued as before.
pub(super) fn commit_segments(
    db: &DB,
    batch: &mut WriteBatch,
    segs: &[SegmentRecord],
    segment_count: &mut u64,
) -> Response {
    let c = cf(db, CF_SEGMENTS);
    let (mut new, mut duplicate, mut superseded) = (0u32, 0u32, 0u32);
    let mut in_batch = std::collections::HashSet::new();
    // Camera id → its recorder and last takeover, read once per batch.
    let mut owners: std::collections::HashMap<&str, Option<Owner>> = Default::default();
    for s in segs {
        let k = segment_key(&s.camera, s.start_ms);
        let present = match db.get_pinned_cf(c, &k) {
            Ok(v) => v.is_some(),
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        };
        if !in_batch.insert(k.clone()) || present {
            duplicate += 1;
            continue;
        }
        let owner = match owners.get(s.camera.as_str()) {
            Some(o) => *o,
            None => {
                let o = match owner_of(db, &s.camera) {
                    Ok(o) => o,
                    Err(r) => return r,
                };
                owners.insert(s.camera.as_str(), o);
                o
            }
        };
        if let (Some(o), Some(&sealer)) = (owner, s.replicas.first()) {
            if sealer != o.recorder && Some(sealer) == o.replaced && o.seam.is_some_and(|seam| s.end_ms > seam) {
                superseded += 1;
                continue;
            }
        }
        batch.put_cf(cf(db, CF_BACKUP_QUEUE), &k, []);
        SEGMENTS.put(db, batch, &k, s);
        new += 1;
    }
    *segment_count += u64::from(new);
    Response::Committed { new, duplicate, superseded }
}

/// The end of a camera's latest committed segment.
pub(super) fn last_end(db: &DB, camera: &str) -> Result<Option<i64>, Response> {
    let mut prefix = camera.as_bytes().to_vec();
    prefix.push(0);
    let key = segment_key(camera, i64::MAX);
    match db.iterator_cf(cf(db, CF_SEGMENTS), rocksdb::IteratorMode::From(&key, rocksdb::Direction::Reverse)).next() {
        Some(Ok((k, v))) if k.starts_with(&prefix) => crate::meta::types::decode::<SegmentRecord>(&v)
            .map(|s| Some(s.end_ms))
            .map_err(|e| Response::StorageFailed(format!("catalog read failed: {e}"))),
        Some(Err(e)) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
        _ => Ok(None),
    }
}

/// Who records a camera, and what its last takeover left.
#[derive(Debug, Clone, Copy)]
struct Owner {
    recorder: NodeId,
    /// The end of the committed footage at the last takeover.
    seam: Option<i64>,
    /// The node that takeover replaced.
    replaced: Option<NodeId>,
}

/// A camera's owner; `None` for a camera no longer registered.
fn owner_of(db: &DB, camera: &str) -> Result<Option<Owner>, Response> {
    let read = |e: String| Response::StorageFailed(format!("catalog read failed: {e}"));
    let Some(cam) = CAMERAS.get(db, camera).map_err(read)? else { return Ok(None) };
    let sb = STANDBY.get(db, camera).map_err(read)?.unwrap_or_default();
    Ok(Some(Owner { recorder: cam.recorder, seam: sb.seam_ms, replaced: sb.last_takeover.map(|t| t.1) }))
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
    Response::Committed { new, duplicate: skipped, superseded: 0 }
}

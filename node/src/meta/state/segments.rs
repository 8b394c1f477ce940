//! Segment commands: committing segments and adding replicas.

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, segment_key, CF_BACKUP_QUEUE, CF_SEGMENTS};
use crate::meta::types::{NodeId, Response, SegmentRecord};

/// Catalogs a batch of durable segments, skipping those already present, and queues
/// them for the backup store.
///
/// A segment sealed by a node that is not the camera's recorder (its first replica) is
/// superseded, not catalogued, when it ends after the camera's last takeover seam or
/// overlaps committed footage: the node that took over covers that time, and search and
/// fetch never meet two segments for one instant. Such segments come from a recorder that
/// was paused, cut off or restarted after a takeover. The recorder's own segments are
/// always catalogued, as before.
pub(super) fn commit_segments(
    db: &DB,
    batch: &mut WriteBatch,
    segs: &[SegmentRecord],
    segment_count: &mut u64,
) -> Response {
    let c = cf(db, CF_SEGMENTS);
    let (mut new, mut duplicate, mut superseded) = (0u32, 0u32, 0u32);
    let mut in_batch = std::collections::HashSet::new();
    // Camera id → (its recorder, its seam), read once per batch.
    let mut owners: std::collections::HashMap<&str, Option<(NodeId, Option<i64>)>> = Default::default();
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
        if let (Some((recorder, seam)), Some(&sealer)) = (owner, s.replicas.first()) {
            if sealer != recorder {
                let after_seam = seam.is_some_and(|seam| s.end_ms > seam);
                let overlaps = match overlaps_committed(db, s) {
                    Ok(o) => o,
                    Err(r) => return r,
                };
                if after_seam || overlaps {
                    superseded += 1;
                    continue;
                }
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

/// A camera's recorder and takeover seam; `None` for a camera no longer registered.
fn owner_of(db: &DB, camera: &str) -> Result<Option<(NodeId, Option<i64>)>, Response> {
    let read = |e: String| Response::StorageFailed(format!("catalog read failed: {e}"));
    let Some(cam) = CAMERAS.get(db, camera).map_err(read)? else { return Ok(None) };
    let seam = STANDBY.get(db, camera).map_err(read)?.and_then(|s| s.seam_ms);
    Ok(Some((cam.recorder, seam)))
}

/// One entry of a RocksDB iterator.
type KeyValue = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

/// True if committed footage of `s`'s camera overlaps `s`: the segment starting before it
/// ends after its start, or the one starting after it starts before its end.
fn overlaps_committed(db: &DB, s: &SegmentRecord) -> Result<bool, Response> {
    let read = |e: String| Response::StorageFailed(format!("catalog read failed: {e}"));
    let c = cf(db, CF_SEGMENTS);
    let mut prefix = s.camera.as_bytes().to_vec();
    prefix.push(0);
    let key = segment_key(&s.camera, s.start_ms);
    let decode_at = |kv: Option<KeyValue>| -> Result<Option<SegmentRecord>, Response> {
        match kv {
            Some(Ok((k, v))) if k.starts_with(&prefix) => {
                crate::meta::types::decode::<SegmentRecord>(&v).map(Some).map_err(read)
            }
            Some(Err(e)) => Err(read(e.to_string())),
            _ => Ok(None),
        }
    };
    let before = decode_at(db.iterator_cf(c, rocksdb::IteratorMode::From(&key, rocksdb::Direction::Reverse)).next())?;
    if before.is_some_and(|b| b.start_ms < s.start_ms && b.end_ms > s.start_ms) {
        return Ok(true);
    }
    let after = decode_at(db.iterator_cf(c, rocksdb::IteratorMode::From(&key, rocksdb::Direction::Forward)).next())?;
    Ok(after.is_some_and(|a| a.start_ms > s.start_ms && a.start_ms < s.end_ms))
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

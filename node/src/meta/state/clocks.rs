//! Time in the state machine: the bound on how fast expiry time may advance, clock-jump
//! confirmations, and the clock flags of segments recorded by a skewed recorder.
//!
//! Everything here reads only the log entry (its command, its leader-stamped time, its
//! term) and the catalog, so every replica decides alike.

use rocksdb::{WriteBatch, DB};

use super::cluster_version;
use super::table::*;
use crate::meta::db::segment_key;
use crate::meta::types::{NodeId, RejectKind, Response, SegmentClock, FORMAT_V2};

/// How far an expiry's time may run ahead of the previous expiry's time beyond the
/// leader-stamped time elapsed between the two entries. Expiry passes run every minute or
/// so; a leader's clock measuring elapsed time slightly short, and the median of the
/// voters' clocks moving as readings come in, stay well inside it. A jump of the agreed
/// time by hours or days does not.
pub const EXPIRY_TIME_AHEAD_MAX_MS: i64 = 10 * 60 * 1000;

/// Most segments one `MarkSegmentClocks` may flag (a commit batch's worth).
pub const SEGMENT_CLOCKS_MAX: usize = 512;

/// The previous committed expiry: its effective time, its leader-stamped time, and the
/// term of the leader that stamped it (in `sm_meta`).
pub(super) const KEY_LAST_EXPIRY: &[u8] = b"last_expiry";

fn read_failed(e: String) -> Response {
    Response::StorageFailed(format!("catalog read failed: {e}"))
}

/// Where the count of accepted clock confirmations of node `id` is kept (in `sm_meta`).
pub(super) fn clock_confirm_key(id: NodeId) -> Vec<u8> {
    [&b"clock_confirm/"[..], &id.to_be_bytes()].concat()
}

/// Refuses an expiry at `at_ms` (already the earlier of the command's time and its
/// stamp `time_ms`) that runs ahead of the previous expiry's time by more than the stamps
/// elapsed between the two entries plus [`EXPIRY_TIME_AHEAD_MAX_MS`]. Elapsed time is
/// measured only between two entries of the same term: both stamps then come from one
/// leader's clock. After a leader change the first expiry is bounded by its own stamp
/// alone, so a leader whose clock differs from its predecessor's is never held up by the
/// difference. Binds once the cluster runs format 2 (a format-1 replica does not check).
pub(super) fn check_expiry_time(db: &DB, at_ms: i64, time_ms: i64, term: u64) -> Option<Response> {
    match cluster_version(db) {
        Ok(v) if v >= u32::from(FORMAT_V2) => {}
        Ok(_) => return None,
        Err(e) => return Some(read_failed(e)),
    }
    let (prev_at, prev_time, prev_term) = match LAST_EXPIRY.get(db) {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => return Some(read_failed(e)),
    };
    if prev_term != term {
        return None;
    }
    let ahead = at_ms.saturating_sub(prev_at);
    let elapsed = time_ms.saturating_sub(prev_time);
    (ahead > elapsed.saturating_add(EXPIRY_TIME_AHEAD_MAX_MS)).then(|| {
        Response::Rejected(
            RejectKind::FailedPrecondition,
            format!(
                "expiry time {at_ms} runs {} s ahead of the previous expiry's time {prev_at}, but the leader's clock \
                 advanced only {} s between the two entries (bound {} s more): the agreed time jumped; nothing is \
                 deleted at it",
                ahead / 1000,
                elapsed / 1000,
                EXPIRY_TIME_AHEAD_MAX_MS / 1000
            ),
        )
    })
}

/// Records the expiry just applied as the reference for the next one.
pub(super) fn note_expiry(db: &DB, batch: &mut WriteBatch, at_ms: i64, time_ms: i64, term: u64) {
    LAST_EXPIRY.put(db, batch, &(at_ms, time_ms, term));
}

/// Counts one more accepted confirmation of node `node`'s clock.
pub(super) fn confirm_clock(db: &DB, batch: &mut WriteBatch, node: NodeId) -> Response {
    match NODES.get(db, &node) {
        Ok(Some(n)) if !n.retired => {}
        Ok(Some(_)) => return Response::Rejected(RejectKind::FailedPrecondition, format!("node {node} is retired")),
        Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("node {node} does not exist")),
        Err(e) => return read_failed(e),
    }
    let n: u64 = match CLOCK_CONFIRMS.get(db, &clock_confirm_key(node)) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return read_failed(e),
    };
    CLOCK_CONFIRMS.put(db, batch, &clock_confirm_key(node), &n);
    Response::Ok
}

/// Stores the clock flags of segments (whether or not the segment is committed yet: the
/// recorder flags a batch before committing it, so a crash between the two loses no flag).
pub(super) fn mark_segment_clocks(db: &DB, batch: &mut WriteBatch, flags: &[SegmentClock]) -> Response {
    if flags.len() > SEGMENT_CLOCKS_MAX {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            format!("at most {SEGMENT_CLOCKS_MAX} segment clock flags per entry"),
        );
    }
    for f in flags {
        SEGMENT_CLOCKS.put(db, batch, &segment_key(&f.camera, f.start_ms), f);
    }
    Response::Ok
}

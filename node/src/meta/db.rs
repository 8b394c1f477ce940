//! The node's RocksDB: one database, one WAL, a column family per concern.
//!
//! The Raft log and the state machine share the database on purpose: log appends are
//! written with `sync`, and RocksDB's single WAL is ordered, so every state-machine write
//! that preceded a synced append is durable with it. State-machine batches therefore
//! skip their own fsync without risking an applied index ahead of its data.
//!
//! WAL recovery is `PointInTime`: after a crash RocksDB replays up to the first torn or
//! corrupt record and stops there. A torn tail is an append that never returned to Raft,
//! so dropping it is correct; it is never silently skipped over to later records.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, DB};

use crate::error::{Error, Result};

/// Raft log entries, keyed by big-endian index.
pub const CF_LOG: &str = "raft_log";
/// Raft bookkeeping: vote, committed id, last purged id.
pub const CF_RAFT: &str = "raft_meta";
/// State-machine bookkeeping: last applied id, membership, counters.
pub const CF_SM: &str = "sm_meta";
/// Cameras by id.
pub const CF_CAMERAS: &str = "cameras";
/// Segment records by `camera \0 start_ms`.
pub const CF_SEGMENTS: &str = "segments";
/// Users by name.
pub const CF_USERS: &str = "users";
/// Token records by token hash.
pub const CF_TOKENS: &str = "tokens";
/// Audit entries by big-endian sequence number.
pub const CF_AUDIT: &str = "audit";
/// Retention policies by camera id; the empty key holds the default.
pub const CF_POLICIES: &str = "policies";
/// Holds by id.
pub const CF_HOLDS: &str = "holds";
/// Deletion receipts by big-endian sequence number.
pub const CF_RECEIPTS: &str = "receipts";

/// Cluster members by big-endian node id.
pub const CF_NODES: &str = "nodes";
/// Join tokens by token hash.
pub const CF_JOIN_TOKENS: &str = "join_tokens";

/// Export requests and their packages' manifests by id.
pub const CF_EXPORTS: &str = "exports";

/// Segments committed but not yet confirmed by the backup store, by segment key.
pub const CF_BACKUP_QUEUE: &str = "backup_queue";

/// Pack objects in the backup bucket that hold live footage, by pack hash.
pub const CF_BACKUP_PACKS: &str = "backup_packs";
/// Where each backed-up segment is in the bucket, by segment key.
pub const CF_BACKUP_LOCS: &str = "backup_locs";
/// Pack objects no live segment needs any more, to be deleted from the bucket, by
/// big-endian sequence number.
pub const CF_BACKUP_TRASH: &str = "backup_trash";

/// Alarms, open and cleared, by big-endian id.
pub const CF_ALARMS: &str = "alarms";
/// Open alarms: `kind \0 subject` → id.
pub const CF_ALARMS_OPEN: &str = "alarms_open";
/// Patrols and shift handovers by big-endian sequence number.
pub const CF_DUTY: &str = "duty";
/// When each camera was sensitive, by camera id: the periods whose footage needs a grant
/// whatever the camera record says later (removed, re-added, unmarked).
pub const CF_SENSITIVITY: &str = "sensitivity";
/// Changes to roots of trust (change queue), pending and decided, by big-endian id.
pub const CF_CHANGES: &str = "changes";
/// Daily seals (`custos_evidence::seal::SealFile`) by big-endian seal number.
pub const CF_SEALS: &str = "seals";
/// The fault register by big-endian fault number.
pub const CF_FAULTS: &str = "faults";
/// Acceptances of shift handovers by the handover's big-endian duty number.
pub const CF_HANDOVER_ACCEPTS: &str = "handover_accepts";
/// Shift definitions by name.
pub const CF_SHIFTS: &str = "shifts";
/// Leadership's sign-offs of the duty log by big-endian number.
pub const CF_SIGNOFFS: &str = "duty_signoffs";
/// Clock flags of segments recorded while their recorder's clock was skewed
/// (`SegmentClock`), by segment key.
pub const CF_SEGMENT_CLOCKS: &str = "segment_clocks";
/// Segments whose footage is lost for good (`LostSegment`), by segment key.
pub const CF_LOST: &str = "lost";
/// Reference stills for picture checks, by camera id.
pub const CF_PICTURE_REFS: &str = "picture_refs";
/// User name → console password (`Credential`).
pub const CF_CREDENTIALS: &str = "credentials";
/// Camera id → its privacy zones (`Vec<zones::Zone>`). Format 3.
pub const CF_PRIVACY_ZONES: &str = "privacy_zones";
/// Export id → what a redacted export asked for and its approver decided
/// (`ExportRedaction`). Format 3.
pub const CF_REDACTIONS: &str = "redactions";
/// Camera id → its hot standby (`Standby`): wanted or not, which node, the last seam.
/// Format 4.
pub const CF_STANDBY: &str = "standby";

/// Column families that make up the state machine (and so its snapshots). Snapshots name
/// a family by its place in this list: add new ones at the end.
pub const STATE_CFS: &[&str] = &[
    CF_SM,
    CF_CAMERAS,
    CF_SEGMENTS,
    CF_USERS,
    CF_TOKENS,
    CF_AUDIT,
    CF_POLICIES,
    CF_HOLDS,
    CF_RECEIPTS,
    CF_NODES,
    CF_JOIN_TOKENS,
    CF_EXPORTS,
    CF_BACKUP_QUEUE,
    CF_BACKUP_PACKS,
    CF_BACKUP_LOCS,
    CF_BACKUP_TRASH,
    CF_ALARMS,
    CF_ALARMS_OPEN,
    CF_DUTY,
    CF_SENSITIVITY,
    CF_CHANGES,
    CF_SEALS,
    CF_FAULTS,
    CF_HANDOVER_ACCEPTS,
    CF_SHIFTS,
    CF_SIGNOFFS,
    CF_SEGMENT_CLOCKS,
    CF_LOST,
    CF_PICTURE_REFS,
    CF_CREDENTIALS,
    CF_PRIVACY_ZONES,
    CF_REDACTIONS,
    CF_STANDBY,
];

/// Opens (creating if needed) the database. Blocks.
pub fn open(path: &Path) -> Result<Arc<DB>> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
    opts.set_keep_log_file_num(4);
    let cfs = std::iter::once(CF_LOG)
        .chain(std::iter::once(CF_RAFT))
        .chain(STATE_CFS.iter().copied())
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
        Error::Internal(format!(
            "cannot open the catalog database at {}: {e}. If another custos-node is running on \
             this data directory, stop it first",
            path.display()
        ))
    })?;
    Ok(Arc::new(db))
}

/// Handle to a column family that [`open`] always creates.
pub fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).unwrap_or_else(|| panic!("column family {name} is created at open"))
}

/// Order-preserving encoding of a signed millisecond time.
pub fn time_key(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`time_key`].
pub fn time_from_key(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    (u64::from_be_bytes(a) ^ (1 << 63)) as i64
}

/// Catalog key of a segment: camera id, a zero byte, then the start time.
pub fn segment_key(camera: &str, start_ms: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(camera.len() + 9);
    k.extend_from_slice(camera.as_bytes());
    k.push(0);
    k.extend_from_slice(&time_key(start_ms));
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_times() {
        let ts = [i64::MIN, -5, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in ts.windows(2) {
            assert!(time_key(w[0]) < time_key(w[1]));
            assert_eq!(time_from_key(&time_key(w[0])), w[0]);
        }
        // Camera ids never contain a zero byte, so one camera's keys never interleave
        // with another's whose id extends it ("cam" vs "cam2").
        assert!(segment_key("cam", i64::MAX) < segment_key("cam2", i64::MIN));
    }
}

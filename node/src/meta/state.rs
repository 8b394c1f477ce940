//! The state machine: applies committed commands to the catalog column families, serves
//! reads of the applied state ([`Catalog`]), and builds and installs snapshots.
//!
//! Each entry is applied as one RocksDB `WriteBatch` that also records the applied log
//! id, so the catalog and the applied index never disagree. All RocksDB work runs on the
//! blocking pool.

// openraft's trait methods return its StorageError (over 200 bytes); the blocking helpers
// return the same type so `?` flows through unchanged.
#![allow(clippy::result_large_err)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch, DB};

use super::db::{
    cf, segment_key, time_key, CF_ALARMS, CF_ALARMS_OPEN, CF_AUDIT, CF_BACKUP_LOCS, CF_BACKUP_PACKS, CF_BACKUP_QUEUE,
    CF_BACKUP_TRASH, CF_CAMERAS, CF_DUTY, CF_EXPORTS, CF_HOLDS, CF_JOIN_TOKENS, CF_NODES, CF_POLICIES, CF_RECEIPTS,
    CF_SEGMENTS, CF_SENSITIVITY, CF_SM, CF_TOKENS, CF_USERS, STATE_CFS,
};
use super::types::{
    decode, encode, AlarmAck, AlarmChange, AlarmRecord, BackupLocation, Camera, Command, DeletionReceipt, DutyRecord,
    ExportRecord, ExportStatus, JoinTokenRecord, NodeId, NodeRecord, PackRecord, RejectKind, Request, Response,
    SegmentRecord, SensitivePeriod, StoredPack, TokenRecord, TypeConfig, User,
};
use crate::audit::{seal_entry, AuditRecord, GENESIS};
use crate::segment::Hash;

pub(super) const KEY_APPLIED: &[u8] = b"applied";
pub(super) const KEY_MEMBERSHIP: &[u8] = b"membership";
pub(super) const KEY_SEGMENT_COUNT: &[u8] = b"segment_count";
pub(super) const KEY_AUDIT_HEAD: &[u8] = b"audit_head";
const KEY_HOLD_SEQ: &[u8] = b"hold_seq";
const KEY_RECEIPT_SEQ: &[u8] = b"receipt_seq";
const KEY_EXPORT_SEQ: &[u8] = b"export_seq";
/// (segments, blob bytes) the backup store has confirmed.
pub(super) const KEY_BACKED_UP: &[u8] = b"backed_up";
/// (pack objects, bytes) in the bucket that hold live footage.
pub(super) const KEY_BACKUP_OBJECTS: &[u8] = b"backup_objects";
/// The last alarm id given.
const KEY_ALARM_SEQ: &[u8] = b"alarm_seq";
/// The last duty record number given.
const KEY_DUTY_SEQ: &[u8] = b"duty_seq";

/// Where node `id`'s pinned certificate key hash is kept (in `sm_meta`).
fn node_key_key(id: NodeId) -> Vec<u8> {
    [&b"node_key/"[..], &id.to_be_bytes()].concat()
}

/// The last sequence number given to a bucket trash entry.
pub(super) const KEY_TRASH_SEQ: &[u8] = b"trash_seq";
const SNAPSHOT_META_FILE: &str = "current.meta";

/// Key recording that a camera id was registered from a config file (value: the time).
fn seeded_camera_key(id: &str) -> Vec<u8> {
    [b"seeded_camera/".as_slice(), id.as_bytes()].concat()
}

type StorageResult<T> = Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, BasicNode>;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking state-machine task panicked")
}

/// Records per batch command that still count as a small entry.
const LIGHT_BATCH: usize = 8;

/// True for one entry whose apply touches a handful of keys, which is cheaper to run on
/// the calling task than to hand to the blocking pool. Batches and commands that scan
/// (retiring a node moves its cameras and replicas) go to the blocking pool.
fn light(entries: &[Entry<TypeConfig>]) -> bool {
    let [entry] = entries else { return false };
    match &entry.payload {
        EntryPayload::Blank | EntryPayload::Membership(_) => true,
        EntryPayload::Normal(Request { command, .. }) => match command {
            Command::CommitSegments(v) => v.len() <= LIGHT_BATCH,
            Command::ExpireSegments { segments: v, .. } => v.len() <= LIGHT_BATCH,
            Command::AddReplicas(v) => v.len() <= LIGHT_BATCH,
            Command::MarkBackedUp(v) => v.len() <= 1,
            Command::Alarms(v) => v.len() <= LIGHT_BATCH,
            Command::RetireNode { .. } | Command::RemoveCamera { .. } | Command::CompleteExport { .. } => false,
            _ => true,
        },
    }
}

fn io_err(e: impl std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string()))
}

/// Read access to the applied catalog. Cheap to clone; every method blocks briefly on
/// RocksDB, so async callers wrap calls in `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(super) db: Arc<DB>,
    pub(super) cameras_changed: Arc<tokio::sync::Notify>,
}

impl Catalog {
    /// Notified whenever an applied entry changes a camera (added, removed, moved), so
    /// the recorder reconciles at once on every node, not only the one that proposed.
    pub fn cameras_changed(&self) -> Arc<tokio::sync::Notify> {
        self.cameras_changed.clone()
    }

    fn get<T: serde::de::DeserializeOwned>(&self, cf_name: &str, key: &[u8]) -> crate::Result<Option<T>> {
        match self.db.get_cf(cf(&self.db, cf_name), key)? {
            None => Ok(None),
            Some(b) => decode(&b).map(Some).map_err(crate::Error::Internal),
        }
    }

    /// Every camera, active or retired, in id order.
    pub fn cameras(&self) -> crate::Result<Vec<Camera>> {
        read_all(&self.db, CF_CAMERAS).map_err(crate::Error::Internal)
    }

    /// Whether a camera with this id was ever registered from a config file.
    pub fn camera_seeded(&self, id: &str) -> crate::Result<bool> {
        Ok(self.db.get_pinned_cf(cf(&self.db, CF_SM), seeded_camera_key(id))?.is_some())
    }

    /// A camera by id.
    pub fn camera(&self, id: &str) -> crate::Result<Option<Camera>> {
        self.get(CF_CAMERAS, id.as_bytes())
    }

    /// Whether footage of `camera` between `from_ms` and `to_ms` needs a grant: the camera
    /// is sensitive now, or was while any of that footage was recorded. Sensitivity
    /// belongs to the footage: removing the camera, re-adding its id or clearing the flag
    /// does not open what was recorded while it was set.
    pub fn footage_sensitive(&self, camera: &str, from_ms: i64, to_ms: i64) -> crate::Result<bool> {
        if self.camera(camera)?.is_some_and(|c| c.sensitive) {
            return Ok(true);
        }
        let periods: Vec<SensitivePeriod> = self.get(CF_SENSITIVITY, camera.as_bytes())?.unwrap_or_default();
        Ok(periods.iter().any(|p| p.overlaps(from_ms, to_ms)))
    }

    /// The periods during which `camera` was marked sensitive, oldest first.
    pub fn sensitive_periods(&self, camera: &str) -> crate::Result<Vec<SensitivePeriod>> {
        Ok(self.get(CF_SENSITIVITY, camera.as_bytes())?.unwrap_or_default())
    }

    /// Segments of `camera` overlapping `[from_ms, to_ms)`, in time order, at most
    /// `limit`. The second value is true when more matched.
    pub fn search(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> crate::Result<(Vec<SegmentRecord>, bool)> {
        let c = cf(&self.db, CF_SEGMENTS);
        let mut out = Vec::new();
        let mut prefix = camera.as_bytes().to_vec();
        prefix.push(0);
        // The segment that starts before `from_ms` may still run into the range.
        let seek = segment_key(camera, from_ms);
        let mut rev = self.db.iterator_cf(c, IteratorMode::From(&seek, rocksdb::Direction::Reverse));
        if let Some(kv) = rev.next() {
            let (k, v) = kv?;
            if k.starts_with(&prefix) && k[..] < seek[..] {
                let r: SegmentRecord = decode(&v).map_err(crate::Error::Internal)?;
                if r.end_ms > from_ms {
                    out.push(r);
                }
            }
        }
        let mut opts = ReadOptions::default();
        let mut upper = prefix.clone();
        upper.extend_from_slice(&time_key(to_ms));
        opts.set_iterate_upper_bound(upper);
        for kv in self.db.iterator_cf_opt(c, opts, IteratorMode::From(&seek, rocksdb::Direction::Forward)) {
            let (_, v) = kv?;
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(decode(&v).map_err(crate::Error::Internal)?);
        }
        Ok((out, false))
    }

    /// The segment of `camera` starting at `start_ms`.
    pub fn segment(&self, camera: &str, start_ms: i64) -> crate::Result<Option<SegmentRecord>> {
        self.get(CF_SEGMENTS, &segment_key(camera, start_ms))
    }

    /// True if the catalog has a segment of `camera` starting at `start_ms`.
    pub fn has_segment(&self, camera: &str, start_ms: i64) -> crate::Result<bool> {
        Ok(self.db.get_pinned_cf(cf(&self.db, CF_SEGMENTS), segment_key(camera, start_ms))?.is_some())
    }

    /// The latest segment of a camera.
    pub fn last_segment(&self, camera: &str) -> crate::Result<Option<SegmentRecord>> {
        let seek = segment_key(camera, i64::MAX);
        let mut prefix = camera.as_bytes().to_vec();
        prefix.push(0);
        let mut it =
            self.db.iterator_cf(cf(&self.db, CF_SEGMENTS), IteratorMode::From(&seek, rocksdb::Direction::Reverse));
        match it.next() {
            Some(kv) => {
                let (k, v) = kv?;
                if k.starts_with(&prefix) {
                    return decode(&v).map(Some).map_err(crate::Error::Internal);
                }
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Number of committed segments.
    pub fn segment_count(&self) -> crate::Result<u64> {
        Ok(self.get::<u64>(CF_SM, KEY_SEGMENT_COUNT)?.unwrap_or(0))
    }

    /// The token stored under `token_hash` and its user.
    pub fn token(&self, token_hash: &Hash) -> crate::Result<Option<(TokenRecord, User)>> {
        let Some(t) = self.get::<TokenRecord>(CF_TOKENS, token_hash)? else { return Ok(None) };
        Ok(self.user(&t.user)?.map(|u| (t, u)))
    }

    /// One user.
    pub fn user(&self, name: &str) -> crate::Result<Option<User>> {
        self.get(CF_USERS, name.as_bytes())
    }

    /// Every user, by name.
    pub fn users(&self) -> crate::Result<Vec<User>> {
        read_all(&self.db, CF_USERS).map_err(crate::Error::Internal)
    }

    /// Every token record (never the secrets, which are not stored).
    pub fn tokens(&self) -> crate::Result<Vec<TokenRecord>> {
        read_all(&self.db, CF_TOKENS).map_err(crate::Error::Internal)
    }

    /// Number of users.
    pub fn user_count(&self) -> crate::Result<usize> {
        Ok(self.db.iterator_cf(cf(&self.db, CF_USERS), IteratorMode::Start).count())
    }

    /// The default retention policy and each camera's own, if set.
    pub fn policies(&self) -> crate::Result<(crate::retention::Policy, Vec<(String, crate::retention::Policy)>)> {
        let mut default = crate::retention::Policy::default();
        let mut per_camera = Vec::new();
        for kv in self.db.iterator_cf(cf(&self.db, CF_POLICIES), IteratorMode::Start) {
            let (k, v) = kv?;
            let p: crate::retention::Policy = decode(&v).map_err(crate::Error::Internal)?;
            if k.is_empty() {
                default = p;
            } else {
                per_camera.push((String::from_utf8_lossy(&k).into_owned(), p));
            }
        }
        Ok((default, per_camera))
    }

    /// Every hold, oldest first.
    pub fn holds(&self) -> crate::Result<Vec<crate::retention::Hold>> {
        read_all(&self.db, CF_HOLDS).map_err(crate::Error::Internal)
    }

    /// One hold.
    pub fn hold(&self, id: &str) -> crate::Result<Option<crate::retention::Hold>> {
        self.get(CF_HOLDS, id.as_bytes())
    }

    /// The policy that governs a camera: its own, or the default.
    pub fn policy_for(&self, camera: &str) -> crate::Result<crate::retention::Policy> {
        policy_of(&self.db, camera).map_err(crate::Error::Internal)
    }

    /// Segments that look expired at `now_ms` (past their camera's `max_days` and not
    /// covered by an active hold), oldest first per camera, at most `limit`. Only a
    /// nomination: applying `ExpireSegments` decides again.
    pub fn expiry_candidates(&self, now_ms: i64, limit: usize) -> crate::Result<Vec<(String, i64)>> {
        let holds = self.holds()?;
        let c = cf(&self.db, CF_SEGMENTS);
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(c);
        it.seek_to_first();
        // The policy of the camera being scanned (segments are grouped by camera).
        let mut current: Option<(String, crate::retention::Policy)> = None;
        while it.valid() && out.len() < limit {
            let (Some(_), Some(v)) = (it.key(), it.value()) else { break };
            let rec: SegmentRecord = decode(v).map_err(crate::Error::Internal)?;
            let policy = match &current {
                Some((camera, p)) if *camera == rec.camera => *p,
                _ => {
                    let p = self.policy_for(&rec.camera)?;
                    current = Some((rec.camera.clone(), p));
                    p
                }
            };
            if policy.expired(rec.end_ms, now_ms) {
                if !holds.iter().any(|h| h.covers(&rec.camera, rec.start_ms, rec.end_ms)) {
                    out.push((rec.camera.clone(), rec.start_ms));
                }
                it.next();
            } else {
                // Later segments of this camera are younger: jump to the next camera.
                let mut next = rec.camera.as_bytes().to_vec();
                next.push(1);
                it.seek(&next);
            }
        }
        it.status()?;
        Ok(out)
    }

    /// Deletion receipts with `seq > after_seq`, oldest first, at most `limit`.
    pub fn receipts_after(&self, after_seq: u64, limit: usize) -> crate::Result<Vec<DeletionReceipt>> {
        let mut out = Vec::new();
        let start = (after_seq + 1).to_be_bytes();
        for kv in
            self.db.iterator_cf(cf(&self.db, CF_RECEIPTS), IteratorMode::From(&start, rocksdb::Direction::Forward))
        {
            if out.len() == limit {
                break;
            }
            let (_, v) = kv?;
            out.push(decode(&v).map_err(crate::Error::Internal)?);
        }
        Ok(out)
    }

    /// Segments waiting for the backup store, one camera at a time: for each camera with
    /// queued segments, in id order starting after `after_camera` and wrapping around,
    /// up to `per_camera` of its oldest queued segments. Stops after `cameras` cameras.
    pub fn backup_runs(
        &self,
        after_camera: Option<&str>,
        cameras: usize,
        per_camera: usize,
    ) -> crate::Result<Vec<Vec<SegmentRecord>>> {
        let db = &self.db;
        let mut it = db.raw_iterator_cf(cf(db, CF_BACKUP_QUEUE));
        let mut seek = after_camera.map(camera_end).unwrap_or_default();
        let mut wrapped = after_camera.is_none();
        let mut first_seen: Option<Vec<u8>> = None;
        let mut out = Vec::new();
        while out.len() < cameras {
            it.seek(&seek);
            if !it.valid() {
                it.status()?;
                if wrapped {
                    break;
                }
                wrapped = true;
                seek.clear();
                continue;
            }
            let camera = it.key().and_then(|k| k.split(|&b| b == 0).next()).unwrap_or_default().to_vec();
            if first_seen.as_ref() == Some(&camera) {
                break; // every camera with a queue has been visited
            }
            first_seen.get_or_insert_with(|| camera.clone());
            let mut run = Vec::new();
            while it.valid() && run.len() < per_camera {
                let k = it.key().unwrap_or_default();
                if !k.starts_with(&camera) || k.get(camera.len()) != Some(&0) {
                    break;
                }
                if let Some(rec) = self.get::<SegmentRecord>(CF_SEGMENTS, k)? {
                    run.push(rec);
                }
                it.next();
            }
            it.status()?;
            if !run.is_empty() {
                out.push(run);
            }
            seek = camera_end(&String::from_utf8_lossy(&camera));
        }
        Ok(out)
    }

    /// Segments waiting for the backup store (counted; linear in the queue's length).
    pub fn backup_pending(&self) -> crate::Result<u64> {
        Ok(self.db.iterator_cf(cf(&self.db, CF_BACKUP_QUEUE), IteratorMode::Start).count() as u64)
    }

    /// Segments and blob bytes the backup store has confirmed.
    pub fn backed_up(&self) -> crate::Result<(u64, u64)> {
        Ok(self.get::<(u64, u64)>(CF_SM, KEY_BACKED_UP)?.unwrap_or((0, 0)))
    }

    /// Open alarms, oldest first.
    pub fn open_alarms(&self) -> crate::Result<Vec<AlarmRecord>> {
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(cf(&self.db, CF_ALARMS_OPEN), IteratorMode::Start) {
            let (_, id) = kv?;
            if let Some(a) = self.get::<AlarmRecord>(CF_ALARMS, &id)? {
                out.push(a);
            }
        }
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    /// Alarms, newest first, at most `limit`; cleared ones too when `all`.
    pub fn alarms(&self, all: bool, limit: usize) -> crate::Result<Vec<AlarmRecord>> {
        if !all {
            let mut open = self.open_alarms()?;
            open.reverse();
            open.truncate(limit);
            return Ok(open);
        }
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(cf(&self.db, CF_ALARMS), IteratorMode::End).take(limit) {
            let (_, v) = kv?;
            out.push(decode(&v).map_err(crate::Error::Internal)?);
        }
        Ok(out)
    }

    /// One alarm by id.
    pub fn alarm(&self, id: u64) -> crate::Result<Option<AlarmRecord>> {
        self.get(CF_ALARMS, &id.to_be_bytes())
    }

    /// Patrols and handovers, newest first, at most `limit`.
    pub fn duty_log(&self, limit: usize) -> crate::Result<Vec<DutyRecord>> {
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(cf(&self.db, CF_DUTY), IteratorMode::End).take(limit) {
            let (_, v) = kv?;
            out.push(decode(&v).map_err(crate::Error::Internal)?);
        }
        Ok(out)
    }

    /// Pack objects in the bucket that hold live footage, and their bytes.
    pub fn backup_objects(&self) -> crate::Result<(u64, u64)> {
        Ok(self.get::<(u64, u64)>(CF_SM, KEY_BACKUP_OBJECTS)?.unwrap_or((0, 0)))
    }

    /// Where a segment is in the backup bucket, once backed up.
    pub fn backup_location(&self, camera: &str, start_ms: i64) -> crate::Result<Option<BackupLocation>> {
        self.get(CF_BACKUP_LOCS, &segment_key(camera, start_ms))
    }

    /// A pack that still holds live footage.
    pub fn backup_pack(&self, hash: &Hash) -> crate::Result<Option<PackRecord>> {
        self.get(CF_BACKUP_PACKS, hash)
    }

    /// Bucket trash entries with `seq > after_seq`, oldest first, at most `limit`: packs
    /// to delete from the bucket.
    pub fn trash_after(&self, after_seq: u64, limit: usize) -> crate::Result<Vec<(u64, Hash)>> {
        let mut out = Vec::new();
        let start = (after_seq + 1).to_be_bytes();
        let mode = IteratorMode::From(&start, rocksdb::Direction::Forward);
        for kv in self.db.iterator_cf(cf(&self.db, CF_BACKUP_TRASH), mode).take(limit) {
            let (k, v) = kv?;
            let seq = u64::from_be_bytes(k[..8].try_into().map_err(|_| crate::Error::Internal("trash key".into()))?);
            out.push((seq, decode(&v).map_err(crate::Error::Internal)?));
        }
        Ok(out)
    }

    /// Every export, oldest first.
    pub fn exports(&self) -> crate::Result<Vec<ExportRecord>> {
        read_all(&self.db, CF_EXPORTS).map_err(crate::Error::Internal)
    }

    /// One export.
    pub fn export(&self, id: &str) -> crate::Result<Option<ExportRecord>> {
        self.get(CF_EXPORTS, id.as_bytes())
    }

    /// Every node, active or retired, by id.
    pub fn nodes(&self) -> crate::Result<Vec<NodeRecord>> {
        read_all(&self.db, CF_NODES).map_err(crate::Error::Internal)
    }

    /// One node.
    pub fn node(&self, id: NodeId) -> crate::Result<Option<NodeRecord>> {
        self.get(CF_NODES, &id.to_be_bytes())
    }

    /// The pinned key hash of node `id`'s certificate, if pinned.
    pub fn node_key(&self, id: NodeId) -> crate::Result<Option<Hash>> {
        self.get(CF_SM, &node_key_key(id))
    }

    /// The join token stored under the BLAKE3 of its secret.
    pub fn join_token(&self, hash: &Hash) -> crate::Result<Option<JoinTokenRecord>> {
        self.get(CF_JOIN_TOKENS, hash)
    }

    /// Segments whose replica list does not hold `factor` of the `healthy` nodes, in key
    /// order after `after` (exclusive), at most `limit`, plus the key to resume from.
    /// Segments held by `node`, in key order after `after`, examining at most `limit`;
    /// and where to resume (`None`: the end was reached). The scrubber's walk.
    pub fn held_by(
        &self,
        node: NodeId,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> crate::Result<(Vec<SegmentRecord>, Option<Vec<u8>>)> {
        let (all, resume) = self.scan_segments(after, limit)?;
        Ok((all.into_iter().filter(|r| r.replicas.contains(&node)).collect(), resume))
    }

    /// Segments in key order after `after`, at most `limit`, and where to resume.
    pub fn scan_segments(
        &self,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> crate::Result<(Vec<SegmentRecord>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(cf(&self.db, CF_SEGMENTS));
        match &after {
            Some(k) => {
                it.seek(k);
                if it.key() == Some(&k[..]) {
                    it.next();
                }
            }
            None => it.seek_to_first(),
        }
        let mut last = None;
        while it.valid() && out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            out.push(decode(v).map_err(crate::Error::Internal)?);
            last = Some(k.to_vec());
            it.next();
        }
        it.status()?;
        let resume = if it.valid() { last } else { None };
        Ok((out, resume))
    }

    pub fn under_replicated(
        &self,
        healthy: &std::collections::BTreeSet<NodeId>,
        factor: usize,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> crate::Result<(Vec<SegmentRecord>, Option<Vec<u8>>)> {
        let (all, resume) = self.scan_segments(after, limit)?;
        Ok((
            all.into_iter().filter(|r| r.replicas.iter().filter(|n| healthy.contains(n)).count() < factor).collect(),
            resume,
        ))
    }

    /// Calls `f` with every segment of `camera` starting in `[from_ms, to_ms)`, in time
    /// order, without collecting them. Blocks.
    pub fn each_segment(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut(&SegmentRecord),
    ) -> crate::Result<()> {
        let c = cf(&self.db, CF_SEGMENTS);
        let mut prefix = camera.as_bytes().to_vec();
        prefix.push(0);
        let mut opts = ReadOptions::default();
        let mut upper = prefix.clone();
        upper.extend_from_slice(&time_key(to_ms));
        opts.set_iterate_upper_bound(upper);
        let seek = segment_key(camera, from_ms);
        for kv in self.db.iterator_cf_opt(c, opts, IteratorMode::From(&seek, rocksdb::Direction::Forward)) {
            let (_, v) = kv?;
            f(&decode(&v).map_err(crate::Error::Internal)?);
        }
        Ok(())
    }

    /// The oldest segment of a camera.
    pub fn first_segment(&self, camera: &str) -> crate::Result<Option<SegmentRecord>> {
        let mut first = None;
        let c = cf(&self.db, CF_SEGMENTS);
        let mut prefix = camera.as_bytes().to_vec();
        prefix.push(0);
        if let Some(kv) = self.db.iterator_cf(c, IteratorMode::From(&prefix, rocksdb::Direction::Forward)).next() {
            let (k, v) = kv?;
            if k.starts_with(&prefix) {
                first = Some(decode(&v).map_err(crate::Error::Internal)?);
            }
        }
        Ok(first)
    }

    /// Calls `f` with every deletion receipt written at or after `since_ms`, newest
    /// first. Blocks.
    pub fn receipts_since(&self, since_ms: i64, mut f: impl FnMut(&DeletionReceipt)) -> crate::Result<()> {
        for kv in self.db.iterator_cf(cf(&self.db, CF_RECEIPTS), IteratorMode::End) {
            let (_, v) = kv?;
            let r: DeletionReceipt = decode(&v).map_err(crate::Error::Internal)?;
            if r.deleted_ms < since_ms {
                break;
            }
            f(&r);
        }
        Ok(())
    }

    /// Calls `f` with every audit entry appended at or after `since_ms`, newest first.
    /// Blocks.
    pub fn audit_since(&self, since_ms: i64, mut f: impl FnMut(&crate::audit::AuditBody)) -> crate::Result<()> {
        for kv in self.db.iterator_cf(cf(&self.db, CF_AUDIT), IteratorMode::End) {
            let (_, v) = kv?;
            let rec: AuditRecord = decode(&v).map_err(crate::Error::Internal)?;
            let body: crate::audit::AuditBody = serde_json::from_slice(&rec.body)
                .map_err(|e| crate::Error::Internal(format!("audit entry unreadable: {e}")))?;
            if body.time_ms < since_ms {
                break;
            }
            f(&body);
        }
        Ok(())
    }

    /// One patrol or handover.
    pub fn duty(&self, seq: u64) -> crate::Result<Option<DutyRecord>> {
        self.get(CF_DUTY, &seq.to_be_bytes())
    }

    /// Sequence number and hash of the newest audit entry (0 and zeros when empty).
    pub fn audit_head(&self) -> crate::Result<(u64, Hash)> {
        Ok(self.get::<(u64, Hash)>(CF_SM, KEY_AUDIT_HEAD)?.unwrap_or((0, GENESIS)))
    }

    /// Audit entries with `seq > after_seq`, oldest first, at most `limit`.
    pub fn audit_after(&self, after_seq: u64, limit: usize) -> crate::Result<Vec<(u64, AuditRecord)>> {
        let mut out = Vec::new();
        let start = (after_seq + 1).to_be_bytes();
        for kv in self.db.iterator_cf(cf(&self.db, CF_AUDIT), IteratorMode::From(&start, rocksdb::Direction::Forward)) {
            if out.len() == limit {
                break;
            }
            let (k, v) = kv?;
            let seq =
                u64::from_be_bytes(k[..8].try_into().map_err(|_| crate::Error::Internal("bad audit key".into()))?);
            out.push((seq, decode(&v).map_err(crate::Error::Internal)?));
        }
        Ok(out)
    }
}

pub(super) fn get_decoded<T: serde::de::DeserializeOwned>(
    db: &DB,
    cf_name: &str,
    key: &[u8],
) -> Result<Option<T>, String> {
    match db.get_cf(cf(db, cf_name), key).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(b) => decode(&b).map(Some),
    }
}

/// Reads a user for a command that modifies it.
fn user_for_update(db: &DB, name: &str) -> Result<User, Response> {
    match get_decoded::<User>(db, CF_USERS, name.as_bytes()) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("user {name:?} does not exist"))),
        Err(e) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    }
}

fn camera_for_update(db: &DB, id: &str) -> Result<Camera, Response> {
    match get_decoded::<Camera>(db, CF_CAMERAS, id.as_bytes()) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("camera {id:?} does not exist"))),
        Err(e) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    }
}

/// Records in the sensitivity history that `camera` became sensitive (`now`: true) or
/// stopped being so, at leader time `time_ms`. `was` is what the camera record said
/// before. A camera that was sensitive before the history existed gets a period reaching
/// back to the start of time when it stops, so none of its footage opens up.
fn record_sensitivity(
    db: &DB,
    batch: &mut WriteBatch,
    camera: &str,
    (was, now): (bool, bool),
    time_ms: i64,
) -> Result<(), Response> {
    use super::types::SENSITIVITY_MARGIN_MS as M;
    let mut periods: Vec<SensitivePeriod> = get_decoded(db, CF_SENSITIVITY, camera.as_bytes())
        .map_err(|e| Response::StorageFailed(format!("catalog read failed: {e}")))?
        .unwrap_or_default();
    let open = periods.last_mut().filter(|p| p.to_ms.is_none());
    match (now, open) {
        (true, Some(_)) => return Ok(()),
        (true, None) => periods.push(SensitivePeriod { from_ms: time_ms.saturating_sub(M), to_ms: None }),
        (false, Some(p)) => p.to_ms = Some(time_ms.saturating_add(M)),
        (false, None) if was => {
            periods.push(SensitivePeriod { from_ms: i64::MIN, to_ms: Some(time_ms.saturating_add(M)) })
        }
        (false, None) => return Ok(()),
    }
    batch.put_cf(cf(db, CF_SENSITIVITY), camera.as_bytes(), encode(&periods));
    Ok(())
}

fn add_camera(db: &DB, batch: &mut WriteBatch, req: &Request, cam: &Camera) -> Response {
    let c = cf(db, CF_CAMERAS);
    match db.get_cf(c, cam.id.as_bytes()) {
        Ok(Some(_)) => Response::Rejected(RejectKind::AlreadyExists, format!("camera {:?} already exists", cam.id)),
        Ok(None) => {
            let mut cam = cam.clone();
            cam.added_ms = req.time_ms;
            if cam.sensitive {
                if let Err(r) = record_sensitivity(db, batch, &cam.id, (false, true), req.time_ms) {
                    return r;
                }
            }
            batch.put_cf(c, cam.id.as_bytes(), encode(&cam));
            Response::Ok
        }
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

/// Applies one command into `batch`. Pure with respect to the database state it reads.
fn apply_command(db: &DB, batch: &mut WriteBatch, req: &Request, segment_count: &mut u64) -> Response {
    match &req.command {
        Command::AddCamera(cam) => add_camera(db, batch, req, cam),
        Command::SeedCamera(cam) => {
            let key = seeded_camera_key(&cam.id);
            match db.get_pinned_cf(cf(db, CF_SM), &key) {
                Ok(Some(_)) => {
                    return Response::Rejected(
                        RejectKind::FailedPrecondition,
                        format!(
                            "camera {:?} was registered from a config file before; seed cameras are registered once, \
                         so one an administrator removed stays removed (add it with `custos camera add`)",
                            cam.id
                        ),
                    )
                }
                Ok(None) => {}
                Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
            }
            batch.put_cf(cf(db, CF_SM), key, encode(&req.time_ms));
            match db.get_pinned_cf(cf(db, CF_CAMERAS), cam.id.as_bytes()) {
                // Registered before seeds were recorded: the mark is all that is new.
                Ok(Some(_)) => Response::Ok,
                Ok(None) => add_camera(db, batch, req, cam),
                Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
            }
        }
        Command::RemoveCamera { id } => match camera_for_update(db, id) {
            Ok(cam) => {
                if cam.sensitive {
                    if let Err(r) = record_sensitivity(db, batch, id, (true, false), req.time_ms) {
                        return r;
                    }
                }
                batch.delete_cf(cf(db, CF_CAMERAS), id.as_bytes());
                Response::Ok
            }
            Err(r) => r,
        },
        Command::CommitSegments(segs) => {
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
                    batch.put_cf(c, k, encode(s));
                    new += 1;
                }
            }
            *segment_count += u64::from(new);
            Response::Committed { new, duplicate }
        }
        Command::CreateUser { user, token_hash, token } => {
            match get_decoded::<User>(db, CF_USERS, user.name.as_bytes()) {
                Ok(Some(_)) => {
                    return Response::Rejected(
                        RejectKind::AlreadyExists,
                        format!("user {:?} already exists", user.name),
                    )
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
        Command::DisableUser { name } => match user_for_update(db, name) {
            Ok(mut u) => {
                u.disabled = true;
                batch.put_cf(cf(db, CF_USERS), name.as_bytes(), encode(&u));
                Response::Ok
            }
            Err(r) => r,
        },
        Command::IssueToken { token_hash, token } => match user_for_update(db, &token.user) {
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
        },
        Command::RevokeToken { id } => {
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
        Command::GrantCamera { user, camera, grant } => {
            if let Err(r) = camera_for_update(db, camera) {
                return r;
            }
            match user_for_update(db, user) {
                Ok(mut u) => {
                    u.grants.retain(|g| g != camera);
                    if *grant {
                        u.grants.push(camera.clone());
                        u.grants.sort();
                    }
                    batch.put_cf(cf(db, CF_USERS), user.as_bytes(), encode(&u));
                    Response::Ok
                }
                Err(r) => r,
            }
        }
        Command::SetSensitive { camera, sensitive } => match camera_for_update(db, camera) {
            Ok(mut c) => {
                if let Err(r) = record_sensitivity(db, batch, camera, (c.sensitive, *sensitive), req.time_ms) {
                    return r;
                }
                c.sensitive = *sensitive;
                batch.put_cf(cf(db, CF_CAMERAS), camera.as_bytes(), encode(&c));
                Response::Ok
            }
            Err(r) => r,
        },
        Command::SetPolicy { camera, policy } => {
            // The floor is enforced here too: no command, however it was made, lowers it.
            if let Err(why) = policy.validated() {
                return Response::Rejected(RejectKind::FailedPrecondition, why);
            }
            if let Some(c) = camera {
                if let Err(r) = camera_for_update(db, c) {
                    return r;
                }
            }
            batch.put_cf(cf(db, CF_POLICIES), camera.as_deref().unwrap_or("").as_bytes(), encode(policy));
            Response::Ok
        }
        Command::PlaceHold(h) => match place_hold(db, batch, req.time_ms, h) {
            Ok(id) => Response::Created(id),
            Err(r) => r,
        },
        Command::ApproveHoldRelease { id, user } => {
            let mut h: crate::retention::Hold = match get_decoded(db, CF_HOLDS, id.as_bytes()) {
                Ok(Some(h)) => h,
                Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("hold {id} does not exist")),
                Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
            };
            match h.approve_release(user, req.time_ms) {
                Ok(_) => {
                    batch.put_cf(cf(db, CF_HOLDS), id.as_bytes(), encode(&h));
                    Response::Ok
                }
                Err(why) => Response::Rejected(RejectKind::FailedPrecondition, why),
            }
        }
        // Never later than the leader's own clock, nor than the time the voters agree on.
        Command::ExpireSegments { at_ms, segments } => {
            expire_segments(db, batch, (*at_ms).min(req.time_ms), segments, segment_count)
        }
        Command::Audit => Response::Ok,
        Command::CreateJoinToken { token_hash, token } => {
            let mut t = token.clone();
            t.created_ms = req.time_ms;
            t.used_by = None;
            batch.put_cf(cf(db, CF_JOIN_TOKENS), token_hash, encode(&t));
            Response::Ok
        }
        Command::RegisterNode { campus, addr, token_hash, founder } => {
            register_node(db, batch, req.time_ms, (campus, addr), token_hash, *founder)
        }
        Command::RetireNode { id } => match get_decoded::<NodeRecord>(db, CF_NODES, &id.to_be_bytes()) {
            Ok(Some(mut n)) if !n.retired => {
                let active = read_all::<NodeRecord>(db, CF_NODES).map(|v| v.iter().filter(|n| !n.retired).count());
                if active.unwrap_or(0) <= 1 {
                    return Response::Rejected(
                        RejectKind::FailedPrecondition,
                        "the last active node cannot be retired".into(),
                    );
                }
                n.retired = true;
                batch.put_cf(cf(db, CF_NODES), id.to_be_bytes(), encode(&n));
                Response::Ok
            }
            Ok(Some(_)) => Response::Rejected(RejectKind::FailedPrecondition, format!("node {id} is already retired")),
            Ok(None) => Response::Rejected(RejectKind::NotFound, format!("node {id} does not exist")),
            Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
        },
        Command::AssignCamera { camera, recorder } => {
            match get_decoded::<NodeRecord>(db, CF_NODES, &recorder.to_be_bytes()) {
                Ok(Some(n)) if !n.retired => {}
                _ => {
                    return Response::Rejected(
                        RejectKind::FailedPrecondition,
                        format!("node {recorder} is not an active member"),
                    )
                }
            }
            match camera_for_update(db, camera) {
                Ok(mut c) => {
                    c.recorder = *recorder;
                    batch.put_cf(cf(db, CF_CAMERAS), camera.as_bytes(), encode(&c));
                    Response::Ok
                }
                Err(r) => r,
            }
        }
        Command::MarkBackedUp(packs) => mark_backed_up(db, batch, req.time_ms, packs),
        Command::PinNodeKey { id, key_hash } => {
            match get_decoded::<NodeRecord>(db, CF_NODES, &id.to_be_bytes()) {
                Ok(Some(n)) if !n.retired => {}
                Ok(Some(_)) => {
                    return Response::Rejected(RejectKind::FailedPrecondition, format!("node {id} is retired"))
                }
                Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("node {id} does not exist")),
                Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
            }
            match get_decoded::<Hash>(db, CF_SM, &node_key_key(*id)) {
                Ok(Some(h)) if h == *key_hash => Response::Ok,
                Ok(Some(_)) => Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!(
                    "node {id}'s certificate key is already pinned to another key; a node keeps the key it joined with"
                ),
                ),
                Ok(None) => {
                    batch.put_cf(cf(db, CF_SM), node_key_key(*id), encode(key_hash));
                    Response::Ok
                }
                Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
            }
        }
        Command::Alarms(changes) => apply_alarms(db, batch, req.time_ms, changes),
        Command::AckAlarm { id, user, note } => {
            if note.trim().is_empty() {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    "an acknowledgement needs a note saying what was done".into(),
                );
            }
            match get_decoded::<AlarmRecord>(db, CF_ALARMS, &id.to_be_bytes()) {
                Ok(Some(mut a)) => {
                    a.acks.push(AlarmAck { user: user.clone(), time_ms: req.time_ms, note: note.trim().to_string() });
                    batch.put_cf(cf(db, CF_ALARMS), id.to_be_bytes(), encode(&a));
                    Response::Ok
                }
                Ok(None) => Response::Rejected(RejectKind::NotFound, format!("alarm {id} does not exist")),
                Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
            }
        }
        Command::RecordDuty(d) => {
            let seq: u64 = match get_decoded(db, CF_SM, KEY_DUTY_SEQ) {
                Ok(v) => v.unwrap_or(0) + 1,
                Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
            };
            let d = DutyRecord { seq, time_ms: req.time_ms, ..d.clone() };
            batch.put_cf(cf(db, CF_DUTY), seq.to_be_bytes(), encode(&d));
            batch.put_cf(cf(db, CF_SM), KEY_DUTY_SEQ, encode(&seq));
            Response::Created(seq.to_string())
        }
        Command::RequestExport(_) | Command::DecideExport { .. } | Command::CompleteExport { .. } => {
            apply_export(db, batch, req.time_ms, &req.command)
        }
        Command::AddReplicas(adds) => {
            let c = cf(db, CF_SEGMENTS);
            let mut updated: std::collections::HashMap<Vec<u8>, SegmentRecord> = std::collections::HashMap::new();
            let (mut new, mut skipped) = (0u32, 0u32);
            for (camera, start_ms, node) in adds {
                let k = segment_key(camera, *start_ms);
                let rec = match updated.remove(&k) {
                    Some(r) => Some(r),
                    None => get_decoded::<SegmentRecord>(db, CF_SEGMENTS, &k).ok().flatten(),
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
                batch.put_cf(c, k, encode(&rec));
            }
            Response::Committed { new, duplicate: skipped }
        }
    }
}

/// Stores a new hold under the next id.
fn place_hold(db: &DB, batch: &mut WriteBatch, now_ms: i64, h: &crate::retention::Hold) -> Result<String, Response> {
    let seq: u64 = match get_decoded(db, CF_SM, KEY_HOLD_SEQ) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    };
    let mut h = h.clone();
    h.id = format!("H-{seq:06}");
    h.placed_ms = now_ms;
    h.release_approvals.clear();
    h.released_ms = None;
    batch.put_cf(cf(db, CF_SM), KEY_HOLD_SEQ, encode(&seq));
    batch.put_cf(cf(db, CF_HOLDS), h.id.as_bytes(), encode(&h));
    Ok(h.id)
}

/// Applies the export workflow's commands.
fn apply_export(db: &DB, batch: &mut WriteBatch, now_ms: i64, command: &Command) -> Response {
    let load = |id: &str| match get_decoded::<ExportRecord>(db, CF_EXPORTS, id.as_bytes()) {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("export {id} does not exist"))),
        Err(e) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    };
    match command {
        Command::RequestExport(e) => {
            let seq: u64 = match get_decoded(db, CF_SM, KEY_EXPORT_SEQ) {
                Ok(v) => v.unwrap_or(0) + 1,
                Err(err) => return Response::StorageFailed(format!("catalog read failed: {err}")),
            };
            let mut e = e.clone();
            e.id = format!("E-{seq:06}");
            e.requested_ms = now_ms;
            e.status = ExportStatus::Requested;
            (e.decided_by, e.decided_ms, e.manifest, e.signature, e.merkle_root, e.hold_id, e.completed_ms) =
                (None, None, None, None, None, None, None);
            batch.put_cf(cf(db, CF_SM), KEY_EXPORT_SEQ, encode(&seq));
            batch.put_cf(cf(db, CF_EXPORTS), e.id.as_bytes(), encode(&e));
            Response::Created(e.id)
        }
        Command::DecideExport { id, user, approve, reason } => {
            let mut e = match load(id) {
                Ok(e) => e,
                Err(r) => return r,
            };
            if e.status != ExportStatus::Requested {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!("export {id} was already {}", e.status.as_str()),
                );
            }
            if e.requester == *user {
                return Response::Rejected(
                    RejectKind::PermissionDenied,
                    format!("{user} requested export {id} and cannot also decide it: a second person must approve"),
                );
            }
            e.status = if *approve { ExportStatus::Approved } else { ExportStatus::Rejected };
            e.decided_by = Some(user.clone());
            e.decided_ms = Some(now_ms);
            e.reason = reason.clone();
            batch.put_cf(cf(db, CF_EXPORTS), id.as_bytes(), encode(&e));
            Response::Ok
        }
        Command::CompleteExport { id, manifest, signature, merkle_root, hold } => {
            let mut e = match load(id) {
                Ok(e) => e,
                Err(r) => return r,
            };
            if e.status != ExportStatus::Approved {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!("export {id} is {}, not approved", e.status.as_str()),
                );
            }
            if e.decided_ms.is_some_and(|d| now_ms > d + crate::export::APPROVAL_VALID_MS) {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!(
                        "the approval of export {id} has expired ({} days); request it again",
                        crate::export::APPROVAL_VALID_MS / 86_400_000
                    ),
                );
            }
            let hold_id = match place_hold(db, batch, now_ms, hold) {
                Ok(h) => h,
                Err(r) => return r,
            };
            e.status = ExportStatus::Done;
            e.manifest = Some(manifest.clone());
            e.signature = Some(signature.clone());
            e.merkle_root = Some(merkle_root.clone());
            e.hold_id = Some(hold_id);
            e.completed_ms = Some(now_ms);
            batch.put_cf(cf(db, CF_EXPORTS), id.as_bytes(), encode(&e));
            Response::Ok
        }
        _ => Response::Rejected(RejectKind::FailedPrecondition, "not an export command".into()),
    }
}

/// Adds a node under the next free id, consuming its join token.
fn register_node(
    db: &DB,
    batch: &mut WriteBatch,
    now_ms: i64,
    (campus, addr): (&str, &str),
    token_hash: &Option<Hash>,
    founder: Option<NodeId>,
) -> Response {
    let nodes: Vec<NodeRecord> = match read_all(db, CF_NODES) {
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
        Some(h) => match get_decoded::<JoinTokenRecord>(db, CF_JOIN_TOKENS, h) {
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
                batch.put_cf(cf(db, CF_JOIN_TOKENS), h, encode(&t));
            }
            Ok(None) => return Response::Rejected(RejectKind::FailedPrecondition, "unknown join token".into()),
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        },
    }
    let id = next;
    let rec = NodeRecord { id, campus: campus.to_string(), addr: addr.to_string(), joined_ms: now_ms, retired: false };
    batch.put_cf(cf(db, CF_NODES), id.to_be_bytes(), encode(&rec));
    Response::Created(id.to_string())
}

/// Deletes the nominated segments that are expired and unprotected at `now_ms`, writing a
/// receipt for each. Protected or missing ones are skipped and counted as `duplicate`.
fn expire_segments(
    db: &DB,
    batch: &mut WriteBatch,
    now_ms: i64,
    keys: &[(String, i64)],
    segment_count: &mut u64,
) -> Response {
    let holds: Vec<crate::retention::Hold> = match read_all(db, CF_HOLDS) {
        Ok(h) => h,
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let mut seq: u64 = match get_decoded(db, CF_SM, KEY_RECEIPT_SEQ) {
        Ok(v) => v.unwrap_or(0),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let (mut deleted, mut skipped) = (0u32, 0u32);
    let mut seen = std::collections::HashSet::new();
    let mut policies = std::collections::HashMap::new();
    let mut packs = Packs::default();
    for (camera, start_ms) in keys {
        let key = segment_key(camera, *start_ms);
        let rec: SegmentRecord = match get_decoded(db, CF_SEGMENTS, &key) {
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
        batch.put_cf(cf(db, CF_RECEIPTS), seq.to_be_bytes(), encode(&receipt));
        batch.delete_cf(cf(db, CF_BACKUP_QUEUE), &key);
        match get_decoded::<BackupLocation>(db, CF_BACKUP_LOCS, &key) {
            Ok(Some(loc)) => {
                batch.delete_cf(cf(db, CF_BACKUP_LOCS), &key);
                if let Err(e) = packs.release(db, &loc.pack, loc.len) {
                    return Response::StorageFailed(format!("catalog read failed: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        }
        batch.delete_cf(cf(db, CF_SEGMENTS), key);
        deleted += 1;
    }
    if let Err(e) = packs.write(db, batch) {
        return Response::StorageFailed(format!("catalog read failed: {e}"));
    }
    if deleted > 0 {
        batch.put_cf(cf(db, CF_SM), KEY_RECEIPT_SEQ, encode(&seq));
        *segment_count = segment_count.saturating_sub(u64::from(deleted));
    }
    Response::Committed { new: deleted, duplicate: skipped }
}

/// Pack records changed by one command, written back together: a pack whose last live
/// member goes is deleted and its object put in the bucket's trash.
#[derive(Default)]
struct Packs {
    changed: std::collections::BTreeMap<Hash, PackRecord>,
    trashed: Vec<Hash>,
    /// Change in (live packs, their bytes).
    objects: (i64, i64),
    /// Change in (backed-up segments, their blob bytes).
    segments: (i64, i64),
}

impl Packs {
    /// One member of `pack`, `blob_bytes` long, left the catalog.
    fn release(&mut self, db: &DB, pack: &Hash, blob_bytes: u64) -> Result<(), String> {
        self.segments.0 -= 1;
        self.segments.1 -= blob_bytes as i64;
        let rec = match self.changed.get_mut(pack) {
            Some(r) => r,
            None => match get_decoded::<PackRecord>(db, CF_BACKUP_PACKS, pack)? {
                Some(r) => self.changed.entry(*pack).or_insert(r),
                None => return Ok(()), // already trashed
            },
        };
        rec.live = rec.live.saturating_sub(1);
        Ok(())
    }

    fn write(self, db: &DB, batch: &mut WriteBatch) -> Result<(), String> {
        let mut objects = self.objects;
        let mut trash = self.trashed;
        for (hash, rec) in self.changed {
            if rec.live == 0 {
                batch.delete_cf(cf(db, CF_BACKUP_PACKS), hash);
                objects.0 -= 1;
                objects.1 -= rec.bytes as i64;
                trash.push(hash);
            } else {
                batch.put_cf(cf(db, CF_BACKUP_PACKS), hash, encode(&rec));
            }
        }
        if !trash.is_empty() {
            let mut seq: u64 = get_decoded(db, CF_SM, KEY_TRASH_SEQ)?.unwrap_or(0);
            for h in trash {
                seq += 1;
                batch.put_cf(cf(db, CF_BACKUP_TRASH), seq.to_be_bytes(), encode(&h));
            }
            batch.put_cf(cf(db, CF_SM), KEY_TRASH_SEQ, encode(&seq));
        }
        for (key, delta) in [(KEY_BACKUP_OBJECTS, objects), (KEY_BACKED_UP, self.segments)] {
            if delta != (0, 0) {
                let (n, b): (u64, u64) = get_decoded(db, CF_SM, key)?.unwrap_or((0, 0));
                let n = n.saturating_add_signed(delta.0);
                let b = b.saturating_add_signed(delta.1);
                batch.put_cf(cf(db, CF_SM), key, encode(&(n, b)));
            }
        }
        Ok(())
    }
}

/// Records confirmed packs: each member still queued leaves the queue and gets its
/// location. A pack seen before changes nothing; a pack with no member left to record is
/// trashed at once, so no object in the bucket is left without an owner.
fn mark_backed_up(db: &DB, batch: &mut WriteBatch, now_ms: i64, stored: &[StoredPack]) -> Response {
    let (mut new, mut skipped) = (0u32, 0u32);
    let mut seen = std::collections::HashSet::new();
    let mut packs = Packs::default();
    for p in stored {
        let known = matches!(db.get_pinned_cf(cf(db, CF_BACKUP_PACKS), p.hash), Ok(Some(_)));
        if known || packs.changed.contains_key(&p.hash) || packs.trashed.contains(&p.hash) {
            skipped += p.members.len() as u32;
            continue;
        }
        let mut live = 0u32;
        for m in &p.members {
            let k = segment_key(&m.camera, m.start_ms);
            let queued = matches!(db.get_pinned_cf(cf(db, CF_BACKUP_QUEUE), &k), Ok(Some(_)));
            match get_decoded::<SegmentRecord>(db, CF_SEGMENTS, &k) {
                Ok(Some(rec)) if queued && rec.blob_bytes == m.len && seen.insert(k.clone()) => {
                    batch.delete_cf(cf(db, CF_BACKUP_QUEUE), &k);
                    let loc = BackupLocation { pack: p.hash, offset: m.offset, len: m.len };
                    batch.put_cf(cf(db, CF_BACKUP_LOCS), &k, encode(&loc));
                    packs.segments.0 += 1;
                    packs.segments.1 += rec.blob_bytes as i64;
                    new += 1;
                    live += 1;
                }
                _ => skipped += 1,
            }
        }
        if live == 0 {
            packs.trashed.push(p.hash);
        } else {
            let rec = PackRecord { bytes: p.bytes, members: p.members.len() as u32, live, stored_ms: now_ms };
            packs.changed.insert(p.hash, rec);
            packs.objects.0 += 1;
            packs.objects.1 += p.bytes as i64;
        }
    }
    if let Err(e) = packs.write(db, batch) {
        return Response::StorageFailed(format!("catalog read failed: {e}"));
    }
    Response::Committed { new, duplicate: skipped }
}

/// Raises alarms not open yet and clears open ones; anything else changes nothing.
fn apply_alarms(db: &DB, batch: &mut WriteBatch, now_ms: i64, changes: &[AlarmChange]) -> Response {
    let mut seq: u64 = match get_decoded(db, CF_SM, KEY_ALARM_SEQ) {
        Ok(v) => v.unwrap_or(0),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let (mut changed, mut unchanged) = (0u32, 0u32);
    let mut touched = std::collections::HashSet::new();
    for c in changes {
        let mut key = c.kind.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(c.subject.as_bytes());
        if !touched.insert(key.clone()) {
            unchanged += 1;
            continue;
        }
        let open: Option<Vec<u8>> = match db.get_cf(cf(db, CF_ALARMS_OPEN), &key) {
            Ok(v) => v,
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        };
        match (c.raise, open) {
            (true, None) => {
                seq += 1;
                let a = AlarmRecord {
                    id: seq,
                    kind: c.kind.clone(),
                    subject: c.subject.clone(),
                    detail: c.detail.clone(),
                    raised_ms: now_ms,
                    cleared_ms: None,
                    acks: Vec::new(),
                };
                batch.put_cf(cf(db, CF_ALARMS), seq.to_be_bytes(), encode(&a));
                batch.put_cf(cf(db, CF_ALARMS_OPEN), &key, seq.to_be_bytes());
                changed += 1;
            }
            (false, Some(id)) => {
                match get_decoded::<AlarmRecord>(db, CF_ALARMS, &id) {
                    Ok(Some(mut a)) => {
                        a.cleared_ms = Some(now_ms);
                        batch.put_cf(cf(db, CF_ALARMS), &id, encode(&a));
                    }
                    Ok(None) => {}
                    Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
                }
                batch.delete_cf(cf(db, CF_ALARMS_OPEN), &key);
                changed += 1;
            }
            _ => unchanged += 1,
        }
    }
    batch.put_cf(cf(db, CF_SM), KEY_ALARM_SEQ, encode(&seq));
    Response::Committed { new: changed, duplicate: unchanged }
}

/// The smallest key after every queue or catalog key of `camera`.
fn camera_end(camera: &str) -> Vec<u8> {
    let mut k = camera.as_bytes().to_vec();
    k.push(1);
    k
}

pub(super) fn read_all<T: serde::de::DeserializeOwned>(db: &DB, cf_name: &str) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    for kv in db.iterator_cf(cf(db, cf_name), IteratorMode::Start) {
        let (_, v) = kv.map_err(|e| e.to_string())?;
        out.push(decode(&v)?);
    }
    Ok(out)
}

fn policy_of(db: &DB, camera: &str) -> Result<crate::retention::Policy, String> {
    match get_decoded(db, CF_POLICIES, camera.as_bytes())? {
        Some(p) => Ok(p),
        None => Ok(get_decoded(db, CF_POLICIES, b"")?.unwrap_or_default()),
    }
}

/// Appends `req`'s audit event, if any, after the command produced `resp`.
fn apply_audit(db: &DB, batch: &mut WriteBatch, req: &Request, resp: &Response, head: &mut (u64, Hash)) {
    let Some(ev) = &req.audit else { return };
    let mut ev = ev.clone();
    if let Response::Rejected(_, why) = resp {
        ev.outcome = "rejected".into();
        ev.reason = why.clone();
    }
    if let (Command::ExpireSegments { .. }, Response::Committed { new, duplicate }) = (&req.command, resp) {
        ev.detail = format!("{new} segments deleted with receipts, {duplicate} kept (protected or gone)");
    }
    let seq = head.0 + 1;
    let rec = seal_entry(seq, req.time_ms, ev, &head.1);
    batch.put_cf(cf(db, CF_AUDIT), seq.to_be_bytes(), encode(&rec));
    *head = (seq, rec.hash);
    batch.put_cf(cf(db, CF_SM), KEY_AUDIT_HEAD, encode(&*head));
}

/// The Raft state machine over the catalog column families.
#[derive(Debug, Clone)]
pub struct StateMachine {
    db: Arc<DB>,
    snapshot_dir: PathBuf,
    cameras_changed: Arc<tokio::sync::Notify>,
}

impl StateMachine {
    /// A state machine over an opened database, keeping snapshots in `snapshot_dir`.
    pub fn new(db: Arc<DB>, snapshot_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(snapshot_dir)?;
        Ok(StateMachine { db, snapshot_dir: snapshot_dir.to_path_buf(), cameras_changed: Arc::default() })
    }

    /// Read access to the applied state.
    pub fn catalog(&self) -> Catalog {
        Catalog { db: self.db.clone(), cameras_changed: self.cameras_changed.clone() }
    }

    fn read_applied(db: &DB) -> Result<(Option<LogId<NodeId>>, Membership), String> {
        let c = cf(db, CF_SM);
        let applied = match db.get_cf(c, KEY_APPLIED).map_err(|e| e.to_string())? {
            Some(b) => decode(&b)?,
            None => None,
        };
        let membership = match db.get_cf(c, KEY_MEMBERSHIP).map_err(|e| e.to_string())? {
            Some(b) => decode(&b)?,
            None => Membership::default(),
        };
        Ok((applied, membership))
    }

    fn apply_blocking(db: &DB, entries: Vec<Entry<TypeConfig>>) -> StorageResult<Vec<Response>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut count: u64 = get_decoded(db, CF_SM, KEY_SEGMENT_COUNT).map_err(io_err)?.unwrap_or(0);
        let mut head: (u64, Hash) = get_decoded(db, CF_SM, KEY_AUDIT_HEAD).map_err(io_err)?.unwrap_or((0, GENESIS));
        for e in entries {
            let mut batch = WriteBatch::default();
            let sm = cf(db, CF_SM);
            batch.put_cf(sm, KEY_APPLIED, encode(&Some(e.log_id)));
            let resp = match &e.payload {
                EntryPayload::Blank => Response::Ok,
                EntryPayload::Normal(req) => {
                    let before = count;
                    let r = apply_command(db, &mut batch, req, &mut count);
                    match &r {
                        // The store failed under this replica: stop here, fail-stop, rather
                        // than apply the entry differently from the others.
                        Response::StorageFailed(why) => {
                            tracing::error!(log_id = %e.log_id, error = %why, "the catalog could not be read while applying an entry");
                            return Err(StorageIOError::apply(e.log_id, AnyError::error(why)).into());
                        }
                        // A refusal changes nothing but the applied id and its audit entry,
                        // whatever the command had batched before it refused.
                        Response::Rejected(..) => {
                            batch = WriteBatch::default();
                            batch.put_cf(sm, KEY_APPLIED, encode(&Some(e.log_id)));
                            count = before;
                        }
                        _ => {}
                    }
                    if count != before {
                        batch.put_cf(sm, KEY_SEGMENT_COUNT, encode(&count));
                    }
                    apply_audit(db, &mut batch, req, &r, &mut head);
                    r
                }
                EntryPayload::Membership(m) => {
                    batch.put_cf(sm, KEY_MEMBERSHIP, encode(&Membership::new(Some(e.log_id), m.clone())));
                    Response::Ok
                }
            };
            db.write(batch).map_err(|err| StorageIOError::apply(e.log_id, &err))?;
            out.push(resp);
        }
        Ok(out)
    }

    /// Writes every state-machine key of a consistent RocksDB snapshot to `path`.
    fn write_snapshot_file(db: &DB, path: &Path) -> Result<(Option<LogId<NodeId>>, Membership), String> {
        let f = std::fs::File::create(path).map_err(|e| e.to_string())?;
        let mut w = std::io::BufWriter::new(f);
        let out = Self::write_state(db, &mut w)?;
        let f = w.into_inner().map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Writes every state-machine key of a consistent RocksDB snapshot to `w`.
    /// Frame: cf index (u8), key length (u32 LE), key, value length (u32 LE), value.
    pub(super) fn write_state(db: &DB, w: &mut impl Write) -> Result<(Option<LogId<NodeId>>, Membership), String> {
        let snap = db.snapshot();
        let (applied, membership) = {
            let c = cf(db, CF_SM);
            let a = snap.get_cf(c, KEY_APPLIED).map_err(|e| e.to_string())?;
            let m = snap.get_cf(c, KEY_MEMBERSHIP).map_err(|e| e.to_string())?;
            (a.map(|b| decode(&b)).transpose()?.flatten(), m.map(|b| decode(&b)).transpose()?.unwrap_or_default())
        };
        for (i, name) in STATE_CFS.iter().enumerate() {
            for kv in snap.iterator_cf(cf(db, name), IteratorMode::Start) {
                let (k, v) = kv.map_err(|e| e.to_string())?;
                w.write_all(&[i as u8]).map_err(|e| e.to_string())?;
                w.write_all(&(k.len() as u32).to_le_bytes()).map_err(|e| e.to_string())?;
                w.write_all(&k).map_err(|e| e.to_string())?;
                w.write_all(&(v.len() as u32).to_le_bytes()).map_err(|e| e.to_string())?;
                w.write_all(&v).map_err(|e| e.to_string())?;
            }
        }
        Ok((applied, membership))
    }

    /// Replaces the state machine with the contents of a snapshot file.
    pub(super) fn load_snapshot_file(db: &DB, mut r: impl Read) -> Result<(), String> {
        let mut batch = WriteBatch::default();
        for name in STATE_CFS {
            for kv in db.iterator_cf(cf(db, name), IteratorMode::Start) {
                let (k, _) = kv.map_err(|e| e.to_string())?;
                batch.delete_cf(cf(db, name), k);
            }
        }
        let mut tag = [0u8; 1];
        loop {
            match r.read_exact(&mut tag) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.to_string()),
            }
            let name = STATE_CFS
                .get(tag[0] as usize)
                .ok_or_else(|| format!("snapshot names unknown column family {}", tag[0]))?;
            let mut read_chunk = || -> Result<Vec<u8>, String> {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).map_err(|e| e.to_string())?;
                let mut b = vec![0u8; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut b).map_err(|e| e.to_string())?;
                Ok(b)
            };
            let k = read_chunk()?;
            let v = read_chunk()?;
            batch.put_cf(cf(db, name), k, v);
        }
        let mut o = rocksdb::WriteOptions::default();
        o.set_sync(true);
        db.write_opt(batch, &o).map_err(|e| e.to_string())
    }

    fn snapshot_path(&self, id: &str) -> PathBuf {
        self.snapshot_dir.join(format!("{id}.snap"))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let db = self.db.clone();
        let dir = self.snapshot_dir.clone();
        let tmp = dir.join("building.tmp");
        let tmp2 = tmp.clone();
        let (applied, membership) = blocking(move || Self::write_snapshot_file(&db, &tmp2))
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::error(e)))?;
        let id = match applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, std::process::id()),
            None => format!("empty-{}", std::process::id()),
        };
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id: id.clone() };
        let path = self.snapshot_path(&id);
        let meta_bytes = encode(&meta);
        let dir2 = dir.clone();
        let path2 = path.clone();
        blocking(move || -> std::io::Result<()> {
            std::fs::rename(&tmp, &path2)?;
            crate::segment::store::write_file_atomic(&dir2.join(SNAPSHOT_META_FILE), &meta_bytes)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            // Keep only the current snapshot.
            for e in std::fs::read_dir(&dir2)?.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "snap") && p != path2 {
                    let _ = std::fs::remove_file(p);
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot { meta, snapshot: Box::new(f) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<NodeId>>, Membership)> {
        let db = self.db.clone();
        blocking(move || Self::read_applied(&db))
            .await
            .map_err(|e| StorageIOError::read_state_machine(AnyError::error(e)).into())
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let touches_cameras = entries.iter().any(|e| {
            matches!(
                &e.payload,
                EntryPayload::Normal(Request {
                    command: Command::AddCamera(_)
                        | Command::SeedCamera(_)
                        | Command::RemoveCamera { .. }
                        | Command::AssignCamera { .. },
                    ..
                })
            )
        });
        let out = if light(&entries) {
            // A lone small entry (a fetch's audit record, one segment) is a few RocksDB
            // operations on cached data: applying it here saves two thread switches on the
            // latency path of every single commit (docs/benchmarks.md, P3).
            Self::apply_blocking(&self.db, entries)
        } else {
            let db = self.db.clone();
            blocking(move || Self::apply_blocking(&db, entries)).await
        };
        if touches_cameras {
            self.cameras_changed.notify_one();
        }
        out
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<tokio::fs::File>> {
        let p = self.snapshot_dir.join("receiving.tmp");
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> StorageResult<()> {
        use tokio::io::AsyncSeekExt;
        let mut f = *snapshot;
        f.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let std_file = f.into_std().await;
        let db = self.db.clone();
        let meta2 = meta.clone();
        let dest = self.snapshot_path(&meta.snapshot_id);
        let dir = self.snapshot_dir.clone();
        blocking(move || -> Result<(), String> {
            Self::load_snapshot_file(&db, std::io::BufReader::new(&std_file))?;
            let mut b = WriteBatch::default();
            b.put_cf(cf(&db, CF_SM), KEY_APPLIED, encode(&meta2.last_log_id));
            b.put_cf(cf(&db, CF_SM), KEY_MEMBERSHIP, encode(&meta2.last_membership));
            db.write(b).map_err(|e| e.to_string())?;
            std::fs::rename(dir.join("receiving.tmp"), &dest).map_err(|e| e.to_string())?;
            crate::segment::store::write_file_atomic(&dir.join(SNAPSHOT_META_FILE), &encode(&meta2))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::error(e)))?;
        self.cameras_changed.notify_one();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let meta_path = self.snapshot_dir.join(SNAPSHOT_META_FILE);
        let meta: SnapshotMeta<NodeId, BasicNode> = match tokio::fs::read(&meta_path).await {
            Ok(b) => decode(&b).map_err(|e| StorageIOError::read_snapshot(None, AnyError::error(e)))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageIOError::read_snapshot(None, &e).into()),
        };
        match tokio::fs::File::open(self.snapshot_path(&meta.snapshot_id)).await {
            Ok(f) => Ok(Some(Snapshot { meta, snapshot: Box::new(f) })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageIOError::read_snapshot(Some(meta.signature()), &e).into()),
        }
    }
}

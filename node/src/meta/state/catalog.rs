//! [`Catalog`]: read access to the applied state.

use std::sync::Arc;

use rocksdb::{IteratorMode, ReadOptions, DB};

use super::retention::policy_of;
use super::table::*;
use super::{node_key_key, seeded_camera_key};
use crate::audit::{AuditRecord, GENESIS};
use crate::meta::db::{
    cf, segment_key, time_key, CF_ALARMS, CF_ALARMS_OPEN, CF_AUDIT, CF_BACKUP_QUEUE, CF_BACKUP_TRASH, CF_DUTY,
    CF_POLICIES, CF_RECEIPTS, CF_SEGMENTS, CF_SM, CF_USERS,
};
use crate::meta::types::Hash;
use crate::meta::types::{
    decode, AlarmRecord, BackupLocation, Camera, ChangeRecord, Command, DeletionReceipt, DutyRecord, ExportRecord,
    FaultRecord, HandoverAcceptance, JoinTokenRecord, NodeId, NodeRecord, PackRecord, SegmentRecord, SensitivePeriod,
    TokenRecord, User,
};

/// Read access to the applied catalog. Cheap to clone; every method blocks briefly on
/// RocksDB, so async callers wrap calls in `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(in crate::meta) db: Arc<DB>,
    pub(in crate::meta) cameras_changed: Arc<tokio::sync::Notify>,
}

impl Catalog {
    /// Notified whenever an applied entry changes a camera (added, removed, moved), so
    /// the recorder reconciles at once on every node, not only the one that proposed.
    pub fn cameras_changed(&self) -> Arc<tokio::sync::Notify> {
        self.cameras_changed.clone()
    }

    /// The record under `key` in table `t`.
    fn read<K: Key + ?Sized, V: crate::meta::schema::Record + serde::Serialize>(
        &self,
        t: &Table<K, V>,
        key: &K,
    ) -> crate::Result<Option<V>> {
        t.get(&self.db, key).map_err(crate::Error::Internal)
    }

    /// The value of cell `c`.
    fn cell<V: crate::meta::schema::Record + serde::Serialize>(&self, c: &Cell<V>) -> crate::Result<Option<V>> {
        c.get(&self.db).map_err(crate::Error::Internal)
    }

    /// Every camera, active or retired, in id order.
    pub fn cameras(&self) -> crate::Result<Vec<Camera>> {
        CAMERAS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// Every camera's standby record (cameras never marked have none).
    pub fn standbys(&self) -> crate::Result<std::collections::BTreeMap<String, crate::meta::types::Standby>> {
        let mut out = std::collections::BTreeMap::new();
        for cam in self.cameras()? {
            if let Some(sb) = self.read(&STANDBY, &cam.id)? {
                out.insert(cam.id, sb);
            }
        }
        Ok(out)
    }

    /// One camera's standby record, if it was ever marked.
    pub fn standbys_of(&self, camera: &str) -> crate::Result<Option<crate::meta::types::Standby>> {
        self.read(&STANDBY, camera)
    }

    /// Whether a camera with this id was ever registered from a config file.
    pub fn camera_seeded(&self, id: &str) -> crate::Result<bool> {
        Ok(self.db.get_pinned_cf(cf(&self.db, CF_SM), seeded_camera_key(id))?.is_some())
    }

    /// A camera by id.
    pub fn camera(&self, id: &str) -> crate::Result<Option<Camera>> {
        self.read(&CAMERAS, id)
    }

    /// Whether footage of `camera` between `from_ms` and `to_ms` needs a grant: the camera
    /// is sensitive now, or was while any of that footage was recorded. Sensitivity
    /// belongs to the footage: removing the camera, re-adding its id or clearing the flag
    /// does not open what was recorded while it was set.
    pub fn footage_sensitive(&self, camera: &str, from_ms: i64, to_ms: i64) -> crate::Result<bool> {
        if self.camera(camera)?.is_some_and(|c| c.sensitive) {
            return Ok(true);
        }
        let periods: Vec<SensitivePeriod> = self.read(&SENSITIVITY, camera)?.unwrap_or_default();
        Ok(periods.iter().any(|p| p.overlaps(from_ms, to_ms)))
    }

    /// The periods during which `camera` was marked sensitive, oldest first.
    pub fn sensitive_periods(&self, camera: &str) -> crate::Result<Vec<SensitivePeriod>> {
        Ok(self.read(&SENSITIVITY, camera)?.unwrap_or_default())
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
        self.read(&SEGMENTS, &segment_key(camera, start_ms))
    }

    /// The clock flag of the segment of `camera` starting at `start_ms`, if it was
    /// recorded while its recorder's clock was skewed.
    pub fn segment_clock(&self, camera: &str, start_ms: i64) -> crate::Result<Option<crate::meta::SegmentClock>> {
        self.read(&SEGMENT_CLOCKS, &segment_key(camera, start_ms))
    }

    /// Segments of `camera` overlapping `[from_ms, to_ms)` whose footage is lost for good:
    /// (start, what is known of the loss), oldest first.
    pub fn lost_in(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> crate::Result<Vec<(i64, crate::meta::types::LostSegment)>> {
        let c = cf(&self.db, crate::meta::db::CF_LOST);
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(segment_key(camera, to_ms));
        let seek = segment_key(camera, from_ms.saturating_sub(86_400_000));
        let mut out = Vec::new();
        for kv in self.db.iterator_cf_opt(c, opts, IteratorMode::From(&seek, rocksdb::Direction::Forward)) {
            let (k, v) = kv?;
            let lost: crate::meta::types::LostSegment = decode(&v).map_err(crate::Error::Internal)?;
            let start = crate::meta::db::time_from_key(&k[k.len().saturating_sub(8)..]);
            if lost.end_ms > from_ms {
                out.push((start, lost));
            }
        }
        Ok(out)
    }

    /// How many clock-jump confirmations of node `id` were accepted.
    pub fn clock_confirmations(&self, id: NodeId) -> crate::Result<u64> {
        Ok(CLOCK_CONFIRMS
            .get(&self.db, &super::clocks::clock_confirm_key(id))
            .map_err(crate::Error::Internal)?
            .unwrap_or(0))
    }

    /// The reference still of `camera` for picture checks, if one is stored.
    pub fn picture_reference(&self, camera: &str) -> crate::Result<Option<crate::meta::types::PictureStill>> {
        self.read(&PICTURE_REFS, camera)
    }

    /// `camera`'s privacy zones (none if it has none).
    pub fn privacy_zones(&self, camera: &str) -> crate::Result<Vec<crate::zones::Zone>> {
        Ok(self.read(&PRIVACY_ZONES, camera)?.unwrap_or_default())
    }

    /// What redacted export `id` asked for and its approver decided; `None` for an export
    /// that asked for no redaction.
    pub fn export_redaction(&self, id: &str) -> crate::Result<Option<crate::meta::types::ExportRedaction>> {
        self.read(&REDACTIONS, id)
    }

    /// `user`'s console password, if they enrolled one.
    pub fn credential(&self, user: &str) -> crate::Result<Option<crate::meta::types::Credential>> {
        self.read(&CREDENTIALS, user)
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
        Ok(self.cell(&SEGMENT_COUNT)?.unwrap_or(0))
    }

    /// The token stored under `token_hash` and its user.
    pub fn token(&self, token_hash: &Hash) -> crate::Result<Option<(TokenRecord, User)>> {
        let Some(t) = self.read(&TOKENS, token_hash)? else { return Ok(None) };
        Ok(self.user(&t.user)?.map(|u| (t, u)))
    }

    /// One user.
    pub fn user(&self, name: &str) -> crate::Result<Option<User>> {
        self.read(&USERS, name)
    }

    /// Every user, by name.
    pub fn users(&self) -> crate::Result<Vec<User>> {
        USERS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// Every token record (never the secrets, which are not stored).
    pub fn tokens(&self) -> crate::Result<Vec<TokenRecord>> {
        TOKENS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// The cluster version: the newest format every voter decodes, and so the newest
    /// whose commands may be proposed.
    pub fn cluster_version(&self) -> crate::Result<u32> {
        super::cluster_version(&self.db).map_err(crate::Error::Internal)
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
        HOLDS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// One hold.
    pub fn hold(&self, id: &str) -> crate::Result<Option<crate::retention::Hold>> {
        self.read(&HOLDS, id)
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
            // A segment kept because its recorder's clock was slow ends the camera's scan
            // as a young one does: the segments after it were recorded later, so this pass
            // leaves them too (at worst they are kept a little longer), and a slow
            // recorder's weeks of flagged footage are not read again on every pass.
            let expired = policy.expired(rec.end_ms, now_ms) && !self.younger_than_stamped(&rec, policy, now_ms)?;
            if expired {
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

    /// Whether `rec` was recorded while its recorder's clock was behind the cluster's
    /// (flagged, see [`Self::segment_clock`]) by so much that, aged by the corrected time,
    /// it is not past its policy yet. Its stamps make it look older than it is: a
    /// recorder whose clock is weeks slow (a dead BIOS battery before NTP) would
    /// otherwise have its footage nominated for expiry as soon as it is committed. A clock
    /// ahead never makes footage expire earlier than its stamps say.
    fn younger_than_stamped(
        &self,
        rec: &SegmentRecord,
        policy: crate::retention::Policy,
        now_ms: i64,
    ) -> crate::Result<bool> {
        Ok(match self.segment_clock(&rec.camera, rec.start_ms)? {
            Some(flag) if flag.offset_ms < 0 => !policy.expired(rec.end_ms.saturating_sub(flag.offset_ms), now_ms),
            _ => false,
        })
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
                if let Some(rec) = self.read(&SEGMENTS, k)? {
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
        Ok(self.cell(&BACKED_UP)?.unwrap_or((0, 0)))
    }

    /// Open alarms, oldest first.
    pub fn open_alarms(&self) -> crate::Result<Vec<AlarmRecord>> {
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(cf(&self.db, CF_ALARMS_OPEN), IteratorMode::Start) {
            let (_, id) = kv?;
            if let Some(a) = self.read(&ALARMS, &id)? {
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
        self.read(&ALARMS, &id.to_be_bytes())
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
        Ok(self.cell(&BACKUP_OBJECTS)?.unwrap_or((0, 0)))
    }

    /// Where a segment is in the backup bucket, once backed up.
    pub fn backup_location(&self, camera: &str, start_ms: i64) -> crate::Result<Option<BackupLocation>> {
        self.read(&BACKUP_LOCS, &segment_key(camera, start_ms))
    }

    /// A pack that still holds live footage.
    pub fn backup_pack(&self, hash: &Hash) -> crate::Result<Option<PackRecord>> {
        self.read(&BACKUP_PACKS, hash)
    }

    /// The packs in the bucket that hold footage an active hold covers, at most `limit`;
    /// the flag is true when there were more. Linear in the held footage.
    pub fn held_packs(&self, limit: usize) -> crate::Result<(std::collections::BTreeSet<Hash>, bool)> {
        /// Segments read per step of one camera's held range.
        const PAGE: usize = 1024;
        let mut out = std::collections::BTreeSet::new();
        for hold in self.holds()?.into_iter().filter(|h| h.active()) {
            let to = hold.to_ms.unwrap_or(i64::MAX);
            for camera in &hold.cameras {
                let mut from = hold.from_ms;
                loop {
                    let (page, more) = self.search(camera, from, to, PAGE)?;
                    for rec in &page {
                        if let Some(loc) = self.backup_location(camera, rec.start_ms)? {
                            if out.len() == limit && !out.contains(&loc.pack) {
                                return Ok((out, true));
                            }
                            out.insert(loc.pack);
                        }
                    }
                    match page.last() {
                        Some(last) if more && last.end_ms > from => from = last.end_ms,
                        _ => break,
                    }
                }
            }
        }
        Ok((out, false))
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
        EXPORTS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// One export.
    pub fn export(&self, id: &str) -> crate::Result<Option<ExportRecord>> {
        self.read(&EXPORTS, id)
    }

    /// Every node, active or retired, by id.
    pub fn nodes(&self) -> crate::Result<Vec<NodeRecord>> {
        NODES.all(&self.db).map_err(crate::Error::Internal)
    }

    /// One node.
    pub fn node(&self, id: NodeId) -> crate::Result<Option<NodeRecord>> {
        self.read(&NODES, &id)
    }

    /// The pinned key hash of node `id`'s certificate, if pinned.
    pub fn node_key(&self, id: NodeId) -> crate::Result<Option<Hash>> {
        NODE_KEYS.get(&self.db, &node_key_key(id)).map_err(crate::Error::Internal)
    }

    /// The join token stored under the BLAKE3 of its secret.
    /// Changes, newest first: every one with `all`, else those still pending at `now_ms`.
    pub fn changes(&self, all: bool, now_ms: i64) -> crate::Result<Vec<ChangeRecord>> {
        let mut v: Vec<ChangeRecord> = CHANGES.all(&self.db).map_err(crate::Error::Internal)?;
        v.retain(|c| all || c.state_at(now_ms) == "pending");
        v.reverse();
        Ok(v)
    }

    pub fn change(&self, id: u64) -> crate::Result<Option<ChangeRecord>> {
        self.read(&CHANGES, &id)
    }

    /// Faults, newest first: every one with `all`, else the open ones.
    pub fn faults(&self, all: bool) -> crate::Result<Vec<FaultRecord>> {
        let mut v: Vec<FaultRecord> = FAULTS.all(&self.db).map_err(crate::Error::Internal)?;
        v.retain(|f| all || f.resolved_ms.is_none());
        v.reverse();
        Ok(v)
    }

    /// Shift definitions, by name.
    pub fn shifts(&self) -> crate::Result<Vec<crate::shifts::ShiftDef>> {
        SHIFTS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// Duty sign-offs, oldest first.
    pub fn signoffs(&self) -> crate::Result<Vec<crate::meta::types::DutySignoff>> {
        SIGNOFFS.all(&self.db).map_err(crate::Error::Internal)
    }

    /// Who accepted handover `seq`, if anyone has.
    pub fn handover_acceptance(&self, seq: u64) -> crate::Result<Option<HandoverAcceptance>> {
        self.read(&HANDOVER_ACCEPTS, &seq)
    }

    /// Seals, oldest first.
    pub fn seals(&self) -> crate::Result<Vec<custos_evidence::seal::SealFile>> {
        SEALS.all(&self.db).map_err(crate::Error::Internal)
    }

    pub fn seal(&self, seq: u64) -> crate::Result<Option<custos_evidence::seal::SealFile>> {
        self.read(&SEALS, &seq)
    }

    /// The newest seal's number, hash and last receipt (zeros before the first).
    pub fn seal_head(&self) -> crate::Result<(u64, Hash, u64)> {
        Ok(self.cell(&SEAL_HEAD)?.unwrap_or((0, [0; 32], 0)))
    }

    /// The last deletion receipt's number (0 before the first).
    pub fn receipt_head(&self) -> crate::Result<u64> {
        Ok(self.cell(&RECEIPT_SEQ)?.unwrap_or(0))
    }

    /// The change that asked for the join token hashing to `hash`, if there is one.
    pub fn join_token_change(&self, hash: &Hash) -> crate::Result<Option<ChangeRecord>> {
        let v: Vec<ChangeRecord> = CHANGES.all(&self.db).map_err(crate::Error::Internal)?;
        Ok(v.into_iter()
            .rev()
            .find(|c| matches!(&c.effect, Command::CreateJoinToken { token_hash, .. } if token_hash == hash)))
    }

    pub fn join_token(&self, hash: &Hash) -> crate::Result<Option<JoinTokenRecord>> {
        self.read(&JOIN_TOKENS, hash)
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
        self.read(&DUTY, &seq)
    }

    /// Sequence number and hash of the newest audit entry (0 and zeros when empty).
    pub fn audit_head(&self) -> crate::Result<(u64, Hash)> {
        Ok(self.cell(&AUDIT_HEAD)?.unwrap_or((0, GENESIS)))
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

/// The smallest key after every queue or catalog key of `camera`.
fn camera_end(camera: &str) -> Vec<u8> {
    let mut k = camera.as_bytes().to_vec();
    k.push(1);
    k
}

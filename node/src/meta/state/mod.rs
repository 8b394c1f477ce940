//! The state machine: applies committed commands to the catalog column families, serves
//! reads of the applied state ([`Catalog`]), and builds and installs snapshots.
//!
//! Each entry is applied as one RocksDB `WriteBatch` that also records the applied log
//! id, so the catalog and the applied index never disagree. All RocksDB work runs on the
//! blocking pool.
//!
//! This module holds the keys, the single dispatch over commands (`apply_command`), the
//! audit append, and the Raft state machine and its snapshots. Each aggregate's commands
//! are applied in a submodule (`cameras`, `segments`, `users`, `retention`, `exports`,
//! `nodes`, `backup`, `alarms`); the read side is `catalog`.

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
use rocksdb::{IteratorMode, WriteBatch, DB};

use super::db::{cf, CF_SM, STATE_CFS};
use super::schema;
use super::types::{decode, encode, Command, NodeId, RejectKind, Request, Response, TypeConfig, FORMAT_V1};
use crate::audit::{seal_entry, Outcome, GENESIS};
use crate::meta::types::Hash;
use table::*;

mod alarms;
mod backup;
mod cameras;
mod catalog;
mod changes;
mod clocks;
mod duty;
mod exports;
mod nodes;
mod pictures;
mod retention;
mod seals;
mod segments;
pub(crate) mod table;
mod users;

pub use catalog::Catalog;
pub use clocks::{EXPIRY_TIME_AHEAD_MAX_MS, SEGMENT_CLOCKS_MAX};
pub use users::CONSOLE_SESSION;

pub(super) const KEY_APPLIED: &[u8] = b"applied";
pub(super) const KEY_MEMBERSHIP: &[u8] = b"membership";
pub(super) const KEY_SEGMENT_COUNT: &[u8] = b"segment_count";
pub(super) const KEY_AUDIT_HEAD: &[u8] = b"audit_head";
const KEY_HOLD_SEQ: &[u8] = b"hold_seq";
pub(super) const KEY_RECEIPT_SEQ: &[u8] = b"receipt_seq";
const KEY_EXPORT_SEQ: &[u8] = b"export_seq";
/// (segments, blob bytes) the backup store has confirmed.
pub(super) const KEY_BACKED_UP: &[u8] = b"backed_up";
/// (pack objects, bytes) in the bucket that hold live footage.
pub(super) const KEY_BACKUP_OBJECTS: &[u8] = b"backup_objects";
/// The last alarm id given.
const KEY_ALARM_SEQ: &[u8] = b"alarm_seq";
/// The last duty record number given.
const KEY_DUTY_SEQ: &[u8] = b"duty_seq";
/// The cluster version (u32): the newest format every voter decodes. Absent in a catalog
/// written before there was one, which is format 1's.
pub(super) const KEY_CLUSTER_VERSION: &[u8] = b"cluster_version";

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
            Command::MarkSegmentClocks(v) => v.len() <= LIGHT_BATCH,
            Command::RetireNode { .. }
            | Command::RemoveCamera { .. }
            | Command::CompleteExport { .. }
            | Command::DecideChange { .. } => false,
            _ => true,
        },
    }
}

fn io_err(e: impl std::fmt::Display) -> StorageIOError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string()))
}

/// The cluster version the catalog records.
pub(super) fn cluster_version(db: &DB) -> Result<u32, String> {
    Ok(CLUSTER_VERSION.get(db)?.unwrap_or(FORMAT_V1.into()))
}

/// Applies one command into `batch`. Pure with respect to the database state it reads.
/// `term` is the term of the leader that stamped the entry.
fn apply_command(db: &DB, batch: &mut WriteBatch, req: &Request, term: u64, segment_count: &mut u64) -> Response {
    // A command of a newer format than the cluster's is refused here as well as when
    // proposed, so a replica never applies what another would refuse.
    if schema::introduced_in(&req.command).is_some() {
        match cluster_version(db) {
            Ok(v) => {
                if let Some(why) = schema::too_new(&req.command, v) {
                    return Response::Rejected(RejectKind::FailedPrecondition, why);
                }
            }
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        }
    }
    match &req.command {
        Command::AddCamera(cam) => cameras::add_camera(db, batch, req, cam),
        Command::SeedCamera(cam) => cameras::seed_camera(db, batch, req, cam),
        Command::RemoveCamera { id } => cameras::remove_camera(db, batch, req, id),
        Command::CommitSegments(segs) => segments::commit_segments(db, batch, segs, segment_count),
        Command::CreateUser { user, token_hash, token } => users::create_user(db, batch, req, user, token_hash, token),
        Command::FoundCluster(founders) => users::found_cluster(db, batch, req, founders),
        Command::DisableUser { name } => users::disable_user(db, batch, name),
        Command::IssueToken { token_hash, token } => users::issue_token(db, batch, req, token_hash, token),
        Command::RevokeToken { id } => users::revoke_token(db, batch, id),
        Command::GrantCamera { user, camera, grant } => cameras::grant_camera(db, batch, user, camera, *grant),
        Command::SetSensitive { camera, sensitive } => cameras::set_sensitive(db, batch, req, camera, *sensitive),
        Command::SetPolicy { camera, policy } => retention::set_policy(db, batch, camera, policy),
        Command::PlaceHold(h) => match retention::place_hold(db, batch, req.time_ms, h) {
            Ok(id) => Response::Created(id),
            Err(r) => r,
        },
        Command::ApproveHoldRelease { id, user } => retention::approve_hold_release(db, batch, req, id, user),
        // Never later than the leader's own clock, nor than the time the voters agree on.
        // And never further ahead of the previous expiry than the leader's clock moved.
        Command::ExpireSegments { at_ms, segments } => {
            let at = (*at_ms).min(req.time_ms);
            if let Some(refused) = clocks::check_expiry_time(db, at, req.time_ms, term) {
                return refused;
            }
            let r = retention::expire_segments(db, batch, at, segments, segment_count);
            if matches!(r, Response::Committed { .. }) {
                clocks::note_expiry(db, batch, at, req.time_ms, term);
            }
            r
        }
        Command::Audit => Response::Ok,
        Command::CreateJoinToken { token_hash, token } => nodes::create_join_token(db, batch, req, token_hash, token),
        Command::RegisterNode { campus, addr, token_hash, founder } => {
            nodes::register_node(db, batch, req.time_ms, (campus, addr), token_hash, *founder)
        }
        Command::RetireNode { id } => nodes::retire_node(db, batch, *id),
        Command::AssignCamera { camera, recorder } => cameras::assign_camera(db, batch, req, camera, *recorder),
        Command::MarkBackedUp(packs) => backup::mark_backed_up(db, batch, req.time_ms, packs),
        Command::PinNodeKey { id, key_hash } => nodes::pin_node_key(db, batch, *id, key_hash),
        Command::Alarms(changes) => alarms::apply_alarms(db, batch, req.time_ms, changes),
        Command::AckAlarm { id, user, note } => alarms::ack_alarm(db, batch, req, *id, user, note),
        Command::RecordDuty(d) => alarms::record_duty(db, batch, req, d),
        Command::RequestExport(_)
        | Command::DecideExport { .. }
        | Command::CompleteExport { .. }
        | Command::RequestRedactedExport { .. }
        | Command::DecideRedactedExport { .. } => exports::apply_export(db, batch, req.time_ms, &req.command),
        Command::SetPrivacyZones { camera, zones } => cameras::set_privacy_zones(db, batch, camera, zones),
        Command::AddReplicas(adds) => segments::add_replicas(db, batch, adds),
        Command::RequestChange(rec) => changes::request(db, batch, req.time_ms, rec),
        Command::DecideChange { .. } => changes::decide(db, batch, req, segment_count),
        Command::SetClusterVersion(v) => nodes::set_cluster_version(db, batch, *v),
        Command::StoreSeal(file) => seals::store_seal(db, batch, file),
        Command::ReportFault(f) => duty::report_fault(db, batch, req, f),
        Command::ResolveFault { id, user, note } => duty::resolve_fault(db, batch, req, *id, user, note),
        Command::AcceptHandover { seq, user, note } => duty::accept_handover(db, batch, req, *seq, user, note),
        Command::DefineShift(s) => duty::define_shift(db, batch, req, s),
        Command::SignDuty(s) => duty::sign_duty(db, batch, req, s),
        Command::ConfirmClock { node } => clocks::confirm_clock(db, batch, *node),
        Command::MarkSegmentClocks(flags) => clocks::mark_segment_clocks(db, batch, flags),
        Command::SetPictureReference { camera, still } => pictures::set_reference(db, batch, camera, still.as_ref()),
        Command::SetPassword { user, token_hash, phc } => users::set_password(db, batch, req, user, token_hash, phc),
        Command::ResetPassword { user, token_hash, token } => {
            users::reset_password(db, batch, req, user, token_hash, token)
        }
        Command::SetStandby { camera, wanted } => cameras::set_standby(db, batch, camera, *wanted),
        Command::AssignStandby { camera, node } => cameras::assign_standby(db, batch, camera, *node),
        Command::TakeOver { camera, from, to } => cameras::take_over(db, batch, req, camera, *from, *to),
    }
}

/// Appends `req`'s audit event, if any, after the command produced `resp`, then `more`
/// (the effect of an accepted change, in its requester's name).
fn apply_audit(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    resp: &Response,
    more: Option<crate::audit::AuditEvent>,
    head: &mut (u64, Hash),
) {
    let Some(ev) = &req.audit else { return };
    let mut ev = ev.clone();
    if let Response::Rejected(_, why) = resp {
        ev.outcome = Outcome::Rejected;
        ev.reason = why.clone();
    }
    if let (Command::ExpireSegments { .. }, Response::Committed { new, duplicate, .. }) = (&req.command, resp) {
        ev.detail = format!("{new} segments deleted with receipts, {duplicate} kept (protected or gone)");
    }
    if let (Command::RequestChange(_), Response::Created(id)) = (&req.command, resp) {
        ev.detail = format!("change {id}: {}", ev.detail);
    }
    for ev in std::iter::once(ev).chain(more) {
        let seq = head.0 + 1;
        let rec = seal_entry(seq, req.time_ms, ev, &head.1);
        AUDIT.put(db, batch, &seq, &rec);
        *head = (seq, rec.hash);
    }
    AUDIT_HEAD.put(db, batch, &*head);
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
        let mut count: u64 = SEGMENT_COUNT.get(db).map_err(io_err)?.unwrap_or(0);
        let mut head: (u64, Hash) = AUDIT_HEAD.get(db).map_err(io_err)?.unwrap_or((0, GENESIS));
        for e in entries {
            let mut batch = WriteBatch::default();
            let sm = cf(db, CF_SM);
            batch.put_cf(sm, KEY_APPLIED, encode(&Some(e.log_id)));
            let resp = match &e.payload {
                EntryPayload::Blank => Response::Ok,
                EntryPayload::Normal(req) => {
                    let before = count;
                    let r = apply_command(db, &mut batch, req, e.log_id.leader_id.term, &mut count);
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
                    let more = changes::effect_audit(db, req, &r);
                    apply_audit(db, &mut batch, req, &r, more, &mut head);
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
            crate::files::write_file_atomic(&dir2.join(SNAPSHOT_META_FILE), &meta_bytes)
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
                        | Command::AssignCamera { .. }
                        | Command::SetStandby { .. }
                        | Command::AssignStandby { .. }
                        | Command::TakeOver { .. }
                        | Command::DecideChange { approve: true, .. },
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
            crate::files::write_file_atomic(&dir.join(SNAPSHOT_META_FILE), &encode(&meta2)).map_err(|e| e.to_string())
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

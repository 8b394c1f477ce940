//! Continuous backup of sealed blobs to S3-compatible storage (`object_store`).
//!
//! Every committed segment enters the catalog's backup queue (the `CommitSegments` entry
//! puts it there). On the leader, this worker walks the queue one camera at a time,
//! reads each sealed blob (this node's copy, or a replica's, checked against
//! `blob_hash`) and uploads a camera's consecutive segments together as one pack object
//! ([`pack`]): unchanged sealed blobs — already age-encrypted, so the bucket never sees
//! plaintext — followed by a sealed index. Once the store has confirmed a pack, the
//! worker commits `MarkBackedUp`, which records each segment's place in the pack. A
//! segment leaves the queue only after its pack is stored; a failed upload is retried
//! with back-off and reported in `custos status` until it succeeds.
//!
//! The same worker also
//! - stores an encrypted snapshot of the whole catalog and the cluster's keys every
//!   `snapshot_every_s` ([`snapshot`]), signed with the cluster's key and naming the
//!   snapshot stored before it, keeping the newest [`snapshot::KEEP_SNAPSHOTS`];
//! - deletes packs from the bucket by following the catalog's bucket trash with a cursor
//!   kept in the bucket. A pack enters the trash when expiry has deleted its last live
//!   member, so a pack holding any held footage is never removed;
//! - on a bucket with S3 Object Lock ([`lock`], `backup.object_lock`), writes every pack
//!   in COMPLIANCE mode until its newest segment's end plus its camera's `min_days`,
//!   snapshots and seals for the 30-day floor, and keeps a legal hold on every pack with
//!   footage under an active hold until the hold's two-person release.
//!
//! Key layout under the configured prefix:
//!
//! | key | what |
//! |---|---|
//! | `packs/<first 2 hex>/<pack hash hex>` | sealed blobs of one camera's run, then a sealed index |
//! | `snapshots/<ms>-<index>.age` | catalog + keys, signed, naming the previous snapshot, age-encrypted |
//! | `state/trash-cursor` | the last bucket trash entry applied to the bucket |
//! | `state/trash-locked` | Object Lock: trashed packs still under retention, retried hourly |
//! | `state/legal-holds` | Object Lock: packs this cluster put a legal hold on |
//! | `seals/<seq, 10 digits>-<day>.json` | the daily seals (`custos_evidence::seal::SealFile`) |
//!
//! Credentials come from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`) or from an AWS-style
//! credentials file named by `backup.credentials_file`; they are never written to the
//! catalog or the logs.

mod expire;
pub mod lock;
pub mod pack;
pub mod restore;
pub mod snapshot;
mod snapshot_round;
pub mod verify;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::cluster::replicate::Replicator;
use crate::config::{BackupConfig, ObjectLock};
use crate::error::{Error, Result};
use crate::meta::{Command, Meta, SegmentRecord, StoredPack};
use crate::retention::{Hold, Policy, DAY_MS, MIN_DAYS_FLOOR};
use crate::segment::{BlobStore, Hash, Keys};

/// Cameras whose queues one round looks at.
pub const ROUND_CAMERAS: usize = 64;
/// Queued segments of one camera one round looks at.
pub const ROUND_RUN: usize = 512;
/// Packs one round uploads at most.
pub const ROUND_PACKS: usize = 16;
/// Uploads in flight at once.
pub const BACKUP_CONCURRENCY: usize = 4;
/// Pause between rounds while a sweep over many cameras' queues is unfinished.
const SWEEP_PAUSE: Duration = Duration::from_millis(200);
/// Pause when the queue is empty.
pub const BACKUP_IDLE: Duration = Duration::from_secs(2);
/// Longest pause between retries after a failure.
pub const BACKUP_RETRY_MAX: Duration = Duration::from_secs(30);

/// Trash entries followed per step of bucket expiry.
const TRASH_PAGE: usize = 256;
/// Pause before trashed packs that were still under Object Lock retention are tried again.
/// Retention normally ends before expiry (`min_days <= max_days`), so a locked pack in the
/// trash means a raised-then-lowered `min_days` or clocks that disagree: hourly is enough.
pub const TRASH_LOCKED_RETRY: Duration = Duration::from_secs(3600);
/// Trashed packs kept for their retention at most; when full, the trash waits for them.
pub const TRASH_LOCKED_MAX: usize = 4096;
/// Legal holds turned on or off per round.
pub const LEGAL_HOLDS_ROUND: usize = 256;
/// Packs under legal hold the worker tracks at most.
pub const HELD_PACKS_MAX: usize = 100_000;
/// A retain-until date closer than this is not set (S3 refuses dates in the past).
const RETAIN_MIN_AHEAD_MS: i64 = 60_000;
/// Where the bucket lists trashed packs still under retention.
pub const TRASH_LOCKED: &str = "state/trash-locked";
/// Where the bucket lists the packs this cluster put a legal hold on.
pub const LEGAL_HOLDS: &str = "state/legal-holds";

/// What the worker last saw, for `custos status`.
#[derive(Debug, Default, Clone)]
pub struct BackupState {
    /// The store's last error, cleared by the next success.
    pub last_error: Option<String>,
    /// Wall-clock ms of the last confirmed upload.
    pub last_success_ms: i64,
    /// The newest snapshot in the bucket: key, creation time, size.
    pub last_snapshot: Option<(String, i64, u64)>,
    /// Hex BLAKE3 of the sealed object of the last snapshot this worker stored, or found
    /// in the bucket signed by the cluster's key (`Some("")`: none); the next snapshot
    /// names it. Forgotten when leadership is lost.
    previous_snapshot: Option<String>,
    /// Objects deleted from the bucket after their segments expired.
    pub expired_objects: u64,
    /// The bucket's trash cursor, once read (forgotten when leadership is lost).
    trash_cursor: Option<u64>,
    /// The newest seal known to be in the bucket, once listed.
    seals_uploaded: Option<u64>,
    /// The camera whose queue the last round looked at last; the next round starts after it.
    sweep_after: Option<String>,
    /// The Object Lock client once the bucket was checked (`Some(None)`: not locking).
    lock: Option<Option<Arc<lock::Locker>>>,
    /// Trashed packs still under retention, once read from the bucket.
    trash_locked: Option<Vec<Hash>>,
    /// When the trashed packs under retention are tried again.
    trash_locked_retry: Option<Instant>,
    /// Packs under a legal hold this cluster placed, once read from the bucket.
    legal_holds: Option<BTreeSet<Hash>>,
    /// Fingerprint of the holds the legal holds last matched; `None`: look again.
    holds_seen: Option<[u8; 32]>,
}

/// What one upload round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Packs stored and recorded.
    pub packs: usize,
    /// More packs were ready than one round uploads.
    pub more_ready: bool,
    /// The round stopped before looking at every camera's queue.
    pub sweep_unfinished: bool,
}

/// Shared view of the worker's state.
pub type SharedBackupState = Arc<Mutex<BackupState>>;

/// Access key, secret and optional session token from an AWS-style credentials file
/// (`[profile]` sections of `key = value` lines).
pub fn read_credentials_file(path: &std::path::Path, profile: &str) -> Result<(String, String, Option<String>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the backup credentials file", path, e))?;
    let mut section = String::new();
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().trim_start_matches("profile ").to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "aws_access_key_id" => id = v,
                "aws_secret_access_key" => secret = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(i), Some(s)) => Ok((i, s, token)),
        _ => Err(Error::InvalidArgument(format!(
            "{}: profile [{profile}] needs aws_access_key_id and aws_secret_access_key",
            path.display()
        ))),
    }
}

/// Opens the configured bucket with credentials from the environment or the
/// configured credentials file.
pub fn open_store(cfg: &BackupConfig) -> Result<Arc<dyn ObjectStore>> {
    // reqwest is built without a bundled TLS provider: use ring, as the rest of the node.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_allow_http(cfg.allow_http)
        .with_retry(object_store::RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
            ..Default::default()
        });
    if let Some(e) = &cfg.endpoint {
        b = b.with_endpoint(e);
    }
    if let Some(path) = &cfg.credentials_file {
        let (id, secret, token) = read_credentials_file(path, &cfg.profile)?;
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(t) = token {
            b = b.with_token(t);
        }
    }
    let s = b.build().map_err(|e| Error::InvalidArgument(format!("[backup]: {e}")))?;
    Ok(Arc::new(s))
}

/// The sealed blob of `rec`: this node's copy or a replica's, checked against its hash.
async fn sealed_blob(rec: &SegmentRecord, store: &Arc<BlobStore>, replicator: &Replicator) -> Result<Vec<u8>> {
    let (s, h) = (store.clone(), rec.content_hash);
    let local = tokio::task::spawn_blocking(move || s.get(&h)).await.map_err(|e| Error::Internal(e.to_string()))??;
    match local {
        Some(b) if blake3::hash(&b).as_bytes() == &rec.blob_hash => Ok(b),
        _ => replicator.fetch_remote(rec).await,
    }
}

/// What Object Lock needs to know to write a round's packs.
struct LockRules {
    locker: Arc<lock::Locker>,
    default_policy: Policy,
    policies: Vec<(String, Policy)>,
    /// Active holds only.
    holds: Vec<Hold>,
    now_ms: i64,
}

impl LockRules {
    fn pack_lock(&self, members: &[SegmentRecord]) -> (Option<i64>, bool) {
        let camera = members.first().map(|r| r.camera.as_str()).unwrap_or_default();
        let policy = self.policies.iter().find(|(c, _)| c == camera).map(|(_, p)| *p).unwrap_or(self.default_policy);
        pack_lock(members, policy, &self.holds, self.now_ms)
    }
}

/// How a pack is locked: COMPLIANCE retention until its newest member's end plus its
/// camera's `min_days` (`None` when that is already past at `now_ms`), and a legal hold
/// when an active hold covers any member. A pack holds one camera's footage.
pub fn pack_lock(members: &[SegmentRecord], policy: Policy, holds: &[Hold], now_ms: i64) -> (Option<i64>, bool) {
    let newest_end = members.iter().map(|r| r.end_ms).max().unwrap_or(i64::MIN);
    let until = newest_end.saturating_add(i64::from(policy.min_days) * DAY_MS);
    let held = members.iter().any(|r| holds.iter().any(|h| h.covers(&r.camera, r.start_ms, r.end_ms)));
    ((until > now_ms + RETAIN_MIN_AHEAD_MS).then_some(until), held)
}

/// Builds and uploads packs; returns what the store confirmed, whether any of it went
/// under a legal hold, and the first error.
async fn upload_packs(
    packs: Vec<Vec<SegmentRecord>>,
    objects: &Arc<dyn ObjectStore>,
    rules: Option<Arc<LockRules>>,
    prefix: &str,
    store: &Arc<BlobStore>,
    replicator: &Replicator,
    keys: &Arc<Keys>,
) -> (Vec<StoredPack>, bool, Option<String>) {
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(packs)
        .map(|members| {
            let (objects, store, replicator, keys) = (objects.clone(), store.clone(), replicator.clone(), keys.clone());
            let rules = rules.clone();
            async move {
                let locked = rules.as_ref().map(|r| r.pack_lock(&members));
                let mut blobs = Vec::with_capacity(members.len());
                for rec in members {
                    let blob = sealed_blob(&rec, &store, &replicator).await.map_err(|e| e.to_string())?;
                    blobs.push((rec, blob));
                }
                let (object, stored) = tokio::task::spawn_blocking(move || pack::assemble(&blobs, &keys))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let key = pack::pack_key(prefix, &stored.hash);
                match (&rules, locked) {
                    (Some(r), Some((until, held))) => {
                        r.locker.put(&key, object, until, held).await.map_err(|e| with_hint(&e))?;
                        Ok::<_, String>((stored, held))
                    }
                    _ => {
                        objects.put(&key, PutPayload::from(object)).await.map_err(|e| explain("storing", &key, &e))?;
                        Ok((stored, false))
                    }
                }
            }
        })
        .buffer_unordered(BACKUP_CONCURRENCY)
        .collect()
        .await;
    let mut done = Vec::new();
    let (mut any_held, mut first_error) = (false, None);
    for r in results {
        match r {
            Ok((p, held)) => {
                any_held |= held;
                done.push(p)
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (done, any_held, first_error)
}

/// An upload error in words an operator can act on.
fn explain(op: &str, key: &ObjectPath, e: &object_store::Error) -> String {
    let refused =
        matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. });
    format!("{}{op} {key}: {e}", hint(&e.to_string(), refused))
}

/// An error of the Object Lock client in words an operator can act on.
fn with_hint(text: &str) -> String {
    format!("{}{text}", hint(text, false))
}

/// What to check for a store error, from its text.
fn hint(text: &str, refused: bool) -> &'static str {
    let refused = refused
        || ["SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403 Forbidden", "HTTP 403"]
            .iter()
            .any(|c| text.contains(c));
    if refused {
        "the bucket refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the node's environment (or backup.credentials_file). "
    } else if text.contains("NoSuchBucket") {
        "the bucket does not exist: create it, or fix the bucket name. "
    } else if text.contains("error sending request") || text.contains("Connection refused") {
        "the S3 endpoint does not answer: check backup.endpoint and the network. "
    } else {
        ""
    }
}

/// What the worker needs besides the catalog: the blobs, a way to reach replicas, and
/// the keys snapshots are sealed with and carry.
pub struct BackupWorker {
    pub cfg: BackupConfig,
    pub meta: Meta,
    pub store: Arc<BlobStore>,
    pub replicator: Replicator,
    pub keys: Arc<Keys>,
    pub cluster_keys: snapshot::ClusterKeys,
    pub state: SharedBackupState,
}

impl BackupWorker {
    /// Runs on every node; works only while the node leads.
    pub async fn run(self, shutdown: crate::Shutdown) {
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let objects = match open_store(&self.cfg) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "ALARM backup disabled: the [backup] section cannot be used");
                self.state.lock().expect("backup state").last_error = Some(e.to_string());
                return;
            }
        };
        let c = &self.cfg;
        tracing::info!(bucket = %c.bucket, endpoint = ?c.endpoint, prefix = %c.prefix, snapshot_every_s = c.snapshot_every_s, "backup worker started");
        let every = Duration::from_secs(c.snapshot_every_s.max(1));
        let mut snapshots_listed = false;
        let mut wait = BACKUP_IDLE;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if !self.meta.is_leader() {
                wait = BACKUP_IDLE;
                snapshots_listed = false;
                let mut st = self.state.lock().expect("backup state");
                (st.trash_cursor, st.seals_uploaded, st.previous_snapshot) = (None, None, None);
                (st.lock, st.trash_locked, st.legal_holds, st.holds_seen) = (None, None, None, None);
                drop(st);
                continue;
            }
            let outcome = async {
                if !snapshots_listed {
                    let newest = list_snapshots(&objects, &c.prefix).await?.pop();
                    self.state.lock().expect("backup state").last_snapshot = newest;
                    snapshots_listed = true;
                }
                let locker = self.resolve_lock().await?;
                let uploaded = self.upload_round(&objects).await?;
                if let Some(l) = &locker {
                    self.legal_hold_round(&objects, l).await?;
                }
                self.expire_round(&objects).await?;
                let last = self.state.lock().expect("backup state").last_snapshot.clone();
                let (last_ms, last_index) = last
                    .and_then(|(k, _, _)| snapshot::parse_snapshot_key(&ObjectPath::from(k.as_str())))
                    .unwrap_or((0, 0));
                let applied = self.meta.metrics().last_applied.map(|l| l.index).unwrap_or(0);
                let due = self.meta.now_ms().saturating_sub(last_ms) >= every.as_millis() as i64;
                // An idle catalog is not snapshotted again.
                if due && applied != last_index {
                    self.snapshot_now(&objects).await?;
                }
                self.upload_seals(&objects).await?;
                Ok::<_, String>(uploaded)
            }
            .await;
            match outcome {
                Err(e) => {
                    let first = self.state.lock().expect("backup state").last_error.is_none();
                    if first {
                        tracing::error!(error = %e, "ALARM backup failing; retrying with back-off (recording is unaffected)");
                    }
                    self.state.lock().expect("backup state").last_error = Some(e);
                    wait = (wait * 2).clamp(Duration::from_millis(500), BACKUP_RETRY_MAX);
                }
                Ok(round) => {
                    let recovered = self.state.lock().expect("backup state").last_error.take().is_some();
                    if recovered {
                        tracing::info!("backup working again");
                    }
                    wait = if round.more_ready {
                        Duration::ZERO
                    } else if round.sweep_unfinished {
                        SWEEP_PAUSE
                    } else {
                        BACKUP_IDLE
                    };
                }
            }
        }
    }

    /// The Object Lock client, when objects are written under Object Lock.
    fn locker(&self) -> Option<Arc<lock::Locker>> {
        self.state.lock().expect("backup state").lock.clone().flatten()
    }

    /// Decides, once per leadership, whether objects are written under Object Lock:
    /// `backup.object_lock`, and for `"auto"` the bucket's own configuration.
    async fn resolve_lock(&self) -> std::result::Result<Option<Arc<lock::Locker>>, String> {
        if let Some(decided) = self.state.lock().expect("backup state").lock.clone() {
            return Ok(decided);
        }
        let (mode, bucket) = (self.cfg.object_lock, &self.cfg.bucket);
        let decided = match mode {
            ObjectLock::Off => None,
            ObjectLock::On | ObjectLock::Auto => match lock::Locker::new(&self.cfg) {
                Err(e) if mode == ObjectLock::Auto => {
                    tracing::warn!(error = %e, "Object Lock not checked; backing up without it");
                    None
                }
                Err(e) => return Err(e.to_string()),
                Ok(locker) => match (locker.bucket_lock_enabled().await.map_err(|e| with_hint(&e))?, mode) {
                    (true, _) => Some(Arc::new(locker)),
                    (false, ObjectLock::On) => {
                        return Err(format!(
                            "backup.object_lock = true, but bucket {bucket} has no Object Lock: create the bucket \
                             with Object Lock enabled, or set object_lock = \"auto\" or false"
                        ))
                    }
                    (false, _) => None,
                },
            },
        };
        if decided.is_some() {
            tracing::info!(
                bucket = %bucket,
                "Object Lock on: packs are kept in COMPLIANCE mode until their newest footage's end + min_days, \
                 snapshots and seals for {MIN_DAYS_FLOOR} days; held footage gets a legal hold"
            );
        } else {
            tracing::info!(bucket = %bucket, setting = ?mode, "Object Lock off");
        }
        self.state.lock().expect("backup state").lock = Some(decided.clone());
        Ok(decided)
    }

    /// Object Lock: puts a legal hold on every pack with footage under an active hold and
    /// takes it off the packs no active hold covers any more (after a two-person
    /// release). Looks again only when the holds change or a held pack was written.
    async fn legal_hold_round(
        &self,
        objects: &Arc<dyn ObjectStore>,
        locker: &lock::Locker,
    ) -> std::result::Result<(), String> {
        let holds = self.meta.read(|c| c.holds()).await.map_err(|e| e.to_string())?;
        let mut fp = blake3::Hasher::new();
        for h in &holds {
            fp.update(h.id.as_bytes()).update(&[u8::from(h.active()), 0]);
        }
        let fp = *fp.finalize().as_bytes();
        let (seen, known) = {
            let st = self.state.lock().expect("backup state");
            (st.holds_seen, st.legal_holds.clone())
        };
        if seen == Some(fp) {
            return Ok(());
        }
        let current = match known {
            Some(k) => k,
            None => read_hash_list(objects, &self.cfg.prefix, LEGAL_HOLDS).await?.into_iter().collect(),
        };
        let (wanted, truncated) = self.meta.read(|c| c.held_packs(HELD_PACKS_MAX)).await.map_err(|e| e.to_string())?;
        if truncated {
            tracing::warn!(
                limit = HELD_PACKS_MAX,
                "more held packs than the worker tracks; the rest get no legal hold"
            );
        }
        let mut now_held = current.clone();
        let (mut on, mut off) = (0, 0);
        let to_on: Vec<Hash> = wanted.difference(&current).take(LEGAL_HOLDS_ROUND).copied().collect();
        let to_off: Vec<Hash> = current.difference(&wanted).take(LEGAL_HOLDS_ROUND - to_on.len()).copied().collect();
        for h in to_on {
            let key = pack::pack_key(&self.cfg.prefix, &h);
            if locker.set_legal_hold(&key, true).await.map_err(|e| with_hint(&e))? == 0 {
                tracing::warn!(key = %key, "a held pack is not in the bucket; no legal hold placed");
            }
            now_held.insert(h);
            on += 1;
        }
        for h in to_off {
            let key = pack::pack_key(&self.cfg.prefix, &h);
            locker.set_legal_hold(&key, false).await.map_err(|e| with_hint(&e))?;
            now_held.remove(&h);
            off += 1;
        }
        if now_held != current {
            write_hash_list(objects, &self.cfg.prefix, LEGAL_HOLDS, now_held.iter()).await?;
            tracing::info!(placed = on, released = off, held_packs = now_held.len(), "legal holds on packs updated");
        }
        let done = now_held == wanted || truncated && now_held.is_superset(&wanted);
        let mut st = self.state.lock().expect("backup state");
        st.legal_holds = Some(now_held);
        st.holds_seen = done.then_some(fp);
        Ok(())
    }

    /// Looks at the next cameras' queues, uploads the packs that are ready and records
    /// what the store confirmed.
    pub async fn upload_round(&self, objects: &Arc<dyn ObjectStore>) -> std::result::Result<Round, String> {
        let after = self.state.lock().expect("backup state").sweep_after.clone();
        let runs = self
            .meta
            .read(move |c| c.backup_runs(after.as_deref(), ROUND_CAMERAS, ROUND_RUN))
            .await
            .map_err(|e| e.to_string())?;
        let sweep_unfinished = runs.len() == ROUND_CAMERAS;
        let last_camera = runs.last().and_then(|r| r.first()).map(|r| r.camera.clone());
        let (target, wait_ms) = (self.cfg.pack_target_bytes.max(1), self.cfg.pack_max_wait_s as i64 * 1000);
        let mut ready = pack::plan(runs, self.meta.now_ms(), target, wait_ms);
        let more_ready = ready.len() > ROUND_PACKS;
        ready.truncate(ROUND_PACKS);
        // A long backlog is served camera by camera: the next round starts after the last
        // camera served here, or after the last one looked at.
        let resume =
            if more_ready { ready.last().and_then(|p| p.first()).map(|r| r.camera.clone()) } else { last_camera };
        self.state.lock().expect("backup state").sweep_after = resume;
        if ready.is_empty() {
            return Ok(Round { packs: 0, more_ready, sweep_unfinished });
        }
        let rules = match self.locker() {
            None => None,
            Some(locker) => {
                let (default_policy, policies) = self.meta.read(|c| c.policies()).await.map_err(|e| e.to_string())?;
                let mut holds = self.meta.read(|c| c.holds()).await.map_err(|e| e.to_string())?;
                holds.retain(Hold::active);
                Some(Arc::new(LockRules { locker, default_policy, policies, holds, now_ms: self.meta.now_ms() }))
            }
        };
        let (done, any_held, error) =
            upload_packs(ready, objects, rules, &self.cfg.prefix, &self.store, &self.replicator, &self.keys).await;
        let packs = done.len();
        if !done.is_empty() {
            let segments: usize = done.iter().map(|p| p.members.len()).sum();
            match self.meta.propose(Command::MarkBackedUp(done)).await {
                Ok(_) => {
                    let mut st = self.state.lock().expect("backup state");
                    st.last_success_ms = self.meta.now_ms();
                    if any_held {
                        // The legal-hold list in the bucket learns of the new held packs.
                        st.holds_seen = None;
                    }
                    drop(st);
                    tracing::debug!(packs, segments, "backed up");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "backed-up packs not recorded yet; they will be uploaded again")
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(Round { packs, more_ready, sweep_unfinished }),
        }
    }
}

impl BackupWorker {
    /// Copies the seals the bucket does not hold yet.
    pub async fn upload_seals(&self, objects: &Arc<dyn ObjectStore>) -> std::result::Result<(), String> {
        let (head, _, _) = self.meta.read(|c| c.seal_head()).await.map_err(|e| e.to_string())?;
        let known = self.state.lock().expect("backup state").seals_uploaded;
        let mut known = match known {
            Some(k) => k,
            None => list_seals(objects, &self.cfg.prefix).await?.last().map(|s| s.0).unwrap_or(0),
        };
        if known < head {
            // A snapshot holding the new seal goes first: a restore refuses a snapshot
            // older than the newest seal in the bucket (a rollback), so the newest
            // snapshot must never be older than it.
            self.snapshot_now(objects).await?;
        }
        while known < head {
            let seq = known + 1;
            let file = self.meta.read(move |c| c.seal(seq)).await.map_err(|e| e.to_string())?;
            let Some(file) = file else { break };
            let day: String = serde_json::from_str::<custos_evidence::seal::SealStatement>(&file.statement)
                .map(|s| s.day)
                .unwrap_or_default();
            let key = seal_key(&self.cfg.prefix, seq, &day);
            let body = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
            match self.locker() {
                Some(l) => {
                    l.put(&key, body, Some(floor_from(self.meta.now_ms())), false).await.map_err(|e| with_hint(&e))?
                }
                None => {
                    objects.put(&key, PutPayload::from(body)).await.map_err(|e| explain("storing", &key, &e))?;
                }
            }
            tracing::info!(key = %key, seal = seq, "seal stored in the bucket");
            known = seq;
        }
        self.state.lock().expect("backup state").seals_uploaded = Some(known);
        Ok(())
    }
}

/// The end of the retention floor for an object written at `ms`.
fn floor_from(ms: i64) -> i64 {
    ms + i64::from(MIN_DAYS_FLOOR) * DAY_MS
}

/// A list of pack hashes kept in the bucket under `name` (empty when absent).
async fn read_hash_list(
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
    name: &str,
) -> std::result::Result<Vec<Hash>, String> {
    let key = snapshot::under(prefix, name);
    let text = match objects.get(&key).await {
        Ok(r) => r.bytes().await.map_err(|e| explain("reading", &key, &e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(explain("reading", &key, &e)),
    };
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            hex::decode(l.trim()).ok().and_then(|b| Hash::try_from(b).ok()).ok_or_else(|| {
                format!("{key} holds {l:?}, not a pack hash: the bucket was changed by hand; remove that line")
            })
        })
        .collect()
}

/// Stores a list of pack hashes under `name`, one hex hash a line.
async fn write_hash_list<'a>(
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
    name: &str,
    hashes: impl Iterator<Item = &'a Hash>,
) -> std::result::Result<(), String> {
    let key = snapshot::under(prefix, name);
    let text: String = hashes.map(|h| format!("{}\n", hex::encode(h))).collect();
    objects.put(&key, PutPayload::from(text.into_bytes())).await.map(|_| ()).map_err(|e| explain("storing", &key, &e))
}

/// Where seal `seq` of `day` is kept in the bucket.
pub fn seal_key(prefix: &str, seq: u64, day: &str) -> ObjectPath {
    snapshot::under(prefix, &format!("seals/{seq:010}-{day}.json"))
}

/// The seals in the bucket: (seq, key), oldest first.
pub async fn list_seals(
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> std::result::Result<Vec<(u64, String)>, String> {
    use futures::TryStreamExt;
    let dir = snapshot::under(prefix, "seals");
    let metas: Vec<_> = objects.list(Some(&dir)).try_collect().await.map_err(|e| explain("listing", &dir, &e))?;
    let mut out: Vec<(u64, String)> = metas
        .into_iter()
        .filter_map(|m| {
            let name = m.location.filename()?.to_string();
            let seq = name.split('-').next()?.parse().ok()?;
            Some((seq, m.location.to_string()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Where the bucket keeps how far its trash has been applied.
pub const TRASH_CURSOR: &str = "state/trash-cursor";

/// How far the bucket's trash has been applied (0 before the first deletion).
pub async fn read_trash_cursor(objects: &Arc<dyn ObjectStore>, prefix: &str) -> Result<u64> {
    let key = snapshot::under(prefix, TRASH_CURSOR);
    match objects.get(&key).await {
        Ok(r) => {
            let b = r.bytes().await.map_err(|e| Error::Store(explain("reading", &key, &e)))?;
            let text = String::from_utf8_lossy(&b);
            text.trim().parse().map_err(|_| {
                Error::Store(format!(
                    "{key} holds {text:?}, not a number: the bucket was changed by hand; put back the last number or 0"
                ))
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(0),
        Err(e) => Err(Error::Store(explain("reading", &key, &e))),
    }
}

/// The snapshots in the bucket, oldest first: key, creation ms, size.
pub async fn list_snapshots(
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> std::result::Result<Vec<(String, i64, u64)>, String> {
    use futures::TryStreamExt;
    let dir = snapshot::snapshots_dir(prefix);
    let metas: Vec<_> = objects.list(Some(&dir)).try_collect().await.map_err(|e| explain("listing", &dir, &e))?;
    let mut out: Vec<_> = metas
        .into_iter()
        .filter_map(|m| snapshot::parse_snapshot_key(&m.location).map(|(t, _)| (m.location.to_string(), t, m.size)))
        .collect();
    out.sort();
    Ok(out)
}

impl crate::worker::Worker for BackupWorker {
    fn name(&self) -> &'static str {
        "backup"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        BackupWorker::run(self, shutdown)
    }
}

#[cfg(test)]
mod tests;

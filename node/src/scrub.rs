//! The scrubber: every node re-reads the blobs the catalog says it holds, at a bounded
//! rate, and checks each against its catalogued `blob_hash`.
//!
//! A blob that fails is moved to `blobs/quarantine/` (kept for investigation, never
//! deleted by Custos) and replaced by a verified copy from another replica, or from the
//! backup bucket when no replica has one. A missing blob is fetched the same way. Each
//! finding is logged as an `ALARM`, written to the audit log (`scrub-repair`, outcome
//! `ok` or `failed`) and counted; the leader raises a `scrub-failure` alarm for a node
//! that found damage recently or still holds damage it could not repair. Progress and
//! findings are in `custos status` and the metrics.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::cluster::replicate::Replicator;
use crate::config::{BackupConfig, ScrubConfig};
use crate::error::{Error, Result};
use crate::meta::{Command, Meta, SegmentRecord};
use crate::segment::BlobStore;
use crate::worker::ScrubStats;

/// Segments read from the catalog per step.
const SCAN_STEP: usize = 256;
/// Shortest pause the rate limit sleeps; smaller debts accumulate.
const MIN_SLEEP: Duration = Duration::from_millis(20);

/// The scrubber of one node.
pub struct Scrubber {
    pub meta: Meta,
    pub store: Arc<BlobStore>,
    pub replicator: Replicator,
    pub stats: Arc<ScrubStats>,
    pub cfg: ScrubConfig,
    pub backup: Option<BackupConfig>,
}

enum Finding {
    Corrupt(String),
    Missing,
}

impl Scrubber {
    pub async fn run(self, shutdown: crate::Shutdown) {
        if !self.cfg.enabled {
            tracing::warn!(
                "scrubbing is off ([scrub] enabled = false): bit rot will only be found when footage is read"
            );
            return;
        }
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let mut cursor: Option<Vec<u8>> = None;
        let (mut pass_segments, mut pass_findings) = (0u64, 0u64);
        // Read time owed to the rate limit; paid in sleeps of at least `MIN_SLEEP`, since
        // a timer cannot sleep less than a millisecond and small blobs would otherwise be
        // throttled far below the rate.
        let mut owed = Duration::ZERO;
        tracing::info!(bytes_per_s = self.cfg.bytes_per_s, pass_pause_s = self.cfg.pass_pause_s, "scrubber started");
        loop {
            let me = self.meta.node_id;
            let after = cursor.clone();
            let step = tokio::select! {
                _ = &mut stop => return,
                r = self.meta.read(move |c| c.held_by(me, after, SCAN_STEP)) => r,
            };
            let (recs, resume) = match step {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "scrub: cannot read the catalog; retrying");
                    tokio::select! { _ = &mut stop => return, _ = tokio::time::sleep(Duration::from_secs(5)) => {} }
                    continue;
                }
            };
            for rec in recs {
                let len = match self.check(&rec).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(camera = %rec.camera, start_ms = rec.start_ms, error = %e, "scrub: check failed");
                        0
                    }
                };
                pass_segments += 1;
                if len == 0 {
                    pass_findings += 1;
                }
                owed += Duration::from_secs_f64(len as f64 / self.cfg.bytes_per_s.max(1) as f64);
                if owed >= MIN_SLEEP {
                    let pause = std::mem::take(&mut owed);
                    tokio::select! { _ = &mut stop => return, _ = tokio::time::sleep(pause) => {} }
                }
            }
            cursor = resume;
            if cursor.is_none() {
                self.stats.passes.fetch_add(1, Ordering::Relaxed);
                self.stats.last_pass_ms.store(self.meta.now_ms(), Ordering::Relaxed);
                let unrepaired = self.stats.unrepaired_count();
                tracing::info!(segments = pass_segments, findings = pass_findings, unrepaired, "scrub pass complete");
                (pass_segments, pass_findings) = (0, 0);
                let pause = Duration::from_secs(self.cfg.pass_pause_s.max(1));
                tokio::select! { _ = &mut stop => return, _ = tokio::time::sleep(pause) => {} }
            }
        }
    }

    /// Verifies one blob, repairing it if needed. Returns the bytes read when it was
    /// sound (0 after a finding).
    async fn check(&self, rec: &SegmentRecord) -> Result<u64> {
        let (store, hash) = (self.store.clone(), rec.content_hash);
        // Read and hash together on the blocking pool: hashing megabytes on an async
        // worker would stall the node's other tasks.
        let local = tokio::task::spawn_blocking(move || {
            store.get(&hash).map(|b| b.map(|b| (b.len() as u64, *blake3::hash(&b).as_bytes())))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let name = format!("{}@{}", rec.camera, rec.start_ms);
        let finding = match local {
            Some((len, h)) if h == rec.blob_hash => {
                self.stats.segments.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(len, Ordering::Relaxed);
                return Ok(len);
            }
            Some((_, h)) => Finding::Corrupt(format!(
                "its ciphertext hashes to {}, not to the catalogued {}",
                hex::encode(h),
                hex::encode(rec.blob_hash)
            )),
            None => Finding::Missing,
        };
        // Expiry may have deleted the segment since the catalog was read.
        let (camera, start) = (rec.camera.clone(), rec.start_ms);
        if !self.meta.read(move |c| c.has_segment(&camera, start)).await? {
            return Ok(0);
        }
        let problem = match &finding {
            Finding::Corrupt(why) => {
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                format!("blob of {name} is corrupt: {why}")
            }
            Finding::Missing => {
                self.stats.missing.fetch_add(1, Ordering::Relaxed);
                format!("blob of {name} is missing from this node")
            }
        };
        self.stats.last_finding_ms.store(self.meta.now_ms(), Ordering::Relaxed);
        tracing::error!(segment = %name, problem = %problem, "ALARM scrub found damage; repairing");
        if let Finding::Corrupt(_) = finding {
            let (store, tag) = (self.store.clone(), format!("{}.corrupt", self.meta.now_ms()));
            let moved = tokio::task::spawn_blocking(move || store.quarantine(&hash, &tag))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            if let Some(p) = moved {
                tracing::warn!(path = %p.display(), "corrupt blob kept in quarantine for investigation");
            }
        }
        let (outcome, detail) = match self.good_copy(rec).await {
            Ok((blob, from)) => {
                let (store, checked) = (self.store.clone(), rec.blob_hash);
                let stored = tokio::task::spawn_blocking(move || store.put(&hash, &blob, &checked))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))??;
                if stored != rec.blob_hash {
                    // Another good copy appeared meanwhile and was kept: still sound only
                    // if it verifies, which the next pass checks.
                    tracing::warn!(segment = %name, "a different copy was already in place; the next pass checks it");
                }
                self.stats.repaired.fetch_add(1, Ordering::Relaxed);
                self.stats.unrepaired.lock().expect("scrub stats").remove(&name);
                tracing::info!(segment = %name, from = %from, "scrub repaired the blob");
                (Outcome::Ok, format!("{problem}; repaired on node {} from {from}", self.meta.node_id))
            }
            Err(e) => {
                let why = format!("{problem}; no verified copy found ({e})");
                let first =
                    self.stats.unrepaired.lock().expect("scrub stats").insert(name.clone(), why.clone()).is_none();
                tracing::error!(segment = %name, error = %e, "ALARM scrub could not repair the blob; retrying next pass");
                if !first {
                    return Ok(0); // audited once, on the first failure
                }
                (Outcome::Failed, format!("{why}; node {}", self.meta.node_id))
            }
        };
        let ev = AuditEvent {
            user: "-".into(),
            role: "system".into(),
            action: AuditAction::ScrubRepair,
            outcome,
            cameras: vec![rec.camera.clone()],
            from_ms: Some(rec.start_ms),
            to_ms: Some(rec.end_ms),
            detail,
            ..Default::default()
        };
        if let Err(e) = self.meta.propose_audited(Command::Audit, ev).await {
            tracing::warn!(error = %e, "scrub finding not written to the audit log (no quorum?); it is in this log");
        }
        Ok(0)
    }

    /// A copy of `rec`'s blob that matches its `blob_hash`: from another replica, else
    /// from the backup bucket. Says where it came from.
    async fn good_copy(&self, rec: &SegmentRecord) -> Result<(Vec<u8>, String)> {
        let replica_err = match self.replicator.fetch_remote(rec).await {
            Ok(b) => return Ok((b, "another replica".into())),
            Err(e) => e,
        };
        let Some(cfg) = &self.backup else { return Err(replica_err) };
        let (camera, start) = (rec.camera.clone(), rec.start_ms);
        let Some(loc) = self.meta.read(move |c| c.backup_location(&camera, start)).await? else {
            return Err(Error::Unavailable(format!("{replica_err}; and it was never backed up")));
        };
        let objects = crate::backup::open_store(cfg)?;
        let key = crate::backup::pack::pack_key(&cfg.prefix, &loc.pack);
        let blob = match crate::backup::restore::read_members(&objects, &key, &[loc]).await? {
            Some(mut v) => v.pop().unwrap_or_else(|| Err("empty".into())).map_err(Error::Integrity)?,
            None => {
                return Err(Error::Unavailable(format!("{replica_err}; and its pack {key} is gone from the bucket")))
            }
        };
        if blake3::hash(&blob).as_bytes() != &rec.blob_hash {
            return Err(Error::Integrity(format!("{replica_err}; and the bucket's copy does not verify either")));
        }
        Ok((blob, format!("the backup bucket ({key})")))
    }
}

impl crate::worker::Worker for Scrubber {
    fn name(&self) -> &'static str {
        "scrub"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        Scrubber::run(self, shutdown)
    }
}

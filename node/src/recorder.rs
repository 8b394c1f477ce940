//! The recorder's write path, after ingest: seal each segment, make it durable, and
//! commit it to the catalog in batches.
//!
//! Per camera, a sealer task takes closed segments from the camera's bounded channel and
//! runs hash + encrypt + pending record + blob write on the blocking pool. One committer
//! collects the resulting records from every camera and proposes them to Raft as one
//! entry per batch (openraft 0.9 waits for one log fsync per entry, so batching is what
//! makes thousands of cameras affordable). A segment is acknowledged once its batch is
//! committed; only then is its pending record removed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::mpsc;

use crate::cluster::replicate::Replicator;
use crate::error::{Error, Result};
use crate::ingest::RawSegment;
use crate::meta::{Command, Meta, Response, SegmentRecord};
use crate::segment::pending::PendingDir;
use crate::segment::{BlobStore, Keys};

/// Most segment records in one Raft entry.
pub const COMMIT_BATCH_MAX: usize = 512;
/// How long the committer waits for more records after the first of a batch.
pub const COMMIT_LINGER: Duration = Duration::from_millis(20);
/// Sealed records waiting for the committer before sealers block.
pub const COMMIT_QUEUE: usize = 1024;
/// Longest pause between retries of a failed commit.
pub const COMMIT_RETRY_MAX: Duration = Duration::from_secs(5);

/// What the write path needs, shared by every sealer.
#[derive(Debug)]
pub struct SealContext {
    pub node_id: u64,
    pub keys: Arc<Keys>,
    pub store: Arc<BlobStore>,
    pub pending: Arc<PendingDir>,
}

/// Prometheus labels: (name, value) pairs.
pub(crate) type Labels = Vec<(String, String)>;

pub(crate) fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

/// Write-path counters, kept by the recorder.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub segments: Family<Labels, Counter>,
    pub bytes: Family<Labels, Counter>,
    /// Seconds from proposing a batch of segments to its commit.
    pub commit_latency: Histogram,
}

impl Default for Ingest {
    fn default() -> Self {
        Ingest {
            segments: Family::default(),
            bytes: Family::default(),
            // 1 ms to about 33 s.
            commit_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        }
    }
}

impl Ingest {
    /// One segment of `camera`, `bytes` of plaintext, sealed and stored.
    pub fn segment(&self, camera: &str, bytes: u64) {
        let l = label("camera", camera);
        self.segments.get_or_create(&l).inc();
        self.bytes.get_or_create(&l).inc_by(bytes);
    }
}

/// Counters the status API reports.
#[derive(Debug, Default)]
pub struct RecorderStats {
    pub segments_sealed: AtomicU64,
    pub segments_committed: AtomicU64,
    pub segments_failed: AtomicU64,
    pub commit_batches: AtomicU64,
    /// Segments committed with fewer copies than the replication factor.
    pub segments_under_replicated: AtomicU64,
    /// Per-camera counters and the commit latency, for the metrics endpoint.
    pub ingest: Ingest,
}

/// Seals a segment and makes it durable: pending record first, then the blob. Blocks.
pub fn seal_and_store(ctx: &SealContext, seg: &RawSegment) -> Result<SegmentRecord> {
    seal_and_store_blob(ctx, seg).map(|(rec, _)| rec)
}

/// [`seal_and_store`], also returning the stored sealed blob (for replication).
pub fn seal_and_store_blob(ctx: &SealContext, seg: &RawSegment) -> Result<(SegmentRecord, Vec<u8>)> {
    let sealed = ctx.keys.seal(&seg.data)?;
    let mut rec = SegmentRecord {
        camera: seg.camera.clone(),
        start_ms: seg.start_ms,
        end_ms: seg.end_ms,
        bytes: seg.data.len() as u64,
        blob_bytes: sealed.ciphertext.len() as u64,
        content_hash: sealed.content_hash,
        blob_hash: sealed.blob_hash,
        codec: seg.codec,
        replicas: vec![ctx.node_id],
    };
    let mut blob = sealed.ciphertext;
    if let Some(existing) = ctx.store.get(&rec.content_hash)? {
        // Same content already stored (age output is randomised): record the stored copy.
        rec.blob_hash = *blake3::hash(&existing).as_bytes();
        rec.blob_bytes = existing.len() as u64;
        blob = existing;
    }
    ctx.pending.put(&rec)?;
    let stored = ctx.store.put(&rec.content_hash, &blob, &rec.blob_hash)?;
    if stored != rec.blob_hash {
        // Another sealer stored the same content between the check above and the put:
        // the record must name the copy that is on disk.
        blob = ctx.store.get(&rec.content_hash)?.ok_or_else(|| Error::MissingBlob {
            camera: rec.camera.clone(),
            start_ms: rec.start_ms,
            hash: hex::encode(rec.content_hash),
        })?;
        rec.blob_hash = *blake3::hash(&blob).as_bytes();
        rec.blob_bytes = blob.len() as u64;
        ctx.pending.put(&rec)?;
    }
    Ok((rec, blob))
}

/// Takes one camera's segments, seals and stores them, pushes them to their replicas
/// (when a `replicator` is given), and passes the records on.
pub async fn run_sealer(
    mut rx: mpsc::Receiver<RawSegment>,
    ctx: Arc<SealContext>,
    replicator: Option<Replicator>,
    commit_tx: mpsc::Sender<SegmentRecord>,
    stats: Arc<RecorderStats>,
) {
    while let Some(seg) = rx.recv().await {
        let ctx2 = ctx.clone();
        let (camera, start_ms) = (seg.camera.clone(), seg.start_ms);
        let res = tokio::task::spawn_blocking(move || seal_and_store_blob(&ctx2, &seg)).await;
        match res {
            Ok(Ok((mut rec, blob))) => {
                stats.segments_sealed.fetch_add(1, Ordering::Relaxed);
                stats.ingest.segment(&camera, rec.bytes);
                if let Some(r) = &replicator {
                    let complete = match r.replicate(&mut rec, Arc::new(blob)).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(%camera, start_ms, error = %e, "replication failed");
                            false
                        }
                    };
                    if !complete {
                        stats.segments_under_replicated.fetch_add(1, Ordering::Relaxed);
                        // Counted in `custos status`; the health table already logged the outage.
                        tracing::debug!(%camera, start_ms, copies = rec.replicas.len(), factor = r.factor, "segment committed with fewer copies than the factor; repair will add the missing ones");
                    }
                }
                if commit_tx.send(rec).await.is_err() {
                    tracing::warn!(%camera, start_ms, "committer stopped; the segment stays pending and is committed at next start");
                }
            }
            Ok(Err(e)) => {
                stats.segments_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%camera, start_ms, error = %e, "segment could not be stored; footage lost for its duration");
            }
            Err(e) => tracing::error!(%camera, start_ms, error = %e, "sealing task failed"),
        }
    }
}

/// Commits one batch, retrying until it commits or `stopping` is set. Returns whether
/// it committed.
async fn commit_batch(
    meta: &Meta,
    pending: &Arc<PendingDir>,
    batch: Vec<SegmentRecord>,
    stopping: &AtomicBool,
    stats: &RecorderStats,
) -> bool {
    let mut wait = Duration::from_millis(100);
    loop {
        let started = std::time::Instant::now();
        match meta.propose(Command::CommitSegments(batch.clone())).await {
            Ok(Response::Committed { new, duplicate, superseded }) => {
                stats.ingest.commit_latency.observe(started.elapsed().as_secs_f64());
                stats.segments_committed.fetch_add(u64::from(new), Ordering::Relaxed);
                stats.commit_batches.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(new, duplicate, "segment batch committed");
                if superseded > 0 {
                    // This node was paused or cut off while its standby took the camera
                    // over: that node's segments cover this time.
                    tracing::warn!(
                        superseded,
                        "segments not catalogued: another node took these cameras over and covers their time"
                    );
                }
                let p = pending.clone();
                let hashes: Vec<_> = batch.iter().map(|r| r.content_hash).collect();
                match tokio::task::spawn_blocking(move || p.remove_all(hashes.iter())).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not remove pending records; they are re-checked at next start")
                    }
                    Err(e) => tracing::warn!(error = %e, "pending cleanup task failed"),
                }
                return true;
            }
            Ok(other) => {
                tracing::error!(response = ?other, "catalog refused a segment batch");
                return false;
            }
            Err(e) => {
                if stopping.load(Ordering::Relaxed) {
                    tracing::warn!(segments = batch.len(), error = %e, "shutting down with an uncommitted batch; it stays pending and is committed at next start");
                    return false;
                }
                tracing::warn!(segments = batch.len(), error = %e, retry_in_ms = wait.as_millis() as u64, "segment commit failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(COMMIT_RETRY_MAX);
            }
        }
    }
}

/// How the committer tells whether this recorder's clock is skewed.
#[derive(Debug, Clone)]
pub struct SkewCheck {
    pub health: crate::cluster::health::Health,
    /// Off the cluster's median by more than this (ms), footage is flagged (the
    /// `clock-skew` alarm's bound).
    pub bound_ms: u64,
}

/// Flags `batch` (before it is committed, so a crash in between loses no flag) when this
/// recorder's clock is off the median by more than the bound, as the leader or this node
/// measures it. Returns whether it is skewed; logs when that changes.
async fn flag_if_skewed(meta: &Meta, check: &SkewCheck, batch: &[SegmentRecord], was: &mut bool) {
    let skew = check.health.own_skew_ms(meta.now_ms()).filter(|(s, _)| s.unsigned_abs() > check.bound_ms);
    if skew.is_some() != *was {
        *was = skew.is_some();
        match skew {
            Some((ms, by)) => tracing::warn!(
                offset_ms = ms,
                measured_by = by,
                "this recorder's clock is off the cluster's median: its footage is flagged (custos search shows it)"
            ),
            None => tracing::info!("this recorder's clock agrees with the cluster again: footage is no longer flagged"),
        }
    }
    let Some((offset_ms, by)) = skew else { return };
    for chunk in batch.chunks(crate::meta::state::SEGMENT_CLOCKS_MAX) {
        let flags = chunk
            .iter()
            .map(|r| crate::meta::SegmentClock {
                camera: r.camera.clone(),
                start_ms: r.start_ms,
                offset_ms,
                measured_by: by.to_string(),
            })
            .collect();
        match meta.propose(Command::MarkSegmentClocks(flags)).await {
            Ok(Response::Rejected(_, why)) => tracing::warn!(%why, "segments of a skewed clock could not be flagged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "segments of a skewed clock could not be flagged"),
        }
    }
}

/// Gathers records from every sealer into batches and commits them until all senders
/// are gone. With `skew`, batches recorded while this recorder's clock is skewed are
/// flagged first.
pub async fn run_committer(
    mut rx: mpsc::Receiver<SegmentRecord>,
    meta: Meta,
    pending: Arc<PendingDir>,
    stopping: Arc<AtomicBool>,
    stats: Arc<RecorderStats>,
    skew: Option<SkewCheck>,
) {
    let mut skewed = false;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + COMMIT_LINGER;
        while batch.len() < COMMIT_BATCH_MAX {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => batch.push(r),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if let Some(check) = &skew {
            flag_if_skewed(&meta, check, &batch, &mut skewed).await;
        }
        commit_batch(&meta, &pending, batch, &stopping, &stats).await;
    }
}

/// Outcome of start-up recovery.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Durable segments that were not committed before the last stop, now committed.
    pub recommitted: usize,
    /// Pending records whose segment was already committed.
    pub already_committed: usize,
    /// Pending records whose blob never became durable (never acknowledged).
    pub dropped: usize,
}

/// Re-proposes every durable segment a crash left uncommitted.
pub async fn recover(meta: &Meta, store: Arc<BlobStore>, pending: Arc<PendingDir>) -> Result<Recovery> {
    let p = pending.clone();
    let catalog = meta.catalog.clone();
    let (todo, mut rec) = tokio::task::spawn_blocking(move || -> Result<(Vec<SegmentRecord>, Recovery)> {
        let mut rec = Recovery::default();
        let mut todo = Vec::new();
        let mut done = Vec::new();
        for r in p.load()? {
            if !store.contains(&r.content_hash) {
                rec.dropped += 1;
                done.push(r.content_hash);
            } else if catalog.has_segment(&r.camera, r.start_ms)? {
                rec.already_committed += 1;
                done.push(r.content_hash);
            } else {
                todo.push(r);
            }
        }
        p.remove_all(done.iter())?;
        Ok((todo, rec))
    })
    .await
    .map_err(|e| crate::Error::Internal(e.to_string()))??;
    for chunk in todo.chunks(COMMIT_BATCH_MAX) {
        match meta.propose(Command::CommitSegments(chunk.to_vec())).await? {
            Response::Committed { superseded, .. } => {
                if superseded > 0 {
                    tracing::warn!(
                        superseded,
                        "recovered segments not catalogued: a standby took their cameras over and covers their time"
                    );
                }
                rec.recommitted += chunk.len();
                let p = pending.clone();
                let hashes: Vec<_> = chunk.iter().map(|r| r.content_hash).collect();
                tokio::task::spawn_blocking(move || p.remove_all(hashes.iter()))
                    .await
                    .map_err(|e| crate::Error::Internal(e.to_string()))??;
            }
            other => return Err(crate::Error::Internal(format!("catalog refused recovered segments: {other:?}"))),
        }
    }
    Ok(rec)
}

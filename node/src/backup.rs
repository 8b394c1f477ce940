//! Continuous backup of sealed blobs to S3-compatible storage (`object_store`).
//!
//! Every committed segment enters the catalog's backup queue (the `CommitSegments` entry
//! puts it there). On the leader, this worker takes segments from the head of the queue,
//! reads each sealed blob (this node's copy, or a replica's, checked against
//! `blob_hash`), uploads it unchanged — already age-encrypted, so the bucket never sees
//! plaintext — and, once the store has confirmed the uploads, commits `MarkBackedUp`.
//! A segment leaves the queue only after its object is stored; a failed upload is
//! retried with back-off and reported in `custos status` until it succeeds.
//!
//! Key layout under the configured prefix: `blobs/<first 2 hex>/<content hash hex>`, the
//! blob's content address, so a segment's object can always be found from its catalog
//! record and expiry can delete whole objects.
//!
//! Credentials come from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`); they are never written to
//! the catalog or the logs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::cluster::replicate::Replicator;
use crate::config::BackupConfig;
use crate::error::{Error, Result};
use crate::meta::{Command, Meta, SegmentRecord};
use crate::segment::{BlobStore, Hash};

/// Segments taken from the queue per round.
pub const BACKUP_BATCH: usize = 64;
/// Uploads in flight at once.
pub const BACKUP_CONCURRENCY: usize = 4;
/// Pause when the queue is empty.
pub const BACKUP_IDLE: Duration = Duration::from_secs(2);
/// Longest pause between retries after a failure.
pub const BACKUP_RETRY_MAX: Duration = Duration::from_secs(30);

/// What the worker last saw, for `custos status`.
#[derive(Debug, Default, Clone)]
pub struct BackupState {
    /// The store's last error, cleared by the next success.
    pub last_error: Option<String>,
    /// Wall-clock ms of the last confirmed upload.
    pub last_success_ms: i64,
}

/// Shared view of the worker's state.
pub type SharedBackupState = Arc<Mutex<BackupState>>;

/// The object key of a blob under `prefix`.
pub fn blob_key(prefix: &str, content_hash: &Hash) -> ObjectPath {
    let h = hex::encode(content_hash);
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        ObjectPath::from(format!("blobs/{}/{h}", &h[..2]))
    } else {
        ObjectPath::from(format!("{p}/blobs/{}/{h}", &h[..2]))
    }
}

/// Opens the configured bucket with credentials from the environment.
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

/// Uploads one batch; returns the segments the store confirmed and the first error.
async fn upload_batch(
    batch: &[SegmentRecord],
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
    store: &Arc<BlobStore>,
    replicator: &Replicator,
) -> (Vec<(String, i64)>, Option<String>) {
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(batch.iter().cloned())
        .map(|rec| {
            let (objects, store, replicator, key) =
                (objects.clone(), store.clone(), replicator.clone(), blob_key(prefix, &rec.content_hash));
            async move {
                let blob = sealed_blob(&rec, &store, &replicator).await.map_err(|e| e.to_string())?;
                objects.put(&key, PutPayload::from(blob)).await.map_err(|e| explain(&key, &e))?;
                Ok::<_, String>((rec.camera.clone(), rec.start_ms))
            }
        })
        .buffer_unordered(BACKUP_CONCURRENCY)
        .collect()
        .await;
    let mut done = Vec::new();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(k) => done.push(k),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (done, first_error)
}

/// An upload error in words an operator can act on.
fn explain(key: &ObjectPath, e: &object_store::Error) -> String {
    let hint = match e {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            "the bucket refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the node's environment. "
        }
        object_store::Error::NotFound { .. } => "the bucket does not exist: create it or fix backup.bucket. ",
        _ => "",
    };
    format!("{hint}storing {key}: {e}")
}

/// The backup worker. Runs on every node; works only while the node leads.
pub async fn run(
    cfg: BackupConfig,
    meta: Meta,
    store: Arc<BlobStore>,
    replicator: Replicator,
    state: SharedBackupState,
    shutdown: crate::Shutdown,
) {
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    let objects = match open_store(&cfg) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "ALARM backup disabled: the [backup] section cannot be used");
            state.lock().expect("backup state").last_error = Some(e.to_string());
            return;
        }
    };
    tracing::info!(bucket = %cfg.bucket, endpoint = ?cfg.endpoint, prefix = %cfg.prefix, "backup worker started");
    let mut wait = BACKUP_IDLE;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if !meta.is_leader() {
            wait = BACKUP_IDLE;
            continue;
        }
        let batch = match meta.read(|c| c.backup_queue(BACKUP_BATCH)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the backup queue");
                continue;
            }
        };
        if batch.is_empty() {
            wait = BACKUP_IDLE;
            continue;
        }
        let (done, error) = upload_batch(&batch, &objects, &cfg.prefix, &store, &replicator).await;
        if !done.is_empty() {
            let n = done.len();
            match meta.propose(Command::MarkBackedUp(done)).await {
                Ok(_) => {
                    let mut s = state.lock().expect("backup state");
                    s.last_success_ms = meta.now_ms();
                    tracing::debug!(segments = n, "backed up");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "backed-up segments not recorded yet; they will be uploaded again")
                }
            }
        }
        match error {
            Some(e) => {
                let first = state.lock().expect("backup state").last_error.is_none();
                if first {
                    tracing::error!(error = %e, "ALARM backup failing; retrying with back-off (recording is unaffected)");
                }
                state.lock().expect("backup state").last_error = Some(e);
                wait = (wait * 2).clamp(Duration::from_millis(500), BACKUP_RETRY_MAX);
            }
            None => {
                let recovered = state.lock().expect("backup state").last_error.take().is_some();
                if recovered {
                    tracing::info!("backup working again");
                }
                wait = Duration::ZERO;
            }
        }
    }
}

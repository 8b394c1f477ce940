//! `custos backup verify`: reads back what the bucket holds and checks it, so a backup
//! is known to be restorable before it is needed.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;

use super::snapshot::SnapshotFile;
use crate::config::BackupConfig;
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::segment::Keys;

/// Objects read at once.
const VERIFY_CONCURRENCY: usize = 4;

/// What a verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub snapshot: String,
    pub snapshot_created_ms: i64,
    /// `None` when the newest snapshot opened, matched its hash and its signature verified.
    pub snapshot_problem: Option<String>,
    pub backed_up: u64,
    pub checked: u64,
    pub ok: u64,
    pub missing: Vec<String>,
    pub corrupt: Vec<String>,
}

/// Checks the newest snapshot and `sample` backed-up segments (0: all of them).
///
/// The snapshot must be signed by the key it carries and, when this node has the
/// cluster's signing key (`cluster_key`, hex public half), by that key: a snapshot the
/// running cluster did not make is reported as a problem.
pub async fn verify(
    cfg: &BackupConfig,
    meta: &Meta,
    keys: &Arc<Keys>,
    cluster_key: Option<String>,
    sample: usize,
) -> Result<VerifyReport> {
    use futures::StreamExt;
    let objects = super::open_store(cfg)?;
    let mut report = VerifyReport::default();
    match super::list_snapshots(&objects, &cfg.prefix).await.map_err(Error::Store)?.pop() {
        None => report.snapshot_problem = Some("the bucket holds no catalog snapshot yet".into()),
        Some((key, created, _)) => {
            report.snapshot = key.clone();
            report.snapshot_created_ms = created;
            report.snapshot_problem =
                match super::restore::get_with_retries(&objects, &ObjectPath::from(key.as_str()), None).await? {
                    None => Some("listed but gone".into()),
                    Some(b) => {
                        let k = keys.clone();
                        let opened =
                            tokio::task::spawn_blocking(move || SnapshotFile::open(&b, &k, cluster_key.as_deref()))
                                .await
                                .map_err(|e| Error::Internal(e.to_string()))?;
                        opened.err().map(|e| e.to_string())
                    }
                };
        }
    }
    let (total, segments) = meta.read(move |c| c.backed_up_segments(sample)).await?;
    report.backed_up = total;
    let mut packs: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
    for (rec, loc) in segments {
        packs.entry(loc.pack).or_default().push((rec, loc));
    }
    let checks = futures::stream::iter(packs)
        .map(|(pack, members)| {
            let (objects, keys, key) = (objects.clone(), keys.clone(), super::pack::pack_key(&cfg.prefix, &pack));
            async move {
                let locs: Vec<_> = members.iter().map(|(_, l)| *l).collect();
                let blobs = super::restore::read_members(&objects, &key, &locs).await?;
                tokio::task::spawn_blocking(move || {
                    let name = |r: &crate::meta::SegmentRecord| format!("{}@{}", r.camera, r.start_ms);
                    let Some(blobs) = blobs else {
                        return members.iter().map(|(r, _)| (name(r), Check::Missing)).collect::<Vec<_>>();
                    };
                    members
                        .iter()
                        .zip(blobs)
                        .map(|((rec, _), blob)| {
                            match blob.and_then(|b| keys.open(&b, &rec.blob_hash, &rec.content_hash)) {
                                Ok(_) => (name(rec), Check::Ok),
                                Err(problem) => (name(rec), Check::Corrupt(problem)),
                            }
                        })
                        .collect()
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))
            }
        })
        .buffer_unordered(VERIFY_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for group in checks {
        for (name, check) in group? {
            report.checked += 1;
            match check {
                Check::Ok => report.ok += 1,
                Check::Missing => report.missing.push(name),
                Check::Corrupt(problem) => report.corrupt.push(format!("{name}: {problem}")),
            }
        }
    }
    report.missing.sort();
    report.corrupt.sort();
    Ok(report)
}

enum Check {
    Ok,
    Missing,
    Corrupt(String),
}

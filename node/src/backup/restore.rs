//! `custos-node restore`: rebuilds a node from the backup bucket and the offline recovery
//! identity alone, after every node of the cluster is gone.
//!
//! 1. Opens the newest snapshot under `s3://BUCKET/PREFIX/snapshots/` with the recovery
//!    identity, checks its BLAKE3 and its signature: by the signing key it carries, and
//!    with `--pubkey` that this key is the hospital's published one (without it, a forger
//!    who signs with a key of their own and carries it is not caught: the report says the
//!    signer was checked only against the key inside the snapshot). It then reports the
//!    snapshot's links: whether the previous snapshot it names is in the bucket, and
//!    whether a newer one names it.
//! 2. Loads its catalog into a new data directory and walks the whole audit chain; a
//!    broken chain stops the restore (the backup itself would be evidence of tampering).
//! 3. Downloads every pack the catalog points to, cuts each backed-up segment's sealed
//!    blob out of it, checks the ciphertext against `blob_hash`, decrypts it and checks
//!    the plaintext against `content_hash`, then stores the sealed blob. Segments the
//!    bucket does not hold are reported by name.
//! 4. Founds a one-node cluster on the restored state ([`crate::meta::offline::adopt`]):
//!    the lost nodes are retired, cameras move to the new node, and a chained audit
//!    entry records the restore. The cluster's own keys come back from the snapshot, so
//!    packages exported before the disaster still verify.
//!
//! More nodes then join it with `custos node join-token` / `custos-node join`, and
//! replication brings the footage back up to the replication factor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;

use super::snapshot::{self, SnapshotFile};
use crate::config::{BackupConfig, NodeConfig, CONFIG_FILE_NAME};
use crate::error::{Error, Result};
use crate::meta::offline;
use crate::meta::{BackupLocation, NodeRecord, SegmentRecord};
use crate::segment::{BlobStore, Hash, Keys};

/// Left in the data directory by a restore: the first start founds a new Raft group on
/// the restored catalog, then removes it.
pub const RESTORED_FILE: &str = "restored-founder";
/// Downloads in flight at once.
pub const RESTORE_CONCURRENCY: usize = 4;
/// Attempts per object before the restore gives up on the store.
const ATTEMPTS: u32 = 4;

/// Options for `custos-node restore`.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// `s3://BUCKET[/PREFIX]`.
    pub from: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub allow_http: bool,
    pub credentials_file: Option<PathBuf>,
    pub profile: String,
    /// The offline recovery identity `custos-node init` wrote.
    pub recovery_identity: PathBuf,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Where the restored node serves Prometheus metrics (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// Where it serves the web console (`None`: nowhere).
    pub web_listen: Option<SocketAddr>,
    pub campus: String,
    /// A snapshot key to restore instead of the newest.
    pub snapshot: Option<String>,
    /// Restore even if the bucket's newest seal is newer than the snapshot.
    pub accept_rollback: bool,
    /// The hospital's published signing key (hex, `custos export pubkey`): the snapshot
    /// must be signed by it.
    pub pubkey: Option<String>,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// Accept `file://` and `test://` sources (demos and trials only).
    pub allow_test_sources: bool,
    /// The hospital's name for export receipts (`hospital`).
    pub hospital: String,
}

/// What the restore did, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
    pub node_id: u64,
    pub campus: String,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub ca_file: Option<PathBuf>,
    pub snapshot_key: String,
    pub snapshot_created_ms: i64,
    pub snapshot_log_index: u64,
    pub audit_entries_verified: u64,
    pub segments_in_catalog: u64,
    pub segments_restored: u64,
    pub bytes_restored: u64,
    /// `camera@start_ms` of every segment the bucket did not hold.
    pub segments_missing: Vec<String>,
    /// `camera@start_ms: problem` of every object that failed verification.
    pub segments_corrupt: Vec<String>,
    pub nodes_retired: usize,
    pub elapsed_ms: u64,
    /// Set when the snapshot was older than the bucket's newest seal and
    /// `--accept-rollback` was given: what was lost.
    pub rollback_accepted: Option<String>,
    /// Hex public key that signed the snapshot (the key it carries).
    pub snapshot_signing_key: String,
    /// What that key was checked against.
    pub signer_checked_against: SignerCheck,
    /// Hex BLAKE3 of the previous snapshot's sealed object, as the snapshot names it
    /// ("": the first its worker knew of).
    pub previous_snapshot_blake3: String,
    /// Whether that previous snapshot is in the bucket.
    pub previous_link: PreviousLink,
    /// Its key, when found.
    pub previous_snapshot_key: Option<String>,
    /// Snapshots in the bucket, signed by the same key, that name this one as their
    /// previous: newer snapshots exist.
    pub newer_snapshots: Vec<String>,
}

/// What a restored snapshot's signer was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignerCheck {
    /// `--pubkey`: the hospital's published key. The cluster made the snapshot.
    PublishedKey,
    /// Only the key inside the snapshot: whole and self-consistent, maker unproven.
    SnapshotKeyOnly,
}

/// Whether the previous snapshot a snapshot names is in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreviousLink {
    /// It names none: the first snapshot its worker knew of.
    First,
    /// A snapshot in the bucket hashes to it.
    Found,
    /// None does (pruned beyond the newest kept, or deleted).
    NotInBucket,
}

/// Splits `s3://BUCKET[/PREFIX]`.
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::InvalidArgument(format!("--from {url:?}: expected s3://BUCKET or s3://BUCKET/PREFIX")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::InvalidArgument(format!("--from {url:?}: the bucket name is missing")));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Rebuilds a node in `opts.data_dir` from the bucket. See the module docs.
pub async fn restore(opts: &RestoreOptions) -> Result<RestoreReport> {
    let started = Instant::now();
    let (bucket, prefix) = parse_s3_url(&opts.from)?;
    custos_formats::fields::validate_campus(&opts.campus).map_err(Error::InvalidArgument)?;
    let dir = &opts.data_dir;
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?.next().is_some() {
        return Err(Error::AlreadyExists {
            what: "non-empty directory (restore needs a new or empty --data directory)",
            id: dir.display().to_string(),
        });
    }
    let pubkey = match &opts.pubkey {
        None => None,
        Some(k) => {
            let k = k.trim().to_lowercase();
            if k.len() != 64 || hex::decode(&k).is_err() {
                return Err(Error::InvalidArgument(format!(
                    "--pubkey {k:?}: expected the cluster's Ed25519 public key as 64 hex digits (custos export pubkey)"
                )));
            }
            Some(k)
        }
    };
    let identity = std::fs::read_to_string(&opts.recovery_identity)
        .map_err(|e| Error::io("read the recovery identity", &opts.recovery_identity, e))?;
    let recovery = Arc::new(Keys::new(&[], &identity)?);
    let backup = BackupConfig {
        endpoint: opts.endpoint.clone(),
        bucket,
        region: opts.region.clone(),
        prefix: prefix.clone(),
        allow_http: opts.allow_http,
        credentials_file: opts.credentials_file.clone(),
        profile: opts.profile.clone(),
        ..BackupConfig::default()
    };
    let objects = super::open_store(&backup)?;

    // 1. The snapshot.
    let key = match &opts.snapshot {
        Some(k) => k.clone(),
        None => {
            let all = super::list_snapshots(&objects, &prefix).await.map_err(Error::Store)?;
            let Some((k, _, _)) = all.into_iter().next_back() else {
                return Err(Error::NotFound {
                    what: "backup snapshot (has the cluster's backup worker stored one? see snapshot_every_s)",
                    id: format!("{}/{}", opts.from.trim_end_matches('/'), "snapshots/"),
                });
            };
            k
        }
    };
    let sealed = get_with_retries(&objects, &ObjectPath::from(key.as_str()), None)
        .await?
        .ok_or_else(|| Error::NotFound { what: "backup snapshot", id: key.clone() })?;
    let (recovery2, published) = (recovery.clone(), pubkey.clone());
    let (snap, sealed_blake3) = blocking(move || {
        let snap = SnapshotFile::open(&sealed, &recovery2, published.as_deref())?;
        Ok((snap, snapshot::object_blake3(&sealed)))
    })
    .await?;
    say(opts, &format!("snapshot {key}: catalog at log index {}, made by node {}", snap.applied_index, snap.made_by));
    let signer = snap.signer_hex()?;
    let fingerprint = custos_evidence::export::key_fingerprint(&signer);
    let signer_check = if pubkey.is_some() {
        say(opts, &format!("signed by the published key {fingerprint} (--pubkey)"));
        SignerCheck::PublishedKey
    } else {
        say(
            opts,
            &format!(
                "signature checked only against the key inside the snapshot ({fingerprint}): this shows the snapshot \
                 is whole, not who made it. Pass --pubkey with the hospital's published key (custos export pubkey) \
                 to check the cluster made it"
            ),
        );
        SignerCheck::SnapshotKeyOnly
    };
    let chain = check_chain(&objects, &prefix, &key, &sealed_blake3, &snap.previous_blake3, &signer, &recovery).await?;
    match (&chain.link, &chain.previous_key) {
        (PreviousLink::First, _) => say(opts, "it names no previous snapshot (the first its worker knew of)"),
        (PreviousLink::Found, Some(k)) => say(opts, &format!("the previous snapshot it names is in the bucket: {k}")),
        _ => say(opts, "the previous snapshot it names is not in the bucket (pruned, or deleted)"),
    }
    if !chain.newer.is_empty() {
        say(opts, &format!("NEWER snapshots name this one as their previous: {}", chain.newer.join(", ")));
    }

    // 2. The catalog and its audit chain.
    crate::create_private_dir(dir)?;
    crate::create_private_dir(&dir.join("keys"))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("resolve", dir, e))?;
    let db_path = dir.join("catalog");
    let state = std::mem::take(&mut { snap.state });
    let (db, audit_n, segments) = blocking(move || -> Result<_> {
        let db = crate::meta::db::open(&db_path)?;
        offline::load_restored(&db, &state)?;
        let n = offline::verify_audit(&db)?;
        let segs = offline::segments(&db)?;
        Ok((db, n, segs))
    })
    .await?;
    say(opts, &format!("audit chain verified: {audit_n} entries; {} segments catalogued", segments.len()));
    let rollback = match check_rollback(&objects, &prefix, &snap.keys, &db, audit_n, &key).await {
        Ok(None) => None,
        Ok(Some(lost)) if opts.accept_rollback => {
            say(opts, &format!("ROLLBACK ACCEPTED: {lost}"));
            Some(lost)
        }
        Ok(Some(lost)) => {
            drop(db);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Error::Integrity(format!(
                "REFUSED: {lost}. A newer snapshot was deleted from the bucket or never stored. Restore a newer \
                 snapshot (--snapshot KEY), or pass --accept-rollback to restore this one knowingly"
            )));
        }
        Err(e) => {
            drop(db);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };

    // 3. The blobs.
    let blob_root = dir.join("blobs");
    let store = Arc::new(blocking(move || BlobStore::open(&blob_root)).await?.0);
    let fetched = fetch_all(opts, &objects, &prefix, &segments, &recovery, &store).await?;
    let trash_applied = super::read_trash_cursor(&objects, &prefix).await?;

    // 4. The new cluster.
    let listen = opts.listen;
    let campus = opts.campus.clone();
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let restored = fetched.restored.clone();
    let lost = fetched.lost.clone();
    let source = match &rollback {
        Some(lost) => format!("{key} (ROLLBACK ACCEPTED: {lost})"),
        None => key.clone(),
    };
    let (node_id, adopted) = blocking(move || -> Result<_> {
        let id = offline::next_node_id(&db)?;
        let node = NodeRecord { id, campus, addr: listen.to_string(), joined_ms: now, retired: false };
        let a = offline::adopt(&db, &offline::Adoption { node, restored, lost, time_ms: now, source, trash_applied })?;
        db.flush().map_err(Error::Db)?;
        Ok((id, a))
    })
    .await?;
    let ca_file = write_node_files(&dir, &snap.keys, node_id, opts, backup)?;
    say(
        opts,
        &format!(
            "node {node_id} restored: {} segments verified, {} missing, {} corrupt; {} old nodes retired",
            adopted.segments_restored,
            fetched.missing.len(),
            fetched.corrupt.len(),
            adopted.nodes_retired
        ),
    );
    Ok(RestoreReport {
        config_file: dir.join(CONFIG_FILE_NAME),
        data_dir: dir,
        node_id,
        campus: opts.campus.clone(),
        listen: opts.listen,
        metrics_listen: opts.metrics_listen,
        ca_file,
        snapshot_key: key,
        snapshot_created_ms: snap.created_ms,
        snapshot_log_index: snap.applied_index,
        audit_entries_verified: audit_n,
        segments_in_catalog: segments.len() as u64,
        segments_restored: adopted.segments_restored,
        bytes_restored: fetched.bytes,
        segments_missing: fetched.missing,
        segments_corrupt: fetched.corrupt,
        nodes_retired: adopted.nodes_retired,
        elapsed_ms: started.elapsed().as_millis() as u64,
        rollback_accepted: rollback,
        snapshot_signing_key: signer,
        signer_checked_against: signer_check,
        previous_snapshot_blake3: snap.previous_blake3,
        previous_link: chain.link,
        previous_snapshot_key: chain.previous_key,
        newer_snapshots: chain.newer,
    })
}

/// A snapshot's place in the bucket's chain of snapshots.
struct Chain {
    link: PreviousLink,
    previous_key: Option<String>,
    newer: Vec<String>,
}

/// Looks for the snapshot `key` names as its previous among the older ones (hashing
/// their sealed objects, newest first), and for newer snapshots signed by `signer` that
/// name `key` (opening each). At most [`snapshot::KEEP_SNAPSHOTS`] each way; a newer
/// object that does not open or is not signed by `signer` is not counted.
async fn check_chain(
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
    key: &str,
    sealed_blake3: &str,
    previous: &str,
    signer: &str,
    recovery: &Arc<Keys>,
) -> Result<Chain> {
    let all = super::list_snapshots(objects, prefix).await.map_err(Error::Store)?;
    let mut chain = Chain {
        link: if previous.is_empty() { PreviousLink::First } else { PreviousLink::NotInBucket },
        previous_key: None,
        newer: Vec::new(),
    };
    if !previous.is_empty() {
        for (k, _, _) in all.iter().rev().filter(|(k, _, _)| k.as_str() < key).take(snapshot::KEEP_SNAPSHOTS) {
            let Some(b) = get_with_retries(objects, &ObjectPath::from(k.as_str()), None).await? else { continue };
            if blocking(move || Ok(snapshot::object_blake3(&b))).await? == previous {
                (chain.link, chain.previous_key) = (PreviousLink::Found, Some(k.clone()));
                break;
            }
        }
    }
    for (k, _, _) in all.iter().filter(|(k, _, _)| k.as_str() > key).take(snapshot::KEEP_SNAPSHOTS) {
        let Some(b) = get_with_retries(objects, &ObjectPath::from(k.as_str()), None).await? else { continue };
        let (recovery, signer) = (recovery.clone(), signer.to_string());
        let names: Result<String> =
            blocking(move || SnapshotFile::open(&b, &recovery, Some(&signer)).map(|s| s.previous_blake3)).await;
        match names {
            Ok(p) if p == sealed_blake3 => chain.newer.push(k.clone()),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(key = %k, error = %e, "a newer object in snapshots/ is not the cluster's snapshot")
            }
        }
    }
    Ok(chain)
}

/// Compares the restored catalog with the newest seal in the bucket signed by the
/// cluster's key. `Some(what would be lost)` if the seal recorded an audit log that the
/// snapshot does not hold (a rollback); a seal not signed by the cluster's key is
/// ignored, with a warning, since anyone with the bucket credentials can put one there.
async fn check_rollback(
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
    keys: &snapshot::ClusterKeys,
    db: &Arc<rocksdb::DB>,
    audit_n: u64,
    key: &str,
) -> Result<Option<String>> {
    use custos_evidence::seal::{SealFile, SealStatement};
    if keys.signing_key_pkcs8.is_empty() {
        return Ok(None);
    }
    let public = custos_evidence::export::SigningKey::from_pkcs8(&keys.signing_key_pkcs8)
        .map_err(Error::Integrity)?
        .public_hex();
    let seals = super::list_seals(objects, prefix).await.map_err(Error::Store)?;
    for (seq, seal_key) in seals.iter().rev() {
        let Some(body) = get_with_retries(objects, &ObjectPath::from(seal_key.as_str()), None).await? else {
            continue;
        };
        let file: Option<SealFile> = serde_json::from_slice(&body).ok();
        let statement: Option<SealStatement> = file.as_ref().and_then(|f| f.verify(Some(&public)).ok());
        let Some(s) = statement else {
            tracing::warn!(key = %seal_key, "seal {seq} in the bucket is not signed by this cluster's key; ignored");
            continue;
        };
        if s.audit_seq > audit_n {
            return Ok(Some(format!(
                "the bucket's newest seal (seal {} of {}) records the audit log up to entry {}, but snapshot {key} \
                 holds {audit_n} entries: restoring it loses entries {}..{} and what they recorded (accesses, \
                 changes, holds, deletions) up to {}",
                s.seq,
                s.day,
                s.audit_seq,
                audit_n + 1,
                s.audit_seq,
                custos_formats::fields::fmt_ms(s.to_ms)
            )));
        }
        let held = offline::audit_hash_at(db, s.audit_seq)?;
        if s.audit_seq > 0 && held.map(hex::encode) != Some(s.audit_hash.clone()) {
            return Ok(Some(format!(
                "the snapshot's audit entry {} differs from what the bucket's seal {} of {} recorded: the \
                 snapshot's history is not the cluster's",
                s.audit_seq, s.seq, s.day
            )));
        }
        return Ok(None);
    }
    Ok(None)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(e.to_string()))?
}

fn say(opts: &RestoreOptions, line: &str) {
    if opts.progress {
        eprintln!("restore: {line}");
    }
}

/// Gets an object, or `range` of it, retrying transient failures; `None` when the store
/// does not have it.
pub(super) async fn get_with_retries(
    objects: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    range: Option<std::ops::Range<u64>>,
) -> Result<Option<Vec<u8>>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = match &range {
            None => async { objects.get(key).await?.bytes().await }.await,
            Some(r) => objects.get_range(key, r.clone()).await,
        };
        match r {
            Ok(b) => return Ok(Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) if attempt >= ATTEMPTS => {
                return Err(Error::Store(format!(
                    "{}; gave up after {ATTEMPTS} attempts (a restore stopped here leaves a partial --data directory: delete it and run again once the store answers)",
                    super::explain("reading", key, &e)
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250 << attempt)).await,
        }
    }
}

/// Reads members' sealed blobs out of one pack: by ranged GETs when there are few, else
/// the whole object at once. `None` when the bucket does not hold the pack; a member the
/// object is too short for comes back as an error saying so.
pub(crate) async fn read_members(
    objects: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    locs: &[BackupLocation],
) -> Result<Option<Vec<std::result::Result<Vec<u8>, String>>>> {
    if locs.len() <= 2 {
        let mut out = Vec::with_capacity(locs.len());
        for l in locs {
            match get_with_retries(objects, key, Some(l.offset..l.offset + l.len)).await {
                Ok(Some(b)) if b.len() as u64 == l.len => out.push(Ok(b)),
                Ok(None) => return Ok(None),
                // A range the object no longer covers: read it whole to say what is there.
                Ok(Some(_)) | Err(_) => return read_whole(objects, key, locs).await,
            }
        }
        return Ok(Some(out));
    }
    read_whole(objects, key, locs).await
}

async fn read_whole(
    objects: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    locs: &[BackupLocation],
) -> Result<Option<Vec<std::result::Result<Vec<u8>, String>>>> {
    let Some(object) = get_with_retries(objects, key, None).await? else { return Ok(None) };
    Ok(Some(
        locs.iter()
            .map(|l| {
                object.get(l.offset as usize..(l.offset + l.len) as usize).map(<[u8]>::to_vec).ok_or_else(|| {
                    format!(
                        "the pack object is {} bytes, too short for this segment at {}..{} (truncated in the bucket)",
                        object.len(),
                        l.offset,
                        l.offset + l.len
                    )
                })
            })
            .collect(),
    ))
}

#[derive(Default)]
struct Fetched {
    restored: HashMap<Hash, (Hash, u64)>,
    bytes: u64,
    missing: Vec<String>,
    corrupt: Vec<String>,
    /// Why each segment not restored was lost, by content hash.
    lost: HashMap<Hash, String>,
}

/// Downloads every backed-up segment's blob, pack by pack, verifies and stores it.
async fn fetch_all(
    opts: &RestoreOptions,
    objects: &Arc<dyn ObjectStore>,
    prefix: &str,
    segments: &[(SegmentRecord, Option<BackupLocation>)],
    keys: &Arc<Keys>,
    store: &Arc<BlobStore>,
) -> Result<Fetched> {
    use futures::StreamExt;
    let mut out = Fetched::default();
    let mut packs: HashMap<Hash, Vec<(SegmentRecord, BackupLocation)>> = HashMap::new();
    for (rec, loc) in segments {
        match loc {
            Some(l) => packs.entry(l.pack).or_default().push((rec.clone(), *l)),
            None => {
                out.missing.push(format!("{}@{} (never backed up)", rec.camera, rec.start_ms));
                out.lost.insert(
                    rec.content_hash,
                    "it was committed but never reached the backup bucket before the cluster was lost".into(),
                );
            }
        }
    }
    let mut results = futures::stream::iter(packs)
        .map(|(pack, members)| {
            let (objects, keys, store, key) =
                (objects.clone(), keys.clone(), store.clone(), super::pack::pack_key(prefix, &pack));
            async move {
                let locs: Vec<_> = members.iter().map(|(_, l)| *l).collect();
                let Some(blobs) = read_members(&objects, &key, &locs).await? else {
                    return Ok(members.into_iter().map(|(rec, _)| (rec, Outcome::Missing)).collect());
                };
                blocking(move || {
                    let mut outcomes = Vec::with_capacity(members.len());
                    for ((rec, _), blob) in members.into_iter().zip(blobs) {
                        // A copy sealed separately from the catalogued one still holds
                        // exactly the catalogued footage when its plaintext hash matches.
                        // Either way the blob's own hash comes out with it: the
                        // catalogued one when it matched, else hashed once here.
                        let checked = blob.and_then(|blob| {
                            keys.open(&blob, &rec.blob_hash, &rec.content_hash)
                                .map(|_| rec.blob_hash)
                                .or_else(|problem| {
                                    keys.open_content(&blob, &rec.content_hash)
                                        .map(|_| *blake3::hash(&blob).as_bytes())
                                        .map_err(|_| problem)
                                })
                                .map(|hash| (blob, hash))
                        });
                        outcomes.push(match checked {
                            Err(problem) => (rec, Outcome::Corrupt(problem)),
                            Ok((blob, hash)) => {
                                let blob_hash = store.put(&rec.content_hash, &blob, &hash)?;
                                (rec, Outcome::Restored(blob_hash, blob.len() as u64))
                            }
                        });
                    }
                    Ok(outcomes)
                })
                .await
            }
        })
        .buffer_unordered(RESTORE_CONCURRENCY);
    let mut last_report = Instant::now();
    let mut done = out.missing.len();
    while let Some(r) = results.next().await {
        for (rec, outcome) in r? {
            let name = format!("{}@{}", rec.camera, rec.start_ms);
            match outcome {
                Outcome::Restored(blob_hash, n) => {
                    out.restored.insert(rec.content_hash, (blob_hash, n));
                    out.bytes += n;
                }
                Outcome::Missing => {
                    out.missing.push(name);
                    out.lost.insert(rec.content_hash, "its pack was not in the backup bucket at the restore".into());
                }
                Outcome::Corrupt(problem) => {
                    out.lost.insert(rec.content_hash, format!("the bucket's copy failed verification: {problem}"));
                    out.corrupt.push(format!("{name}: {problem}"));
                }
            }
            done += 1;
        }
        if last_report.elapsed() > Duration::from_secs(5) || done == segments.len() {
            last_report = Instant::now();
            say(opts, &format!("{done}/{} segments fetched and verified ({} bytes)", segments.len(), out.bytes));
        }
    }
    out.missing.sort();
    out.corrupt.sort();
    Ok(out)
}

enum Outcome {
    /// The stored copy's blob hash and size.
    Restored(Hash, u64),
    Missing,
    Corrupt(String),
}

/// Writes the keys, certificate, config and founder marker of the restored node.
fn write_node_files(
    dir: &Path,
    keys: &snapshot::ClusterKeys,
    node_id: u64,
    opts: &RestoreOptions,
    backup: BackupConfig,
) -> Result<Option<PathBuf>> {
    use crate::init::{write_config, write_private, write_private_bytes, write_tls_files};
    write_private(&dir.join("keys/archive.age"), &keys.archive_identity)?;
    if !keys.signing_key_pkcs8.is_empty() {
        write_private_bytes(&dir.join(crate::export::SIGNING_KEY_FILE), &keys.signing_key_pkcs8)?;
    }
    // The cluster's CA comes back, so clients' --ca files stay valid; a snapshot from a
    // development node without TLS gets a new CA.
    let (ca_pem, ca_key) = if keys.ca_pem.is_empty() {
        let pki = crate::tls::create_pki(node_id, opts.listen)?;
        (pki.ca_cert_pem, pki.ca_key_pem)
    } else {
        (keys.ca_pem.clone(), keys.ca_key_pem.clone())
    };
    let (cert, key) = crate::tls::issue_node_cert(&ca_pem, &ca_key, node_id, &opts.listen.to_string())?;
    let tls = write_tls_files(dir, (&ca_pem, &ca_key), (&cert, &key))?;
    let mut cfg = NodeConfig::with_defaults(node_id, opts.listen, keys.archive_recipients.clone());
    if keys.segment_target_ms > 0 {
        cfg.segment_target_ms = keys.segment_target_ms;
    }
    cfg.campus = opts.campus.clone();
    cfg.metrics_listen = opts.metrics_listen;
    cfg.web_listen = opts.web_listen;
    cfg.allow_test_sources = opts.allow_test_sources;
    cfg.hospital = opts.hospital.trim().to_string();
    cfg.tls = Some(tls.clone());
    cfg.insecure_plaintext = false;
    // The restored cluster goes on backing up to the bucket it came from.
    cfg.backup = Some(backup);
    crate::files::write_file_atomic(&dir.join(RESTORED_FILE), b"founds a new group on the restored catalog\n")?;
    write_config(dir, cfg)?;
    Ok(Some(dir.join(tls.ca_file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(parse_s3_url("s3://footage").unwrap(), ("footage".into(), "".into()));
        assert_eq!(parse_s3_url("s3://footage/site-a/").unwrap(), ("footage".into(), "site-a".into()));
        assert!(parse_s3_url("https://footage").unwrap_err().to_string().contains("s3://BUCKET"));
        assert!(parse_s3_url("s3:///x").unwrap_err().to_string().contains("bucket name"));
    }
}

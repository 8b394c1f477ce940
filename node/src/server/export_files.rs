//! The files of an export package made again on download: the MP4 and the redacted
//! copy rebuilt from the archived segments, the custody receipt from the manifest. Each
//! is checked against the hash the signed manifest lists for it.

use custos_evidence::export::{FileEntry, Manifest, SegmentEntry, KIND_REDACTED};
use custos_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::Status;

use super::guard::Caller;
use super::{Services, FETCH_CHUNK_BYTES};
use crate::segment::open_segment;
use crate::zones::Zone;

/// The package's receipt, made again from the stored manifest (off the reactor: it lays
/// out text and subsets a font) and checked against the hash the manifest lists for it.
pub(super) async fn rebuilt_receipt(manifest: &Manifest, entry: &FileEntry) -> Result<Vec<u8>, Status> {
    let m = manifest.clone();
    let pdf = tokio::task::spawn_blocking(move || crate::export::receipt_of(&m))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::internal)?;
    if blake3::hash(&pdf).to_hex().as_str() != entry.blake3 {
        return Err(Status::data_loss(format!(
            "the custody receipt of export {} made on this node differs from the one its manifest lists: this \
                 node's build renders it differently (another release?); download it through a node that runs the \
                 release that built the package. The footage and the manifest are unaffected",
            manifest.export_id
        )));
    }
    Ok(pdf)
}

impl Services {
    /// Rebuilds an MP4 of the package from its original's segments and streams it from
    /// byte `offset`. The segments are verified as for the original; the MP4's own hash
    /// is known only at its end, so a rebuild that differs from the manifest ends the
    /// stream with an error (DATA_LOSS), on which the client discards what it got.
    pub(super) async fn stream_mp4(
        &self,
        caller: &Caller,
        segs: Vec<SegmentEntry>,
        entry: FileEntry,
        offset: u64,
        tx: mpsc::Sender<Result<pb::DownloadChunk, Status>>,
    ) {
        let Some(start_ms) = segs.first().map(|s| s.start_ms) else {
            let _ = tx.send(Err(Status::data_loss(format!("{}: its original lists no segments", entry.name)))).await;
            return;
        };
        if offset >= entry.bytes {
            return; // nothing left to send
        }
        // A rebuild (a redacted copy decodes and encodes) costs a core while it runs: a few
        // at a time per node, the others wait their turn rather than starve recording.
        let Ok(_turn) = self.derived_downloads.clone().acquire_owned().await else { return };
        // The MP4 flows out only once every segment is in (its index comes first), so the
        // caller's authorisation is checked again every few seconds while it does.
        let revoked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watch = {
            let (svc, caller, revoked) = (self.clone(), caller.clone(), revoked.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    if svc.recheck(&caller).await.is_err() {
                        revoked.store(true, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            })
        };
        let (out, stop) = (tx.clone(), revoked.clone());
        let mut pos = 0u64;
        let zones = match entry.kind.as_deref() {
            Some(KIND_REDACTED) => match entry.zones.iter().map(|z| Zone::parse(z)).collect::<Result<Vec<_>, _>>() {
                Ok(z) => Some(z),
                Err(e) => {
                    let _ = tx.send(Err(Status::data_loss(format!("{}: {e}", entry.name)))).await;
                    return;
                }
            },
            _ => None,
        };
        let (feed, job) = self.spawn_remux(start_ms, zones, move |b| {
            let skip = offset.saturating_sub(pos).min(b.len() as u64) as usize;
            pos += b.len() as u64;
            !stop.load(std::sync::atomic::Ordering::SeqCst)
                && b[skip..]
                    .chunks(FETCH_CHUNK_BYTES)
                    .all(|c| out.blocking_send(Ok(pb::DownloadChunk { data: c.to_vec() })).is_ok())
        });
        for s in segs {
            let next = match self.recheck(caller).await {
                Ok(()) => self.archived_segment(&s).await,
                Err(status) => {
                    tracing::warn!(user = %caller.who.name, reason = status.message(), "export download stopped: the caller is no longer authorised");
                    Err(status)
                }
            };
            match next {
                Ok(plain) => {
                    if feed.send(Ok(plain)).await.is_err() {
                        break;
                    }
                }
                Err(status) => {
                    let _ = feed.send(Err(status.message().to_string())).await;
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
        }
        drop(feed);
        let done = job.await;
        watch.abort();
        if revoked.load(std::sync::atomic::Ordering::SeqCst) {
            let status = match self.recheck(caller).await {
                Err(status) => status,
                Ok(()) => Status::unauthenticated("the caller's authorisation lapsed during the download"),
            };
            tracing::warn!(user = %caller.who.name, reason = status.message(), "export download stopped: the caller is no longer authorised");
            let _ = tx.send(Err(status)).await;
            return;
        }
        match done {
            Ok(d) if d.blake3 == entry.blake3 && d.bytes == entry.bytes => {}
            Ok(_) if tx.is_closed() => {}
            Ok(_) => {
                let _ = tx
                    .send(Err(Status::data_loss(format!(
                        "{} rebuilt on this node differs from the MP4 the manifest lists (another GStreamer release?); \
                         discard it. The original {} is intact: download it, or this file through a node that runs \
                         the release that built the package",
                        entry.name,
                        entry.derived_from.as_deref().unwrap_or("MPEG-TS")
                    ))))
                    .await;
            }
            Err(e) => {
                let _ = tx.send(Err(Status::internal(format!("{}: {e}", entry.name)))).await;
            }
        }
    }

    /// The verified plaintext of one segment of an archived copy.
    pub(super) async fn archived_segment(&self, s: &custos_evidence::export::SegmentEntry) -> Result<Vec<u8>, Status> {
        let (cam, start) = (s.camera.clone(), s.start_ms);
        let rec = self.meta.read(move |c| c.segment(&cam, start)).await?.ok_or_else(|| {
            Status::data_loss(format!(
                "segment {}@{} of the archived copy is missing from the catalog",
                s.camera, s.start_ms
            ))
        })?;
        let plain = open_segment(&rec, &self.store, &self.keys, &self.replicator).await?;
        if blake3::hash(&plain).to_hex().as_str() != s.blake3 {
            return Err(Status::data_loss(format!("segment {}@{} differs from the manifest", s.camera, s.start_ms)));
        }
        Ok(plain)
    }

    /// Rebuilds a media file from its segments, from byte `offset` on, verifying each
    /// segment against the catalog and the manifest before sending any of it.
    /// The caller's token is checked again before each segment, so a revocation stops the
    /// download within one segment.
    pub(super) async fn stream_media(
        &self,
        caller: &Caller,
        segs: Vec<custos_evidence::export::SegmentEntry>,
        offset: u64,
        tx: mpsc::Sender<Result<pb::DownloadChunk, Status>>,
    ) {
        for s in segs.into_iter().filter(|s| s.offset + s.bytes > offset) {
            if let Err(status) = self.recheck(caller).await {
                tracing::warn!(user = %caller.who.name, reason = status.message(), "export download stopped: the caller is no longer authorised");
                let _ = tx.send(Err(status)).await;
                return;
            }
            let plain = match self.archived_segment(&s).await {
                Ok(p) => p,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            let skip = offset.saturating_sub(s.offset) as usize;
            for c in plain[skip.min(plain.len())..].chunks(FETCH_CHUNK_BYTES) {
                if tx.send(Ok(pb::DownloadChunk { data: c.to_vec() })).await.is_err() {
                    return;
                }
            }
        }
    }
}

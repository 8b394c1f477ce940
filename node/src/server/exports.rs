//! The Exports service: request → second-person decision → run (build, sign, archive
//! under a hold) → download. Each step is one audited Raft entry; downloads are audited
//! before a byte is sent.

use custos_evidence::export::{Manifest, KIND_MP4, KIND_RECEIPT, KIND_REDACTED, MANIFEST_FILE, SIGNATURE_FILE};
use custos_proto::v1 as pb;
use custos_proto::v1::exports_server::Exports;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::export_files::rebuilt_receipt;
use super::guard::Caller;
use super::{validate_range, Services, FETCH_CHUNK_BYTES, FETCH_QUEUE};
use crate::access::{authorize, Action, FootageScope, Role};
use crate::audit::{AuditAction, Outcome};
use crate::export::{file_names, mp4, BuiltFile, Derived, EXPORT_RANGES_MAX, EXPORT_SEGMENTS_MAX};
use crate::meta::types::ExportRedaction;
use crate::meta::{Command, ExportRecord, ExportStatus, Response as Applied};
use crate::retention::Hold;
use crate::segment::open_segment;
use crate::zones::Zone;

/// Where a remux takes its input: segment plaintexts in order, or why it must stop.
type Feed = mpsc::Sender<Result<Vec<u8>, String>>;

/// Segments read and verified concurrently while an export runs.
pub const EXPORT_PARALLEL_SEGMENTS: usize = 2;

fn text_field(what: &str, v: &str, max: usize) -> Result<String, Status> {
    let v = v.trim();
    if v.is_empty() || v.len() > max {
        return Err(Status::invalid_argument(format!("{what} is required (1 to {max} characters)")));
    }
    Ok(v.to_string())
}

fn status_of(r: Applied) -> Result<Applied, Status> {
    match r {
        Applied::Rejected(kind, why) => Err(super::rejected(kind, why)),
        other => Ok(other),
    }
}

/// The files of a completed package with their sizes.
fn package_files(rec: &ExportRecord) -> Vec<pb::PackageFile> {
    let (Some(m), Some(sig)) = (&rec.manifest, &rec.signature) else { return vec![] };
    let mut out = vec![
        pb::PackageFile { name: MANIFEST_FILE.into(), bytes: m.len() as u64 },
        pb::PackageFile { name: SIGNATURE_FILE.into(), bytes: sig.len() as u64 },
    ];
    if let Ok(man) = serde_json::from_str::<Manifest>(m) {
        out.extend(
            man.files.iter().filter(|f| !f.withheld).map(|f| pb::PackageFile { name: f.name.clone(), bytes: f.bytes }),
        );
    }
    out
}

/// Reads `CAMERA:ZONE` boxes of an export request.
fn parse_boxes(boxes: &[String]) -> Result<Vec<(String, Zone)>, Status> {
    boxes
        .iter()
        .map(|b| {
            let (camera, zone) = b.split_once(':').ok_or_else(|| {
                Status::invalid_argument(format!("redaction box {b:?}: write CAMERA:ZONE, e.g. door:0.1,0.1,0.3,0.4"))
            })?;
            Ok((camera.trim().to_string(), Zone::parse(zone).map_err(Status::invalid_argument)?))
        })
        .collect()
}

fn to_pb(rec: &ExportRecord, red: Option<&ExportRedaction>) -> pb::Export {
    pb::Export {
        redacted: red.is_some(),
        redact_boxes: red.map(|r| r.extra.iter().map(|(c, z)| format!("{c}:{z}")).collect()).unwrap_or_default(),
        originals: match red.map(|r| r.include_original) {
            Some(Some(true)) => "included".into(),
            Some(Some(false)) => "withheld".into(),
            _ => String::new(),
        },
        id: rec.id.clone(),
        case_id: rec.case_id.clone(),
        organisation: rec.organisation.clone(),
        letter: rec.letter.clone(),
        purpose: rec.purpose.clone(),
        requester: rec.requester.clone(),
        requested_ms: rec.requested_ms,
        ranges: rec
            .ranges
            .iter()
            .map(|(c, f, t)| pb::ExportRange { camera: c.clone(), from_ms: *f, to_ms: *t })
            .collect(),
        status: rec.status.as_str().into(),
        decided_by: rec.decided_by.clone().unwrap_or_default(),
        decided_ms: rec.decided_ms.unwrap_or_default(),
        reason: rec.reason.clone(),
        merkle_root: rec.merkle_root.clone().unwrap_or_default(),
        hold_id: rec.hold_id.clone().unwrap_or_default(),
        completed_ms: rec.completed_ms.unwrap_or_default(),
        files: package_files(rec),
    }
}

impl Services {
    /// Loads an export the caller may see (investigators: their own case only). A refusal
    /// is audited under `action`.
    async fn visible_export(&self, caller: &Caller, action: Action, id: &str) -> Result<ExportRecord, Status> {
        let id2 = id.to_string();
        let rec = self
            .meta
            .read(move |c| c.export(&id2))
            .await?
            .ok_or_else(|| Status::not_found(format!("export {id} does not exist")))?;
        if caller.who.role == Role::Investigator && caller.who.case.as_deref() != Some(rec.case_id.as_str()) {
            let why = format!("export {id} belongs to another case; investigators see their own case only");
            return Err(self.deny(caller, action, &rec, why).await);
        }
        Ok(rec)
    }

    /// Audits a refusal concerning export `rec` and returns the PermissionDenied to send.
    async fn deny(&self, caller: &Caller, action: Action, rec: &ExportRecord, why: String) -> Status {
        let mut ev = caller.event(action.into(), Outcome::Denied);
        ev.cameras = rec.ranges.iter().map(|(c, _, _)| c.clone()).collect();
        ev.detail = format!("export {} (case {})", rec.id, rec.case_id);
        ev.reason = why.clone();
        match self.audit(ev).await {
            Ok(()) => Status::permission_denied(why),
            Err(unavailable) => unavailable,
        }
    }

    /// May `caller` download export `rec`? Investigators of its case may (that is what the
    /// approval was for), and so may the security officer who requested it. Other
    /// security staff may only if they hold the grant for every sensitive camera in it:
    /// sensitivity is that of the footage, checked at download time.
    async fn may_download(&self, caller: &Caller, rec: &ExportRecord) -> Result<(), String> {
        if caller.who.role == Role::Investigator || caller.who.name == rec.requester {
            return Ok(());
        }
        let ranges = rec.ranges.clone();
        let sensitive: Vec<String> = self
            .meta
            .read(move |c| {
                let mut out = Vec::new();
                for (cam, from, to) in &ranges {
                    if c.footage_sensitive(cam, *from, *to)? && !out.contains(cam) {
                        out.push(cam.clone());
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| format!("cannot read the catalog: {e}"))?;
        match sensitive.iter().find(|cam| !caller.who.grants.contains(cam)) {
            None => Ok(()),
            Some(cam) => Err(format!(
                "export {} holds footage of sensitive camera {cam}, which you hold no grant for; only its requester \
                 ({}), staff granted every sensitive camera in it, and the case's investigators may download it",
                rec.id, rec.requester
            )),
        }
    }

    async fn export_reply(&self, id: String) -> Result<Response<pb::Export>, Status> {
        let rec = self.meta.read(move |c| c.export(&id)).await?.ok_or_else(|| Status::internal("export vanished"))?;
        self.export_pb(&rec).await.map(Response::new)
    }

    async fn export_pb(&self, rec: &ExportRecord) -> Result<pb::Export, Status> {
        let id = rec.id.clone();
        let red = self.meta.read(move |c| c.export_redaction(&id)).await?;
        Ok(to_pb(rec, red.as_ref()))
    }

    /// The zones to fill in each camera of a redacted export: its privacy zones now, plus
    /// the request's boxes for it.
    async fn zones_for(&self, red: &ExportRedaction, cameras: Vec<String>) -> Result<Vec<(String, Vec<Zone>)>, Status> {
        let extra = red.extra.clone();
        Ok(self
            .meta
            .read(move |c| {
                cameras
                    .into_iter()
                    .map(|cam| {
                        let mut zones = c.privacy_zones(&cam)?;
                        zones.extend(extra.iter().filter(|(x, _)| *x == cam).map(|(_, z)| z.clone()));
                        Ok((cam, zones))
                    })
                    .collect::<crate::Result<Vec<_>>>()
            })
            .await?)
    }

    /// Reads, verifies and hashes every segment of `rec`'s ranges, file by file, making
    /// each file's MP4 and, for a redacted export (`zones`: per camera), its redacted
    /// derivative from the same plaintexts.
    async fn build_files(
        &self,
        rec: &ExportRecord,
        zones: Option<&[(String, Vec<Zone>)]>,
    ) -> Result<Vec<BuiltFile>, Status> {
        let mut files = Vec::new();
        let mut total = 0;
        for ((camera, from, to), name) in rec.ranges.iter().zip(file_names(&rec.ranges)) {
            let (cam, from, to) = (camera.clone(), *from, *to);
            let (segs, more, clocks) = self
                .meta
                .read(move |c| {
                    let (segs, more) = c.search(&cam, from, to, EXPORT_SEGMENTS_MAX)?;
                    let clocks = segs
                        .iter()
                        .map(|s| Ok(c.segment_clock(&s.camera, s.start_ms)?.map(|k| k.offset_ms)))
                        .collect::<crate::Result<Vec<_>>>()?;
                    Ok((segs, more, clocks))
                })
                .await?;
            total += segs.len();
            if more || total > EXPORT_SEGMENTS_MAX {
                return Err(Status::failed_precondition(format!(
                    "the export holds more than {EXPORT_SEGMENTS_MAX} segments; split it into several requests"
                )));
            }
            // The MP4 is remuxed from the same plaintexts as they pass, on a blocking thread.
            let (remux_tx, remux) = match segs.first() {
                Some(first) => {
                    let (tx, job) = self.spawn_remux(first.start_ms, None, |_| true);
                    (Some(tx), Some(job))
                }
                None => (None, None),
            };
            let cam_zones =
                zones.map(|z| z.iter().find(|(c, _)| c == camera).map(|(_, z)| z.clone()).unwrap_or_default());
            let (redact_tx, redact) = match (segs.first(), &cam_zones) {
                (Some(first), Some(z)) => {
                    let (tx, job) = self.spawn_remux(first.start_ms, Some(z.clone()), |_| true);
                    (Some(tx), Some(job))
                }
                _ => (None, None),
            };
            // Two segments are read and verified at a time (in order), one per core.
            use futures::StreamExt;
            let mut opened = futures::stream::iter(segs.clone())
                .map(|s| {
                    let (store, keys, replicator) = (self.store.clone(), self.keys.clone(), self.replicator.clone());
                    async move { open_segment(&s, &store, &keys, &replicator).await }
                })
                .buffered(EXPORT_PARALLEL_SEGMENTS);
            let mut hasher = blake3::Hasher::new();
            let mut bytes = 0;
            while let Some(plain) = opened.next().await {
                let plain = plain?;
                hasher.update(&plain);
                bytes += plain.len() as u64;
                if let Some(tx) = &redact_tx {
                    let _ = tx.send(Ok(plain.clone())).await;
                }
                if let Some(tx) = &remux_tx {
                    // A remux that failed has stopped listening; the failure is read below.
                    let _ = tx.send(Ok(plain)).await;
                }
            }
            drop((opened, remux_tx, redact_tx));
            let blake3 = hasher.finalize().to_hex().to_string();
            let mp4 = match remux {
                None => None,
                Some(job) => match job.await {
                    Ok(d) => Some(d),
                    // The original is the evidence; a package without the MP4 of one file
                    // is still whole. Say why in the log and the run's audit entry.
                    Err(e) => {
                        tracing::warn!(export = %rec.id, file = %name, error = %e, "no MP4 for this file: the package carries its MPEG-TS only");
                        None
                    }
                },
            };
            let redacted = match (redact, cam_zones) {
                (Some(job), Some(z)) => match job.await {
                    Ok(d) => Some((d, z)),
                    // Asked for and approved: without it the package cannot go out.
                    Err(e) => {
                        return Err(Status::internal(format!("cannot make the redacted copy of {name}: {e}")));
                    }
                },
                _ => None,
            };
            files.push(BuiltFile { name, segments: segs, clock_offsets_ms: clocks, blake3, bytes, mp4, redacted });
        }
        if total == 0 {
            return Err(Status::failed_precondition("no footage is catalogued in the requested ranges"));
        }
        Ok(files)
    }

    /// Starts an MP4 remux on a blocking thread: segment plaintexts go into the returned
    /// sender (an `Err` aborts); `out` sees the MP4 piece by piece (false: stop). The job
    /// returns the MP4's size and BLAKE3.
    pub(super) fn spawn_remux(
        &self,
        start_ms: i64,
        redact: Option<Vec<Zone>>,
        mut out: impl FnMut(&[u8]) -> bool + Send + 'static,
    ) -> (Feed, impl std::future::Future<Output = Result<Derived, String>>) {
        let (tx, rx) = mpsc::channel(2);
        let scratch = self.store.scratch_path("export-mp4");
        let job = tokio::task::spawn_blocking(move || {
            let mut hasher = blake3::Hasher::new();
            let mut bytes = 0u64;
            let mut sink = |b: &[u8]| {
                hasher.update(b);
                bytes += b.len() as u64;
                out(b)
            };
            let r = match &redact {
                None => mp4::remux(rx, start_ms, &scratch, &mut sink),
                Some(zones) => crate::export::redact::redact(rx, zones, start_ms, &scratch, &mut sink).map(|_| ()),
            };
            if let Err(e) = std::fs::remove_file(&scratch) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %scratch.display(), error = %e, "could not remove an MP4 working file");
                }
            }
            r.map(|()| Derived { bytes, blake3: hasher.finalize().to_hex().to_string() })
        });
        (tx, async move { job.await.map_err(|e| format!("the MP4 remux stopped: {e}"))? })
    }
}

#[tonic::async_trait]
impl Exports for Services {
    async fn request_export(&self, req: Request<pb::RequestExportRequest>) -> Result<Response<pb::Export>, Status> {
        let caller = self.guard(&req, Action::RequestExport, false).await?;
        let r = req.into_inner();
        let case_id = text_field("--case", &r.case_id, 64)?;
        let organisation = text_field("--org (the requesting organisation)", &r.organisation, 200)?;
        let letter = text_field("--letter (the reference of the official letter)", &r.letter, 200)?;
        crate::access::validate_purpose(&r.purpose).map_err(Status::invalid_argument)?;
        if r.ranges.is_empty() || r.ranges.len() > EXPORT_RANGES_MAX {
            return Err(Status::invalid_argument(format!("name 1 to {EXPORT_RANGES_MAX} camera ranges")));
        }
        let now = self.clock.now_ms();
        for g in &r.ranges {
            crate::ingest::validate_camera_id(&g.camera).map_err(Status::invalid_argument)?;
            validate_range(g.from_ms, g.to_ms)?;
            let (cam, from, to) = (g.camera.clone(), g.from_ms, g.to_ms);
            let (known, sensitive) = self
                .meta
                .read(move |c| {
                    let known = c.camera(&cam)?.is_some() || c.last_segment(&cam)?.is_some();
                    Ok((known, c.footage_sensitive(&cam, from, to)?))
                })
                .await?;
            if !known {
                return Err(Status::not_found(format!("camera {} is not known", g.camera)));
            }
            let scope = FootageScope { camera: &g.camera, sensitive, from_ms: g.from_ms };
            if let Err(why) = authorize(&caller.who, Action::RequestExport, Some(&scope), now) {
                let mut ev = caller.event(AuditAction::ExportRequest, Outcome::Denied);
                ev.cameras = vec![g.camera.clone()];
                ev.from_ms = Some(g.from_ms);
                ev.to_ms = Some(g.to_ms);
                ev.purpose = r.purpose.trim().to_string();
                ev.detail = format!("case {case_id} for {organisation} (letter {letter})");
                ev.reason = why.clone();
                self.audit(ev).await?;
                return Err(Status::permission_denied(why));
            }
        }
        let rec = ExportRecord::request(
            (case_id, organisation, letter),
            r.purpose.trim().to_string(),
            caller.who.name.clone(),
            r.ranges.iter().map(|g| (g.camera.clone(), g.from_ms, g.to_ms)).collect(),
        );
        let boxes = parse_boxes(&r.redact_boxes)?;
        if !boxes.is_empty() && !r.redact {
            return Err(Status::invalid_argument("redaction boxes need --redact"));
        }
        if r.redact {
            // Every camera must have something to fill, or its "redacted" copy would show
            // everything.
            let cameras: Vec<String> = rec.ranges.iter().map(|(c, _, _)| c.clone()).collect();
            let red = ExportRedaction { extra: boxes.clone(), include_original: None };
            for (cam, zones) in self.zones_for(&red, cameras).await? {
                if zones.is_empty() {
                    return Err(Status::failed_precondition(format!(
                        "camera {cam} has no privacy zones and the request gives no box for it, so nothing of it \
                         would be redacted: add --redact-box {cam}:x,y,w,h, or set its zones with `custos camera \
                         privacy-zone add {cam} …`"
                    )));
                }
            }
        }
        let mut ev = caller.event(AuditAction::ExportRequest, Outcome::Ok);
        ev.cameras = r.ranges.iter().map(|g| g.camera.clone()).collect();
        ev.from_ms = r.ranges.iter().map(|g| g.from_ms).min();
        ev.to_ms = r.ranges.iter().map(|g| g.to_ms).max();
        ev.purpose = rec.purpose.clone();
        ev.detail = format!("case {} for {} (letter {})", rec.case_id, rec.organisation, rec.letter);
        if r.redact {
            ev.detail.push_str(&format!("; redacted, {} extra boxes", boxes.len()));
        }
        let cmd = if r.redact {
            Command::RequestRedactedExport { export: rec, extra: boxes }
        } else {
            Command::RequestExport(rec)
        };
        let id = match status_of(self.meta.propose_audited(cmd, ev).await?)? {
            Applied::Created(id) => id,
            other => return Err(Status::internal(format!("unexpected response {other:?}"))),
        };
        tracing::info!(export = %id, user = %caller.who.name, "export requested");
        self.export_reply(id).await
    }

    async fn decide_export(&self, req: Request<pb::DecideExportRequest>) -> Result<Response<pb::Export>, Status> {
        let caller = self.guard(&req, Action::DecideExport, false).await?;
        let r = req.into_inner();
        let reason = r.reason.trim().to_string();
        if !r.approve && reason.len() < 4 {
            return Err(Status::invalid_argument("a rejection needs --reason saying why"));
        }
        let verdict = if r.approve { "approved" } else { "rejected" };
        let id2 = r.id.clone();
        let redacted = self.meta.read(move |c| c.export_redaction(&id2)).await?.is_some();
        if r.include_original && !redacted {
            return Err(Status::invalid_argument(format!(
                "export {} asked for no redaction: its package carries the originals anyway",
                r.id
            )));
        }
        let mut ev = caller.event(AuditAction::ExportDecide, Outcome::Ok);
        ev.detail = format!(
            "export {} {verdict}{}{}",
            r.id,
            match (redacted && r.approve, r.include_original) {
                (true, true) => ", originals included with the redacted copies",
                (true, false) => ", redacted copies only (originals withheld)",
                _ => "",
            },
            if reason.is_empty() { String::new() } else { format!(": {reason}") }
        );
        let cmd = if redacted {
            Command::DecideRedactedExport {
                id: r.id.clone(),
                user: caller.who.name.clone(),
                approve: r.approve,
                reason,
                include_original: r.include_original,
            }
        } else {
            Command::DecideExport { id: r.id.clone(), user: caller.who.name.clone(), approve: r.approve, reason }
        };
        status_of(self.meta.propose_audited(cmd, ev).await?)?;
        tracing::info!(export = %r.id, user = %caller.who.name, verdict, "export decided");
        self.export_reply(r.id).await
    }

    async fn run_export(&self, req: Request<pb::RunExportRequest>) -> Result<Response<pb::Export>, Status> {
        let caller = self.guard(&req, Action::RunExport, false).await?;
        let id = req.into_inner().id;
        let rec = self.visible_export(&caller, Action::RunExport, &id).await?;
        match rec.status {
            ExportStatus::Approved => {}
            ExportStatus::Requested => {
                return Err(Status::failed_precondition(format!(
                    "export {id} is not approved yet: a second person (an approver) must approve it first"
                )))
            }
            s => return Err(Status::failed_precondition(format!("export {id} is {}, it cannot run", s.as_str()))),
        }
        let key = self.cluster.signing.clone().ok_or_else(|| {
            Status::failed_precondition(
                "this node has no export signing key (keys/signing.pk8); run the export on another node",
            )
        })?;
        let t = std::time::Instant::now();
        let id2 = id.clone();
        let redaction = self.meta.read(move |c| c.export_redaction(&id2)).await?;
        let zones = match &redaction {
            Some(red) => Some(self.zones_for(red, rec.ranges.iter().map(|(c, _, _)| c.clone()).collect()).await?),
            None => None,
        };
        let files = self.build_files(&rec, zones.as_deref()).await?;
        let withhold = redaction.as_ref().is_some_and(|r| r.include_original != Some(true));
        let (rec2, hospital, now) = (rec.clone(), self.hospital.clone(), self.clock.now_ms());
        let (manifest, bytes, signature, files) = tokio::task::spawn_blocking(move || {
            crate::export::manifest(&rec2, &files, withhold, &hospital, &key, now).map(|(m, b, s)| (m, b, s, files))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(format!("cannot make the package's custody receipt: {e}")))?;
        let no_mp4: Vec<&str> = files.iter().filter(|f| f.mp4.is_none()).map(|f| f.name.as_str()).collect();
        let mut cameras: Vec<String> = rec.ranges.iter().map(|(c, _, _)| c.clone()).collect();
        cameras.sort();
        cameras.dedup();
        let hold = Hold {
            id: String::new(),
            case_id: rec.case_id.clone(),
            cameras: cameras.clone(),
            from_ms: rec.ranges.iter().map(|r| r.1).min().unwrap_or_default(),
            to_ms: rec.ranges.iter().map(|r| r.2).max(),
            reason: format!("archived copy of export {id} for {} (letter {})", rec.organisation, rec.letter),
            placed_by: caller.who.name.clone(),
            placed_ms: 0,
            release_approvals: vec![],
            released_ms: None,
        };
        let mut ev = caller.event(AuditAction::ExportRun, Outcome::Ok);
        ev.cameras = cameras;
        ev.purpose = rec.purpose.clone();
        ev.detail = format!(
            "export {id}: {} segments, {} files, Merkle root {}, signed by {}{}",
            manifest.segments.len(),
            manifest.files.len(),
            manifest.merkle_root,
            manifest.signing_key,
            if no_mp4.is_empty() { String::new() } else { format!("; no MP4 could be made of {}", no_mp4.join(", ")) }
        );
        let cmd = Command::CompleteExport {
            id: id.clone(),
            manifest: String::from_utf8(bytes).map_err(|e| Status::internal(e.to_string()))?,
            signature,
            merkle_root: manifest.merkle_root.clone(),
            hold,
        };
        status_of(self.meta.propose_audited(cmd, ev).await?)?;
        tracing::info!(export = %id, segments = manifest.segments.len(), root = %manifest.merkle_root, ms = t.elapsed().as_millis() as u64, "export built, signed and archived");
        self.export_reply(id).await
    }

    async fn list_exports(
        &self,
        req: Request<pb::ListExportsRequest>,
    ) -> Result<Response<pb::ListExportsResponse>, Status> {
        let caller = self.guard(&req, Action::ViewExports, false).await?;
        let all = self
            .meta
            .read(|c| {
                c.exports()?.into_iter().map(|e| Ok((c.export_redaction(&e.id)?, e))).collect::<crate::Result<Vec<_>>>()
            })
            .await?;
        let exports = all
            .iter()
            .filter(|(_, e)| {
                caller.who.role != Role::Investigator || caller.who.case.as_deref() == Some(e.case_id.as_str())
            })
            .map(|(red, e)| to_pb(e, red.as_ref()))
            .collect();
        Ok(Response::new(pb::ListExportsResponse { exports }))
    }

    async fn get_export(&self, req: Request<pb::GetExportRequest>) -> Result<Response<pb::Export>, Status> {
        let caller = self.guard(&req, Action::ViewExports, false).await?;
        let rec = self.visible_export(&caller, Action::ViewExports, &req.into_inner().id).await?;
        self.export_pb(&rec).await.map(Response::new)
    }

    type DownloadExportStream = ReceiverStream<Result<pb::DownloadChunk, Status>>;

    async fn download_export(
        &self,
        req: Request<pb::DownloadExportRequest>,
    ) -> Result<Response<Self::DownloadExportStream>, Status> {
        let caller = self.guard(&req, Action::DownloadExport, false).await?;
        let r = req.into_inner();
        let rec = self.visible_export(&caller, Action::DownloadExport, &r.id).await?;
        if let Err(why) = self.may_download(&caller, &rec).await {
            return Err(self.deny(&caller, Action::DownloadExport, &rec, why).await);
        }
        let (Some(manifest_text), Some(sig)) = (rec.manifest.clone(), rec.signature.clone()) else {
            return Err(Status::failed_precondition(format!(
                "export {} is {}: only a completed (run) export can be downloaded",
                r.id,
                rec.status.as_str()
            )));
        };
        let manifest: Manifest =
            serde_json::from_str(&manifest_text).map_err(|e| Status::internal(format!("stored manifest: {e}")))?;
        let entry = manifest.files.iter().find(|f| f.name == r.file).cloned();
        let fixed = match (r.file.as_str(), entry.as_ref().and_then(|e| e.kind.as_deref())) {
            (MANIFEST_FILE, _) => Some(manifest_text.into_bytes()),
            (SIGNATURE_FILE, _) => Some(sig.into_bytes()),
            _ if entry.as_ref().is_some_and(|e| e.withheld) => {
                let why = format!(
                    "{} of export {} was withheld by its approver: the package carries the redacted copies only, and \
                     the hospital's archived copy keeps the original",
                    r.file, r.id
                );
                // Audited like every refusal of a download; a precondition, not a role.
                let status = self.deny(&caller, Action::DownloadExport, &rec, why).await;
                return Err(match status.code() {
                    tonic::Code::PermissionDenied => Status::failed_precondition(status.message()),
                    _ => status,
                });
            }
            (_, Some(KIND_RECEIPT)) => Some(rebuilt_receipt(&manifest, entry.as_ref().expect("listed")).await?),
            _ if entry.is_some() => None,
            (other, _) => return Err(Status::not_found(format!("export {} has no file {other:?}", r.id))),
        };
        let mut ev = caller.event(AuditAction::ExportDownload, Outcome::Ok);
        ev.cameras = rec.ranges.iter().map(|(c, _, _)| c.clone()).collect();
        ev.purpose = rec.purpose.clone();
        ev.detail = format!("export {} file {} from byte {} (case {})", r.id, r.file, r.offset, rec.case_id);
        self.audit(ev).await?;
        let (tx, rx) = mpsc::channel(FETCH_QUEUE);
        if let Some(bytes) = fixed {
            let start = (r.offset as usize).min(bytes.len());
            tokio::spawn(async move {
                for c in bytes[start..].chunks(FETCH_CHUNK_BYTES) {
                    if tx.send(Ok(pb::DownloadChunk { data: c.to_vec() })).await.is_err() {
                        return;
                    }
                }
            });
        } else {
            let svc = self.clone();
            let entry = entry.expect("a listed file");
            let source = entry
                .derived_from
                .clone()
                .filter(|_| matches!(entry.kind.as_deref(), Some(KIND_MP4) | Some(KIND_REDACTED)));
            let of = source.as_deref().unwrap_or(&r.file);
            let segs: Vec<_> = manifest.segments.into_iter().filter(|s| s.file == of).collect();
            match source {
                Some(_) => tokio::spawn(async move { svc.stream_mp4(&caller, segs, entry, r.offset, tx).await }),
                None => tokio::spawn(async move { svc.stream_media(&caller, segs, r.offset, tx).await }),
            };
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn signing_key(
        &self,
        req: Request<pb::SigningKeyRequest>,
    ) -> Result<Response<pb::SigningKeyResponse>, Status> {
        self.authenticate(&req, Action::ViewExports).await?;
        let key = self
            .cluster
            .signing
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("this node has no export signing key (keys/signing.pk8)"))?;
        let public_key = key.public_hex();
        Ok(Response::new(pb::SigningKeyResponse {
            fingerprint: custos_evidence::export::key_fingerprint(&public_key),
            public_key,
        }))
    }
}

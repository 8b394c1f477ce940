//! The tonic services. Each handler authenticates, validates its arguments (saying
//! precisely what is wrong), calls domain code, and converts the result in `convert`.

mod admin;
mod audit_svc;
mod changes;
mod cluster_svc;
mod convert;
mod duty;
mod export_files;
mod exports;
mod guard;
mod holds;
mod operations;
pub mod peer;
pub mod throttle;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use custos_proto::v1 as pb;
use custos_proto::v1::footage_server::{Footage, FootageServer};
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub(crate) use self::guard::FootageRequest;
use crate::access::Action;
use crate::audit::{AuditAction, Outcome};
use crate::clock::SharedClock;
use crate::cluster::health::Health;
use crate::cluster::leader::RepairStats;
use crate::cluster::replicate::Replicator;
use crate::ingest::{validate_camera_id, CameraStates, Source, State};
use crate::meta::{Camera, Command, Meta, SegmentRecord};
use crate::recorder::RecorderStats;
use crate::segment::{BlobStore, Keys};

/// Most segments one search returns.
pub const SEARCH_LIMIT_MAX: usize = 10_000;
/// Most segments one fetch streams (six hours of 4-second segments); longer ranges are
/// fetched in parts.
pub const FETCH_SEGMENTS_MAX: usize = 5_400;
/// Size of the data messages a fetch streams.
pub const FETCH_CHUNK_BYTES: usize = 256 * 1024;
/// Messages a fetch may have queued for a slow client (bounds memory per fetch).
pub const FETCH_QUEUE: usize = 8;

/// Downloads of rebuilt export files (an MP4 remux, a redacted copy's decode and encode)
/// one node serves at once; more wait for a turn.
pub const DERIVED_DOWNLOADS_AT_ONCE: usize = 2;

/// Shared handles the services use.
#[derive(Clone)]
pub struct Services {
    pub meta: Meta,
    pub store: Arc<BlobStore>,
    pub keys: Arc<Keys>,
    pub states: CameraStates,
    pub stats: Arc<RecorderStats>,
    /// Woken when the camera set changes, so the supervisor reconciles at once.
    pub cameras_changed: Arc<Notify>,
    pub clock: SharedClock,
    pub health: Health,
    pub replicator: Replicator,
    pub repair_stats: Arc<RepairStats>,
    pub cluster: Arc<ClusterInfo>,
    /// The `[backup]` section, if any, and what the worker last saw.
    pub backup: Option<crate::config::BackupConfig>,
    pub backup_state: crate::backup::SharedBackupState,
    /// When conditions become alarms.
    pub alarms: crate::config::AlarmsConfig,
    /// Shifts' time zone and the patrols each needs.
    pub duty: crate::shifts::DutyConfig,
    /// Whether cameras may be added with `file://` and `test://` sources (trials only).
    pub allow_test_sources: bool,
    /// The hospital's name, for export receipts (`hospital` in `custos.toml`).
    pub hospital: String,
    /// Turns for downloads of files an export rebuilds (MP4s, redacted copies): at most
    /// [`DERIVED_DOWNLOADS_AT_ONCE`] at a time on this node.
    pub derived_downloads: Arc<tokio::sync::Semaphore>,
    /// Refused authentications per client address, and the request limit's counters.
    pub throttle: Arc<throttle::Throttle>,
}

/// What this node hands a joining node, and says about itself.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub campus: String,
    /// The cluster CA; absent when the node serves plaintext (and so cannot cluster).
    pub pki: Option<ClusterPki>,
    pub archive_recipients: Vec<String>,
    /// The archive identity file's text.
    pub archive_identity: String,
    pub segment_target_ms: u64,
    /// The cluster's export signing key (`keys/signing.pk8`), if this node has it.
    pub signing: Option<Arc<custos_evidence::export::SigningKey>>,
    /// Its PKCS#8 bytes, handed to joining nodes.
    pub signing_pkcs8: Option<Vec<u8>>,
}

/// The cluster CA certificate and key (PEM).
#[derive(Clone)]
pub struct ClusterPki {
    pub ca_pem: String,
    pub ca_key_pem: String,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterPki { .. }")
    }
}

impl Services {
    /// Services over `meta`, `store` and `keys`, with fresh counters and camera states.
    /// Segments are kept in `factor` copies.
    pub fn new(
        meta: Meta,
        (store, keys): (Arc<BlobStore>, Arc<Keys>),
        clock: SharedClock,
        replicator: Replicator,
        cluster: ClusterInfo,
    ) -> Services {
        let health = replicator.health.clone();
        Services {
            cameras_changed: meta.catalog.cameras_changed(),
            meta,
            store,
            keys,
            states: CameraStates::default(),
            stats: Arc::new(RecorderStats::default()),
            clock,
            health,
            replicator,
            repair_stats: Arc::new(RepairStats::new()),
            cluster: Arc::new(cluster),
            backup: None,
            backup_state: Arc::default(),
            alarms: Default::default(),
            duty: Default::default(),
            allow_test_sources: false,
            hospital: String::new(),
            derived_downloads: Arc::new(tokio::sync::Semaphore::new(DERIVED_DOWNLOADS_AT_ONCE)),
            throttle: Arc::default(),
        }
    }

    /// The footage service.
    pub fn footage(self) -> FootageServer<Self> {
        FootageServer::new(self)
    }

    /// The admin service.
    pub fn admin(self) -> custos_proto::v1::admin_server::AdminServer<Self> {
        custos_proto::v1::admin_server::AdminServer::new(self)
    }

    /// The holds service.
    pub fn holds(self) -> custos_proto::v1::holds_server::HoldsServer<Self> {
        custos_proto::v1::holds_server::HoldsServer::new(self)
    }

    /// The audit service.
    pub fn audit_service(self) -> custos_proto::v1::audit_server::AuditServer<Self> {
        custos_proto::v1::audit_server::AuditServer::new(self)
    }

    /// The cluster service (nodes, join tokens).
    pub fn cluster_service(self) -> custos_proto::v1::cluster_server::ClusterServer<Self> {
        custos_proto::v1::cluster_server::ClusterServer::new(self)
    }

    /// The node-to-node service.
    pub fn peer_service(self) -> custos_proto::v1::peer_server::PeerServer<Self> {
        use crate::cluster::peers::PEER_MESSAGE_MAX;
        custos_proto::v1::peer_server::PeerServer::new(self)
            .max_decoding_message_size(PEER_MESSAGE_MAX)
            .max_encoding_message_size(PEER_MESSAGE_MAX)
    }

    /// The exports service.
    pub fn exports_service(self) -> custos_proto::v1::exports_server::ExportsServer<Self> {
        custos_proto::v1::exports_server::ExportsServer::new(self)
    }

    /// The operations service (alarms, duty records, compliance report).
    pub fn operations_service(self) -> custos_proto::v1::operations_server::OperationsServer<Self> {
        custos_proto::v1::operations_server::OperationsServer::new(self)
    }

    /// The join service.
    pub fn join_service(self) -> custos_proto::v1::join_server::JoinServer<Self> {
        custos_proto::v1::join_server::JoinServer::new(self)
    }
}

impl Services {
    /// What alarm evaluation reads on this node.
    pub fn alarm_sources(&self) -> crate::alarms::Sources {
        crate::alarms::Sources {
            meta: self.meta.clone(),
            health: self.health.clone(),
            repair: self.repair_stats.clone(),
            backup_configured: self.backup.is_some(),
            backup_state: self.backup_state.clone(),
            segment_target_ms: self.cluster.segment_target_ms,
            duty: self.duty.clone(),
        }
    }

    /// Conditions an operator must act on: the open alarms the catalog records, then
    /// what this node sees that is not recorded yet (for instance while there is no
    /// quorum to record anything).
    fn alarms(&self, open: &[crate::meta::AlarmRecord], seen: &crate::alarms::Observed) -> Vec<String> {
        let mut out: Vec<String> = open.iter().map(crate::alarms::render).collect();
        for c in crate::alarms::evaluate(seen, &self.alarms) {
            if !open.iter().any(|a| a.kind == c.kind && a.subject == c.subject) {
                out.push(format!(
                    "{} {}: {} (seen by node {}, not recorded yet)",
                    c.kind, c.subject, c.detail, self.meta.node_id
                ));
            }
        }
        out
    }
}

pub use custos_formats::fields::{fmt_ms, RANGE_MAX_MS};

/// The one mapping from a state-machine refusal to the gRPC status the caller sees.
pub(crate) fn rejected(kind: crate::meta::RejectKind, why: String) -> Status {
    use crate::meta::RejectKind as K;
    match kind {
        K::NotFound => Status::not_found(why),
        K::AlreadyExists => Status::already_exists(why),
        K::PermissionDenied => Status::permission_denied(why),
        K::FailedPrecondition => Status::failed_precondition(why),
        K::InvalidArgument => Status::invalid_argument(why),
    }
}

/// Validates a footage request's time range.
pub fn validate_range(from_ms: i64, to_ms: i64) -> Result<(), Status> {
    custos_formats::fields::validate_range(from_ms, to_ms).map_err(Status::invalid_argument)
}

#[tonic::async_trait]
impl Footage for Services {
    async fn list_cameras(
        &self,
        req: Request<pb::ListCamerasRequest>,
    ) -> Result<Response<pb::ListCamerasResponse>, Status> {
        self.guard(&req, Action::ListCameras, false).await?;
        let cams = self
            .meta
            .read(|c| {
                let standbys = c.standbys()?;
                c.cameras()?
                    .into_iter()
                    .map(|cam| Ok((c.privacy_zones(&cam.id)?, standbys.get(&cam.id).cloned().unwrap_or_default(), cam)))
                    .collect::<crate::Result<Vec<_>>>()
            })
            .await?;
        let cameras = cams
            .iter()
            .map(|(zones, sb, cam)| pb::Camera {
                privacy_zones: zones.iter().map(ToString::to_string).collect(),
                standby: sb.node.unwrap_or(0),
                standby_wanted: sb.wanted,
                ..convert::camera(cam)
            })
            .collect();
        Ok(Response::new(pb::ListCamerasResponse { cameras }))
    }

    async fn add_camera(&self, req: Request<pb::AddCameraRequest>) -> Result<Response<pb::Camera>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let r = req.into_inner();
        validate_camera_id(&r.id).map_err(Status::invalid_argument)?;
        let source = Source::parse(&r.source).map_err(Status::invalid_argument)?;
        if r.name.len() > 200 {
            return Err(Status::invalid_argument("camera name is longer than 200 bytes"));
        }
        let detail = format!("camera {} source={} sensitive={}", r.id, crate::ingest::redact(&r.source), r.sensitive);
        if let Err(why) = crate::ingest::check_allowed(&source, self.allow_test_sources) {
            // Footage that no camera saw would be archived as if one had: refused, and
            // the attempt is audited.
            let mut ev = caller.event(AuditAction::CameraAdd, Outcome::Rejected);
            ev.reason = why.clone();
            ev.detail = detail;
            ev.cameras = vec![r.id.clone()];
            self.audit(ev).await?;
            tracing::warn!(camera = %r.id, user = %caller.who.name, source = %crate::ingest::redact(&r.source), "camera refused: {why}");
            return Err(Status::failed_precondition(why));
        }
        let cam = Camera {
            id: r.id.clone(),
            name: r.name,
            source: r.source,
            recorder: self.meta.node_id,
            added_ms: 0,
            sensitive: r.sensitive,
        };
        // Adding a camera never waits for a second person.
        self.admin_change(&caller, AuditAction::CameraAdd, detail, Command::AddCamera(cam)).await?;
        tracing::info!(camera = %r.id, user = %caller.who.name, "camera added");
        if r.standby {
            self.set_standby(&caller, &r.id, true, true).await?;
        }
        self.cameras_changed.notify_one();
        let id = r.id.clone();
        let cam = self
            .meta
            .read(move |c| c.camera(&id))
            .await?
            .ok_or_else(|| Status::internal("camera vanished after commit"))?;
        Ok(Response::new(convert::camera(&cam)))
    }

    async fn remove_camera(
        &self,
        req: Request<pb::RemoveCameraRequest>,
    ) -> Result<Response<pb::RemoveCameraResponse>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let id = req.into_inner().id;
        validate_camera_id(&id).map_err(Status::invalid_argument)?;
        let cmd = Command::RemoveCamera { id: id.clone() };
        if let Some(change_id) =
            self.admin_change(&caller, AuditAction::CameraRemove, format!("camera {id}"), cmd).await?
        {
            return Ok(Response::new(pb::RemoveCameraResponse { change_id }));
        }
        tracing::info!(camera = %id, user = %caller.who.name, "camera removed; its footage stays under retention");
        self.cameras_changed.notify_one();
        Ok(Response::new(pb::RemoveCameraResponse { change_id: 0 }))
    }

    async fn confirm_camera(
        &self,
        req: Request<pb::ConfirmCameraRequest>,
    ) -> Result<Response<pb::ConfirmCameraResponse>, Status> {
        let caller = self.guard(&req, Action::ManageCameras, false).await?;
        let id = req.into_inner().id;
        validate_camera_id(&id).map_err(Status::invalid_argument)?;
        let cmd = Command::SetPictureReference { camera: id.clone(), still: None };
        let detail = format!("camera {id}'s next healthy picture becomes its reference still");
        let change_id =
            self.admin_change(&caller, AuditAction::CameraConfirm, detail, cmd).await?.ok_or_else(|| {
                Status::internal("a camera confirmation must wait for an approver, but it was not queued")
            })?;
        Ok(Response::new(pb::ConfirmCameraResponse { change_id }))
    }

    async fn search(&self, req: Request<pb::SearchRequest>) -> Result<Response<pb::SearchResponse>, Status> {
        let r = req.get_ref().clone();
        let f = FootageRequest { camera: &r.camera, from_ms: r.from_ms, to_ms: r.to_ms, purpose: &r.purpose };
        let caller = self.guard_footage(&req, Action::SearchFootage, f).await?;
        let limit = if r.limit == 0 { SEARCH_LIMIT_MAX } else { (r.limit as usize).min(SEARCH_LIMIT_MAX) };
        let cam = r.camera.clone();
        let ((segs, truncated), lost) = self
            .meta
            .read(move |c| {
                let (found, lost) =
                    without_lost(c, (&cam, r.from_ms, r.to_ms), c.search(&cam, r.from_ms, r.to_ms, limit)?)?;
                Ok((with_clocks(c, found)?, lost))
            })
            .await?;
        tracing::info!(user = %caller.who.name, camera = %r.camera, found = segs.len(), lost = lost.len(), "search");
        let segments = segs.iter().map(|(s, k)| convert::flagged_segment(s, k.as_ref())).collect();
        Ok(Response::new(pb::SearchResponse { segments, truncated, lost }))
    }

    type FetchStream = ReceiverStream<Result<pb::FetchChunk, Status>>;

    async fn fetch(&self, req: Request<pb::FetchRequest>) -> Result<Response<Self::FetchStream>, Status> {
        let r = req.get_ref().clone();
        let f = FootageRequest { camera: &r.camera, from_ms: r.from_ms, to_ms: r.to_ms, purpose: &r.purpose };
        let caller = self.guard_footage(&req, Action::FetchFootage, f).await?;
        let cam = r.camera.clone();
        let ((segs, truncated), lost) = self
            .meta
            .read(move |c| {
                let found = c.search(&cam, r.from_ms, r.to_ms, FETCH_SEGMENTS_MAX)?;
                let (found, lost) = without_lost(c, (&cam, r.from_ms, r.to_ms), found)?;
                Ok((with_clocks(c, found)?, lost))
            })
            .await?;
        if truncated {
            return Err(Status::invalid_argument(format!(
                "the range holds more than {FETCH_SEGMENTS_MAX} segments; fetch it in shorter parts"
            )));
        }
        if segs.is_empty() && !lost.is_empty() {
            return Err(Status::data_loss(format!(
                "all {} segments of camera {} between those times are lost for good: {}",
                lost.len(),
                r.camera,
                lost[0].reason
            )));
        }
        if segs.is_empty() {
            return Err(Status::not_found(format!("camera {} has no footage between those times", r.camera)));
        }
        tracing::info!(user = %caller.who.name, camera = %r.camera, segments = segs.len(), lost = lost.len(), "fetch");
        let (tx, rx) = mpsc::channel(FETCH_QUEUE);
        tokio::spawn(self.clone().stream_segments(caller, segs, lost, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn status(&self, req: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        self.guard(&req, Action::ViewStatus, false).await?;
        let m = self.meta.metrics();
        let node_id = self.meta.node_id;
        // One view of cameras, nodes and the backup queue serves the camera list and the
        // alarms; the queue is counted only where backup is configured.
        let seen = self.alarm_sources().observe().await?;
        let (segments, (backed_up_segments, backed_up_bytes), (backup_objects, backup_object_bytes), open) =
            self.meta.read(|c| Ok((c.segment_count()?, c.backed_up()?, c.backup_objects()?, c.open_alarms()?))).await?;
        let faults = self.meta.read(|c| c.faults(false)).await?;
        let current_shift = self.current_shift_line().await?;
        let down_after = self.alarms.camera_down_after_ms(seen.segment_target_ms);
        let standbys = self.meta.read(|c| c.standbys()).await?;
        let standing = self.states.standing.lock().expect("standing").clone();
        let cameras = seen
            .cameras
            .iter()
            .map(|c| {
                let standby = standbys.get(&c.id).and_then(|s| s.node);
                let (standby_state, standby_lag_ms) = match (standby == Some(node_id), standing.get(&c.id)) {
                    (true, Some(ctl)) if ctl.is_standby() => {
                        let st = match self.states.get(&c.id).map(|(s, _)| s) {
                            Some(State::Recording) => "standing-by",
                            Some(State::Down) => "down",
                            _ => "connecting",
                        };
                        (st.to_string(), ctl.lag_ms().unwrap_or(0))
                    }
                    _ => (String::new(), 0),
                };
                let last_end = c.last_end_ms;
                let (state, err) = if c.recorder != node_id {
                    let fresh = last_end.is_some_and(|t| seen.now_ms - t <= down_after);
                    (if fresh { State::Recording } else { State::NotRecording }, None)
                } else {
                    self.states.get(&c.id).unwrap_or((State::Connecting, None))
                };
                pb::CameraState {
                    id: c.id.clone(),
                    state: state.as_str().to_string(),
                    last_segment_end_ms: last_end.unwrap_or(0),
                    last_error: err.unwrap_or_default(),
                    recorder: c.recorder,
                    standby: standby.unwrap_or(0),
                    standby_state,
                    standby_lag_ms,
                }
            })
            .collect();
        let backup_pending = seen.backup.as_ref().map_or(0, |b| b.waiting);
        let backup = self.backup_state.lock().expect("backup state").clone();
        let sc = &self.health.workers.scrub;
        Ok(Response::new(pb::StatusResponse {
            node_id,
            raft_role: format!("{:?}", m.state).to_lowercase(),
            raft_term: m.current_term,
            last_applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            segments,
            cameras,
            version: env!("CARGO_PKG_VERSION").to_string(),
            replication_factor: self.replicator.factor as u32,
            under_replicated: match m.current_leader {
                Some(l) if l == node_id => self.repair_stats.under_replicated.load(Ordering::Relaxed),
                Some(l) => self.health.get(l).under_replicated,
                None => u64::MAX,
            },
            repair_copies: self.repair_stats.copies_made.load(Ordering::Relaxed),
            committed_under_replicated: self.stats.segments_under_replicated.load(Ordering::Relaxed),
            alarms: self.alarms(&open, &seen),
            backup_configured: self.backup.is_some(),
            backup_pending,
            backed_up_segments,
            backed_up_bytes,
            backup_last_error: backup.last_error.unwrap_or_default(),
            backup_last_success_ms: backup.last_success_ms,
            backup_last_snapshot: backup.last_snapshot.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
            backup_last_snapshot_ms: backup.last_snapshot.as_ref().map(|s| s.1).unwrap_or(0),
            backup_last_snapshot_bytes: backup.last_snapshot.as_ref().map(|s| s.2).unwrap_or(0),
            backup_expired_objects: backup.expired_objects,
            backup_objects,
            backup_object_bytes,
            scrub_passes: sc.passes.load(Ordering::Relaxed),
            scrub_segments: sc.segments.load(Ordering::Relaxed),
            scrub_bytes: sc.bytes.load(Ordering::Relaxed),
            scrub_corrupt: sc.corrupt.load(Ordering::Relaxed),
            scrub_missing: sc.missing.load(Ordering::Relaxed),
            scrub_repaired: sc.repaired.load(Ordering::Relaxed),
            scrub_unrepaired: sc
                .unrepaired
                .lock()
                .expect("scrub stats")
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect(),
            scrub_last_pass_ms: sc.last_pass_ms.load(Ordering::Relaxed),
            open_faults: faults.iter().map(duty::fault_line).collect(),
            current_shift,
        }))
    }
}

/// Each segment with its clock flag, if its recorder's clock was skewed when it recorded.
#[allow(clippy::type_complexity)]
/// Takes the segments whose footage is lost for good out of a search's result, and
/// returns them apart, with why.
fn without_lost(
    c: &crate::meta::Catalog,
    (camera, from_ms, to_ms): (&str, i64, i64),
    (segs, truncated): (Vec<SegmentRecord>, bool),
) -> crate::Result<((Vec<SegmentRecord>, bool), Vec<pb::LostSegment>)> {
    let lost = c.lost_in(camera, from_ms, to_ms)?;
    if lost.is_empty() {
        return Ok(((segs, truncated), Vec::new()));
    }
    let starts: std::collections::HashSet<i64> = lost.iter().map(|(s, _)| *s).collect();
    let kept = segs.into_iter().filter(|s| !starts.contains(&s.start_ms)).collect();
    let lost = lost
        .into_iter()
        .map(|(start_ms, l)| pb::LostSegment {
            camera: camera.to_string(),
            start_ms,
            end_ms: l.end_ms,
            reason: l.reason,
        })
        .collect();
    Ok(((kept, truncated), lost))
}

/// Segments with their clock flags.
type Flagged = Vec<(SegmentRecord, Option<crate::meta::SegmentClock>)>;

fn with_clocks(
    c: &crate::meta::Catalog,
    (segs, truncated): (Vec<SegmentRecord>, bool),
) -> crate::Result<(Flagged, bool)> {
    let mut out = Vec::with_capacity(segs.len());
    for s in segs {
        let clock = c.segment_clock(&s.camera, s.start_ms)?;
        out.push((s, clock));
    }
    Ok((out, truncated))
}

impl Services {
    /// Marks `camera` for a hot standby, or unmarks it, audited. Marking an `rtsp://`
    /// camera first opens a second session to it from this node: a camera that serves only
    /// one client cannot have a standby, and is refused saying so.
    async fn set_standby(&self, caller: &guard::Caller, camera: &str, on: bool, adding: bool) -> Result<(), Status> {
        let id = camera.to_string();
        let (cam, last_end) =
            self.meta.read(move |c| Ok((c.camera(&id)?, c.last_segment(&id)?.map(|s| s.end_ms)))).await?;
        let cam = cam.ok_or_else(|| Status::not_found(format!("camera {camera:?} does not exist")))?;
        if on && cam.source.starts_with("rtsp://") {
            // Beside a recorder that is receiving, one more session; else two at once, so a
            // camera that serves one client is found out before its recorder connects.
            let down_after = self.alarms.camera_down_after_ms(self.cluster.segment_target_ms);
            let recording = last_end.is_some_and(|e| self.meta.now_ms() - e <= down_after);
            let within = std::time::Duration::from_secs(10);
            let probe = || crate::ingest::rtsp::probe_session(&cam.source, within);
            let probed = match recording {
                true => probe().await,
                false => {
                    let (a, b) = tokio::join!(probe(), probe());
                    a.and(b)
                }
            };
            if let Err(e) = probed {
                let e = crate::ingest::redact_text(&e, &cam.source);
                let then = match adding {
                    true => format!(
                        "; the camera was added without a standby: give it one with `custos camera standby {camera}`"
                    ),
                    false => ", then try again".to_string(),
                };
                let why = format!(
                    "camera {camera:?} did not serve a second RTSP session beside its recorder's ({e}): a standby \
                     receives the camera's stream too, so the camera must allow two sessions at once (raise its \
                     session or client limit, or use a stream URL that allows more){then}"
                );
                let mut ev = caller.event(AuditAction::CameraStandby, Outcome::Rejected);
                ev.reason = why.clone();
                ev.cameras = vec![camera.to_string()];
                self.audit(ev).await?;
                tracing::warn!(camera, user = %caller.who.name, "standby refused: {why}");
                return Err(Status::failed_precondition(why));
            }
        }
        let detail = format!("camera {camera} standby={on}");
        let cmd = Command::SetStandby { camera: camera.to_string(), wanted: on };
        self.admin_change(caller, AuditAction::CameraStandby, detail, cmd).await?;
        tracing::info!(camera, standby = on, user = %caller.who.name, "camera standby set");
        self.cameras_changed.notify_one();
        Ok(())
    }

    /// Reads, verifies and streams segments in order. A segment that fails verification
    /// ends the stream with DataLoss naming it; none of its bytes are sent. Before each
    /// segment the caller's token is checked again, so revoking it or disabling the user
    /// stops the stream within one segment.
    async fn stream_segments(
        self,
        caller: guard::Caller,
        segs: Vec<(SegmentRecord, Option<crate::meta::SegmentClock>)>,
        lost: Vec<pb::LostSegment>,
        tx: mpsc::Sender<Result<pb::FetchChunk, Status>>,
    ) {
        use pb::fetch_chunk::Item;
        let summary = pb::FetchSummary { segments: segs.len() as u32, bytes: segs.iter().map(|s| s.0.bytes).sum() };
        if tx.send(Ok(pb::FetchChunk { item: Some(Item::Summary(summary)) })).await.is_err() {
            return;
        }
        // The lost ones are named up front; the rest of the range follows.
        for l in lost {
            if tx.send(Ok(pb::FetchChunk { item: Some(Item::Lost(l)) })).await.is_err() {
                return;
            }
        }
        for (seg, clock) in segs {
            if let Err(status) = self.recheck(&caller).await {
                tracing::warn!(user = %caller.who.name, camera = %seg.camera, reason = status.message(), "fetch stopped: the caller is no longer authorised");
                let _ = tx.send(Err(status)).await;
                return;
            }
            let plain = match crate::segment::open_segment(&seg, &self.store, &self.keys, &self.replicator).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(camera = %seg.camera, start_ms = seg.start_ms, error = %e, "fetch stopped: segment failed verification");
                    let _ = tx.send(Err(e.into_status())).await;
                    return;
                }
            };
            if tx
                .send(Ok(pb::FetchChunk { item: Some(Item::Segment(convert::flagged_segment(&seg, clock.as_ref()))) }))
                .await
                .is_err()
            {
                return; // client went away
            }
            for chunk in plain.chunks(FETCH_CHUNK_BYTES) {
                if tx.send(Ok(pb::FetchChunk { item: Some(Item::Data(chunk.to_vec())) })).await.is_err() {
                    return;
                }
            }
        }
    }
}

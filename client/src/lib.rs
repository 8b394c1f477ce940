//! # custos-client
//!
//! [`Client`] wraps the `custos.v1` gRPC API for the `custos` command line, tests and
//! benchmarks. It speaks domain-neutral proto types; the CLI formats them.

pub mod text;
pub mod time;

use custos_proto::v1 as pb;
use custos_proto::v1::admin_client::AdminClient;
use custos_proto::v1::audit_client::AuditClient;
use custos_proto::v1::cluster_client::ClusterClient;
use custos_proto::v1::exports_client::ExportsClient;
use custos_proto::v1::footage_client::FootageClient;
use custos_proto::v1::holds_client::HoldsClient;
use custos_proto::v1::operations_client::OperationsClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

pub use pb::{
    AuditEntry, Camera, CameraState, CreateJoinTokenResponse, Export, FetchSummary, Hold, ListNodesResponse, NodeInfo,
    Policy, Segment, SigningKeyResponse, StatusResponse, Token, TokenIssued, User,
};

/// Default node address when neither `--addr` nor `CUSTOS_ADDR` is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7400";

/// How to reach a node.
#[derive(Debug, Clone)]
pub enum Transport {
    /// TLS, verifying the node's certificate against this cluster CA (PEM).
    Tls { ca_pem: Vec<u8> },
    /// No TLS: only for nodes started with `insecure_plaintext`.
    Plaintext,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach custos-node at {addr}: {detail}. Is the node running, and is --addr (CUSTOS_ADDR) right?")]
    Connect { addr: String, detail: String },
    #[error("{}", describe(.0))]
    Rpc(Status),
    #[error("the token is not a valid header value")]
    BadToken,
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        ClientError::Rpc(s)
    }
}

impl ClientError {
    /// The gRPC code, if the server answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Rpc(s) => Some(s.code()),
            _ => None,
        }
    }
}

fn describe(s: &Status) -> String {
    use tonic::Code;
    let kind = match s.code() {
        Code::InvalidArgument => "invalid request",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::Unauthenticated => "not authenticated",
        Code::PermissionDenied => "not allowed",
        Code::DataLoss => "INTEGRITY FAILURE",
        Code::Unavailable => "unavailable",
        _ => "server error",
    };
    format!("{kind}: {}", s.message())
}

/// A connection to one node, carrying a bearer token.
#[derive(Clone)]
pub struct Client {
    inner: FootageClient<Channel>,
    admin: AdminClient<Channel>,
    audit: AuditClient<Channel>,
    holds: HoldsClient<Channel>,
    cluster: ClusterClient<Channel>,
    exports: ExportsClient<Channel>,
    ops: OperationsClient<Channel>,
    auth: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects to `addr` (`host:port`, or a URL whose scheme must match `transport`).
    pub async fn connect(addr: &str, token: Option<&str>, transport: &Transport) -> Result<Client, ClientError> {
        let (scheme, rest) = match addr.split_once("://") {
            Some((s, r)) => (Some(s), r),
            None => (None, addr),
        };
        let url = match (transport, scheme) {
            (Transport::Tls { .. }, None | Some("https")) => format!("https://{rest}"),
            (Transport::Plaintext, None | Some("http")) => format!("http://{rest}"),
            (Transport::Tls { .. }, Some("http")) => {
                return Err(ClientError::Usage(format!(
                    "{addr} is plaintext: use https://, or --insecure for a development node"
                )))
            }
            (Transport::Plaintext, Some("https")) => {
                return Err(ClientError::Usage(format!("{addr} is https but --insecure asks for plaintext")))
            }
            (_, Some(s)) => return Err(ClientError::Usage(format!("unsupported scheme {s}:// in {addr}"))),
        };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| ClientError::Connect { addr: url.clone(), detail: e.to_string() })?;
        if let Transport::Tls { ca_pem } = transport {
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| ClientError::Connect { addr: url.clone(), detail: e.to_string() })?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| ClientError::Connect { addr: url.clone(), detail: source_chain(&e) })?;
        let auth = match token {
            Some(t) => Some(format!("Bearer {}", t.trim()).parse().map_err(|_| ClientError::BadToken)?),
            None => None,
        };
        Ok(Client {
            inner: FootageClient::new(channel.clone()).max_decoding_message_size(8 << 20),
            admin: AdminClient::new(channel.clone()),
            audit: AuditClient::new(channel.clone()),
            holds: HoldsClient::new(channel.clone()),
            cluster: ClusterClient::new(channel.clone()),
            exports: ExportsClient::new(channel.clone()).max_decoding_message_size(8 << 20),
            ops: OperationsClient::new(channel).max_decoding_message_size(64 << 20),
            auth,
        })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(a) = &self.auth {
            r.metadata_mut().insert("authorization", a.clone());
        }
        r
    }

    /// Every camera.
    pub async fn list_cameras(&self) -> Result<Vec<Camera>, ClientError> {
        Ok(self.inner.clone().list_cameras(self.req(pb::ListCamerasRequest {})).await?.into_inner().cameras)
    }

    /// Registers a camera.
    pub async fn add_camera(&self, id: &str, source: &str, name: &str) -> Result<Camera, ClientError> {
        self.add_camera_with(id, source, name, false).await
    }

    /// Registers a camera, possibly in a sensitive zone.
    pub async fn add_camera_with(
        &self,
        id: &str,
        source: &str,
        name: &str,
        sensitive: bool,
    ) -> Result<Camera, ClientError> {
        self.add_camera_full(id, source, name, sensitive, false).await
    }

    /// Registers a camera, possibly sensitive, possibly with a hot standby (which first
    /// checks that the camera serves a second session).
    pub async fn add_camera_full(
        &self,
        id: &str,
        source: &str,
        name: &str,
        sensitive: bool,
        standby: bool,
    ) -> Result<Camera, ClientError> {
        let r = pb::AddCameraRequest { id: id.into(), source: source.into(), name: name.into(), sensitive, standby };
        Ok(self.inner.clone().add_camera(self.req(r)).await?.into_inner())
    }

    /// Marks a camera for a hot standby on another node, or unmarks it. A camera that does
    /// not serve a second RTSP session is refused (FAILED_PRECONDITION, saying so).
    pub async fn set_camera_standby(&self, camera: &str, standby: bool) -> Result<(), ClientError> {
        let r = pb::SetCameraStandbyRequest { camera: camera.into(), standby };
        self.admin.clone().set_camera_standby(self.req(r)).await?;
        Ok(())
    }

    /// Stops recording a camera.
    /// Asks to remove a camera; `Some(change id)`: it waits for an approver.
    pub async fn remove_camera(&self, id: &str) -> Result<Option<u64>, ClientError> {
        let r =
            self.inner.clone().remove_camera(self.req(pb::RemoveCameraRequest { id: id.into() })).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// Asks to take a camera's next healthy picture as its reference still; returns the
    /// change id an approver decides.
    pub async fn confirm_camera(&self, id: &str) -> Result<u64, ClientError> {
        let r =
            self.inner.clone().confirm_camera(self.req(pb::ConfirmCameraRequest { id: id.into() })).await?.into_inner();
        Ok(r.change_id)
    }

    /// The whole search answer: segments, whether the list was cut short, and the
    /// segments of the range whose footage is lost for good.
    pub async fn search_full(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        purpose: &str,
    ) -> Result<pb::SearchResponse, ClientError> {
        let r = pb::SearchRequest { camera: camera.into(), from_ms, to_ms, purpose: purpose.into(), limit: 0 };
        Ok(self.inner.clone().search(self.req(r)).await?.into_inner())
    }

    /// Segments overlapping `[from_ms, to_ms)`; the flag is true when the list was cut short.
    pub async fn search(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        purpose: &str,
    ) -> Result<(Vec<Segment>, bool), ClientError> {
        let r = pb::SearchRequest { camera: camera.into(), from_ms, to_ms, purpose: purpose.into(), limit: 0 };
        let resp = self.inner.clone().search(self.req(r)).await?.into_inner();
        Ok((resp.segments, resp.truncated))
    }

    /// The raw message stream of a fetch (summary, then each segment's header and data),
    /// for callers that read footage as it arrives (players, tests of in-flight checks).
    pub async fn fetch_stream(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        purpose: &str,
    ) -> Result<tonic::Streaming<pb::FetchChunk>, ClientError> {
        let r = pb::FetchRequest { camera: camera.into(), from_ms, to_ms, purpose: purpose.into() };
        Ok(self.inner.clone().fetch(self.req(r)).await?.into_inner())
    }

    /// Streams verified footage into `out`. `progress` sees the summary first, then every
    /// segment header and the running byte count. Returns the segments written.
    pub async fn fetch<W: std::io::Write>(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        purpose: &str,
        out: &mut W,
        mut progress: impl FnMut(FetchEvent<'_>),
    ) -> Result<Vec<Segment>, ClientError> {
        use pb::fetch_chunk::Item;
        let mut stream = self.fetch_stream(camera, from_ms, to_ms, purpose).await?;
        let mut segments = Vec::new();
        let mut written = 0u64;
        while let Some(chunk) = stream.message().await? {
            match chunk.item {
                Some(Item::Summary(s)) => progress(FetchEvent::Summary(&s)),
                Some(Item::Segment(s)) => {
                    progress(FetchEvent::Segment(&s));
                    segments.push(s);
                }
                Some(Item::Data(d)) => {
                    out.write_all(&d)?;
                    written += d.len() as u64;
                    progress(FetchEvent::Bytes(written));
                }
                Some(Item::Lost(l)) => progress(FetchEvent::Lost(&l)),
                None => {}
            }
        }
        Ok(segments)
    }

    /// Node status.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        Ok(self.inner.clone().status(self.req(pb::StatusRequest {})).await?.into_inner())
    }

    /// Every node with campus, Raft role, health and disk.
    pub async fn list_nodes(&self) -> Result<ListNodesResponse, ClientError> {
        Ok(self.cluster.clone().list_nodes(self.req(pb::ListNodesRequest {})).await?.into_inner())
    }

    /// A single-use join token (`ttl_s` 0: the server's default).
    pub async fn join_token(&self, ttl_s: u64) -> Result<CreateJoinTokenResponse, ClientError> {
        Ok(self.cluster.clone().create_join_token(self.req(pb::CreateJoinTokenRequest { ttl_s })).await?.into_inner())
    }

    /// Requests an export of `ranges` (camera, from, to).
    pub async fn request_export(
        &self,
        case_id: &str,
        organisation: &str,
        letter: &str,
        purpose: &str,
        ranges: &[(String, i64, i64)],
    ) -> Result<Export, ClientError> {
        self.request_export_with(case_id, organisation, letter, purpose, ranges, None).await
    }

    /// [`Client::request_export`], asking for redacted copies when `redact` is given: the
    /// boxes (`CAMERA:ZONE`) to fill besides each camera's privacy zones.
    pub async fn request_export_with(
        &self,
        case_id: &str,
        organisation: &str,
        letter: &str,
        purpose: &str,
        ranges: &[(String, i64, i64)],
        redact: Option<&[String]>,
    ) -> Result<Export, ClientError> {
        let r = pb::RequestExportRequest {
            case_id: case_id.into(),
            organisation: organisation.into(),
            letter: letter.into(),
            purpose: purpose.into(),
            ranges: ranges
                .iter()
                .map(|(c, f, t)| pb::ExportRange { camera: c.clone(), from_ms: *f, to_ms: *t })
                .collect(),
            redact: redact.is_some(),
            redact_boxes: redact.map(<[String]>::to_vec).unwrap_or_default(),
        };
        Ok(self.exports.clone().request_export(self.req(r)).await?.into_inner())
    }

    /// Approves (or rejects, with a reason) an export request.
    pub async fn decide_export(&self, id: &str, approve: bool, reason: &str) -> Result<Export, ClientError> {
        self.decide_export_with(id, approve, reason, false).await
    }

    /// [`Client::decide_export`] for a redacted export: `include_original` puts the
    /// originals into the package beside the redacted copies.
    pub async fn decide_export_with(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
        include_original: bool,
    ) -> Result<Export, ClientError> {
        let r = pb::DecideExportRequest { id: id.into(), approve, reason: reason.into(), include_original };
        Ok(self.exports.clone().decide_export(self.req(r)).await?.into_inner())
    }

    /// Builds, signs and archives an approved export.
    pub async fn run_export(&self, id: &str) -> Result<Export, ClientError> {
        Ok(self.exports.clone().run_export(self.req(pb::RunExportRequest { id: id.into() })).await?.into_inner())
    }

    /// Exports the caller may see.
    pub async fn list_exports(&self) -> Result<Vec<Export>, ClientError> {
        Ok(self.exports.clone().list_exports(self.req(pb::ListExportsRequest {})).await?.into_inner().exports)
    }

    /// One export.
    pub async fn get_export(&self, id: &str) -> Result<Export, ClientError> {
        Ok(self.exports.clone().get_export(self.req(pb::GetExportRequest { id: id.into() })).await?.into_inner())
    }

    /// The cluster's export signing key.
    pub async fn signing_key(&self) -> Result<SigningKeyResponse, ClientError> {
        Ok(self.exports.clone().signing_key(self.req(pb::SigningKeyRequest {})).await?.into_inner())
    }

    /// Appends file `file` of export `id` from byte `offset` to `out`; returns the bytes
    /// written. `progress` gets each chunk's size.
    pub async fn download_export_file<W: std::io::Write>(
        &self,
        id: &str,
        file: &str,
        offset: u64,
        out: &mut W,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ClientError> {
        let r = pb::DownloadExportRequest { id: id.into(), file: file.into(), offset };
        let mut stream = self.exports.clone().download_export(self.req(r)).await?.into_inner();
        let mut n = 0;
        while let Some(c) = stream.message().await? {
            out.write_all(&c.data)?;
            n += c.data.len() as u64;
            progress(c.data.len() as u64);
        }
        Ok(n)
    }

    /// Downloads every file of a completed export into `dir`, resuming files a previous
    /// attempt left as `NAME.part`. `progress(done, total)` follows the bytes.
    pub async fn download_export(
        &self,
        id: &str,
        dir: &std::path::Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Export, ClientError> {
        let e = self.get_export(id).await?;
        if e.files.is_empty() {
            return Err(ClientError::Usage(format!(
                "export {id} is {}: it can be downloaded once it has been approved and run",
                e.status
            )));
        }
        std::fs::create_dir_all(dir)?;
        let total: u64 = e.files.iter().map(|f| f.bytes).sum();
        let mut done = 0;
        for f in &e.files {
            if f.name.contains('/') || f.name.starts_with('.') {
                return Err(ClientError::Usage(format!("refusing file name {:?} from the server", f.name)));
            }
            let path = dir.join(&f.name);
            if std::fs::metadata(&path).is_ok_and(|m| m.len() == f.bytes) {
                done += f.bytes;
                progress(done, total);
                continue;
            }
            let part = dir.join(format!("{}.part", f.name));
            let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0).min(f.bytes);
            let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&part)?;
            out.set_len(have)?;
            done += have;
            let got = self
                .download_export_file(id, &f.name, have, &mut out, |n| {
                    done += n;
                    progress(done, total);
                })
                .await;
            if let Err(e) = got {
                // A file the node rebuilt (an MP4) and found different from the manifest:
                // what arrived is wrong, so a later attempt must not resume after it.
                if e.code() == Some(tonic::Code::DataLoss) {
                    drop(out);
                    let _ = std::fs::remove_file(&part);
                }
                return Err(e);
            }
            out.sync_all()?;
            std::fs::rename(&part, &path)?;
        }
        Ok(e)
    }

    /// Checks the backup bucket: the newest snapshot and `sample` segments (0: all).
    pub async fn verify_backup(&self, sample: u64) -> Result<pb::VerifyBackupResponse, ClientError> {
        Ok(self.cluster.clone().verify_backup(self.req(pb::VerifyBackupRequest { sample })).await?.into_inner())
    }

    /// Retires a node.
    /// Asks to retire a node; `Some(change id)`: it waits for an approver.
    pub async fn remove_node(&self, id: u64) -> Result<Option<u64>, ClientError> {
        let r = self.cluster.clone().remove_node(self.req(pb::RemoveNodeRequest { id })).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// Asks to confirm node `id`'s clock jump; returns the pending change's id.
    pub async fn confirm_clock(&self, id: u64) -> Result<u64, ClientError> {
        let r = self.cluster.clone().confirm_clock(self.req(pb::ConfirmClockRequest { id })).await?.into_inner();
        Ok(r.change_id)
    }
}

impl Client {
    /// Creates a user; returns their first token.
    pub async fn add_user(
        &self,
        name: &str,
        role: &str,
        case_id: Option<&str>,
        ttl_days: u32,
    ) -> Result<TokenIssued, ClientError> {
        let r = pb::AddUserRequest {
            name: name.into(),
            role: role.into(),
            case_id: case_id.unwrap_or_default().into(),
            ttl_days,
        };
        Ok(self.admin.clone().add_user(self.req(r)).await?.into_inner())
    }

    pub async fn list_users(&self) -> Result<Vec<User>, ClientError> {
        Ok(self.admin.clone().list_users(self.req(pb::ListUsersRequest {})).await?.into_inner().users)
    }

    pub async fn disable_user(&self, name: &str) -> Result<(), ClientError> {
        self.admin.clone().disable_user(self.req(pb::DisableUserRequest { name: name.into() })).await?;
        Ok(())
    }

    /// Asks for `user`'s console password to be cleared (a pending change).
    pub async fn reset_password(&self, user: &str) -> Result<TokenIssued, ClientError> {
        let r = self.admin.clone().reset_password(self.req(pb::ResetPasswordRequest { user: user.into() })).await?;
        Ok(r.into_inner())
    }

    pub async fn issue_token(&self, user: &str, ttl_days: u32) -> Result<TokenIssued, ClientError> {
        Ok(self
            .admin
            .clone()
            .issue_token(self.req(pb::IssueTokenRequest { user: user.into(), ttl_days }))
            .await?
            .into_inner())
    }

    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<Token>, ClientError> {
        let r = pb::ListTokensRequest { user: user.unwrap_or_default().into() };
        Ok(self.admin.clone().list_tokens(self.req(r)).await?.into_inner().tokens)
    }

    /// Revokes a token by id (or by the token itself).
    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        self.admin.clone().revoke_token(self.req(pb::RevokeTokenRequest { id: id.into() })).await?;
        Ok(())
    }

    /// Grants (or withdraws) a sensitive camera; `Some(change id)`: a grant waits for an
    /// approver.
    pub async fn grant_camera(&self, user: &str, camera: &str, grant: bool) -> Result<Option<u64>, ClientError> {
        let r = pb::GrantCameraRequest { user: user.into(), camera: camera.into(), grant };
        let r = self.admin.clone().grant_camera(self.req(r)).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// Marks or unmarks a camera sensitive; `Some(change id)`: unmarking waits for an
    /// approver.
    pub async fn set_camera_sensitive(&self, camera: &str, sensitive: bool) -> Result<Option<u64>, ClientError> {
        let r = pb::SetCameraSensitiveRequest { camera: camera.into(), sensitive };
        let r = self.admin.clone().set_camera_sensitive(self.req(r)).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// Replaces a camera's privacy zones (through the change queue: returns the change).
    pub async fn set_privacy_zones(&self, camera: &str, zones: &[String]) -> Result<Option<u64>, ClientError> {
        let r = pb::SetPrivacyZonesRequest { camera: camera.into(), zones: zones.to_vec() };
        let r = self.admin.clone().set_privacy_zones(self.req(r)).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// The default retention policy and every camera's own.
    pub async fn list_policies(&self) -> Result<(Policy, Vec<Policy>), ClientError> {
        let r = self.admin.clone().list_policies(self.req(pb::ListPoliciesRequest {})).await?.into_inner();
        Ok((r.default_policy.unwrap_or_default(), r.cameras))
    }

    /// Sets a camera's policy, or the default with `camera = None`.
    /// `Some(change id)`: a shorter `max_days` waits for an approver.
    pub async fn set_policy(
        &self,
        camera: Option<&str>,
        min_days: u32,
        max_days: u32,
    ) -> Result<Option<u64>, ClientError> {
        let policy = Policy { camera: camera.unwrap_or_default().into(), min_days, max_days };
        let r =
            self.admin.clone().set_policy(self.req(pb::SetPolicyRequest { policy: Some(policy) })).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// Pending changes, or with `all` every change, newest first.
    pub async fn list_changes(&self, all: bool) -> Result<Vec<pb::Change>, ClientError> {
        Ok(self.admin.clone().list_changes(self.req(pb::ListChangesRequest { all })).await?.into_inner().changes)
    }

    pub async fn get_change(&self, id: u64) -> Result<pb::Change, ClientError> {
        Ok(self.admin.clone().get_change(self.req(pb::GetChangeRequest { id })).await?.into_inner())
    }

    /// Accepts (`approve`) or rejects a change, with a note or the rejection's reason.
    pub async fn decide_change(&self, id: u64, approve: bool, note: &str) -> Result<pb::ChangeDecided, ClientError> {
        let r = pb::DecideChangeRequest { id, approve, note: note.into() };
        Ok(self.admin.clone().decide_change(self.req(r)).await?.into_inner())
    }

    /// Places a hold; `to_ms = None` holds everything from `from_ms` on.
    pub async fn place_hold(
        &self,
        case_id: &str,
        cameras: &[String],
        from_ms: i64,
        to_ms: Option<i64>,
        reason: &str,
    ) -> Result<Hold, ClientError> {
        let r = pb::PlaceHoldRequest {
            case_id: case_id.into(),
            cameras: cameras.to_vec(),
            from_ms,
            to_ms: to_ms.unwrap_or(0),
            reason: reason.into(),
        };
        Ok(self.holds.clone().place_hold(self.req(r)).await?.into_inner())
    }

    /// Active holds (all with `all`).
    pub async fn list_holds(&self, all: bool) -> Result<Vec<Hold>, ClientError> {
        Ok(self.holds.clone().list_holds(self.req(pb::ListHoldsRequest { all })).await?.into_inner().holds)
    }

    /// Approves releasing a hold; the second different approver releases it.
    pub async fn approve_release(&self, id: &str) -> Result<Hold, ClientError> {
        Ok(self
            .holds
            .clone()
            .approve_release(self.req(pb::ApproveReleaseRequest { id: id.into() }))
            .await?
            .into_inner())
    }

    /// The daily seals, oldest first.
    pub async fn list_seals(&self) -> Result<Vec<pb::SealInfo>, ClientError> {
        Ok(self.audit.clone().list_seals(self.req(pb::ListSealsRequest {})).await?.into_inner().seals)
    }

    /// One seal file: seal `seq`, else the newest of `day`, else the newest.
    pub async fn get_seal(&self, seq: u64, day: &str) -> Result<pb::SealFileReply, ClientError> {
        let r = pb::GetSealRequest { seq, day: day.into() };
        Ok(self.audit.clone().get_seal(self.req(r)).await?.into_inner())
    }

    /// Deletion receipts, oldest first (optionally of one camera).
    pub async fn receipts(&self, camera: Option<&str>) -> Result<Vec<pb::DeletionReceipt>, ClientError> {
        let r = pb::ReceiptsRequest { after_seq: 0, camera: camera.unwrap_or_default().into(), limit: 0 };
        Ok(self.audit.clone().receipts(self.req(r)).await?.into_inner().receipts)
    }

    /// Audit entries matching `filter`, in sequence order.
    pub async fn audit_log(&self, filter: pb::AuditLogRequest) -> Result<Vec<AuditEntry>, ClientError> {
        let mut stream = self.audit.clone().log(self.req(filter)).await?.into_inner();
        let mut out = Vec::new();
        while let Some(e) = stream.message().await? {
            out.push(e);
        }
        Ok(out)
    }
}

impl Client {
    /// Open alarms, newest first (cleared ones too with `all`).
    pub async fn list_alarms(&self, all: bool) -> Result<Vec<pb::Alarm>, ClientError> {
        Ok(self.ops.clone().list_alarms(self.req(pb::ListAlarmsRequest { all, limit: 0 })).await?.into_inner().alarms)
    }

    /// Acknowledges an alarm with a note.
    pub async fn ack_alarm(&self, id: u64, note: &str) -> Result<pb::Alarm, ClientError> {
        Ok(self.ops.clone().ack_alarm(self.req(pb::AckAlarmRequest { id, note: note.into() })).await?.into_inner())
    }

    /// Checks every camera and node and records the patrol.
    pub async fn patrol(&self, notes: &str) -> Result<pb::DutyRecord, ClientError> {
        Ok(self.ops.clone().patrol(self.req(pb::PatrolRequest { notes: notes.into() })).await?.into_inner())
    }

    /// Records a shift handover to `to`.
    pub async fn handover(&self, to: &str, notes: &str) -> Result<pb::DutyRecord, ClientError> {
        let r = pb::HandoverRequest { to: to.into(), notes: notes.into() };
        Ok(self.ops.clone().handover(self.req(r)).await?.into_inner())
    }

    /// Defines a shift (local HH:MM); `Some(change id)` while it waits for an approver.
    pub async fn define_shift(&self, name: &str, from: &str, to: &str) -> Result<Option<u64>, ClientError> {
        let r = pb::DefineShiftRequest { name: name.into(), from: from.into(), to: to.into() };
        let r = self.ops.clone().define_shift(self.req(r)).await?.into_inner();
        Ok((r.change_id != 0).then_some(r.change_id))
    }

    /// The shifts and the one under way.
    pub async fn list_shifts(&self) -> Result<pb::ListShiftsResponse, ClientError> {
        Ok(self.ops.clone().list_shifts(self.req(pb::ListShiftsRequest {})).await?.into_inner())
    }

    /// Signs off the duty log of `[from_ms, to_ms)` (approvers).
    pub async fn sign_duty(&self, from_ms: i64, to_ms: i64, note: &str) -> Result<pb::Signoff, ClientError> {
        let r = pb::SignDutyRequest { from_ms, to_ms, note: note.into() };
        Ok(self.ops.clone().sign_duty(self.req(r)).await?.into_inner())
    }

    /// The receiver accepts handover `seq`.
    pub async fn accept_handover(&self, seq: u64, note: &str) -> Result<pb::DutyRecord, ClientError> {
        let r = pb::AcceptHandoverRequest { seq, note: note.into() };
        Ok(self.ops.clone().accept_handover(self.req(r)).await?.into_inner())
    }

    /// Registers a fault on a camera (`node` 0) or a node (`camera` empty).
    pub async fn report_fault(&self, camera: &str, node: u64, note: &str) -> Result<pb::Fault, ClientError> {
        let r = pb::ReportFaultRequest { camera: camera.into(), node, note: note.into() };
        Ok(self.ops.clone().report_fault(self.req(r)).await?.into_inner())
    }

    /// Open faults, newest first; with `all`, resolved ones too.
    pub async fn list_faults(&self, all: bool) -> Result<Vec<pb::Fault>, ClientError> {
        Ok(self.ops.clone().list_faults(self.req(pb::ListFaultsRequest { all })).await?.into_inner().faults)
    }

    pub async fn resolve_fault(&self, id: u64, note: &str) -> Result<pb::Fault, ClientError> {
        let r = pb::ResolveFaultRequest { id, note: note.into() };
        Ok(self.ops.clone().resolve_fault(self.req(r)).await?.into_inner())
    }

    /// Patrols and handovers, newest first (`kind`: "patrol", "handover" or "").
    pub async fn list_duty(&self, kind: &str, limit: u32) -> Result<Vec<pb::DutyRecord>, ClientError> {
        let r = pb::ListDutyRequest { kind: kind.into(), limit };
        Ok(self.ops.clone().list_duty(self.req(r)).await?.into_inner().records)
    }

    /// The compliance report over the last `days` (0: 30).
    pub async fn compliance_report(&self, days: u32) -> Result<pb::ComplianceResponse, ClientError> {
        Ok(self.ops.clone().compliance_report(self.req(pb::ComplianceRequest { days })).await?.into_inner())
    }
}

pub use pb::AuditLogRequest;

/// Progress of a fetch.
#[derive(Debug)]
pub enum FetchEvent<'a> {
    Summary(&'a FetchSummary),
    Segment(&'a Segment),
    Bytes(u64),
    /// A segment of the range whose footage is lost for good: skipped.
    Lost(&'a pb::LostSegment),
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

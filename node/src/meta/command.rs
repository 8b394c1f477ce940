//! The commands a Raft entry carries, the request that stamps one with the leader's clock,
//! and what applying it answers. Persisted like the records of [`super::types`]: the
//! same format rules hold (a new command is appended, never inserted, and belongs to a
//! new format).

use serde::{Deserialize, Serialize};

use super::types::*;

use crate::audit::AuditEvent;

/// What a Raft entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Register a camera.
    AddCamera(Camera),
    /// Stop recording a camera (its footage stays).
    RemoveCamera { id: String },
    /// Catalog a batch of durable segments. Records already present are skipped, so a
    /// batch re-proposed after a crash is harmless.
    CommitSegments(Vec<SegmentRecord>),
    /// Create a user together with a first token.
    CreateUser { user: User, token_hash: Hash, token: TokenRecord },
    /// Refuse a user from now on (their tokens stop working).
    DisableUser { name: String },
    /// Give an existing user another token.
    IssueToken { token_hash: Hash, token: TokenRecord },
    /// Revoke a token by its public id.
    RevokeToken { id: String },
    /// Allow (or stop allowing) a user to view a sensitive camera.
    GrantCamera { user: String, camera: String, grant: bool },
    /// Mark a camera as in a sensitive zone, or not.
    SetSensitive { camera: String, sensitive: bool },
    /// Set the retention policy of one camera, or the default (`camera: None`).
    /// Re-checked against the floor when applied.
    SetPolicy { camera: Option<String>, policy: crate::retention::Policy },
    /// Place a hold; the state machine assigns its id.
    PlaceHold(crate::retention::Hold),
    /// One user's approval to release a hold; the second different user releases it.
    ApproveHoldRelease { id: String, user: String },
    /// Expire these segments (camera, start). Apply re-checks each one against its
    /// policy and every active hold at the command's time and skips any that is
    /// protected, so a proposer can nominate but never force a deletion.
    /// `at_ms` is the time the cluster's clocks agree on (the median of the voters'
    /// clocks, measured by the leader); apply uses the earlier of it and the leader's own
    /// time, so a leader whose clock runs ahead deletes nothing early.
    ExpireSegments { at_ms: i64, segments: Vec<(String, i64)> },
    /// Only append the request's audit event (footage accesses, denials).
    Audit,
    /// Record a join token an administrator created.
    CreateJoinToken { token_hash: Hash, token: JoinTokenRecord },
    /// Add a node. The state machine assigns the next id. `token_hash` must name an
    /// unused, unexpired join token, except for the founding node of an empty cluster,
    /// which registers itself under its own id (`founder`).
    RegisterNode { campus: String, addr: String, token_hash: Option<Hash>, founder: Option<NodeId> },
    /// Retire a node: it leaves the group and its id is never reused.
    RetireNode { id: NodeId },
    /// Move a camera to another recorder (failover, rebalancing, retirement).
    AssignCamera { camera: String, recorder: NodeId },
    /// Add replicas to committed segments (repair): (camera, start, node).
    AddReplicas(Vec<(String, i64, NodeId)>),
    /// Record an export request; the state machine assigns its id.
    RequestExport(ExportRecord),
    /// Approve or reject a request. Refused for the requester and for a decided request.
    DecideExport { id: String, user: String, approve: bool, reason: String },
    /// Record a built package and place a hold on its footage. Refused unless the
    /// request is approved and the approval is still valid at the command's time.
    CompleteExport {
        id: String,
        manifest: String,
        signature: String,
        merkle_root: String,
        hold: crate::retention::Hold,
    },
    /// The backup store confirmed these pack objects. Members still queued become backed
    /// up at their place in the pack; a pack none of whose members is still queued (all
    /// expired meanwhile, or already backed up) goes straight to the bucket's trash.
    MarkBackedUp(Vec<StoredPack>),
    /// Alarms the leader's evaluation raised or cleared. Raising one already open, or
    /// clearing one not open, changes nothing.
    Alarms(Vec<AlarmChange>),
    /// An operator acknowledges an alarm with a note.
    AckAlarm { id: u64, user: String, note: String },
    /// A patrol or a shift handover; the state machine assigns its number and time.
    RecordDuty(DutyRecord),
    /// Register a camera from a node's config file (`[[camera]]`), once per cluster: the
    /// catalog records that the id was seeded, and a second seeding of it is refused, so
    /// a seed camera an administrator removed stays removed when nodes restart. When the
    /// camera already exists only the record is added.
    SeedCamera(Camera),
    /// Pin the key of node `id`'s certificate (BLAKE3 of its SubjectPublicKeyInfo): from
    /// then on a peer call in node `id`'s name must present that key, so a certificate
    /// minted later with the cluster CA cannot stand in for the node. The first pin
    /// stands; another key is rejected. Refused for unknown and retired nodes.
    PinNodeKey { id: NodeId, key_hash: Hash },
    /// The founding users (`custos-node init`: an administrator and an approver). Refused
    /// once the catalog has any user, so nobody can found a cluster twice.
    FoundCluster(Vec<(User, Hash, TokenRecord)>),
    /// Queues a change to a root of trust; it takes effect only when a second person
    /// accepts it (`DecideChange`). Replies `Created(id)`.
    RequestChange(Box<ChangeRecord>),
    /// An approver accepts or rejects a pending change. Accepting applies its effect in
    /// the same entry; a change that creates a user or issues a token gets the token
    /// (made by the approver's node, so the requester never sees it) here.
    DecideChange { id: u64, user: String, approve: bool, note: String, token: Option<(Hash, TokenRecord)> },
    /// Raises the cluster version: the newest format every voter decodes, so commands
    /// introduced in it may be proposed. The leader proposes it once every voter reports
    /// a binary that decodes it (`meta::schema`); it never goes down.
    SetClusterVersion(u32),
    /// The leader's daily seal (`custos_evidence::seal`): stored if it is the next in the
    /// chain, names the stored audit head, and is signed by the cluster's seal key.
    StoreSeal(custos_evidence::seal::SealFile),
    /// A fault someone on duty saw (a covered lens, a camera turned away): registered at
    /// once, under the next number. Replies `Created(id)`.
    ReportFault(FaultRecord),
    /// A fault repaired, with what was done.
    ResolveFault { id: u64, user: String, note: String },
    /// The receiver of a shift handover accepts it (only they may, once).
    AcceptHandover { seq: u64, user: String, note: String },
    /// Defines (or redefines) a shift by name and local times of day.
    DefineShift(crate::shifts::ShiftDef),
    /// An approver signs off the duty log of a period. Replies `Created(number)`.
    SignDuty(DutySignoff),
    /// Confirms that node `node`'s clock jumped forward on purpose (or that its new time is
    /// right): the node resumes expiry. Only ever the effect of an accepted change
    /// (`custos node confirm-clock`); the state machine counts confirmations per node.
    ConfirmClock { node: NodeId },
    /// Flags segments recorded while their recorder's clock was off the cluster's median
    /// by more than the skew bound, with the offset measured. Kept beside the segments
    /// (`segment_clocks`), so the segment records keep their format.
    MarkSegmentClocks(Vec<SegmentClock>),
    /// A camera's reference still for picture checks. `Some`: the recorder's first
    /// healthy picture, stored only while the camera has none (a recorder cannot re-aim
    /// the reference by itself). `None`: drops the reference so the recorder takes a new
    /// one, only ever the effect of an accepted change (`custos camera confirm`), since
    /// re-aiming a camera is a privacy question.
    SetPictureReference { camera: String, still: Option<PictureStill> },
    /// A user sets their console password (`crate::web`), proving who they are with one
    /// of their live tokens, the enrolment code. Only while no password is set: a
    /// password is set once, and changed only through a reset.
    SetPassword { user: String, token_hash: Hash, phc: String },
    /// Clears a user's console password and ends their console sessions, giving them a
    /// new token (made by the approver's node) to enrol again. Only ever the effect of an
    /// accepted change (`custos user reset-password`).
    ResetPassword { user: String, token_hash: Hash, token: TokenRecord },
    /// A camera's privacy zones (replacing the ones it had; none removes them all), which
    /// redacted exports fill in. Through the change queue: a zone hides part of what the
    /// camera sees from every redacted copy, and removing one reveals it. Format 3.
    SetPrivacyZones { camera: String, zones: Vec<crate::zones::Zone> },
    /// An export request that asks for a redacted derivative of each camera's footage: the
    /// camera's zones at run time plus `extra` boxes for this request, per camera. Applied
    /// as `RequestExport`, and the redaction stored under the export's id. Format 3.
    RequestRedactedExport { export: ExportRecord, extra: Vec<(String, crate::zones::Zone)> },
    /// `DecideExport` for a redacted export, with the approver's decision whether the
    /// originals (the MPEG-TS and its MP4) go into the package too, or stay in the
    /// hospital's archived copy only. Format 3.
    DecideRedactedExport { id: String, user: String, approve: bool, reason: String, include_original: bool },
    /// Marks a camera for a hot standby, or unmarks it (the standby, if any, stops).
    /// Format 4.
    SetStandby { camera: String, wanted: bool },
    /// The leader chooses (or drops, `None`) a camera's standby node: never its recorder,
    /// never a retired node. Format 4.
    AssignStandby { camera: String, node: Option<NodeId> },
    /// The standby `to` takes a camera over from its failed recorder `from`: applied only
    /// while `from` still records it and `to` is still its standby. The camera's seam
    /// becomes the end of its committed footage, which the reply gives (`TookOver`), so the
    /// new recorder commits from there. Format 4.
    TakeOver { camera: String, from: NodeId, to: NodeId },
}

/// A Raft entry's payload: a command stamped with the leader's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Leader wall-clock time when the command was proposed (ms since the epoch). Every
    /// time-based decision in `apply` uses this, never the applying node's clock.
    pub time_ms: i64,
    pub command: Command,
    /// Audit event appended in the same entry, after the command's outcome is known.
    pub audit: Option<AuditEvent>,
}

/// What kind of refusal the state machine made; the API maps each kind to one gRPC code
/// (`server::rejected`), never by reading the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectKind {
    /// The command names something that does not exist.
    NotFound,
    /// It would create something that exists already.
    AlreadyExists,
    /// The caller may not do this (for example, decide their own request).
    PermissionDenied,
    /// The state does not allow it now (a floor, an unapproved export, a used token).
    FailedPrecondition,
    /// The command's own content is invalid.
    InvalidArgument,
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Response {
    #[default]
    Ok,
    /// Segments newly committed and those that were already present. `superseded`:
    /// segments refused because a node that no longer records the camera sent them for
    /// time another node covers (after a takeover, or overlapping committed footage).
    Committed { new: u32, duplicate: u32, superseded: u32 },
    /// A takeover was applied: the end of the camera's committed footage at that moment
    /// (`None`: it had none), from which the new recorder commits.
    TookOver { seam_ms: Option<i64> },
    /// The command was valid Raft input but the state refused it (e.g. a duplicate id):
    /// what kind of refusal, and why in words. Nothing but the applied id and the audit
    /// entry is written.
    Rejected(RejectKind, String),
    /// Something was created under this id.
    Created(String),
    /// The catalog could not be read while applying. Never returned to a proposer: the
    /// state machine turns it into a storage error, which stops this node (fail-stop),
    /// so a failing disk never makes one replica apply an entry differently.
    StorageFailed(String),
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.command {
            Command::AddCamera(c) => write!(f, "add-camera {}", c.id),
            Command::SeedCamera(c) => write!(f, "seed-camera {}", c.id),
            Command::RemoveCamera { id } => write!(f, "remove-camera {id}"),
            Command::CommitSegments(s) => write!(f, "commit-segments x{}", s.len()),
            Command::CreateUser { user, .. } => write!(f, "create-user {}", user.name),
            Command::DisableUser { name } => write!(f, "disable-user {name}"),
            Command::IssueToken { token, .. } => write!(f, "issue-token {} for {}", token.id, token.user),
            Command::RevokeToken { id } => write!(f, "revoke-token {id}"),
            Command::GrantCamera { user, camera, grant } => write!(f, "grant-camera {user} {camera} {grant}"),
            Command::SetSensitive { camera, sensitive } => write!(f, "set-sensitive {camera} {sensitive}"),
            Command::SetPolicy { camera, policy } => write!(f, "set-policy {camera:?} {policy:?}"),
            Command::PlaceHold(h) => write!(f, "place-hold case {}", h.case_id),
            Command::ApproveHoldRelease { id, user } => write!(f, "approve-hold-release {id} by {user}"),
            Command::ExpireSegments { segments, .. } => write!(f, "expire-segments x{}", segments.len()),
            Command::Audit => write!(f, "audit"),
            Command::CreateJoinToken { .. } => write!(f, "create-join-token"),
            Command::RegisterNode { campus, addr, .. } => write!(f, "register-node {addr} campus {campus}"),
            Command::RetireNode { id } => write!(f, "retire-node {id}"),
            Command::AssignCamera { camera, recorder } => write!(f, "assign-camera {camera} to {recorder}"),
            Command::AddReplicas(r) => write!(f, "add-replicas x{}", r.len()),
            Command::RequestExport(e) => write!(f, "request-export case {}", e.case_id),
            Command::DecideExport { id, user, approve, .. } => write!(f, "decide-export {id} by {user}: {approve}"),
            Command::CompleteExport { id, merkle_root, .. } => write!(f, "complete-export {id} root {merkle_root}"),
            Command::Alarms(a) => write!(f, "alarms x{}", a.len()),
            Command::AckAlarm { id, user, .. } => write!(f, "ack-alarm {id} by {user}"),
            Command::RecordDuty(d) => write!(f, "record-{} by {}", d.kind.as_str(), d.user),
            Command::ReportFault(r) => write!(f, "report-fault {} by {}", r.subject, r.reported_by),
            Command::ResolveFault { id, user, .. } => write!(f, "resolve-fault {id} by {user}"),
            Command::AcceptHandover { seq, user, .. } => write!(f, "accept-handover {seq} by {user}"),
            Command::DefineShift(s) => write!(f, "define-shift {}", s.name),
            Command::SignDuty(s) => write!(f, "sign-duty by {}", s.user),
            Command::StoreSeal(s) => write!(f, "store-seal {}", &s.hash[..s.hash.len().min(12)]),
            Command::FoundCluster(u) => write!(f, "found-cluster x{}", u.len()),
            Command::RequestChange(c) => write!(f, "request-change {} by {}", c.action, c.requested_by),
            Command::DecideChange { id, user, approve, .. } => write!(f, "decide-change {id} by {user}: {approve}"),
            Command::SetClusterVersion(v) => write!(f, "set-cluster-version {v}"),
            Command::ConfirmClock { node } => write!(f, "confirm-clock {node}"),
            Command::MarkSegmentClocks(v) => write!(f, "mark-segment-clocks x{}", v.len()),
            Command::SetPictureReference { camera, still: Some(_) } => write!(f, "picture-reference {camera}"),
            Command::SetPictureReference { camera, still: None } => write!(f, "camera-confirm {camera}"),
            Command::SetPassword { user, .. } => write!(f, "set-password {user}"),
            Command::ResetPassword { user, .. } => write!(f, "reset-password {user}"),
            Command::SetPrivacyZones { camera, zones } => write!(f, "set-privacy-zones {camera} x{}", zones.len()),
            Command::RequestRedactedExport { export, extra } => {
                write!(f, "request-redacted-export case {} boxes x{}", export.case_id, extra.len())
            }
            Command::DecideRedactedExport { id, user, approve, include_original, .. } => {
                write!(f, "decide-redacted-export {id} by {user}: {approve}, originals {include_original}")
            }
            Command::SetStandby { camera, wanted } => write!(f, "set-standby {camera} {wanted}"),
            Command::AssignStandby { camera, node: Some(n) } => write!(f, "assign-standby {camera} to {n}"),
            Command::AssignStandby { camera, node: None } => write!(f, "assign-standby {camera} to none"),
            Command::TakeOver { camera, from, to } => write!(f, "take-over {camera} from {from} by {to}"),
            Command::PinNodeKey { id, key_hash } => write!(f, "pin-node-key {id} {}", hex::encode(&key_hash[..8])),
            Command::MarkBackedUp(p) => {
                write!(f, "mark-backed-up {} packs x{}", p.len(), p.iter().map(|p| p.members.len()).sum::<usize>())
            }
        }
    }
}

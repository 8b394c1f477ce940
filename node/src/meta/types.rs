//! Domain records held in the Raft state machine, and the commands that change them.
//!
//! Everything here is serialised with positional postcard behind a one-byte format
//! version, both in the Raft log and in the state machine's column families (`encode`,
//! `decode`, in `meta::schema`). These are the current format's shapes: adding a command
//! or a field, or reordering either, makes a new format, with the old shapes frozen and an
//! upgrade step to the new ones (see `meta::schema`); a command a new format introduces is
//! refused until the cluster version reaches it.

use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::audit::{AuditAction, AuditEvent};

/// A 32-byte BLAKE3 digest: what names a blob, a segment's content, a token.
pub type Hash = [u8; 32];

custos_evidence::stable_names! {
    /// What an alarm is about. Stored by name in the catalog (`AlarmRecord`) and in the
    /// Raft entries that raise and clear alarms, shown by name in `custos status`, the
    /// metrics' `kind` label and the webhooks' `alertname`: a name is never changed.
    pub enum AlarmKind {
        /// No segment of a camera committed for too long: a blind spot.
        CameraDown = "camera-down",
        /// A node does not answer.
        NodeDown = "node-down",
        /// A node is below its free-space floor.
        DiskLow = "disk-low",
        /// Segments have had fewer copies than the replication factor for too long.
        UnderReplicated = "under-replicated",
        /// The oldest segment waiting for the bucket ended too long ago.
        BackupLag = "backup-lag",
        /// Uploads to the bucket fail and are retried.
        BackupFailing = "backup-failing",
        /// A node's scrubber found damage, lately or still unrepaired.
        ScrubFailure = "scrub-failure",
        /// A node's clock is too far from the cluster's median clock.
        ClockSkew = "clock-skew",
        /// A shift handover was not accepted in time.
        HandoverUnaccepted = "handover-unaccepted",
        /// A shift ended with fewer patrols than required.
        PatrolQuota = "patrol-quota",
        /// A node's clock jumped forward while it ran; it expires nothing until confirmed.
        ClockJump = "clock-jump",
        /// A camera's picture is black, covered, blurred or turned away.
        CameraPicture = "camera-picture",
    }
}

/// Raft node id.
pub type NodeId = u64;

/// Video codec of a segment's elementary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    /// Lower-case name used in the API and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

/// A camera registered in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub source: String,
    /// The node that records it.
    pub recorder: NodeId,
    /// Leader time when it was added.
    pub added_ms: i64,
    /// In a sensitive zone (operating theatre, ward): viewing needs an explicit grant.
    pub sensitive: bool,
}

/// A camera's hot standby (format 4; kept beside the camera, so camera records keep
/// their shape). The standby node receives the camera's stream too, keeps the last
/// seconds in memory and commits nothing until the recorder fails; then it takes over
/// from the end of the recorder's committed footage (`Command::TakeOver`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standby {
    /// The camera is marked for a standby (`custos camera add --standby`,
    /// `custos camera standby`).
    pub wanted: bool,
    /// The node that stands by; `None` while the leader has not chosen one.
    pub node: Option<NodeId>,
    /// The end of the camera's committed footage at its last takeover. Footage from a node
    /// that is not the camera's recorder and ends after it is superseded: the node that
    /// took over covers that time.
    pub seam_ms: Option<i64>,
    /// The last takeover: leader time, the recorder that failed and the node that took over.
    pub last_takeover: Option<(i64, NodeId, NodeId)>,
}

/// How far a sensitivity period reaches beyond the command that opened or closed it: a
/// recorder's clock may differ from the leader's by seconds, and a segment is committed
/// seconds after it was recorded. Erring wide keeps sensitive footage behind its grant.
pub const SENSITIVITY_MARGIN_MS: i64 = 5 * 60 * 1000;

/// A period (leader times, widened by [`SENSITIVITY_MARGIN_MS`]) during which a camera was
/// marked sensitive. Footage recorded in it needs a grant for as long as it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitivePeriod {
    pub from_ms: i64,
    /// `None` while the camera is still sensitive.
    pub to_ms: Option<i64>,
}

impl SensitivePeriod {
    /// True if footage between `from_ms` and `to_ms` overlaps this period.
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.from_ms < to_ms && self.to_ms.is_none_or(|t| from_ms < t)
    }
}

/// One committed segment: where it is, what it hashes to, who holds it.
/// Kept small (about 100 bytes encoded); the catalog holds millions of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub camera: String,
    /// Wall-clock time of the segment's first frame, ms since the epoch (UTC).
    pub start_ms: i64,
    /// Time of the first frame of the next segment (exclusive end).
    pub end_ms: i64,
    /// Plaintext MPEG-TS size.
    pub bytes: u64,
    /// Sealed (age) size on disk.
    pub blob_bytes: u64,
    /// BLAKE3 of the plaintext: the blob's address and the playback check.
    pub content_hash: Hash,
    /// BLAKE3 of the ciphertext: lets any node check a blob without keys.
    pub blob_hash: Hash,
    pub codec: Codec,
    /// Nodes holding a durable copy.
    pub replicas: Vec<NodeId>,
}

/// A person who can call the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The case an investigator may read; `None` for every other role.
    pub case: Option<String>,
    /// Disabled users are refused everywhere at once (departing staff).
    pub disabled: bool,
    /// Sensitive cameras this user may view.
    pub grants: Vec<String>,
    pub created_ms: i64,
}

/// A bearer token, stored under the BLAKE3 of its secret; the secret itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public id (first 12 hex digits of the hash) for listing and revoking.
    pub id: String,
    pub user: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub revoked: bool,
    /// Who issued it: `init` (founding), the user themselves (renewal), or
    /// `ADMIN, approved by APPROVER` (through the change queue).
    pub issued_by: String,
}

/// A cluster member as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    /// Site the node stands in; replicas go to other campuses first.
    pub campus: String,
    /// `host:port` other nodes and clients reach it on.
    pub addr: String,
    pub joined_ms: i64,
    /// Retired nodes have left the Raft group; their ids are never reused.
    pub retired: bool,
}

/// A single-use join token, stored under the BLAKE3 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    pub created_by: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// The node that used it; a used token is refused.
    pub used_by: Option<NodeId>,
}

/// Where an export request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportStatus {
    Requested,
    Approved,
    Rejected,
    /// The package was built, signed and archived.
    Done,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Requested => "requested",
            ExportStatus::Approved => "approved",
            ExportStatus::Rejected => "rejected",
            ExportStatus::Done => "done",
        }
    }
}

/// How long an approval stays valid for running the export.
pub const APPROVAL_VALID_MS: i64 = 7 * 86_400_000;

/// An evidence export: the request, the second person's decision and, once run, the
/// signed manifest of the package (the archived copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// `E-000001`, assigned when the request is committed.
    pub id: String,
    pub case_id: String,
    pub organisation: String,
    pub letter: String,
    pub purpose: String,
    pub requester: String,
    pub requested_ms: i64,
    /// (camera, from, to) ranges.
    pub ranges: Vec<(String, i64, i64)>,
    pub status: ExportStatus,
    pub decided_by: Option<String>,
    pub decided_ms: Option<i64>,
    pub reason: String,
    /// The signed manifest (`manifest.json` bytes as text) and its signature (hex).
    pub manifest: Option<String>,
    pub signature: Option<String>,
    pub merkle_root: Option<String>,
    /// The hold that keeps the archived copy's footage.
    pub hold_id: Option<String>,
    pub completed_ms: Option<i64>,
}

impl ExportRecord {
    /// A new request, before the state machine gives it an id and a time.
    pub fn request(
        (case_id, organisation, letter): (String, String, String),
        purpose: String,
        requester: String,
        ranges: Vec<(String, i64, i64)>,
    ) -> ExportRecord {
        ExportRecord {
            id: String::new(),
            case_id,
            organisation,
            letter,
            purpose,
            requester,
            requested_ms: 0,
            ranges,
            status: ExportStatus::Requested,
            decided_by: None,
            decided_ms: None,
            reason: String::new(),
            manifest: None,
            signature: None,
            merkle_root: None,
            hold_id: None,
            completed_ms: None,
        }
    }
}

/// What a redacted export asked for and what its approver decided (`CF_REDACTIONS`, by
/// export id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRedaction {
    /// Boxes for this request only, by camera, besides the cameras' own zones.
    pub extra: Vec<(String, crate::zones::Zone)>,
    /// Whether the package carries the originals too: the approver's decision (`None`
    /// until decided; withheld unless the approver includes them).
    pub include_original: Option<bool>,
}

/// A user's console password: an argon2id PHC string (salt and parameters included), when
/// it was set, and the id of the token that enrolled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub phc: String,
    pub set_ms: i64,
    pub enrolled_with: String,
}

/// A small grayscale still of what a camera should show (`crate::picture`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureStill {
    /// `picture::THUMB_WIDTH`×`picture::THUMB_HEIGHT` luma, row by row.
    pub thumb: Vec<u8>,
    /// Its frame's variance of the Laplacian, in thousandths (an integer, so every
    /// replica stores the same bytes).
    pub laplacian_var_milli: u64,
    /// When the recorder took it (its clock).
    pub taken_ms: i64,
}

/// Leadership's signature on the duty log of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutySignoff {
    /// Assigned by the state machine.
    pub seq: u64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub user: String,
    /// Assigned by the state machine.
    pub time_ms: i64,
    pub note: String,
}

/// What a registered fault is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultSubject {
    Camera(String),
    Node(NodeId),
}

impl std::fmt::Display for FaultSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultSubject::Camera(c) => write!(f, "camera {c}"),
            FaultSubject::Node(n) => write!(f, "node {n}"),
        }
    }
}

/// One entry of the fault register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Assigned by the state machine.
    pub id: u64,
    pub subject: FaultSubject,
    pub reported_by: String,
    /// Assigned by the state machine: the leader time of the report.
    pub reported_ms: i64,
    pub note: String,
    pub resolved_by: Option<String>,
    pub resolved_ms: Option<i64>,
    /// What was done.
    pub resolution: String,
}

/// A receiver's acceptance of a shift handover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverAcceptance {
    pub user: String,
    pub time_ms: i64,
    pub note: String,
}

/// A catalogued segment whose footage is gone for good (its blob never reached the
/// bucket before a disaster, or the bucket's copy was damaged): kept beside the segment
/// record (`lost` column family), so search shows a gap with the reason and fetch serves
/// the rest of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostSegment {
    pub end_ms: i64,
    pub reason: String,
    /// When it was found lost (the restore's time).
    pub since_ms: i64,
}

/// A segment recorded while its recorder's clock was skewed, and by how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentClock {
    pub camera: String,
    pub start_ms: i64,
    /// The recorder's clock minus the cluster's median clock when it recorded (ms).
    pub offset_ms: i64,
    /// Who measured it: `leader` (the leader's pings) or `recorder` (its own pings).
    pub measured_by: String,
}

/// How long a change waits for a decision before it lapses.
pub const CHANGE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeState {
    Pending,
    Approved,
    Rejected,
}

/// A change to a root of trust, from its request to its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Assigned when the request commits.
    pub id: u64,
    pub requested_by: String,
    pub requested_ms: i64,
    /// The action it performs (`user-add`, `policy-set`, …), the one its audit entries
    /// name (stored as that name), and what it changes.
    pub action: AuditAction,
    pub detail: String,
    /// Why it needs a second person.
    pub why: String,
    /// The command applied when it is accepted.
    pub effect: Command,
    /// The requester's audit event for the effect, appended when it takes effect.
    pub effect_audit: AuditEvent,
    pub state: ChangeState,
    pub decided_by: Option<String>,
    pub decided_ms: Option<i64>,
    /// The approver's note, or the reason for a rejection.
    pub note: String,
}

impl ChangeRecord {
    /// When a pending change lapses.
    pub fn expires_ms(&self) -> i64 {
        self.requested_ms.saturating_add(CHANGE_TTL_MS)
    }

    /// `pending`, `approved`, `rejected` or `expired` (a pending change past its time).
    pub fn state_at(&self, now_ms: i64) -> &'static str {
        match self.state {
            ChangeState::Pending if now_ms >= self.expires_ms() => "expired",
            ChangeState::Pending => "pending",
            ChangeState::Approved => "approved",
            ChangeState::Rejected => "rejected",
        }
    }
}

/// One alarm raised or cleared by the leader's evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmChange {
    pub raise: bool,
    /// `camera-down`, `node-down`, `disk-low`, `under-replicated`, `backup-lag`, …;
    /// stored as its name.
    pub kind: AlarmKind,
    /// What it is about: a camera id, `node 3`, `cluster`, `bucket`.
    pub subject: String,
    /// What was seen, in words (only kept when raising).
    pub detail: String,
}

/// An alarm, open or cleared, with who acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmRecord {
    pub id: u64,
    /// Stored as its name.
    pub kind: AlarmKind,
    pub subject: String,
    pub detail: String,
    /// Leader time of the evaluation that raised it.
    pub raised_ms: i64,
    /// Leader time of the evaluation that saw the condition gone.
    pub cleared_ms: Option<i64>,
    pub acks: Vec<AlarmAck>,
}

/// An operator's acknowledgement of an alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmAck {
    pub user: String,
    pub time_ms: i64,
    pub note: String,
}

/// What kind of duty record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DutyKind {
    /// A check of every camera and node by the person on duty.
    Patrol,
    /// A written shift handover from one person to another.
    Handover,
}

impl DutyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DutyKind::Patrol => "patrol",
            DutyKind::Handover => "handover",
        }
    }
}

/// A patrol or a shift handover, kept for the duty log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyRecord {
    /// Assigned by the state machine.
    pub seq: u64,
    pub kind: DutyKind,
    /// Who patrolled, or who handed over.
    pub user: String,
    /// Assigned by the state machine: the leader time of the command.
    pub time_ms: i64,
    /// Who took over (handovers only).
    pub to: String,
    pub notes: String,
    /// What a patrol found, one line per camera or node checked.
    pub findings: Vec<String>,
    /// How many of the findings are problems.
    pub problems: u32,
}

/// A pack object the backup store confirmed: a run of one camera's sealed blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPack {
    /// BLAKE3 of the whole object: its name in the bucket.
    pub hash: Hash,
    pub bytes: u64,
    pub members: Vec<PackMember>,
}

/// Where one segment's sealed blob sits inside a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackMember {
    pub camera: String,
    pub start_ms: i64,
    pub offset: u64,
    pub len: u64,
}

/// A pack in the bucket that still holds live footage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    pub bytes: u64,
    /// Members when stored.
    pub members: u32,
    /// Members still in the catalog; the pack is trashed when this reaches zero.
    pub live: u32,
    /// Leader time of the `MarkBackedUp` that recorded it.
    pub stored_ms: i64,
}

/// Where a backed-up segment's sealed blob is in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupLocation {
    pub pack: Hash,
    pub offset: u64,
    pub len: u64,
}

/// Proof that a segment was deleted by the retention engine, kept forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionReceipt {
    pub seq: u64,
    pub camera: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub bytes: u64,
    pub content_hash: Hash,
    pub blob_hash: Hash,
    pub min_days: u32,
    pub max_days: u32,
    /// Leader time of the deletion.
    pub deleted_ms: i64,
}

openraft::declare_raft_types!(
    /// Custos's Raft type configuration.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = tokio::fs::File,
);

pub use super::command::{Command, RejectKind, Request, Response};
pub use super::schema::{decode, encode, FORMAT_CURRENT, FORMAT_V1, FORMAT_V2};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_periods_overlap_half_open_ranges() {
        let closed = SensitivePeriod { from_ms: 1_000, to_ms: Some(2_000) };
        assert!(closed.overlaps(1_500, 1_600));
        assert!(closed.overlaps(0, 1_001));
        assert!(closed.overlaps(1_999, 5_000));
        assert!(!closed.overlaps(0, 1_000), "a range ending where the period starts is outside it");
        assert!(!closed.overlaps(2_000, 3_000), "a range starting where the period ends is outside it");
        let open = SensitivePeriod { from_ms: 1_000, to_ms: None };
        assert!(open.overlaps(i64::MAX - 1, i64::MAX));
        assert!(!open.overlaps(0, 999));
    }

    /// A change record as it was stored before its action became an enum.
    #[derive(Serialize)]
    struct PlainChange {
        id: u64,
        requested_by: String,
        requested_ms: i64,
        action: String,
        detail: String,
        why: String,
        effect: Command,
        effect_audit: AuditEvent,
        state: ChangeState,
        decided_by: Option<String>,
        decided_ms: Option<i64>,
        note: String,
    }

    #[test]
    fn a_change_stores_its_action_as_the_name_it_always_had() {
        for action in [AuditAction::UserAdd, AuditAction::PolicySet, AuditAction::Other("camera-rename".into())] {
            let rec = ChangeRecord {
                id: 4,
                requested_by: "ann".into(),
                requested_ms: 1_000,
                action: action.clone(),
                detail: "user bob role=security".into(),
                why: "a security user may view footage".into(),
                effect: Command::DisableUser { name: "bob".into() },
                effect_audit: AuditEvent { user: "ann".into(), action: action.clone(), ..Default::default() },
                state: ChangeState::Pending,
                decided_by: None,
                decided_ms: None,
                note: String::new(),
            };
            let plain = PlainChange {
                id: 4,
                requested_by: "ann".into(),
                requested_ms: 1_000,
                action: action.to_string(),
                detail: rec.detail.clone(),
                why: rec.why.clone(),
                effect: rec.effect.clone(),
                effect_audit: rec.effect_audit.clone(),
                state: ChangeState::Pending,
                decided_by: None,
                decided_ms: None,
                note: String::new(),
            };
            let bytes = postcard::to_allocvec(&rec).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap(), "{action}");
            assert_eq!(decode::<ChangeRecord>(&encode(&rec)).unwrap(), rec);
        }
    }

    /// An alarm record as it was stored before its kind became an enum.
    #[derive(Serialize)]
    struct PlainAlarm {
        id: u64,
        kind: String,
        subject: String,
        detail: String,
        raised_ms: i64,
        cleared_ms: Option<i64>,
        acks: Vec<AlarmAck>,
    }

    #[test]
    fn alarms_store_their_kind_as_the_name_it_always_had() {
        let kinds = AlarmKind::ALL.iter().cloned().chain([AlarmKind::Other("roof-leak".into())]);
        for kind in kinds {
            let rec = AlarmRecord {
                id: 9,
                kind: kind.clone(),
                subject: "node 2".into(),
                detail: "it is not answering".into(),
                raised_ms: 5,
                cleared_ms: Some(8),
                acks: vec![AlarmAck { user: "ann".into(), time_ms: 6, note: "on it".into() }],
            };
            let plain = PlainAlarm {
                id: 9,
                kind: kind.to_string(),
                subject: rec.subject.clone(),
                detail: rec.detail.clone(),
                raised_ms: 5,
                cleared_ms: Some(8),
                acks: rec.acks.clone(),
            };
            let bytes = postcard::to_allocvec(&rec).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap(), "{kind}");
            assert_eq!(postcard::from_bytes::<AlarmRecord>(&bytes).unwrap(), rec);

            let change = AlarmChange { raise: true, kind: kind.clone(), subject: "x".into(), detail: "y".into() };
            let plain = (true, kind.to_string(), "x", "y");
            assert_eq!(postcard::to_allocvec(&change).unwrap(), postcard::to_allocvec(&plain).unwrap(), "{kind}");
            assert_eq!(AlarmKind::from(kind.as_str()), kind);
        }
    }

    #[test]
    fn segment_record_is_small_and_round_trips() {
        let r = SegmentRecord {
            camera: "ward-3-corridor".into(),
            start_ms: 1_790_000_000_000,
            end_ms: 1_790_000_004_000,
            bytes: 2_000_000,
            blob_bytes: 2_000_700,
            content_hash: [7; 32],
            blob_hash: [9; 32],
            codec: Codec::H264,
            replicas: vec![1, 2],
        };
        let b = encode(&r);
        assert!(b.len() <= 200, "segment record is {} bytes", b.len());
        assert_eq!(decode::<SegmentRecord>(&b).unwrap(), r);
        let mut bad = b.clone();
        bad[0] = 9;
        assert!(decode::<SegmentRecord>(&bad).unwrap_err().contains("version 9"));
    }
}

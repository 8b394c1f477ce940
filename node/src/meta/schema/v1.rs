//! Format 1, frozen: the shapes format 2 changed, as the previous release wrote them, and
//! the step from each to format 2 (`v1_to_v2`).
//!
//! Only what changed is here: a token record (no issuer), an audit event (no token), the
//! command, request and log entry that carry them, and the backup snapshot (unsigned).
//! Everything they contain that did not change (cameras, users, holds, …) is the current
//! type. Never edit these types: they describe bytes already on disks.
//!
//! Format 2 fields that format 1 did not have become empty strings, which the code reads
//! as "not recorded" (a token whose issuer is unknown, an audit entry without a token).

use openraft::{BasicNode, Entry, EntryPayload};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::meta::types::Hash;
use crate::meta::types::{
    AlarmChange, Camera, Command, DutyRecord, ExportRecord, JoinTokenRecord, NodeId, Request, Response, SegmentRecord,
    StoredPack, TokenRecord, TypeConfig, User,
};

/// Encodes `v` as the previous release did (format 1). For tests that build an old catalog:
/// nothing in the node writes format 1.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![super::FORMAT_V1];
    out.extend(postcard::to_stdvec(v).expect("postcard encoding into a Vec"));
    out
}

/// A bearer token record in format 1: who issued it was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecordV1 {
    pub id: String,
    pub user: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub revoked: bool,
}

impl TokenRecordV1 {
    /// The issuer is unknown: empty.
    pub fn v1_to_v2(self) -> TokenRecord {
        let TokenRecordV1 { id, user, created_ms, expires_ms, revoked } = self;
        TokenRecord { id, user, created_ms, expires_ms, revoked, issued_by: String::new() }
    }
}

/// An audit event in format 1 (the node's copy of `custos_evidence::AuditEvent` as the
/// previous release had it): the caller's token was not recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventV1 {
    pub user: String,
    pub role: String,
    pub action: String,
    pub outcome: String,
    pub reason: String,
    pub purpose: String,
    pub cameras: Vec<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub client: String,
    pub detail: String,
}

impl AuditEventV1 {
    /// No token recorded: both token fields empty. Such an event seals to the same audit
    /// body format 1 sealed (`custos_evidence::seal_entry` leaves empty token fields out),
    /// so a replica that applies an old entry after upgrading holds the same chain as one
    /// that applied it before.
    pub fn v1_to_v2(self) -> AuditEvent {
        let AuditEventV1 { user, role, action, outcome, reason, purpose, cameras, from_ms, to_ms, client, detail } =
            self;
        AuditEvent {
            user,
            role,
            action: action.into(),
            outcome: outcome.into(),
            reason,
            purpose,
            cameras,
            from_ms,
            to_ms,
            client,
            detail,
            token_id: String::new(),
            token_issued_by: String::new(),
        }
    }
}

/// The commands of format 1, in their order (postcard numbers variants by position).
/// `CreateUser` and `IssueToken` carry format-1 token records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandV1 {
    AddCamera(Camera),
    RemoveCamera {
        id: String,
    },
    CommitSegments(Vec<SegmentRecord>),
    CreateUser {
        user: User,
        token_hash: Hash,
        token: TokenRecordV1,
    },
    DisableUser {
        name: String,
    },
    IssueToken {
        token_hash: Hash,
        token: TokenRecordV1,
    },
    RevokeToken {
        id: String,
    },
    GrantCamera {
        user: String,
        camera: String,
        grant: bool,
    },
    SetSensitive {
        camera: String,
        sensitive: bool,
    },
    SetPolicy {
        camera: Option<String>,
        policy: crate::retention::Policy,
    },
    PlaceHold(crate::retention::Hold),
    ApproveHoldRelease {
        id: String,
        user: String,
    },
    ExpireSegments {
        at_ms: i64,
        segments: Vec<(String, i64)>,
    },
    Audit,
    CreateJoinToken {
        token_hash: Hash,
        token: JoinTokenRecord,
    },
    RegisterNode {
        campus: String,
        addr: String,
        token_hash: Option<Hash>,
        founder: Option<NodeId>,
    },
    RetireNode {
        id: NodeId,
    },
    AssignCamera {
        camera: String,
        recorder: NodeId,
    },
    AddReplicas(Vec<(String, i64, NodeId)>),
    RequestExport(ExportRecord),
    DecideExport {
        id: String,
        user: String,
        approve: bool,
        reason: String,
    },
    CompleteExport {
        id: String,
        manifest: String,
        signature: String,
        merkle_root: String,
        hold: crate::retention::Hold,
    },
    MarkBackedUp(Vec<StoredPack>),
    Alarms(Vec<AlarmChange>),
    AckAlarm {
        id: u64,
        user: String,
        note: String,
    },
    RecordDuty(DutyRecord),
    SeedCamera(Camera),
    PinNodeKey {
        id: NodeId,
        key_hash: Hash,
    },
}

impl CommandV1 {
    /// The same command; token records get an unknown issuer.
    pub fn v1_to_v2(self) -> Command {
        use CommandV1 as V1;
        match self {
            V1::AddCamera(c) => Command::AddCamera(c),
            V1::RemoveCamera { id } => Command::RemoveCamera { id },
            V1::CommitSegments(s) => Command::CommitSegments(s),
            V1::CreateUser { user, token_hash, token } => {
                Command::CreateUser { user, token_hash, token: token.v1_to_v2() }
            }
            V1::DisableUser { name } => Command::DisableUser { name },
            V1::IssueToken { token_hash, token } => Command::IssueToken { token_hash, token: token.v1_to_v2() },
            V1::RevokeToken { id } => Command::RevokeToken { id },
            V1::GrantCamera { user, camera, grant } => Command::GrantCamera { user, camera, grant },
            V1::SetSensitive { camera, sensitive } => Command::SetSensitive { camera, sensitive },
            V1::SetPolicy { camera, policy } => Command::SetPolicy { camera, policy },
            V1::PlaceHold(h) => Command::PlaceHold(h),
            V1::ApproveHoldRelease { id, user } => Command::ApproveHoldRelease { id, user },
            V1::ExpireSegments { at_ms, segments } => Command::ExpireSegments { at_ms, segments },
            V1::Audit => Command::Audit,
            V1::CreateJoinToken { token_hash, token } => Command::CreateJoinToken { token_hash, token },
            V1::RegisterNode { campus, addr, token_hash, founder } => {
                Command::RegisterNode { campus, addr, token_hash, founder }
            }
            V1::RetireNode { id } => Command::RetireNode { id },
            V1::AssignCamera { camera, recorder } => Command::AssignCamera { camera, recorder },
            V1::AddReplicas(r) => Command::AddReplicas(r),
            V1::RequestExport(e) => Command::RequestExport(e),
            V1::DecideExport { id, user, approve, reason } => Command::DecideExport { id, user, approve, reason },
            V1::CompleteExport { id, manifest, signature, merkle_root, hold } => {
                Command::CompleteExport { id, manifest, signature, merkle_root, hold }
            }
            V1::MarkBackedUp(p) => Command::MarkBackedUp(p),
            V1::Alarms(a) => Command::Alarms(a),
            V1::AckAlarm { id, user, note } => Command::AckAlarm { id, user, note },
            V1::RecordDuty(d) => Command::RecordDuty(d),
            V1::SeedCamera(c) => Command::SeedCamera(c),
            V1::PinNodeKey { id, key_hash } => Command::PinNodeKey { id, key_hash },
        }
    }
}

/// A Raft entry's payload in format 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestV1 {
    pub time_ms: i64,
    pub command: CommandV1,
    pub audit: Option<AuditEventV1>,
}

impl RequestV1 {
    pub fn v1_to_v2(self) -> Request {
        Request {
            time_ms: self.time_ms,
            command: self.command.v1_to_v2(),
            audit: self.audit.map(AuditEventV1::v1_to_v2),
        }
    }
}

openraft::declare_raft_types!(
    /// The Raft types of format 1: log entries carry [`RequestV1`].
    pub TypeConfigV1:
        D = RequestV1,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = tokio::fs::File,
);

/// A Raft log entry in format 1.
pub type EntryV1 = Entry<TypeConfigV1>;

/// The same entry with its request upgraded.
pub fn entry_v1_to_v2(e: EntryV1) -> Entry<TypeConfig> {
    let payload = match e.payload {
        EntryPayload::Blank => EntryPayload::Blank,
        EntryPayload::Normal(r) => EntryPayload::Normal(r.v1_to_v2()),
        EntryPayload::Membership(m) => EntryPayload::Membership(m),
    };
    Entry { log_id: e.log_id, payload }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;
    use crate::access::Role;
    use crate::meta::schema::decode;

    fn token() -> TokenRecordV1 {
        TokenRecordV1 { id: "a1b2c3".into(), user: "ann".into(), created_ms: 5, expires_ms: 9, revoked: true }
    }

    fn event() -> AuditEventV1 {
        AuditEventV1 {
            user: "ann".into(),
            role: "admin".into(),
            action: "user-add".into(),
            outcome: "ok".into(),
            cameras: vec!["lobby".into()],
            from_ms: Some(1),
            detail: "role=security".into(),
            ..Default::default()
        }
    }

    fn user() -> User {
        User { name: "bob".into(), role: Role::Security, case: None, disabled: false, grants: vec![], created_ms: 3 }
    }

    #[test]
    fn a_format_1_token_reads_with_its_issuer_unknown() {
        let t: TokenRecord = decode(&encode(&token())).unwrap();
        assert_eq!(
            t,
            TokenRecord {
                id: "a1b2c3".into(),
                user: "ann".into(),
                created_ms: 5,
                expires_ms: 9,
                revoked: true,
                issued_by: String::new()
            }
        );
    }

    #[test]
    fn a_format_1_audit_event_reads_without_a_token() {
        let e: AuditEvent = decode(&encode(&event())).unwrap();
        assert_eq!((e.user.as_str(), e.detail.as_str(), e.from_ms), ("ann", "role=security", Some(1)));
        assert_eq!((e.action, e.outcome), (crate::audit::AuditAction::UserAdd, crate::audit::Outcome::Ok));
        assert_eq!((e.token_id.as_str(), e.token_issued_by.as_str()), ("", ""));
    }

    #[test]
    fn format_1_commands_keep_their_place_and_content() {
        let create = CommandV1::CreateUser { user: user(), token_hash: [4; 32], token: token() };
        match decode::<Command>(&encode(&create)).unwrap() {
            Command::CreateUser { user: u, token_hash, token: t } => {
                assert_eq!((u, token_hash, t.id.as_str(), t.issued_by.as_str()), (user(), [4; 32], "a1b2c3", ""));
            }
            other => panic!("{other:?}"),
        }
        let pin = CommandV1::PinNodeKey { id: 3, key_hash: [7; 32] };
        assert_eq!(decode::<Command>(&encode(&pin)).unwrap(), Command::PinNodeKey { id: 3, key_hash: [7; 32] });
        let issue = CommandV1::IssueToken { token_hash: [1; 32], token: token() };
        assert!(matches!(decode::<Command>(&encode(&issue)).unwrap(), Command::IssueToken { token_hash: [1, ..], .. }));
    }

    #[test]
    fn a_format_1_log_entry_reads_as_the_same_entry_upgraded() {
        let log_id = LogId::new(CommittedLeaderId::new(2, 1), 17);
        let req = RequestV1 { time_ms: 1_000, command: CommandV1::Audit, audit: Some(event()) };
        let old = EntryV1 { log_id, payload: EntryPayload::Normal(req.clone()) };
        let e: Entry<TypeConfig> = decode(&encode(&old)).unwrap();
        assert_eq!(e.log_id, log_id);
        let EntryPayload::Normal(r) = e.payload else { panic!("not a normal entry") };
        assert_eq!(r, req.v1_to_v2());
        assert_eq!(r.audit.unwrap().token_id, "");
        let blank: Entry<TypeConfig> = decode(&encode(&EntryV1 { log_id, payload: EntryPayload::Blank })).unwrap();
        assert!(matches!(blank.payload, EntryPayload::Blank));
    }

    #[test]
    fn format_2_bytes_are_not_taken_for_format_1() {
        // A format-2 token read as format 1 would silently drop its issuer; the byte says which.
        let t = TokenRecord { issued_by: "init".into(), ..token().v1_to_v2() };
        assert_eq!(decode::<TokenRecord>(&crate::meta::schema::encode(&t)).unwrap().issued_by, "init");
    }
}

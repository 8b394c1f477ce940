//! Schema versions: the format byte in front of every persisted record, how records written
//! in an older format are read, and which commands a cluster accepts at its version.
//!
//! Every record the node persists (Raft log entries, state-machine values, snapshot
//! metadata, pending segments, backup snapshots) is one format byte followed by positional
//! postcard. Postcard writes no field names, so a record reads back only through a type of
//! exactly the shape that wrote it: a format is a set of shapes, and changing any persisted
//! type makes a new format. A format change brings:
//!
//! - the old shapes of the types it changed, and of the types containing them, frozen in
//!   the module of the old format ([`v1`]), with one upgrade step each (`v1_to_v2`);
//! - an override of [`Record::from_v1`] for each changed type, reading the frozen shape and
//!   upgrading it. Every other type keeps the default, which says it did not change: its
//!   old bytes are read as the next format's.
//!
//! Adding format 3: add `FORMAT_V3` and make it [`FORMAT_CURRENT`]; add `from_v3` (the
//! current type's postcard) and turn `from_v2`'s body into `Self::from_v3(bytes)`; freeze
//! the format-2 shapes of what changes in `v2.rs`, override `from_v2` for those types, and
//! point older frozen modules at the frozen copies (a record from format 1 then climbs
//! `v1_to_v2`, then `v2_to_v3`). Format 1 types that reuse a current type assume it has not
//! changed since format 1; freezing that type means pointing them at the copy.
//!
//! Readers may meet an older format; writers always write the current one. The cluster
//! version (`Command::SetClusterVersion`, kept in the catalog) is the newest format every
//! voter decodes: the leader raises it once every voter reports a binary that decodes it,
//! and commands introduced in a newer format are refused until then ([`too_new`]), when
//! proposed and again when applied, so no replica applies one another would refuse.

pub mod v1;

use openraft::{BasicNode, Entry, LogId, SnapshotMeta, StoredMembership, Vote};
use serde::Serialize;

use super::types::{
    AlarmRecord, BackupLocation, Camera, ChangeRecord, Command, DeletionReceipt, DutyRecord, ExportRecord,
    JoinTokenRecord, NodeId, NodeRecord, PackRecord, Request, SegmentClock, SegmentRecord, SensitivePeriod,
    TokenRecord, TypeConfig, User,
};
use crate::audit::{AuditEvent, AuditRecord};
use crate::meta::types::Hash;

/// The format the previous release wrote: no token issuers, no audited token, no change
/// queue. Read through the frozen types in [`v1`].
pub const FORMAT_V1: u8 = 1;
/// Who issued each token, the token an audited caller used, the change queue, the founding
/// command, and the cluster version.
pub const FORMAT_V2: u8 = 2;
/// Privacy zones and redacted exports: commands appended to `Command` (older entries
/// read unchanged) and a column family of their own; no record changed shape.
pub const FORMAT_V3: u8 = 3;
/// Hot standby: commands appended to `Command` and the `standby` column family; no record
/// changed shape.
pub const FORMAT_V4: u8 = 4;
/// The format this binary writes, and the newest it reads (reported to the leader in pings).
pub const FORMAT_CURRENT: u8 = FORMAT_V4;

/// Encodes a value behind the current format byte.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_CURRENT];
    // postcard only fails on writer errors, which a Vec cannot produce.
    out.extend(postcard::to_stdvec(v).expect("postcard encoding into a Vec"));
    out
}

/// Decodes a record written by [`encode`] in this or any older format, upgraded to the
/// current type.
pub fn decode<T: Record>(b: &[u8]) -> Result<T, String> {
    match b.split_first() {
        Some((&FORMAT_V4, rest)) => T::from_v4(rest),
        Some((&FORMAT_V3, rest)) => T::from_v3(rest),
        Some((&FORMAT_V2, rest)) => T::from_v2(rest),
        Some((&FORMAT_V1, rest)) => T::from_v1(rest),
        Some((v, _)) => Err(format!("unknown format version {v}; this node is too old for its data")),
        None => Err("empty record".into()),
    }
}

/// Decodes a message from a peer (a Raft RPC, a forwarded write, its answer). Messages are
/// not kept, so there are no old ones to upgrade: a peer must speak this node's format.
pub fn decode_message<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    match b.split_first() {
        Some((&FORMAT_CURRENT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((v, _)) => Err(format!(
            "a message in format {v} where this node speaks format {FORMAT_CURRENT}: every node of a cluster must run \
             the same format"
        )),
        None => Err("empty message".into()),
    }
}

/// Reads one record's postcard bytes (after the format byte).
pub fn postcard<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    postcard::from_bytes(b).map_err(|e| e.to_string())
}

/// A persisted type, and how to read it from the bytes of each format.
pub trait Record: serde::de::DeserializeOwned {
    /// Reads what format 1 wrote. The default: the type did not change in format 2, so the
    /// bytes are format 2's.
    fn from_v1(bytes: &[u8]) -> Result<Self, String> {
        Self::from_v2(bytes)
    }

    /// Reads what format 2 wrote. The default: the type did not change in format 3 (format 3
    /// only appended enum variants), so the bytes are format 3's.
    fn from_v2(bytes: &[u8]) -> Result<Self, String> {
        Self::from_v3(bytes)
    }

    /// Reads what format 3 wrote. The default: format 4 only appended enum variants and a
    /// column family, so the bytes are format 4's.
    fn from_v3(bytes: &[u8]) -> Result<Self, String> {
        Self::from_v4(bytes)
    }

    /// Reads what format 4 (the current format) wrote.
    fn from_v4(bytes: &[u8]) -> Result<Self, String> {
        postcard(bytes)
    }
}

/// Types whose every format so far has the same shape.
macro_rules! unchanged {
    ($($t:ty),* $(,)?) => { $(impl Record for $t {})* };
}

unchanged!(
    u32,
    u64,
    i64,
    Hash,
    (u64, u64),
    (u64, Hash),
    Camera,
    SegmentRecord,
    Vec<SensitivePeriod>,
    User,
    NodeRecord,
    JoinTokenRecord,
    ExportRecord,
    AlarmRecord,
    DutyRecord,
    PackRecord,
    BackupLocation,
    DeletionReceipt,
    AuditRecord,
    crate::retention::Policy,
    crate::retention::Hold,
    custos_evidence::seal::SealFile,
    crate::meta::types::FaultRecord,
    crate::meta::types::HandoverAcceptance,
    crate::meta::types::DutySignoff,
    crate::meta::types::LostSegment,
    crate::shifts::ShiftDef,
    String,
    (u64, Hash, u64),
    (i64, i64, u64),
    SegmentClock,
    crate::meta::types::PictureStill,
    crate::meta::types::Credential,
    crate::meta::types::ExportRedaction,
    crate::meta::types::Standby,
    Vec<crate::zones::Zone>,
    Vote<NodeId>,
    LogId<NodeId>,
    Option<LogId<NodeId>>,
    StoredMembership<NodeId, BasicNode>,
    SnapshotMeta<NodeId, BasicNode>,
);

impl Record for TokenRecord {
    fn from_v1(bytes: &[u8]) -> Result<Self, String> {
        postcard::<v1::TokenRecordV1>(bytes).map(v1::TokenRecordV1::v1_to_v2)
    }
}

impl Record for AuditEvent {
    fn from_v1(bytes: &[u8]) -> Result<Self, String> {
        postcard::<v1::AuditEventV1>(bytes).map(v1::AuditEventV1::v1_to_v2)
    }
}

impl Record for Command {
    fn from_v1(bytes: &[u8]) -> Result<Self, String> {
        postcard::<v1::CommandV1>(bytes).map(v1::CommandV1::v1_to_v2)
    }
}

impl Record for Request {
    fn from_v1(bytes: &[u8]) -> Result<Self, String> {
        postcard::<v1::RequestV1>(bytes).map(v1::RequestV1::v1_to_v2)
    }
}

impl Record for Entry<TypeConfig> {
    fn from_v1(bytes: &[u8]) -> Result<Self, String> {
        postcard::<v1::EntryV1>(bytes).map(v1::entry_v1_to_v2)
    }
}

impl Record for ChangeRecord {
    fn from_v1(_: &[u8]) -> Result<Self, String> {
        Err("a change record in format 1, which had no change queue: the record is damaged".into())
    }
}

/// The format that introduced `command`, if newer than format 1, and the command's name.
/// `SetClusterVersion` is not listed: it is how a cluster reaches a format, proposed only
/// once every voter decodes it.
pub fn introduced_in(command: &Command) -> Option<(u32, &'static str)> {
    match command {
        Command::FoundCluster(_) => Some((FORMAT_V2.into(), "founding the cluster")),
        Command::RequestChange(_) => Some((FORMAT_V2.into(), "the change queue")),
        Command::DecideChange { .. } => Some((FORMAT_V2.into(), "the change queue")),
        Command::StoreSeal(_) => Some((FORMAT_V2.into(), "the daily seal")),
        Command::ReportFault(_) | Command::ResolveFault { .. } => Some((FORMAT_V2.into(), "the fault register")),
        Command::AcceptHandover { .. } => Some((FORMAT_V2.into(), "accepted handovers")),
        Command::DefineShift(_) => Some((FORMAT_V2.into(), "shifts")),
        Command::SignDuty(_) => Some((FORMAT_V2.into(), "duty sign-offs")),
        Command::ConfirmClock { .. } => Some((FORMAT_V2.into(), "clock-jump confirmation")),
        Command::MarkSegmentClocks(_) => Some((FORMAT_V2.into(), "clock flags on segments")),
        Command::SetPictureReference { .. } => Some((FORMAT_V2.into(), "picture reference stills")),
        Command::SetPassword { .. } | Command::ResetPassword { .. } => Some((FORMAT_V2.into(), "console passwords")),
        Command::SetPrivacyZones { .. } => Some((FORMAT_V3.into(), "privacy zones")),
        Command::RequestRedactedExport { .. } | Command::DecideRedactedExport { .. } => {
            Some((FORMAT_V3.into(), "redacted exports"))
        }
        Command::SetStandby { .. } | Command::AssignStandby { .. } | Command::TakeOver { .. } => {
            Some((FORMAT_V4.into(), "hot standby"))
        }
        _ => None,
    }
}

/// Why `command` is refused in a cluster at `cluster_version`, if it is: it was introduced
/// in a newer format, which some voter may not decode yet.
pub fn too_new(command: &Command, cluster_version: u32) -> Option<String> {
    let (needs, what) = introduced_in(command)?;
    (needs > cluster_version).then(|| {
        format!(
            "the cluster runs format {cluster_version} until every node is upgraded; {what} needs format {needs}, which \
             the leader adopts once every voter runs a binary that decodes it"
        )
    })
}

/// The cluster version to raise to, if any: the newest format every voter decodes
/// (`supported`, 0 for one that has not said), when it is above `current`.
pub fn raise_to(current: u32, supported: impl IntoIterator<Item = u32>) -> Option<u32> {
    let lowest = supported.into_iter().map(|f| f.max(FORMAT_V1.into())).min()?;
    (lowest > current).then_some(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_version_rises_to_what_every_voter_decodes_and_never_falls() {
        assert_eq!(raise_to(1, [2, 2, 2]), Some(2));
        assert_eq!(raise_to(1, [2, 0, 2]), None, "a voter that has not said counts as format 1");
        assert_eq!(raise_to(1, [3, 2]), Some(2));
        assert_eq!(raise_to(2, [2, 2]), None);
        assert_eq!(raise_to(2, [1, 2]), None, "never lowered");
        assert_eq!(raise_to(1, []), None);
    }

    #[test]
    fn commands_of_a_newer_format_are_refused_below_it() {
        let found = Command::FoundCluster(vec![]);
        let why = too_new(&found, 1).unwrap();
        assert!(why.starts_with("the cluster runs format 1 until every node is upgraded;"), "{why}");
        assert_eq!(too_new(&found, 2), None);
        assert_eq!(too_new(&Command::Audit, 1), None, "format 1 commands pass at every version");
        assert_eq!(too_new(&Command::SetClusterVersion(2), 1), None);
    }

    #[test]
    fn unknown_and_foreign_formats_are_refused_with_their_number() {
        assert!(decode::<u64>(&[9, 1]).unwrap_err().contains("version 9"));
        assert!(decode::<u64>(&[]).unwrap_err().contains("empty"));
        assert!(decode_message::<u64>(&[FORMAT_V1, 1]).unwrap_err().contains("format 1"));
        assert_eq!(decode_message::<u64>(&encode(&7u64)).unwrap(), 7);
    }
}

//! The audit log: every footage access, every denial and every administrative change,
//! hash-chained. The entry format and chain check live in `custos-evidence`, shared with
//! the client so `custos audit verify` recomputes the chain without trusting the node.
//! Entries are appended only by the Raft state machine (`meta::state`), which assigns
//! `seq` and `prev` deterministically.
//!
//! An entry's action and outcome are enums ([`AuditAction`], [`Outcome`]) stored as their
//! names, byte for byte the strings they replaced: the chain hashes those bytes.

use crate::access::Action;

pub use custos_evidence::{
    entry_hash, seal_entry, verify_chain, AuditAction, AuditBody, AuditEvent, AuditRecord, ChainBreak, Outcome,
    AUDIT_DOMAIN, GENESIS,
};

impl From<Action> for AuditAction {
    /// The audit name of an action a caller asks for: the name `Action::as_str` gives.
    fn from(a: Action) -> Self {
        match a {
            Action::ListCameras => AuditAction::ListCameras,
            Action::ViewStatus => AuditAction::ViewStatus,
            Action::SearchFootage => AuditAction::Search,
            Action::FetchFootage => AuditAction::Fetch,
            Action::ManageCameras => AuditAction::ManageCameras,
            Action::ManageUsers => AuditAction::ManageUsers,
            Action::ReadAudit => AuditAction::ReadAudit,
            Action::ViewPolicies => AuditAction::ViewPolicies,
            Action::ManagePolicies => AuditAction::PolicySet,
            Action::PlaceHold => AuditAction::HoldPlace,
            Action::ViewHolds => AuditAction::HoldList,
            Action::ApproveHoldRelease => AuditAction::HoldRelease,
            Action::ManageNodes => AuditAction::ManageNodes,
            Action::RequestExport => AuditAction::ExportRequest,
            Action::DecideExport => AuditAction::ExportDecide,
            Action::RunExport => AuditAction::ExportRun,
            Action::ViewExports => AuditAction::ExportList,
            Action::DownloadExport => AuditAction::ExportDownload,
            Action::AckAlarm => AuditAction::AlarmAck,
            Action::RecordDuty => AuditAction::DutyRecord,
            Action::ViewDuty => AuditAction::DutyList,
            Action::ComplianceReport => AuditAction::ReportCompliance,
            Action::ViewChanges => AuditAction::ChangeList,
            Action::DecideChange => AuditAction::ChangeDecide,
            Action::RenewToken => AuditAction::TokenRenew,
            Action::ReadSeals => AuditAction::SealRead,
            Action::ReportFault => AuditAction::FaultReport,
            Action::ManageShifts => AuditAction::ShiftDefine,
            Action::SignDuty => AuditAction::DutySign,
            Action::ViewFootage => AuditAction::View,
            Action::ReviewExport => AuditAction::ExportReview,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// `AuditEvent` as it was before its action and outcome became enums: the same fields
    /// in the same order, all strings.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct PlainEvent {
        user: String,
        role: String,
        action: String,
        outcome: String,
        reason: String,
        purpose: String,
        cameras: Vec<String>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        client: String,
        detail: String,
        #[serde(default)]
        token_id: String,
        #[serde(default)]
        token_issued_by: String,
    }

    /// A chain entry's body as the string fields sealed it: the token fields are left out
    /// when both are empty.
    #[derive(Serialize)]
    struct PlainBody<'a> {
        seq: u64,
        time_ms: i64,
        user: &'a str,
        role: &'a str,
        action: &'a str,
        outcome: &'a str,
        reason: &'a str,
        purpose: &'a str,
        cameras: &'a [String],
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        client: &'a str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        token_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        token_issued_by: Option<&'a str>,
        prev: String,
    }

    impl<'a> PlainBody<'a> {
        fn new(seq: u64, time_ms: i64, e: &'a PlainEvent, prev: &[u8; 32]) -> Self {
            let token = !(e.token_id.is_empty() && e.token_issued_by.is_empty());
            PlainBody {
                seq,
                time_ms,
                user: &e.user,
                role: &e.role,
                action: &e.action,
                outcome: &e.outcome,
                reason: &e.reason,
                purpose: &e.purpose,
                cameras: &e.cameras,
                from_ms: e.from_ms,
                to_ms: e.to_ms,
                client: &e.client,
                detail: &e.detail,
                token_id: token.then_some(e.token_id.as_str()),
                token_issued_by: token.then_some(e.token_issued_by.as_str()),
                prev: hex::encode(prev),
            }
        }
    }

    /// One event built both ways, with `action` and `outcome` as given.
    fn both(action: &str, outcome: &str, token: bool) -> (AuditEvent, PlainEvent) {
        let (token_id, token_issued_by) = if token { ("a1b2c3".into(), "init".into()) } else { Default::default() };
        let plain = PlainEvent {
            user: "ann".into(),
            role: "security".into(),
            action: action.into(),
            outcome: outcome.into(),
            reason: "a reason".into(),
            purpose: "incident 42 in the lobby".into(),
            cameras: vec!["lobby".into(), "door".into()],
            from_ms: Some(1_764_000_000_000),
            to_ms: None,
            client: "127.0.0.1:5000".into(),
            detail: "détail ünïcode".into(),
            token_id,
            token_issued_by,
        };
        let event = AuditEvent {
            user: plain.user.clone(),
            role: plain.role.clone(),
            action: AuditAction::from(action),
            outcome: Outcome::from(outcome),
            reason: plain.reason.clone(),
            purpose: plain.purpose.clone(),
            cameras: plain.cameras.clone(),
            from_ms: plain.from_ms,
            to_ms: plain.to_ms,
            client: plain.client.clone(),
            detail: plain.detail.clone(),
            token_id: plain.token_id.clone(),
            token_issued_by: plain.token_issued_by.clone(),
        };
        (event, plain)
    }

    #[test]
    fn every_audit_name_round_trips() {
        for a in AuditAction::ALL {
            assert_eq!(&AuditAction::from(a.as_str()), a);
            assert!(!matches!(AuditAction::from(a.as_str()), AuditAction::Other(_)), "{a} parses to its variant");
            assert_eq!(a.as_str().parse::<AuditAction>().unwrap().as_str(), a.as_str());
            assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{}\"", a.as_str()));
        }
        for o in Outcome::ALL {
            assert_eq!(&Outcome::from(o.as_str()), o);
            assert!(!matches!(Outcome::from(o.as_str()), Outcome::Other(_)), "{o} parses to its variant");
        }
        let names: std::collections::BTreeSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len(), "no name is used twice");
    }

    #[test]
    fn a_caller_action_is_audited_under_its_access_name() {
        for a in Action::ALL {
            let audited = AuditAction::from(a);
            assert_eq!(audited.as_str(), a.as_str());
            assert!(!matches!(audited, AuditAction::Other(_)), "{} has a variant", a.as_str());
        }
    }

    /// The event is inside every Raft entry (postcard) and its JSON body is the chain's
    /// hashed bytes: both must be what the string fields gave.
    #[test]
    fn an_event_encodes_to_the_bytes_its_strings_gave() {
        let names = AuditAction::ALL.iter().map(|a| a.as_str()).chain(["", "no-such-action", "export-new"]);
        for (i, action) in names.enumerate() {
            let outcome = Outcome::ALL[i % Outcome::ALL.len()].as_str();
            for token in [false, true] {
                let (event, plain) = both(action, outcome, token);
                let bytes = postcard::to_allocvec(&event).unwrap();
                assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap(), "{action} {outcome}");
                assert_eq!(serde_json::to_vec(&event).unwrap(), serde_json::to_vec(&plain).unwrap());
                assert_eq!(postcard::from_bytes::<AuditEvent>(&bytes).unwrap(), event);
                assert_eq!(postcard::from_bytes::<PlainEvent>(&bytes).unwrap(), plain);

                // The sealed body and its chain hash, against the body the strings gave.
                let prev = [9u8; 32];
                let sealed = seal_entry(7, 1_764_000_000_123, event.clone(), &prev);
                let back: AuditBody = serde_json::from_slice(&sealed.body).unwrap();
                assert_eq!(back.event, event);
                let body = serde_json::to_vec(&PlainBody::new(7, 1_764_000_000_123, &plain, &prev)).unwrap();
                assert_eq!(String::from_utf8(sealed.body).unwrap(), String::from_utf8(body.clone()).unwrap());
                assert_eq!(sealed.hash, entry_hash(&body));
            }
        }
    }

    #[test]
    fn an_unknown_name_reads_as_other_and_writes_back_the_same_bytes() {
        let (_, plain) = both("camera-teleport", "postponed", false);
        let bytes = postcard::to_allocvec(&plain).unwrap();
        let event: AuditEvent = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(event.action, AuditAction::Other("camera-teleport".into()));
        assert_eq!(event.outcome, Outcome::Other("postponed".into()));
        assert_eq!(postcard::to_allocvec(&event).unwrap(), bytes);

        let sealed = seal_entry(1, 5, event, &GENESIS);
        let back: AuditBody = serde_json::from_slice(&sealed.body).unwrap();
        assert_eq!(back.event.action.as_str(), "camera-teleport");
        assert_eq!(seal_entry(1, 5, back.event, &GENESIS), sealed);
        assert!(verify_chain([(sealed.body.as_slice(), &sealed.hash)]).is_ok());
    }

    #[test]
    fn names_compare_print_and_default_as_the_strings_did() {
        assert_eq!(AuditAction::Other("fetch".into()), AuditAction::Fetch, "equal by name");
        assert_eq!(AuditAction::Fetch, "fetch");
        assert_eq!(Outcome::Denied, "denied".to_string());
        assert_eq!(format!("{:?}", AuditAction::HoldRelease), format!("{:?}", "hold-release"));
        assert_eq!(format!("[{:<8}]", Outcome::Ok), "[ok      ]");
        assert_eq!(AuditEvent::default().action.as_str(), "");
        assert_eq!(
            postcard::to_allocvec(&AuditEvent::default()).unwrap(),
            postcard::to_allocvec(&PlainEvent::default()).unwrap()
        );
        assert_eq!(String::from(AuditAction::SealRead), "seal-read");
    }
}

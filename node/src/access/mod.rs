//! Who may do what: roles, actions, and the one table that relates them.
//!
//! Every RPC names the [`Action`] it performs and asks [`authorize`]; nothing else grants
//! access. Footage of a sensitive camera additionally needs an explicit grant, operators
//! only see recent footage, and investigators only their own case's exports.

use serde::{Deserialize, Serialize};

/// How far back an operator may view footage.
pub const OPERATOR_RECENT_MS: i64 = 24 * 3600 * 1000;
/// Default lifetime of a new token.
pub const TOKEN_TTL_DEFAULT_MS: i64 = 90 * 24 * 3600 * 1000;
/// Longest lifetime a token may be given.
pub const TOKEN_TTL_MAX_MS: i64 = 366 * 24 * 3600 * 1000;
pub use custos_formats::fields::{validate_purpose, PURPOSE_MIN_CHARS};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Monitoring-room staff: recent footage, incident holds.
    Operator,
    /// Security office: search, view, holds, export requests.
    Security,
    /// Leadership: approves exports, hold releases and changes to roots of trust.
    Approver,
    /// Reads the audit log and reports; never footage.
    Auditor,
    /// IT: users, cameras, nodes, policies; never footage, never deletion. What touches a
    /// root of trust waits for an approver (the change queue).
    Admin,
    /// Police or court: downloads approved exports of their own case only.
    Investigator,
}

impl Role {
    /// Every role, for listings and tests.
    pub const ALL: [Role; 6] =
        [Role::Operator, Role::Security, Role::Approver, Role::Auditor, Role::Admin, Role::Investigator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Security => "security",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Investigator => "investigator",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("unknown role {s:?}; roles are operator, security, approver, auditor, admin, investigator")
        })
    }
}

/// Something a caller asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    ListCameras,
    ViewStatus,
    SearchFootage,
    FetchFootage,
    ManageCameras,
    ManageUsers,
    ReadAudit,
    ViewPolicies,
    ManagePolicies,
    PlaceHold,
    ViewHolds,
    ApproveHoldRelease,
    ManageNodes,
    RequestExport,
    DecideExport,
    RunExport,
    ViewExports,
    DownloadExport,
    AckAlarm,
    RecordDuty,
    ViewDuty,
    ComplianceReport,
    /// See the change queue: pending and decided changes to roots of trust.
    ViewChanges,
    /// Accept or reject a change (never one's own: the state machine checks).
    DecideChange,
    /// Renew one's own token with the current one.
    RenewToken,
    /// Read the daily seals.
    ReadSeals,
    /// Register a fault, or resolve one.
    ReportFault,
    /// Define the monitoring centre's shifts.
    ManageShifts,
    /// Sign off the duty log of a period.
    SignDuty,
    /// Play footage in the web console (no copy leaves the node but the frames shown).
    ViewFootage,
    /// Play the exact ranges of a pending export request, to decide it (approvers).
    ReviewExport,
}

impl Action {
    /// Every action, for the matrix test.
    pub const ALL: [Action; 31] = [
        Action::ListCameras,
        Action::ViewStatus,
        Action::SearchFootage,
        Action::FetchFootage,
        Action::ManageCameras,
        Action::ManageUsers,
        Action::ReadAudit,
        Action::ViewPolicies,
        Action::ManagePolicies,
        Action::PlaceHold,
        Action::ViewHolds,
        Action::ApproveHoldRelease,
        Action::ManageNodes,
        Action::RequestExport,
        Action::DecideExport,
        Action::RunExport,
        Action::ViewExports,
        Action::DownloadExport,
        Action::AckAlarm,
        Action::RecordDuty,
        Action::ViewDuty,
        Action::ComplianceReport,
        Action::ViewChanges,
        Action::DecideChange,
        Action::RenewToken,
        Action::ReadSeals,
        Action::ReportFault,
        Action::ManageShifts,
        Action::SignDuty,
        Action::ViewFootage,
        Action::ReviewExport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ListCameras => "list-cameras",
            Action::ViewStatus => "view-status",
            Action::SearchFootage => "search",
            Action::FetchFootage => "fetch",
            Action::ManageCameras => "manage-cameras",
            Action::ManageUsers => "manage-users",
            Action::ReadAudit => "read-audit",
            Action::ViewPolicies => "view-policies",
            Action::ManagePolicies => "policy-set",
            Action::PlaceHold => "hold-place",
            Action::ViewHolds => "hold-list",
            Action::ApproveHoldRelease => "hold-release",
            Action::ManageNodes => "manage-nodes",
            Action::RequestExport => "export-request",
            Action::DecideExport => "export-decide",
            Action::RunExport => "export-run",
            Action::ViewExports => "export-list",
            Action::DownloadExport => "export-download",
            Action::AckAlarm => "alarm-ack",
            Action::RecordDuty => "duty-record",
            Action::ViewDuty => "duty-list",
            Action::ComplianceReport => "report-compliance",
            Action::ViewChanges => "change-list",
            Action::DecideChange => "change-decide",
            Action::RenewToken => "token-renew",
            Action::ReadSeals => "seal-read",
            Action::ReportFault => "fault-report",
            Action::ManageShifts => "shift-define",
            Action::SignDuty => "duty-sign",
            Action::ViewFootage => "view",
            Action::ReviewExport => "export-review",
        }
    }

    /// True for actions that reveal footage (they need a purpose and are audited before
    /// anything is served).
    pub fn reads_footage(self) -> bool {
        matches!(self, Action::SearchFootage | Action::FetchFootage | Action::ViewFootage | Action::ReviewExport)
    }
}

/// The authorisation table: may `role` perform `action` at all?
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        ListCameras | ViewStatus | ViewPolicies => matches!(role, Operator | Security | Approver | Auditor | Admin),
        SearchFootage | FetchFootage | ViewFootage => matches!(role, Operator | Security),
        // Leadership sees exactly what it is asked to release, and nothing else: the
        // ranges of a pending export request (`web::review`).
        ReviewExport => matches!(role, Approver),
        ManageCameras | ManageUsers | ManagePolicies | ManageNodes => matches!(role, Admin),
        ReadAudit => matches!(role, Auditor),
        // Operators place incident holds; security places case holds.
        PlaceHold => matches!(role, Operator | Security),
        ViewHolds => matches!(role, Operator | Security | Approver | Auditor),
        // Two different people must approve a release (retention::hold).
        ApproveHoldRelease => matches!(role, Security | Approver),
        // Exports: security asks and runs, an approver decides (never the requester:
        // the state machine checks it), investigators fetch their own case's packages.
        RequestExport | RunExport => matches!(role, Security),
        DecideExport => matches!(role, Approver),
        ViewExports => matches!(role, Security | Approver | Auditor | Investigator),
        DownloadExport => matches!(role, Security | Investigator),
        // The monitoring centre acknowledges alarms, patrols and hands over shifts; IT
        // acknowledges the alarms it fixes.
        AckAlarm => matches!(role, Operator | Security | Admin),
        RecordDuty => matches!(role, Operator | Security),
        ViewDuty => matches!(role, Operator | Security | Approver | Auditor | Admin),
        // Whether the rules were kept: auditors, leadership and IT.
        ComplianceReport => matches!(role, Auditor | Approver | Admin),
        // Four eyes: administrators ask, approvers decide, auditors watch.
        ViewChanges => matches!(role, Admin | Approver | Auditor),
        DecideChange => matches!(role, Approver),
        RenewToken => true,
        // The signed daily statements: for whoever checks that the rules were kept.
        ReadSeals => matches!(role, Auditor | Approver | Admin),
        // The monitoring centre registers what it sees; IT registers and repairs.
        ReportFault => matches!(role, Operator | Security | Admin),
        // IT sets the shifts (through the change queue); leadership signs the duty log.
        ManageShifts => matches!(role, Admin),
        SignDuty => matches!(role, Approver),
    }
}

/// What a footage request touches, for the checks beyond the role table.
#[derive(Debug, Clone)]
pub struct FootageScope<'a> {
    pub camera: &'a str,
    pub sensitive: bool,
    pub from_ms: i64,
}

/// The caller as authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// Sensitive cameras this user may view.
    pub grants: Vec<String>,
    /// The one case an investigator belongs to.
    pub case: Option<String>,
}

/// Decides whether `who` may perform `action` (on `scope` for footage) at `now_ms`.
/// The error says why not, in words an operator can act on.
pub fn authorize(who: &Principal, action: Action, scope: Option<&FootageScope<'_>>, now_ms: i64) -> Result<(), String> {
    if !role_allows(who.role, action) {
        return Err(format!("role {} may not {}", who.role.as_str(), action.as_str()));
    }
    if let Some(s) = scope {
        if s.sensitive && !who.grants.iter().any(|g| g == s.camera) {
            return Err(format!(
                "camera {} is in a sensitive zone; viewing it needs an explicit grant (custos user grant {} --camera {})",
                s.camera, who.name, s.camera
            ));
        }
        if who.role == Role::Operator && s.from_ms < now_ms - OPERATOR_RECENT_MS {
            return Err("operators may view the last 24 hours only; ask security staff for older footage".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Principal {
        Principal { name: "u".into(), role, grants: vec!["theatre-1".into()], case: None }
    }

    #[test]
    fn footage_is_for_operators_and_security_only() {
        for role in Role::ALL {
            let ok = role_allows(role, Action::FetchFootage);
            assert_eq!(ok, matches!(role, Role::Operator | Role::Security), "{role:?}");
        }
        assert!(!role_allows(Role::Admin, Action::SearchFootage));
        assert!(!role_allows(Role::Auditor, Action::FetchFootage));
        assert!(role_allows(Role::Auditor, Action::ReadAudit));
        assert!(!role_allows(Role::Admin, Action::ReadAudit));
    }

    #[test]
    fn sensitive_cameras_need_a_grant_and_operators_see_recent_only() {
        let now = 1_000_000_000_000;
        let open = FootageScope { camera: "lobby", sensitive: false, from_ms: now - 1000 };
        let theatre = FootageScope { camera: "theatre-1", sensitive: true, from_ms: now - 1000 };
        let ward = FootageScope { camera: "ward-2", sensitive: true, from_ms: now - 1000 };
        let s = who(Role::Security);
        assert!(authorize(&s, Action::FetchFootage, Some(&open), now).is_ok());
        assert!(authorize(&s, Action::FetchFootage, Some(&theatre), now).is_ok());
        let e = authorize(&s, Action::FetchFootage, Some(&ward), now).unwrap_err();
        assert!(e.contains("grant"), "{e}");
        let old = FootageScope { camera: "lobby", sensitive: false, from_ms: now - 2 * OPERATOR_RECENT_MS };
        assert!(authorize(&who(Role::Operator), Action::FetchFootage, Some(&old), now)
            .unwrap_err()
            .contains("24 hours"));
        assert!(authorize(&s, Action::FetchFootage, Some(&old), now).is_ok());
    }

    #[test]
    fn purposes_must_say_something() {
        assert!(validate_purpose("incident 2026-113, fall in ward 3").is_ok());
        for bad in ["", "   ", "x", "testing", "aaaaaaaaaaaa", "asdf"] {
            assert!(validate_purpose(bad).is_err(), "{bad:?}");
        }
    }
}

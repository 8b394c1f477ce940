//! Stored vocabularies: enums whose values are stored as their names.
//!
//! A name inside the audit chain, a Raft entry or the catalog is part of the stored bytes,
//! and a chain entry's bytes are its hash. So every variant keeps the exact name it was
//! first written with, and each enum is serialised as that name alone, exactly as the
//! plain string it replaces: the bytes of an entry do not depend on whether it was built
//! from the enum or from a string. A name this release does not know (written by another
//! release, or no longer used) reads as `Other` and writes back unchanged, so old entries
//! still decode and the chain still verifies.
//!
//! [`stable_names!`](crate::stable_names) declares such an enum; the node uses it for its
//! own vocabularies too.

/// Declares an enum of stable names, each variant with the name it is stored as, plus
/// `Other(String)` for a name this release does not know.
///
/// The enum serialises as its name (`serialize_str`) and deserialises from any string, so
/// its bytes are those of the string it replaces, in JSON and in postcard alike. Equality,
/// order and hashing go by name, so `Other("x")` equals the variant named `x`. `Debug`
/// prints the name quoted, as a `String` field printed; `Display` prints the name. The
/// default is the empty name (`Other("")`), as the default `String` was.
#[macro_export]
macro_rules! stable_names {
    (
        $(#[$attr:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vattr:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone)]
        $vis enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A name this release does not know, kept exactly as it was read.
            Other(::std::string::String),
        }

        impl $name {
            /// Every named variant (`Other` aside), for tests and listings.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as stored.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(s) => s,
                }
            }
        }

        impl ::std::convert::From<&str> for $name {
            /// The variant with this name, or `Other` with it.
            fn from(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for $name {
            fn from(s: ::std::string::String) -> Self {
                match $name::from(s.as_str()) {
                    $name::Other(_) => $name::Other(s),
                    known => known,
                }
            }
        }

        impl ::std::convert::From<$name> for ::std::string::String {
            fn from(v: $name) -> Self {
                match v {
                    $name::Other(s) => s,
                    known => known.as_str().to_string(),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            /// Never fails: an unknown name is `Other`.
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                ::std::result::Result::Ok($name::from(s))
            }
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                $name::Other(::std::string::String::new())
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::std::cmp::PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl ::std::cmp::Eq for $name {}

        impl ::std::cmp::PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> ::std::option::Option<::std::cmp::Ordering> {
                ::std::option::Option::Some(self.cmp(other))
            }
        }

        impl ::std::cmp::Ord for $name {
            fn cmp(&self, other: &Self) -> ::std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl ::std::hash::Hash for $name {
            fn hash<H: ::std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl ::std::cmp::PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::cmp::PartialEq<::std::string::String> for $name {
            fn eq(&self, other: &::std::string::String) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                <::std::string::String as $crate::__private::serde::Deserialize>::deserialize(deserializer)
                    .map($name::from)
            }
        }
    };
}

stable_names! {
    /// What an audit entry records was done: its `action` name.
    ///
    /// The first group are the actions a caller asks for (the node's `access::Action`,
    /// under the same names), audited when allowed or denied; the rest are what the
    /// system and the console record of their own. A name is never renamed: it is inside
    /// the hash chain.
    pub enum AuditAction {
        ListCameras = "list-cameras",
        ViewStatus = "view-status",
        Search = "search",
        Fetch = "fetch",
        ManageCameras = "manage-cameras",
        ManageUsers = "manage-users",
        ReadAudit = "read-audit",
        ViewPolicies = "view-policies",
        PolicySet = "policy-set",
        HoldPlace = "hold-place",
        HoldList = "hold-list",
        HoldRelease = "hold-release",
        ManageNodes = "manage-nodes",
        ExportRequest = "export-request",
        ExportDecide = "export-decide",
        ExportRun = "export-run",
        ExportList = "export-list",
        ExportDownload = "export-download",
        AlarmAck = "alarm-ack",
        DutyRecord = "duty-record",
        DutyList = "duty-list",
        ReportCompliance = "report-compliance",
        ChangeList = "change-list",
        ChangeDecide = "change-decide",
        TokenRenew = "token-renew",
        SealRead = "seal-read",
        FaultReport = "fault-report",
        ShiftDefine = "shift-define",
        DutySign = "duty-sign",
        /// Footage played in the web console.
        View = "view",
        ExportReview = "export-review",

        /// The cluster was founded (`custos-node init`).
        Found = "found",
        /// The cluster's format was raised, once every voter decodes the new one.
        ClusterVersion = "cluster-version",
        /// The cluster was restored from a backup (`custos-node restore`).
        ClusterRestore = "cluster-restore",
        NodeJoin = "node-join",
        NodeRemove = "node-remove",
        JoinToken = "join-token",
        /// A camera moved to another recorder: the leader moved it, or its standby took it
        /// over.
        CameraFailover = "camera-failover",
        /// A node's clock, after a jump, accepted as right (by an approver, or because the
        /// backup endpoint's clock agrees).
        ClockConfirm = "clock-confirm",
        CameraAdd = "camera-add",
        CameraRemove = "camera-remove",
        CameraConfirm = "camera-confirm",
        CameraGrant = "camera-grant",
        CameraSensitive = "camera-sensitive",
        CameraPrivacyZones = "camera-privacy-zones",
        /// A camera marked for a hot standby, or unmarked.
        CameraStandby = "camera-standby",
        UserAdd = "user-add",
        UserDisable = "user-disable",
        TokenIssue = "token-issue",
        TokenRevoke = "token-revoke",
        PasswordReset = "password-reset",
        PasswordSet = "password-set",
        ConsoleSignIn = "console-sign-in",
        ConsoleSignOut = "console-sign-out",
        ConsoleEnrol = "console-enrol",
        /// Refused authentications not audited one by one, counted.
        AuthenticateSummary = "authenticate-summary",
        ChangeApprove = "change-approve",
        ChangeReject = "change-reject",
        Patrol = "patrol",
        ShiftHandover = "shift-handover",
        ShiftAccept = "shift-accept",
        FaultResolve = "fault-resolve",
        /// Expiry deleted footage past its retention.
        Expire = "expire",
        /// The daily seal was signed.
        Seal = "seal",
        /// The scrubber replaced a damaged copy (or failed to).
        ScrubRepair = "scrub-repair",
    }
}

stable_names! {
    /// How an audited action ended: its `outcome` name.
    pub enum Outcome {
        /// An administrative or system action took effect.
        Ok = "ok",
        /// The caller was authorised (reads, footage).
        Allowed = "allowed",
        Denied = "denied",
        /// No valid token or password was presented.
        Unauthenticated = "unauthenticated",
        /// The state machine refused the command.
        Rejected = "rejected",
        /// Queued for an approver.
        Pending = "pending",
        /// A system action did not succeed (a scrub repair without a good copy).
        Failed = "failed",
    }
}

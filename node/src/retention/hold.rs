//! Legal and incident holds (pure): what a hold covers and how it is released.
//!
//! A hold names a case, cameras and a time range whose end may be open ("from now on",
//! covering footage not yet recorded). Placing one is a single command. Releasing one
//! takes approvals from two different users, one of them an approver (leadership); until
//! then it protects everything it covers from expiry and from disk pressure.

use serde::{Deserialize, Serialize};

/// Distinct approvals a release needs.
pub const RELEASE_APPROVALS: usize = 2;
/// Most cameras one hold may name.
pub const HOLD_CAMERAS_MAX: usize = 256;

/// One hold as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// `H-000001`, assigned when the hold is committed.
    pub id: String,
    pub case_id: String,
    pub cameras: Vec<String>,
    pub from_ms: i64,
    /// `None`: open-ended, covers everything recorded from `from_ms` on.
    pub to_ms: Option<i64>,
    pub reason: String,
    pub placed_by: String,
    pub placed_ms: i64,
    /// Users who approved releasing it, with the time of each approval.
    pub release_approvals: Vec<(String, i64)>,
    /// When the second approval released it.
    pub released_ms: Option<i64>,
}

impl Hold {
    /// True while the hold protects footage.
    pub fn active(&self) -> bool {
        self.released_ms.is_none()
    }

    /// True if this (active) hold covers footage of `camera` over `[start_ms, end_ms)`.
    pub fn covers(&self, camera: &str, start_ms: i64, end_ms: i64) -> bool {
        self.active()
            && self.cameras.iter().any(|c| c == camera)
            && end_ms > self.from_ms
            && self.to_ms.is_none_or(|to| start_ms < to)
    }

    /// Records `user`'s approval to release at `now_ms`. `with_approver` says whether an
    /// approver is among the approvals with this one: the approval that would release the
    /// hold is refused without one. Returns how many distinct approvals it now has, or why
    /// the approval does not count.
    pub fn approve_release(&mut self, user: &str, now_ms: i64, with_approver: bool) -> Result<usize, String> {
        if !self.active() {
            return Err(format!("hold {} is already released", self.id));
        }
        if self.release_approvals.iter().any(|(u, _)| u == user) {
            return Err(format!(
                "{user} already approved releasing hold {}; a second, different person must approve",
                self.id
            ));
        }
        if self.release_approvals.len() + 1 >= RELEASE_APPROVALS && !with_approver {
            return Err(format!(
                "releasing hold {} needs an approver (leadership) among its two approvals; ask one to run \
                 `custos hold release {}`",
                self.id, self.id
            ));
        }
        self.release_approvals.push((user.to_string(), now_ms));
        if self.release_approvals.len() >= RELEASE_APPROVALS {
            self.released_ms = Some(now_ms);
        }
        Ok(self.release_approvals.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(to_ms: Option<i64>) -> Hold {
        Hold {
            id: "H-000001".into(),
            case_id: "2026-113".into(),
            cameras: vec!["ward-3".into()],
            from_ms: 1_000,
            to_ms,
            reason: "fall".into(),
            placed_by: "guard".into(),
            placed_ms: 1_000,
            release_approvals: vec![],
            released_ms: None,
        }
    }

    #[test]
    fn covers_overlaps_and_open_ends() {
        let h = hold(Some(5_000));
        assert!(h.covers("ward-3", 0, 1_001));
        assert!(h.covers("ward-3", 4_999, 9_000));
        assert!(!h.covers("ward-3", 0, 1_000), "ends exactly where the hold starts");
        assert!(!h.covers("ward-3", 5_000, 9_000));
        assert!(!h.covers("lobby", 2_000, 3_000));
        let open = hold(None);
        assert!(open.covers("ward-3", i64::MAX - 10, i64::MAX), "open-ended: covers the future");
    }

    #[test]
    fn release_needs_two_different_people() {
        let mut h = hold(None);
        assert_eq!(h.approve_release("ann", 10, false).unwrap(), 1);
        assert!(h.active(), "one approval is not enough");
        assert!(h.approve_release("ann", 11, true).unwrap_err().contains("different person"));
        assert!(h.active(), "the same person twice is not enough");
        assert!(h.approve_release("bob", 12, false).unwrap_err().contains("needs an approver"));
        assert!(h.active(), "two people without leadership are not enough");
        assert_eq!(h.approve_release("bob", 12, true).unwrap(), 2);
        assert!(!h.active());
        assert_eq!(h.released_ms, Some(12));
        assert!(!h.covers("ward-3", 2_000, 3_000), "a released hold protects nothing");
        assert!(h.approve_release("cem", 13, true).is_err());
    }
}

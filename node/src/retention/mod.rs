//! Retention rules (pure): how long footage must be kept and when it may go.
//!
//! The regulation (001, 第十二条) says footage is kept no less than 30 days. That floor is
//! a constant here, checked when a policy is set through the API and checked again when
//! the Raft command is applied, so neither a role, a config file nor a hand-made command
//! can lower it.

pub mod hold;

use serde::{Deserialize, Serialize};

pub use hold::Hold;

/// Days no footage may be deleted before, whatever anyone asks.
pub const MIN_DAYS_FLOOR: u32 = 30;
/// Longest retention a policy may ask for (ten years).
pub const MAX_DAYS_LIMIT: u32 = 3_650;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A retention policy: keep at least `min_days`, delete after `max_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub min_days: u32,
    pub max_days: u32,
}

impl Default for Policy {
    /// The floor itself: 30 days kept, then expired.
    fn default() -> Self {
        Policy { min_days: MIN_DAYS_FLOOR, max_days: MIN_DAYS_FLOOR }
    }
}

impl Policy {
    /// Checks a policy against the floor and the limits; the error names the rule.
    pub fn new(min_days: u32, max_days: u32) -> Result<Policy, String> {
        if min_days < MIN_DAYS_FLOOR {
            return Err(format!(
                "min_days {min_days} is below the floor of {MIN_DAYS_FLOOR} days: footage is kept no less than \
                 {MIN_DAYS_FLOOR} days and no role can lower that"
            ));
        }
        if max_days < min_days {
            return Err(format!(
                "max_days {max_days} is less than min_days {min_days}; footage cannot expire before it may"
            ));
        }
        if max_days > MAX_DAYS_LIMIT {
            return Err(format!("max_days {max_days} is more than {MAX_DAYS_LIMIT} days"));
        }
        Ok(Policy { min_days, max_days })
    }

    /// Re-checks a policy that came from storage or a command.
    pub fn validated(self) -> Result<Policy, String> {
        Policy::new(self.min_days, self.max_days)
    }

    /// Footage ending at or before this time (ms) is past `max_days` at `now_ms`.
    pub fn expiry_cutoff_ms(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.max_days) * DAY_MS
    }

    /// True if footage ending at `end_ms` is still inside `min_days` at `now_ms`, and so
    /// may not be deleted by anything.
    pub fn protects(&self, end_ms: i64, now_ms: i64) -> bool {
        end_ms > now_ms - i64::from(self.min_days) * DAY_MS
    }

    /// True if footage ending at `end_ms` may expire at `now_ms` (holds aside).
    pub fn expired(&self, end_ms: i64, now_ms: i64) -> bool {
        !self.protects(end_ms, now_ms) && end_ms <= self.expiry_cutoff_ms(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_cannot_be_lowered() {
        let e = Policy::new(29, 60).unwrap_err();
        assert!(e.contains("floor of 30"), "{e}");
        assert!(Policy::new(0, 0).is_err());
        assert!(Policy::new(30, 29).unwrap_err().contains("less than min_days"));
        assert!(Policy::new(30, MAX_DAYS_LIMIT + 1).is_err());
        assert_eq!(Policy::new(30, 90).unwrap(), Policy { min_days: 30, max_days: 90 });
        // A stored or proposed policy below the floor is refused on re-check too.
        assert!(Policy { min_days: 7, max_days: 7 }.validated().is_err());
    }

    #[test]
    fn footage_expires_after_max_days_and_never_inside_min_days() {
        let p = Policy::new(30, 90).unwrap();
        let now = 1_800_000_000_000;
        let end = now - 91 * DAY_MS;
        assert!(p.expired(end, now));
        assert!(!p.expired(now - 89 * DAY_MS, now), "inside max_days");
        assert!(p.protects(now - 29 * DAY_MS, now));
        assert!(!p.expired(now - 29 * DAY_MS, now));
        // Even a policy whose max equals the floor never expires footage inside 30 days.
        let d = Policy::default();
        assert!(!d.expired(now - 30 * DAY_MS + 1, now));
        assert!(d.expired(now - 30 * DAY_MS, now));
    }
}

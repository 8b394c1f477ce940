//! Shifts (pure): the monitoring centre's duty periods, defined by name and local times
//! of day (`custos shift define night --from 20:00 --to 08:00`), and their instances on
//! real days. The regulation asks at least four patrols per shift; the leader counts the
//! patrols of each shift that ended and raises `patrol-quota` for one short of them.
//!
//! Local time is a fixed offset from UTC (`[duty] time_zone = "+08:00"`): hospitals in
//! the regions this serves do not change clocks, and a fixed offset keeps every node's
//! answer the same without a time-zone database.

use serde::{Deserialize, Serialize};

/// `[duty]` in the node config (give every node the same: the leader evaluates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyConfig {
    /// The hospital's local time as a fixed offset from UTC (`+08:00`); shift times are in it.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Patrols every shift needs (the regulation's minimum is 4).
    #[serde(default = "default_patrols_per_shift")]
    pub patrols_per_shift: u32,
}

fn default_time_zone() -> String {
    "+00:00".into()
}
fn default_patrols_per_shift() -> u32 {
    4
}

impl Default for DutyConfig {
    fn default() -> Self {
        DutyConfig { time_zone: default_time_zone(), patrols_per_shift: default_patrols_per_shift() }
    }
}

impl DutyConfig {
    /// Minutes east of UTC (validated at config load; UTC if it somehow is not valid).
    pub fn offset_min(&self) -> i32 {
        parse_offset(&self.time_zone).unwrap_or(0)
    }
}

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A shift as defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftDef {
    pub name: String,
    /// Local minutes after midnight when it starts and ends; an end at or before the
    /// start means it ends the next day.
    pub from_min: u16,
    pub to_min: u16,
    pub defined_by: String,
    pub defined_ms: i64,
}

/// One shift on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftInstance {
    pub name: String,
    /// The local day it starts on (`2026-12-02`).
    pub day: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// `"08:00"` as minutes after midnight.
pub fn parse_hhmm(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day as HH:MM (00:00 to 23:59)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || s.trim().len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Minutes after midnight as `"HH:MM"`.
pub fn fmt_hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// `"+08:00"`, `"-03:30"` or `"Z"` as minutes east of UTC.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if t == "Z" || t == "UTC" {
        return Ok(0);
    }
    let bad = || format!("time zone {s:?} is not a UTC offset such as +08:00 or -03:30");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let m = parse_hhmm(rest).map_err(|_| bad())?;
    if m > 14 * 60 {
        return Err(bad());
    }
    Ok(sign * i32::from(m))
}

/// The local day (`YYYY-MM-DD`) of local midnight `local_day_ms`.
fn day_name(local_day_ms: i64) -> String {
    custos_formats::fields::fmt_ms(local_day_ms).chars().take(10).collect()
}

/// Every instance of `defs` that overlaps `[from_ms, to_ms)`, in start order.
pub fn instances(defs: &[ShiftDef], offset_min: i32, from_ms: i64, to_ms: i64) -> Vec<ShiftInstance> {
    let off = i64::from(offset_min) * MINUTE_MS;
    // Local midnights from the day before `from` (a night shift starts the day before).
    let first = (from_ms + off).div_euclid(DAY_MS) - 1;
    let last = (to_ms + off).div_euclid(DAY_MS);
    let mut out = Vec::new();
    for d in first..=last {
        let local_midnight = d * DAY_MS;
        for s in defs {
            let len = (i64::from(s.to_min) - i64::from(s.from_min)).rem_euclid(1440);
            let len = if len == 0 { 1440 } else { len };
            let start = local_midnight + i64::from(s.from_min) * MINUTE_MS - off;
            let end = start + len * MINUTE_MS;
            if start < to_ms && end > from_ms {
                out.push(ShiftInstance {
                    name: s.name.clone(),
                    day: day_name(local_midnight),
                    start_ms: start,
                    end_ms: end,
                });
            }
        }
    }
    out.sort_by_key(|i| (i.start_ms, i.name.clone()));
    out
}

/// The shift under way at `now_ms`, if any (the one that started last).
pub fn current(defs: &[ShiftDef], offset_min: i32, now_ms: i64) -> Option<ShiftInstance> {
    instances(defs, offset_min, now_ms, now_ms + 1).into_iter().rfind(|i| i.start_ms <= now_ms && now_ms < i.end_ms)
}

/// The last instance of each shift that ended at or before `now_ms`, within a day.
pub fn just_ended(defs: &[ShiftDef], offset_min: i32, now_ms: i64) -> Vec<ShiftInstance> {
    let mut out: Vec<ShiftInstance> = Vec::new();
    for i in instances(defs, offset_min, now_ms - DAY_MS, now_ms).into_iter().filter(|i| i.end_ms <= now_ms) {
        out.retain(|o| o.name != i.name);
        out.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, from: &str, to: &str) -> ShiftDef {
        ShiftDef {
            name: name.into(),
            from_min: parse_hhmm(from).unwrap(),
            to_min: parse_hhmm(to).unwrap(),
            defined_by: "admin".into(),
            defined_ms: 0,
        }
    }

    /// 2026-12-02T00:00:00Z.
    const DEC2: i64 = 1_796_169_600_000;

    #[test]
    fn times_and_offsets_parse_or_say_why_not() {
        assert_eq!(parse_hhmm("08:30").unwrap(), 510);
        assert_eq!(fmt_hhmm(510), "08:30");
        for bad in ["8:30", "24:00", "12:60", "noon", ""] {
            assert!(parse_hhmm(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_offset("+08:00").unwrap(), 480);
        assert_eq!(parse_offset("-03:30").unwrap(), -210);
        assert_eq!(parse_offset("Z").unwrap(), 0);
        assert!(parse_offset("08:00").is_err());
        assert!(parse_offset("+15:00").is_err());
    }

    #[test]
    fn night_shifts_cross_midnight_in_local_time() {
        let defs = [def("day", "08:00", "20:00"), def("night", "20:00", "08:00")];
        // At 01:00 local (+08:00) on Dec 2 the night shift that began Dec 1 20:00 runs.
        let now = DEC2 - 7 * 3_600_000; // 2026-12-01T17:00Z = 2026-12-02 01:00 +08:00
        let c = current(&defs, 480, now).unwrap();
        assert_eq!((c.name.as_str(), c.day.as_str()), ("night", "2026-12-01"));
        assert_eq!(c.start_ms, DEC2 - 12 * 3_600_000); // Dec 1 20:00 +08:00 = 12:00Z
        assert_eq!(c.end_ms - c.start_ms, 12 * 3_600_000);
        // Just after 08:00 local, the night shift has just ended and the day one runs.
        let after = c.end_ms + 1;
        assert_eq!(current(&defs, 480, after).unwrap().name, "day");
        let ended = just_ended(&defs, 480, after);
        assert!(ended.iter().any(|i| i.name == "night" && i.end_ms == c.end_ms), "{ended:?}");
        assert!(ended.iter().all(|i| i.end_ms <= after));
    }

    #[test]
    fn a_day_of_two_shifts_has_two_instances() {
        let defs = [def("day", "08:00", "20:00"), def("night", "20:00", "08:00")];
        let v = instances(&defs, 0, DEC2, DEC2 + DAY_MS);
        let names: Vec<_> = v.iter().map(|i| format!("{} {}", i.name, i.day)).collect();
        assert_eq!(names, ["night 2026-12-01", "day 2026-12-02", "night 2026-12-02"]);
        assert!(current(&[], 0, DEC2).is_none());
    }
}

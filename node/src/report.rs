//! The compliance report: for each camera, over a window ending now, how much was
//! recorded and every gap, whether the footage kept reaches back to the camera's
//! retention floor, the holds on it, what expiry deleted, and how often its footage was
//! accessed. Everything comes from the catalog, so any node gives the same answer for
//! the same applied index.

use crate::audit::{AuditAction, Outcome};
use crate::config::AlarmsConfig;
use crate::meta::Catalog;

const DAY_MS: i64 = 86_400_000;
/// A pause between two segments shorter than this is not a gap.
pub const GAP_MIN_MS: i64 = 1_000;

/// One camera's line in the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraCompliance {
    pub camera: String,
    pub name: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub recorded_ms: i64,
    pub coverage: f64,
    pub segments: u64,
    pub bytes: u64,
    pub gaps: Vec<(i64, i64)>,
    pub oldest_ms: Option<i64>,
    pub min_days: u32,
    pub max_days: u32,
    pub required_from_ms: i64,
    pub meets_floor: bool,
    pub holds: Vec<String>,
    pub deleted_segments: u64,
    /// Segments in the window whose footage is lost for good (a restore found no copy).
    pub lost_segments: u64,
    pub accesses_allowed: u64,
    pub accesses_denied: u64,
}

/// Audit actions that touch a camera's footage: searches, fetches and every export step.
/// An export action this release does not know counts too, as any `export-` name always
/// has. (Playing footage in the console, `view`, is not counted.)
fn is_footage_access(action: &AuditAction) -> bool {
    use AuditAction as A;
    match action {
        A::Search
        | A::Fetch
        | A::ExportRequest
        | A::ExportDecide
        | A::ExportRun
        | A::ExportList
        | A::ExportDownload
        | A::ExportReview => true,
        A::Other(name) => name.starts_with("export-"),
        _ => false,
    }
}

/// Footage of one camera over `[start, end)`: what it covered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    pub recorded_ms: i64,
    pub segments: u64,
    pub bytes: u64,
    /// Periods without footage of at least [`GAP_MIN_MS`]; a silence at the end counts
    /// only once it is longer than `settle` (the newest segment is still being recorded).
    pub gaps: Vec<(i64, i64)>,
    /// Catalogued segments whose footage is lost for good (counted as gaps).
    pub lost: u64,
}

/// What footage of `camera` covers `[start, end)`. Blocks; reads every segment in it.
pub fn coverage(c: &Catalog, camera: &str, start: i64, end: i64, settle: i64) -> crate::Result<Coverage> {
    let mut r = Coverage::default();
    let lost: std::collections::HashSet<i64> = c.lost_in(camera, start, end)?.into_iter().map(|(s, _)| s).collect();
    let mut cursor = start; // covered up to here
    c.each_segment(camera, start - DAY_MS, end, |s| {
        if s.end_ms <= start || s.start_ms >= end {
            return;
        }
        if lost.contains(&s.start_ms) {
            r.lost += 1;
            return;
        }
        let (a, b) = (s.start_ms.max(start), s.end_ms.min(end));
        if a - cursor >= GAP_MIN_MS {
            r.gaps.push((cursor, a));
        }
        r.recorded_ms += (b - a.max(cursor)).max(0);
        cursor = cursor.max(b);
        r.segments += 1;
        r.bytes += s.bytes;
    })?;
    if end - cursor > settle {
        r.gaps.push((cursor, end));
    }
    Ok(r)
}

/// The report over the `days` before `now_ms`. Blocks; reads every segment in the window.
pub fn compliance(
    c: &Catalog,
    now_ms: i64,
    days: u32,
    segment_target_ms: u64,
    alarms: &AlarmsConfig,
) -> crate::Result<Vec<CameraCompliance>> {
    let since = now_ms - i64::from(days) * DAY_MS;
    // The newest segment is still being recorded; only a longer silence is a gap.
    let settle = alarms.camera_down_after_ms(segment_target_ms);
    let holds = c.holds()?;
    let mut out = Vec::new();
    for cam in c.cameras()? {
        let policy = c.policy_for(&cam.id)?;
        let start = since.max(cam.added_ms);
        let mut r = CameraCompliance {
            camera: cam.id.clone(),
            name: cam.name.clone(),
            window_start_ms: start,
            window_end_ms: now_ms,
            min_days: policy.min_days,
            max_days: policy.max_days,
            ..Default::default()
        };
        let cov = coverage(c, &cam.id, start, now_ms, settle)?;
        (r.recorded_ms, r.segments, r.bytes, r.gaps, r.lost_segments) =
            (cov.recorded_ms, cov.segments, cov.bytes, cov.gaps, cov.lost);
        let span = (now_ms - start).max(1);
        r.coverage = r.recorded_ms as f64 / span as f64;
        r.oldest_ms = c.first_segment(&cam.id)?.map(|s| s.start_ms);
        r.required_from_ms = cam.added_ms.max(now_ms - i64::from(policy.min_days) * DAY_MS);
        r.meets_floor = match r.oldest_ms {
            Some(t) => t <= r.required_from_ms + settle,
            // Nothing yet is fine only for a camera added moments ago.
            None => now_ms - cam.added_ms <= settle,
        };
        r.holds = holds.iter().filter(|h| h.active() && h.cameras.contains(&cam.id)).map(|h| h.id.clone()).collect();
        out.push(r);
    }
    let positions: std::collections::HashMap<String, usize> =
        out.iter().enumerate().map(|(i, r)| (r.camera.clone(), i)).collect();
    let index = |camera: &str| positions.get(camera).copied();
    let mut deleted = vec![0u64; out.len()];
    c.receipts_since(since, |rec| {
        if let Some(i) = index(&rec.camera) {
            deleted[i] += 1;
        }
    })?;
    let mut access = vec![(0u64, 0u64); out.len()];
    c.audit_since(since, |body| {
        if !is_footage_access(&body.event.action) {
            return;
        }
        for cam in &body.event.cameras {
            if let Some(i) = index(cam) {
                match body.event.outcome {
                    Outcome::Denied => access[i].1 += 1,
                    Outcome::Allowed | Outcome::Ok => access[i].0 += 1,
                    _ => {}
                }
            }
        }
    })?;
    for (i, r) in out.iter_mut().enumerate() {
        r.deleted_segments = deleted[i];
        (r.accesses_allowed, r.accesses_denied) = access[i];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Footage accesses were once picked by name (`search`, `fetch` and `export-…`): the
    /// list of variants counts exactly those.
    #[test]
    fn footage_accesses_are_the_names_they_always_were() {
        for a in AuditAction::ALL.iter().cloned().chain([AuditAction::Other("export-new".into())]) {
            let by_name = matches!(a.as_str(), "search" | "fetch") || a.as_str().starts_with("export-");
            assert_eq!(is_footage_access(&a), by_name, "{a}");
        }
        assert!(!is_footage_access(&AuditAction::Other("exported".into())));
    }
}

//! The fault register and handover acceptance, for the Operations service: what people
//! on duty register that the system cannot see, and the receiver's side of a handover.

use custos_proto::v1 as pb;
use tonic::Status;

use super::Services;
use crate::meta::{Command, DutyRecord, FaultRecord, FaultSubject, HandoverAcceptance, Response as Applied};
use custos_formats::fields::fmt_ms;

/// How far back a handover looks for holds placed during the shift, when no earlier
/// handover says where the shift began.
pub const SHIFT_LOOKBACK_MS: i64 = 24 * 3600 * 1000;

pub(super) fn fault_pb(f: &FaultRecord) -> pb::Fault {
    let (camera, node) = match &f.subject {
        FaultSubject::Camera(c) => (c.clone(), 0),
        FaultSubject::Node(n) => (String::new(), *n),
    };
    pb::Fault {
        id: f.id,
        camera,
        node,
        reported_by: f.reported_by.clone(),
        reported_ms: f.reported_ms,
        note: f.note.clone(),
        resolved_by: f.resolved_by.clone().unwrap_or_default(),
        resolved_ms: f.resolved_ms.unwrap_or(0),
        resolution: f.resolution.clone(),
    }
}

/// One line per open fault, for status, patrols and handovers.
pub(super) fn fault_line(f: &FaultRecord) -> String {
    format!("fault {} on {}: {} (reported by {} at {})", f.id, f.subject, f.note, f.reported_by, fmt_ms(f.reported_ms))
}

pub(super) fn duty_pb(d: &DutyRecord, accepted: Option<&HandoverAcceptance>) -> pb::DutyRecord {
    pb::DutyRecord {
        seq: d.seq,
        kind: d.kind.as_str().into(),
        user: d.user.clone(),
        time_ms: d.time_ms,
        to: d.to.clone(),
        notes: d.notes.clone(),
        findings: d.findings.clone(),
        problems: d.problems,
        accepted_by: accepted.map(|a| a.user.clone()).unwrap_or_default(),
        accepted_ms: accepted.map(|a| a.time_ms).unwrap_or(0),
        accept_note: accepted.map(|a| a.note.clone()).unwrap_or_default(),
    }
}

/// "night 2026-12-02, 20:00 to 08:00 +08:00".
pub(super) fn shift_line(s: &crate::shifts::ShiftInstance, defs: &[crate::shifts::ShiftDef], tz: &str) -> String {
    let d = defs.iter().find(|d| d.name == s.name);
    let (from, to) =
        d.map(|d| (crate::shifts::fmt_hhmm(d.from_min), crate::shifts::fmt_hhmm(d.to_min))).unwrap_or_default();
    format!("{} {}, {from} to {to} {tz}", s.name, s.day)
}

pub(super) fn signoff_pb(s: &crate::meta::DutySignoff) -> pb::Signoff {
    pb::Signoff {
        seq: s.seq,
        from_ms: s.from_ms,
        to_ms: s.to_ms,
        user: s.user.clone(),
        time_ms: s.time_ms,
        note: s.note.clone(),
    }
}

impl Services {
    /// The shift under way now, as one line, or empty.
    pub(super) async fn current_shift_line(&self) -> Result<String, Status> {
        let (now, offset) = (self.meta.now_ms(), self.duty.offset_min());
        let defs = self.meta.read(|c| c.shifts()).await?;
        Ok(crate::shifts::current(&defs, offset, now)
            .map(|s| shift_line(&s, &defs, &self.duty.time_zone))
            .unwrap_or_default())
    }

    /// Every shift that ended in `[since, now)` with its patrols, and leadership's
    /// sign-offs overlapping it, for the compliance report.
    pub(super) async fn shift_report(
        &self,
        since: i64,
        now: i64,
    ) -> Result<(Vec<pb::ShiftPatrols>, Vec<pb::Signoff>), Status> {
        let (offset, needed) = (self.duty.offset_min(), self.duty.patrols_per_shift);
        let (defs, log, signoffs) = self.meta.read(|c| Ok((c.shifts()?, c.duty_log(100_000)?, c.signoffs()?))).await?;
        let shifts = crate::shifts::instances(&defs, offset, since, now)
            .into_iter()
            .filter(|s| s.end_ms <= now && s.start_ms >= since)
            .map(|s| {
                let patrols = log
                    .iter()
                    .filter(|d| {
                        d.kind == crate::meta::DutyKind::Patrol && s.start_ms <= d.time_ms && d.time_ms < s.end_ms
                    })
                    .count() as u32;
                pb::ShiftPatrols {
                    shift: s.name,
                    day: s.day,
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                    patrols,
                    required: needed,
                    short: patrols < needed,
                }
            })
            .collect();
        let signoffs = signoffs.iter().filter(|x| x.to_ms > since && x.from_ms < now).map(signoff_pb).collect();
        Ok((shifts, signoffs))
    }

    /// Proposes a fault-register or handover command with its audit entry; the fault or
    /// duty record's number when one was created.
    pub(super) async fn duty_change(
        &self,
        caller: &super::guard::Caller,
        action: crate::audit::AuditAction,
        detail: String,
        command: Command,
    ) -> Result<Applied, Status> {
        let mut ev = caller.event(action, crate::audit::Outcome::Ok);
        ev.detail = detail;
        match self.meta.propose_audited(command, ev).await? {
            Applied::Rejected(kind, why) => Err(super::rejected(kind, why)),
            other => Ok(other),
        }
    }

    pub(super) async fn fault_by_id(&self, id: u64) -> Result<FaultRecord, Status> {
        let all = self.meta.read(|c| c.faults(true)).await?;
        all.into_iter().find(|f| f.id == id).ok_or_else(|| Status::not_found(format!("fault {id} does not exist")))
    }

    /// What a handover carries without being asked: the open alarms, the blind spots, the
    /// open faults and the holds placed during the shift (since the previous handover).
    pub(super) async fn handover_findings(&self, blind_spots: Vec<String>) -> Result<(Vec<String>, u32), Status> {
        let now = self.meta.now_ms();
        let (open, faults, holds, last) = self
            .meta
            .read(|c| {
                let last = c
                    .duty_log(1000)?
                    .into_iter()
                    .find(|d| d.kind == crate::meta::DutyKind::Handover)
                    .map(|d| d.time_ms);
                Ok((c.open_alarms()?, c.faults(false)?, c.holds()?, last))
            })
            .await?;
        let since = last.unwrap_or(now - SHIFT_LOOKBACK_MS).max(now - SHIFT_LOOKBACK_MS);
        let mut out = Vec::new();
        let mut problems = 0u32;
        for a in &open {
            problems += 1;
            out.push(format!("open alarm: {}", crate::alarms::render(a)));
        }
        for b in blind_spots {
            problems += 1;
            out.push(format!("blind spot: {b}"));
        }
        for f in &faults {
            problems += 1;
            out.push(format!("open {}", fault_line(f)));
        }
        for h in holds.iter().filter(|h| h.placed_ms >= since) {
            out.push(format!(
                "hold {} placed during the shift by {} (case {}, cameras {})",
                h.id,
                h.placed_by,
                h.case_id,
                h.cameras.join(",")
            ));
        }
        if out.is_empty() {
            out.push("nothing open: no alarms, blind spots or faults; no holds placed during the shift".into());
        }
        Ok((out, problems))
    }
}

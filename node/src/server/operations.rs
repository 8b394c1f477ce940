//! The Operations service: alarms and their acknowledgements, patrols, shift handovers
//! and the compliance report. Acknowledgements, patrols and handovers are one Raft entry
//! each, with their audit record in the same entry.

use custos_proto::v1 as pb;
use custos_proto::v1::operations_server::Operations;
use tonic::{Request, Response, Status};

use super::{fmt_ms, Services};
use crate::access::Action;
use crate::audit::{AuditAction, Outcome};
use crate::meta::{AlarmRecord, Command, DutyKind, DutyRecord, Response as Applied};

/// Longest note or handover text accepted.
pub const NOTE_MAX_CHARS: usize = 4_000;
/// Most days a compliance report may span.
pub const REPORT_DAYS_MAX: u32 = 366;

fn alarm_pb(a: &AlarmRecord) -> pb::Alarm {
    pb::Alarm {
        id: a.id,
        kind: a.kind.to_string(),
        subject: a.subject.clone(),
        detail: a.detail.clone(),
        raised_ms: a.raised_ms,
        cleared_ms: a.cleared_ms.unwrap_or(0),
        acks: a
            .acks
            .iter()
            .map(|k| pb::AlarmAck { user: k.user.clone(), time_ms: k.time_ms, note: k.note.clone() })
            .collect(),
    }
}

use super::duty::{duty_pb, fault_line, fault_pb};
use crate::meta::{FaultRecord, FaultSubject};

fn check_text(what: &str, text: &str, required: bool) -> Result<String, Status> {
    let t = text.trim();
    if required && t.is_empty() {
        return Err(Status::invalid_argument(format!("{what} is required: say in words what was done or found")));
    }
    if t.chars().count() > NOTE_MAX_CHARS {
        return Err(Status::invalid_argument(format!("{what} is longer than {NOTE_MAX_CHARS} characters")));
    }
    Ok(t.to_string())
}

impl Services {
    /// What a patrol finds now: one line per camera, node and unacknowledged alarm, and
    /// how many are problems.
    async fn patrol_findings(&self) -> Result<(Vec<String>, u32), Status> {
        let seen = self.alarm_sources().observe().await?;
        let open = self.meta.read(|c| c.open_alarms()).await?;
        let down_after = self.alarms.camera_down_after_ms(seen.segment_target_ms);
        let mut findings = Vec::new();
        let mut problems = 0u32;
        for c in &seen.cameras {
            match c.last_end_ms {
                Some(t) if seen.now_ms - t <= down_after => {
                    findings.push(format!("camera {}: recording (last segment ended {})", c.id, fmt_ms(t)))
                }
                Some(t) => {
                    problems += 1;
                    findings.push(format!(
                        "camera {}: NOT RECORDING for {} s (last segment ended {}): blind spot, cover it by patrol",
                        c.id,
                        (seen.now_ms - t) / 1000,
                        fmt_ms(t)
                    ));
                }
                None => {
                    problems += 1;
                    findings.push(format!("camera {}: NOT RECORDING: no footage since it was added", c.id));
                }
            }
        }
        for n in seen.nodes.iter().filter(|n| !n.node.retired) {
            let (id, campus) = (n.node.id, &n.node.campus);
            if !n.alive {
                problems += 1;
                findings.push(format!("node {id} (campus {campus}): NOT ANSWERING"));
            } else if n.disk_low {
                problems += 1;
                findings.push(format!(
                    "node {id} (campus {campus}): BELOW ITS FREE-SPACE FLOOR ({} MiB free)",
                    n.disk_free >> 20
                ));
            } else {
                findings.push(format!("node {id} (campus {campus}): up, {} MiB free", n.disk_free >> 20));
            }
        }
        for a in open.iter().filter(|a| a.acks.is_empty()) {
            problems += 1;
            findings.push(format!(
                "alarm {} ({} {}) open since {} and not acknowledged",
                a.id,
                a.kind,
                a.subject,
                fmt_ms(a.raised_ms)
            ));
        }
        for f in self.meta.read(|c| c.faults(false)).await? {
            problems += 1;
            findings.push(format!("OPEN {}", fault_line(&f)));
        }
        Ok((findings, problems))
    }

    /// Records a patrol or handover with its audit entry and returns it as stored.
    async fn record_duty(&self, caller: &super::guard::Caller, d: DutyRecord) -> Result<DutyRecord, Status> {
        let action = if d.kind == DutyKind::Patrol { AuditAction::Patrol } else { AuditAction::ShiftHandover };
        let mut ev = caller.event(action, Outcome::Ok);
        ev.detail = match d.kind {
            DutyKind::Patrol => format!("{} findings, {} problems", d.findings.len(), d.problems),
            DutyKind::Handover => format!("to {}", d.to),
        };
        match self.meta.propose_audited(Command::RecordDuty(d), ev).await? {
            Applied::Created(seq) => {
                let seq: u64 = seq.parse().map_err(|_| Status::internal("duty record number"))?;
                self.meta
                    .read(move |c| c.duty(seq))
                    .await?
                    .ok_or_else(|| Status::internal("the duty record vanished after it was committed"))
            }
            Applied::Rejected(kind, why) => Err(super::rejected(kind, why)),
            other => Err(Status::internal(format!("unexpected answer {other:?}"))),
        }
    }
}

#[tonic::async_trait]
impl Operations for Services {
    async fn list_alarms(
        &self,
        req: Request<pb::ListAlarmsRequest>,
    ) -> Result<Response<pb::ListAlarmsResponse>, Status> {
        self.guard(&req, Action::ViewStatus, false).await?;
        let r = req.into_inner();
        let limit = if r.limit == 0 { 1000 } else { r.limit.min(10_000) } as usize;
        let alarms = self.meta.read(move |c| c.alarms(r.all, limit)).await?;
        Ok(Response::new(pb::ListAlarmsResponse { alarms: alarms.iter().map(alarm_pb).collect() }))
    }

    async fn ack_alarm(&self, req: Request<pb::AckAlarmRequest>) -> Result<Response<pb::Alarm>, Status> {
        let caller = self.guard(&req, Action::AckAlarm, false).await?;
        let r = req.into_inner();
        let note = check_text("--note", &r.note, true)?;
        let cmd = Command::AckAlarm { id: r.id, user: caller.who.name.clone(), note: note.clone() };
        self.admin_change(&caller, AuditAction::AlarmAck, format!("alarm {}: {note}", r.id), cmd).await?;
        let id = r.id;
        let a = self.meta.read(move |c| c.alarm(id)).await?.ok_or_else(|| Status::not_found("alarm"))?;
        Ok(Response::new(alarm_pb(&a)))
    }

    async fn patrol(&self, req: Request<pb::PatrolRequest>) -> Result<Response<pb::DutyRecord>, Status> {
        let caller = self.guard(&req, Action::RecordDuty, false).await?;
        let notes = check_text("--notes", &req.get_ref().notes, false)?;
        let (findings, problems) = self.patrol_findings().await?;
        let d = DutyRecord {
            seq: 0,
            kind: DutyKind::Patrol,
            user: caller.who.name.clone(),
            time_ms: 0,
            to: String::new(),
            notes,
            findings,
            problems,
        };
        let stored = self.record_duty(&caller, d).await?;
        tracing::info!(user = %stored.user, problems = stored.problems, "patrol recorded");
        Ok(Response::new(duty_pb(&stored, None)))
    }

    async fn handover(&self, req: Request<pb::HandoverRequest>) -> Result<Response<pb::DutyRecord>, Status> {
        let caller = self.guard(&req, Action::RecordDuty, false).await?;
        let r = req.into_inner();
        let notes = check_text("--notes", &r.notes, true)?;
        let to = r.to.trim().to_string();
        if to.is_empty() {
            return Err(Status::invalid_argument("--to is required: the user taking over the shift"));
        }
        if to == caller.who.name {
            return Err(Status::invalid_argument("a shift is handed over to someone else, not to yourself"));
        }
        let to2 = to.clone();
        match self.meta.read(move |c| c.user(&to2)).await? {
            None => return Err(Status::not_found(format!("user {to} does not exist"))),
            Some(u) if u.disabled => {
                return Err(Status::failed_precondition(format!("user {to} is disabled and cannot take a shift")))
            }
            Some(_) => {}
        }
        // What is open is handed over with it, whatever the notes say.
        let (patrol, _) = self.patrol_findings().await?;
        let blind: Vec<String> = patrol.into_iter().filter(|f| f.contains("NOT RECORDING")).collect();
        let (findings, problems) = self.handover_findings(blind).await?;
        let d = DutyRecord {
            seq: 0,
            kind: DutyKind::Handover,
            user: caller.who.name.clone(),
            time_ms: 0,
            to,
            notes,
            findings,
            problems,
        };
        let stored = self.record_duty(&caller, d).await?;
        tracing::info!(from = %stored.user, to = %stored.to, "shift handed over; pending until accepted");
        Ok(Response::new(duty_pb(&stored, None)))
    }

    async fn list_duty(&self, req: Request<pb::ListDutyRequest>) -> Result<Response<pb::ListDutyResponse>, Status> {
        self.guard(&req, Action::ViewDuty, false).await?;
        let r = req.into_inner();
        let kind = match r.kind.as_str() {
            "" => None,
            "patrol" => Some(DutyKind::Patrol),
            "handover" => Some(DutyKind::Handover),
            other => return Err(Status::invalid_argument(format!("kind {other:?}: use patrol or handover"))),
        };
        let limit = if r.limit == 0 { 100 } else { r.limit.min(10_000) } as usize;
        // Filtering reads further back than `limit` when one kind is asked for.
        let records = self.meta.read(move |c| c.duty_log(if kind.is_some() { limit * 20 } else { limit })).await?;
        let chosen: Vec<DutyRecord> =
            records.into_iter().filter(|d| kind.is_none_or(|k| d.kind == k)).take(limit).collect();
        let seqs: Vec<u64> = chosen.iter().filter(|d| d.kind == DutyKind::Handover).map(|d| d.seq).collect();
        let accepted = self
            .meta
            .read(move |c| seqs.iter().map(|s| Ok((*s, c.handover_acceptance(*s)?))).collect::<crate::Result<Vec<_>>>())
            .await?;
        let records = chosen
            .iter()
            .map(|d| {
                let a = accepted.iter().find(|(s, _)| *s == d.seq).and_then(|(_, a)| a.as_ref());
                duty_pb(d, a)
            })
            .collect();
        Ok(Response::new(pb::ListDutyResponse { records }))
    }

    async fn compliance_report(
        &self,
        req: Request<pb::ComplianceRequest>,
    ) -> Result<Response<pb::ComplianceResponse>, Status> {
        self.guard(&req, Action::ComplianceReport, true).await?;
        let days = match req.get_ref().days {
            0 => 30,
            d if d > REPORT_DAYS_MAX => {
                return Err(Status::invalid_argument(format!("--days may be at most {REPORT_DAYS_MAX}")))
            }
            d => d,
        };
        let now = self.meta.now_ms();
        let (target, alarms) = (self.cluster.segment_target_ms, self.alarms.clone());
        let rows = self.meta.read(move |c| crate::report::compliance(c, now, days, target, &alarms)).await?;
        let cameras: Vec<_> = rows
            .into_iter()
            .map(|r| pb::CameraCompliance {
                camera: r.camera,
                name: r.name,
                window_start_ms: r.window_start_ms,
                window_end_ms: r.window_end_ms,
                recorded_ms: r.recorded_ms,
                coverage: r.coverage,
                segments: r.segments,
                bytes: r.bytes,
                gaps: r.gaps.iter().map(|&(start_ms, end_ms)| pb::Gap { start_ms, end_ms }).collect(),
                oldest_ms: r.oldest_ms.unwrap_or(0),
                min_days: r.min_days,
                max_days: r.max_days,
                required_from_ms: r.required_from_ms,
                meets_floor: r.meets_floor,
                holds: r.holds,
                deleted_segments: r.deleted_segments,
                accesses_allowed: r.accesses_allowed,
                accesses_denied: r.accesses_denied,
                lost_segments: r.lost_segments,
            })
            .collect();
        let breaking_floor = cameras.iter().filter(|c| !c.meets_floor).count() as u32;
        // Faults reported in the window or still open, with their time to repair.
        let since = now - i64::from(days) * 86_400_000;
        let bound_ms = self.alarms.fault_open_max_h as i64 * 3_600_000;
        let faults: Vec<pb::FaultRepair> = self
            .meta
            .read(|c| c.faults(true))
            .await?
            .iter()
            .filter(|f| f.reported_ms >= since || f.resolved_ms.is_none())
            .map(|f| {
                let repair_ms = f.resolved_ms.unwrap_or(now) - f.reported_ms;
                pb::FaultRepair { fault: Some(fault_pb(f)), repair_ms, overdue: repair_ms > bound_ms }
            })
            .collect();
        let faults_overdue = faults.iter().filter(|f| f.overdue).count() as u32;
        let (shifts, signoffs) = self.shift_report(since, now).await?;
        let shifts_short = shifts.iter().filter(|s| s.short).count() as u32;
        Ok(Response::new(pb::ComplianceResponse {
            generated_ms: now,
            days,
            cameras,
            breaking_floor,
            faults,
            faults_overdue,
            shifts,
            shifts_short,
            signoffs,
        }))
    }

    async fn define_shift(
        &self,
        req: Request<pb::DefineShiftRequest>,
    ) -> Result<Response<pb::DefineShiftResponse>, Status> {
        let caller = self.guard(&req, Action::ManageShifts, false).await?;
        let r = req.into_inner();
        custos_formats::fields::validate_user_name("shift name", &r.name).map_err(Status::invalid_argument)?;
        let from_min =
            crate::shifts::parse_hhmm(&r.from).map_err(|e| Status::invalid_argument(format!("--from: {e}")))?;
        let to_min = crate::shifts::parse_hhmm(&r.to).map_err(|e| Status::invalid_argument(format!("--to: {e}")))?;
        let def = crate::shifts::ShiftDef {
            name: r.name.clone(),
            from_min,
            to_min,
            defined_by: caller.who.name.clone(),
            defined_ms: 0,
        };
        let detail = format!("shift {} {} to {} ({})", r.name, r.from, r.to, self.duty.time_zone);
        let change_id =
            self.admin_change(&caller, AuditAction::ShiftDefine, detail, Command::DefineShift(def)).await?.unwrap_or(0);
        Ok(Response::new(pb::DefineShiftResponse { change_id }))
    }

    async fn list_shifts(
        &self,
        req: Request<pb::ListShiftsRequest>,
    ) -> Result<Response<pb::ListShiftsResponse>, Status> {
        self.guard(&req, Action::ViewDuty, false).await?;
        let defs = self.meta.read(|c| c.shifts()).await?;
        let now = self.meta.now_ms();
        let cur = crate::shifts::current(&defs, self.duty.offset_min(), now);
        Ok(Response::new(pb::ListShiftsResponse {
            shifts: defs
                .iter()
                .map(|d| pb::Shift {
                    name: d.name.clone(),
                    from: crate::shifts::fmt_hhmm(d.from_min),
                    to: crate::shifts::fmt_hhmm(d.to_min),
                    defined_by: d.defined_by.clone(),
                })
                .collect(),
            current: cur.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
            current_day: cur.as_ref().map(|c| c.day.clone()).unwrap_or_default(),
            current_start_ms: cur.as_ref().map_or(0, |c| c.start_ms),
            current_end_ms: cur.as_ref().map_or(0, |c| c.end_ms),
            time_zone: self.duty.time_zone.clone(),
            patrols_per_shift: self.duty.patrols_per_shift,
        }))
    }

    async fn sign_duty(&self, req: Request<pb::SignDutyRequest>) -> Result<Response<pb::Signoff>, Status> {
        let caller = self.guard(&req, Action::SignDuty, false).await?;
        let r = req.into_inner();
        let note = check_text("--note", &r.note, false)?;
        if r.from_ms >= r.to_ms {
            return Err(Status::invalid_argument("--from must be before --to"));
        }
        let s = crate::meta::DutySignoff {
            seq: 0,
            from_ms: r.from_ms,
            to_ms: r.to_ms,
            user: caller.who.name.clone(),
            time_ms: 0,
            note,
        };
        let detail = format!("duty log {} to {}", fmt_ms(r.from_ms), fmt_ms(r.to_ms));
        let seq: u64 = match self.duty_change(&caller, AuditAction::DutySign, detail, Command::SignDuty(s)).await? {
            Applied::Created(n) => n.parse().map_err(|_| Status::internal("sign-off number"))?,
            other => return Err(Status::internal(format!("unexpected answer {other:?}"))),
        };
        let all = self.meta.read(|c| c.signoffs()).await?;
        let s = all.iter().find(|s| s.seq == seq).ok_or_else(|| Status::internal("the sign-off vanished"))?;
        Ok(Response::new(super::duty::signoff_pb(s)))
    }

    async fn accept_handover(
        &self,
        req: Request<pb::AcceptHandoverRequest>,
    ) -> Result<Response<pb::DutyRecord>, Status> {
        let caller = self.guard(&req, Action::RecordDuty, false).await?;
        let r = req.into_inner();
        let note = check_text("--note", &r.note, false)?;
        let cmd = Command::AcceptHandover { seq: r.seq, user: caller.who.name.clone(), note };
        self.duty_change(&caller, AuditAction::ShiftAccept, format!("handover {}", r.seq), cmd).await?;
        let seq = r.seq;
        let (d, a) = self.meta.read(move |c| Ok((c.duty(seq)?, c.handover_acceptance(seq)?))).await?;
        let d = d.ok_or_else(|| Status::internal("the handover vanished"))?;
        tracing::info!(handover = seq, user = %caller.who.name, from = %d.user, "shift handover accepted");
        Ok(Response::new(duty_pb(&d, a.as_ref())))
    }

    async fn report_fault(&self, req: Request<pb::ReportFaultRequest>) -> Result<Response<pb::Fault>, Status> {
        let caller = self.guard(&req, Action::ReportFault, false).await?;
        let r = req.into_inner();
        let note = check_text("--note", &r.note, true)?;
        let subject = match (r.camera.trim(), r.node) {
            ("", 0) => return Err(Status::invalid_argument("say what is faulty: --camera ID or --node ID")),
            (c, 0) => {
                crate::ingest::validate_camera_id(c).map_err(Status::invalid_argument)?;
                FaultSubject::Camera(c.to_string())
            }
            ("", n) => FaultSubject::Node(n),
            _ => return Err(Status::invalid_argument("a fault is about one camera or one node, not both")),
        };
        let f = FaultRecord {
            id: 0,
            subject: subject.clone(),
            reported_by: caller.who.name.clone(),
            reported_ms: 0,
            note,
            resolved_by: None,
            resolved_ms: None,
            resolution: String::new(),
        };
        let mut cameras = vec![];
        if let FaultSubject::Camera(c) = &subject {
            cameras.push(c.clone());
        }
        let detail = format!("{subject}: {}", f.note);
        let id = match self.duty_change(&caller, AuditAction::FaultReport, detail, Command::ReportFault(f)).await? {
            Applied::Created(id) => id.parse().map_err(|_| Status::internal("fault number"))?,
            other => return Err(Status::internal(format!("unexpected answer {other:?}"))),
        };
        let f = self.fault_by_id(id).await?;
        tracing::warn!(fault = id, subject = %f.subject, user = %caller.who.name, "fault registered: {}", f.note);
        Ok(Response::new(fault_pb(&f)))
    }

    async fn list_faults(
        &self,
        req: Request<pb::ListFaultsRequest>,
    ) -> Result<Response<pb::ListFaultsResponse>, Status> {
        self.guard(&req, Action::ViewDuty, false).await?;
        let all = req.get_ref().all;
        let faults = self.meta.read(move |c| c.faults(all)).await?;
        Ok(Response::new(pb::ListFaultsResponse { faults: faults.iter().map(fault_pb).collect() }))
    }

    async fn resolve_fault(&self, req: Request<pb::ResolveFaultRequest>) -> Result<Response<pb::Fault>, Status> {
        let caller = self.guard(&req, Action::ReportFault, false).await?;
        let r = req.into_inner();
        let note = check_text("--note", &r.note, true)?;
        let cmd = Command::ResolveFault { id: r.id, user: caller.who.name.clone(), note: note.clone() };
        self.duty_change(&caller, AuditAction::FaultResolve, format!("fault {}: {note}", r.id), cmd).await?;
        let f = self.fault_by_id(r.id).await?;
        tracing::info!(fault = r.id, user = %caller.who.name, "fault resolved");
        Ok(Response::new(fault_pb(&f)))
    }
}

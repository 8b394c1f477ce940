//! The fault register and handover acceptances: what the monitoring centre records
//! beside the duty log (`alarms.rs`).

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, CF_CAMERAS, CF_NODES};
use crate::meta::types::{
    DutyKind, DutyRecord, DutySignoff, FaultRecord, FaultSubject, HandoverAcceptance, RejectKind, Request, Response,
};

/// The last fault number given (in `sm_meta`).
pub(super) const KEY_FAULT_SEQ: &[u8] = b"fault_seq";
/// The last duty sign-off number given (in `sm_meta`).
pub(super) const KEY_SIGNOFF_SEQ: &[u8] = b"signoff_seq";

/// Stores a shift definition under its name (replacing one of the same name).
pub(super) fn define_shift(db: &DB, batch: &mut WriteBatch, req: &Request, s: &crate::shifts::ShiftDef) -> Response {
    if let Err(why) = custos_formats::fields::validate_user_name("shift name", &s.name) {
        return Response::Rejected(RejectKind::InvalidArgument, why);
    }
    if s.from_min >= 1440 || s.to_min >= 1440 {
        return Response::Rejected(RejectKind::InvalidArgument, "a shift's times are minutes of one day".into());
    }
    let s = crate::shifts::ShiftDef { defined_ms: req.time_ms, ..s.clone() };
    SHIFTS.put(db, batch, &s.name, &s);
    Response::Ok
}

/// An approver signs off the duty log of a period that has ended.
pub(super) fn sign_duty(db: &DB, batch: &mut WriteBatch, req: &Request, s: &DutySignoff) -> Response {
    match USERS.get(db, &s.user) {
        Ok(Some(u)) if u.role == crate::access::Role::Approver && !u.disabled => {}
        Ok(_) => {
            return Response::Rejected(
                RejectKind::PermissionDenied,
                format!("{} is not an active approver; leadership signs off the duty log", s.user),
            )
        }
        Err(e) => return read_failed(e),
    }
    if s.from_ms >= s.to_ms || s.to_ms > req.time_ms {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            "a sign-off covers a period that has ended: --from before --to, --to not in the future".into(),
        );
    }
    let seq: u64 = match SIGNOFF_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return read_failed(e),
    };
    let s = DutySignoff { seq, time_ms: req.time_ms, ..s.clone() };
    SIGNOFFS.put(db, batch, &seq, &s);
    SIGNOFF_SEQ.put(db, batch, &seq);
    Response::Created(seq.to_string())
}

fn read_failed(e: String) -> Response {
    Response::StorageFailed(format!("catalog read failed: {e}"))
}

/// Registers a fault under the next number, if its camera or node exists.
pub(super) fn report_fault(db: &DB, batch: &mut WriteBatch, req: &Request, f: &FaultRecord) -> Response {
    let known = match &f.subject {
        FaultSubject::Camera(c) => db.get_pinned_cf(cf(db, CF_CAMERAS), c.as_bytes()).map(|v| v.is_some()),
        FaultSubject::Node(n) => db.get_pinned_cf(cf(db, CF_NODES), n.to_be_bytes()).map(|v| v.is_some()),
    };
    match known {
        Ok(true) => {}
        Ok(false) => return Response::Rejected(RejectKind::NotFound, format!("{} does not exist", f.subject)),
        Err(e) => return read_failed(e.to_string()),
    }
    if f.note.trim().is_empty() {
        return Response::Rejected(RejectKind::InvalidArgument, "a fault needs a note saying what is wrong".into());
    }
    let seq: u64 = match FAULT_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return read_failed(e),
    };
    let f = FaultRecord {
        id: seq,
        reported_ms: req.time_ms,
        resolved_by: None,
        resolved_ms: None,
        resolution: String::new(),
        ..f.clone()
    };
    FAULTS.put(db, batch, &seq, &f);
    FAULT_SEQ.put(db, batch, &seq);
    Response::Created(seq.to_string())
}

/// Marks fault `id` repaired, once, with what was done.
pub(super) fn resolve_fault(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    id: u64,
    user: &str,
    note: &str,
) -> Response {
    let mut f: FaultRecord = match FAULTS.get(db, &id) {
        Ok(Some(f)) => f,
        Ok(None) => return Response::Rejected(RejectKind::NotFound, format!("fault {id} does not exist")),
        Err(e) => return read_failed(e),
    };
    if f.resolved_ms.is_some() {
        return Response::Rejected(RejectKind::FailedPrecondition, format!("fault {id} was already resolved"));
    }
    if note.trim().is_empty() {
        return Response::Rejected(
            RejectKind::InvalidArgument,
            "a resolution needs a note saying what was done".into(),
        );
    }
    (f.resolved_by, f.resolved_ms, f.resolution) = (Some(user.to_string()), Some(req.time_ms), note.trim().to_string());
    FAULTS.put(db, batch, &id, &f);
    Response::Ok
}

/// The receiver accepts handover `seq`: only the user it was handed to, only once.
pub(super) fn accept_handover(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    seq: u64,
    user: &str,
    note: &str,
) -> Response {
    let d: DutyRecord = match DUTY.get(db, &seq) {
        Ok(Some(d)) if d.kind == DutyKind::Handover => d,
        Ok(_) => return Response::Rejected(RejectKind::NotFound, format!("handover {seq} does not exist")),
        Err(e) => return read_failed(e),
    };
    if d.to != user {
        return Response::Rejected(
            RejectKind::PermissionDenied,
            format!("handover {seq} was handed to {}; only they can accept it", d.to),
        );
    }
    match HANDOVER_ACCEPTS.get(db, &seq) {
        Ok(Some(a)) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!("{} accepted handover {seq} already", a.user),
            )
        }
        Ok(None) => {}
        Err(e) => return read_failed(e),
    }
    let a = HandoverAcceptance { user: user.to_string(), time_ms: req.time_ms, note: note.trim().to_string() };
    HANDOVER_ACCEPTS.put(db, batch, &seq, &a);
    Response::Ok
}

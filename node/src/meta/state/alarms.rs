//! Alarm commands: raising and clearing alarms, acknowledgements, and the duty log.

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, CF_ALARMS_OPEN};
use crate::meta::types::{AlarmAck, AlarmChange, AlarmRecord, DutyRecord, RejectKind, Request, Response};

/// Raises alarms not open yet and clears open ones; anything else changes nothing.
pub(super) fn apply_alarms(db: &DB, batch: &mut WriteBatch, now_ms: i64, changes: &[AlarmChange]) -> Response {
    let mut seq: u64 = match ALARM_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0),
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let (mut changed, mut unchanged) = (0u32, 0u32);
    let mut touched = std::collections::HashSet::new();
    for c in changes {
        let mut key = c.kind.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(c.subject.as_bytes());
        if !touched.insert(key.clone()) {
            unchanged += 1;
            continue;
        }
        let open: Option<Vec<u8>> = match db.get_cf(cf(db, CF_ALARMS_OPEN), &key) {
            Ok(v) => v,
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        };
        match (c.raise, open) {
            (true, None) => {
                seq += 1;
                let a = AlarmRecord {
                    id: seq,
                    kind: c.kind.clone(),
                    subject: c.subject.clone(),
                    detail: c.detail.clone(),
                    raised_ms: now_ms,
                    cleared_ms: None,
                    acks: Vec::new(),
                };
                ALARMS.put(db, batch, &seq.to_be_bytes(), &a);
                batch.put_cf(cf(db, CF_ALARMS_OPEN), &key, seq.to_be_bytes());
                changed += 1;
            }
            (false, Some(id)) => {
                match ALARMS.get(db, &id) {
                    Ok(Some(mut a)) => {
                        a.cleared_ms = Some(now_ms);
                        ALARMS.put(db, batch, &id, &a);
                    }
                    Ok(None) => {}
                    Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
                }
                batch.delete_cf(cf(db, CF_ALARMS_OPEN), &key);
                changed += 1;
            }
            _ => unchanged += 1,
        }
    }
    ALARM_SEQ.put(db, batch, &seq);
    Response::Committed { new: changed, duplicate: unchanged, superseded: 0 }
}

/// An operator acknowledges an alarm with a note, which must say something.
pub(super) fn ack_alarm(db: &DB, batch: &mut WriteBatch, req: &Request, id: u64, user: &str, note: &str) -> Response {
    if note.trim().is_empty() {
        return Response::Rejected(
            RejectKind::FailedPrecondition,
            "an acknowledgement needs a note saying what was done".into(),
        );
    }
    match ALARMS.get(db, &id.to_be_bytes()) {
        Ok(Some(mut a)) => {
            a.acks.push(AlarmAck { user: user.to_string(), time_ms: req.time_ms, note: note.trim().to_string() });
            ALARMS.put(db, batch, &id.to_be_bytes(), &a);
            Response::Ok
        }
        Ok(None) => Response::Rejected(RejectKind::NotFound, format!("alarm {id} does not exist")),
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

/// Records a patrol or a shift handover under the next number.
pub(super) fn record_duty(db: &DB, batch: &mut WriteBatch, req: &Request, d: &DutyRecord) -> Response {
    let seq: u64 = match DUTY_SEQ.get(db) {
        Ok(v) => v.unwrap_or(0) + 1,
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    };
    let d = DutyRecord { seq, time_ms: req.time_ms, ..d.clone() };
    DUTY.put(db, batch, &seq, &d);
    DUTY_SEQ.put(db, batch, &seq);
    Response::Created(seq.to_string())
}

//! The export workflow: request, decision by a second person, completion.

use rocksdb::{WriteBatch, DB};

use super::retention::place_hold;
use super::table::*;
use crate::meta::types::{Command, ExportRedaction, ExportStatus, RejectKind, Response};

/// Applies the export workflow's commands.
pub(super) fn apply_export(db: &DB, batch: &mut WriteBatch, now_ms: i64, command: &Command) -> Response {
    let load = |id: &str| match EXPORTS.get(db, id) {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("export {id} does not exist"))),
        Err(e) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    };
    match command {
        Command::RequestExport(e) => {
            let seq: u64 = match EXPORT_SEQ.get(db) {
                Ok(v) => v.unwrap_or(0) + 1,
                Err(err) => return Response::StorageFailed(format!("catalog read failed: {err}")),
            };
            let mut e = e.clone();
            e.id = format!("E-{seq:06}");
            e.requested_ms = now_ms;
            e.status = ExportStatus::Requested;
            (e.decided_by, e.decided_ms, e.manifest, e.signature, e.merkle_root, e.hold_id, e.completed_ms) =
                (None, None, None, None, None, None, None);
            EXPORT_SEQ.put(db, batch, &seq);
            EXPORTS.put(db, batch, &e.id, &e);
            Response::Created(e.id)
        }
        Command::DecideExport { id, user, approve, reason } => {
            let mut e = match load(id) {
                Ok(e) => e,
                Err(r) => return r,
            };
            if e.status != ExportStatus::Requested {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!("export {id} was already {}", e.status.as_str()),
                );
            }
            if e.requester == *user {
                return Response::Rejected(
                    RejectKind::PermissionDenied,
                    format!("{user} requested export {id} and cannot also decide it: a second person must approve"),
                );
            }
            e.status = if *approve { ExportStatus::Approved } else { ExportStatus::Rejected };
            e.decided_by = Some(user.clone());
            e.decided_ms = Some(now_ms);
            e.reason = reason.clone();
            EXPORTS.put(db, batch, id, &e);
            Response::Ok
        }
        Command::CompleteExport { id, manifest, signature, merkle_root, hold } => {
            let mut e = match load(id) {
                Ok(e) => e,
                Err(r) => return r,
            };
            if e.status != ExportStatus::Approved {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!("export {id} is {}, not approved", e.status.as_str()),
                );
            }
            if e.decided_ms.is_some_and(|d| now_ms > d + crate::meta::types::APPROVAL_VALID_MS) {
                return Response::Rejected(
                    RejectKind::FailedPrecondition,
                    format!(
                        "the approval of export {id} has expired ({} days); request it again",
                        crate::meta::types::APPROVAL_VALID_MS / 86_400_000
                    ),
                );
            }
            let hold_id = match place_hold(db, batch, now_ms, hold) {
                Ok(h) => h,
                Err(r) => return r,
            };
            e.status = ExportStatus::Done;
            e.manifest = Some(manifest.clone());
            e.signature = Some(signature.clone());
            e.merkle_root = Some(merkle_root.clone());
            e.hold_id = Some(hold_id);
            e.completed_ms = Some(now_ms);
            EXPORTS.put(db, batch, id, &e);
            Response::Ok
        }
        Command::RequestRedactedExport { export, extra } => {
            for (camera, _) in extra {
                if !export.ranges.iter().any(|(c, _, _)| c == camera) {
                    return Response::Rejected(
                        RejectKind::InvalidArgument,
                        format!("a redaction box names camera {camera}, which the request does not export"),
                    );
                }
                let boxes: Vec<_> = extra.iter().filter(|(c, _)| c == camera).map(|(_, z)| z.clone()).collect();
                if let Err(why) = crate::zones::validate_all(&boxes) {
                    return Response::Rejected(RejectKind::InvalidArgument, format!("camera {camera}: {why}"));
                }
            }
            let r = apply_export(db, batch, now_ms, &Command::RequestExport(export.clone()));
            if let Response::Created(id) = &r {
                let red = ExportRedaction { extra: extra.clone(), include_original: None };
                REDACTIONS.put(db, batch, id, &red);
            }
            r
        }
        Command::DecideRedactedExport { id, user, approve, reason, include_original } => {
            let mut red = match REDACTIONS.get(db, id) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Response::Rejected(
                        RejectKind::FailedPrecondition,
                        format!("export {id} asked for no redaction: there are no originals to withhold or include"),
                    )
                }
                Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
            };
            let decide =
                Command::DecideExport { id: id.clone(), user: user.clone(), approve: *approve, reason: reason.clone() };
            let r = apply_export(db, batch, now_ms, &decide);
            if r == Response::Ok && *approve {
                red.include_original = Some(*include_original);
                REDACTIONS.put(db, batch, id, &red);
            }
            r
        }
        _ => Response::Rejected(RejectKind::FailedPrecondition, "not an export command".into()),
    }
}

//! Camera commands: adding, seeding and removing cameras, their sensitivity history,
//! viewing grants and recorder assignment.

use rocksdb::{WriteBatch, DB};

use super::seeded_camera_key;
use super::table::*;
use super::users::user_for_update;
use crate::meta::db::{cf, CF_CAMERAS, CF_SM};
use crate::meta::types::{Camera, NodeId, RejectKind, Request, Response, SensitivePeriod, Standby};

pub(super) fn camera_for_update(db: &DB, id: &str) -> Result<Camera, Response> {
    match CAMERAS.get(db, id) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Response::Rejected(RejectKind::NotFound, format!("camera {id:?} does not exist"))),
        Err(e) => Err(Response::StorageFailed(format!("catalog read failed: {e}"))),
    }
}

/// Records in the sensitivity history that `camera` became sensitive (`now`: true) or
/// stopped being so, at leader time `time_ms`. `was` is what the camera record said
/// before. A camera that was sensitive before the history existed gets a period reaching
/// back to the start of time when it stops, so none of its footage opens up.
fn record_sensitivity(
    db: &DB,
    batch: &mut WriteBatch,
    camera: &str,
    (was, now): (bool, bool),
    time_ms: i64,
) -> Result<(), Response> {
    use crate::meta::types::SENSITIVITY_MARGIN_MS as M;
    let mut periods: Vec<SensitivePeriod> = SENSITIVITY
        .get(db, camera)
        .map_err(|e| Response::StorageFailed(format!("catalog read failed: {e}")))?
        .unwrap_or_default();
    let open = periods.last_mut().filter(|p| p.to_ms.is_none());
    match (now, open) {
        (true, Some(_)) => return Ok(()),
        (true, None) => periods.push(SensitivePeriod { from_ms: time_ms.saturating_sub(M), to_ms: None }),
        (false, Some(p)) => p.to_ms = Some(time_ms.saturating_add(M)),
        (false, None) if was => {
            periods.push(SensitivePeriod { from_ms: i64::MIN, to_ms: Some(time_ms.saturating_add(M)) })
        }
        (false, None) => return Ok(()),
    }
    SENSITIVITY.put(db, batch, camera, &periods);
    Ok(())
}

pub(super) fn add_camera(db: &DB, batch: &mut WriteBatch, req: &Request, cam: &Camera) -> Response {
    match CAMERAS.get(db, &cam.id) {
        Ok(Some(_)) => Response::Rejected(RejectKind::AlreadyExists, format!("camera {:?} already exists", cam.id)),
        Ok(None) => {
            let mut cam = cam.clone();
            cam.added_ms = req.time_ms;
            if cam.sensitive {
                if let Err(r) = record_sensitivity(db, batch, &cam.id, (false, true), req.time_ms) {
                    return r;
                }
            }
            CAMERAS.put(db, batch, &cam.id, &cam);
            Response::Ok
        }
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

/// Registers a camera from a config file, once per cluster (`Command::SeedCamera`).
pub(super) fn seed_camera(db: &DB, batch: &mut WriteBatch, req: &Request, cam: &Camera) -> Response {
    let key = seeded_camera_key(&cam.id);
    match db.get_pinned_cf(cf(db, CF_SM), &key) {
        Ok(Some(_)) => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!(
                    "camera {:?} was registered from a config file before; seed cameras are registered once, \
                 so one an administrator removed stays removed (add it with `custos camera add`)",
                    cam.id
                ),
            )
        }
        Ok(None) => {}
        Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
    }
    SEEDED_CAMERAS.put(db, batch, &key, &req.time_ms);
    match db.get_pinned_cf(cf(db, CF_CAMERAS), cam.id.as_bytes()) {
        // Registered before seeds were recorded: the mark is all that is new.
        Ok(Some(_)) => Response::Ok,
        Ok(None) => add_camera(db, batch, req, cam),
        Err(e) => Response::StorageFailed(format!("catalog read failed: {e}")),
    }
}

/// Removes a camera; its footage and sensitivity history stay.
pub(super) fn remove_camera(db: &DB, batch: &mut WriteBatch, req: &Request, id: &str) -> Response {
    match camera_for_update(db, id) {
        Ok(cam) => {
            if cam.sensitive {
                if let Err(r) = record_sensitivity(db, batch, id, (true, false), req.time_ms) {
                    return r;
                }
            }
            CAMERAS.delete(db, batch, id);
            STANDBY.delete(db, batch, id);
            // Its reference still goes with it: a camera re-added under the id is a new
            // view, whose first healthy picture becomes its reference.
            PICTURE_REFS.delete(db, batch, id);
            Response::Ok
        }
        Err(r) => r,
    }
}

/// Allows (or stops allowing) `user` to view a sensitive camera.
pub(super) fn grant_camera(db: &DB, batch: &mut WriteBatch, user: &str, camera: &str, grant: bool) -> Response {
    if let Err(r) = camera_for_update(db, camera) {
        return r;
    }
    match user_for_update(db, user) {
        Ok(mut u) => {
            u.grants.retain(|g| g != camera);
            if grant {
                u.grants.push(camera.to_string());
                u.grants.sort();
            }
            USERS.put(db, batch, user, &u);
            Response::Ok
        }
        Err(r) => r,
    }
}

/// Marks a camera sensitive or not, recording the change in its sensitivity history.
pub(super) fn set_sensitive(db: &DB, batch: &mut WriteBatch, req: &Request, camera: &str, sensitive: bool) -> Response {
    match camera_for_update(db, camera) {
        Ok(mut c) => {
            if let Err(r) = record_sensitivity(db, batch, camera, (c.sensitive, sensitive), req.time_ms) {
                return r;
            }
            c.sensitive = sensitive;
            CAMERAS.put(db, batch, camera, &c);
            Response::Ok
        }
        Err(r) => r,
    }
}

/// Replaces a camera's privacy zones (none: removes them).
pub(super) fn set_privacy_zones(
    db: &DB,
    batch: &mut WriteBatch,
    camera: &str,
    zones: &[crate::zones::Zone],
) -> Response {
    if let Err(r) = camera_for_update(db, camera) {
        return r;
    }
    if let Err(why) = crate::zones::validate_all(zones) {
        return Response::Rejected(RejectKind::InvalidArgument, format!("camera {camera}: {why}"));
    }
    if zones.is_empty() {
        PRIVACY_ZONES.delete(db, batch, camera);
    } else {
        PRIVACY_ZONES.put(db, batch, camera, &zones.to_vec());
    }
    Response::Ok
}

/// Moves a camera to another recorder, which must be an active node.
pub(super) fn assign_camera(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    camera: &str,
    recorder: NodeId,
) -> Response {
    match NODES.get(db, &recorder) {
        Ok(Some(n)) if !n.retired => {}
        _ => {
            return Response::Rejected(
                RejectKind::FailedPrecondition,
                format!("node {recorder} is not an active member"),
            )
        }
    }
    match camera_for_update(db, camera) {
        Ok(mut c) => {
            let from = c.recorder;
            c.recorder = recorder;
            CAMERAS.put(db, batch, camera, &c);
            // A standby made recorder stands by no more (the leader chooses another), and
            // resumes from the pictures it held: as with a takeover, the footage committed
            // so far ends at the seam.
            match standby_of(db, camera) {
                Ok(mut sb) if sb.node == Some(recorder) => {
                    let seam = match super::segments::last_end(db, camera) {
                        Ok(e) => e,
                        Err(r) => return r,
                    };
                    sb.node = None;
                    sb.seam_ms = seam.or(sb.seam_ms);
                    sb.last_takeover = Some((req.time_ms, from, recorder));
                    STANDBY.put(db, batch, camera, &sb);
                }
                // A cold move: the new recorder starts afresh, so the former one's late
                // segments are its only footage of that time; no seam holds them back.
                Ok(mut sb) if sb.seam_ms.is_some() => {
                    sb.seam_ms = None;
                    STANDBY.put(db, batch, camera, &sb);
                }
                Ok(_) => {}
                Err(r) => return r,
            }
            Response::Ok
        }
        Err(r) => r,
    }
}

fn standby_of(db: &DB, camera: &str) -> Result<Standby, Response> {
    STANDBY
        .get(db, camera)
        .map(Option::unwrap_or_default)
        .map_err(|e| Response::StorageFailed(format!("catalog read failed: {e}")))
}

/// Marks a camera for a hot standby or unmarks it (`Command::SetStandby`).
pub(super) fn set_standby(db: &DB, batch: &mut WriteBatch, camera: &str, wanted: bool) -> Response {
    if let Err(r) = camera_for_update(db, camera) {
        return r;
    }
    let mut sb = match standby_of(db, camera) {
        Ok(sb) => sb,
        Err(r) => return r,
    };
    sb.wanted = wanted;
    if !wanted {
        sb.node = None;
    }
    STANDBY.put(db, batch, camera, &sb);
    Response::Ok
}

/// The leader's choice of a camera's standby (`Command::AssignStandby`).
pub(super) fn assign_standby(db: &DB, batch: &mut WriteBatch, camera: &str, node: Option<NodeId>) -> Response {
    let cam = match camera_for_update(db, camera) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut sb = match standby_of(db, camera) {
        Ok(sb) => sb,
        Err(r) => return r,
    };
    // The leader gives standbys to marked cameras, or to every camera when its
    // configuration says so (`standby_all_cameras`): the mark is not checked here.
    if let Some(n) = node {
        if n == cam.recorder {
            return Response::Rejected(
                RejectKind::InvalidArgument,
                format!("node {n} records camera {camera:?}; its standby must be another node"),
            );
        }
        match NODES.get(db, &n) {
            Ok(Some(rec)) if !rec.retired => {}
            Ok(_) => {
                return Response::Rejected(RejectKind::FailedPrecondition, format!("node {n} is not an active member"))
            }
            Err(e) => return Response::StorageFailed(format!("catalog read failed: {e}")),
        }
    }
    sb.node = node;
    STANDBY.put(db, batch, camera, &sb);
    Response::Ok
}

/// A standby takes its camera over from the failed recorder (`Command::TakeOver`).
pub(super) fn take_over(
    db: &DB,
    batch: &mut WriteBatch,
    req: &Request,
    camera: &str,
    from: NodeId,
    to: NodeId,
) -> Response {
    let mut cam = match camera_for_update(db, camera) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut sb = match standby_of(db, camera) {
        Ok(sb) => sb,
        Err(r) => return r,
    };
    if cam.recorder != from || sb.node != Some(to) {
        return Response::Rejected(
            RejectKind::FailedPrecondition,
            format!(
                "camera {camera:?} is recorded by node {} with standby {}, not by {from} with standby {to}: \
                 another takeover or reassignment came first",
                cam.recorder,
                sb.node.map_or("none".to_string(), |n| n.to_string())
            ),
        );
    }
    let seam = match super::segments::last_end(db, camera) {
        Ok(e) => e,
        Err(r) => return r,
    };
    cam.recorder = to;
    CAMERAS.put(db, batch, camera, &cam);
    sb.node = None;
    sb.seam_ms = seam.or(sb.seam_ms);
    sb.last_takeover = Some((req.time_ms, from, to));
    STANDBY.put(db, batch, camera, &sb);
    Response::TookOver { seam_ms: seam }
}

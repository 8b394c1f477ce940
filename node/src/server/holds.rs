//! The Holds service: place holds, list them, approve their release. Every change is one
//! Raft entry with its audit record.

use custos_proto::v1 as pb;
use custos_proto::v1::holds_server::Holds;
use tonic::{Request, Response, Status};

use super::Services;
use crate::access::Action;
use crate::audit::{AuditAction, Outcome};
use crate::meta::{Command, Response as Applied};
use crate::retention::hold::HOLD_CAMERAS_MAX;
use crate::retention::Hold;

fn to_pb(h: &Hold) -> pb::Hold {
    pb::Hold {
        id: h.id.clone(),
        case_id: h.case_id.clone(),
        cameras: h.cameras.clone(),
        from_ms: h.from_ms,
        to_ms: h.to_ms.unwrap_or(0),
        reason: h.reason.clone(),
        placed_by: h.placed_by.clone(),
        placed_ms: h.placed_ms,
        release_approved_by: h.release_approvals.iter().map(|(u, _)| u.clone()).collect(),
        released_ms: h.released_ms.unwrap_or(0),
    }
}

impl Services {
    async fn hold_by_id(&self, id: String) -> Result<Hold, Status> {
        let id2 = id.clone();
        self.meta
            .read(move |c| c.hold(&id2))
            .await?
            .ok_or_else(|| Status::not_found(format!("hold {id} does not exist")))
    }
}

#[tonic::async_trait]
impl Holds for Services {
    async fn place_hold(&self, req: Request<pb::PlaceHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        let caller = self.guard(&req, Action::PlaceHold, false).await?;
        let r = req.into_inner();
        let case = r.case_id.trim();
        if case.is_empty() || case.len() > 64 {
            return Err(Status::invalid_argument(
                "--case is required (1 to 64 characters): the incident or case the hold is for",
            ));
        }
        if r.cameras.is_empty() || r.cameras.len() > HOLD_CAMERAS_MAX {
            return Err(Status::invalid_argument(format!("name 1 to {HOLD_CAMERAS_MAX} cameras with --camera")));
        }
        for c in &r.cameras {
            crate::ingest::validate_camera_id(c).map_err(Status::invalid_argument)?;
        }
        if r.from_ms <= 0 {
            return Err(Status::invalid_argument("--from is required: where the hold starts"));
        }
        if r.to_ms != 0 && r.to_ms <= r.from_ms {
            return Err(Status::invalid_argument(
                "--to must be after --from (leave it out for a hold that runs from now on)",
            ));
        }
        crate::access::validate_purpose(&r.reason)
            .map_err(|e| Status::invalid_argument(e.replace("purpose", "reason")))?;
        let cams = r.cameras.clone();
        let unknown: Vec<String> = self
            .meta
            .read(move |c| {
                let mut unknown = Vec::new();
                for id in cams {
                    if c.camera(&id)?.is_none() && c.last_segment(&id)?.is_none() {
                        unknown.push(id);
                    }
                }
                Ok(unknown)
            })
            .await?;
        if !unknown.is_empty() {
            return Err(Status::not_found(format!("unknown cameras: {}", unknown.join(", "))));
        }
        let hold = Hold {
            id: String::new(),
            case_id: case.to_string(),
            cameras: r.cameras.clone(),
            from_ms: r.from_ms,
            to_ms: (r.to_ms != 0).then_some(r.to_ms),
            reason: r.reason.trim().to_string(),
            placed_by: caller.who.name.clone(),
            placed_ms: 0,
            release_approvals: vec![],
            released_ms: None,
        };
        let mut ev = caller.event(AuditAction::HoldPlace, Outcome::Ok);
        ev.cameras = r.cameras;
        ev.from_ms = Some(r.from_ms);
        ev.to_ms = hold.to_ms;
        ev.purpose = hold.reason.clone();
        ev.detail = format!("case {}", hold.case_id);
        let id = match self.meta.propose_audited(Command::PlaceHold(hold), ev).await? {
            Applied::Created(id) => id,
            other => return Err(Status::internal(format!("unexpected response {other:?}"))),
        };
        tracing::info!(hold = %id, case = %case, user = %caller.who.name, "hold placed");
        Ok(Response::new(to_pb(&self.hold_by_id(id).await?)))
    }

    async fn list_holds(&self, req: Request<pb::ListHoldsRequest>) -> Result<Response<pb::ListHoldsResponse>, Status> {
        self.guard(&req, Action::ViewHolds, false).await?;
        let all = req.into_inner().all;
        let holds = self.meta.read(|c| c.holds()).await?;
        Ok(Response::new(pb::ListHoldsResponse {
            holds: holds.iter().filter(|h| all || h.active()).map(to_pb).collect(),
        }))
    }

    async fn approve_release(&self, req: Request<pb::ApproveReleaseRequest>) -> Result<Response<pb::Hold>, Status> {
        let caller = self.guard(&req, Action::ApproveHoldRelease, false).await?;
        let id = req.into_inner().id.trim().to_string();
        if id.is_empty() || id.len() > 16 {
            return Err(Status::invalid_argument("a hold id looks like H-000012, as `custos hold list` shows"));
        }
        let cmd = Command::ApproveHoldRelease { id: id.clone(), user: caller.who.name.clone() };
        self.admin_change(&caller, AuditAction::HoldRelease, format!("hold {id}"), cmd).await?;
        Ok(Response::new(to_pb(&self.hold_by_id(id).await?)))
    }
}

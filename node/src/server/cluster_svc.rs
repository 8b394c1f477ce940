//! The Cluster service: the node list with health and disk, join tokens, retiring nodes.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use custos_proto::v1 as pb;
use custos_proto::v1::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use super::Services;
use crate::access::Action;
use crate::audit::AuditAction;
use crate::meta::{Command, JoinTokenRecord, NodeId};

/// Default lifetime of a join token.
pub const JOIN_TOKEN_TTL_DEFAULT_S: u64 = 3600;
/// Longest lifetime of a join token.
pub const JOIN_TOKEN_TTL_MAX_S: u64 = 7 * 86_400;

#[tonic::async_trait]
impl Cluster for Services {
    async fn list_nodes(&self, req: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        self.guard(&req, Action::ViewStatus, false).await?;
        let (nodes, cams) = self.meta.read(|c| Ok((c.nodes()?, c.cameras()?))).await?;
        let m = self.meta.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
        let leader = m.current_leader.unwrap_or(0);
        // Clock offsets are measured from this node; shown against the median of all.
        let now_ms = self.clock.now_ms();
        let median = crate::cluster::health::median_offset(
            nodes
                .iter()
                .filter(|n| !n.retired && self.health.alive(n.id))
                .filter_map(|n| self.health.clock_offset_ms(n.id, now_ms))
                .collect(),
        );
        let out = nodes
            .iter()
            .map(|n| {
                let h = self.health.get(n.id);
                let offset = self.health.clock_offset_ms(n.id, now_ms);
                let raft_role = if n.retired {
                    "retired"
                } else if n.id == leader {
                    "leader"
                } else if voters.contains(&n.id) {
                    "follower"
                } else if members.contains(&n.id) {
                    "learner"
                } else {
                    "joining"
                };
                let up = !n.retired && h.last_ok.is_some() && self.health.alive(n.id);
                pb::NodeInfo {
                    id: n.id,
                    campus: n.campus.clone(),
                    addr: n.addr.clone(),
                    raft_role: raft_role.into(),
                    health: if up { "up" } else { "down" }.into(),
                    last_seen_ago_ms: h.last_ok.map(|t| t.elapsed().as_millis() as u64).unwrap_or(u64::MAX),
                    disk_free_bytes: h.disk_free,
                    disk_total_bytes: h.disk_total,
                    cameras: cams.iter().filter(|c| c.recorder == n.id).count() as u32,
                    joined_ms: n.joined_ms,
                    disk_low: !n.retired && h.disk_low(),
                    disk_floor_bytes: h.disk_floor,
                    clock_offset_ms: match (offset, median) {
                        (Some(o), Some(m)) if !n.retired => o - m,
                        _ => 0,
                    },
                    clock_known: !n.retired && offset.is_some() && median.is_some(),
                }
            })
            .collect();
        // The leader runs repair; a follower reports the figure the leader last pinged.
        let under = if leader == self.meta.node_id {
            self.repair_stats.under_replicated.load(Ordering::Relaxed)
        } else {
            self.health.get(leader).under_replicated
        };
        Ok(Response::new(pb::ListNodesResponse {
            nodes: out,
            leader,
            replication_factor: self.replicator.factor as u32,
            under_replicated: under,
        }))
    }

    async fn create_join_token(
        &self,
        req: Request<pb::CreateJoinTokenRequest>,
    ) -> Result<Response<pb::CreateJoinTokenResponse>, Status> {
        let caller = self.guard(&req, Action::ManageNodes, false).await?;
        let Some(pki) = &self.cluster.pki else {
            return Err(Status::failed_precondition(
                "this node serves without TLS (insecure_plaintext); a cluster needs TLS between its nodes",
            ));
        };
        let ttl = match req.get_ref().ttl_s {
            0 => JOIN_TOKEN_TTL_DEFAULT_S,
            t if t > JOIN_TOKEN_TTL_MAX_S => {
                return Err(Status::invalid_argument("a join token may live at most 7 days"));
            }
            t => t,
        };
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let secret = hex::encode(secret);
        let fp = crate::tls::ca_fingerprint(&crate::tls::first_cert_der(&pki.ca_pem)?);
        let token = format!("cjt1.{secret}.{fp}");
        let expires_ms = self.clock.now_ms() + (ttl * 1000) as i64;
        let rec = JoinTokenRecord { created_by: caller.who.name.clone(), created_ms: 0, expires_ms, used_by: None };
        let hash = *blake3::hash(secret.as_bytes()).as_bytes();
        // The token is inert until an approver accepts the change: a node presenting it
        // before then is refused and receives nothing. Its lifetime counts from then.
        let change_id = self
            .admin_change(
                &caller,
                AuditAction::JoinToken,
                format!("single-use join token {} valid {ttl} s", &hex::encode(hash)[..12]),
                Command::CreateJoinToken { token_hash: hash, token: rec },
            )
            .await?
            .unwrap_or(0);
        Ok(Response::new(pb::CreateJoinTokenResponse { token, expires_ms, change_id }))
    }

    async fn remove_node(
        &self,
        req: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        let caller = self.guard(&req, Action::ManageNodes, false).await?;
        let id = req.get_ref().id;
        let cmd = Command::RetireNode { id };
        if let Some(change_id) =
            self.admin_change(&caller, AuditAction::NodeRemove, format!("node {id} retired"), cmd).await?
        {
            return Ok(Response::new(pb::RemoveNodeResponse { change_id }));
        }
        tracing::warn!(node = id, user = %caller.who.name, "node retired: it leaves the group, its cameras and copies move");
        Ok(Response::new(pb::RemoveNodeResponse { change_id: 0 }))
    }

    async fn confirm_clock(
        &self,
        req: Request<pb::ConfirmClockRequest>,
    ) -> Result<Response<pb::ConfirmClockResponse>, Status> {
        let caller = self.guard(&req, Action::ManageNodes, false).await?;
        let id = req.get_ref().id;
        let cmd = Command::ConfirmClock { node: id };
        let detail = format!("node {id}'s clock jump confirmed: it expires footage again at its new time");
        let change_id = self
            .admin_change(&caller, AuditAction::ClockConfirm, detail, cmd)
            .await?
            .ok_or_else(|| Status::internal("a clock confirmation must wait for an approver, but it was not queued"))?;
        Ok(Response::new(pb::ConfirmClockResponse { change_id }))
    }

    async fn verify_backup(
        &self,
        req: Request<pb::VerifyBackupRequest>,
    ) -> Result<Response<pb::VerifyBackupResponse>, Status> {
        self.guard(&req, Action::ManageNodes, true).await?;
        let Some(cfg) = &self.backup else {
            return Err(Status::failed_precondition(
                "backup is not configured on this node: add a [backup] section to its custos.toml, or ask a node that has one",
            ));
        };
        let sample = req.get_ref().sample as usize;
        let cluster_key = self.cluster.signing.as_ref().map(|k| k.public_hex());
        let r = crate::backup::verify::verify(cfg, &self.meta, &self.keys, cluster_key, sample).await?;
        tracing::info!(checked = r.checked, ok = r.ok, missing = r.missing.len(), corrupt = r.corrupt.len(), snapshot = %r.snapshot, "backup verified");
        Ok(Response::new(pb::VerifyBackupResponse {
            snapshot: r.snapshot,
            snapshot_created_ms: r.snapshot_created_ms,
            snapshot_problem: r.snapshot_problem.unwrap_or_default(),
            backed_up: r.backed_up,
            checked: r.checked,
            ok: r.ok,
            missing: r.missing,
            corrupt: r.corrupt,
        }))
    }
}

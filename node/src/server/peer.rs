//! The node-to-node services: `Peer` (Raft, forwarded writes, blobs, pings), served only
//! to current members presenting their own node certificate from the cluster CA
//! ([`Services::peer_node`]: the id in the certificate, not retired, its key pinned),
//! and `Join`, which admits a new node that presents a single-use join token.

use custos_proto::v1 as pb;
use custos_proto::v1::join_server::Join;
use custos_proto::v1::peer_server::Peer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::Services;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::cluster::replicate::BLOB_CHUNK;
use crate::meta::network;
use crate::meta::schema::decode_message;
use crate::meta::types::encode;
use crate::meta::{Command, NodeId, Response as MetaResponse};
use crate::segment::Hash;

/// Largest blob a peer may send (a 60-second segment at 60 Mbit/s is 450 MB).
pub const BLOB_MAX_BYTES: u64 = 1 << 30;

/// Commands only the leader's own duties propose (failover, repair, expiry, alarms,
/// backup, the cluster version). A node that forwards one is not the leader; the new leader proposes its
/// own, so refusing them costs nothing and keeps a member from forging them.
pub fn leader_only(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::AssignCamera { .. } => "camera assignments",
        Command::AssignStandby { .. } => "standby assignments",
        Command::AddReplicas(_) => "replica additions",
        Command::ExpireSegments { .. } => "expiry",
        Command::Alarms(_) => "alarm changes",
        Command::MarkBackedUp(_) => "backup confirmations",
        Command::RegisterNode { founder: Some(_), .. } => "the founding node's registration",
        Command::SetClusterVersion(_) => "cluster version changes",
        _ => return None,
    })
}

/// The user a command names as the one who acted, if it names one.
pub fn acting_user(command: &Command) -> Option<&str> {
    match command {
        Command::ApproveHoldRelease { user, .. }
        | Command::DecideExport { user, .. }
        | Command::AckAlarm { user, .. }
        | Command::DecideChange { user, .. }
        | Command::ResolveFault { user, .. }
        | Command::AcceptHandover { user, .. } => Some(user),
        Command::PlaceHold(h) => Some(&h.placed_by),
        Command::RequestExport(r) => Some(&r.requester),
        Command::RecordDuty(d) => Some(&d.user),
        Command::RequestChange(c) => Some(&c.requested_by),
        Command::ReportFault(f) => Some(&f.reported_by),
        Command::SignDuty(s) => Some(&s.user),
        // Forwarded, a token is only ever a renewal by the user it is for.
        Command::IssueToken { token, .. } => Some(&token.user),
        Command::SetPassword { user, .. } => Some(user),
        _ => None,
    }
}

/// Commands that only ever take effect as an accepted change (applied inside the state
/// machine, never proposed on their own by the API): a forwarded one would be a way
/// round the second person.
fn only_through_the_queue(command: &Command) -> bool {
    use crate::access::Role;
    match command {
        Command::CreateUser { user, .. } => !matches!(user.role, Role::Auditor | Role::Admin),
        Command::GrantCamera { grant, .. } => *grant,
        Command::SetSensitive { sensitive, .. } => !*sensitive,
        Command::ConfirmClock { .. } | Command::SetPictureReference { still: None, .. } => true,
        Command::RemoveCamera { .. }
        | Command::CreateJoinToken { .. }
        | Command::RetireNode { .. }
        | Command::DefineShift(_)
        | Command::ResetPassword { .. }
        | Command::FoundCluster(_) => true,
        _ => false,
    }
}

/// What a forwarded write may carry, whoever forwards it (pure part): no leader-only
/// command, and a command naming who acted only with that person's audit entry.
pub fn check_forwarded(command: &Command, audit: Option<&AuditEvent>) -> Result<(), String> {
    if only_through_the_queue(command) {
        return Err(format!(
            "{} is only ever the effect of a change an approver accepted; a forwarded one is refused",
            crate::meta::Request { time_ms: 0, command: command.clone(), audit: None }
        ));
    }
    if let Some(what) = leader_only(command) {
        return Err(format!(
            "only the leader proposes {what}; a forwarded one is refused (the sender is not the leader, or not a node)"
        ));
    }
    if let Some(user) = acting_user(command) {
        match audit {
            Some(ev) if ev.user == user => {}
            Some(ev) => {
                return Err(format!(
                    "the command names user {user:?} but its audit entry names {:?}; they must be the same person",
                    ev.user
                ))
            }
            None => return Err(format!("a command by user {user:?} must carry that user's audit entry")),
        }
    }
    Ok(())
}

/// A forwarded commit names its sender as the node that sealed each segment (the first
/// of its copies; the recorder lists the nodes it replicated to after itself). Checked on
/// the command alone, so a recorder's own commits never depend on what the receiving node
/// has applied. Without it, any node's certificate and key (a stolen disk holds them)
/// could commit footage of its making as sealed by the camera's real recorder.
pub fn sealed_by_sender(from: NodeId, command: &Command) -> Result<(), String> {
    let Command::CommitSegments(segs) = command else { return Ok(()) };
    match segs.iter().find(|s| s.replicas.first() != Some(&from)) {
        Some(s) => Err(format!(
            "segment of camera {:?} at {} names node {} as its sealer; a node commits only segments it sealed itself",
            s.camera,
            s.start_ms,
            s.replicas.first().map_or("none".to_string(), |n| n.to_string())
        )),
        None => Ok(()),
    }
}

fn hash32(b: &[u8], what: &str) -> Result<Hash, Status> {
    b.try_into().map_err(|_| Status::invalid_argument(format!("{what} must be 32 bytes")))
}

impl Services {
    /// The node a peer call comes from: the id its certificate names (`custos node N`,
    /// the certificate already verified against the cluster CA by the TLS layer), if
    /// that node is a member. Refuses callers without a certificate, certificates that
    /// name no node, removed (retired) nodes — the catalog's retired ids are the
    /// revocation list, so a removal binds on every node the moment it applies it — and
    /// ids this node has never heard of. A node that does not yet find itself in its
    /// catalog (it has just joined and is still receiving the log) accepts unknown ids,
    /// never retired ones.
    async fn peer_node<T>(&self, req: &Request<T>) -> Result<NodeId, Status> {
        let certs = req.peer_certs();
        let Some(leaf) = certs.as_ref().and_then(|c| c.first()) else {
            return Err(Status::permission_denied(
                "node-to-node calls need a certificate from the cluster CA (mutual TLS); this caller presented none",
            ));
        };
        let id = crate::tls::node_id_of_cert(leaf.as_ref()).map_err(|e| {
            Status::permission_denied(format!("node-to-node calls need a node certificate of this cluster: {e}"))
        })?;
        let me = self.meta.node_id;
        let (node, know_myself, pinned) =
            self.meta.read(move |c| Ok((c.node(id)?, c.node(me)?.is_some(), c.node_key(id)?))).await?;
        // A certificate minted with the cluster CA (every node holds its key) for a
        // pinned node id carries another key: refused.
        if let Some(pin) = pinned {
            if crate::tls::cert_key_hash(leaf.as_ref()).ok() != Some(pin) {
                tracing::warn!(node = id, peer = ?req.remote_addr(), "refused a peer call: the certificate is not the one pinned for this node id");
                return Err(Status::permission_denied(format!(
                    "the caller's certificate names node {id} but is not the certificate node {id} joined with \
                     (its key differs from the one the catalog pins): a certificate minted with the cluster CA \
                     cannot stand in for a node"
                )));
            }
        }
        match node {
            Some(n) if n.retired => {
                tracing::warn!(node = id, peer = ?req.remote_addr(), "refused a peer call made with the certificate of a removed node");
                Err(Status::permission_denied(format!(
                    "the caller's certificate is node {id}'s, and node {id} was removed from the cluster \
                     (custos node remove): its peer rights are revoked. A removed machine rejoins only as a new \
                     node: a fresh data directory and a new join token"
                )))
            }
            Some(_) => Ok(id),
            None if !know_myself => Ok(id),
            None => Err(Status::permission_denied(format!(
                "the caller's certificate names node {id}, which is not a member of this cluster"
            ))),
        }
    }
}

#[tonic::async_trait]
impl Peer for Services {
    async fn raft(&self, req: Request<pb::RaftMessage>) -> Result<Response<pb::RaftMessage>, Status> {
        let from = self.peer_node(&req).await?;
        let m = req.into_inner();
        let payload = match self.meta.serve_raft(&m.kind, &m.payload, Some(from)).await {
            Ok((p, from_leader)) => {
                if from_leader {
                    self.health.note_leader_contact();
                }
                p
            }
            Err(e @ network::ServeError::WrongSender { .. }) => {
                tracing::warn!(node = from, error = %e, "refused a Raft message claiming another sender");
                return Err(Status::permission_denied(e.to_string()));
            }
            Err(e) => return Err(Status::invalid_argument(e.to_string())),
        };
        Ok(Response::new(pb::RaftMessage { kind: m.kind, payload }))
    }

    async fn propose(&self, req: Request<pb::ProposeRequest>) -> Result<Response<pb::ProposeReply>, Status> {
        let from = self.peer_node(&req).await?;
        let (command, audit): (Command, Option<AuditEvent>) =
            decode_message(&req.into_inner().payload).map_err(Status::invalid_argument)?;
        let refuse = |why: String| {
            let what = crate::meta::Request { time_ms: 0, command: command.clone(), audit: None }.to_string();
            tracing::warn!(node = from, command = %what, reason = %why, "refused a forwarded write");
            Status::permission_denied(format!("forwarded write from node {from} refused: {why}"))
        };
        check_forwarded(&command, audit.as_ref()).map_err(refuse)?;
        sealed_by_sender(from, &command).map_err(refuse)?;
        // An entry in a user's name must name a user who exists, is enabled and has
        // that role ("-" is an unauthenticated caller or the system).
        if let Some(ev) = audit.as_ref().filter(|ev| ev.user != "-") {
            let name = ev.user.clone();
            let user = self.meta.read(move |c| c.user(&name)).await?;
            let why = match user {
                None => Some(format!("its audit entry names user {:?}, who does not exist", ev.user)),
                Some(u) if u.disabled => Some(format!("its audit entry names user {:?}, who is disabled", ev.user)),
                Some(u) if u.role.as_str() != ev.role => Some(format!(
                    "its audit entry gives user {:?} the role {:?}, but their role is {}",
                    ev.user,
                    ev.role,
                    u.role.as_str()
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(refuse(why));
            }
        }
        let res = self.meta.submit_forwarded(command, audit).await;
        Ok(Response::new(pb::ProposeReply { payload: encode(&res) }))
    }

    async fn put_blob(&self, req: Request<Streaming<pb::BlobChunk>>) -> Result<Response<pb::PutBlobReply>, Status> {
        self.peer_node(&req).await?;
        let req_peer = req.remote_addr();
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(pb::BlobChunk { item: Some(pb::blob_chunk::Item::Header(h)) })) => h,
            Some(Err(s)) => return Err(s),
            _ => return Err(Status::invalid_argument("a blob transfer must start with its header")),
        };
        let content_hash = hash32(&header.content_hash, "content_hash")?;
        let blob_hash = hash32(&header.blob_hash, "blob_hash")?;
        if header.blob_bytes > BLOB_MAX_BYTES {
            return Err(Status::invalid_argument(format!("blob of {} bytes is over the limit", header.blob_bytes)));
        }
        let mut blob = Vec::with_capacity(header.blob_bytes as usize);
        while let Some(chunk) = stream.next().await {
            if let Some(pb::blob_chunk::Item::Data(d)) = chunk?.item {
                if (blob.len() + d.len()) as u64 > header.blob_bytes {
                    return Err(Status::invalid_argument("blob is longer than its header says"));
                }
                blob.extend_from_slice(&d);
            }
        }
        if blake3::hash(&blob).as_bytes() != &blob_hash {
            let from = req_peer.map(|a| a.to_string()).unwrap_or_default();
            tracing::warn!(content = %hex::encode(content_hash), peer = %from, bytes = blob.len(), "a peer's blob arrived damaged (BLAKE3 mismatch); refused, nothing stored. Repeated, it points at the network or the sender's disk");
            return Err(Status::data_loss(format!(
                "blob {} arrived damaged (its BLAKE3 does not match); nothing was stored",
                hex::encode(content_hash)
            )));
        }
        let store = self.store.clone();
        let existed = store.contains(&content_hash);
        let stored_hash = tokio::task::spawn_blocking(move || store.put(&content_hash, &blob, &blob_hash))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        if stored_hash != blob_hash {
            return Err(Status::failed_precondition(format!(
                "this node already holds a different sealed copy of content {}",
                hex::encode(content_hash)
            )));
        }
        Ok(Response::new(pb::PutBlobReply { stored: !existed }))
    }

    type GetBlobStream = ReceiverStream<Result<pb::BlobChunk, Status>>;

    async fn get_blob(&self, req: Request<pb::GetBlobRequest>) -> Result<Response<Self::GetBlobStream>, Status> {
        self.peer_node(&req).await?;
        let content_hash = hash32(&req.get_ref().content_hash, "content_hash")?;
        let store = self.store.clone();
        let blob = tokio::task::spawn_blocking(move || store.get(&content_hash))
            .await
            .map_err(|e| Status::internal(e.to_string()))??
            .ok_or_else(|| Status::not_found(format!("this node does not hold blob {}", hex::encode(content_hash))))?;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let header = pb::BlobHeader {
                content_hash: content_hash.to_vec(),
                blob_hash: blake3::hash(&blob).as_bytes().to_vec(),
                blob_bytes: blob.len() as u64,
            };
            if tx.send(Ok(pb::BlobChunk { item: Some(pb::blob_chunk::Item::Header(header)) })).await.is_err() {
                return;
            }
            for c in blob.chunks(BLOB_CHUNK) {
                if tx.send(Ok(pb::BlobChunk { item: Some(pb::blob_chunk::Item::Data(c.to_vec())) })).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn ping(&self, req: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        let from = self.peer_node(&req).await?;
        if req.get_ref().from != from {
            return Err(Status::permission_denied(format!(
                "this ping claims to come from node {}, but the caller's certificate is node {from}'s; a node speaks \
                 only for itself",
                req.get_ref().from
            )));
        }
        let p = req.get_ref();
        if p.skew_known && self.meta.metrics().current_leader == Some(from) {
            self.health.note_skew_by_leader(p.skew_seen_ms);
        }
        let (free, total, floor) = self.health.own_disk();
        Ok(Response::new(pb::PingReply {
            clock_jump_ms: self.health.workers.clock_jump.jump_ms(),
            picture_findings: self
                .health
                .workers
                .picture
                .findings()
                .into_iter()
                .map(|(camera, detail)| pb::PictureFinding { camera, detail })
                .collect(),
            node_id: self.meta.node_id,
            disk_free_bytes: free,
            disk_total_bytes: total,
            disk_floor_bytes: floor,
            campus: self.cluster.campus.clone(),
            wall_clock_ms: self.clock.now_ms(),
            format_max: crate::meta::types::FORMAT_CURRENT.into(),
            scrub_unrepaired: self.health.workers.scrub.unrepaired_count(),
            scrub_last_finding_ms: self.health.workers.scrub.last_finding_ms.load(std::sync::atomic::Ordering::Relaxed),
            under_replicated: if self.meta.is_leader() {
                self.repair_stats.under_replicated.load(std::sync::atomic::Ordering::Relaxed)
            } else {
                u64::MAX
            },
        }))
    }
}

pub use custos_formats::fields::validate_campus;

/// Splits a join token `cjt1.<secret>.<ca fingerprint>` into the secret's hash (what the
/// catalog keeps) and the fingerprint.
pub fn parse_join_token(token: &str) -> Result<(Hash, String), String> {
    let (secret, fp) = custos_formats::fields::parse_join_token(token)?;
    Ok((*blake3::hash(secret.as_bytes()).as_bytes(), fp.to_string()))
}

#[tonic::async_trait]
impl Join for Services {
    async fn join(&self, req: Request<pb::JoinRequest>) -> Result<Response<pb::JoinReply>, Status> {
        let client = req.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "-".into());
        let r = req.into_inner();
        let (token_hash, _) = parse_join_token(&r.token).map_err(Status::invalid_argument)?;
        validate_campus(&r.campus).map_err(Status::invalid_argument)?;
        if r.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(Status::invalid_argument(format!(
                "listen address {:?} is not host:port with an IP address other nodes can reach",
                r.addr
            )));
        }
        let Some(pki) = &self.cluster.pki else {
            return Err(Status::failed_precondition(
                "this node serves without TLS; a cluster needs TLS between its nodes",
            ));
        };
        // Check the token against the local catalog first: a wrong, used or expired token
        // commits nothing (it is counted by the throttle, audited only within its
        // budget). The state machine checks again when the registration is applied.
        let now = self.clock.now_ms();
        let known = self.meta.read(move |c| c.join_token(&token_hash)).await?;
        let refused = match known {
            None => Some(match self.meta.read(move |c| c.join_token_change(&token_hash)).await? {
                // Inert until approved: the node receives nothing, and may try again.
                Some(ch) => match ch.state_at(now) {
                    "pending" => format!(
                        "this join token waits for an approver (change {}): nothing is handed out until one runs                          `custos change approve {}`; then run this join again",
                        ch.id, ch.id
                    ),
                    state => format!("the change that asked for this join token ({}) was {state}; ask for a new one", ch.id),
                },
                None => "unknown join token: it is wrong, or from another cluster; print one with `custos node join-token`"
                    .to_string(),
            }),
            Some(t) if t.used_by.is_some() => Some("this join token was already used; ask for a new one".into()),
            Some(t) if t.expires_ms <= now => Some("this join token has expired; ask for a new one".into()),
            Some(_) => None,
        };
        if let Some(why) = refused {
            return Err(self.refuse_authentication(AuditAction::NodeJoin, client, why).await);
        }
        let ev = AuditEvent {
            user: "-".into(),
            action: AuditAction::NodeJoin,
            outcome: Outcome::Ok,
            client,
            detail: format!("node at {} in campus {} joined with a join token", r.addr, r.campus),
            ..Default::default()
        };
        let cmd = Command::RegisterNode {
            campus: r.campus.clone(),
            addr: r.addr.clone(),
            token_hash: Some(token_hash),
            founder: None,
        };
        let id: u64 = match self.meta.propose_audited(cmd, ev).await? {
            MetaResponse::Created(id) => id.parse().map_err(|_| Status::internal("bad node id"))?,
            MetaResponse::Rejected(_, why) => return Err(Status::permission_denied(why)),
            other => return Err(Status::internal(format!("unexpected reply {other:?}"))),
        };
        let (cert_pem, key_pem) = crate::tls::issue_node_cert(&pki.ca_pem, &pki.ca_key_pem, id, &r.addr)?;
        // Pin the new node's key at once, so no other certificate can speak for its id.
        // (If this fails the node pins itself at its first start.)
        let pin = crate::tls::first_cert_der(&cert_pem)
            .map_err(|e| e.to_string())
            .and_then(|der| crate::tls::cert_key_hash(&der));
        match pin {
            Ok(key_hash) => match self.meta.propose(Command::PinNodeKey { id, key_hash }).await {
                Ok(MetaResponse::Ok) => {}
                other => tracing::warn!(node = id, result = ?other, "could not pin the new node's certificate key"),
            },
            Err(e) => tracing::warn!(node = id, error = %e, "could not read the new node's certificate"),
        }
        tracing::info!(node = id, addr = %r.addr, campus = %r.campus, "node admitted to the cluster");
        Ok(Response::new(pb::JoinReply {
            node_id: id,
            ca_pem: pki.ca_pem.clone(),
            ca_key_pem: pki.ca_key_pem.clone(),
            cert_pem,
            key_pem,
            archive_recipients: self.cluster.archive_recipients.clone(),
            archive_identity: self.cluster.archive_identity.clone(),
            segment_target_ms: self.cluster.segment_target_ms as u32,
            signing_key_pkcs8: self.cluster.signing_pkcs8.clone().unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_commit_names_its_sender_as_the_sealer() {
        let seg = |replicas: Vec<NodeId>| crate::meta::SegmentRecord {
            camera: "ward".into(),
            start_ms: 1_000,
            end_ms: 2_000,
            bytes: 188,
            blob_bytes: 400,
            content_hash: [1; 32],
            blob_hash: [2; 32],
            codec: crate::meta::Codec::H264,
            replicas,
        };
        let commit = |segs| Command::CommitSegments(segs);
        assert_eq!(sealed_by_sender(3, &commit(vec![seg(vec![3]), seg(vec![3, 1, 2])])), Ok(()));
        assert!(sealed_by_sender(3, &commit(vec![seg(vec![3]), seg(vec![1, 3])])).unwrap_err().contains("node 1"));
        assert!(sealed_by_sender(3, &commit(vec![seg(vec![])])).unwrap_err().contains("none"));
        assert_eq!(sealed_by_sender(3, &Command::Audit), Ok(()));
    }

    fn ev(user: &str) -> AuditEvent {
        AuditEvent {
            user: user.into(),
            role: "approver".into(),
            action: AuditAction::HoldRelease,
            ..Default::default()
        }
    }

    #[test]
    fn forwarded_writes_carry_no_leader_duty_and_name_one_person() {
        for c in [
            Command::Alarms(vec![]),
            Command::AddReplicas(vec![("lobby".into(), 0, 3)]),
            Command::ExpireSegments { at_ms: 0, segments: vec![] },
            Command::MarkBackedUp(vec![]),
            Command::AssignCamera { camera: "lobby".into(), recorder: 2 },
            Command::RegisterNode {
                campus: "x".into(),
                addr: "127.0.0.1:1".into(),
                token_hash: None,
                founder: Some(1),
            },
            Command::SetClusterVersion(2),
        ] {
            let e = check_forwarded(&c, None).unwrap_err();
            assert!(e.starts_with("only the leader proposes"), "{c:?}: {e}");
        }
        let release = |user: &str| Command::ApproveHoldRelease { id: "H-000001".into(), user: user.into() };
        assert_eq!(check_forwarded(&release("ana"), Some(&ev("ana"))), Ok(()));
        assert!(check_forwarded(&release("ana"), Some(&ev("bob"))).unwrap_err().contains("must be the same person"));
        assert!(check_forwarded(&release("ana"), None).unwrap_err().contains("must carry"));
        // What followers forward every day.
        assert_eq!(check_forwarded(&Command::Audit, Some(&ev("-"))), Ok(()));
        assert_eq!(check_forwarded(&Command::CommitSegments(vec![]), None), Ok(()));
        let join = Command::RegisterNode {
            campus: "x".into(),
            addr: "127.0.0.1:1".into(),
            token_hash: Some([0; 32]),
            founder: None,
        };
        assert_eq!(check_forwarded(&join, Some(&ev("-"))), Ok(()));
        assert_eq!(check_forwarded(&Command::PinNodeKey { id: 2, key_hash: [1; 32] }, None), Ok(()));
        // What only an accepted change applies is never forwarded raw: a compromised
        // follower cannot go round the approver.
        for c in [
            Command::RemoveCamera { id: "lobby".into() },
            Command::RetireNode { id: 2 },
            Command::SetSensitive { camera: "lobby".into(), sensitive: false },
            Command::GrantCamera { user: "ana".into(), camera: "lobby".into(), grant: true },
            Command::ConfirmClock { node: 2 },
            Command::FoundCluster(vec![]),
            Command::ResetPassword {
                user: "ana".into(),
                token_hash: [0; 32],
                token: crate::meta::TokenRecord {
                    id: "t".into(),
                    user: "ana".into(),
                    created_ms: 0,
                    expires_ms: 1,
                    revoked: false,
                    issued_by: String::new(),
                },
            },
        ] {
            let e = check_forwarded(&c, Some(&ev("ana"))).unwrap_err();
            assert!(e.contains("only ever the effect of a change"), "{c:?}: {e}");
        }
        let revoke = Command::GrantCamera { user: "ana".into(), camera: "lobby".into(), grant: false };
        assert_eq!(check_forwarded(&revoke, Some(&ev("-"))), Ok(()));
        // A decision or a renewal names its person, and carries that person's entry.
        let decide =
            Command::DecideChange { id: 1, user: "boss".into(), approve: true, note: String::new(), token: None };
        assert!(check_forwarded(&decide, Some(&ev("mallory"))).unwrap_err().contains("same person"));
        assert_eq!(check_forwarded(&decide, Some(&ev("boss"))), Ok(()));
        // A console password is set by its own user only.
        let set = Command::SetPassword { user: "ana".into(), token_hash: [0; 32], phc: "$argon2id$x".into() };
        assert!(check_forwarded(&set, Some(&ev("mallory"))).unwrap_err().contains("same person"));
        assert_eq!(check_forwarded(&set, Some(&ev("ana"))), Ok(()));
    }
}

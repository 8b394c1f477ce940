//! The node-to-node services: `Peer` (Raft, forwarded writes, blobs, pings), served only
//! to callers presenting a certificate from the cluster CA, and `Join`, which admits a
//! new node that presents a single-use join token.

use custos_proto::v1 as pb;
use custos_proto::v1::join_server::Join;
use custos_proto::v1::peer_server::Peer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::Services;
use crate::audit::AuditEvent;
use crate::cluster::network;
use crate::cluster::replicate::BLOB_CHUNK;
use crate::meta::types::encode;
use crate::meta::{Command, Response as MetaResponse};
use crate::segment::Hash;

/// Largest blob a peer may send (a 60-second segment at 60 Mbit/s is 450 MB).
pub const BLOB_MAX_BYTES: u64 = 1 << 30;

/// Refuses a call whose caller did not present a certificate the TLS layer verified
/// against the cluster CA.
fn require_peer<T>(req: &Request<T>) -> Result<(), Status> {
    match req.peer_certs() {
        Some(certs) if !certs.is_empty() => Ok(()),
        _ => Err(Status::permission_denied(
            "node-to-node calls need a certificate from the cluster CA (mutual TLS); this caller presented none",
        )),
    }
}

fn hash32(b: &[u8], what: &str) -> Result<Hash, Status> {
    b.try_into().map_err(|_| Status::invalid_argument(format!("{what} must be 32 bytes")))
}

#[tonic::async_trait]
impl Peer for Services {
    async fn raft(&self, req: Request<pb::RaftMessage>) -> Result<Response<pb::RaftMessage>, Status> {
        require_peer(&req)?;
        let m = req.into_inner();
        let payload = network::serve(&self.meta.raft, &m.kind, &m.payload).await.map_err(Status::invalid_argument)?;
        Ok(Response::new(pb::RaftMessage { kind: m.kind, payload }))
    }

    async fn propose(&self, req: Request<pb::ProposeRequest>) -> Result<Response<pb::ProposeReply>, Status> {
        require_peer(&req)?;
        let res = self.meta.submit_forwarded(&req.into_inner().payload).await;
        Ok(Response::new(pb::ProposeReply { payload: encode(&res) }))
    }

    async fn put_blob(&self, req: Request<Streaming<pb::BlobChunk>>) -> Result<Response<pb::PutBlobReply>, Status> {
        require_peer(&req)?;
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
        require_peer(&req)?;
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
        require_peer(&req)?;
        let (free, total, floor) = self.health.own_disk();
        Ok(Response::new(pb::PingReply {
            node_id: self.meta.node_id,
            disk_free_bytes: free,
            disk_total_bytes: total,
            disk_floor_bytes: floor,
            campus: self.cluster.campus.clone(),
            scrub_unrepaired: self.health.scrub.unrepaired_count(),
            scrub_last_finding_ms: self.health.scrub.last_finding_ms.load(std::sync::atomic::Ordering::Relaxed),
            under_replicated: if self.meta.is_leader() {
                self.repair_stats.under_replicated.load(std::sync::atomic::Ordering::Relaxed)
            } else {
                u64::MAX
            },
        }))
    }
}

pub use custos_formats::fields::validate_campus;

/// Splits a join token `cjt1.<secret>.<ca fingerprint>` into the secret's hash and the
/// fingerprint.
pub fn parse_join_token(token: &str) -> Result<(Hash, String), String> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("cjt1"), Some(secret), Some(fp), None) if secret.len() == 64 && fp.len() == 32 => {
            Ok((*blake3::hash(secret.as_bytes()).as_bytes(), fp.to_string()))
        }
        _ => Err("this is not a join token (expected cjt1.…); print one with `custos node join-token`".into()),
    }
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
            None => Some(
                "unknown join token: it is wrong, or from another cluster; print one with `custos node join-token`",
            ),
            Some(t) if t.used_by.is_some() => Some("this join token was already used; ask for a new one"),
            Some(t) if t.expires_ms <= now => Some("this join token has expired; ask for a new one"),
            Some(_) => None,
        };
        if let Some(why) = refused {
            return Err(self.refuse_authentication("node-join", client, why.into()).await);
        }
        let ev = AuditEvent {
            user: "-".into(),
            action: "node-join".into(),
            outcome: "ok".into(),
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
            MetaResponse::Rejected(why) => return Err(Status::permission_denied(why)),
            other => return Err(Status::internal(format!("unexpected reply {other:?}"))),
        };
        let (cert_pem, key_pem) = crate::tls::issue_node_cert(&pki.ca_pem, &pki.ca_key_pem, id, &r.addr)?;
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

//! Moving sealed blobs between nodes. Segment bytes never travel through Raft: the
//! recorder pushes each blob to its replicas over `Peer.PutBlob`, and a node that lacks
//! a blob pulls it with `Peer.GetBlob`. Both ends check the blob's BLAKE3 against the
//! catalog's `blob_hash`, so a copy is never accepted or served unverified.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use custos_proto::v1 as pb;

use super::health::Health;
use super::peers::{peer_error, Peers};
use super::placement::{self, Candidate};
use crate::error::{Error, Result};
use crate::meta::{Meta, NodeId, NodeRecord, SegmentRecord};
use crate::segment::Hash;

/// Size of the data chunks a blob is streamed in.
pub const BLOB_CHUNK: usize = 1024 * 1024;
/// How long reading one blob from a peer may take before the next holder is tried.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest transfer rate a replica push is allowed before the target is replaced.
pub const PUSH_MIN_BYTES_PER_S: u64 = 10 * 1024 * 1024;

/// How long pushing `bytes` may take. Short, because the camera's sealer waits for it:
/// a peer that stopped (SIGSTOP, partition) must not stall recording for long.
pub fn push_timeout(bytes: usize) -> Duration {
    Duration::from_secs(3) + Duration::from_millis(bytes as u64 * 1000 / PUSH_MIN_BYTES_PER_S)
}

/// Sends `blob` to the node at `addr` and waits until it is durable there.
pub async fn push_blob(
    peers: &Peers,
    addr: &str,
    content_hash: &Hash,
    blob_hash: &Hash,
    blob: Arc<Vec<u8>>,
) -> Result<()> {
    let mut client = peers.client(addr)?;
    let header = pb::BlobHeader {
        content_hash: content_hash.to_vec(),
        blob_hash: blob_hash.to_vec(),
        blob_bytes: blob.len() as u64,
    };
    let timeout = push_timeout(blob.len());
    let n = blob.len().div_ceil(BLOB_CHUNK);
    let chunks = (0..n).map(move |i| {
        let end = ((i + 1) * BLOB_CHUNK).min(blob.len());
        pb::BlobChunk { item: Some(pb::blob_chunk::Item::Data(blob[i * BLOB_CHUNK..end].to_vec())) }
    });
    let stream = tokio_stream::iter(
        std::iter::once(pb::BlobChunk { item: Some(pb::blob_chunk::Item::Header(header)) }).chain(chunks),
    );
    let mut req = tonic::Request::new(stream);
    req.set_timeout(timeout);
    match tokio::time::timeout(timeout, client.put_blob(req)).await {
        Ok(r) => r.map(|_| ()).map_err(|s| peer_error(addr, "storing a replica", s)),
        Err(_) => Err(Error::Unavailable(format!("storing a replica on node {addr}: no answer within {timeout:?}"))),
    }
}

/// Reads the blob `content_hash` from the node at `addr` and checks it against `blob_hash`.
pub async fn pull_blob(peers: &Peers, addr: &str, content_hash: &Hash, blob_hash: &Hash) -> Result<Vec<u8>> {
    use tokio_stream::StreamExt;
    let mut client = peers.client(addr)?;
    let mut req = tonic::Request::new(pb::GetBlobRequest { content_hash: content_hash.to_vec() });
    req.set_timeout(TRANSFER_TIMEOUT);
    let read = async {
        let mut stream = client.get_blob(req).await.map_err(|s| peer_error(addr, "reading a replica", s))?.into_inner();
        let mut blob = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk.map_err(|s| peer_error(addr, "reading a replica", s))?.item {
                Some(pb::blob_chunk::Item::Header(h)) => blob.reserve(h.blob_bytes.min(1 << 30) as usize),
                Some(pb::blob_chunk::Item::Data(d)) => blob.extend_from_slice(&d),
                None => {}
            }
        }
        Ok::<_, Error>(blob)
    };
    let blob = tokio::time::timeout(TRANSFER_TIMEOUT, read).await.map_err(|_| {
        Error::Unavailable(format!("reading a replica from node {addr}: no answer within {TRANSFER_TIMEOUT:?}"))
    })??;
    if blake3::hash(&blob).as_bytes() != blob_hash {
        return Err(Error::Unavailable(format!(
            "the copy of blob {} on node {addr} does not match its catalogued hash",
            hex::encode(content_hash)
        )));
    }
    Ok(blob)
}

/// Chooses replica targets and pushes blobs to them.
#[derive(Debug, Clone)]
pub struct Replicator {
    pub meta: Meta,
    pub peers: Peers,
    pub health: Health,
    pub factor: usize,
}

impl Replicator {
    /// Active members as placement candidates, with their addresses.
    pub async fn candidates(&self) -> Result<Vec<(Candidate, String)>> {
        let nodes: Vec<NodeRecord> = self.meta.read(|c| c.nodes()).await?;
        Ok(nodes
            .into_iter()
            .filter(|n| !n.retired)
            .map(|n| {
                let h = self.health.get(n.id);
                let cand = Candidate {
                    id: n.id,
                    campus: n.campus,
                    alive: self.health.alive(n.id),
                    disk_free: h.disk_free,
                    disk_total: h.disk_total,
                    disk_floor: h.disk_floor,
                };
                (cand, n.addr)
            })
            .collect())
    }

    /// Pushes `blob` to new replicas until `rec` has `factor` copies or no candidate is
    /// left; failed targets are replaced by the next choice. Adds each durable copy to
    /// `rec.replicas`. Returns false when the segment is left short although the cluster
    /// has enough active nodes (some were down, full or failing).
    pub async fn replicate(&self, rec: &mut SegmentRecord, blob: Arc<Vec<u8>>) -> Result<bool> {
        let mut failed = BTreeSet::new();
        loop {
            let need = self.factor.saturating_sub(rec.replicas.len());
            if need == 0 {
                return Ok(true);
            }
            let cands = self.candidates().await?;
            let plain: Vec<Candidate> = cands.iter().map(|(c, _)| c.clone()).collect();
            let targets = placement::choose(&plain, &rec.replicas, need, &failed);
            if targets.is_empty() {
                // Short only if other active nodes exist; repair tops it up when they return.
                return Ok(cands.len() <= rec.replicas.len());
            }
            let pushes = targets.iter().map(|t| {
                let addr = cands.iter().find(|(c, _)| c.id == *t).map(|(_, a)| a.clone()).unwrap_or_default();
                let blob = blob.clone();
                let (ch, bh) = (rec.content_hash, rec.blob_hash);
                async move { (*t, push_blob(&self.peers, &addr, &ch, &bh, blob).await) }
            });
            for (t, res) in futures::future::join_all(pushes).await {
                match res {
                    Ok(()) => rec.replicas.push(t),
                    Err(e) => {
                        tracing::warn!(camera = %rec.camera, start_ms = rec.start_ms, node = t, error = %e, "replica push failed; choosing another node");
                        failed.insert(t);
                    }
                }
            }
        }
    }

    /// Reads a blob from any live holder in `replicas` (other than this node).
    pub async fn fetch_remote(&self, rec: &SegmentRecord) -> Result<Vec<u8>> {
        let nodes: Vec<NodeRecord> = self.meta.read(|c| c.nodes()).await?;
        let mut holders: Vec<(NodeId, String)> = rec
            .replicas
            .iter()
            .filter(|&&r| r != self.health.me())
            .filter_map(|r| nodes.iter().find(|n| n.id == *r).map(|n| (n.id, n.addr.clone())))
            .collect();
        // Live holders first.
        holders.sort_by_key(|(id, _)| !self.health.alive(*id));
        let mut last = None;
        for (id, addr) in holders {
            match pull_blob(&self.peers, &addr, &rec.content_hash, &rec.blob_hash).await {
                Ok(b) => return Ok(b),
                Err(e) => {
                    tracing::warn!(camera = %rec.camera, start_ms = rec.start_ms, node = id, error = %e, "replica read failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::MissingBlob {
            camera: rec.camera.clone(),
            start_ms: rec.start_ms,
            hash: hex::encode(rec.content_hash),
        }))
    }
}

impl Replicator {
    /// The replicator of a node with no peers, keeping one copy (in-process tests, tools
    /// and benchmarks).
    pub fn alone(meta: Meta, health: Health) -> Replicator {
        Replicator { meta, peers: Peers::new(None), health, factor: 1 }
    }
}

impl crate::segment::OtherCopies for Replicator {
    fn me(&self) -> NodeId {
        self.health.me()
    }

    fn fetch_remote(&self, seg: &SegmentRecord) -> impl std::future::Future<Output = Result<Vec<u8>>> + Send {
        Replicator::fetch_remote(self, seg)
    }
}

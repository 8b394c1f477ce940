//! The verified read path: a segment's plaintext, from this node's blob or another
//! replica's, checked against its catalogued BLAKE3 hashes before any byte is returned.
//! Fetch, exports, the console's player and the picture checks all read through it.

use std::future::Future;
use std::sync::Arc;

use super::{BlobStore, Keys};
use crate::error::{Error, Result};
use crate::meta::{NodeId, SegmentRecord};

/// Where copies of a segment other than this node's are (the cluster's replicator).
pub trait OtherCopies: Sync {
    /// This node.
    fn me(&self) -> NodeId;
    /// The sealed blob of `seg` from one of its other replicas.
    fn fetch_remote(&self, seg: &SegmentRecord) -> impl Future<Output = Result<Vec<u8>>> + Send;
}

/// Reads and verifies one segment's plaintext: from this node's copy, or, when that is
/// missing or fails verification, from another replica.
pub async fn open_segment(
    seg: &SegmentRecord,
    store: &Arc<BlobStore>,
    keys: &Arc<Keys>,
    others: &impl OtherCopies,
) -> Result<Vec<u8>> {
    let (store2, keys2, seg2) = (store.clone(), keys.clone(), seg.clone());
    let local = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
        let blob = store2.get(&seg2.content_hash)?.ok_or_else(|| Error::MissingBlob {
            camera: seg2.camera.clone(),
            start_ms: seg2.start_ms,
            hash: hex::encode(seg2.content_hash),
        })?;
        keys2.open(&blob, &seg2.blob_hash, &seg2.content_hash).map_err(|detail| Error::CorruptBlob {
            camera: seg2.camera.clone(),
            start_ms: seg2.start_ms,
            detail,
        })
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    let local_err = match local {
        Ok(p) => return Ok(p),
        Err(e @ Error::CorruptBlob { .. }) => {
            tracing::error!(camera = %seg.camera, start_ms = seg.start_ms, error = %e, "local copy failed verification; reading another replica");
            e
        }
        Err(e @ Error::MissingBlob { .. }) => e,
        Err(e) => return Err(e),
    };
    if !seg.replicas.iter().any(|&r| r != others.me()) {
        return Err(local_err);
    }
    let blob = match others.fetch_remote(seg).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(camera = %seg.camera, start_ms = seg.start_ms, error = %e, "no replica could serve the segment");
            return Err(local_err);
        }
    };
    let (keys2, seg2) = (keys.clone(), seg.clone());
    tokio::task::spawn_blocking(move || {
        keys2.open(&blob, &seg2.blob_hash, &seg2.content_hash).map_err(|detail| Error::CorruptBlob {
            camera: seg2.camera.clone(),
            start_ms: seg2.start_ms,
            detail,
        })
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

//! Packs: one bucket object per run of one camera's consecutive segments.
//!
//! An S3 request costs the same for 50 KB as for 5 MB, and a low-bitrate camera cut into
//! 4 s segments makes many small blobs. The worker therefore uploads a camera's queued
//! segments together, up to `pack_target_bytes` per object. Footage of one camera close
//! in time expires together, so a pack is deleted whole, soon after its last member
//! expires, and no object is ever rewritten. A hold on any member keeps the whole pack.
//!
//! Layout of a pack object:
//!
//! ```text
//! blob 0 | blob 1 | ... | blob n-1 | sealed index | index length (u64 LE) | "CUSTPAK1"
//! ```
//!
//! Each blob is a sealed segment byte for byte as the nodes store it, so one member is
//! read with a ranged GET at the offset the catalog records. The index (JSON, sealed with
//! age to the cluster's archive recipients like everything else in the bucket) lists each
//! member's camera, times, hashes, offset and length, so a pack can be identified with
//! the recovery identity even without a catalog snapshot. The bucket sees no camera
//! names or times.
//!
//! A pack's name is the BLAKE3 of its blob region: the same members in the same order
//! always make the same name, so an upload repeated after a lost commit overwrites the
//! first instead of leaving an orphan.

use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::meta::{PackMember, SegmentRecord, StoredPack};
use crate::segment::{Hash, Keys};

/// The last 8 bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"CUSTPAK1";
/// `format` of a pack's index.
pub const PACK_FORMAT: &str = "custos-backup-pack-v1";

/// The object key of a pack under `prefix`.
pub fn pack_key(prefix: &str, hash: &Hash) -> ObjectPath {
    let h = hex::encode(hash);
    super::snapshot::under(prefix, &format!("packs/{}/{h}", &h[..2]))
}

/// A pack's index, as sealed at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackIndex {
    pub format: String,
    pub members: Vec<IndexEntry>,
}

/// One member in a pack's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub camera: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Hex BLAKE3 of the plaintext.
    pub content_hash: String,
    /// Hex BLAKE3 of the sealed blob.
    pub blob_hash: String,
    pub offset: u64,
    pub len: u64,
}

/// Builds a pack from sealed blobs, in the order given. Blocks (seals the index).
pub fn assemble(members: &[(SegmentRecord, Vec<u8>)], keys: &Keys) -> Result<(Vec<u8>, StoredPack)> {
    let blob_bytes: usize = members.iter().map(|(_, b)| b.len()).sum();
    let mut out = Vec::with_capacity(blob_bytes + 1024 + members.len() * 300);
    let mut index = PackIndex { format: PACK_FORMAT.into(), members: Vec::with_capacity(members.len()) };
    for (rec, blob) in members {
        index.members.push(IndexEntry {
            camera: rec.camera.clone(),
            start_ms: rec.start_ms,
            end_ms: rec.end_ms,
            content_hash: hex::encode(rec.content_hash),
            blob_hash: hex::encode(rec.blob_hash),
            offset: out.len() as u64,
            len: blob.len() as u64,
        });
        out.extend_from_slice(blob);
    }
    let hash = *blake3::hash(&out).as_bytes();
    let json = serde_json::to_vec(&index).map_err(|e| Error::Internal(e.to_string()))?;
    let sealed = keys.seal(&json)?.ciphertext;
    out.extend_from_slice(&sealed);
    out.extend_from_slice(&(sealed.len() as u64).to_le_bytes());
    out.extend_from_slice(PACK_MAGIC);
    let members = index
        .members
        .into_iter()
        .map(|m| PackMember { camera: m.camera, start_ms: m.start_ms, offset: m.offset, len: m.len })
        .collect();
    let bytes = out.len() as u64;
    Ok((out, StoredPack { hash, bytes, members }))
}

/// Opens the index at the end of a whole pack object and checks that the blob region
/// still has the name `hash`. Blocks.
pub fn read_index(pack: &[u8], hash: &Hash, keys: &Keys) -> std::result::Result<PackIndex, String> {
    let n = pack.len();
    if n < 16 || &pack[n - 8..] != PACK_MAGIC {
        return Err("not a Custos pack (the trailer is missing: truncated or not written by Custos)".into());
    }
    let len = u64::from_le_bytes(pack[n - 16..n - 8].try_into().expect("8 bytes")) as usize;
    let start = (n - 16).checked_sub(len).ok_or("the pack's index length runs past its start")?;
    let json = keys.decrypt(&pack[start..n - 16]).map_err(|e| format!("the pack's index: {e}"))?;
    let index: PackIndex = serde_json::from_slice(&json).map_err(|e| format!("the pack's index is unreadable: {e}"))?;
    if index.format != PACK_FORMAT {
        return Err(format!("the pack's index has format {:?}, expected {PACK_FORMAT}", index.format));
    }
    let got = blake3::hash(&pack[..start]);
    if got.as_bytes() != hash {
        return Err(format!("the pack's blobs hash to {}, not to its name {}", got.to_hex(), hex::encode(hash)));
    }
    Ok(index)
}

/// Cuts each camera's queued run (oldest first) into packs of at most `target_bytes`.
/// A pack is ready to upload when it is full (the next segment would not fit) or when
/// its oldest member ended at least `max_wait_ms` before `now_ms`; a run's last, partly
/// filled pack otherwise waits for more footage. A segment larger than the target is a
/// pack of its own.
pub fn plan(
    runs: Vec<Vec<SegmentRecord>>,
    now_ms: i64,
    target_bytes: u64,
    max_wait_ms: i64,
) -> Vec<Vec<SegmentRecord>> {
    let mut ready = Vec::new();
    for run in runs {
        let mut pack: Vec<SegmentRecord> = Vec::new();
        let mut size = 0u64;
        for rec in run {
            if !pack.is_empty() && size + rec.blob_bytes > target_bytes {
                ready.push(std::mem::take(&mut pack));
                size = 0;
            }
            size += rec.blob_bytes;
            pack.push(rec);
        }
        let aged = pack.first().is_some_and(|r| now_ms.saturating_sub(r.end_ms) >= max_wait_ms);
        if !pack.is_empty() && (size >= target_bytes || aged) {
            ready.push(pack);
        }
    }
    ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Codec;

    fn seg(camera: &str, start_ms: i64, blob_bytes: u64) -> SegmentRecord {
        SegmentRecord {
            camera: camera.into(),
            start_ms,
            end_ms: start_ms + 4_000,
            bytes: blob_bytes,
            blob_bytes,
            content_hash: [1; 32],
            blob_hash: [2; 32],
            codec: Codec::H264,
            replicas: vec![1],
        }
    }

    fn starts(p: &[SegmentRecord]) -> Vec<i64> {
        p.iter().map(|r| r.start_ms).collect()
    }

    #[test]
    fn runs_are_cut_at_the_target_and_young_tails_wait() {
        let a: Vec<_> = (0..7).map(|i| seg("a", i * 4_000, 300)).collect();
        // Target 1000: packs of three (900 bytes); the seventh segment is a young tail.
        let now = 6 * 4_000 + 4_000 + 10;
        let p = plan(vec![a.clone()], now, 1_000, 60_000);
        assert_eq!(
            p.iter().map(|p| starts(p)).collect::<Vec<_>>(),
            vec![vec![0, 4_000, 8_000], vec![12_000, 16_000, 20_000]]
        );
        // Once it has waited long enough, the tail goes too.
        let p = plan(vec![a], now + 60_000, 1_000, 60_000);
        assert_eq!(p.len(), 3);
        assert_eq!(starts(&p[2]), vec![24_000]);
    }

    #[test]
    fn big_segments_go_alone_and_cameras_never_mix() {
        let a = vec![seg("a", 0, 5_000), seg("a", 4_000, 100), seg("a", 8_000, 6_000)];
        let b = vec![seg("b", 0, 100), seg("b", 4_000, 100)];
        let p = plan(vec![a, b], 1_000_000, 1_000, 60_000);
        let cams: Vec<Vec<&str>> = p.iter().map(|p| p.iter().map(|r| r.camera.as_str()).collect()).collect();
        assert_eq!(cams, vec![vec!["a"], vec!["a"], vec!["a"], vec!["b", "b"]]);
        assert_eq!(starts(&p[1]), vec![4_000]);
    }

    #[test]
    fn a_pack_reads_back_and_is_named_by_its_blobs() {
        let id = crate::segment::seal::generate_identity();
        let keys = Keys::new(std::slice::from_ref(&id.recipient), &id.secret).unwrap();
        let members: Vec<_> = (0..3)
            .map(|i| {
                let sealed = keys.seal(&vec![i as u8; 1000 + i]).unwrap();
                let mut r = seg("icu", i as i64 * 4_000, sealed.ciphertext.len() as u64);
                (r.content_hash, r.blob_hash) = (sealed.content_hash, sealed.blob_hash);
                (r, sealed.ciphertext)
            })
            .collect();
        let (obj, stored) = assemble(&members, &keys).unwrap();
        assert_eq!(stored.bytes, obj.len() as u64);
        for ((rec, blob), m) in members.iter().zip(&stored.members) {
            let at = &obj[m.offset as usize..(m.offset + m.len) as usize];
            assert_eq!(at, blob.as_slice());
            assert_eq!(keys.open(at, &rec.blob_hash, &rec.content_hash).unwrap().len(), blob_plain_len(rec));
        }
        let index = read_index(&obj, &stored.hash, &keys).unwrap();
        assert_eq!(index.members.len(), 3);
        assert_eq!(index.members[2].start_ms, 8_000);
        // The same blobs make the same name, though the sealed index differs.
        let (again, stored2) = assemble(&members, &keys).unwrap();
        assert_eq!(stored2.hash, stored.hash);
        assert_ne!(again, obj);
        // Damage to a blob or a cut-off trailer is named.
        let mut bad = obj.clone();
        bad[10] ^= 1;
        assert!(read_index(&bad, &stored.hash, &keys).unwrap_err().contains("not to its name"));
        assert!(read_index(&obj[..obj.len() - 3], &stored.hash, &keys).unwrap_err().contains("trailer"));
        // A stranger's key opens nothing.
        let other = crate::segment::seal::generate_identity();
        let stranger = Keys::new(std::slice::from_ref(&other.recipient), &other.secret).unwrap();
        assert!(read_index(&obj, &stored.hash, &stranger).is_err());
    }

    fn blob_plain_len(rec: &SegmentRecord) -> usize {
        1000 + (rec.start_ms / 4_000) as usize
    }
}

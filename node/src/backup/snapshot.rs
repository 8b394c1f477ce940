//! Backup snapshots: the whole catalog (cameras, segments, policies, holds, exports, users
//! with token hashes only, receipts and the audit log) together with the keys a rebuilt
//! cluster needs, age-encrypted to the archive recipients — which include the offline
//! recovery recipient, so the recovery identity alone opens them.
//!
//! Object key: `PREFIX/snapshots/<created ms, 16 digits>-<log index, 12 digits>.age`, so
//! the newest snapshot sorts last.

use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::meta::types::{decode, encode};
use crate::segment::{Hash, Keys};

/// The format name inside every snapshot.
pub const SNAPSHOT_FORMAT: &str = "custos-backup-snapshot-v1";
/// Snapshots kept in the bucket; older ones are deleted after a new one is stored.
pub const KEEP_SNAPSHOTS: usize = 24;

/// The cluster's keys, carried inside the encrypted snapshot so a restore brings the same
/// cluster back: same archive identity (old blobs open), same CA, same export signing
/// key (packages signed before the disaster still verify against the same public key).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ClusterKeys {
    pub archive_identity: String,
    pub archive_recipients: Vec<String>,
    /// Empty on a node serving plaintext (development only).
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub signing_key_pkcs8: Vec<u8>,
    pub segment_target_ms: u64,
}

impl std::fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterKeys").field("archive_recipients", &self.archive_recipients).finish_non_exhaustive()
    }
}

/// One snapshot, as stored (before encryption).
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub format: String,
    pub created_ms: i64,
    /// The node that made it (the leader at the time).
    pub made_by: u64,
    /// The Raft log index the catalog reflects.
    pub applied_index: u64,
    pub keys: ClusterKeys,
    /// BLAKE3 of `state`.
    pub state_blake3: Hash,
    /// The catalog dump (`Catalog::dump_state`).
    pub state: Vec<u8>,
}

/// Where snapshots live under `prefix`.
pub fn snapshots_dir(prefix: &str) -> ObjectPath {
    under(prefix, "snapshots")
}

/// `prefix/rest`, with an empty prefix meaning the bucket's root.
pub fn under(prefix: &str, rest: &str) -> ObjectPath {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        ObjectPath::from(rest)
    } else {
        ObjectPath::from(format!("{p}/{rest}"))
    }
}

/// The key of a snapshot.
pub fn snapshot_key(prefix: &str, created_ms: i64, applied_index: u64) -> ObjectPath {
    under(prefix, &format!("snapshots/{created_ms:016}-{applied_index:012}.age"))
}

/// Reads `(created_ms, applied_index)` back from a snapshot key.
pub fn parse_snapshot_key(key: &ObjectPath) -> Option<(i64, u64)> {
    let name = key.filename()?.strip_suffix(".age")?;
    let (t, i) = name.split_once('-')?;
    Some((t.parse().ok()?, i.parse().ok()?))
}

impl SnapshotFile {
    /// Encrypts the snapshot to `keys`' recipients. Blocks.
    pub fn seal(&self, keys: &Keys) -> Result<Vec<u8>> {
        Ok(keys.seal(&encode(self))?.ciphertext)
    }

    /// Decrypts and checks a stored snapshot. Blocks.
    pub fn open(ciphertext: &[u8], keys: &Keys) -> Result<SnapshotFile> {
        let plain = keys.decrypt(ciphertext).map_err(|e| {
            Error::Crypto(format!("{e} (is this the cluster's recovery identity, and the right bucket?)"))
        })?;
        let s: SnapshotFile =
            decode(&plain).map_err(|e| Error::Integrity(format!("the snapshot does not decode: {e}")))?;
        if s.format != SNAPSHOT_FORMAT {
            return Err(Error::Integrity(format!(
                "the snapshot's format is {:?}; this custos-node reads {SNAPSHOT_FORMAT:?}",
                s.format
            )));
        }
        if blake3::hash(&s.state).as_bytes() != &s.state_blake3 {
            return Err(Error::Integrity("the snapshot's catalog does not match its BLAKE3".into()));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_parse_back() {
        let a = snapshot_key("site-a/", 1_700_000_000_000, 42);
        let b = snapshot_key("site-a", 1_700_000_000_001, 7);
        assert!(a.as_ref() < b.as_ref());
        assert_eq!(a.as_ref(), "site-a/snapshots/0001700000000000-000000000042.age");
        assert_eq!(parse_snapshot_key(&a), Some((1_700_000_000_000, 42)));
        assert_eq!(snapshot_key("", 5, 6).as_ref(), "snapshots/0000000000000005-000000000006.age");
        assert_eq!(parse_snapshot_key(&ObjectPath::from("snapshots/junk.age")), None);
    }

    #[test]
    fn sealed_snapshot_opens_only_with_a_recipient_identity_and_detects_damage() {
        let archive = crate::segment::seal::generate_identity();
        let recovery = crate::segment::seal::generate_identity();
        let recipients = vec![archive.recipient.clone(), recovery.recipient.clone()];
        let cluster = Keys::new(&recipients, &archive.secret).unwrap();
        let state = b"catalog bytes".to_vec();
        let snap = SnapshotFile {
            format: SNAPSHOT_FORMAT.into(),
            created_ms: 1,
            made_by: 1,
            applied_index: 9,
            keys: ClusterKeys { archive_identity: archive.secret.clone(), ..Default::default() },
            state_blake3: *blake3::hash(&state).as_bytes(),
            state,
        };
        let sealed = snap.seal(&cluster).unwrap();
        let with_recovery = Keys::new(&recipients, &recovery.secret).unwrap();
        let back = SnapshotFile::open(&sealed, &with_recovery).unwrap();
        assert_eq!(back.applied_index, 9);
        assert_eq!(back.keys.archive_identity, archive.secret);

        let stranger = crate::segment::seal::generate_identity();
        let e = SnapshotFile::open(&sealed, &Keys::new(&recipients, &stranger.secret).unwrap()).unwrap_err();
        assert!(e.to_string().contains("recovery identity"), "{e}");

        let mut bad = sealed.clone();
        let n = bad.len() - 20;
        bad[n] ^= 1;
        assert!(SnapshotFile::open(&bad, &with_recovery).is_err());
    }
}

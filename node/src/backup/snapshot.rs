//! Backup snapshots: the whole catalog (cameras, segments, policies, holds, exports, users
//! with token hashes only, receipts and the audit log) together with the keys a rebuilt
//! cluster needs, age-encrypted to the archive recipients — which include the offline
//! recovery recipient, so the recovery identity alone opens them.
//!
//! Object key: `PREFIX/snapshots/<created ms, 16 digits>-<log index, 12 digits>.age`, so
//! the newest snapshot sorts last.
//!
//! Age encryption does not say who encrypted: anyone who knows the (public) recipients can
//! seal a file that opens with the recovery identity. So each snapshot is also signed with
//! the cluster's Ed25519 signing key (the key exports and seals are signed with), and names
//! the BLAKE3 of the sealed object of the snapshot stored before it, so the snapshots form
//! a chain. The signature covers [`SnapshotFile::signed_digest`]:
//!
//! ```text
//! BLAKE3(SNAPSHOT_SIGN_DOMAIN ‖ len‖format ‖ created_ms ‖ made_by ‖ applied_index
//!        ‖ state_blake3 ‖ keys_blake3 ‖ len‖previous_blake3)
//! ```
//!
//! (integers little-endian, lengths as u64). `keys_blake3` is over the encoded
//! [`ClusterKeys`]: the keys come back as the restored cluster's CA, archive identity and
//! signing key, so they are signed too, not only the catalog.
//!
//! What a good signature proves depends on what it is checked against. The signing key
//! travels inside the snapshot, so checked only against that key it proves the snapshot
//! is whole and was signed by whoever holds the key it carries, and nothing about who that
//! is: a forger can carry a key of their own. Checked against the hospital's published
//! key (`custos export pubkey`; `custos-node restore --pubkey`, or the running cluster's
//! own key in `custos backup verify`) it proves the cluster made it.

use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use custos_evidence::export::{key_fingerprint, SigningKey};

use crate::error::{Error, Result};
use crate::meta::schema::{postcard, Record};
use crate::meta::types::{decode, encode};
use crate::segment::{Hash, Keys};

/// The format name inside every snapshot. v2 added the signature and the link to the
/// previous snapshot; the name was bumped (not kept at v1) so that a snapshot written by
/// the release before, which has neither, is recognised and named as such instead of
/// failing as "not signed" or "does not decode".
pub const SNAPSHOT_FORMAT: &str = "custos-backup-snapshot-v2";
/// The format of the unsigned snapshots the previous release wrote (catalog format 1).
pub const SNAPSHOT_FORMAT_V1: &str = "custos-backup-snapshot-v1";
/// Domain separator of the digest a snapshot's signature covers.
pub const SNAPSHOT_SIGN_DOMAIN: &[u8] = b"custos-backup-snapshot-v2\0";
/// The error for a snapshot whose signature does not verify under the key it carries.
pub const NOT_SIGNED: &str =
    "the snapshot is not signed by the cluster's key: it was not made by this cluster, or was altered";
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub format: String,
    pub created_ms: i64,
    /// The node that made it (the leader at the time).
    pub made_by: u64,
    /// The Raft log index the catalog reflects.
    pub applied_index: u64,
    /// Hex BLAKE3 of the sealed object (the bytes in the bucket) of the snapshot the
    /// worker stored before this one; "" for the first one it knows of.
    pub previous_blake3: String,
    pub keys: ClusterKeys,
    /// BLAKE3 of `state`.
    pub state_blake3: Hash,
    /// The catalog dump (`Catalog::dump_state`).
    pub state: Vec<u8>,
    /// Hex Ed25519 signature over [`SnapshotFile::signed_digest`] by the signing key in
    /// `keys`; "" when unsigned (refused by every reader).
    pub signature: String,
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

/// Hex BLAKE3 of a sealed snapshot object, as the next snapshot names it.
pub fn object_blake3(sealed: &[u8]) -> String {
    blake3::hash(sealed).to_hex().to_string()
}

impl SnapshotFile {
    /// The domain-separated digest the signature covers (see the module docs).
    pub fn signed_digest(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(SNAPSHOT_SIGN_DOMAIN);
        h.update(&(self.format.len() as u64).to_le_bytes());
        h.update(self.format.as_bytes());
        h.update(&self.created_ms.to_le_bytes());
        h.update(&self.made_by.to_le_bytes());
        h.update(&self.applied_index.to_le_bytes());
        h.update(&self.state_blake3);
        h.update(blake3::hash(&encode(&self.keys)).as_bytes());
        h.update(&(self.previous_blake3.len() as u64).to_le_bytes());
        h.update(self.previous_blake3.as_bytes());
        *h.finalize().as_bytes()
    }

    /// Signs the snapshot with `key`, which must be the signing key it carries.
    pub fn sign(&mut self, key: &SigningKey) {
        self.signature = key.sign_hex(&self.signed_digest());
    }

    /// Hex public half of the signing key the snapshot carries.
    pub fn signer_hex(&self) -> Result<String> {
        if self.keys.signing_key_pkcs8.is_empty() {
            return Err(Error::Integrity(format!("{NOT_SIGNED} (it carries no signing key)")));
        }
        SigningKey::from_pkcs8(&self.keys.signing_key_pkcs8)
            .map(|k| k.public_hex())
            .map_err(|e| Error::Integrity(format!("{NOT_SIGNED} ({e})")))
    }

    /// Checks the signature against the public half of the signing key the snapshot
    /// carries and, when `published` (hex) is given, that this key is the published one.
    /// Returns the signer's hex public key.
    pub fn verify_signature(&self, published: Option<&str>) -> Result<String> {
        let signer = self.signer_hex()?;
        if self.signature.is_empty() {
            return Err(Error::Integrity(format!("{NOT_SIGNED} (it carries no signature)")));
        }
        custos_evidence::export::verify_signature(&signer, &self.signed_digest(), &self.signature)
            .map_err(|_| Error::Integrity(NOT_SIGNED.into()))?;
        if let Some(p) = published {
            let p = p.trim().to_lowercase();
            if p != signer {
                return Err(Error::Integrity(format!(
                    "{NOT_SIGNED}: it is signed by key {}, not by the published key {} (--pubkey)",
                    key_fingerprint(&signer),
                    key_fingerprint(&p)
                )));
            }
        }
        Ok(signer)
    }

    /// Encrypts the snapshot to `keys`' recipients. Blocks.
    pub fn seal(&self, keys: &Keys) -> Result<Vec<u8>> {
        Ok(keys.seal(&encode(self))?.ciphertext)
    }

    /// Decrypts a stored snapshot and checks its format, its catalog's BLAKE3 and its
    /// signature ([`SnapshotFile::verify_signature`], against `published` when given).
    /// Blocks.
    pub fn open(ciphertext: &[u8], keys: &Keys, published: Option<&str>) -> Result<SnapshotFile> {
        let plain = keys.decrypt(ciphertext).map_err(|e| {
            Error::Crypto(format!("{e} (is this the cluster's recovery identity, and the right bucket?)"))
        })?;
        let s: SnapshotFile =
            decode(&plain).map_err(|e| Error::Integrity(format!("the snapshot does not decode: {e}")))?;
        if s.format == SNAPSHOT_FORMAT_V1 {
            return Err(Error::Integrity(format!(
                "the snapshot is in format {SNAPSHOT_FORMAT_V1:?}, written by the release before snapshots were \
                 signed: {NOT_SIGNED:?} cannot be ruled out. Restore it with that release's custos-node, or \
                 restore a snapshot stored since the upgrade"
            )));
        }
        if s.format != SNAPSHOT_FORMAT {
            return Err(Error::Integrity(format!(
                "the snapshot's format is {:?}; this custos-node reads {SNAPSHOT_FORMAT:?}",
                s.format
            )));
        }
        if blake3::hash(&s.state).as_bytes() != &s.state_blake3 {
            return Err(Error::Integrity("the snapshot's catalog does not match its BLAKE3".into()));
        }
        s.verify_signature(published)?;
        Ok(s)
    }
}

impl Record for SnapshotFile {
    fn from_v1(bytes: &[u8]) -> std::result::Result<Self, String> {
        postcard::<SnapshotFileV1>(bytes).map(SnapshotFileV1::v1_to_v2)
    }
}

/// A backup snapshot in format 1: unsigned, not linked to the one before
/// (`custos-backup-snapshot-v1`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotFileV1 {
    pub format: String,
    pub created_ms: i64,
    pub made_by: u64,
    pub applied_index: u64,
    pub keys: ClusterKeys,
    pub state_blake3: Hash,
    pub state: Vec<u8>,
}

impl SnapshotFileV1 {
    /// Format 2 with no signature and no previous snapshot: readers name it as a snapshot
    /// of the release before and refuse it, since nothing says who made it.
    pub fn v1_to_v2(self) -> SnapshotFile {
        SnapshotFile {
            format: self.format,
            created_ms: self.created_ms,
            made_by: self.made_by,
            applied_index: self.applied_index,
            previous_blake3: String::new(),
            keys: self.keys,
            state_blake3: self.state_blake3,
            state: self.state,
            signature: String::new(),
        }
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
        let (snap, _) = signed(&archive.secret, "");
        let sealed = snap.seal(&cluster).unwrap();
        let with_recovery = Keys::new(&recipients, &recovery.secret).unwrap();
        let back = SnapshotFile::open(&sealed, &with_recovery, None).unwrap();
        assert_eq!(back.applied_index, 9);
        assert_eq!(back.keys.archive_identity, archive.secret);

        let stranger = crate::segment::seal::generate_identity();
        let e = SnapshotFile::open(&sealed, &Keys::new(&recipients, &stranger.secret).unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("recovery identity"), "{e}");

        let mut bad = sealed.clone();
        let n = bad.len() - 20;
        bad[n] ^= 1;
        assert!(SnapshotFile::open(&bad, &with_recovery, None).is_err());
    }

    fn key() -> (Vec<u8>, SigningKey) {
        let der = SigningKey::generate_pkcs8().unwrap();
        let k = SigningKey::from_pkcs8(&der).unwrap();
        (der, k)
    }

    /// A snapshot carrying and signed by a new key, and that key.
    fn signed(archive_identity: &str, previous: &str) -> (SnapshotFile, SigningKey) {
        let (der, k) = key();
        let state = b"catalog bytes".to_vec();
        let mut snap = SnapshotFile {
            format: SNAPSHOT_FORMAT.into(),
            created_ms: 1,
            made_by: 1,
            applied_index: 9,
            previous_blake3: previous.into(),
            keys: ClusterKeys {
                archive_identity: archive_identity.into(),
                signing_key_pkcs8: der,
                ..Default::default()
            },
            state_blake3: *blake3::hash(&state).as_bytes(),
            state,
            signature: String::new(),
        };
        snap.sign(&k);
        (snap, k)
    }

    #[test]
    fn a_snapshot_is_signed_by_the_key_it_carries_and_anything_else_is_refused() {
        let (snap, k) = signed("AGE-SECRET-KEY-1", &"ab".repeat(32));
        assert_eq!(snap.verify_signature(None).unwrap(), k.public_hex());
        assert_eq!(snap.verify_signature(Some(&k.public_hex().to_uppercase())).unwrap(), k.public_hex());
        let refused = |s: &SnapshotFile, published: Option<&str>| {
            let e = s.verify_signature(published).unwrap_err().to_string();
            assert!(e.contains(NOT_SIGNED), "{e}");
            e
        };
        // Every signed field, and the keys, are covered.
        let alter: [fn(&mut SnapshotFile); 8] = [
            |s| s.created_ms += 1,
            |s| s.made_by += 1,
            |s| s.applied_index += 1,
            |s| s.previous_blake3 = String::new(),
            |s| s.state_blake3[0] ^= 1,
            |s| s.keys.archive_identity.push('x'),
            |s| s.keys.ca_pem.push('x'),
            |s| s.format = "custos-backup-snapshot-v3".into(),
        ];
        for (i, f) in alter.iter().enumerate() {
            let mut altered = snap.clone();
            f(&mut altered);
            assert!(altered.verify_signature(None).is_err(), "alteration {i} was not caught");
        }
        // Signed by another key than the one it carries (someone who knows only the
        // recipients, with a copy of nothing else).
        let (_, other) = key();
        let mut forged = snap.clone();
        forged.sign(&other);
        refused(&forged, None);
        // Unsigned.
        refused(&SnapshotFile { signature: String::new(), ..snap.clone() }, None);
        // A forger's snapshot carrying and signed by the forger's own key verifies on its
        // own terms; only the published key tells it apart.
        let (theirs, their_key) = signed("AGE-SECRET-KEY-1", "");
        assert_eq!(theirs.verify_signature(None).unwrap(), their_key.public_hex());
        let e = refused(&theirs, Some(&k.public_hex()));
        assert!(e.contains("--pubkey") && e.contains(&key_fingerprint(&k.public_hex())), "{e}");

        // Through the sealed file too.
        let archive = crate::segment::seal::generate_identity();
        let keys = Keys::new(std::slice::from_ref(&archive.recipient), &archive.secret).unwrap();
        let sealed = forged.seal(&keys).unwrap();
        let e = SnapshotFile::open(&sealed, &keys, None).unwrap_err().to_string();
        assert!(e.contains(NOT_SIGNED), "{e}");
        let sealed = snap.seal(&keys).unwrap();
        assert!(SnapshotFile::open(&sealed, &keys, Some(&k.public_hex())).is_ok());
        assert!(SnapshotFile::open(&sealed, &keys, Some(&their_key.public_hex())).is_err());
    }

    #[test]
    fn a_snapshot_of_the_release_before_is_named_as_unsigned() {
        let archive = crate::segment::seal::generate_identity();
        let keys = Keys::new(std::slice::from_ref(&archive.recipient), &archive.secret).unwrap();
        let state = b"catalog".to_vec();
        let old = SnapshotFileV1 {
            format: SNAPSHOT_FORMAT_V1.into(),
            created_ms: 1,
            made_by: 1,
            applied_index: 2,
            keys: ClusterKeys::default(),
            state_blake3: *blake3::hash(&state).as_bytes(),
            state,
        };
        let sealed = keys.seal(&crate::meta::schema::v1::encode(&old)).unwrap().ciphertext;
        let e = SnapshotFile::open(&sealed, &keys, None).unwrap_err().to_string();
        assert!(e.contains("release before snapshots were signed"), "{e}");
    }
}

//! The daily seal: the cluster's signed statement of what it kept.
//!
//! Once a day (configurable) the Raft leader writes a [`SealStatement`]: for each camera
//! the footage kept and the gaps in the sealed period, the holds, what expiry deleted
//! (with a hash over those receipts), the audit chain's head, and the previous seal's
//! hash. It is signed with the cluster's signing key (the key exports are signed with,
//! published by the hospital), stored in the catalog and uploaded to the backup bucket.
//!
//! The statement travels as the exact JSON bytes that were hashed and signed, embedded
//! as a string in the seal file ([`SealFile`]), so a verifier never re-serialises it.
//! `hash = BLAKE3("custos-seal-v1\0" ‖ statement bytes)`; the signature is Ed25519 over
//! the same domain-prefixed bytes. A seal names the previous seal's hash, so the seals
//! form a chain of their own; and it names the audit chain's head, so an audit log cut
//! after the seal was made is caught by `custos audit verify --against-seal`.

use serde::{Deserialize, Serialize};

use crate::Hash;

/// Domain separator of seal hashes and signatures.
pub const SEAL_DOMAIN: &[u8] = b"custos-seal-v1\0";
/// `format` of a seal file.
pub const SEAL_FORMAT: &str = "custos-seal-v1";

/// One camera in a seal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealCamera {
    pub camera: String,
    /// The oldest and newest footage kept when the seal was made (absent: none).
    pub kept_from_ms: Option<i64>,
    pub kept_to_ms: Option<i64>,
    /// Segments and plaintext bytes recorded in the sealed period.
    pub segments: u64,
    pub bytes: u64,
    /// Milliseconds of the period covered by footage.
    pub recorded_ms: i64,
    /// Periods without footage, `[from, to)`.
    pub gaps: Vec<(i64, i64)>,
    pub min_days: u32,
    pub max_days: u32,
    /// Active holds on the camera.
    pub holds: Vec<String>,
    /// Segments expiry deleted in the sealed period.
    pub deleted: u64,
    /// Catalogued segments of the period whose footage is lost for good (a restore
    /// found no good copy): counted in the gaps.
    #[serde(default)]
    pub lost: u64,
}

/// A hold as the seal records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealHold {
    pub id: String,
    pub case_id: String,
    pub cameras: Vec<String>,
    pub from_ms: i64,
    pub to_ms: Option<i64>,
    pub placed_by: String,
}

/// The deletions of the sealed period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealDeletions {
    pub count: u64,
    /// Receipt numbers of the first and last deletion in the period (0: none).
    pub first_receipt: u64,
    pub last_receipt: u64,
    /// Hex BLAKE3 over the period's receipts (each: seq, camera, start, end, content
    /// hash), in order: the receipts the auditor can fetch must hash to this.
    pub receipts_hash: String,
}

/// What the cluster states and signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealStatement {
    pub format: String,
    /// 1 for the cluster's first seal, then one more each time.
    pub seq: u64,
    /// UTC day of `to_ms` (`2026-12-02`).
    pub day: String,
    /// The sealed period `[from_ms, to_ms)`: from the previous seal's end (the first seal:
    /// from the start of the oldest footage kept, or the cluster's founding).
    pub from_ms: i64,
    pub to_ms: i64,
    /// The node that made it.
    pub made_by: u64,
    pub cameras: Vec<SealCamera>,
    pub holds: Vec<SealHold>,
    pub deletions: SealDeletions,
    /// The audit chain's head when the seal was made: its seq and hex hash.
    pub audit_seq: u64,
    pub audit_hash: String,
    /// Hex hash of the previous seal (64 zeros for the first).
    pub prev_seal: String,
    /// Hex Ed25519 public key that signed it.
    pub signing_key: String,
}

/// A seal as stored and handed out: the statement's exact bytes, its hash and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealFile {
    pub format: String,
    /// The statement's JSON, exactly as hashed and signed.
    pub statement: String,
    /// Hex of [`seal_hash`].
    pub hash: String,
    /// Hex Ed25519 signature over `SEAL_DOMAIN ‖ statement`.
    pub signature: String,
}

/// `BLAKE3(SEAL_DOMAIN ‖ statement)`.
pub fn seal_hash(statement: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(SEAL_DOMAIN);
    h.update(statement);
    *h.finalize().as_bytes()
}

/// The bytes a seal's signature covers.
pub fn signed_bytes(statement: &[u8]) -> Vec<u8> {
    [SEAL_DOMAIN, statement].concat()
}

impl SealFile {
    /// Signs `statement` with `key`.
    pub fn sign(statement: &SealStatement, key: &crate::export::SigningKey) -> SealFile {
        let bytes = serde_json::to_vec(statement).expect("a seal statement serialises");
        SealFile {
            format: SEAL_FORMAT.into(),
            hash: hex::encode(seal_hash(&bytes)),
            signature: key.sign_hex(&signed_bytes(&bytes)),
            statement: String::from_utf8(bytes).expect("JSON is UTF-8"),
        }
    }

    /// Checks the hash, parses the statement, and checks the signature against
    /// `expected_key` (hex) if given, else against the key the statement names. Every
    /// problem found is listed.
    pub fn verify(&self, expected_key: Option<&str>) -> Result<SealStatement, Vec<String>> {
        let mut problems = Vec::new();
        if self.format != SEAL_FORMAT {
            problems.push(format!("format {:?} is not {SEAL_FORMAT:?}", self.format));
        }
        let bytes = self.statement.as_bytes();
        if hex::encode(seal_hash(bytes)) != self.hash.trim().to_lowercase() {
            problems.push("the statement does not hash to the seal's hash: it was altered".into());
        }
        let statement: SealStatement = match serde_json::from_slice(bytes) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("the statement is not a seal statement: {e}"));
                return Err(problems);
            }
        };
        let key = expected_key.unwrap_or(&statement.signing_key);
        if expected_key.is_some_and(|k| k.trim().to_lowercase() != statement.signing_key.to_lowercase()) {
            problems.push(format!(
                "the seal names signing key {} but {} was expected",
                crate::export::key_fingerprint(&statement.signing_key),
                crate::export::key_fingerprint(key)
            ));
        }
        if crate::export::verify_signature(key, &signed_bytes(bytes), &self.signature).is_err() {
            problems.push(format!(
                "the signature does not match the statement under key {}",
                crate::export::key_fingerprint(key)
            ));
        }
        if problems.is_empty() {
            Ok(statement)
        } else {
            Err(problems)
        }
    }
}

/// What `--against-seal` finds comparing an audit chain with a seal's head.
pub fn check_chain_against(entries: &[(u64, Hash)], statement: &SealStatement) -> Result<(), String> {
    let last = entries.last().map(|e| e.0).unwrap_or(0);
    let Some((_, hash)) = entries.iter().find(|(seq, _)| *seq == statement.audit_seq) else {
        return Err(format!(
            "the audit log ends at entry {last}, but the seal of {} (seal {}) names entry {}: entries were cut \
             from the log after the seal was made",
            statement.day, statement.seq, statement.audit_seq
        ));
    };
    if hex::encode(hash) != statement.audit_hash.to_lowercase() {
        return Err(format!(
            "entry {} does not hash to what the seal of {} (seal {}) recorded: the log was rewritten from there",
            statement.audit_seq, statement.day, statement.seq
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(key: &crate::export::SigningKey) -> SealStatement {
        SealStatement {
            format: SEAL_FORMAT.into(),
            seq: 1,
            day: "2026-12-02".into(),
            from_ms: 0,
            to_ms: 86_400_000,
            audit_seq: 7,
            audit_hash: hex::encode([7u8; 32]),
            prev_seal: hex::encode([0u8; 32]),
            signing_key: key.public_hex(),
            cameras: vec![SealCamera { camera: "lobby".into(), gaps: vec![(5, 9)], ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn a_seal_verifies_and_any_change_to_it_does_not() {
        let key = crate::export::SigningKey::from_pkcs8(&crate::export::SigningKey::generate_pkcs8().unwrap()).unwrap();
        let other =
            crate::export::SigningKey::from_pkcs8(&crate::export::SigningKey::generate_pkcs8().unwrap()).unwrap();
        let f = SealFile::sign(&statement(&key), &key);
        assert_eq!(f.verify(Some(&key.public_hex())).unwrap().seq, 1);
        assert!(f.verify(None).is_ok());
        let e = f.verify(Some(&other.public_hex())).unwrap_err();
        assert!(e.iter().any(|p| p.contains("was expected")), "{e:?}");
        let mut altered = f.clone();
        altered.statement = altered.statement.replace("\"gaps\":[[5,9]]", "\"gaps\":[]");
        let e = altered.verify(Some(&key.public_hex())).unwrap_err();
        assert!(e.iter().any(|p| p.contains("altered")) && e.iter().any(|p| p.contains("signature")), "{e:?}");
        // Re-signed by someone else: the hash fits, the key does not.
        let forged = SealFile::sign(&SealStatement { signing_key: other.public_hex(), ..statement(&key) }, &other);
        assert!(forged.verify(Some(&key.public_hex())).is_err());
    }

    #[test]
    fn a_cut_or_rewritten_chain_is_caught() {
        let key = crate::export::SigningKey::from_pkcs8(&crate::export::SigningKey::generate_pkcs8().unwrap()).unwrap();
        let s = statement(&key);
        let chain: Vec<(u64, Hash)> = (1..=9).map(|i| (i, [i as u8; 32])).collect();
        assert!(check_chain_against(&chain, &s).is_ok());
        assert!(check_chain_against(&chain[..5], &s).unwrap_err().contains("cut"));
        let mut rewritten = chain.clone();
        rewritten[6].1 = [0; 32];
        assert!(check_chain_against(&rewritten, &s).unwrap_err().contains("rewritten"));
    }
}

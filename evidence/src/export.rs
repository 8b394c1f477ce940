//! Evidence exports: the package an investigator receives and anyone can verify offline.
//!
//! A package is a directory:
//!
//! * one MPEG-TS file per requested camera range (`<camera>.ts`, or `<camera>-<n>.ts`
//!   when a camera appears in several ranges), the verified plaintext segments of that
//!   range concatenated in time order, so it plays in VLC, ffplay or GStreamer: the
//!   original, whose every segment the manifest lists;
//! * beside each, the same pictures remuxed into a faststart MP4 (`<camera>.mp4`), which
//!   plays in the players that ship with Windows and macOS; no frame is decoded or
//!   re-encoded, and the file's creation time is the footage's first instant
//!   ([`FileEntry::derived_from`] names the original);
//! * `receipt.pdf`: the custody receipt, printed and signed by the person who hands the
//!   copy over and the person who receives it ([`RECEIPT_FILE`]);
//! * `manifest.json` ([`Manifest`]): who asked, who approved, why, under which letter,
//!   every file with its size and BLAKE3, every segment with its camera, times, size,
//!   BLAKE3 and byte offset in its file, and the Merkle root over the segment hashes;
//! * `manifest.sig`: the hex Ed25519 signature of the exact bytes of `manifest.json` by
//!   the cluster's signing key, whose public key the manifest names.
//!
//! ## Merkle root
//!
//! Leaves are the segments' BLAKE3 content hashes in manifest order. A leaf node is
//! `BLAKE3(0x00 ‖ hash)`, an inner node `BLAKE3(0x01 ‖ left ‖ right)`; a level with an odd
//! count carries its last node up unchanged. The root of one leaf is its leaf node. The
//! construction is fixed by `format` = `custos-export-v1`.
//!
//! [`verify_package`] needs nothing but the directory (and, to be sure of the signer, the
//! hospital's published public key): it checks the signature, every file's size and hash,
//! every segment's bytes at its offset, and the root, and names each thing that differs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Hash;

/// Format tag of packages this module writes and reads.
pub const FORMAT: &str = "custos-export-v1";
/// Name of the manifest file in a package.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the signature file in a package.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// Name of the custody receipt in a package.
pub const RECEIPT_FILE: &str = "receipt.pdf";
/// [`FileEntry::kind`] of an MP4 remux of an original.
pub const KIND_MP4: &str = "mp4";
/// [`FileEntry::kind`] of the custody receipt.
pub const KIND_RECEIPT: &str = "receipt";
/// [`FileEntry::kind`] of a redacted derivative of an original (privacy zones filled in,
/// re-encoded).
pub const KIND_REDACTED: &str = "redacted";

/// One requested camera range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRange {
    pub camera: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A file of the package other than the manifest and its signature.
///
/// The two optional fields are absent for an original MPEG-TS, so packages without
/// derived files are byte for byte what earlier releases wrote, and earlier verifiers
/// (which ignore unknown fields) still check every file's size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    /// Hex BLAKE3 of the whole file.
    pub blake3: String,
    /// What the file is when it is not an original: [`KIND_MP4`] or [`KIND_RECEIPT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For a file made from another file of the package (an MP4 from its MPEG-TS): that
    /// file's name. Its pictures are those of the original's segments, which the
    /// manifest lists under the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
    /// For a redacted derivative: the zones filled in, each `x1,y1 x2,y2 …` in fractions
    /// of the picture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Listed (so the segments and the Merkle root still describe all the footage) but not
    /// in the package: the approver withheld the originals of a redacted export, which the
    /// hospital's archived copy keeps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
}

impl FileEntry {
    /// An original file: segments concatenated.
    pub fn original(name: impl Into<String>, bytes: u64, blake3: impl Into<String>) -> FileEntry {
        FileEntry {
            name: name.into(),
            bytes,
            blake3: blake3.into(),
            kind: None,
            derived_from: None,
            zones: vec![],
            withheld: false,
        }
    }
}

/// A segment inside a media file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub camera: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub bytes: u64,
    /// Hex BLAKE3 of the segment's plaintext (its content hash in the catalog).
    pub blake3: String,
    /// The media file holding it, and where in that file it starts.
    pub file: String,
    pub offset: u64,
    /// Present only for a segment recorded while its recorder's clock was off the
    /// cluster's median by more than the skew bound: that offset (ms, the recorder's clock
    /// minus the median), so its times may be off by as much. Absent otherwise, so a
    /// package without flagged footage is byte for byte what earlier releases wrote, and
    /// readers that predate the field (which ignore unknown fields) still verify packages
    /// that have it: the signature covers the manifest's exact bytes, the field included,
    /// and `format` stays `custos-export-v1` (the Merkle construction is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
}

/// What an export contains and why it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub export_id: String,
    pub case_id: String,
    pub organisation: String,
    pub letter: String,
    pub purpose: String,
    pub requester: String,
    pub approver: String,
    pub requested_ms: i64,
    pub approved_ms: i64,
    pub created_ms: i64,
    /// The hospital that hands the copy over, as its nodes are configured (`hospital` in
    /// `custos.toml`); absent when none is set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hospital: String,
    pub ranges: Vec<ExportRange>,
    pub files: Vec<FileEntry>,
    pub segments: Vec<SegmentEntry>,
    /// Hex Merkle root over the segment hashes.
    pub merkle_root: String,
    /// Hex Ed25519 public key of the cluster signing key.
    pub signing_key: String,
}

impl Manifest {
    /// The canonical bytes that are signed and written as `manifest.json`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        b.push(b'\n');
        b
    }
}

/// The Merkle root over `leaves` (see the module docs). `None` for no leaves.
pub fn merkle_root(leaves: &[Hash]) -> Option<Hash> {
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|h| {
            let mut x = blake3::Hasher::new();
            x.update(&[0]);
            x.update(h);
            *x.finalize().as_bytes()
        })
        .collect();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut x = blake3::Hasher::new();
                    x.update(&[1]);
                    x.update(l);
                    x.update(r);
                    *x.finalize().as_bytes()
                }
                [one] => *one,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
    }
    Some(level[0])
}

/// The cluster's signing key (Ed25519, PKCS#8).
pub struct SigningKey(ring::signature::Ed25519KeyPair);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_hex())
    }
}

impl SigningKey {
    /// A new random key as PKCS#8 bytes.
    pub fn generate_pkcs8() -> Result<Vec<u8>, String> {
        let rng = ring::rand::SystemRandom::new();
        ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| format!("generating the signing key: {e}"))
    }

    /// Loads a key from PKCS#8 bytes.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        ring::signature::Ed25519KeyPair::from_pkcs8(der)
            .map(SigningKey)
            .map_err(|e| format!("the signing key is not a valid Ed25519 PKCS#8 key: {e}"))
    }

    /// Hex public key.
    pub fn public_hex(&self) -> String {
        use ring::signature::KeyPair;
        hex::encode(self.0.public_key().as_ref())
    }

    /// Hex signature of `msg`.
    pub fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.0.sign(msg).as_ref())
    }
}

/// Digits of a key fingerprint: 32 hex digits are 128 bits, so making another key with
/// the same fingerprint takes about 2^128 tries (2^64 for two keys that share one), out
/// of anyone's reach; a 64-bit fingerprint is within reach of a determined forger.
pub const FINGERPRINT_HEX_DIGITS: usize = 32;

/// Fingerprint of a hex public key, for reading aloud or printing on a letter: the
/// first 32 hex digits (128 bits) of the BLAKE3 of the key's hex, in groups of four
/// (`1a2b-3c4d-…`, 8 groups).
pub fn key_fingerprint(public_hex: &str) -> String {
    let h = blake3::hash(public_hex.trim().to_lowercase().as_bytes()).to_hex();
    h[..FINGERPRINT_HEX_DIGITS]
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("hex"))
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks a hex signature of `msg` by the hex public key.
pub fn verify_signature(public_hex: &str, msg: &[u8], sig_hex: &str) -> Result<(), String> {
    let pk = hex::decode(public_hex.trim()).map_err(|_| "the public key is not hex".to_string())?;
    let sig = hex::decode(sig_hex.trim()).map_err(|_| "the signature is not hex".to_string())?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk)
        .verify(msg, &sig)
        .map_err(|_| "the signature does not match the manifest".to_string())
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub export_id: String,
    /// Files checked (originals, derived files and the receipt).
    pub files: usize,
    /// Of which MP4 remuxes, redacted derivatives, and whether a custody receipt was
    /// among them.
    pub mp4s: usize,
    pub redacted: usize,
    pub receipt: bool,
    /// Files the manifest lists as withheld and the package does not hold (originals of a
    /// redacted export, kept by the hospital).
    pub withheld: Vec<String>,
    pub segments: usize,
    pub bytes: u64,
    pub merkle_root: String,
    /// The key that signed, and whether it is the one the caller expected.
    pub signing_key: String,
    pub key_checked: bool,
}

/// Verifies the package in `dir`. With `expected_key`, the manifest must be signed by
/// that key; without, by the key it names (then only integrity is proven, not origin).
/// On failure, returns every problem found, each naming the file or segment.
pub fn verify_package(dir: &Path, expected_key: Option<&str>) -> Result<Verified, Vec<String>> {
    verify_package_with(|name| std::fs::read(dir.join(name)), expected_key)
}

/// [`verify_package`] over any store of the package's files: `read(name)` returns the
/// bytes of the file called `name` (the fuzz target keeps them in memory).
pub fn verify_package_with(
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
    expected_key: Option<&str>,
) -> Result<Verified, Vec<String>> {
    let read_or = |name: &str| read(name).map_err(|e| vec![format!("{name}: cannot read: {e}")]);
    let manifest_bytes = read_or(MANIFEST_FILE)?;
    let sig = read_or(SIGNATURE_FILE)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| vec![format!("{MANIFEST_FILE}: not a Custos export manifest: {e}")])?;
    let mut problems = Vec::new();
    if manifest.format != FORMAT {
        return Err(vec![format!("{MANIFEST_FILE}: format {:?}, this verifier reads {FORMAT}", manifest.format)]);
    }
    let key = expected_key.unwrap_or(&manifest.signing_key).trim().to_lowercase();
    if expected_key.is_some() && key != manifest.signing_key {
        problems
            .push(format!("{MANIFEST_FILE}: names signing key {} but the expected key is {key}", manifest.signing_key));
    }
    if let Err(e) = verify_signature(&key, &manifest_bytes, &String::from_utf8_lossy(&sig)) {
        problems.push(format!("{SIGNATURE_FILE}: {e} (the manifest was changed, or signed by another key)"));
    }
    let mut total = 0u64;
    let mut absent = Vec::new();
    for f in &manifest.files {
        if f.name.contains('/') || f.name.contains('\\') || f.name.starts_with('.') {
            problems.push(format!("{}: file names may not leave the package directory", f.name));
            continue;
        }
        let data = match read(&f.name) {
            Ok(d) => d,
            // Withheld by the approver: the hospital keeps it; nothing here to check.
            Err(e) if f.withheld && e.kind() == std::io::ErrorKind::NotFound => {
                absent.push(f.name.clone());
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: cannot read: {e}", f.name));
                continue;
            }
        };
        total += data.len() as u64;
        if data.len() as u64 != f.bytes {
            problems.push(format!("{}: {} bytes, the manifest says {}", f.name, data.len(), f.bytes));
        }
        if blake3::hash(&data).to_hex().as_str() != f.blake3 {
            problems.push(format!("{}: BLAKE3 differs from the manifest", f.name));
        }
        let shape_ok = match f.kind.as_deref() {
            Some(KIND_MP4) | Some(KIND_REDACTED) => data.get(4..8) == Some(b"ftyp".as_slice()),
            Some(KIND_RECEIPT) => data.starts_with(b"%PDF-"),
            _ => true,
        };
        if !shape_ok {
            problems.push(format!("{}: not a {} file", f.name, f.kind.as_deref().unwrap_or("")));
        }
        for s in manifest.segments.iter().filter(|s| s.file == f.name) {
            let end = s.offset.checked_add(s.bytes).filter(|&e| e <= data.len() as u64);
            let ok =
                end.is_some_and(|e| blake3::hash(&data[s.offset as usize..e as usize]).to_hex().as_str() == s.blake3);
            if !ok {
                problems.push(format!(
                    "{}: segment {}@{} (bytes {}..{}) differs from the manifest",
                    f.name,
                    s.camera,
                    s.start_ms,
                    s.offset,
                    s.offset.saturating_add(s.bytes)
                ));
            }
        }
    }
    for f in &manifest.files {
        match (f.kind.as_deref(), f.derived_from.as_deref()) {
            (None, None) => {}
            (Some(KIND_MP4), Some(from)) => {
                let original = manifest.files.iter().find(|o| o.name == from);
                if original.is_none_or(|o| o.kind.is_some()) {
                    problems
                        .push(format!("{}: made from {from}, which is not an original file of the package", f.name));
                }
            }
            (Some(KIND_REDACTED), Some(from)) => {
                let original = manifest.files.iter().find(|o| o.name == from);
                if original.is_none_or(|o| o.kind.is_some()) {
                    problems
                        .push(format!("{}: made from {from}, which is not an original file of the package", f.name));
                }
                if f.zones.is_empty() {
                    problems.push(format!("{}: a redacted file that names no zones", f.name));
                }
            }
            (Some(KIND_RECEIPT), None) => {}
            (kind, from) => problems.push(format!(
                "{}: unknown kind {:?} (made from {:?}); this verifier knows originals, {KIND_MP4}, {KIND_REDACTED} \
                 and {KIND_RECEIPT}",
                f.name,
                kind.unwrap_or(""),
                from.unwrap_or("")
            )),
        }
        if manifest.segments.iter().any(|s| s.file == f.name) && f.kind.is_some() {
            problems.push(format!("{}: segments are listed only under original files", f.name));
        }
    }
    for s in &manifest.segments {
        if !manifest.files.iter().any(|f| f.name == s.file) {
            problems.push(format!(
                "segment {}@{} names file {} that the manifest does not list",
                s.camera, s.start_ms, s.file
            ));
        }
    }
    let leaves: Result<Vec<Hash>, _> = manifest
        .segments
        .iter()
        .map(|s| hex::decode(&s.blake3).ok().and_then(|b| <Hash>::try_from(b.as_slice()).ok()).ok_or(()))
        .collect();
    match leaves.ok().and_then(|l| merkle_root(&l)) {
        Some(root) if hex::encode(root) == manifest.merkle_root => {}
        _ => problems.push(format!("{MANIFEST_FILE}: the Merkle root does not match the segment hashes")),
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Verified {
        export_id: manifest.export_id.clone(),
        files: manifest.files.len(),
        mp4s: manifest
            .files
            .iter()
            .filter(|f| f.kind.as_deref() == Some(KIND_MP4) && !absent.contains(&f.name))
            .count(),
        redacted: manifest.files.iter().filter(|f| f.kind.as_deref() == Some(KIND_REDACTED)).count(),
        withheld: absent,
        receipt: manifest.files.iter().any(|f| f.kind.as_deref() == Some(KIND_RECEIPT)),
        segments: manifest.segments.len(),
        bytes: total,
        merkle_root: manifest.merkle_root.clone(),
        signing_key: key,
        key_checked: expected_key.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash {
        *blake3::hash(&[i]).as_bytes()
    }

    #[test]
    fn merkle_root_matches_the_documented_construction() {
        let leaf = |x: &Hash| {
            let mut v = vec![0u8];
            v.extend_from_slice(x);
            *blake3::hash(&v).as_bytes()
        };
        let node = |l: &Hash, r: &Hash| {
            let mut v = vec![1u8];
            v.extend_from_slice(l);
            v.extend_from_slice(r);
            *blake3::hash(&v).as_bytes()
        };
        assert_eq!(merkle_root(&[]), None);
        assert_eq!(merkle_root(&[h(1)]), Some(leaf(&h(1))));
        let (a, b, c) = (leaf(&h(1)), leaf(&h(2)), leaf(&h(3)));
        assert_eq!(merkle_root(&[h(1), h(2), h(3)]), Some(node(&node(&a, &b), &c)));
        // Order matters.
        assert_ne!(merkle_root(&[h(1), h(2)]), merkle_root(&[h(2), h(1)]));
    }

    #[test]
    fn a_package_verifies_and_every_change_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let (s1, s2) = (b"first segment".to_vec(), b"second".to_vec());
        let media = [s1.clone(), s2.clone()].concat();
        std::fs::write(dir.path().join("door.ts"), &media).unwrap();
        let seg = |data: &[u8], start: i64, offset: u64| SegmentEntry {
            camera: "door".into(),
            start_ms: start,
            end_ms: start + 4000,
            bytes: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
            file: "door.ts".into(),
            offset,
            clock_offset_ms: None,
        };
        let segments = vec![seg(&s1, 0, 0), seg(&s2, 4000, s1.len() as u64)];
        let root = merkle_root(&[*blake3::hash(&s1).as_bytes(), *blake3::hash(&s2).as_bytes()]).unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            export_id: "E-000001".into(),
            case_id: "case-1".into(),
            organisation: "Police".into(),
            letter: "L-1".into(),
            purpose: "test".into(),
            requester: "a".into(),
            approver: "b".into(),
            requested_ms: 1,
            approved_ms: 2,
            created_ms: 3,
            hospital: String::new(),
            ranges: vec![ExportRange { camera: "door".into(), from_ms: 0, to_ms: 8000 }],
            files: vec![FileEntry::original("door.ts", media.len() as u64, blake3::hash(&media).to_hex().to_string())],
            segments,
            merkle_root: hex::encode(root),
            signing_key: key.public_hex(),
        };
        let bytes = m.to_bytes();
        std::fs::write(dir.path().join(MANIFEST_FILE), &bytes).unwrap();
        std::fs::write(dir.path().join(SIGNATURE_FILE), key.sign_hex(&bytes)).unwrap();
        let ok = verify_package(dir.path(), Some(&key.public_hex())).unwrap();
        assert_eq!((ok.files, ok.segments, ok.merkle_root.clone()), (1, 2, hex::encode(root)));

        // One changed media byte: the file and the segment are named.
        let mut bad = media.clone();
        bad[s1.len() + 1] ^= 1;
        std::fs::write(dir.path().join("door.ts"), &bad).unwrap();
        let e = verify_package(dir.path(), None).unwrap_err();
        assert!(e.iter().any(|p| p.contains("door.ts: BLAKE3 differs")), "{e:?}");
        assert!(e.iter().any(|p| p.contains("segment door@4000")), "{e:?}");
        assert!(!e.iter().any(|p| p.contains("segment door@0 ")), "the intact segment is not blamed: {e:?}");
        std::fs::write(dir.path().join("door.ts"), &media).unwrap();

        // One changed manifest byte: the signature fails.
        let text = String::from_utf8(bytes.clone()).unwrap().replace("Police", "Polize");
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        let e = verify_package(dir.path(), None).unwrap_err();
        assert!(e.iter().any(|p| p.contains("manifest.sig")), "{e:?}");
        std::fs::write(dir.path().join(MANIFEST_FILE), &bytes).unwrap();

        // Another key expected: refused.
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let e = verify_package(dir.path(), Some(&other.public_hex())).unwrap_err();
        assert!(e.iter().any(|p| p.contains("expected key")), "{e:?}");
        let fp = key_fingerprint(&key.public_hex());
        assert_eq!(fp.len(), 32 + 7, "{fp}");
        assert_eq!(fp.split('-').count(), 8);
        assert_eq!(fp.replace('-', "").len() * 4, 128, "at least 128 bits");
        assert_eq!(fp, key_fingerprint(&key.public_hex().to_uppercase()), "the same key reads the same");
    }

    #[test]
    fn derived_files_and_the_receipt_are_checked_against_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let ts = b"segment".to_vec();
        let mp4 = [&[0u8, 0, 0, 16][..], b"ftypisom", b"\0\0\0\0", b"rest of it"].concat();
        let pdf = b"%PDF-1.7 receipt".to_vec();
        let entry = |name: &str, data: &[u8], kind: Option<&str>, from: Option<&str>| FileEntry {
            name: name.into(),
            bytes: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
            kind: kind.map(String::from),
            derived_from: from.map(String::from),
            zones: vec![],
            withheld: false,
        };
        let write = |files: Vec<FileEntry>| {
            let m = Manifest {
                format: FORMAT.into(),
                export_id: "E-000002".into(),
                case_id: "c".into(),
                organisation: "o".into(),
                letter: "l".into(),
                purpose: "p".into(),
                requester: "a".into(),
                approver: "b".into(),
                requested_ms: 1,
                approved_ms: 2,
                created_ms: 3,
                hospital: "St. Example".into(),
                ranges: vec![],
                files,
                segments: vec![SegmentEntry {
                    camera: "door".into(),
                    start_ms: 0,
                    end_ms: 4000,
                    bytes: ts.len() as u64,
                    blake3: blake3::hash(&ts).to_hex().to_string(),
                    file: "door.ts".into(),
                    offset: 0,
                    clock_offset_ms: None,
                }],
                merkle_root: hex::encode(merkle_root(&[*blake3::hash(&ts).as_bytes()]).unwrap()),
                signing_key: key.public_hex(),
            };
            let bytes = m.to_bytes();
            std::fs::write(dir.path().join(MANIFEST_FILE), &bytes).unwrap();
            std::fs::write(dir.path().join(SIGNATURE_FILE), key.sign_hex(&bytes)).unwrap();
        };
        for (name, data) in [("door.ts", &ts), ("door.mp4", &mp4), (RECEIPT_FILE, &pdf)] {
            std::fs::write(dir.path().join(name), data).unwrap();
        }
        let good = vec![
            entry("door.ts", &ts, None, None),
            entry("door.mp4", &mp4, Some(KIND_MP4), Some("door.ts")),
            entry(RECEIPT_FILE, &pdf, Some(KIND_RECEIPT), None),
        ];
        write(good.clone());
        let v = verify_package(dir.path(), Some(&key.public_hex())).unwrap();
        assert_eq!((v.files, v.mp4s, v.receipt, v.segments), (3, 1, true, 1));

        // A changed byte in the MP4 or the receipt is named.
        for (name, data) in [("door.mp4", &mp4), (RECEIPT_FILE, &pdf)] {
            let mut bad = data.clone();
            *bad.last_mut().unwrap() ^= 1;
            std::fs::write(dir.path().join(name), &bad).unwrap();
            let e = verify_package(dir.path(), None).unwrap_err();
            assert_eq!(e, vec![format!("{name}: BLAKE3 differs from the manifest")]);
            std::fs::write(dir.path().join(name), data).unwrap();
        }
        // An MP4 said to be made from a file the package does not hold, an unknown kind,
        // and a receipt that is not a PDF are each refused.
        let mut files = good.clone();
        files[1].derived_from = Some("lift.ts".into());
        write(files);
        let e = verify_package(dir.path(), None).unwrap_err();
        assert!(e.iter().any(|p| p.contains("door.mp4: made from lift.ts")), "{e:?}");
        let mut files = good.clone();
        files[1].kind = Some("avi".into());
        write(files);
        let e = verify_package(dir.path(), None).unwrap_err();
        assert!(e.iter().any(|p| p.contains("door.mp4: unknown kind")), "{e:?}");
        std::fs::write(dir.path().join(RECEIPT_FILE), b"not a pdf").unwrap();
        let mut files = good.clone();
        files[2] = entry(RECEIPT_FILE, b"not a pdf", Some(KIND_RECEIPT), None);
        write(files);
        let e = verify_package(dir.path(), None).unwrap_err();
        assert_eq!(e, vec![format!("{RECEIPT_FILE}: not a receipt file")]);
    }
}

//! The property the `manifest` fuzz target checks, shared with the corpus replay test.

use crate::export::{verify_package_with, MANIFEST_FILE, SIGNATURE_FILE};

/// Splits the fuzzer's bytes at 0xFF into a manifest, a signature and the bytes of every
/// other file, and verifies that package: any answer but a panic is fine, and a package
/// that verifies must have had its manifest signed (the fuzzer cannot forge one).
pub fn manifest(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let manifest = parts.next().unwrap_or_default().to_vec();
    let sig = parts.next().unwrap_or_default().to_vec();
    let file = parts.next().unwrap_or_default().to_vec();
    let read = |name: &str| -> std::io::Result<Vec<u8>> {
        Ok(match name {
            MANIFEST_FILE => manifest.clone(),
            SIGNATURE_FILE => sig.clone(),
            _ => file.clone(),
        })
    };
    if let Ok(v) = verify_package_with(read, None) {
        crate::export::verify_signature(&v.signing_key, &manifest, &String::from_utf8_lossy(&sig))
            .expect("a package verified without a valid signature");
    }
}

#[cfg(test)]
mod tests {
    use crate::export::*;

    /// A real signed one-file package, as the fuzzer's bytes.
    fn seed() -> Vec<u8> {
        let content: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
        let segs = [(0usize, 1000usize), (1000, 1500), (2500, 500)];
        let segments: Vec<SegmentEntry> = segs
            .iter()
            .enumerate()
            .map(|(i, &(off, len))| SegmentEntry {
                camera: "door".into(),
                start_ms: 1_764_000_000_000 + i as i64 * 4000,
                end_ms: 1_764_000_004_000 + i as i64 * 4000,
                bytes: len as u64,
                blake3: blake3::hash(&content[off..off + len]).to_hex().to_string(),
                file: "door.ts".into(),
                offset: off as u64,
                clock_offset_ms: None,
            })
            .collect();
        let leaves: Vec<[u8; 32]> = segs.iter().map(|&(o, l)| *blake3::hash(&content[o..o + l]).as_bytes()).collect();
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            export_id: "exp-1".into(),
            case_id: "case-7".into(),
            organisation: "police".into(),
            letter: "letter.pdf".into(),
            purpose: "incident 2026-113".into(),
            requester: "alice".into(),
            approver: "bob".into(),
            requested_ms: 1,
            approved_ms: 2,
            created_ms: 3,
            hospital: String::new(),
            ranges: vec![ExportRange { camera: "door".into(), from_ms: 1, to_ms: 2 }],
            files: vec![FileEntry::original(
                "door.ts",
                content.len() as u64,
                blake3::hash(&content).to_hex().to_string(),
            )],
            segments,
            merkle_root: hex::encode(merkle_root(&leaves).unwrap()),
            signing_key: key.public_hex(),
        };
        let bytes = m.to_bytes();
        let mut out = bytes.clone();
        out.push(0xFF);
        out.extend_from_slice(key.sign_hex(&bytes).as_bytes());
        out.push(0xFF);
        out.extend_from_slice(&content);
        out
    }

    #[test]
    fn a_real_package_verifies_through_the_fuzz_entry() {
        let s = seed();
        let (m, rest) = s.split_at(s.iter().position(|&b| b == 0xFF).unwrap());
        let sig_end = rest[1..].iter().position(|&b| b == 0xFF).unwrap() + 1;
        let read = |name: &str| -> std::io::Result<Vec<u8>> {
            Ok(match name {
                MANIFEST_FILE => m.to_vec(),
                SIGNATURE_FILE => rest[1..sig_end].to_vec(),
                _ => rest[sig_end + 1..].to_vec(),
            })
        };
        let v = verify_package_with(read, None).expect("the seed package verifies");
        assert_eq!(v.segments, 3);
        super::manifest(&s);
    }

    /// `CUSTOS_SEED_DIR=fuzz/corpus/manifest cargo test -p custos-evidence -- --ignored`
    #[test]
    #[ignore]
    fn write_manifest_seed() {
        let dir = std::path::PathBuf::from(std::env::var("CUSTOS_SEED_DIR").expect("CUSTOS_SEED_DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("signed-package"), seed()).unwrap();
    }
}

//! Evidence exports, the node's side: the rules of the workflow and the assembly of a
//! package's manifest. The package format and its offline verification live in
//! `custos_evidence::export`, shared with the client.
//!
//! The hospital's archived copy is the signed manifest, committed through Raft, plus the
//! segments it lists, kept by a hold on the case that the same command places. A media
//! file is those segments' verified plaintexts concatenated, so every download rebuilds
//! it byte for byte, and the investigator's copy and the archived copy have the same
//! Merkle root by construction. The MP4 beside each ([`mp4`]) and the custody receipt
//! ([`receipt`]) are made deterministically from the same segments and the manifest, so
//! a download rebuilds them too and checks them against the hashes the manifest lists.

pub mod mp4;
pub mod receipt;
pub mod redact;

use custos_evidence::export::{
    merkle_root, ExportRange, FileEntry, Manifest, SegmentEntry, SigningKey, FORMAT, KIND_MP4, KIND_RECEIPT,
    KIND_REDACTED, RECEIPT_FILE,
};

use crate::meta::{ExportRecord, SegmentRecord};

pub use crate::meta::types::APPROVAL_VALID_MS;
/// Most segments one export may hold (about 22 hours of 4-second segments).
pub const EXPORT_SEGMENTS_MAX: usize = 20_000;
/// Most camera ranges one export may name.
pub const EXPORT_RANGES_MAX: usize = 64;
/// The cluster's Ed25519 signing key (PKCS#8), under the data directory.
pub const SIGNING_KEY_FILE: &str = "keys/signing.pk8";

/// The media file name of each range: `<camera>.ts`, numbered when a camera repeats.
pub fn file_names(ranges: &[(String, i64, i64)]) -> Vec<String> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, (cam, _, _))| {
            let earlier = ranges[..i].iter().filter(|(c, _, _)| c == cam).count();
            let total = ranges.iter().filter(|(c, _, _)| c == cam).count();
            if total == 1 {
                format!("{cam}.ts")
            } else {
                format!("{cam}-{}.ts", earlier + 1)
            }
        })
        .collect()
}

/// The name of the redacted derivative beside an original (`door.ts` →
/// `door-redacted.mp4`).
pub fn redacted_name(ts_name: &str) -> String {
    format!("{}-redacted.mp4", ts_name.strip_suffix(".ts").unwrap_or(ts_name))
}

/// One media file as built: its name, its segments in order, and the BLAKE3 and size of
/// the concatenated plaintexts.
pub struct BuiltFile {
    pub name: String,
    pub segments: Vec<SegmentRecord>,
    /// Per segment (same order): its recorder's clock offset from the cluster's median
    /// when the segment was flagged as recorded by a skewed clock.
    pub clock_offsets_ms: Vec<Option<i64>>,
    pub blake3: String,
    pub bytes: u64,
    /// Its MP4 remux, when one could be made (see [`mp4`]).
    pub mp4: Option<Derived>,
    /// Its redacted derivative and the zones filled in, for a redacted export.
    pub redacted: Option<(Derived, Vec<crate::zones::Zone>)>,
}

/// A file made from an original: its size and BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub bytes: u64,
    pub blake3: String,
}

/// The receipt of the package `m` describes, made as it was when the package was built:
/// from the manifest without the receipt's own entry.
pub fn receipt_of(m: &Manifest) -> Result<Vec<u8>, String> {
    let mut without = m.clone();
    without.files.retain(|f| f.kind.as_deref() != Some(KIND_RECEIPT));
    receipt::render(&without)
}

/// The manifest of `rec`'s package, signed by `key`, with the custody receipt made from
/// it listed last. Returns the manifest, its exact bytes and the hex signature of those
/// bytes.
pub fn manifest(
    rec: &ExportRecord,
    files: &[BuiltFile],
    withhold_originals: bool,
    hospital: &str,
    key: &SigningKey,
    now_ms: i64,
) -> Result<(Manifest, Vec<u8>, String), String> {
    let mut segments = Vec::new();
    let mut leaves = Vec::new();
    for f in files {
        let mut offset = 0;
        for (i, s) in f.segments.iter().enumerate() {
            segments.push(SegmentEntry {
                clock_offset_ms: f.clock_offsets_ms.get(i).copied().flatten(),
                camera: s.camera.clone(),
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                bytes: s.bytes,
                blake3: hex::encode(s.content_hash),
                file: f.name.clone(),
                offset,
            });
            leaves.push(s.content_hash);
            offset += s.bytes;
        }
    }
    let mut m = Manifest {
        format: FORMAT.into(),
        export_id: rec.id.clone(),
        case_id: rec.case_id.clone(),
        organisation: rec.organisation.clone(),
        letter: rec.letter.clone(),
        purpose: rec.purpose.clone(),
        requester: rec.requester.clone(),
        approver: rec.decided_by.clone().unwrap_or_default(),
        requested_ms: rec.requested_ms,
        approved_ms: rec.decided_ms.unwrap_or_default(),
        created_ms: now_ms,
        hospital: hospital.trim().to_string(),
        ranges: rec.ranges.iter().map(|(c, f, t)| ExportRange { camera: c.clone(), from_ms: *f, to_ms: *t }).collect(),
        files: files
            .iter()
            .flat_map(|f| {
                let mut original = FileEntry::original(f.name.clone(), f.bytes, f.blake3.clone());
                original.withheld = withhold_originals;
                let mp4 = f.mp4.as_ref().map(|d| FileEntry {
                    kind: Some(KIND_MP4.into()),
                    derived_from: Some(f.name.clone()),
                    withheld: withhold_originals,
                    ..FileEntry::original(mp4::mp4_name(&f.name), d.bytes, d.blake3.clone())
                });
                let redacted = f.redacted.as_ref().map(|(d, zones)| FileEntry {
                    kind: Some(KIND_REDACTED.into()),
                    derived_from: Some(f.name.clone()),
                    zones: zones.iter().map(ToString::to_string).collect(),
                    ..FileEntry::original(redacted_name(&f.name), d.bytes, d.blake3.clone())
                });
                std::iter::once(original).chain(mp4).chain(redacted)
            })
            .collect(),
        segments,
        merkle_root: merkle_root(&leaves).map(hex::encode).unwrap_or_default(),
        signing_key: key.public_hex(),
    };
    let receipt = receipt::render(&m)?;
    m.files.push(FileEntry {
        kind: Some(KIND_RECEIPT.into()),
        ..FileEntry::original(RECEIPT_FILE, receipt.len() as u64, blake3::hash(&receipt).to_hex().to_string())
    });
    let bytes = m.to_bytes();
    let sig = key.sign_hex(&bytes);
    Ok((m, bytes, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_cameras_get_numbered_files() {
        let r = |c: &str| (c.to_string(), 0, 1);
        assert_eq!(file_names(&[r("door"), r("lift")]), ["door.ts", "lift.ts"]);
        assert_eq!(file_names(&[r("door"), r("lift"), r("door")]), ["door-1.ts", "lift.ts", "door-2.ts"]);
    }
}

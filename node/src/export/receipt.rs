//! The custody receipt (`receipt.pdf`) of an export package: the paper that the person
//! handing the copy over and the person receiving it both sign. It names the hospital and
//! the case, who asked (organisation, letter, purpose), who requested and who approved
//! inside the hospital and when, the cameras and ranges, every file with its size and
//! BLAKE3, the Merkle root and the signing key with its fingerprint, and how to verify.
//!
//! It is rendered from the manifest alone (with krilla, in the font `build.rs` embeds),
//! deterministically: a node rebuilds a package's receipt on download and checks it
//! against the hash the signed manifest lists, as it does for the media files.

use custos_evidence::export::{key_fingerprint, Manifest, KIND_MP4, KIND_RECEIPT, KIND_REDACTED};
use krilla::geom::Point;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use krilla::Document;

static FONT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/receipt-font.ttc"));

/// A4 in points, and the margins.
const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;

/// One line of the receipt: text, size, bold-ish emphasis by size, and space before it.
struct Line {
    text: String,
    size: f32,
    indent: f32,
    gap: f32,
}

/// Width of `text` at `size`, estimated: wide (CJK) characters take a full em, others a
/// little over half of one (the font's Latin is proportional; this errs on the wide side).
fn width(text: &str, size: f32) -> f32 {
    text.chars().map(|c| if (c as u32) < 0x2E80 { 0.56 } else { 1.0 }).sum::<f32>() * size
}

/// Breaks `text` into pieces no wider than `max`: at spaces where it can, inside words
/// (hashes, paths) where it must.
fn wrap(text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let candidate = if cur.is_empty() { word.to_string() } else { format!("{cur} {word}") };
        if width(&candidate, size) <= max {
            cur = candidate;
            continue;
        }
        if !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        for c in word.chars() {
            if width(&cur, size) + width(&c.to_string(), size) > max && !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// UTC time of day of a Unix millisecond, as people write it on a form.
fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// The receipt's lines, in order.
fn lines(m: &Manifest) -> Vec<Line> {
    let mut out = Vec::new();
    let mut push = |text: String, size: f32, indent: f32, gap: f32| out.push(Line { text, size, indent, gap });
    push("Custody receipt for a copy of surveillance footage".into(), 16.0, 0.0, 0.0);
    push("监控录像副本交接回执".into(), 13.0, 0.0, 4.0);
    let hospital = if m.hospital.is_empty() { "(not configured: `hospital` in custos.toml)" } else { &m.hospital };
    let field = |label: &str, value: &str| format!("{label}: {value}");
    let rows = [
        ("Hospital / 医院", hospital.to_string()),
        ("Export / 导出编号", m.export_id.clone()),
        ("Case / 案件", m.case_id.clone()),
        ("Requesting organisation / 调取单位", m.organisation.clone()),
        ("Letter reference / 公函编号", m.letter.clone()),
        ("Purpose / 用途", m.purpose.clone()),
        ("Requested by / 申请人", format!("{} at {}", m.requester, when(m.requested_ms))),
        ("Approved by / 批准人", format!("{} at {}", m.approver, when(m.approved_ms))),
        ("Package made / 生成时间", when(m.created_ms)),
    ];
    for (i, (label, value)) in rows.iter().enumerate() {
        push(field(label, value), 10.0, 0.0, if i == 0 { 14.0 } else { 3.0 });
    }
    push("Cameras and time ranges / 摄像机与时段".into(), 12.0, 0.0, 14.0);
    for r in &m.ranges {
        push(format!("{}: {} to {}", r.camera, when(r.from_ms), when(r.to_ms)), 10.0, 12.0, 3.0);
    }
    let segments = m.segments.len();
    push(format!("Files / 文件 ({segments} recorded segments in the originals)"), 12.0, 0.0, 14.0);
    for f in &m.files {
        let what = match (f.kind.as_deref(), f.derived_from.as_deref()) {
            (Some(KIND_MP4), Some(from)) => format!("MP4 remux of {from}, same pictures"),
            (Some(KIND_REDACTED), Some(from)) => {
                format!("redacted copy of {from}: {} privacy zones filled in, re-encoded", f.zones.len())
            }
            (Some(KIND_RECEIPT), _) => "this receipt".to_string(),
            _ => "original MPEG-TS".to_string(),
        };
        let held =
            if f.withheld { "; WITHHELD by the approver, kept by the hospital / 未移交，医院留存" } else { "" };
        push(format!("{} ({} bytes, {what}{held})", f.name, f.bytes), 10.0, 12.0, 5.0);
        push(format!("BLAKE3 {}", f.blake3), 8.0, 24.0, 2.0);
        for z in &f.zones {
            push(format!("zone {z}"), 8.0, 24.0, 2.0);
        }
    }
    push("Integrity / 完整性".into(), 12.0, 0.0, 14.0);
    push(format!("Merkle root over the segments: {}", m.merkle_root), 9.0, 12.0, 3.0);
    push(format!("Signed by the hospital's key: {}", m.signing_key), 9.0, 12.0, 3.0);
    push(format!("Key fingerprint / 密钥指纹: {}", key_fingerprint(&m.signing_key)), 10.0, 12.0, 3.0);
    push(
        format!(
            "To check the copy: custos export verify DIR --pubkey {} (the manifest.json and manifest.sig in the package \
             list and sign every file above)",
            m.signing_key
        ),
        9.0,
        12.0,
        5.0,
    );
    push("Handed over by / 移交人 (hospital)".into(), 12.0, 0.0, 20.0);
    for l in [
        "Name / 姓名: ______________________________",
        "Signature / 签字: __________________________    Date / 日期: ______________",
    ] {
        push(l.to_string(), 10.0, 12.0, 14.0);
    }
    push("Received by / 接收人".into(), 12.0, 0.0, 20.0);
    for l in [
        "Name / 姓名: ______________________________    Organisation / 单位: ____________________",
        "Identity document / 证件号: ______________________________",
        "Signature / 签字: __________________________    Date / 日期: ______________",
    ] {
        push(l.to_string(), 10.0, 12.0, 14.0);
    }
    out
}

/// The receipt of the package `m` describes (its own entry, if listed, is left out: the
/// receipt is made before the manifest that hashes it).
pub fn render(m: &Manifest) -> Result<Vec<u8>, String> {
    let font = Font::new(FONT.into(), 0).ok_or("the embedded receipt font cannot be read")?;
    let page_settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("page size")?;
    let mut doc = Document::new();
    let mut page_lines: Vec<Vec<(f32, Line)>> = vec![Vec::new()];
    let mut y = MARGIN;
    for line in lines(m) {
        let max = PAGE_W - 2.0 * MARGIN - line.indent;
        let pieces = wrap(&line.text, line.size, max);
        for (i, text) in pieces.into_iter().enumerate() {
            let advance = if i == 0 { line.gap + line.size * 1.25 } else { line.size * 1.25 };
            if y + advance > PAGE_H - MARGIN {
                page_lines.push(Vec::new());
                y = MARGIN;
            }
            y += advance;
            page_lines
                .last_mut()
                .expect("a page")
                .push((y, Line { text, size: line.size, indent: line.indent, gap: 0.0 }));
        }
    }
    let pages = page_lines.len();
    for (n, lines) in page_lines.into_iter().enumerate() {
        let mut page = doc.start_page_with(page_settings.clone());
        let mut surface = page.surface();
        for (y, l) in lines {
            surface.draw_text(
                Point::from_xy(MARGIN + l.indent, y),
                font.clone(),
                l.size,
                &l.text,
                false,
                TextDirection::Auto,
            );
        }
        let footer = format!("{} · page {} of {pages}", m.export_id, n + 1);
        surface.draw_text(
            Point::from_xy(MARGIN, PAGE_H - MARGIN / 2.0),
            font.clone(),
            8.0,
            &footer,
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    let created = time::OffsetDateTime::from_unix_timestamp(m.created_ms / 1000).map_err(|e| e.to_string())?;
    doc.set_metadata(
        krilla::metadata::Metadata::new()
            .title(format!("Custody receipt, export {}", m.export_id))
            .creator("Custos".into())
            .creation_date(
                krilla::metadata::DateTime::new(created.year() as u16)
                    .month(created.month() as u8)
                    .day(created.day())
                    .hour(created.hour())
                    .minute(created.minute())
                    .second(created.second())
                    .utc_offset_hour(0)
                    .utc_offset_minute(0),
            ),
    );
    doc.finish().map_err(|e| format!("rendering the receipt: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_evidence::export::{ExportRange, FileEntry, FORMAT};

    fn manifest(files: usize) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            export_id: "E-000042".into(),
            case_id: "case-7".into(),
            organisation: "City Police Station 3 / 市公安局第三派出所".into(),
            letter: "letter 2026-114".into(),
            purpose: "court order 2026-114".into(),
            requester: "li.wei".into(),
            approver: "dr.chen".into(),
            requested_ms: 1_780_000_000_000,
            approved_ms: 1_780_000_100_000,
            created_ms: 1_780_000_200_000,
            hospital: "St. Example Hospital".into(),
            ranges: vec![ExportRange { camera: "door".into(), from_ms: 1_779_999_000_000, to_ms: 1_779_999_600_000 }],
            files: (0..files)
                .map(|i| FileEntry::original(format!("cam{i}.ts"), 1000 + i as u64, "ab".repeat(32)))
                .collect(),
            segments: vec![],
            merkle_root: "cd".repeat(32),
            signing_key: "ef".repeat(32),
        }
    }

    #[test]
    fn the_receipt_is_deterministic_and_long_ones_take_more_pages() {
        let m = manifest(2);
        let a = render(&m).unwrap();
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, render(&m).unwrap(), "the same manifest gives the same receipt");
        let mut other = m.clone();
        other.letter = "letter 2026-115".into();
        assert_ne!(a, render(&other).unwrap());
        let long = render(&manifest(80)).unwrap();
        let count = |pdf: &[u8]| pdf.windows(6).filter(|w| w.starts_with(b"/Page") && w[5] != b's').count();
        assert!(count(&long) > count(&a), "80 files run onto more pages");
        // A size that fits the one page it needs, with the font subset, not embedded whole.
        assert!(a.len() < 200_000, "{} bytes", a.len());
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_inside_hashes() {
        let w = wrap("aaaa bbbb cccc", 10.0, 60.0);
        assert_eq!(w, ["aaaa bbbb", "cccc"]);
        let h = wrap(&"f".repeat(200), 8.0, 300.0);
        assert!(h.len() > 1 && h.iter().all(|l| width(l, 8.0) <= 300.0));
        assert_eq!(h.concat(), "f".repeat(200));
    }
}

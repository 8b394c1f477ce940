//! Properties the fuzz targets in `fuzz/` check, shared with the corpus replay test so
//! that every input a fuzzer ever kept runs again in CI on the stable toolchain. Each
//! function takes the fuzzer's raw bytes and panics when a property breaks.

use crate::fields;
use crate::mpegts::{demux, frames_of, mux_segment, StreamType, TS_PACKET};
use crate::segmenter::{AccessUnit, Cut, Segmenter, MAX_SEGMENT_BYTES, MAX_SEGMENT_UNITS};

/// Reads fuzzer bytes as a stream of small integers; runs dry as zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        b.iter_mut().for_each(|x| *x = self.u8());
        i64::from_le_bytes(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Request fields: whatever a client sends, a validator answers without panicking, and
/// what it accepts has the documented shape.
pub fn fields(data: &[u8]) {
    let mut r = Bytes(data);
    let from = r.i64();
    let to = r.i64();
    if fields::validate_range(from, to).is_ok() {
        assert!(0 < from && from < to && to - from <= fields::RANGE_MAX_MS, "{from}..{to} accepted");
    }
    let _ = fields::fmt_ms(from);
    let text = String::from_utf8_lossy(r.0);
    for s in [text.as_ref(), text.trim(), text.split('\n').next().unwrap_or("")] {
        let safe = |s: &str, extra: &[u8]| {
            (1..=64).contains(&s.len())
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        if fields::validate_camera_id(s).is_ok() {
            assert!(safe(s, b"-_."), "camera id {s:?} accepted");
        }
        if fields::validate_campus(s).is_ok() {
            assert!(safe(s, b"-_."), "campus {s:?} accepted");
        }
        if fields::validate_user_name("user name", s).is_ok() {
            assert!(safe(s, b"-_.@"), "user name {s:?} accepted");
        }
        if fields::validate_purpose(s).is_ok() {
            let t = s.trim();
            assert!(t.len() <= fields::PURPOSE_MAX_BYTES && t.chars().count() >= fields::PURPOSE_MIN_CHARS);
        }
    }
}

/// Any bytes handed to the segment reader: an answer (frames or a message), never a
/// panic, and never more frames than packets.
pub fn ts_demux(data: &[u8]) {
    if let Ok(d) = demux(data) {
        assert!(d.frames.len() <= data.len() / TS_PACKET);
    }
}

/// A camera's access units, however hostile their timing, sizes and flags: the
/// segmenter keeps every unit after the first keyframe exactly once and in order, cuts
/// each segment with an end after its start and within its size limits, and every muxed
/// segment reads back to the same frames.
pub fn ts_roundtrip(data: &[u8]) {
    let mut r = Bytes(data);
    let target_ns = (u64::from(r.u8()) + 1) * 50_000_000;
    let max_ns = target_ns * (u64::from(r.u8() % 8) + 1);
    let stream_type = if r.u8() & 1 == 0 { StreamType::H264 } else { StreamType::H265 };
    let name_len = usize::from(r.u8() % 140);
    let camera = String::from_utf8_lossy(r.take(name_len)).into_owned();
    // Wall-clock anchor as the pipeline uses: nanoseconds since 1970, so 90 kHz stamps
    // pass the 33-bit wrap.
    let wall0 = 1_700_000_000_000_000_000u64 + u64::from(r.u16()) * 1_000_000_000;
    let mut seg = Segmenter::new(target_ns, max_ns);
    let (mut pts, mut sent, mut got) = (1_000_000_000u64, Vec::new(), Vec::new());
    let check = |cut: Cut, got: &mut Vec<AccessUnit>| {
        assert!(!cut.units.is_empty() && cut.start_ns == cut.units[0].pts_ns);
        assert!(cut.end_ns > cut.start_ns, "segment ends at {} before it starts at {}", cut.end_ns, cut.start_ns);
        assert!(cut.units.len() <= MAX_SEGMENT_UNITS);
        let bytes: usize = cut.units.iter().map(|u| u.data.len()).sum();
        assert!(bytes <= MAX_SEGMENT_BYTES.max(cut.units[0].data.len()));
        let frames = frames_of(&cut.units, |ns| wall0 + ns);
        let ts = mux_segment(stream_type, &camera, &frames);
        assert_eq!(ts.len() % TS_PACKET, 0);
        let back = demux(&ts).unwrap_or_else(|e| panic!("a segment Custos wrote does not read back: {e}"));
        assert_eq!(back.stream_type, stream_type as u8);
        let mut end = camera.len().min(120);
        while !camera.is_char_boundary(end) {
            end -= 1;
        }
        assert_eq!(back.service_name.as_deref(), Some(&camera[..end]));
        assert_eq!(back.frames.len(), frames.len());
        for (f, b) in frames.iter().zip(&back.frames) {
            let pts = f.pts_90k % (1 << 33);
            assert_eq!((b.pts_90k, b.keyframe, b.data.as_slice()), (pts, f.keyframe, f.data));
            assert_eq!(b.dts_90k, f.dts_90k.map(|d| d % (1 << 33)).filter(|&d| d != pts));
        }
        got.extend(cut.units);
    };
    while !r.0.is_empty() {
        let flags = r.u8();
        let step = u64::from(r.u16()) * 20_000;
        pts = if flags & 0x80 != 0 { pts.saturating_sub(step) } else { pts + step };
        let len = usize::from(r.u16() % 2048) * if flags & 0x40 != 0 { 97 } else { 1 };
        let mut data = r.take(len).to_vec();
        data.resize(len, 0xAB);
        let dts = (flags & 0x20 != 0).then(|| pts.saturating_sub(step / 2));
        let au = AccessUnit { pts_ns: pts, dts_ns: dts, keyframe: flags & 1 != 0, data };
        if au.keyframe || !sent.is_empty() {
            sent.push(au.clone());
        }
        if let Some(cut) = seg.push(au) {
            check(cut, &mut got);
        }
    }
    if let Some(cut) = seg.finish() {
        check(cut, &mut got);
    }
    assert_eq!(got, sent, "the segmenter lost, duplicated or reordered access units");
}

#[cfg(test)]
mod tests {
    #[test]
    fn properties_hold_on_simple_inputs() {
        super::fields(b"\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0ward-3");
        super::ts_demux(&[0x47; 188 * 3]);
        let mut camera = vec![40, 2, 0, 4];
        camera.extend_from_slice(b"door");
        camera.extend_from_slice(&[0, 0]);
        for i in 0..200u8 {
            camera.extend_from_slice(&[u8::from(i % 25 == 0), 0x40, 0x1F, 100, 0]);
            camera.extend(std::iter::repeat_n(i, 100));
        }
        super::ts_roundtrip(&camera);
    }

    /// Writes seed inputs for the `ts_demux` fuzz target: segments this muxer wrote.
    /// `CUSTOS_SEED_DIR=fuzz/corpus/ts_demux cargo test -p custos-formats -- --ignored`
    #[test]
    #[ignore]
    fn write_demux_seeds() {
        use crate::mpegts::{mux_segment, Frame, StreamType};
        let dir = std::path::PathBuf::from(std::env::var("CUSTOS_SEED_DIR").expect("CUSTOS_SEED_DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for (k, (n, size)) in [(1usize, 10usize), (3, 183), (5, 400), (2, 5000)].into_iter().enumerate() {
            let frames: Vec<Frame<'_>> = (0..n)
                .map(|i| Frame {
                    pts_90k: (1 << 33) - 3000 + i as u64 * 3600,
                    dts_90k: (i % 2 == 1).then_some(i as u64 * 3600),
                    keyframe: i == 0,
                    data: &data[..size],
                })
                .collect();
            let st = if k % 2 == 0 { StreamType::H264 } else { StreamType::H265 };
            std::fs::write(dir.join(format!("seed-{k}")), mux_segment(st, "door", &frames)).unwrap();
        }
    }
}

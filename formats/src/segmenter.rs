//! Cutting an elementary stream into segments at keyframes. Pure logic, no GStreamer.
//!
//! Access units arrive in decode order. Everything before the first keyframe is dropped
//! (it cannot be decoded on its own). A segment closes at the first keyframe at or after
//! the target duration (less [`TOLERANCE_DIVISOR`]'s share, so a keyframe that timestamp
//! jitter puts a hair early still closes it), so each segment starts with a keyframe and
//! the next segment's first frame is this one's exclusive end: consecutive segments have
//! no gap.

/// A keyframe up to `target / TOLERANCE_DIVISOR` before the target closes the segment.
/// Without it, a camera whose keyframe interval equals the target cuts at twice the
/// target whenever network jitter makes a keyframe arrive a microsecond early.
pub const TOLERANCE_DIVISOR: u64 = 20;

/// Largest open segment, in bytes: a camera whose timestamps stop advancing (frozen or
/// reset clock) or that floods frames still gets cut, so memory stays bounded.
pub const MAX_SEGMENT_BYTES: usize = 64 << 20;
/// Most access units in one segment, for the same reason (empty frames count too).
pub const MAX_SEGMENT_UNITS: usize = 20_000;

/// One encoded frame (access unit), Annex-B byte stream with parameter sets repeated
/// before every keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Presentation time in nanoseconds on the pipeline's clock.
    pub pts_ns: u64,
    /// Decode time, when the stream has one distinct from the PTS.
    pub dts_ns: Option<u64>,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// A closed run of access units starting with a keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub units: Vec<AccessUnit>,
    pub start_ns: u64,
    /// Exclusive end: the next segment's first PTS, or an estimate at end of stream.
    pub end_ns: u64,
    /// True if closed without a keyframe: none came within [`Segmenter::new`]'s
    /// `max_ns`, or the segment reached [`MAX_SEGMENT_BYTES`] or [`MAX_SEGMENT_UNITS`].
    pub forced: bool,
}

/// Keyframe segmenter for one camera.
#[derive(Debug)]
pub struct Segmenter {
    target_ns: u64,
    max_ns: u64,
    units: Vec<AccessUnit>,
    /// Bytes and latest PTS of `units`.
    bytes: usize,
    max_pts_ns: u64,
    /// Last frame interval seen, to estimate the end of a final segment.
    last_frame_ns: u64,
}

impl Segmenter {
    /// A segmenter aiming at `target_ns`, forcing a cut at `max_ns` if the camera sends
    /// no keyframe for that long (a misconfigured GOP must not grow memory without bound).
    pub fn new(target_ns: u64, max_ns: u64) -> Self {
        Segmenter {
            target_ns,
            max_ns: max_ns.max(target_ns),
            units: Vec::new(),
            bytes: 0,
            max_pts_ns: 0,
            last_frame_ns: 40_000_000,
        }
    }

    fn start_ns(&self) -> Option<u64> {
        self.units.first().map(|u| u.pts_ns)
    }

    /// Buffered bytes of the open segment.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    fn open(&mut self, au: AccessUnit) -> Vec<AccessUnit> {
        self.bytes = au.data.len();
        self.max_pts_ns = au.pts_ns;
        std::mem::replace(&mut self.units, vec![au])
    }

    /// Where the open segment ends if it closes now: at `next_pts`, unless timestamps
    /// went backwards, when just after its latest frame (segments may then overlap in
    /// time, but none ends before it starts and none is dropped).
    fn end_before(&self, next_pts: u64) -> u64 {
        if next_pts > self.max_pts_ns {
            next_pts
        } else {
            self.max_pts_ns.saturating_add(self.last_frame_ns.max(1))
        }
    }

    /// Adds an access unit; returns the segment it closed, if any.
    pub fn push(&mut self, au: AccessUnit) -> Option<Cut> {
        let Some(start) = self.start_ns() else {
            if au.keyframe {
                self.open(au);
            }
            return None;
        };
        if let Some(last) = self.units.last() {
            if au.pts_ns > last.pts_ns {
                self.last_frame_ns = au.pts_ns - last.pts_ns;
            }
        }
        let elapsed = au.pts_ns.saturating_sub(start);
        let full = self.units.len() >= MAX_SEGMENT_UNITS || self.bytes + au.data.len() > MAX_SEGMENT_BYTES;
        let cut =
            if au.keyframe && (full || elapsed.saturating_add(self.target_ns / TOLERANCE_DIVISOR) >= self.target_ns) {
                Some(false)
            } else if elapsed >= self.max_ns || full {
                Some(true)
            } else {
                None
            };
        match cut {
            Some(forced) => {
                let end_ns = self.end_before(au.pts_ns);
                let units = self.open(au);
                Some(Cut { units, start_ns: start, end_ns, forced })
            }
            None => {
                self.bytes += au.data.len();
                self.max_pts_ns = self.max_pts_ns.max(au.pts_ns);
                self.units.push(au);
                None
            }
        }
    }

    /// The presentation time of the latest access unit, if a segment is open.
    pub fn last_pts_ns(&self) -> Option<u64> {
        self.units.last().map(|u| u.pts_ns)
    }

    /// Adds `more` to the latest access unit: the rest of the same picture, which a parser
    /// emitted apart (see [`continuation`]). Returns false, dropping it, when no segment is
    /// open yet (nothing before the first keyframe is kept) or the segment is full.
    pub fn extend_last(&mut self, more: &[u8], h265: bool) -> bool {
        if self.bytes + more.len() > MAX_SEGMENT_BYTES {
            return false;
        }
        let Some(last) = self.units.last_mut() else { return false };
        let rest = continuation(h265, &last.data, more);
        self.bytes += rest.len();
        last.data.extend_from_slice(rest);
        true
    }

    /// Closes the open segment at end of stream (or on an error), if it has frames.
    pub fn finish(&mut self) -> Option<Cut> {
        let start = self.start_ns()?;
        let end_ns = self.max_pts_ns.max(start).saturating_add(self.last_frame_ns.max(1));
        self.bytes = 0;
        let units = std::mem::take(&mut self.units);
        Some(Cut { units, start_ns: start, end_ns, forced: false })
    }
}

/// The NAL units of an Annex-B byte stream: (offset of the NAL header, end) pairs, the
/// end excluding the next start code's zero bytes.
pub fn nal_units(data: &[u8]) -> Vec<(usize, usize)> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |n| n - 3);
        while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > s {
            out.push((s, end));
        }
    }
    out
}

/// True if the first slice in `data` begins a picture (H.264 `first_mb_in_slice` 0, H.265
/// `first_slice_segment_in_pic_flag`), false if it continues one, or if `data` has no slice.
pub fn starts_picture(h265: bool, data: &[u8]) -> bool {
    for (s, e) in nal_units(data) {
        let nal = &data[s..e];
        if h265 {
            let k = (nal[0] >> 1) & 0x3F;
            if k < 32 {
                return nal.get(2).is_some_and(|b| b & 0x80 != 0);
            }
        } else {
            let k = nal[0] & 0x1F;
            if (1..=5).contains(&k) {
                // ue(v) 0 is the single bit 1.
                return nal.get(1).is_some_and(|b| b & 0x80 != 0);
            }
        }
    }
    false
}

/// What of `more` continues the picture in `existing` (the same timestamp, split apart by
/// a parser): `more` without its leading access unit delimiter and without leading
/// parameter sets that `existing` already carries byte for byte. Some payloaders (GStreamer's
/// `rtph264pay config-interval=-1`, and cameras alike) repeat SPS and PPS before every
/// slice of a keyframe; a parser then sees each slice start a new access unit, and a
/// recorder that kept only the first would archive keyframes with slices missing.
pub fn continuation<'a>(h265: bool, existing: &[u8], more: &'a [u8]) -> &'a [u8] {
    let kind = |nal: &[u8]| if h265 { (nal[0] >> 1) & 0x3F } else { nal[0] & 0x1F };
    // AUD; and the parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS).
    let (aud, params): (u8, &[u8]) = if h265 { (35, &[32, 33, 34]) } else { (9, &[7, 8]) };
    let have: Vec<&[u8]> = nal_units(existing).into_iter().map(|(s, e)| &existing[s..e]).collect();
    let mut cut = 0;
    for (s, e) in nal_units(more) {
        let nal = &more[s..e];
        let k = kind(nal);
        if k == aud || (params.contains(&k) && have.contains(&nal)) {
            cut = e;
            continue;
        }
        // Back up to this unit's start code (three or four bytes).
        cut = s - 3;
        if cut > 0 && more[cut - 1] == 0 {
            cut -= 1;
        }
        return &more[cut..];
    }
    &more[more.len().min(cut)..more.len().min(cut)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(ms: u64, key: bool) -> AccessUnit {
        AccessUnit { pts_ns: ms * 1_000_000, dts_ns: None, keyframe: key, data: vec![ms as u8] }
    }

    #[test]
    fn cuts_at_first_keyframe_after_target_without_gaps() {
        let mut s = Segmenter::new(4_000_000_000, 60_000_000_000);
        // Leading delta frames are dropped.
        assert!(s.push(au(0, false)).is_none());
        let mut cuts = Vec::new();
        for i in 1..=300u64 {
            let ms = i * 40;
            if let Some(c) = s.push(au(ms, i % 50 == 1)) {
                cuts.push(c);
            }
        }
        cuts.extend(s.finish());
        assert_eq!(cuts.len(), 3);
        assert_eq!(cuts[0].start_ns, 40_000_000);
        for w in cuts.windows(2) {
            assert_eq!(w[0].end_ns, w[1].start_ns, "segments are contiguous");
            assert!(w[1].units[0].keyframe);
        }
        assert_eq!(cuts[0].end_ns - cuts[0].start_ns, 4_000_000_000);
        assert_eq!(cuts[2].end_ns, 12_000_000_000 + 40_000_000);
        let frames: usize = cuts.iter().map(|c| c.units.len()).sum();
        assert_eq!(frames, 300);
    }

    #[test]
    fn keyframe_a_hair_early_still_closes_the_segment() {
        // Regression: GOP = target = 2 s with RTP jitter produced 4 s segments.
        let mut s = Segmenter::new(2_000_000_000, 16_000_000_000);
        s.push(au(0, true));
        for i in 1..50u64 {
            assert!(s.push(au(i * 40, false)).is_none());
        }
        let jittered = AccessUnit { pts_ns: 1_999_999_000, dts_ns: None, keyframe: true, data: vec![0] };
        let cut = s.push(jittered).expect("the early keyframe closes the segment");
        assert_eq!(cut.end_ns, 1_999_999_000);
        // Far too early is not "a hair": a keyframe at half the target does not cut.
        let mut s = Segmenter::new(2_000_000_000, 16_000_000_000);
        s.push(au(0, true));
        assert!(s.push(au(1_000, true)).is_none());
    }

    #[test]
    fn forces_a_cut_when_keyframes_stop() {
        let mut s = Segmenter::new(1_000_000_000, 3_000_000_000);
        s.push(au(0, true));
        let mut forced = None;
        for i in 1..200u64 {
            if let Some(c) = s.push(au(i * 40, false)) {
                forced = Some(c);
                break;
            }
        }
        let c = forced.expect("a forced cut");
        assert!(c.forced);
        assert_eq!(c.end_ns, 3_000_000_000);
        assert!(s.buffered_bytes() > 0);
    }

    #[test]
    fn the_rest_of_a_keyframe_joins_it_without_its_delimiter_or_repeated_parameter_sets() {
        let sps = [0x67, 0x42, 0xC0, 0x1E];
        let pps = [0x68, 0xCE, 0x3C, 0x80];
        let mut first = vec![0, 0, 0, 1, 0x09, 0x10];
        for n in [&sps[..], &pps[..], &[0x65, 0x88, 0x84][..]] {
            first.extend_from_slice(&[0, 0, 0, 1]);
            first.extend_from_slice(n);
        }
        // The second slice, as the parser emits it: AUD, SPS, PPS again, then the slice.
        let mut more = vec![0, 0, 0, 1, 0x09, 0x10, 0, 0, 0, 1];
        more.extend_from_slice(&sps);
        more.extend_from_slice(&[0, 0, 1]);
        more.extend_from_slice(&pps);
        more.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x00, 0x78]);
        assert_eq!(continuation(false, &first, &more), &[0, 0, 0, 1, 0x65, 0x00, 0x78]);
        // 0x00 0x78: first_mb_in_slice 480 (the slice continues a picture); 0x88…: 0, it starts one.
        assert!(!starts_picture(false, &more));
        assert!(starts_picture(false, &first));
        // A parameter set that differs is kept; so is everything after the first slice.
        let mut other = vec![0, 0, 1, 0x68, 0xEE, 0x3C, 0x80, 0, 0, 1, 0x65, 0x01];
        assert_eq!(continuation(false, &first, &other), &other[..]);
        other.truncate(0);
        assert!(continuation(false, &first, &other).is_empty());

        let mut s = Segmenter::new(2_000_000_000, 8_000_000_000);
        assert!(!s.extend_last(&more, false), "nothing before the first keyframe");
        assert!(s.push(AccessUnit { pts_ns: 0, dts_ns: None, keyframe: true, data: first.clone() }).is_none());
        assert!(s.extend_last(&more, false));
        let cut = s.finish().unwrap();
        assert_eq!(cut.units.len(), 1);
        let kinds: Vec<u8> = nal_units(&cut.units[0].data).iter().map(|(b, _)| cut.units[0].data[*b] & 0x1F).collect();
        assert_eq!(kinds, [9, 7, 8, 5, 5], "one access unit holding both slices");
    }
}

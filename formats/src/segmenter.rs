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

    /// Closes the open segment at end of stream (or on an error), if it has frames.
    pub fn finish(&mut self) -> Option<Cut> {
        let start = self.start_ns()?;
        let end_ns = self.max_pts_ns.max(start).saturating_add(self.last_frame_ns.max(1));
        self.bytes = 0;
        let units = std::mem::take(&mut self.units);
        Some(Cut { units, start_ns: start, end_ns, forced: false })
    }
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
}

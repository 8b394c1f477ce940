//! Hot standby on the receiving side: a camera's second node receives the same stream,
//! stamps each picture as the recorder does, and keeps the pictures since the recorder's
//! last committed footage in memory, committing nothing. When it takes over
//! (`Command::TakeOver`, proposed by `crate::standby`), the pictures from the keyframe at
//! the seam on are cut into segments like live ones, so the footage continues where the
//! failed recorder's committed footage ends.
//!
//! Pictures are kept rather than finished segments so the seam falls on the recorder's
//! own keyframe: both nodes cut at the camera's keyframes, but each at its own moment, and
//! segments of the standby's own cutting would overlap or miss the recorder's last one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::segmenter::AccessUnit;

/// The least a standby keeps of a camera, however long ago its recorder last committed:
/// detection, an election and the takeover's commit fit in it. With long segments the
/// window grows to two segments more ([`FrameBuffer::new`]).
pub const WINDOW: Duration = Duration::from_secs(30);
/// The most bytes a standby keeps of one camera (a minute at 16 Mbit/s).
pub const MAX_BYTES: usize = 128 << 20;
/// Pictures kept from before the recorder's committed end: the keyframe at the seam is
/// stamped by two nodes, whose stamps differ by their clocks and network paths.
const SEAM_MARGIN_NS: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Standby,
    /// Take over at the next picture, from this seam (ms; `None`: no committed footage).
    Promote(Option<i64>),
    Primary,
}

/// What a standby camera's thread and the node's standby watcher share.
#[derive(Debug)]
pub struct StandbyCtl {
    mode: Mutex<Mode>,
    /// End of the recorder's committed footage, as the catalog last said (ms; `i64::MIN`:
    /// unknown). Pictures well before it are let go.
    primary_end_ms: AtomicI64,
    /// What the buffer holds, for status and metrics.
    buffered_bytes: AtomicU64,
    /// Wall-clock times (ms) of the oldest and newest picture held (0: none).
    oldest_ms: AtomicI64,
    newest_ms: AtomicI64,
}

/// What the camera's thread should do with the picture in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Poll {
    Hold,
    TakeOver(Option<i64>),
    Record,
}

impl StandbyCtl {
    /// A camera this node stands by for.
    pub fn standby() -> StandbyCtl {
        StandbyCtl {
            mode: Mutex::new(Mode::Standby),
            primary_end_ms: AtomicI64::new(i64::MIN),
            buffered_bytes: AtomicU64::new(0),
            oldest_ms: AtomicI64::new(0),
            newest_ms: AtomicI64::new(0),
        }
    }

    /// True while this node only stands by (no takeover asked yet).
    pub fn is_standby(&self) -> bool {
        *self.mode.lock().expect("standby mode") == Mode::Standby
    }

    /// Asks the camera's thread to take over from `seam_ms` at its next picture. Does
    /// nothing once it records.
    pub fn take_over(&self, seam_ms: Option<i64>) {
        let mut m = self.mode.lock().expect("standby mode");
        if *m == Mode::Standby {
            *m = Mode::Promote(seam_ms);
        }
    }

    /// The recorder's committed footage now ends at `ms`.
    pub fn set_primary_end(&self, ms: i64) {
        self.primary_end_ms.store(ms, Ordering::Relaxed);
    }

    fn primary_end_ns(&self) -> Option<u64> {
        let ms = self.primary_end_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then(|| ms.max(0) as u64 * 1_000_000)
    }

    /// Bytes held, and the span of pictures held (oldest, newest wall-clock ms; zeros when
    /// empty).
    pub fn held(&self) -> (u64, i64, i64) {
        (
            self.buffered_bytes.load(Ordering::Relaxed),
            self.oldest_ms.load(Ordering::Relaxed),
            self.newest_ms.load(Ordering::Relaxed),
        )
    }

    /// How far the pictures held run past the recorder's committed footage (ms): what
    /// the standby would commit if it took over now. `None` while either is unknown.
    pub fn lag_ms(&self) -> Option<i64> {
        let end = self.primary_end_ms.load(Ordering::Relaxed);
        let newest = self.newest_ms.load(Ordering::Relaxed);
        (end != i64::MIN && newest != 0).then(|| (newest - end).max(0))
    }

    /// Called by the camera's thread for each picture.
    pub(super) fn poll(&self) -> Poll {
        let mut m = self.mode.lock().expect("standby mode");
        match *m {
            Mode::Standby => Poll::Hold,
            Mode::Promote(seam) => {
                *m = Mode::Primary;
                Poll::TakeOver(seam)
            }
            Mode::Primary => Poll::Record,
        }
    }

    fn note(&self, buf: &FrameBuffer) {
        self.buffered_bytes.store(buf.bytes as u64, Ordering::Relaxed);
        let ms = |f: Option<&Held>| f.map_or(0, |f| (f.wall_ns / 1_000_000) as i64);
        self.oldest_ms.store(ms(buf.frames.front()), Ordering::Relaxed);
        self.newest_ms.store(ms(buf.frames.back()), Ordering::Relaxed);
    }
}

/// A picture held by a standby, with the wall-clock time this node stamped it with.
#[derive(Debug)]
pub(super) struct Held {
    pub wall_ns: u64,
    /// The clock baseline the stamp was made under ([`crate::clock::Clock::stepped_ms`]
    /// as the session last followed it): a takeover re-stamps from here, so a clock step
    /// after this picture still moves the footage recorded after it.
    pub stepped_ms: i64,
    pub au: AccessUnit,
}

/// The pictures a standby holds: from a keyframe at or before the recorder's committed
/// end (less a margin) to the newest, within its window and [`MAX_BYTES`].
#[derive(Debug, Default)]
pub(super) struct FrameBuffer {
    frames: VecDeque<Held>,
    bytes: usize,
    window_ns: u64,
}

impl FrameBuffer {
    /// A buffer for a camera cut into segments of `segment_target_ms`: it holds at least
    /// [`WINDOW`], and two segments more than half of it for long segments (the recorder's
    /// committed end trails the live picture by up to a segment and a commit).
    pub fn new(segment_target_ms: u64) -> FrameBuffer {
        let window = WINDOW.as_nanos() as u64;
        FrameBuffer { window_ns: window.max(window / 2 + 2 * segment_target_ms * 1_000_000), ..Default::default() }
    }

    /// Holds a picture and lets go of what is no longer needed.
    pub fn push(&mut self, ctl: &StandbyCtl, wall_ns: u64, stepped_ms: i64, au: AccessUnit) {
        if self.frames.is_empty() && !au.keyframe {
            return; // Nothing decodes before the first keyframe.
        }
        self.bytes += au.data.len();
        self.frames.push_back(Held { wall_ns, stepped_ms, au });
        self.trim(ctl.primary_end_ns());
        ctl.note(self);
    }

    /// The PTS of the newest picture held.
    pub fn last_pts_ns(&self) -> Option<u64> {
        self.frames.back().map(|f| f.au.pts_ns)
    }

    /// Adds the rest of the newest picture, which a parser emitted apart.
    pub fn extend_last(&mut self, more: &[u8], h265: bool) {
        if let Some(last) = self.frames.back_mut() {
            let rest = super::segmenter::continuation(h265, &last.au.data, more);
            self.bytes += rest.len();
            last.au.data.extend_from_slice(rest);
        }
    }

    /// Drops everything (the camera's timeline broke: held pictures no longer line up).
    pub fn clear(&mut self, ctl: &StandbyCtl) {
        self.frames.clear();
        self.bytes = 0;
        ctl.note(self);
    }

    fn trim(&mut self, primary_end_ns: Option<u64>) {
        let newest = self.frames.back().map_or(0, |f| f.wall_ns);
        // Over the window or the byte cap: drop whole groups of pictures from the front,
        // never the newest group (a camera whose keyframes are further apart than the
        // window keeps its latest keyframe and what follows it).
        while (newest.saturating_sub(self.frames[0].wall_ns) > self.window_ns || self.bytes > MAX_BYTES)
            && self.frames.iter().skip(1).any(|f| f.au.keyframe)
        {
            self.drop_front_group();
        }
        // One group alone over the byte cap (a camera that sends no keyframe): memory stays
        // bounded, and the standby holds again from the next keyframe.
        if self.bytes > MAX_BYTES {
            self.frames.clear();
            self.bytes = 0;
        }
        // What the recorder committed is safe: keep from the last keyframe before its end.
        if let Some(end) = primary_end_ns {
            let keep_from = end.saturating_sub(SEAM_MARGIN_NS);
            let last_key = self.frames.iter().rposition(|f| f.au.keyframe && f.wall_ns <= keep_from);
            if let Some(i) = last_key {
                for f in self.frames.drain(..i) {
                    self.bytes -= f.au.data.len();
                }
            }
        }
    }

    fn drop_front_group(&mut self) {
        if let Some(f) = self.frames.pop_front() {
            self.bytes -= f.au.data.len();
        }
        while self.frames.front().is_some_and(|f| !f.au.keyframe) {
            let f = self.frames.pop_front().expect("front exists");
            self.bytes -= f.au.data.len();
        }
    }

    /// The pictures to commit on taking over from `seam_ns`: from the held keyframe
    /// closest to the seam (the recorder's last keyframe, as this node stamped it), or
    /// from the first keyframe when there is no seam. Empties the buffer.
    pub fn take_from(&mut self, seam_ns: Option<u64>) -> Vec<Held> {
        let start = match seam_ns {
            None => self.frames.iter().position(|f| f.au.keyframe),
            Some(seam) => self
                .frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f.au.keyframe)
                .min_by_key(|(_, f)| f.wall_ns.abs_diff(seam))
                .map(|(i, _)| i),
        };
        let frames = std::mem::take(&mut self.frames);
        self.bytes = 0;
        match start {
            Some(i) => frames.into_iter().skip(i).collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn au(pts_ms: u64, keyframe: bool, size: usize) -> AccessUnit {
        AccessUnit { pts_ns: pts_ms * MS, dts_ns: None, keyframe, data: vec![0; size] }
    }

    /// 25 pictures a second, a keyframe every `gop` pictures, stamped from wall time 1000 s.
    fn feed(buf: &mut FrameBuffer, ctl: &StandbyCtl, from: u64, to: u64, gop: u64) {
        for i in from..to {
            let pts = i * 40;
            buf.push(ctl, 1_000_000 * MS + pts * MS, 0, au(pts, i % gop == 0, 1000));
        }
    }

    #[test]
    fn holds_from_the_keyframe_before_the_recorders_committed_end() {
        let ctl = StandbyCtl::standby();
        let mut buf = FrameBuffer::new(4_000);
        // Nothing committed yet: everything from the first keyframe is held.
        feed(&mut buf, &ctl, 0, 250, 25); // 10 s, a keyframe each second
        assert_eq!(buf.frames.len(), 250);
        assert_eq!(ctl.held().0, 250_000);
        // The recorder committed up to 6 s in: pictures before the keyframe at or before
        // 5 s (6 s less the margin) are let go at the next picture.
        ctl.set_primary_end(1_000_000 + 6_000);
        feed(&mut buf, &ctl, 250, 251, 25);
        assert_eq!(buf.frames[0].wall_ns, (1_000_000 + 5_000) * MS);
        assert!(buf.frames[0].au.keyframe);
        assert_eq!(ctl.lag_ms(), Some(10_000 - 6_000));
    }

    #[test]
    fn never_more_than_the_window_or_the_byte_cap() {
        let ctl = StandbyCtl::standby();
        let mut buf = FrameBuffer::new(4_000);
        feed(&mut buf, &ctl, 0, 25 * 60, 25); // 60 s, recorder never committed
        let span = buf.frames.back().unwrap().wall_ns - buf.frames[0].wall_ns;
        assert!(span <= WINDOW.as_nanos() as u64, "{span}");
        assert!(span >= WINDOW.as_nanos() as u64 - 1_000 * MS, "{span}");
        assert!(buf.frames[0].au.keyframe);
        let mut big = FrameBuffer::new(4_000);
        for i in 0..100u64 {
            big.push(&ctl, i * 40 * MS, 0, au(i * 40, i % 10 == 0, 2 << 20));
        }
        assert!(big.bytes <= MAX_BYTES, "{}", big.bytes);
        assert!(big.frames[0].au.keyframe);
        // Keyframes further apart than the window: the newest group stays whole.
        let mut sparse = FrameBuffer::new(4_000);
        for i in 0..25 * 80u64 {
            sparse.push(&ctl, i * 40 * MS, 0, au(i * 40, i % (25 * 45) == 0, 100));
        }
        assert_eq!(sparse.frames[0].wall_ns, 25 * 45 * 40 * MS, "the keyframe at 45 s and all after it");
        assert_eq!(sparse.frames.len(), 25 * 80 - 25 * 45);
        // Long segments hold two segments more than half the window.
        assert_eq!(FrameBuffer::new(60_000).window_ns, (15 + 120) * 1_000 * MS);
        assert_eq!(FrameBuffer::new(4_000).window_ns, WINDOW.as_nanos() as u64);
        // Pictures before the first keyframe are never held.
        let mut b = FrameBuffer::new(4_000);
        b.push(&ctl, 0, 0, au(0, false, 10));
        assert!(b.frames.is_empty());
    }

    #[test]
    fn takeover_starts_at_the_keyframe_closest_to_the_seam() {
        let ctl = StandbyCtl::standby();
        let mut buf = FrameBuffer::new(4_000);
        feed(&mut buf, &ctl, 0, 250, 25);
        // The recorder stamped its last keyframe 30 ms later than this node did.
        let seam = (1_000_000 + 4_000 + 30) * MS;
        let frames = buf.take_from(Some(seam));
        assert_eq!(frames[0].wall_ns, (1_000_000 + 4_000) * MS);
        assert_eq!(frames.len(), 250 - 100);
        assert!(buf.frames.is_empty() && buf.bytes == 0);
        // 30 ms earlier instead: the same keyframe.
        let mut buf = FrameBuffer::new(4_000);
        feed(&mut buf, &ctl, 0, 250, 25);
        assert_eq!(buf.take_from(Some((1_000_000 + 3_970) * MS))[0].wall_ns, (1_000_000 + 4_000) * MS);
        // No committed footage: from the first keyframe.
        let mut buf = FrameBuffer::new(4_000);
        feed(&mut buf, &ctl, 0, 50, 25);
        assert_eq!(buf.take_from(None).len(), 50);
    }

    #[test]
    fn a_takeover_is_asked_once_and_only_of_a_standby() {
        let ctl = StandbyCtl::standby();
        assert_eq!(ctl.poll(), Poll::Hold);
        ctl.take_over(Some(5));
        ctl.take_over(Some(9)); // the first request stands
        assert!(!ctl.is_standby());
        assert_eq!(ctl.poll(), Poll::TakeOver(Some(5)));
        assert_eq!(ctl.poll(), Poll::Record);
        ctl.take_over(Some(7));
        assert_eq!(ctl.poll(), Poll::Record);
    }
}

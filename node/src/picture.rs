//! Picture checks: is a camera still showing what it should?
//!
//! A recorder decodes one keyframe of a camera's newest segment ([`decode_first_frame`],
//! blocking) into a small grayscale frame and reduces it to a few numbers ([`measure`],
//! pure): mean brightness and its spread (a black, white or covered picture), the
//! variance of the Laplacian (sharpness: defocus, fog, a scratched dome) and a
//! thumbnail compared against a reference still (a camera turned away or re-aimed).
//! [`judge`] turns measures and the reference into at most one finding, the
//! `camera-picture` alarm's detail. Everything but the decode is pure so the thresholds
//! are unit-tested on synthetic frames.
//!
//! [`Checker`] is the node's worker: every `picture_check_every_s` it checks each camera
//! it records, one decode at a time, and keeps the latest finding per camera in a
//! [`PictureWatch`](crate::worker::PictureWatch) that pings report to the others; the leader's alarm evaluation raises
//! `camera-picture` for a finding of a camera's current recorder, and clears it when a
//! later check finds nothing. The reference still (`Command::SetPictureReference`, kept in
//! the catalog) is the first healthy picture the recorder saw of the camera, and is
//! replaced only through the change queue (`custos camera confirm`, which drops it so the
//! next healthy picture is taken).

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Width of the frame the decoder scales to (pixels, GRAY8).
pub const FRAME_WIDTH: usize = 64;
/// Height of the frame the decoder scales to.
pub const FRAME_HEIGHT: usize = 36;
/// Width of the thumbnail kept as a reference still: the frame halved in each direction.
pub const THUMB_WIDTH: usize = FRAME_WIDTH / 2;
/// Height of the thumbnail.
pub const THUMB_HEIGHT: usize = FRAME_HEIGHT / 2;

/// A picture darker than this mean (0–255) ... Luma is read as the decoder gives it:
/// cameras send H.264 in video range, where black is 16 and white 235, so these bounds
/// sit 8 levels inside them (on a full-range camera they are only stricter).
pub const BLACK_MEAN_MAX: f64 = 24.0;
/// ... or brighter than this mean ...
pub const WHITE_MEAN_MIN: f64 = 227.0;
/// ... with a spread (standard deviation, grey levels) below this is black or white; a
/// picture this flat at any other brightness is covered (a cap, a bag, paint, fog).
pub const FLAT_STDDEV_MAX: f64 = 8.0;
/// A picture whose Laplacian variance falls below this fraction of the reference's is
/// blurred: defocused, fogged or seen through a scratched dome.
pub const BLUR_RATIO_MIN: f64 = 0.2;
/// Below this Laplacian variance the reference itself has too little detail to judge
/// blur against (a blank wall): blur is not judged.
pub const BLUR_REFERENCE_MIN: f64 = 4.0;
/// A picture whose thumbnail differs from the reference by more than this mean absolute
/// difference (grey levels, after both are shifted to the same mean brightness) shows
/// another scene: the camera was turned or re-aimed. Lighting changes shift the mean and
/// are taken out; a moving person covers a small part of the frame.
pub const TURNED_DIFF_MIN: f64 = 28.0;
/// Longest a decode may take before it is abandoned.
pub const DECODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A grayscale picture, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub luma: Vec<u8>,
}

/// What one check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    /// Mean brightness, 0–255.
    pub mean: f64,
    /// Standard deviation of brightness (grey levels).
    pub stddev: f64,
    /// Variance of the 4-neighbour Laplacian over the interior: higher is sharper.
    pub laplacian_var: f64,
    /// [`THUMB_WIDTH`]×[`THUMB_HEIGHT`] luma, 2×2 box averages of the frame.
    pub thumb: Vec<u8>,
}

/// What a camera should look like: taken when it was added or last confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub thumb: Vec<u8>,
    pub laplacian_var: f64,
}

/// What is wrong with a picture, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Black { mean: f64, stddev: f64 },
    White { mean: f64, stddev: f64 },
    Covered { mean: f64, stddev: f64 },
    Turned { diff: f64 },
    Blurred { laplacian_var: f64, reference: f64 },
}

impl Finding {
    /// The `camera-picture` alarm's detail.
    pub fn detail(&self) -> String {
        match self {
            Finding::Black { mean, stddev } => format!(
                "the picture is black (mean brightness {mean:.0}, spread {stddev:.1}): check the camera's power, \
                 lens cap and IR light"
            ),
            Finding::White { mean, stddev } => format!(
                "the picture is white (mean brightness {mean:.0}, spread {stddev:.1}): the camera is blinded or its \
                 sensor failed"
            ),
            Finding::Covered { mean, stddev } => format!(
                "the picture is flat (mean brightness {mean:.0}, spread {stddev:.1}): the lens is covered or fogged"
            ),
            Finding::Turned { diff } => format!(
                "the picture shows another scene than the reference still (difference {diff:.0}, limit \
                 {TURNED_DIFF_MIN:.0}): the camera was turned; re-aim it, or `custos camera confirm` a new view"
            ),
            Finding::Blurred { laplacian_var, reference } => format!(
                "the picture is blurred (sharpness {laplacian_var:.0} against {reference:.0} in the reference \
                 still): defocus, fog or a scratched dome"
            ),
        }
    }
}

/// Reduces a frame to its measures. Pure. The frame must be at least 3×3 and even-sized
/// for the thumbnail; [`decode_first_frame`] gives [`FRAME_WIDTH`]×[`FRAME_HEIGHT`].
pub fn measure(f: &Frame) -> Measures {
    let (w, h) = (f.width, f.height);
    debug_assert_eq!(f.luma.len(), w * h);
    let n = f.luma.len().max(1) as f64;
    let mean = f.luma.iter().map(|&p| f64::from(p)).sum::<f64>() / n;
    let var = f.luma.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / n;
    let mut lap = Vec::with_capacity(w.saturating_sub(2) * h.saturating_sub(2));
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let p = |x: usize, y: usize| f64::from(f.luma[y * w + x]);
            lap.push(p(x - 1, y) + p(x + 1, y) + p(x, y - 1) + p(x, y + 1) - 4.0 * p(x, y));
        }
    }
    let laplacian_var = if lap.is_empty() {
        0.0
    } else {
        let m = lap.iter().sum::<f64>() / lap.len() as f64;
        lap.iter().map(|v| (v - m).powi(2)).sum::<f64>() / lap.len() as f64
    };
    let (tw, th) = (w / 2, h / 2);
    let mut thumb = Vec::with_capacity(tw * th);
    for ty in 0..th {
        for tx in 0..tw {
            let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                .iter()
                .map(|(dx, dy)| u32::from(f.luma[(2 * ty + dy) * w + 2 * tx + dx]))
                .sum();
            thumb.push(((s + 2) / 4) as u8);
        }
    }
    Measures { mean, stddev: var.sqrt(), laplacian_var, thumb }
}

/// Mean absolute difference of two thumbnails after shifting each to zero mean, so a
/// change of lighting alone does not count. Thumbnails of different sizes differ
/// completely (255).
pub fn thumb_difference(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 255.0;
    }
    let mean = |t: &[u8]| t.iter().map(|&p| f64::from(p)).sum::<f64>() / t.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    a.iter().zip(b).map(|(&x, &y)| ((f64::from(x) - ma) - (f64::from(y) - mb)).abs()).sum::<f64>() / a.len() as f64
}

/// The finding for a picture, most basic first: a black, white or covered picture is
/// that (not also turned); a turned one is not also judged blurred. Pure.
pub fn judge(m: &Measures, reference: Option<&Reference>) -> Option<Finding> {
    let (mean, stddev) = (m.mean, m.stddev);
    if stddev < FLAT_STDDEV_MAX {
        return Some(if mean < BLACK_MEAN_MAX {
            Finding::Black { mean, stddev }
        } else if mean > WHITE_MEAN_MIN {
            Finding::White { mean, stddev }
        } else {
            Finding::Covered { mean, stddev }
        });
    }
    let r = reference?;
    let diff = thumb_difference(&m.thumb, &r.thumb);
    if diff > TURNED_DIFF_MIN {
        return Some(Finding::Turned { diff });
    }
    if r.laplacian_var >= BLUR_REFERENCE_MIN && m.laplacian_var < BLUR_RATIO_MIN * r.laplacian_var {
        return Some(Finding::Blurred { laplacian_var: m.laplacian_var, reference: r.laplacian_var });
    }
    None
}

/// Decodes the first picture of an MPEG-TS segment's plaintext into a
/// [`FRAME_WIDTH`]×[`FRAME_HEIGHT`] grayscale frame. Blocks (a GStreamer pipeline, up to
/// [`DECODE_TIMEOUT`]): call from `spawn_blocking`. Segments begin at a keyframe, so the
/// first decoded frame is whole. `decodebin` picks the demuxer and decoder (H.264 or
/// H.265, `gstreamer1.0-libav`).
pub fn decode_first_frame(ts: &[u8]) -> Result<Frame, String> {
    let tail = format!(
        "videoconvert ! videoscale ! video/x-raw,format=GRAY8,width={FRAME_WIDTH},height={FRAME_HEIGHT},pixel-aspect-ratio=1/1"
    );
    let sample = first_sample(ts, &tail)?;
    let buf = sample.buffer().ok_or("sample without buffer")?;
    let map = buf.map_readable().map_err(|e| e.to_string())?;
    // GRAY8 rows are padded to 4 bytes; 64 is a multiple of 4, so the data is dense,
    // but take the stride from the caps to be safe.
    let stride = sample.caps().and_then(gray8_stride).unwrap_or(FRAME_WIDTH);
    let mut luma = Vec::with_capacity(FRAME_WIDTH * FRAME_HEIGHT);
    for y in 0..FRAME_HEIGHT {
        let row = map.get(y * stride..y * stride + FRAME_WIDTH).ok_or("short frame")?;
        luma.extend_from_slice(row);
    }
    Ok(Frame { width: FRAME_WIDTH, height: FRAME_HEIGHT, luma })
}

/// The first picture of an MPEG-TS segment's plaintext as a JPEG `width` pixels wide (its
/// aspect kept): what the console shows of a camera whose codec the browser cannot play
/// (H.265 in most browsers). Blocks like [`decode_first_frame`].
pub fn still_jpeg(ts: &[u8], width: usize) -> Result<Vec<u8>, String> {
    let tail =
        format!("videoconvert ! videoscale ! video/x-raw,width={width},pixel-aspect-ratio=1/1 ! jpegenc quality=85");
    let sample = first_sample(ts, &tail)?;
    let buf = sample.buffer().ok_or("sample without buffer")?;
    let map = buf.map_readable().map_err(|e| e.to_string())?;
    Ok(map.as_slice().to_vec())
}

/// Runs `ts` through `appsrc ! decodebin ! {tail} ! appsink` and returns the first
/// sample that comes out, or why none did.
fn first_sample(ts: &[u8], tail: &str) -> Result<gst::Sample, String> {
    gst::init().map_err(|e| e.to_string())?;
    let desc = format!(
        "appsrc name=src is-live=false format=bytes caps=video/mpegts,systemstream=true ! decodebin ! {tail} ! \
         appsink name=sink sync=false max-buffers=1 drop=false"
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let result = (|| {
        let src = pipeline.by_name("src").and_then(|e| e.downcast::<gst_app::AppSrc>().ok()).ok_or("no appsrc")?;
        let sink = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).ok_or("no appsink")?;
        pipeline.set_state(gst::State::Playing).map_err(|e| e.to_string())?;
        src.push_buffer(gst::Buffer::from_slice(ts.to_vec())).map_err(|e| e.to_string())?;
        src.end_of_stream().map_err(|e| e.to_string())?;
        // Poll in short steps so a stream that ends or fails without a picture returns
        // at once instead of at the timeout.
        let deadline = std::time::Instant::now() + DECODE_TIMEOUT;
        let bus = pipeline.bus().ok_or("no bus")?;
        loop {
            if let Some(s) = sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
                return Ok(s);
            }
            if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
                if let gst::MessageView::Error(e) = m.view() {
                    return Err(format!("cannot decode: {}", e.error()));
                }
            }
            if sink.is_eos() {
                return Err("no picture in the segment".into());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("no picture decoded within {} s", DECODE_TIMEOUT.as_secs()));
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// GRAY8 row stride for a width, as GStreamer lays it out (rows rounded up to 4 bytes).
fn gray8_stride(caps: &gst::CapsRef) -> Option<usize> {
    let w = caps.structure(0)?.get::<i32>("width").ok()? as usize;
    Some(w.div_ceil(4) * 4)
}

/// Checks the pictures of the cameras this node records, one decode at a time (the
/// bound on its cost: one small GStreamer pipeline on a blocking thread), each camera at
/// most once per `every`.
pub struct Checker {
    pub meta: crate::meta::Meta,
    pub store: std::sync::Arc<crate::segment::BlobStore>,
    pub keys: std::sync::Arc<crate::segment::Keys>,
    pub replicator: crate::cluster::replicate::Replicator,
    pub watch: std::sync::Arc<crate::worker::PictureWatch>,
    pub every: std::time::Duration,
}

impl Checker {
    /// Runs until `shutdown`. With `every` zero, checks nothing.
    pub async fn run(self, shutdown: crate::Shutdown) {
        if self.every.is_zero() {
            tracing::warn!("picture checks are off (picture_check_every_s = 0)");
            return;
        }
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        tracing::info!(every_s = self.every.as_secs(), "picture checks started");
        loop {
            let started = tokio::time::Instant::now();
            tokio::select! {
                _ = &mut stop => return,
                _ = self.pass() => {}
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep_until(started + self.every) => {}
            }
        }
    }

    /// One check of every camera this node records.
    async fn pass(&self) {
        let me = self.meta.node_id;
        let newest = self
            .meta
            .read(move |c| {
                let mut out = Vec::new();
                for cam in c.cameras()?.into_iter().filter(|c| c.recorder == me) {
                    out.push((cam.id.clone(), c.last_segment(&cam.id)?, c.picture_reference(&cam.id)?));
                }
                Ok(out)
            })
            .await;
        let newest = match newest {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "picture checks: cannot read the catalog");
                return;
            }
        };
        let mine: std::collections::BTreeSet<String> = newest.iter().map(|(c, _, _)| c.clone()).collect();
        self.watch.keep_only(&mine);
        for (camera, seg, still) in newest {
            let Some(seg) = seg else { continue };
            let m = match self.measure(&seg).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(camera = %camera, start_ms = seg.start_ms, error = %e, "picture check: cannot decode");
                    continue;
                }
            };
            let reference = still
                .as_ref()
                .map(|s| Reference { thumb: s.thumb.clone(), laplacian_var: s.laplacian_var_milli as f64 / 1000.0 });
            let finding = judge(&m, reference.as_ref());
            if finding.is_none() && reference.is_none() {
                self.take_reference(&camera, &m).await;
            }
            tracing::debug!(camera = %camera, mean = m.mean, stddev = m.stddev, laplacian_var = m.laplacian_var, ?finding, "picture checked");
            self.watch.set(&camera, finding.as_ref().map(Finding::detail));
        }
    }

    /// Stores a healthy picture as the camera's reference still (the first one, or the
    /// first after `custos camera confirm`).
    async fn take_reference(&self, camera: &str, m: &Measures) {
        let still = crate::meta::types::PictureStill {
            thumb: m.thumb.clone(),
            laplacian_var_milli: (m.laplacian_var * 1000.0) as u64,
            taken_ms: self.meta.now_ms(),
        };
        let cmd = crate::meta::Command::SetPictureReference { camera: camera.to_string(), still: Some(still) };
        match self.meta.propose(cmd).await {
            Ok(crate::meta::types::Response::Ok) => {
                tracing::info!(camera = %camera, "picture check: reference still taken")
            }
            Ok(r) => tracing::debug!(camera = %camera, response = ?r, "picture check: reference still not stored"),
            Err(e) => tracing::warn!(camera = %camera, error = %e, "picture check: cannot store the reference still"),
        }
    }

    async fn measure(&self, seg: &crate::meta::SegmentRecord) -> Result<Measures, String> {
        let plain = crate::segment::open_segment(seg, &self.store, &self.keys, &self.replicator)
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || decode_first_frame(&plain).map(|f| measure(&f)))
            .await
            .map_err(|e| e.to_string())?
    }
}

impl crate::worker::Worker for Checker {
    fn name(&self) -> &'static str {
        "picture"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        Checker::run(self, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: impl Fn(usize, usize) -> u8) -> Frame {
        let mut luma = Vec::new();
        for y in 0..FRAME_HEIGHT {
            for x in 0..FRAME_WIDTH {
                luma.push(f(x, y));
            }
        }
        Frame { width: FRAME_WIDTH, height: FRAME_HEIGHT, luma }
    }

    /// A busy scene: a checkerboard of 12-pixel squares over a gradient, with fine
    /// texture (alternate pixels 20 levels apart) that only a sharp picture keeps.
    fn scene(x: usize, y: usize) -> u8 {
        let base = 40 + x as u8 + if (x + y).is_multiple_of(2) { 20 } else { 0 };
        if (x / 12 + y / 12).is_multiple_of(2) {
            base
        } else {
            base + 90
        }
    }

    /// Another scene: horizontal stripes.
    fn other(_x: usize, y: usize) -> u8 {
        if (y / 6).is_multiple_of(2) {
            30
        } else {
            200
        }
    }

    /// The scene blurred with a 3×3 box filter: out of focus.
    fn blurred(x: usize, y: usize) -> u8 {
        let (mut s, mut n) = (0u32, 0u32);
        for dy in -1i32..=1 {
            for dx in -1i32..=1 {
                let (xx, yy) = (x as i32 + dx, y as i32 + dy);
                if (0..FRAME_WIDTH as i32).contains(&xx) && (0..FRAME_HEIGHT as i32).contains(&yy) {
                    s += u32::from(scene(xx as usize, yy as usize));
                    n += 1;
                }
            }
        }
        (s / n) as u8
    }

    fn reference_of(f: &Frame) -> Reference {
        let m = measure(f);
        Reference { thumb: m.thumb, laplacian_var: m.laplacian_var }
    }

    #[test]
    fn a_uniform_frame_has_its_level_as_mean_and_no_spread_or_edges() {
        let m = measure(&frame(|_, _| 100));
        assert_eq!(m.mean, 100.0);
        assert_eq!(m.stddev, 0.0);
        assert_eq!(m.laplacian_var, 0.0);
        assert_eq!(m.thumb.len(), THUMB_WIDTH * THUMB_HEIGHT);
        assert!(m.thumb.iter().all(|&p| p == 100));
    }

    #[test]
    fn black_white_and_covered_pictures_are_found_without_a_reference() {
        assert!(matches!(judge(&measure(&frame(|_, _| 3)), None), Some(Finding::Black { .. })));
        assert!(matches!(judge(&measure(&frame(|_, _| 250)), None), Some(Finding::White { .. })));
        assert!(matches!(judge(&measure(&frame(|_, _| 128)), None), Some(Finding::Covered { .. })));
        // Sensor noise on a black picture is still black.
        assert!(matches!(
            judge(&measure(&frame(|x, y| ((x * 7 + y * 3) % 5) as u8)), None),
            Some(Finding::Black { .. })
        ));
    }

    #[test]
    fn a_healthy_scene_is_fine_with_and_without_its_reference() {
        let f = frame(scene);
        assert_eq!(judge(&measure(&f), None), None);
        assert_eq!(judge(&measure(&f), Some(&reference_of(&f))), None);
    }

    #[test]
    fn a_lighting_change_is_not_a_turned_camera() {
        let r = reference_of(&frame(scene));
        let darker = frame(|x, y| scene(x, y) - 40);
        assert_eq!(judge(&measure(&darker), Some(&r)), None);
    }

    #[test]
    fn another_scene_is_a_turned_camera() {
        let r = reference_of(&frame(scene));
        let got = judge(&measure(&frame(other)), Some(&r));
        assert!(matches!(got, Some(Finding::Turned { diff }) if diff > TURNED_DIFF_MIN), "{got:?}");
    }

    #[test]
    fn a_blurred_scene_is_blurred_against_a_sharp_reference() {
        let r = reference_of(&frame(scene));
        let m = measure(&frame(blurred));
        assert!(m.laplacian_var < r.laplacian_var);
        let got = judge(&m, Some(&r));
        assert!(matches!(got, Some(Finding::Blurred { .. })), "{got:?}");
        assert!(got.unwrap().detail().contains("blurred"));
    }

    #[test]
    fn a_small_moving_object_is_not_a_turned_camera() {
        let r = reference_of(&frame(scene));
        // A 8×8 white block (a person walking by) over the scene.
        let m = measure(&frame(|x, y| if (20..28).contains(&x) && (10..18).contains(&y) { 255 } else { scene(x, y) }));
        assert_eq!(judge(&m, Some(&r)), None);
    }

    /// A few frames of a videotestsrc pattern, H.264 in MPEG-TS, as the ingest stores them.
    fn encoded(pattern: &str) -> Vec<u8> {
        gst::init().unwrap();
        let p = gst::parse::launch(&format!(
            "videotestsrc pattern={pattern} num-buffers=5 ! video/x-raw,width=320,height=240 ! x264enc \
             key-int-max=5 ! h264parse ! mpegtsmux ! appsink name=sink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = p.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let mut out = Vec::new();
        while let Ok(s) = sink.pull_sample() {
            out.extend_from_slice(&s.buffer().unwrap().map_readable().unwrap());
        }
        p.set_state(gst::State::Null).unwrap();
        out
    }

    #[test]
    fn a_black_segment_decodes_to_a_black_finding_and_a_test_pattern_to_none() {
        let black = decode_first_frame(&encoded("black")).unwrap();
        assert_eq!(
            (black.width, black.height, black.luma.len()),
            (FRAME_WIDTH, FRAME_HEIGHT, FRAME_WIDTH * FRAME_HEIGHT)
        );
        assert!(matches!(judge(&measure(&black), None), Some(Finding::Black { .. })));
        let bars = measure(&decode_first_frame(&encoded("smpte")).unwrap());
        assert_eq!(judge(&bars, None), None, "{bars:?}");
        let r = Reference { thumb: bars.thumb.clone(), laplacian_var: bars.laplacian_var };
        let checkers = measure(&decode_first_frame(&encoded("checkers-8")).unwrap());
        assert!(matches!(judge(&checkers, Some(&r)), Some(Finding::Turned { .. })));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode_first_frame(&[0x47; 4096]).is_err());
    }

    #[test]
    fn thumbnails_of_different_sizes_differ_completely() {
        assert_eq!(thumb_difference(&[1, 2, 3], &[1, 2]), 255.0);
    }
}

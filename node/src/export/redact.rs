//! Privacy redaction: a derivative of an export's footage with fixed zones filled in
//! (a bed, a window into a ward), for a recipient who must not see the patients the
//! case is not about. Unlike the MP4 remux, this decodes and re-encodes:
//! `decodebin → I420 → fill the zones → x264enc → mp4mux` (faststart), with the original
//! timestamps. The original stays the evidence; the derivative is listed beside it with
//! the zones used.
//!
//! A zone is a polygon in coordinates relative to the picture (0,0 top left, 1,1 bottom
//! right), so one zone fits every resolution a camera sends. A pixel (or chroma sample)
//! is filled when its centre lies inside a zone (even-odd rule). The fill is flat black
//! (Y 16, U and V 128), which no encoder can turn back into what was there.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

pub use crate::zones::Zone;

/// Per row of a plane, the runs `[from, to)` of samples to fill.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneMask {
    pub rows: Vec<Vec<(usize, usize)>>,
}

impl PlaneMask {
    /// The mask of a `w`×`h` plane: a sample is filled when its centre is in a zone.
    pub fn new(zones: &[Zone], w: usize, h: usize) -> PlaneMask {
        let rows = (0..h)
            .map(|y| {
                let fy = (y as f64 + 0.5) / h as f64;
                let mut runs = Vec::new();
                let mut start = None;
                for x in 0..=w {
                    let on = x < w && zones.iter().any(|z| z.covers((x as f64 + 0.5) / w as f64, fy));
                    match (on, start) {
                        (true, None) => start = Some(x),
                        (false, Some(s)) => {
                            runs.push((s, x));
                            start = None;
                        }
                        _ => {}
                    }
                }
                runs
            })
            .collect();
        PlaneMask { rows }
    }

    /// Fills the masked samples of a plane laid out with `stride` bytes per row.
    pub fn fill(&self, plane: &mut [u8], stride: usize, value: u8) {
        for (y, runs) in self.rows.iter().enumerate() {
            for &(a, b) in runs {
                if let Some(row) = plane.get_mut(y * stride + a..y * stride + b) {
                    row.fill(value);
                }
            }
        }
    }
}

/// The masks of an I420 picture: luma, and the two half-size chroma planes.
struct FrameMask {
    width: usize,
    height: usize,
    luma: PlaneMask,
    chroma: PlaneMask,
}

/// The I420 layout GStreamer uses when no video meta says otherwise: rows rounded up to 4
/// bytes, chroma planes half the size (rounded up).
fn i420_layout(w: usize, h: usize) -> [(usize, usize, usize); 3] {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let ys = w.div_ceil(4) * 4;
    let cs = cw.div_ceil(4) * 4;
    let u = ys * h.div_ceil(2) * 2;
    let v = u + cs * ch;
    [(0, ys, h), (u, cs, ch), (v, cs, ch)]
}

/// Fills `zones` in one I420 frame of `w`×`h` held in `data`, building the masks on the
/// first frame (and again if the size changes).
fn mask_frame(cache: &mut Option<FrameMask>, zones: &[Zone], w: usize, h: usize, data: &mut [u8]) {
    if cache.as_ref().is_none_or(|m| (m.width, m.height) != (w, h)) {
        *cache = Some(FrameMask {
            width: w,
            height: h,
            luma: PlaneMask::new(zones, w, h),
            chroma: PlaneMask::new(zones, w.div_ceil(2), h.div_ceil(2)),
        });
    }
    let m = cache.as_ref().expect("just built");
    let [(y0, ys, _), (u0, cs, _), (v0, _, _)] = i420_layout(w, h);
    m.luma.fill(&mut data[y0..], ys, 16);
    m.chroma.fill(&mut data[u0..v0], cs, 128);
    m.chroma.fill(&mut data[v0..], cs, 128);
}

/// The x264 settings of redacted derivatives: the fastest preset (on the worst footage,
/// full-frame noise at 720p, `veryfast` managed 1.7× real time per core and `ultrafast`
/// about 4×; see E3 in `docs/benchmarks.md`), a little more bitrate to make up for it,
/// widely playable (main profile), a keyframe every 2 s at 25 fps. x264 is deterministic
/// unless told otherwise, so a node can make the same derivative again; its output does
/// depend on the thread count, which is therefore fixed rather than left to follow the
/// machine's cores.
const ENCODER: &str =
    "x264enc speed-preset=ultrafast key-int-max=50 bitrate=3000 threads=2 ! video/x-h264,profile=main";

/// Decodes the MPEG-TS arriving on `input`, fills `zones` in every picture (the
/// `identity` before the encoder drops the allocation query, so no element upstream
/// hands it padded planes described by a video meta: every frame has the default I420
/// layout, and a frame that does not is an error, never a frame passed unmasked), encodes it as
/// H.264 into a faststart MP4 dated `start_ms`, and hands the MP4 to `out` piece by piece
/// (false: stop). Blocking, like [`super::mp4::remux`]. Returns the frames redacted.
pub fn redact(
    input: super::mp4::Input,
    zones: &[Zone],
    start_ms: i64,
    scratch: &std::path::Path,
    mut out: impl FnMut(&[u8]) -> bool,
) -> Result<u64, String> {
    for z in zones {
        z.validate()?;
    }
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let desc = format!(
        "appsrc name=src format=bytes block=true max-bytes=8388608 caps=video/mpegts,systemstream=true ! decodebin ! \
         videoconvert ! video/x-raw,format=I420 ! identity name=mask drop-allocation=true ! {ENCODER} ! h264parse ! \
         mp4mux name=mux faststart=true ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("GStreamer: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let by = |n: &str| pipeline.by_name(n).ok_or_else(|| format!("no {n} in the redaction pipeline"));
    let src = by("src")?.downcast::<gst_app::AppSrc>().map_err(|_| "appsrc")?;
    let sink = by("sink")?.downcast::<gst_app::AppSink>().map_err(|_| "appsink")?;
    by("mux")?.set_property("faststart-file", scratch.to_string_lossy().to_string());

    sink.set_max_buffers(super::mp4::OUT_BUFFERS);
    let frames = Arc::new(Mutex::new(0u64));
    let failed = Arc::new(Mutex::new(None::<String>));
    let (zones2, frames2, failed3) = (zones.to_vec(), frames.clone(), failed.clone());
    let cache = Mutex::new(None);
    let pad = by("mask")?.static_pad("src").ok_or("identity without src pad")?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let size = pad.current_caps().and_then(|c| {
            let s = c.structure(0)?;
            Some((s.get::<i32>("width").ok()? as usize, s.get::<i32>("height").ok()? as usize))
        });
        let masked = match (size, info.data.as_mut()) {
            (Some((w, h)), Some(gst::PadProbeData::Buffer(buffer))) => {
                let [_, _, (v0, cs, ch)] = i420_layout(w, h);
                let buffer = buffer.make_mut();
                match buffer.map_writable() {
                    Ok(mut map) if map.len() >= v0 + cs * ch => {
                        mask_frame(&mut cache.lock().expect("mask cache"), &zones2, w, h, map.as_mut_slice());
                        Ok(())
                    }
                    Ok(map) => Err(format!("a {w}x{h} picture of {} bytes is not in the expected layout", map.len())),
                    Err(_) => Err("a picture could not be written to".to_string()),
                }
            }
            _ => Err("a picture arrived without its size".to_string()),
        };
        match masked {
            Ok(()) => {
                *frames2.lock().expect("frames") += 1;
                gst::PadProbeReturn::Ok
            }
            Err(e) => {
                // Never pass a picture that could not be masked.
                failed3.lock().expect("failed").get_or_insert(format!("redaction stopped: {e}"));
                gst::PadProbeReturn::Drop
            }
        }
    });

    let result = super::mp4::drive("redaction", &pipeline, &src, &sink, input, start_ms, failed, |_| None, &mut out);
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|_| *frames.lock().expect("frames"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_fill_exactly_the_samples_whose_centres_are_inside() {
        let m = PlaneMask::new(&[Zone::rect(0.25, 0.5, 0.5, 0.5)], 8, 4);
        assert_eq!(m.rows, vec![vec![], vec![], vec![(2, 6)], vec![(2, 6)]]);
        let mut plane = vec![1u8; 10 * 4];
        m.fill(&mut plane, 10, 9);
        assert_eq!(plane[20..30], [1, 1, 9, 9, 9, 9, 1, 1, 1, 1]);
        assert!(plane[..20].iter().all(|&b| b == 1));
        // The layout GStreamer gives a 6×5 I420 picture: rows of 8, 4 and 4 bytes.
        assert_eq!(i420_layout(6, 5), [(0, 8, 5), (48, 4, 3), (60, 4, 3)]);
    }

    /// Decoded GRAY8 frames of an MP4 or MPEG-TS, with their size.
    fn gray_frames(media: &[u8], demux: &str) -> (usize, usize, Vec<Vec<u8>>) {
        gst::init().unwrap();
        let desc = format!(
            "appsrc name=src ! {demux} ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! \
             appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
        let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
        let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        src.push_buffer(gst::Buffer::from_slice(media.to_vec())).unwrap();
        src.end_of_stream().unwrap();
        let (mut w, mut h, mut frames) = (0, 0, Vec::new());
        for s in super::super::mp4::tests::pull_all(&pipeline, &sink) {
            let st = s.caps().unwrap().structure(0).unwrap().to_owned();
            w = st.get::<i32>("width").unwrap() as usize;
            h = st.get::<i32>("height").unwrap() as usize;
            let stride = w.div_ceil(4) * 4;
            let map = s.buffer().unwrap().map_readable().unwrap();
            frames.push(map.as_slice().chunks(stride).flat_map(|r| r[..w].to_vec()).collect());
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (w, h, frames)
    }

    fn stats(frame: &[u8], w: usize, x0: usize, x1: usize, y0: usize, y1: usize) -> (f64, f64) {
        let v: Vec<f64> = (y0..y1).flat_map(|y| (x0..x1).map(move |x| frame[y * w + x] as f64)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, v.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / v.len() as f64)
    }

    #[test]
    fn a_redacted_derivative_is_flat_inside_its_zone_and_unchanged_outside() {
        // Colour bars everywhere: inside the zone they must become flat; outside they
        // must stay the same picture (re-encoded, so close rather than equal).
        gst::init().unwrap();
        let desc = "videotestsrc pattern=smpte num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1 ! \
                    x264enc key-int-max=25 bitrate=4000 ! h264parse ! mpegtsmux ! appsink name=sink sync=false";
        let pipeline = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
        let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut ts = Vec::new();
        for s in super::super::mp4::tests::pull_all(&pipeline, &sink) {
            ts.extend_from_slice(s.buffer().unwrap().map_readable().unwrap().as_slice());
        }
        pipeline.set_state(gst::State::Null).unwrap();

        let zone = Zone::rect(0.25, 0.25, 0.5, 0.5);
        let run = || {
            let dir = tempfile::tempdir().unwrap();
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let cut = ts.len() / 188 / 2 * 188;
            let pieces = vec![ts[..cut].to_vec(), ts[cut..].to_vec()];
            let feeder = std::thread::spawn(move || pieces.into_iter().for_each(|p| tx.blocking_send(Ok(p)).unwrap()));
            let mut mp4 = Vec::new();
            let frames = redact(rx, std::slice::from_ref(&zone), 1_780_000_000_000, &dir.path().join("s"), |b| {
                mp4.extend_from_slice(b);
                true
            })
            .unwrap();
            feeder.join().unwrap();
            (frames, mp4)
        };
        let (frames, mp4) = run();
        assert_eq!(frames, 50);
        assert_eq!(run().1, mp4, "the same footage and zones give the same derivative");

        let (w, h, redacted) = gray_frames(&mp4, "qtdemux");
        let (_, _, original) = gray_frames(&ts, "tsdemux");
        assert_eq!((w, h, redacted.len(), original.len()), (320, 240, 50, 50));
        for (r, o) in redacted.iter().zip(&original) {
            // Inside the zone (2 pixels in from its edge: the encoder blurs edges a little).
            let (_, var_in) = stats(r, w, 82, 238, 62, 178);
            let (_, var_orig) = stats(o, w, 82, 238, 62, 178);
            assert!(var_in < 2.0 && var_orig > 300.0, "zone variance {var_in} (original {var_orig})");
            // Outside: the top band is the same picture.
            let diff: f64 = (0..w * 50).map(|i| (r[i] as f64 - o[i] as f64).abs()).sum::<f64>() / (w * 50) as f64;
            let (_, var_top) = stats(r, w, 0, w, 0, 50);
            assert!(var_top > 300.0 && diff < 6.0, "outside the zone: variance {var_top}, mean difference {diff}");
        }
    }
}

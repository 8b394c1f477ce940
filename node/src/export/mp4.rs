//! The MP4 beside each MPEG-TS of an export: the same coded pictures, remuxed
//! (`tsdemux → h264parse | h265parse → mp4mux`, faststart), nothing decoded or re-encoded.
//! Stock players on Windows and macOS open it; the MPEG-TS stays the original.
//!
//! The remux is deterministic: the same segments give the same bytes, so any node can
//! rebuild a package's MP4 on download and check it against the hash in the signed
//! manifest, as it rebuilds the MPEG-TS from its segments. mp4mux stamps its headers
//! (`mvhd`, `tkhd`, `mdhd`) with the wall clock; [`Stamper`] rewrites those stamps to the
//! footage's first instant, which is also what a player shows as the recording's date.
//! The bytes depend on the GStreamer release too: nodes of one cluster run the same one
//! (`docs/operations.md`). The hash of a rebuild is known only at its end, so a node whose
//! rebuild differs ends the download with an error and the client discards what it got.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Seconds from the MP4 epoch (1904-01-01) to the Unix epoch.
const MP4_EPOCH_OFFSET_S: u64 = 2_082_844_800;
/// How long after the last input a remux that found no video stream is given up.
const NO_VIDEO_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// Bytes of MPEG-TS queued in front of the demuxer.
pub(crate) const QUEUE_BYTES: u64 = 8 << 20;
/// Output buffers the muxer may run ahead of whoever takes its output (a slow download):
/// at the end it copies the media data out of its working file, and would otherwise
/// copy all of it into memory.
pub(crate) const OUT_BUFFERS: u32 = 8;

/// The MP4 file name beside an original (`door.ts` → `door.mp4`).
pub fn mp4_name(ts_name: &str) -> String {
    format!("{}.mp4", ts_name.strip_suffix(".ts").unwrap_or(ts_name))
}

/// Remuxes the MPEG-TS that arrives on `input` (segment plaintexts in order; an `Err`
/// aborts) into a faststart MP4 whose headers carry `start_ms` as their time, handing the
/// output to `out` piece by piece (`out` returns false to stop early). mp4mux keeps the
/// media data in `scratch` until the end, then writes the index first; the caller removes
/// `scratch` afterwards. Blocking: run it on a blocking thread.
pub fn remux(input: Input, start_ms: i64, scratch: &Path, mut out: impl FnMut(&[u8]) -> bool) -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&gst::Caps::builder("video/mpegts").field("systemstream", true).build())
        .format(gst::Format::Bytes)
        .block(true)
        .max_bytes(QUEUE_BYTES)
        .build();
    let make = |name: &str| gst::ElementFactory::make(name).build().map_err(|e| format!("GStreamer {name}: {e}"));
    let demux = make("tsdemux")?;
    let mux = make("mp4mux")?;
    mux.set_property("faststart", true);
    mux.set_property("faststart-file", scratch.to_string_lossy().to_string());
    let sink = gst_app::AppSink::builder().sync(false).max_buffers(OUT_BUFFERS).build();
    pipeline.add_many([src.upcast_ref(), &demux, &mux, sink.upcast_ref()]).map_err(|e| format!("GStreamer: {e}"))?;
    src.link(&demux).map_err(|e| format!("GStreamer: {e}"))?;
    mux.link(&sink).map_err(|e| format!("GStreamer: {e}"))?;

    // The first video stream gets a parser and a pad on the muxer; anything else the
    // demuxer finds (recordings hold video only) is left unlinked.
    let linked = Arc::new(Mutex::new(None::<String>));
    let (bin, mux2, linked2) = (pipeline.downgrade(), mux.clone(), linked.clone());
    demux.connect_pad_added(move |_, pad| {
        let Some(caps) = pad.current_caps() else { return };
        let Some(kind) = caps.structure(0).map(|s| s.name().to_string()) else { return };
        let parser = match kind.as_str() {
            "video/x-h264" => "h264parse",
            "video/x-h265" => "h265parse",
            _ => return,
        };
        let (Some(bin), Ok(mut first)) = (bin.upgrade(), linked2.lock()) else { return };
        if first.is_some() {
            return;
        }
        let result = (|| {
            let p = gst::ElementFactory::make(parser).build().map_err(|e| e.to_string())?;
            bin.add(&p).map_err(|e| e.to_string())?;
            p.sync_state_with_parent().map_err(|e| e.to_string())?;
            pad.link(&p.static_pad("sink").ok_or("parser without sink pad")?).map_err(|e| e.to_string())?;
            let to = mux2.request_pad_simple("video_%u").ok_or("mp4mux gave no video pad")?;
            p.static_pad("src").ok_or("parser without src pad")?.link(&to).map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        })();
        *first = Some(match result {
            Ok(()) => kind,
            Err(e) => format!("error: {e}"),
        });
    });

    let failed = Arc::new(Mutex::new(None::<String>));
    let give_up = |fed: Option<std::time::Instant>| {
        // No video reached the muxer in all of the input: the muxer will never finish.
        match linked.lock().expect("linked").as_deref() {
            Some(k) if k.starts_with("video/") => None,
            _ if fed.is_none_or(|t| t.elapsed() <= NO_VIDEO_GRACE) => None,
            None => Some("the footage holds no H.264 or H.265 video to put in an MP4".to_string()),
            Some(e) => Some(format!("cannot remux to MP4: {}", e.trim_start_matches("error: "))),
        }
    };
    let result = drive("remux to MP4", &pipeline, &src, &sink, input, start_ms, failed, give_up, &mut out);
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|_| ())
}

/// Input of a remux or a redaction: segment plaintexts in order; an `Err` aborts.
pub type Input = tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>;

/// Runs `pipeline`, whose `src` takes MPEG-TS and whose `sink` gives mp4mux's output:
/// feeds `input` into `src` from a thread of its own (the muxer emits nothing until the
/// end, and the queue in front of it is bounded) and drains `sink` through a [`Stamper`]
/// dated `start_ms` into `out`. `failed` carries an error raised inside the pipeline (a
/// probe's); `give_up`, asked while nothing comes out with the time all input went in,
/// may end the wait with an error. Returns true at the end of the stream, false if `out`
/// asked to stop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive(
    what: &str,
    pipeline: &gst::Pipeline,
    src: &gst_app::AppSrc,
    sink: &gst_app::AppSink,
    mut input: Input,
    start_ms: i64,
    failed: Arc<Mutex<Option<String>>>,
    give_up: impl Fn(Option<std::time::Instant>) -> Option<String>,
    out: &mut impl FnMut(&[u8]) -> bool,
) -> Result<bool, String> {
    let (failed2, src2) = (failed.clone(), src.clone());
    let fed_all = Arc::new(Mutex::new(None::<std::time::Instant>));
    let fed_all2 = fed_all.clone();
    std::thread::Builder::new()
        .name("export-mp4-feed".into())
        .spawn(move || {
            while let Some(piece) = input.blocking_recv() {
                match piece {
                    Ok(bytes) => {
                        if src2.push_buffer(gst::Buffer::from_mut_slice(bytes)).is_err() {
                            return; // the pipeline stopped; the drain reports why
                        }
                    }
                    Err(e) => {
                        failed2.lock().expect("feed error").get_or_insert(e);
                        return;
                    }
                }
            }
            let _ = src2.end_of_stream();
            *fed_all2.lock().expect("fed") = Some(std::time::Instant::now());
        })
        .map_err(|e| format!("spawning the {what} feeder: {e}"))?;
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("GStreamer: cannot start the {what}: {e}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut stamper = Stamper::new(start_ms);
    loop {
        if let Some(e) = failed.lock().expect("feed error").take() {
            return Err(e);
        }
        if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = m.view() {
                return Err(format!("the {what} failed: {} ({:?})", e.error(), e.debug()));
            }
        }
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            let buffer = sample.buffer().ok_or("an MP4 sample without a buffer")?;
            let map = buffer.map_readable().map_err(|e| e.to_string())?;
            if !stamper.feed(map.as_slice(), out)? {
                return Ok(false);
            }
        } else if sink.is_eos() {
            return stamper.finish().map(|()| true);
        } else if let Some(e) = give_up(*fed_all.lock().expect("fed")) {
            return Err(e);
        }
    }
}

/// Holds mp4mux's output back until its `moov` box is complete, rewrites the times in
/// it, then passes everything through.
pub struct Stamper {
    head: Vec<u8>,
    done: bool,
    mp4_secs: u64,
}

impl Stamper {
    /// Stamps with `start_ms` (Unix milliseconds).
    pub fn new(start_ms: i64) -> Stamper {
        Stamper { head: Vec::new(), done: false, mp4_secs: (start_ms.max(0) / 1000) as u64 + MP4_EPOCH_OFFSET_S }
    }

    /// Takes the next piece of mp4mux's output; returns `out`'s verdict (false: stop).
    pub fn feed(&mut self, data: &[u8], out: &mut impl FnMut(&[u8]) -> bool) -> Result<bool, String> {
        if self.done {
            return Ok(out(data));
        }
        self.head.extend_from_slice(data);
        let Some((start, end)) = moov_range(&self.head)? else { return Ok(true) };
        let stamped = stamp(&mut self.head[start..end], self.mp4_secs)?;
        if stamped == 0 {
            return Err("the MP4 index holds no movie header to stamp".into());
        }
        self.done = true;
        let head = std::mem::take(&mut self.head);
        Ok(out(&head))
    }

    /// After the last piece: fails if the index never came.
    pub fn finish(self) -> Result<(), String> {
        if self.done {
            Ok(())
        } else {
            Err("mp4mux wrote no complete index (moov box)".into())
        }
    }
}

fn be32(b: &[u8], at: usize) -> u64 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}

/// Where the `moov` box lies in `b`, once it is complete; an error if media data comes
/// first (not a faststart file).
fn moov_range(b: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let mut off = 0usize;
    loop {
        if b.len() < off + 8 {
            return Ok(None);
        }
        let (size, header) = match be32(b, off) {
            0 => return Err("an MP4 box runs to the end of the file before the index".into()),
            1 if b.len() < off + 16 => return Ok(None),
            1 => ((be32(b, off + 8) << 32) | be32(b, off + 12), 16),
            n => (n, 8),
        };
        if size < header {
            return Err(format!("an MP4 box of {size} bytes is shorter than its header"));
        }
        let end = off.checked_add(usize::try_from(size).map_err(|_| "an MP4 box too large")?).ok_or("overflow")?;
        match &b[off + 4..off + 8] {
            b"moov" => return Ok((b.len() >= end).then_some((off, end))),
            b"mdat" => return Err("mp4mux put the media data before the index (not faststart)".into()),
            _ => off = end,
        }
    }
}

/// Rewrites the creation and modification times of every `mvhd`, `tkhd` and `mdhd`
/// inside the box `b` (a `moov`, `trak` or `mdia`); returns how many it stamped.
fn stamp(b: &mut [u8], secs: u64) -> Result<usize, String> {
    let mut stamped = 0;
    let mut off = 8;
    while off + 8 <= b.len() {
        let size = be32(b, off) as usize;
        if size < 8 || off + size > b.len() {
            return Err("a malformed box inside the MP4 index".into());
        }
        let child = &mut b[off..off + size];
        match &child[4..8] {
            b"trak" | b"mdia" => stamped += stamp(child, secs)?,
            b"mvhd" | b"tkhd" | b"mdhd" => {
                match child.get(8) {
                    Some(0) if size >= 20 => {
                        let s = (secs as u32).to_be_bytes();
                        child[12..16].copy_from_slice(&s);
                        child[16..20].copy_from_slice(&s);
                    }
                    Some(1) if size >= 28 => {
                        child[12..20].copy_from_slice(&secs.to_be_bytes());
                        child[20..28].copy_from_slice(&secs.to_be_bytes());
                    }
                    _ => return Err("an MP4 header box of an unknown version".into()),
                }
                stamped += 1;
            }
            _ => {}
        }
        off += size;
    }
    Ok(stamped)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every sample `sink` gives until the end of the stream; panics on a pipeline error
    /// or after a minute rather than wait for an end that will not come.
    pub(crate) fn pull_all(pipeline: &gst::Pipeline, sink: &gst_app::AppSink) -> Vec<gst::Sample> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let bus = pipeline.bus().unwrap();
        let mut out = Vec::new();
        loop {
            if let Some(s) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                out.push(s);
            } else if sink.is_eos() {
                return out;
            }
            if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
                panic!("pipeline error: {m:?}");
            }
            assert!(std::time::Instant::now() < deadline, "the pipeline did not finish within a minute");
        }
    }

    /// A short H.264 or H.265 MPEG-TS made by GStreamer's encoders.
    pub(crate) fn sample_ts(encoder: &str, parser: &str, frames: u32) -> Vec<u8> {
        gst::init().unwrap();
        let desc = format!(
            "videotestsrc num-buffers={frames} ! video/x-raw,width=320,height=240,framerate=25/1 ! {encoder} ! \
             {parser} ! mpegtsmux ! appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
        let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut ts = Vec::new();
        for s in pull_all(&pipeline, &sink) {
            ts.extend_from_slice(s.buffer().unwrap().map_readable().unwrap().as_slice());
        }
        pipeline.set_state(gst::State::Null).unwrap();
        ts
    }

    fn run(ts: &[u8], start_ms: i64) -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        // Two "segments", cut on a packet boundary.
        let cut = ts.len() / 188 / 2 * 188;
        let pieces = vec![ts[..cut].to_vec(), ts[cut..].to_vec()];
        let feeder = std::thread::spawn(move || {
            for p in pieces {
                tx.blocking_send(Ok(p)).unwrap();
            }
        });
        let mut mp4 = Vec::new();
        let r = remux(rx, start_ms, &dir.path().join("scratch"), |b| {
            mp4.extend_from_slice(b);
            true
        });
        feeder.join().unwrap();
        r.map(|()| mp4)
    }

    /// Finds the first box of `kind` anywhere in `b` (a depth-first walk of containers).
    fn find<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        let mut off = 0;
        while off + 8 <= b.len() {
            let size = be32(b, off) as usize;
            if size < 8 || off + size > b.len() {
                return None;
            }
            let child = &b[off..off + size];
            if &child[4..8] == kind {
                return Some(child);
            }
            if matches!(&child[4..8], b"moov" | b"trak" | b"mdia") {
                if let Some(f) = find(&child[8..], kind) {
                    return Some(f);
                }
            }
            off += size;
        }
        None
    }

    #[test]
    fn the_remux_is_deterministic_and_dated_by_the_footage() {
        let ts = sample_ts("x264enc key-int-max=25", "h264parse", 75);
        let start_ms = 1_780_000_000_123;
        let a = run(&ts, start_ms).unwrap();
        // mp4mux reads the wall clock in whole seconds: run again in another second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = run(&ts, start_ms).unwrap();
        assert!(a == b, "two remuxes of the same footage differ");
        assert_eq!(&a[4..8], b"ftyp");
        let mvhd = find(&a, b"mvhd").expect("a movie header");
        let secs = if mvhd[8] == 0 { be32(mvhd, 12) } else { (be32(mvhd, 12) << 32) | be32(mvhd, 16) };
        assert_eq!(secs, 1_780_000_000 + MP4_EPOCH_OFFSET_S);
        assert!(a.windows(4).any(|w| w == b"avcC"), "an H.264 sample entry with its parameter sets");
    }

    #[test]
    fn h265_remuxes_too_and_garbage_is_refused() {
        let ts = sample_ts("x265enc key-int-max=25 speed-preset=ultrafast", "h265parse", 25);
        let mp4 = run(&ts, 1_780_000_000_000).unwrap();
        assert!(mp4.windows(4).any(|w| w == b"hvc1" || w == b"hev1"), "an H.265 sample entry");
        let err = run(&vec![0x47; 188 * 40], 1).unwrap_err();
        assert!(err.contains("no H.264 or H.265") || err.contains("failed"), "{err}");
    }

    #[test]
    fn stamping_needs_the_index_first() {
        let mut s = Stamper::new(0);
        let mdat = [&[0u8, 0, 0, 9][..], b"mdat", &[0]].concat();
        assert!(s.feed(&mdat, &mut |_| true).unwrap_err().contains("not faststart"));
        let s = Stamper::new(0);
        assert!(s.finish().is_err());
    }
}

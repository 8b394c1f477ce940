//! GStreamer pipelines, one per camera, and the supervisor thread that keeps each one
//! running: connect, record, detect failure or silence, back off, reconnect.
//!
//! GStreamer's streaming threads hand each access unit to the [`Segmenter`]; a closed
//! segment is written as MPEG-TS and sent over a bounded channel with `blocking_send`,
//! so a slow consumer slows the pipeline instead of growing memory. Nothing here runs on
//! the async reactor.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc;

use super::mpegts::{frames_of, mux_segment, StreamType};
use super::segmenter::starts_picture;
use super::segmenter::{AccessUnit, Cut, Segmenter};
use super::standby::{FrameBuffer, Poll, StandbyCtl};
use super::{CameraStates, RawSegment, RtspReceiver, Source, State};
use crate::meta::Codec;

/// A pipeline that has produced no frame for this long after starting is given up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Shortest silence that marks a recording camera down (the real limit is the larger of
/// this and three segment targets).
pub const STALL_TIMEOUT_MIN: Duration = Duration::from_secs(8);
/// Reconnect back-off: first wait, and the cap it doubles up to.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// A run longer than this resets the back-off.
pub(super) const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// A camera without a keyframe for this many targets gets a forced cut.
const MAX_SEGMENT_TARGETS: u64 = 8;
/// A step of the node's clock this large (ms, either way) is followed by the stamps: see
/// [`Session::follow_clock`]. The default `clock_skew_ms`.
pub(super) const CLOCK_STEP_MS: i64 = 2_000;

/// Everything a camera's supervisor needs.
pub struct CameraTask {
    /// Which receiver takes `rtsp://` sources.
    pub receiver: RtspReceiver,
    pub camera: String,
    pub source: Source,
    /// The source as configured, to take out of error messages (see [`super::redact_text`]).
    pub source_text: String,
    pub segment_target_ms: u64,
    pub tx: mpsc::Sender<RawSegment>,
    pub states: CameraStates,
    pub stop: Arc<AtomicBool>,
    pub clock: crate::clock::SharedClock,
    /// Set when this node stands by for the camera: pictures are held, not recorded,
    /// until a takeover (see [`super::standby`]).
    pub standby: Option<Arc<StandbyCtl>>,
    /// Wall-clock ns no run of this camera stamps a picture before, unless it is more than
    /// [`FLOOR_AHEAD_MAX_MS`] ahead of the clock: where its footage ends, in the catalog
    /// when the task began and as each run packages segments. A run after a reconnect, a
    /// restart or a move to a node whose clock is a little behind therefore does not
    /// overlap footage already recorded.
    pub floor_ns: Arc<AtomicU64>,
}

/// How far ahead of this node's clock (ms) the camera's footage may end and still be a
/// floor for new stamps: commit delays and the clock differences between healthy nodes
/// (a camera moved to a node a little behind). Further ahead, the footage was stamped by
/// a clock since stepped back, or by a node whose clock runs ahead: new footage is
/// stamped by this clock, as it would be after any step, even where that overlaps it in
/// time (those stamps were the wrong ones; following them would keep every later stamp of
/// the camera wrong by as much).
const FLOOR_AHEAD_MAX_MS: i64 = 10_000;

/// The floor (ns) a new run of `camera` keeps to, given the task's floor (ns) and this
/// node's clock: the floor itself, or 0 when it is more than [`FLOOR_AHEAD_MAX_MS`] ahead.
fn usable_floor(camera: &str, floor_ns: u64, now_ms: i64) -> u64 {
    let ahead_ms = (floor_ns / 1_000_000) as i64 - now_ms;
    if ahead_ms <= FLOOR_AHEAD_MAX_MS {
        return floor_ns;
    }
    tracing::warn!(
        camera = %camera,
        ahead_ms,
        "the camera's footage ends ahead of this node's clock (the clock was stepped back, or the node that \
         recorded it runs ahead): new footage is stamped by this clock and may overlap it in time"
    );
    0
}

/// One run's recording state: the segmenter and what turns its cuts into segments.
/// GStreamer's appsink callback shares it with the supervisor; the native receiver owns it.
pub(super) struct Session {
    camera: String,
    segmenter: Segmenter,
    codec: Option<Codec>,
    /// (wall-clock ns, pipeline PTS ns) of the first frame of this run (or of this
    /// timeline, after [`Session::new_timeline`]).
    anchor: Option<(u64, u64)>,
    /// Wall-clock end of the last segment packaged, in ns (at first the task's floor): a
    /// new timeline starts no earlier.
    last_end_ns: u64,
    /// The task's floor, raised as segments are packaged, for the next run.
    floor: Arc<AtomicU64>,
    tx: mpsc::Sender<RawSegment>,
    clock: crate::clock::SharedClock,
    /// Standing by: what the node's watcher asks, and the pictures held meanwhile.
    standby: Option<(Arc<StandbyCtl>, FrameBuffer)>,
    /// [`crate::clock::Clock::stepped_ms`] when the anchor was set or last followed the
    /// clock forward (a step back leaves it, so a later step forward that only undoes it
    /// moves nothing).
    stepped_ms: i64,
    /// A step back was reported this run.
    said_back: bool,
}

/// The segments one picture closed: none, one, or (on a takeover) several.
pub(super) type Closed = Vec<RawSegment>;

impl Session {
    pub(super) fn new(task: &CameraTask) -> Session {
        let target_ns = task.segment_target_ms * 1_000_000;
        Session {
            camera: task.camera.clone(),
            segmenter: Segmenter::new(target_ns, target_ns * MAX_SEGMENT_TARGETS),
            codec: None,
            anchor: None,
            last_end_ns: usable_floor(&task.camera, task.floor_ns.load(Ordering::Relaxed), task.clock.now_ms()),
            floor: task.floor_ns.clone(),
            tx: task.tx.clone(),
            clock: task.clock.clone(),
            standby: task.standby.clone().map(|ctl| (ctl, FrameBuffer::new(task.segment_target_ms))),
            stepped_ms: 0,
            said_back: false,
        }
    }

    /// Takes the next access unit; returns the segments it closed. The first unit of a
    /// run anchors the run's timestamps to the wall clock. Standing by, the unit is held
    /// instead, until a takeover commits the held pictures from the seam on.
    pub(super) fn push(&mut self, codec: Codec, au: AccessUnit) -> Closed {
        self.codec.get_or_insert(codec);
        self.anchor_at(au.pts_ns);
        let mut out = Closed::new();
        if let Some(poll) = self.standby.as_ref().map(|(ctl, _)| ctl.poll()) {
            match poll {
                Poll::Hold => {
                    // Held pictures follow the clock as recorded ones do, so they line up
                    // with the recorder's stamps when both clocks were stepped.
                    if au.keyframe {
                        self.follow_clock();
                    }
                    let wall = wall_at(self.anchor, au.pts_ns);
                    if let Some((ctl, buf)) = &mut self.standby {
                        buf.push(ctl, wall, self.stepped_ms, au);
                    }
                    return out;
                }
                Poll::TakeOver(seam_ms) => {
                    out = self.take_over(seam_ms);
                    self.anchor_at(au.pts_ns);
                }
                Poll::Record => {}
            }
            self.standby = None;
        }
        out.extend(self.record(au));
        out
    }

    /// Follows a step of the node's clock (NTP stepping it, a person setting it) of over
    /// [`CLOCK_STEP_MS`] since the timeline was anchored: stepped forward, every stamp from
    /// the segment being closed on moves forward by the step, leaving a gap in time, none
    /// in footage; stepped back, nothing moves, so no segment can overlap one already
    /// recorded, and the stamps stay ahead of the clock by the step until the camera's
    /// next connection. Without it a run that began before the clock was stepped weeks
    /// forward (a node that ran slow, then corrected) went on stamping its footage weeks
    /// in the past, where retention deleted it as soon as the jump was confirmed. The
    /// camera's own clock drifting against the node's is not followed (a run keeps the
    /// camera's timing); a reconnect anchors it again.
    fn follow_clock(&mut self) {
        let Some((wall_ns, pts0)) = self.anchor else { return };
        let now = self.clock.stepped_ms();
        let step = now - self.stepped_ms;
        if step >= CLOCK_STEP_MS {
            self.stepped_ms = now;
            self.said_back = false;
            self.anchor = Some((wall_ns.saturating_add(step as u64 * 1_000_000), pts0));
            tracing::warn!(
                camera = %self.camera,
                step_ms = step,
                "this node's clock was stepped forward: the camera's footage is stamped by the new time from the \
                 segment being closed on (a gap in time, none in footage)"
            );
        } else if step <= -CLOCK_STEP_MS && !self.said_back {
            // The baseline stays where the stamps are: a step forward that only undoes
            // this one moves nothing.
            self.said_back = true;
            tracing::warn!(
                camera = %self.camera,
                step_ms = step,
                "this node's clock was stepped back: the camera's segments go on from the last one's end, so none \
                 overlaps, stamped ahead of the clock by the step until the camera connects again"
            );
        }
    }

    /// Anchors the timeline at `pts_ns` to the wall clock now, no earlier than the end of
    /// the last segment, unless it is anchored already.
    fn anchor_at(&mut self, pts_ns: u64) {
        if self.anchor.is_none() {
            let wall_ns = (self.clock.now_ms().max(0) as u64).saturating_mul(1_000_000);
            self.anchor = Some((wall_ns.max(self.last_end_ns), pts_ns));
            self.stepped_ms = self.clock.stepped_ms();
        }
    }

    /// The PTS of the newest picture, recorded or held.
    fn last_pts_ns(&self) -> Option<u64> {
        match &self.standby {
            Some((_, buf)) => buf.last_pts_ns(),
            None => self.segmenter.last_pts_ns(),
        }
    }

    /// Adds the rest of the newest picture, which the parser split off.
    fn extend_last(&mut self, more: &[u8], h265: bool) {
        match &mut self.standby {
            Some((_, buf)) => buf.extend_last(more, h265),
            None => {
                self.segmenter.extend_last(more, h265);
            }
        }
    }

    fn record(&mut self, au: AccessUnit) -> Option<RawSegment> {
        let cut = self.segmenter.push(au)?;
        self.follow_clock();
        if cut.forced {
            tracing::warn!(camera = %self.camera, "segment cut without a keyframe: none within {MAX_SEGMENT_TARGETS} segment targets, or it outgrew the segment size limit (check the camera's GOP setting and timestamps)");
        }
        self.package(cut)
    }

    /// Starts recording from the held pictures: from the keyframe closest to the seam,
    /// stamped no earlier than the seam, so the footage continues the failed recorder's
    /// without overlapping it.
    fn take_over(&mut self, seam_ms: Option<i64>) -> Closed {
        let Some((_, mut buf)) = self.standby.take() else { return Closed::new() };
        let seam_ns = seam_ms.map(|ms| ms.max(0) as u64 * 1_000_000);
        self.last_end_ns = self.last_end_ns.max(seam_ns.unwrap_or(0));
        self.floor.fetch_max(self.last_end_ns, Ordering::Relaxed);
        let held = buf.take_from(seam_ns);
        let Some(first) = held.first() else {
            tracing::warn!(camera = %self.camera, seam_ms, "took the camera over with no picture held: footage resumes at the next keyframe");
            // Anchored afresh at this picture, no earlier than the seam.
            self.anchor = None;
            return Closed::new();
        };
        let start = seam_ns.map_or(first.wall_ns, |s| first.wall_ns.max(s));
        let gap_ms = seam_ns.map_or(0, |s| (first.wall_ns.saturating_sub(s) / 1_000_000) as i64);
        let shift_ms = seam_ns.map_or(0, |s| (s.saturating_sub(first.wall_ns) / 1_000_000) as i64);
        self.anchor = Some((start, first.au.pts_ns));
        // The baseline the first picture was stamped under: a step since then (the clock
        // stepped while the pictures were held) moves the stamps from the first segment
        // closed on, as it would have on the recorder.
        self.stepped_ms = first.stepped_ms;
        tracing::warn!(
            camera = %self.camera,
            seam_ms,
            pictures = held.len(),
            held_ms = held.last().map_or(0, |l| l.wall_ns).saturating_sub(first.wall_ns) / 1_000_000,
            gap_ms,
            shift_ms,
            "took the camera over: committing the pictures held from the recorder's last keyframe"
        );
        let mut out = Closed::new();
        for h in held {
            out.extend(self.record(h.au));
        }
        out
    }

    /// The tail of a run: whatever the segmenter still holds, as a segment.
    pub(super) fn finish(&mut self) -> Option<RawSegment> {
        let cut = self.segmenter.finish()?;
        self.package(cut)
    }

    /// The camera's timestamps broke (leapt back, or far ahead): closes what the
    /// segmenter holds, and anchors the next keyframe afresh to the wall clock, no earlier
    /// than the end of the segment just closed, so segments never overlap. Standing by,
    /// the held pictures no longer line up with the new ones and are let go.
    pub(super) fn new_timeline(&mut self) -> Option<RawSegment> {
        if let Some((ctl, buf)) = &mut self.standby {
            buf.clear(ctl);
        }
        let tail = self.finish();
        self.anchor = None;
        tail
    }

    fn wall_ns(&self, pts_ns: u64) -> u64 {
        wall_at(self.anchor, pts_ns)
    }

    /// Muxes a cut into a [`RawSegment`]; `None` for an empty one.
    fn package(&mut self, cut: Cut) -> Option<RawSegment> {
        let codec = self.codec?;
        self.last_end_ns = self.last_end_ns.max(self.wall_ns(cut.end_ns));
        self.floor.fetch_max(self.last_end_ns, Ordering::Relaxed);
        let frames = frames_of(&cut.units, |ns| self.wall_ns(ns));
        let st = match codec {
            Codec::H264 => StreamType::H264,
            Codec::H265 => StreamType::H265,
        };
        Some(RawSegment {
            camera: self.camera.clone(),
            start_ms: (self.wall_ns(cut.start_ns) / 1_000_000) as i64,
            end_ms: (self.wall_ns(cut.end_ns) / 1_000_000) as i64,
            codec,
            forced_cut: cut.forced,
            data: mux_segment(st, &self.camera, &frames),
        })
        .filter(|seg| seg.end_ms > seg.start_ms)
    }

    /// Sends segments downstream from a streaming thread, blocking while the channel is full.
    fn emit(&self, segs: impl IntoIterator<Item = RawSegment>) -> Result<(), gst::FlowError> {
        for seg in segs {
            self.tx.blocking_send(seg).map_err(|_| gst::FlowError::Flushing)?;
        }
        Ok(())
    }

    /// Sends segments downstream from async code, waiting while the channel is full.
    /// False once the recorder has gone.
    pub(super) async fn send(&self, segs: impl IntoIterator<Item = RawSegment>) -> bool {
        for seg in segs {
            if self.tx.send(seg).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// The wall-clock time of `pts_ns` under `anchor` (wall ns, PTS ns).
fn wall_at(anchor: Option<(u64, u64)>, pts_ns: u64) -> u64 {
    let (wall, pts0) = anchor.expect("anchored before the first cut");
    if pts_ns >= pts0 {
        wall + (pts_ns - pts0)
    } else {
        wall.saturating_sub(pts0 - pts_ns)
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory:?} is missing; run ops/setup.sh to install the plugins"))
}

/// Links a freshly exposed source pad to depay/parse → appsink, by its caps.
fn link_dynamic_pad(pipeline: &gst::Pipeline, pad: &gst::Pad, sink: &gst::Element) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let s = caps.structure(0).ok_or("pad without caps")?;
    let (depay, parse) = match s.name().as_str() {
        "application/x-rtp" => match s.get::<&str>("encoding-name").unwrap_or("") {
            "H264" => (Some("rtph264depay"), "h264parse"),
            "H265" => (Some("rtph265depay"), "h265parse"),
            _ => (None, ""),
        },
        "video/x-h264" => (None, "h264parse"),
        "video/x-h265" => (None, "h265parse"),
        _ => (None, ""),
    };
    if parse.is_empty() {
        // Audio or metadata tracks: consume and ignore them.
        let fake = make("fakesink")?;
        fake.set_property("sync", false);
        pipeline.add(&fake).map_err(|e| e.to_string())?;
        fake.sync_state_with_parent().map_err(|e| e.to_string())?;
        pad.link(&fake.static_pad("sink").ok_or("fakesink without pad")?).map_err(|e| format!("{e:?}"))?;
        return Ok(());
    }
    if sink.static_pad("sink").is_some_and(|p| p.is_linked()) {
        return Ok(()); // A second video track: record only the first.
    }
    let parser = make(parse)?;
    parser.set_property("config-interval", -1i32);
    let filter = make("capsfilter")?;
    let caps_name = if parse == "h264parse" { "video/x-h264" } else { "video/x-h265" };
    filter.set_property(
        "caps",
        gst::Caps::builder(caps_name).field("stream-format", "byte-stream").field("alignment", "au").build(),
    );
    let mut chain = Vec::new();
    if let Some(d) = depay {
        chain.push(make(d)?);
    }
    chain.push(parser);
    chain.push(filter);
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    let mut all: Vec<&gst::Element> = chain.iter().collect();
    all.push(sink);
    gst::Element::link_many(&all).map_err(|e| e.to_string())?;
    for e in &chain {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    pad.link(&chain[0].static_pad("sink").ok_or("element without sink pad")?).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// Builds the pipeline for a source; returns it with its appsink.
fn build(source: &Source) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    let pipeline = gst::Pipeline::new();
    let appsink = gst_app::AppSink::builder().sync(matches!(source, Source::File(_))).max_buffers(64).build();
    pipeline.add(appsink.upcast_ref::<gst::Element>()).map_err(|e| e.to_string())?;
    let sink_el: gst::Element = appsink.clone().upcast();
    match source {
        Source::Rtsp(url) => {
            // The credentials go in their own properties: rtspsrc cuts a URL at the first
            // '@', so a password typed with one would reach the camera cut short.
            let (location, creds) = super::split_userinfo(url);
            let src = gst::ElementFactory::make("rtspsrc")
                .property("location", location.as_str())
                .property("latency", 200u32)
                .property("tcp-timeout", 5_000_000u64)
                .build()
                .map_err(|_| "GStreamer element rtspsrc is missing; run ops/setup.sh".to_string())?;
            if let Some((user, password)) = creds {
                src.set_property("user-id", user);
                src.set_property("user-pw", password);
            }
            src.set_property_from_str("protocols", "tcp");
            pipeline.add(&src).map_err(|e| e.to_string())?;
            let (p, s) = (pipeline.downgrade(), sink_el.clone());
            src.connect_pad_added(move |_, pad| {
                if let Some(p) = p.upgrade() {
                    if let Err(e) = link_dynamic_pad(&p, pad, &s) {
                        tracing::warn!(error = %e, "cannot link RTSP stream");
                    }
                }
            });
        }
        Source::File(path) => {
            let src = make("filesrc")?;
            src.set_property("location", path.to_string_lossy().as_ref());
            let parsebin = make("parsebin")?;
            pipeline.add_many([&src, &parsebin]).map_err(|e| e.to_string())?;
            src.link(&parsebin).map_err(|e| e.to_string())?;
            let (p, s) = (pipeline.downgrade(), sink_el.clone());
            parsebin.connect_pad_added(move |_, pad| {
                if let Some(p) = p.upgrade() {
                    if let Err(e) = link_dynamic_pad(&p, pad, &s) {
                        tracing::warn!(error = %e, "cannot link file stream");
                    }
                }
            });
        }
        Source::Test { pattern } => {
            let desc = format!(
                "videotestsrc is-live=true pattern={pattern} ! video/x-raw,format=I420,width=640,height=360,framerate=25/1 \
                 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 bitrate=1000 \
                 ! h264parse config-interval=-1 \
                 ! capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au"
            );
            let bin = gst::parse::bin_from_description(&desc, true)
                .map_err(|e| format!("test source: {e}; run ops/setup.sh to install the GStreamer plugins"))?;
            pipeline.add(&bin).map_err(|e| e.to_string())?;
            bin.link(&sink_el).map_err(|e| e.to_string())?;
        }
    }
    Ok((pipeline, appsink))
}

fn install_callbacks(
    appsink: &gst_app::AppSink,
    session: Arc<Mutex<Session>>,
    last_frame: Arc<AtomicU64>,
    epoch: Instant,
) {
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                // A buffer without a timestamp, or with the latest one's, is the rest of
                // the same picture that the parser split off (a camera that repeats SPS
                // and PPS before each slice of a keyframe): it joins that access unit,
                // so no slice of a keyframe is lost.
                {
                    let mut s = session.lock().expect("session lock");
                    let h265 = s.codec == Some(Codec::H265);
                    let same = match buffer.pts() {
                        None => true,
                        Some(p) => s.last_pts_ns() == Some(p.nseconds()),
                    };
                    if same && !starts_picture(h265, map.as_slice()) {
                        s.extend_last(map.as_slice(), h265);
                        return Ok(gst::FlowSuccess::Ok);
                    }
                }
                let Some(pts) = buffer.pts() else { return Ok(gst::FlowSuccess::Ok) };
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let au = AccessUnit {
                    pts_ns: pts.nseconds(),
                    dts_ns: buffer.dts().map(|d| d.nseconds()),
                    keyframe,
                    data: map.as_slice().to_vec(),
                };
                last_frame.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
                let mut s = session.lock().expect("session lock");
                let codec = match s.codec {
                    Some(c) => c,
                    None => match sample.caps().and_then(|c| c.structure(0)).map(|st| st.name().as_str()) {
                        Some("video/x-h264") => Codec::H264,
                        Some("video/x-h265") => Codec::H265,
                        _ => return Ok(gst::FlowSuccess::Ok),
                    },
                };
                let seg = s.push(codec, au);
                s.emit(seg)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// How one run of a pipeline ended.
pub(super) enum RunEnd {
    Stopped,
    EndOfStream,
    Failed(String),
}

/// One run of a GStreamer pipeline.
fn run_once(task: &CameraTask, healthy: &mut bool) -> RunEnd {
    let (pipeline, appsink) = match build(&task.source) {
        Ok(p) => p,
        Err(e) => return RunEnd::Failed(e),
    };
    let session = Arc::new(Mutex::new(Session::new(task)));
    let epoch = Instant::now();
    let last_frame = Arc::new(AtomicU64::new(0));
    install_callbacks(&appsink, session.clone(), last_frame.clone(), epoch);
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let stall = STALL_TIMEOUT_MIN.max(Duration::from_millis(task.segment_target_ms * 3));
    let end = if let Err(e) = pipeline.set_state(gst::State::Playing) {
        RunEnd::Failed(format!("cannot start pipeline: {e}"))
    } else {
        let mut recording = false;
        loop {
            if task.stop.load(Ordering::Relaxed) {
                break RunEnd::Stopped;
            }
            if let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(200),
                &[gst::MessageType::Error, gst::MessageType::Eos],
            ) {
                match msg.view() {
                    gst::MessageView::Eos(_) => break RunEnd::EndOfStream,
                    gst::MessageView::Error(e) => {
                        let detail = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                        break RunEnd::Failed(format!("{}{}", e.error(), detail.lines().next().unwrap_or("")));
                    }
                    _ => {}
                }
            }
            let last = last_frame.load(Ordering::Relaxed);
            let now = epoch.elapsed().as_millis() as u64;
            if last == 0 {
                if epoch.elapsed() > CONNECT_TIMEOUT {
                    break RunEnd::Failed(format!("no video within {} s of starting", CONNECT_TIMEOUT.as_secs()));
                }
            } else {
                if !recording {
                    recording = true;
                    task.states.set(&task.camera, State::Recording, None);
                    tracing::info!(camera = %task.camera, "camera recording");
                }
                if now.saturating_sub(last) > stall.as_millis() as u64 {
                    break RunEnd::Failed(format!("no video for {} s", stall.as_secs()));
                }
                if epoch.elapsed() > HEALTHY_RUN {
                    *healthy = true;
                }
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    // Streaming threads have stopped: whatever the segmenter holds is the tail of this run.
    let mut s = session.lock().expect("session lock");
    let tail = s.finish();
    let _ = s.emit(tail);
    end
}

/// The supervisor loop for one camera; returns when `task.stop` is set or a file ends.
pub fn supervise(task: CameraTask) {
    let mut backoff = BACKOFF_MIN;
    // The native receiver runs on a runtime of this camera's own thread, so a camera
    // never waits on another and nothing here touches the node's reactor.
    let native = match &task.source {
        Source::Rtsp(url) if task.receiver == RtspReceiver::Native && super::rtsp::handles(url) => {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => Some(rt),
                Err(e) => {
                    tracing::warn!(camera = %task.camera, error = %e, "cannot start the native RTSP receiver; using GStreamer's");
                    None
                }
            }
        }
        _ => None,
    };
    loop {
        if task.stop.load(Ordering::Relaxed) {
            break;
        }
        task.states.set(&task.camera, State::Connecting, None);
        let mut healthy = false;
        let end = match (&native, &task.source) {
            (Some(rt), Source::Rtsp(url)) => rt.block_on(super::rtsp::run_once(&task, url, &mut healthy)),
            _ => run_once(&task, &mut healthy),
        };
        match end {
            RunEnd::Stopped => break,
            RunEnd::EndOfStream if matches!(task.source, Source::File(_)) => {
                tracing::info!(camera = %task.camera, "file source ended");
                task.states.set(&task.camera, State::Ended, None);
                return;
            }
            RunEnd::EndOfStream => {
                tracing::warn!(camera = %task.camera, "camera ended its stream; reconnecting");
                task.states.set(&task.camera, State::Down, Some("stream ended".into()));
            }
            RunEnd::Failed(e) => {
                // GStreamer's messages may quote the URL, credentials and all.
                let e = super::redact_text(&e, &task.source_text);
                let hint = match &task.source {
                    Source::Rtsp(_) => "check the camera's address, port and path, its credentials, and that it serves RTSP with H.264 or H.265 video",
                    Source::File(_) => "check that the file is a readable video with H.264 or H.265",
                    Source::Test { .. } => "the test source failed (GStreamer plugins missing?)",
                };
                tracing::warn!(camera = %task.camera, error = %e, hint, retry_in_ms = backoff.as_millis() as u64, "camera down");
                task.states.set(&task.camera, State::Down, Some(e));
            }
        }
        if healthy {
            backoff = BACKOFF_MIN;
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if task.stop.load(Ordering::Relaxed) {
                task.states.remove(&task.camera);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    task.states.remove(&task.camera);
}

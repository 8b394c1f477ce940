//! The native RTSP receiver: a camera's stream taken over one TCP connection with
//! [retina](https://docs.rs/retina) (RTSP, RTP interleaved over TCP, basic and digest
//! authentication, H.264 and H.265 depacketisation), with no GStreamer element between
//! the socket and the segmenter.
//!
//! Why it exists: receiving through GStreamer's `rtspsrc` costs several streaming threads
//! per camera, an RTP jitter buffer (which over TCP has no reordering to do) and a copy or
//! two per packet; that receiving, not the sealing, was most of a recorder's CPU
//! (docs/benchmarks.md, P2). Here each packet is read, depacketised and appended to the
//! access unit on the camera's own thread, and a whole access unit reaches the segmenter
//! in Annex B form with its parameter sets in front of every keyframe, as GStreamer's
//! `h264parse config-interval=-1` gave it. `rtsps://` sources (TLS) still go through
//! GStreamer, and `rtsp_receiver = "gstreamer"` in custos.toml sends every camera there.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use retina::client::{
    Credentials, InitialSequenceNumberPolicy, PlayOptions, Session as RtspSession, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat};
use tokio_stream::StreamExt;

use super::pipeline::{CameraTask, RunEnd, Session, CONNECT_TIMEOUT, HEALTHY_RUN, STALL_TIMEOUT_MIN};
use super::segmenter::AccessUnit;
use super::State;
use crate::meta::Codec;

/// A picture timestamped further back than this from the newest one is not B-frame
/// reordering but a stamping fault or a reset; further ahead than [`MAX_FORWARD_NS`], a
/// clock that leapt.
const MAX_BACKWARD_NS: u64 = 500_000_000;
const MAX_FORWARD_NS: u64 = 10_000_000_000;
/// The picture interval assumed until two pictures have shown the real one (25 fps).
const DEFAULT_INTERVAL_NS: u64 = 40_000_000;

/// What to do with the pictures [`Timeline::stamp`] has seen, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Close the segment; the next keyframe starts a new timeline.
    NewTimeline,
    /// Record the picture held back at the last call, at this time.
    Held(u64),
    /// Record this call's picture at this time.
    This(u64),
}

/// Keeps a camera's picture times usable through two faults, told apart by the picture
/// after. A picture stamped more than 0.5 s before the newest is held back (`stamp`
/// returns nothing for it). If the next picture carries on from the old times, the held
/// one was a single mis-stamped picture: it is recorded between its neighbours, in
/// order, since the pictures after it may predict from it. If the next one carries on
/// from the held one's time, the camera's clock reset (an RTSP server serving many
/// clients from one encoder restarts its timestamps with a fresh keyframe when a client
/// joins): the segment closes and the held picture starts the new timeline. A leap of
/// more than 10 s forward is a reset too. (A picture still held when the run ends, within
/// one picture of such a fault, is not recorded.)
#[derive(Debug, Default)]
struct Timeline {
    /// The newest time handed out.
    newest: Option<u64>,
    /// Time between the last two pictures in order.
    interval: Option<u64>,
    /// The camera's time of the picture held back.
    held: Option<u64>,
}

impl Timeline {
    fn stamp(&mut self, pts: u64) -> Vec<Act> {
        let Some(mut newest) = self.newest else {
            self.newest = Some(pts);
            return vec![Act::This(pts)];
        };
        let mut acts = Vec::with_capacity(2);
        if let Some(held) = self.held.take() {
            if pts + MAX_BACKWARD_NS < newest {
                let interval = pts.checked_sub(held).filter(|d| (1_000_000..=1_000_000_000).contains(d));
                *self = Timeline { newest: Some(held.max(pts)), interval, held: None };
                return vec![Act::NewTimeline, Act::Held(held), Act::This(pts)];
            }
            newest += self.interval.unwrap_or(DEFAULT_INTERVAL_NS) / 2;
            self.newest = Some(newest);
            acts.push(Act::Held(newest));
        }
        if pts + MAX_BACKWARD_NS < newest {
            self.held = Some(pts);
            return acts;
        }
        if pts > newest + MAX_FORWARD_NS {
            *self = Timeline { newest: Some(pts), ..Timeline::default() };
            acts.extend([Act::NewTimeline, Act::This(pts)]);
            return acts;
        }
        if pts > newest {
            self.interval = Some((pts - newest).clamp(1_000_000, 1_000_000_000));
            self.newest = Some(pts);
        }
        acts.push(Act::This(pts));
        acts
    }
}

/// Whether an H.265 access unit (Annex B) holds an IRAP picture (BLA, IDR or CRA, NAL
/// types 16–23). retina flags only IDR pictures as random access points, but encoders
/// such as x265 (open GOP, its default) put CRA pictures at every keyframe after the
/// first, and a decoder starts at either, as GStreamer's parser and FFmpeg do.
fn h265_irap(data: &[u8]) -> bool {
    super::segmenter::nal_units(data).into_iter().any(|(s, _)| (16..=23).contains(&((data[s] >> 1) & 0x3F)))
}

/// An access unit with the stream's parameter sets (VPS, SPS, PPS) in front, in Annex B,
/// so a segment that starts with it decodes on its own. retina adds them only before the
/// pictures it flags.
fn with_parameter_sets(params: retina::codec::ParametersRef<'_>, data: Vec<u8>) -> Vec<u8> {
    use retina::codec::{ParametersRef, VideoParametersCodec};
    let ParametersRef::Video(v) = params else { return data };
    let sets: Vec<&[u8]> = match v.codec_params() {
        VideoParametersCodec::H265 { vps, sps, pps } => vec![&vps[..], &sps[..], &pps[..]],
        VideoParametersCodec::H264 { sps, pps } => vec![&sps[..], &pps[..]],
        _ => return data,
    };
    let mut out = Vec::with_capacity(data.len() + sets.iter().map(|s| s.len() + 4).sum::<usize>());
    for set in sets {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(set);
    }
    out.extend_from_slice(&data);
    out
}

/// How often a run looks at the stop flag and the silence timer.
const TICK: Duration = Duration::from_millis(200);
/// Added to every timestamp so that a picture presented before the first one received (a
/// stream with B-frames) still has a positive time; the run's anchor takes it out again.
const PTS_BIAS_NS: i128 = 60_000_000_000;

/// Whether the native receiver can take this URL (plain RTSP; TLS goes to GStreamer).
pub(super) fn handles(url: &str) -> bool {
    url.starts_with("rtsp://")
}

/// The URL retina connects to, and the credentials it answers a challenge with (retina
/// wants them apart; see [`super::split_userinfo`]).
fn parse_url(raw: &str) -> Result<(url::Url, Option<Credentials>), String> {
    let (location, creds) = super::split_userinfo(raw);
    let mut url = url::Url::parse(&location).map_err(|e| format!("the camera address is not a valid URL ({e})"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the camera address names no host".into());
    }
    url.set_fragment(None);
    Ok((url, creds.map(|(username, password)| Credentials { username, password })))
}

/// The first H.264 or H.265 video stream a camera offers, or what it offers instead.
fn pick_video(streams: &[retina::client::Stream]) -> Result<(usize, Codec), String> {
    for (i, s) in streams.iter().enumerate() {
        if s.media() != "video" {
            continue;
        }
        match s.encoding_name() {
            "h264" => return Ok((i, Codec::H264)),
            "h265" => return Ok((i, Codec::H265)),
            _ => {}
        }
    }
    let offered: Vec<String> = streams.iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
    Err(format!(
        "the camera offers no H.264 or H.265 video (it offers {}); set its encoder to H.264 or H.265",
        if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") }
    ))
}

/// A retina error as one line for the log and `custos status`: its first line, without
/// the dump of the bytes it could not parse (a garbage "camera" sends kilobytes of them)
/// or the connection context that follows.
fn brief(e: &retina::Error) -> String {
    const MAX: usize = 240;
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("").trim();
    let line = line.split("; buffered").next().unwrap_or(line).trim_end_matches([':', ';', ' ']);
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// Connects, describes, sets up the video stream over TCP and starts playing.
async fn connect(url: &str) -> Result<(retina::client::Demuxed, usize, Codec), String> {
    let (url, creds) = parse_url(url)?;
    let options =
        SessionOptions::default().creds(creds).user_agent(format!("custos-node/{}", env!("CARGO_PKG_VERSION")));
    let mut session = RtspSession::describe(url, options).await.map_err(|e| brief(&e))?;
    let (stream, codec) = pick_video(session.streams())?;
    let setup = SetupOptions::default()
        .transport(Transport::Tcp(TcpTransportOptions::default()))
        .frame_format(FrameFormat::SIMPLE);
    session.setup(stream, setup).await.map_err(|e| brief(&e))?;
    // The sequence number in the PLAY response's RTP-Info is a promise some servers do not
    // keep (a camera that serves many clients from one encoder has packets in flight
    // from before the PLAY): the stream's own first packet sets it.
    let play = PlayOptions::default().initial_seq(InitialSequenceNumberPolicy::Ignore);
    let playing = session.play(play).await.map_err(|e| brief(&e))?;
    let demuxed = playing.demuxed().map_err(|e| brief(&e))?;
    Ok((demuxed, stream, codec))
}

/// Opens a session of its own to `url` and waits for its first picture: whether the
/// camera serves one more client beside those it has (a standby needs a second session).
pub async fn probe_session(url: &str, within: Duration) -> Result<(), String> {
    let first_picture = async {
        let (mut stream, video, _) = connect(url).await?;
        loop {
            match stream.next().await {
                None => return Err("the camera ended the stream before its first picture".to_string()),
                Some(Err(e)) => return Err(brief(&e)),
                Some(Ok(CodecItem::VideoFrame(f))) if f.stream_id() == video => return Ok(()),
                Some(Ok(_)) => {}
            }
        }
    };
    match tokio::time::timeout(within, first_picture).await {
        Ok(r) => r,
        Err(_) => Err(format!("no picture within {} s", within.as_secs())),
    }
}

/// A picture's presentation time in nanoseconds on the run's timeline.
fn pts_ns(ts: retina::Timestamp) -> u64 {
    let ns = i128::from(ts.elapsed()) * 1_000_000_000 / i128::from(ts.clock_rate().get()) + PTS_BIAS_NS;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

/// One run of the native receiver: from connecting to the stream's end, a failure, a
/// silence or the stop flag. Whatever the segmenter holds at the end is sent on.
pub(super) async fn run_once(task: &CameraTask, url: &str, healthy: &mut bool) -> RunEnd {
    let mut session = Session::new(task);
    let end = receive(task, url, &mut session, healthy).await;
    let tail = session.finish();
    session.send(tail).await;
    end
}

async fn receive(task: &CameraTask, url: &str, session: &mut Session, healthy: &mut bool) -> RunEnd {
    let epoch = Instant::now();
    let stopped = || task.stop.load(Ordering::Relaxed);
    // Connecting: bounded by the connect timeout, and abandoned at once on stop.
    let connecting = connect(url);
    tokio::pin!(connecting);
    let mut tick = tokio::time::interval(TICK);
    let (mut stream, video, codec) = loop {
        tokio::select! {
            r = &mut connecting => match r {
                Ok(c) => break c,
                Err(e) => return RunEnd::Failed(e),
            },
            _ = tick.tick() => {
                if stopped() {
                    return RunEnd::Stopped;
                }
                if epoch.elapsed() > CONNECT_TIMEOUT {
                    return RunEnd::Failed(format!("no answer to RTSP within {} s of connecting", CONNECT_TIMEOUT.as_secs()));
                }
            }
        }
    };
    let stall = STALL_TIMEOUT_MIN.max(Duration::from_millis(task.segment_target_ms * 3));
    let mut last_frame: Option<Instant> = None;
    let mut timeline = Timeline::default();
    let mut held: Option<AccessUnit> = None;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                None => return RunEnd::EndOfStream,
                Some(Err(e)) => return RunEnd::Failed(brief(&e)),
                Some(Ok(CodecItem::VideoFrame(frame))) if frame.stream_id() == video => {
                    if frame.loss() > 0 {
                        tracing::debug!(camera = %task.camera, lost = frame.loss(), "RTP packets lost before this picture");
                    }
                    if last_frame.is_none() {
                        task.states.set(&task.camera, State::Recording, None);
                        tracing::info!(camera = %task.camera, codec = ?codec, "camera recording");
                    }
                    last_frame = Some(Instant::now());
                    let pts = pts_ns(frame.timestamp());
                    let flagged = frame.is_random_access_point();
                    let mut data = frame.into_data();
                    let mut keyframe = flagged;
                    if !flagged && codec == Codec::H265 && h265_irap(&data) {
                        keyframe = true;
                        if let Some(params) = stream.streams().get(video).and_then(|s| s.parameters()) {
                            data = with_parameter_sets(params, data);
                        }
                    }
                    let au = AccessUnit { pts_ns: pts, dts_ns: None, keyframe, data };
                    let mut this = Some(au);
                    for act in timeline.stamp(this.as_ref().map_or(0, |a| a.pts_ns)) {
                        let (unit, at) = match act {
                            Act::NewTimeline => {
                                tracing::info!(camera = %task.camera, "the camera's clock reset or leapt; segment closed, a new timeline starts");
                                let tail = session.new_timeline();
                                if !session.send(tail).await {
                                    return RunEnd::Stopped;
                                }
                                continue;
                            }
                            Act::Held(at) => (held.take(), at),
                            Act::This(at) => (this.take(), at),
                        };
                        let Some(mut unit) = unit else { continue };
                        unit.pts_ns = at;
                        let seg = session.push(codec, unit);
                        if !session.send(seg).await {
                            return RunEnd::Stopped;
                        }
                    }
                    if this.is_some() {
                        held = this;
                    }
                }
                Some(Ok(_)) => {} // Other tracks, RTCP.
            },
            _ = tick.tick() => {
                if stopped() {
                    return RunEnd::Stopped;
                }
                match last_frame {
                    None if epoch.elapsed() > CONNECT_TIMEOUT => {
                        return RunEnd::Failed(format!("no video within {} s of starting", CONNECT_TIMEOUT.as_secs()));
                    }
                    Some(at) if at.elapsed() > stall => {
                        return RunEnd::Failed(format!("no video for {} s", stall.as_secs()));
                    }
                    _ => {}
                }
                if last_frame.is_some() && epoch.elapsed() > HEALTHY_RUN {
                    *healthy = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn credentials_come_out_of_the_url() {
        let (url, creds) = parse_url("rtsp://admin:p%40ss@10.0.0.5:554/s1?ch=1").unwrap();
        assert_eq!(url.as_str(), "rtsp://10.0.0.5:554/s1?ch=1");
        let c = creds.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("admin", "p@ss"));
        // Typed unencoded, the password runs to the last '@' before the host.
        let (url, creds) = parse_url("rtsp://user:p@ss/w#rd@cam.example/live").unwrap();
        assert_eq!(url.as_str(), "rtsp://cam.example/live");
        assert_eq!(creds.unwrap().password, "p@ss/w#rd");
        let (_, creds) = parse_url("rtsp://cam/live").unwrap();
        assert!(creds.is_none());
        assert!(parse_url("rtsp:///nohost").is_err());
        assert!(!handles("rtsps://cam/live") && handles("rtsp://cam/live"));
    }

    #[test]
    fn one_stale_picture_is_restamped_in_order_and_a_real_reset_starts_a_new_timeline() {
        use Act::*;
        const MS: u64 = 1_000_000;
        let mut t = Timeline::default();
        for ms in [1_000, 1_040, 1_080] {
            assert_eq!(t.stamp(ms * MS), vec![This(ms * MS)]);
        }
        // B-frame reordering, a little back: kept as stamped.
        assert_eq!(t.stamp(1_000 * MS), vec![This(1_000 * MS)]);
        // One picture stamped a second back is held; the next carries on from the old
        // times, so the held one goes between its neighbours.
        assert_eq!(t.stamp(100 * MS), vec![]);
        assert_eq!(t.stamp(1_120 * MS), vec![Held(1_100 * MS), This(1_120 * MS)]);
        assert_eq!(t.stamp(1_160 * MS), vec![This(1_160 * MS)]);
        // A server that restarts its timestamps with a keyframe: the held keyframe starts
        // the new timeline, and the pictures after it follow on.
        assert_eq!(t.stamp(60 * MS), vec![]);
        assert_eq!(t.stamp(100 * MS), vec![NewTimeline, Held(60 * MS), This(100 * MS)]);
        assert_eq!(t.stamp(140 * MS), vec![This(140 * MS)]);
        // A leap forward.
        assert_eq!(t.stamp(60_000 * MS), vec![NewTimeline, This(60_000 * MS)]);
        assert_eq!(t.stamp(60_040 * MS), vec![This(60_040 * MS)]);
    }

    /// A camera task for `Session`s of 2-second segments.
    fn task(
        tx: tokio::sync::mpsc::Sender<crate::ingest::RawSegment>,
        clock: crate::clock::SharedClock,
        standby: Option<std::sync::Arc<crate::ingest::standby::StandbyCtl>>,
    ) -> CameraTask {
        CameraTask {
            receiver: super::super::RtspReceiver::Native,
            camera: "cam".into(),
            source: super::super::Source::Rtsp("rtsp://cam/x".into()),
            source_text: "rtsp://cam/x".into(),
            segment_target_ms: 2_000,
            tx,
            states: Default::default(),
            stop: Default::default(),
            clock,
            standby,
            floor_ns: Default::default(),
        }
    }

    /// When the camera's clock resets, the open segment closes and the next timeline
    /// starts no earlier than its end, even if the wall clock has not moved.
    #[test]
    fn a_new_timeline_closes_the_segment_and_the_next_one_does_not_overlap() {
        use crate::clock::ManualClock;
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let task = task(tx, ManualClock::new(1_000_000), None);
        let mut s = Session::new(&task);
        let mut out = Vec::new();
        for ms in (0..900).step_by(40) {
            out.extend(s.push(Codec::H264, frame(60_000 + ms, ms == 0)));
        }
        out.extend(s.new_timeline());
        // The clock has not moved: the new timeline still starts where the last segment ended.
        for ms in (0..2_400).step_by(40) {
            out.extend(s.push(Codec::H264, frame(60_000 + ms, ms % 2_000 == 0)));
        }
        out.extend(s.finish());
        assert!(out.len() >= 2, "{} segments", out.len());
        for w in out.windows(2) {
            assert!(
                w[0].end_ms <= w[1].start_ms,
                "overlap: {}..{} then {}..{}",
                w[0].start_ms,
                w[0].end_ms,
                w[1].start_ms,
                w[1].end_ms
            );
        }
        assert_eq!(out[0].start_ms, 1_000_000);
        assert!(rx.try_recv().is_err(), "nothing was sent behind the caller's back");
    }

    /// A clock stepped forward under a running camera: from the segment being closed at the
    /// step on, footage is stamped by the new time (a gap in time, not in footage). A clock
    /// stepped back never makes segments overlap, and late pictures move nothing.
    #[test]
    fn stamps_follow_a_clock_stepped_forward_and_never_overlap_when_it_steps_back() {
        use crate::clock::{Clock, ManualClock};
        const START: i64 = 1_000_000_000;
        let (tx, _rx) = tokio::sync::mpsc::channel(64);
        let clock = ManualClock::new(START);
        let task = task(tx, clock.clone(), None);
        let mut s = Session::new(&task);
        let mut out = Vec::new();
        // 25 pictures a second, a keyframe every second; `late` pictures arrive 12 s late.
        let run = |s: &mut Session, from_ms: u64, to_ms: u64, late: &[u64]| {
            let mut out = Vec::new();
            for ms in (from_ms..to_ms).step_by(40) {
                let delay = if late.contains(&ms) { 12_000 } else { 0 };
                clock.advance_ms(40 + delay);
                out.extend(s.push(Codec::H264, frame(ms, ms % 1_000 == 0)));
                clock.advance_ms(-delay);
            }
            out
        };
        out.extend(run(&mut s, 0, 6_000, &[3_000, 3_040, 3_080]));
        assert!(out.windows(2).all(|w| w[0].end_ms == w[1].start_ms), "late pictures moved nothing: {out:?}");
        // The clock steps 30 days forward.
        let n_before = out.len();
        clock.step_ms(30 * 86_400_000);
        out.extend(run(&mut s, 6_000, 12_000, &[]));
        let stepped = out.iter().position(|g| g.start_ms > START + 86_400_000).expect("a segment on the new time");
        let now = clock.now_ms();
        assert!((now - out.last().unwrap().end_ms).abs() < 3_000, "stamped by the clock again");
        assert!(out[stepped - 1].end_ms < out[stepped].start_ms, "a gap in time, no overlap");
        assert_eq!(stepped, n_before, "the segment being closed at the step is stamped by the new time");
        // The clock steps back a day: segments go on from the last end, never overlapping.
        clock.step_ms(-86_400_000);
        let n = out.len();
        out.extend(run(&mut s, 12_000, 18_000, &[]));
        assert!(out.len() > n + 1);
        assert!(out[n - 1..].windows(2).all(|w| w[0].end_ms == w[1].start_ms), "contiguous after a step back");
        // The clock is stepped forward again by as much: that only undoes the step back,
        // so nothing moves.
        clock.step_ms(86_400_000);
        let n = out.len();
        out.extend(run(&mut s, 18_000, 24_000, &[]));
        assert!(out[n - 1..].windows(2).all(|w| w[0].end_ms == w[1].start_ms), "undoing a step back moves nothing");
    }

    fn frame(ms: u64, key: bool) -> AccessUnit {
        AccessUnit {
            pts_ns: ms * 1_000_000,
            dts_ns: None,
            keyframe: key,
            data: vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88],
        }
    }

    /// A run never stamps footage before where the camera's footage ends a little ahead of
    /// its clock: not the first (the catalog's end, from a node whose clock runs 5 s
    /// ahead), and not the next one after a reconnect. Footage ending far ahead (a clock
    /// since stepped back) is no floor.
    #[test]
    fn a_new_run_starts_after_the_cameras_last_segment_even_when_the_clock_is_behind_it() {
        use crate::clock::{Clock, ManualClock};
        let (tx, _rx) = tokio::sync::mpsc::channel(64);
        let clock = ManualClock::new(1_000_000);
        let t = task(tx, clock.clone(), None);
        // The catalog's footage ends 5 s ahead of this clock.
        t.floor_ns.store(1_005_000 * 1_000_000, std::sync::atomic::Ordering::Relaxed);
        let mut runs = Vec::new();
        for _ in 0..2 {
            let mut s = Session::new(&t);
            let mut out = Vec::new();
            for ms in (0..5_000).step_by(40) {
                clock.advance_ms(40);
                out.extend(s.push(Codec::H264, frame(ms, ms % 1_000 == 0)));
            }
            out.extend(s.finish());
            runs.push(out);
        }
        assert_eq!(runs[0][0].start_ms, 1_005_000, "the first run starts at the catalog's end");
        let end = runs[0].last().unwrap().end_ms;
        assert_eq!(runs[1][0].start_ms, end, "the run after a reconnect starts where the first ended");
        // Footage ending an hour ahead of the clock (stepped back since) is no floor: the
        // next run is stamped by the clock.
        t.floor_ns.store((clock.now_ms() as u64 + 3_600_000) * 1_000_000, std::sync::atomic::Ordering::Relaxed);
        let now = clock.now_ms();
        let mut s = Session::new(&t);
        let mut out = Vec::new();
        for ms in (0..3_000).step_by(40) {
            out.extend(s.push(Codec::H264, frame(ms, ms % 1_000 == 0)));
        }
        out.extend(s.finish());
        assert_eq!(out[0].start_ms, now);
    }

    /// A standby holds pictures and commits nothing; taking over, it commits from the
    /// keyframe at the recorder's seam, stamped no earlier than the seam, in contiguous
    /// segments, and records live pictures after them.
    #[test]
    fn a_standby_commits_from_the_seam_on_takeover_and_never_before_it() {
        use crate::clock::ManualClock;
        use crate::ingest::standby::StandbyCtl;
        for (seam, first_start) in [(1_004_030, 1_004_030), (1_003_970, 1_004_000)] {
            let (tx, _rx) = tokio::sync::mpsc::channel(16);
            let ctl = std::sync::Arc::new(StandbyCtl::standby());
            let task = task(tx, ManualClock::new(1_000_000), Some(ctl.clone()));
            let mut s = Session::new(&task);
            let frame = |ms: u64| AccessUnit {
                pts_ns: ms * 1_000_000,
                dts_ns: None,
                keyframe: ms.is_multiple_of(1_000),
                data: vec![0, 0, 0, 1, if ms.is_multiple_of(1_000) { 0x65 } else { 0x41 }, 0x88],
            };
            let mut out = Vec::new();
            for ms in (0..10_000).step_by(40) {
                out.extend(s.push(Codec::H264, frame(ms)));
                if ms == 5_000 {
                    ctl.set_primary_end(seam);
                }
            }
            assert!(out.is_empty(), "a standby commits nothing");
            let (bytes, oldest, newest) = ctl.held();
            let kept_from = (seam - 1_000) / 1_000 * 1_000; // the keyframe a margin before the seam
            assert!(bytes > 0 && oldest == kept_from && newest == 1_009_960, "{bytes} {oldest} {newest}");
            ctl.take_over(Some(seam));
            for ms in (10_000..13_000).step_by(40) {
                out.extend(s.push(Codec::H264, frame(ms)));
            }
            assert!(out.len() >= 4, "{} segments", out.len());
            assert_eq!(out[0].start_ms, first_start);
            for w in out.windows(2) {
                assert_eq!(w[0].end_ms, w[1].start_ms, "contiguous from the seam on");
            }
        }
    }

    /// Both nodes' clocks are stepped a minute forward while the standby holds pictures: the
    /// held pictures follow the step as the recorder's stamps do, so the standby still
    /// keeps the keyframe before the recorder's seam and takes over from it.
    #[test]
    fn held_pictures_follow_a_clock_step_and_still_meet_the_recorders_seam() {
        use crate::clock::ManualClock;
        use crate::ingest::standby::StandbyCtl;
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let ctl = std::sync::Arc::new(StandbyCtl::standby());
        let clock = ManualClock::new(1_000_000);
        let mut s = Session::new(&task(tx, clock.clone(), Some(ctl.clone())));
        let key = |ms: u64| ms.is_multiple_of(1_000);
        let seam = 1_068_030; // 8.03 s into the stream, a minute on
        let mut out = Vec::new();
        for ms in (0..10_000).step_by(40) {
            if ms == 5_000 {
                clock.step_ms(60_000);
            }
            out.extend(s.push(Codec::H264, frame(ms, key(ms))));
            if ms == 8_520 {
                ctl.set_primary_end(seam);
            }
        }
        assert!(out.is_empty(), "a standby commits nothing");
        let (_, oldest, newest) = ctl.held();
        assert_eq!((oldest, newest), (1_067_000, 1_069_960), "held from the keyframe before the seam, on the new time");
        ctl.take_over(Some(seam));
        for ms in (10_000..13_000).step_by(40) {
            out.extend(s.push(Codec::H264, frame(ms, key(ms))));
        }
        assert!(out.len() >= 2, "{} segments", out.len());
        assert_eq!(out[0].start_ms, seam);
        assert!(out.windows(2).all(|w| w[0].end_ms == w[1].start_ms), "contiguous from the seam on");
    }

    /// The clock is stepped while the standby holds pictures, after the recorder's last
    /// commit: the footage from the takeover on is stamped by the new time, as the
    /// recorder's would have been, not left behind the clock by the step for the rest of
    /// the run.
    #[test]
    fn a_takeover_after_a_clock_step_while_holding_stamps_by_the_new_time() {
        use crate::clock::ManualClock;
        use crate::ingest::standby::StandbyCtl;
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let ctl = std::sync::Arc::new(StandbyCtl::standby());
        let clock = ManualClock::new(1_000_000);
        let mut s = Session::new(&task(tx, clock.clone(), Some(ctl.clone())));
        let key = |ms: u64| ms.is_multiple_of(1_000);
        let seam = 1_006_030; // the recorder committed up to 6.03 s into the stream
        let mut out = Vec::new();
        for ms in (0..14_000).step_by(40) {
            match ms {
                6_520 => ctl.set_primary_end(seam),
                7_520 => clock.step_ms(60_000),
                8_000 => ctl.take_over(Some(seam)),
                _ => {}
            }
            out.extend(s.push(Codec::H264, frame(ms, key(ms))));
        }
        assert!(out.len() >= 3, "{} segments", out.len());
        assert_eq!(out[0].start_ms, seam + 60_000, "the first segment closed after the step is on the new time");
        assert!(out.windows(2).all(|w| w[0].end_ms == w[1].start_ms), "contiguous after the seam");
        let spans: Vec<_> = out.iter().map(|seg| (seg.start_ms, seg.end_ms)).collect();
        assert_eq!(
            out.last().unwrap().end_ms,
            1_072_030,
            "the run goes on by the new time (the stream's 12 s keyframe, plus the step): {spans:?}"
        );
    }

    /// A takeover asked before anything was held (a standby that had just reconnected)
    /// records from the next picture, stamped no earlier than the seam.
    #[test]
    fn a_takeover_with_nothing_held_records_on_from_the_seam() {
        use crate::clock::ManualClock;
        use crate::ingest::standby::StandbyCtl;
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let ctl = std::sync::Arc::new(StandbyCtl::standby());
        let mut s = Session::new(&task(tx, ManualClock::new(1_000_000), Some(ctl.clone())));
        ctl.take_over(Some(1_000_500));
        let mut out = Vec::new();
        for ms in (0..5_000u64).step_by(40) {
            let key = ms.is_multiple_of(1_000);
            let data = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88];
            out.extend(s.push(Codec::H264, AccessUnit { pts_ns: ms * 1_000_000, dts_ns: None, keyframe: key, data }));
        }
        out.extend(s.finish());
        assert!(out.len() >= 2, "{} segments", out.len());
        assert_eq!(out[0].start_ms, 1_000_500);
        assert!(out.windows(2).all(|w| w[0].end_ms == w[1].start_ms));
    }

    #[test]
    fn h265_cra_and_bla_pictures_are_keyframes_and_others_are_not() {
        let au = |t: u8| [&[0u8, 0, 0, 1, 0x40, 1, 0xC0][..], &[0, 0, 0, 1, t << 1, 1, 0xAF, 0x80]].concat();
        for t in [16, 19, 20, 21] {
            assert!(h265_irap(&au(t)), "NAL type {t}");
        }
        for t in [0, 1, 8, 9, 32, 35] {
            assert!(!h265_irap(&au(t)), "NAL type {t}");
        }
    }

    #[test]
    fn timestamps_map_to_nanoseconds_and_never_go_negative() {
        let rate = NonZeroU32::new(90_000).unwrap();
        let at = |t: i64| pts_ns(retina::Timestamp::new(t, rate, 1_000).unwrap());
        assert_eq!(at(1_000), PTS_BIAS_NS as u64);
        assert_eq!(at(1_000 + 90_000) - at(1_000), 1_000_000_000);
        assert_eq!(at(1_000 + 3_600) - at(1_000), 40_000_000);
        assert!(at(1_000 - 3_600) < at(1_000));
        assert_eq!(at(i64::from(i32::MIN)), 0);
    }
}

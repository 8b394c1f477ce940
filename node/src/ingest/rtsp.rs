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

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use retina::client::{
    Credentials, PlayOptions, Session as RtspSession, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat};
use tokio_stream::StreamExt;

use super::pipeline::{CameraTask, RunEnd, Session, CONNECT_TIMEOUT, HEALTHY_RUN, STALL_TIMEOUT_MIN};
use super::segmenter::AccessUnit;
use super::State;
use crate::meta::Codec;

/// How often a run looks at the stop flag and the silence timer.
const TICK: Duration = Duration::from_millis(200);
/// Added to every timestamp so that a picture presented before the first one received (a
/// stream with B-frames) still has a positive time; the run's anchor takes it out again.
const PTS_BIAS_NS: i128 = 60_000_000_000;
/// A timestamp that leaps further than this between two pictures ends the run (the
/// camera restarted its clock); the reconnect starts a new timeline.
const MAX_TIMESTAMP_JUMP_S: u32 = 10;

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
    let play = PlayOptions::default()
        .enforce_timestamps_with_max_jump_secs(NonZeroU32::new(MAX_TIMESTAMP_JUMP_S).expect("non-zero"));
    let playing = session.play(play).await.map_err(|e| brief(&e))?;
    let demuxed = playing.demuxed().map_err(|e| brief(&e))?;
    Ok((demuxed, stream, codec))
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
                    let au = AccessUnit {
                        pts_ns: pts_ns(frame.timestamp()),
                        dts_ns: None,
                        keyframe: frame.is_random_access_point(),
                        data: frame.into_data(),
                    };
                    let seg = session.push(codec, au);
                    if !session.send(seg).await {
                        return RunEnd::Stopped;
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

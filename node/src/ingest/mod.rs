//! Ingest: camera sources, GStreamer pipelines, the keyframe segmenter and the supervisor
//! that keeps one pipeline per assigned camera running.
//!
//! Pipelines run on their own threads and hand closed segments to async code through one
//! bounded channel per camera ([`SEGMENT_QUEUE_PER_CAMERA`]).

pub mod pipeline;

pub use custos_formats::fields::{validate_camera_id, CAMERA_ID_MAX_LEN};
pub use custos_formats::{mpegts, segmenter};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::meta::Codec;

/// Closed segments a camera may have waiting to be sealed before its pipeline blocks.
/// Bounds memory at a few segments per camera.
pub const SEGMENT_QUEUE_PER_CAMERA: usize = 3;

/// Where a camera's video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An RTSP camera or encoder, pulled over TCP.
    Rtsp(String),
    /// A recorded file (MP4, MKV, TS…) with H.264 or H.265 video, replayed in real time.
    File(PathBuf),
    /// GStreamer's test pattern, encoded as H.264: for demos and tests.
    Test { pattern: String },
}

const TEST_PATTERNS: &[&str] =
    &["smpte", "ball", "snow", "checkers-8", "circular", "gamut", "pinwheel", "spokes", "bar", "colors"];

impl Source {
    /// Parses `rtsp://…`, `rtsps://…`, `file:///path` or `test://[pattern]`.
    pub fn parse(s: &str) -> Result<Source, String> {
        if s.starts_with("rtsp://") || s.starts_with("rtsps://") {
            if s.len() <= "rtsps://".len() || s.contains(char::is_whitespace) {
                return Err(format!("{s:?} is not a usable RTSP URL"));
            }
            return Ok(Source::Rtsp(s.to_string()));
        }
        if let Some(p) = s.strip_prefix("file://") {
            if !p.starts_with('/') {
                return Err(format!("{s:?}: file sources need an absolute path, as in file:///srv/clip.mp4"));
            }
            return Ok(Source::File(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("test://") {
            let pattern = if p.is_empty() { "smpte" } else { p };
            if !TEST_PATTERNS.contains(&pattern) {
                return Err(format!("unknown test pattern {pattern:?}; use one of {}", TEST_PATTERNS.join(", ")));
            }
            return Ok(Source::Test { pattern: pattern.to_string() });
        }
        Err(format!("{s:?} is not a supported source; use rtsp://, file:// or test://"))
    }
}

/// A closed, muxed segment on its way to be sealed.
#[derive(Debug)]
pub struct RawSegment {
    pub camera: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub codec: Codec,
    /// True if cut without a keyframe because the camera sent none for too long.
    pub forced_cut: bool,
    /// Plaintext MPEG-TS.
    pub data: Vec<u8>,
}

/// Recording state of a camera on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Recording,
    Down,
    /// A file source reached its end.
    Ended,
}

impl State {
    /// Name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Recording => "recording",
            State::Down => "down",
            State::Ended => "ended",
        }
    }
}

/// Camera id → (state, last error).
type StateMap = BTreeMap<String, (State, Option<String>)>;

/// Gives the channel a newly started camera's segments go to.
pub type SegmentSink = Box<dyn Fn(&str) -> mpsc::Sender<RawSegment> + Send>;

/// Live state of every camera this node records, shared with the API.
#[derive(Debug, Clone, Default)]
pub struct CameraStates(Arc<Mutex<StateMap>>);

impl CameraStates {
    fn set(&self, camera: &str, state: State, error: Option<String>) {
        let mut m = self.0.lock().expect("camera states lock");
        let prev_err = m.get(camera).and_then(|(_, e)| e.clone());
        m.insert(camera.to_string(), (state, error.or(if state == State::Recording { None } else { prev_err })));
    }
    fn remove(&self, camera: &str) {
        self.0.lock().expect("camera states lock").remove(camera);
    }
    /// State and last error of a camera, if this node runs it.
    pub fn get(&self, camera: &str) -> Option<(State, Option<String>)> {
        self.0.lock().expect("camera states lock").get(camera).cloned()
    }
}

struct Running {
    source: String,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts and stops camera pipelines to match the set of cameras assigned to this node.
pub struct Supervisor {
    segment_target_ms: u64,
    states: CameraStates,
    running: BTreeMap<String, Running>,
    /// Where each camera's segments go; the receiver half is handed to the recorder.
    on_new_camera: SegmentSink,
    /// Wall-clock time that stamps each pipeline run's first frame.
    clock: crate::clock::SharedClock,
}

impl Supervisor {
    /// Initialises GStreamer. `on_new_camera` returns the channel a new camera's segments
    /// go to; `clock` gives segments their wall-clock times.
    pub fn new(
        segment_target_ms: u64,
        states: CameraStates,
        on_new_camera: SegmentSink,
        clock: crate::clock::SharedClock,
    ) -> Result<Supervisor, String> {
        gstreamer::init().map_err(|e| format!("cannot initialise GStreamer: {e}; run ops/setup.sh"))?;
        Ok(Supervisor { segment_target_ms, states, running: BTreeMap::new(), on_new_camera, clock })
    }

    /// Makes the running set equal `wanted` (camera id → source URL). Cameras whose source
    /// changed are restarted.
    pub fn reconcile(&mut self, wanted: &BTreeMap<String, String>) {
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(id, r)| wanted.get(*id) != Some(&r.source) || r.thread.is_finished())
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(r) = self.running.remove(&id) {
                if r.thread.is_finished() && wanted.get(&id) == Some(&r.source) {
                    // A file source that ended: keep it ended, do not replay it.
                    self.running.insert(id, r);
                    continue;
                }
                r.stop.store(true, Ordering::Relaxed);
                tracing::info!(camera = %id, "stopping camera");
                let _ = r.thread.join();
            }
        }
        for (id, source) in wanted {
            if self.running.contains_key(id) {
                continue;
            }
            let parsed = match Source::parse(source) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(camera = %id, error = %e, "cannot record camera");
                    self.states.set(id, State::Down, Some(e));
                    continue;
                }
            };
            let stop = Arc::new(AtomicBool::new(false));
            let task = pipeline::CameraTask {
                camera: id.clone(),
                source: parsed,
                segment_target_ms: self.segment_target_ms,
                tx: (self.on_new_camera)(id),
                states: self.states.clone(),
                stop: stop.clone(),
                clock: self.clock.clone(),
            };
            tracing::info!(camera = %id, source = %redact(source), "starting camera");
            let thread = std::thread::Builder::new()
                .name(format!("cam-{id}"))
                .spawn(move || pipeline::supervise(task))
                .expect("spawning a camera thread");
            self.running.insert(id.clone(), Running { source: source.clone(), stop, thread });
        }
    }

    /// Stops every pipeline and waits for their last segments to be handed over.
    pub fn stop_all(&mut self) {
        for r in self.running.values() {
            r.stop.store(true, Ordering::Relaxed);
        }
        for (_, r) in std::mem::take(&mut self.running) {
            let _ = r.thread.join();
        }
    }
}

/// Hides credentials in a source URL for logs (`rtsp://user:pass@host` → `rtsp://***@host`).
pub fn redact(source: &str) -> String {
    match (source.find("://"), source.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &source[..s + 3], &source[a..]),
        _ => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_or_say_why_not() {
        assert_eq!(Source::parse("test://").unwrap(), Source::Test { pattern: "smpte".into() });
        assert_eq!(Source::parse("test://ball").unwrap(), Source::Test { pattern: "ball".into() });
        assert!(Source::parse("test://nope").unwrap_err().contains("unknown test pattern"));
        assert!(matches!(Source::parse("rtsp://cam1/stream").unwrap(), Source::Rtsp(_)));
        assert!(Source::parse("file://rel/x.mp4").unwrap_err().contains("absolute"));
        assert!(Source::parse("http://x").unwrap_err().contains("rtsp://"));
    }

    #[test]
    fn camera_ids() {
        assert!(validate_camera_id("ward-3.corridor_2").is_ok());
        assert!(validate_camera_id("").is_err());
        assert!(validate_camera_id("a/b").unwrap_err().contains("'/'"));
        assert!(validate_camera_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("rtsp://admin:pw@10.0.0.5/s1"), "rtsp://***@10.0.0.5/s1");
        assert_eq!(redact("test://ball"), "test://ball");
    }
}

//! Ingest: camera sources, GStreamer pipelines, the keyframe segmenter and the supervisor
//! that keeps one pipeline per assigned camera running.
//!
//! Pipelines run on their own threads and hand closed segments to async code through one
//! bounded channel per camera ([`SEGMENT_QUEUE_PER_CAMERA`]).

pub mod pipeline;
pub mod rtsp;
pub mod standby;

pub use custos_formats::fields::{validate_camera_id, CAMERA_ID_MAX_LEN};
pub use custos_formats::{mpegts, segmenter};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::meta::Codec;

/// Closed segments a camera may have waiting to be sealed before its pipeline blocks.
/// Bounds memory at a few segments per camera.
pub const SEGMENT_QUEUE_PER_CAMERA: usize = 3;

/// Which receiver takes `rtsp://` cameras (`rtsp_receiver` in custos.toml).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspReceiver {
    /// RTSP over TCP received in Rust on the camera's thread ([`rtsp`]): the default.
    #[default]
    Native,
    /// GStreamer's `rtspsrc` with its depayloader and parser, as before.
    Gstreamer,
}

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
                return Err(format!("{:?} is not a usable RTSP URL", redact(s)));
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
        Err(format!("{:?} is not a supported source; use rtsp://, file:// or test://", redact(s)))
    }

    /// True for what is not a camera: recorded files and test patterns. Such a source
    /// would let whoever adds it put footage that no camera saw into the archive, sealed
    /// like the real thing, so nodes accept it only for trials ([`check_allowed`]).
    pub fn is_test(&self) -> bool {
        !matches!(self, Source::Rtsp(_))
    }
}

/// What an operator does to record test sources on a trial node.
pub const TEST_SOURCES_HINT: &str =
    "set allow_test_sources = true in custos.toml for trials (custos-node init --allow-test-sources writes it)";

/// Refuses `file://` and `test://` sources unless this node allows test sources.
pub fn check_allowed(source: &Source, allow_test_sources: bool) -> Result<(), String> {
    if allow_test_sources || !source.is_test() {
        return Ok(());
    }
    let kind = if matches!(source, Source::File(_)) { "file://" } else { "test://" };
    Err(format!(
        "{kind} sources are recordings and test patterns, not cameras, and this node does not accept them: \
         give the camera's rtsp:// address, or {TEST_SOURCES_HINT}"
    ))
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

/// Recording state of a camera, as the status RPC shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Recording,
    Down,
    /// A file source reached its end.
    Ended,
    /// Recorded by another node, which has committed no segment of it lately. Only a node
    /// that does not record the camera says so, from the catalog; this node's own
    /// cameras are never in this state.
    NotRecording,
}

impl State {
    /// The name the status RPC, `custos status` and the console show: the only place a
    /// state becomes a string.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Recording => "recording",
            State::Down => "down",
            State::Ended => "ended",
            State::NotRecording => "not-recording",
        }
    }
}

/// Camera id → (state, last error).
type StateMap = BTreeMap<String, (State, Option<String>)>;

/// Gives the channel a newly started camera's segments go to.
pub type SegmentSink = Box<dyn Fn(&str) -> mpsc::Sender<RawSegment> + Send>;

/// Live state of every camera this node records, shared with the API, and the cameras it
/// stands by for.
#[derive(Debug, Clone, Default)]
pub struct CameraStates {
    map: Arc<Mutex<StateMap>>,
    /// The cameras this node stands by for.
    pub standing: Standing,
}

impl CameraStates {
    fn set(&self, camera: &str, state: State, error: Option<String>) {
        let mut m = self.map.lock().expect("camera states lock");
        let prev_err = m.get(camera).and_then(|(_, e)| e.clone());
        m.insert(camera.to_string(), (state, error.or(if state == State::Recording { None } else { prev_err })));
    }
    fn remove(&self, camera: &str) {
        self.map.lock().expect("camera states lock").remove(camera);
    }
    /// State and last error of a camera, if this node runs it.
    pub fn get(&self, camera: &str) -> Option<(State, Option<String>)> {
        self.map.lock().expect("camera states lock").get(camera).cloned()
    }
}

struct Running {
    source: String,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    /// Set while started as a standby (it stays set after the takeover).
    standby: Option<Arc<standby::StandbyCtl>>,
}

/// What this node should do with one camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub source: String,
    /// Stand by for the camera's recorder instead of recording it.
    pub standby: bool,
    /// Recording a camera this node stood by for: where the footage committed so far
    /// ends (the takeover's seam), for a takeover the standby watcher has not asked for.
    pub resume_ms: Option<i64>,
    /// Recording: where the camera's catalogued footage ends. A new run stamps nothing
    /// before it (see [`pipeline::CameraTask::floor_ns`]).
    pub last_end_ms: Option<i64>,
}

/// The cameras this node stands by for, shared with the node's standby watcher.
pub type Standing = Arc<Mutex<BTreeMap<String, Arc<standby::StandbyCtl>>>>;

/// Starts and stops camera pipelines to match the set of cameras assigned to this node.
pub struct Supervisor {
    segment_target_ms: u64,
    states: CameraStates,
    running: BTreeMap<String, Running>,
    /// Where each camera's segments go; the receiver half is handed to the recorder.
    on_new_camera: SegmentSink,
    /// Wall-clock time that stamps each pipeline run's first frame.
    clock: crate::clock::SharedClock,
    /// Whether `file://` and `test://` sources may be recorded (trials only).
    allow_test_sources: bool,
    /// Which receiver takes `rtsp://` cameras.
    receiver: RtspReceiver,
    /// Cameras refused for their source (id → source), so each refusal is logged once.
    refused: BTreeMap<String, String>,
    /// Cameras started as standbys.
    standing: Standing,
}

impl Supervisor {
    /// Initialises GStreamer. `on_new_camera` returns the channel a new camera's segments
    /// go to; `clock` gives segments their wall-clock times. Unless `allow_test_sources`,
    /// cameras whose source is a file or a test pattern are refused, not recorded.
    pub fn new(
        segment_target_ms: u64,
        states: CameraStates,
        on_new_camera: SegmentSink,
        clock: crate::clock::SharedClock,
        allow_test_sources: bool,
        receiver: RtspReceiver,
    ) -> Result<Supervisor, String> {
        gstreamer::init().map_err(|e| format!("cannot initialise GStreamer: {e}; run ops/setup.sh"))?;
        Ok(Supervisor {
            segment_target_ms,
            running: BTreeMap::new(),
            on_new_camera,
            clock,
            allow_test_sources,
            receiver,
            refused: BTreeMap::new(),
            standing: states.standing.clone(),
            states,
        })
    }

    /// Makes the running set equal `wanted` (camera id → what to do). Cameras whose
    /// source changed, or that this node recorded and now only stands by for, are
    /// restarted; a standby made recorder takes over without reconnecting.
    pub fn reconcile(&mut self, wanted: &BTreeMap<String, Assignment>) {
        let states = &self.states;
        self.refused.retain(|id, source| {
            let keep = wanted.get(id).map(|a| &a.source) == Some(source);
            if !keep {
                states.remove(id);
            }
            keep
        });
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(id, r)| match wanted.get(*id) {
                None => true,
                Some(a) => {
                    // Recording (from the start, or since a takeover) and now only to stand by.
                    let recording = !r.standby.as_ref().is_some_and(|c| c.is_standby());
                    a.source != r.source || r.thread.is_finished() || (a.standby && recording)
                }
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(r) = self.running.remove(&id) {
                if r.thread.is_finished() && wanted.get(&id).map(|a| &a.source) == Some(&r.source) {
                    // A file source that ended: keep it ended, do not replay it.
                    self.running.insert(id, r);
                    continue;
                }
                r.stop.store(true, Ordering::Relaxed);
                tracing::info!(camera = %id, "stopping camera");
                let _ = r.thread.join();
                self.standing.lock().expect("standing").remove(&id);
            }
        }
        for (id, a) in wanted {
            if let Some(r) = self.running.get(id) {
                if let (false, Some(ctl)) = (a.standby, &r.standby) {
                    if ctl.is_standby() {
                        tracing::warn!(camera = %id, resume_ms = a.resume_ms, "this node records the camera now: taking over from the pictures it held");
                        ctl.take_over(a.resume_ms);
                    }
                }
                continue;
            }
            let source = &a.source;
            let parsed = match Source::parse(source) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(camera = %id, error = %e, "cannot record camera");
                    self.states.set(id, State::Down, Some(e));
                    continue;
                }
            };
            if let Err(e) = check_allowed(&parsed, self.allow_test_sources) {
                if self.refused.get(id) != Some(source) {
                    tracing::error!(camera = %id, source = %redact(source), error = %e, "refusing to record camera");
                    self.refused.insert(id.clone(), source.clone());
                }
                self.states.set(id, State::Down, Some(e));
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let standby = a.standby.then(|| Arc::new(standby::StandbyCtl::standby()));
            if let Some(ctl) = &standby {
                self.standing.lock().expect("standing").insert(id.clone(), ctl.clone());
            }
            let task = pipeline::CameraTask {
                receiver: self.receiver,
                camera: id.clone(),
                source: parsed,
                source_text: source.clone(),
                segment_target_ms: self.segment_target_ms,
                tx: (self.on_new_camera)(id),
                states: self.states.clone(),
                stop: stop.clone(),
                clock: self.clock.clone(),
                standby: standby.clone(),
                floor_ns: Arc::new(AtomicU64::new(a.last_end_ms.map_or(0, |ms| (ms.max(0) as u64) * 1_000_000))),
            };
            let role = if a.standby { "standing by for camera" } else { "starting camera" };
            tracing::info!(camera = %id, source = %redact(source), "{role}");
            let thread = std::thread::Builder::new()
                .name(format!("cam-{id}"))
                .spawn({
                    let span = tracing::info_span!("camera", id = %id);
                    move || span.in_scope(|| pipeline::supervise(task))
                })
                .expect("spawning a camera thread");
            self.running.insert(id.clone(), Running { source: source.clone(), stop, thread, standby });
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
        self.standing.lock().expect("standing").clear();
    }
}

/// Query parameters whose values are secrets, matched case-insensitively as part of the
/// key (`password`, `Pwd`, `access_token`, `api_key`, `authToken`, …).
const SECRET_QUERY_KEYS: &[&str] = &["pass", "pwd", "token", "key", "secret", "auth"];

/// Where the userinfo of a URL ends: the last `@` that is followed by something shaped
/// like `host[:port]` up to the next `/` (or the end). Passwords hold `@`, `/`, `#` and
/// `?` unencoded as people type them, so the authority cannot be cut at the first of
/// those; an `@` inside a path at worst hides more than it must.
fn userinfo_end(rest: &str) -> Option<usize> {
    let hostlike = |h: &str| {
        let h = h.split(['?', '#']).next().unwrap_or("");
        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]_%".contains(c))
    };
    rest.match_indices('@').map(|(i, _)| i).rev().find(|&i| hostlike(rest[i + 1..].split('/').next().unwrap_or("")))
}

/// A camera URL without its userinfo, and the user and password that were in it
/// (percent-decoded). The userinfo ends at the last `@` before the host, as [`redact`]
/// reads it, so a password typed with `@`, `/` or `#` unencoded stays whole.
pub fn split_userinfo(source: &str) -> (String, Option<(String, String)>) {
    let Some(s) = source.find("://") else { return (source.to_string(), None) };
    let rest = &source[s + 3..];
    let Some(at) = userinfo_end(rest) else { return (source.to_string(), None) };
    let info = &rest[..at];
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    (format!("{}{}", &source[..s + 3], &rest[at + 1..]), Some((decode(user), decode(password))))
}

/// The parts of `source` that are secret: the userinfo (user and password), the password
/// alone, and the values of secret query parameters.
pub fn source_secrets(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(s) = source.find("://") else { return out };
    let rest = &source[s + 3..];
    let host_from = match userinfo_end(rest) {
        Some(at) => {
            let info = &rest[..at];
            out.push(info.to_string());
            if let Some((_, pw)) = info.split_once(':') {
                out.push(pw.to_string());
            }
            // The receivers are given the decoded password (`split_userinfo`): hide that
            // form too, should a library quote it.
            if let Some((_, pw)) = split_userinfo(source).1 {
                out.push(pw);
            }
            at + 1
        }
        None => 0,
    };
    if let Some(q) = rest[host_from..].find('?') {
        for pair in rest[host_from + q + 1..].split(['&', ';']) {
            if let Some((k, v)) = pair.split_once('=') {
                let k = k.to_ascii_lowercase();
                if !v.is_empty() && SECRET_QUERY_KEYS.iter().any(|s| k.contains(s)) {
                    out.push(v.split('#').next().unwrap_or(v).to_string());
                }
            }
        }
    }
    out.retain(|x| !x.is_empty());
    out
}

/// A source URL fit to show: credentials before the host become `***`, and so do the
/// values of secret query parameters (`rtsp://u:p@h/x?token=t` → `rtsp://***@h/x?token=***`).
/// Used wherever a source is listed, logged, audited or reported.
pub fn redact(source: &str) -> String {
    let Some(s) = source.find("://") else { return source.to_string() };
    let (scheme, rest) = source.split_at(s + 3);
    let (userinfo, hostpart) = match userinfo_end(rest) {
        Some(at) => ("***@", &rest[at + 1..]),
        None => ("", rest),
    };
    let hostpart = match hostpart.split_once('?') {
        None => hostpart.to_string(),
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let mut q = String::new();
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    q.push('&');
                }
                let mut parts = Vec::new();
                for p in pair.split(';') {
                    parts.push(match p.split_once('=') {
                        Some((k, v))
                            if !v.is_empty()
                                && SECRET_QUERY_KEYS.iter().any(|s| k.to_ascii_lowercase().contains(s)) =>
                        {
                            format!("{k}=***")
                        }
                        _ => p.to_string(),
                    });
                }
                q.push_str(&parts.join(";"));
            }
            match fragment {
                Some(f) => format!("{path}?{q}#{f}"),
                None => format!("{path}?{q}"),
            }
        }
    };
    format!("{scheme}{userinfo}{hostpart}")
}

/// `text` (an error message, say GStreamer's) with `source` and each of its secrets
/// replaced, so nothing that mentions a camera's URL shows its credentials. A library
/// that cut the URL at another `@` than [`redact`] does may quote a piece of the
/// password with the host (`'ss@word@10.0.0.5'`), so in every word holding an `@`,
/// whatever comes before its last `@` is hidden too.
pub fn redact_text(text: &str, source: &str) -> String {
    let mut out = text.replace(source, &redact(source));
    let mut secrets = source_secrets(source);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), "***");
    }
    let separator = |c: char| c.is_whitespace() || "'\"`()<>,;".contains(c);
    let mut masked = String::with_capacity(out.len());
    let mut word = String::new();
    let flush = |word: &mut String, masked: &mut String| {
        match word.rfind('@') {
            Some(at) if at > 0 => {
                // Keep a scheme (`rtsp://`) so the message still says what it was.
                let keep = word.find("://").map(|i| i + 3).filter(|&i| i <= at).unwrap_or(0);
                masked.push_str(&word[..keep]);
                masked.push_str("***");
                masked.push_str(&word[at..]);
            }
            _ => masked.push_str(word),
        }
        word.clear();
    };
    for c in out.chars() {
        if separator(c) {
            flush(&mut word, &mut masked);
            masked.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut masked);
    masked
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
        assert_eq!(redact("rtsp://10.0.0.5:554/s1"), "rtsp://10.0.0.5:554/s1");
        // The password holds '@': the userinfo ends at the last '@' before the host.
        assert_eq!(
            redact("rtsp://user:p@ss@word@cam.example:554/x?token=abc&channel=1"),
            "rtsp://***@cam.example:554/x?token=***&channel=1"
        );
        // '/', '#' and '?' typed into a password.
        assert_eq!(redact("rtsp://u:pa/ss#1?@10.0.0.5/s1"), "rtsp://***@10.0.0.5/s1");
        assert_eq!(redact("rtsp://[fe80::1]:554/s"), "rtsp://[fe80::1]:554/s");
        assert_eq!(
            redact("rtsp://cam/live?user=admin&Password=hunter2;PWD=x&access_token=t&api_key=k&quality=hd"),
            "rtsp://cam/live?user=admin&Password=***;PWD=***&access_token=***&api_key=***&quality=hd"
        );
        assert_eq!(redact("rtsp://cam/live?auth=s3cr3t#frag"), "rtsp://cam/live?auth=***#frag");
        let src = "rtsp://user:p@ss@word@cam/x?token=abc123";
        let secrets = source_secrets(src);
        assert!(secrets.contains(&"p@ss@word".to_string()) && secrets.contains(&"abc123".to_string()), "{secrets:?}");
        let msg = format!("Could not open resource {src} (Unauthorized for user:p@ss@word; token abc123)");
        let clean = redact_text(&msg, src);
        for s in ["p@ss", "ss@word", "abc123"] {
            assert!(!clean.contains(s), "{clean}");
        }
        assert!(clean.contains("rtsp://***@cam/x?token=***"), "{clean}");
        // A library that split the URL at the first '@' quotes the rest of the password.
        let clean = redact_text("Could not resolve 'ss@word@cam' (user 'user')", src);
        assert_eq!(clean, "Could not resolve '***@cam' (user 'user')");
        assert_eq!(redact_text("no secrets here: rtsp://cam/x", "rtsp://cam/x"), "no secrets here: rtsp://cam/x");
        assert!(!Source::parse("rtsp://u:se cret@cam/x").unwrap_err().contains("se cret"));
        assert_eq!(
            split_userinfo("rtsp://admin:p@ss/w#rd@cam.example:554/live?ch=1"),
            ("rtsp://cam.example:554/live?ch=1".to_string(), Some(("admin".into(), "p@ss/w#rd".into())))
        );
        assert_eq!(split_userinfo("rtsp://u:p%40ss@cam/x").1, Some(("u".into(), "p@ss".into())));
        assert_eq!(redact_text("auth failed for p!ss", "rtsp://u:p%21ss@cam/x"), "auth failed for ***");
        assert_eq!(split_userinfo("rtsp://cam/x"), ("rtsp://cam/x".to_string(), None));
    }

    #[test]
    fn test_sources_are_refused_unless_allowed() {
        let test = Source::parse("test://ball").unwrap();
        let file = Source::parse("file:///srv/clip.mp4").unwrap();
        let rtsp = Source::parse("rtsp://cam/s1").unwrap();
        assert!(check_allowed(&rtsp, false).is_ok());
        assert!(check_allowed(&test, true).is_ok() && check_allowed(&file, true).is_ok());
        for (s, kind) in [(&test, "test://"), (&file, "file://")] {
            let e = check_allowed(s, false).unwrap_err();
            assert!(e.contains(kind) && e.contains("set allow_test_sources = true in custos.toml for trials"), "{e}");
        }
    }
}

//! Workers: the node's long-running loops (pings, the leader's duties, expiry, the
//! daily seal, backup, scrubbing, picture checks, alarms, …), and what they report while
//! they run.
//!
//! Each loop is a [`Worker`]: a name and a `run` that returns when the shutdown signal
//! fires. [`Workers`] starts them, each in a span named after it; they all see the signal
//! at once, and [`Workers::stop`] waits for them the last started first. [`Registry`] is the one place that says which workers run and holds
//! what those whose findings leave the node observe (the scrubber, the picture checks,
//! the clock-jump watch): pings, `custos status`, the metrics and the leader's alarms all
//! read it from there.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::Shutdown;

/// One of the node's long-running loops.
pub trait Worker: Send + 'static {
    /// Its name in logs, spans, status and metrics (`scrub`, `backup`, …).
    fn name(&self) -> &'static str;
    /// Runs until `shutdown` fires.
    fn run(self, shutdown: Shutdown) -> impl Future<Output = ()> + Send;
}

/// A worker made of a name and a function of the shutdown signal: for loops that are
/// one function (expiry, pings, the listeners).
pub struct Task<F> {
    name: &'static str,
    run: F,
}

/// The worker `name` that runs `run(shutdown)`.
pub fn task<F, Fut>(name: &'static str, run: F) -> Task<F>
where
    F: FnOnce(Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Task { name, run }
}

impl<F, Fut> Worker for Task<F>
where
    F: FnOnce(Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(self, shutdown: Shutdown) -> impl Future<Output = ()> + Send {
        (self.run)(shutdown)
    }
}

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    Running,
    /// Returned: after shutdown, or at start when its configuration turns it off.
    Stopped,
    /// Panicked: a bug; the node goes on without it, and says so in its log and metrics.
    Failed,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Running => "running",
            WorkerState::Stopped => "stopped",
            WorkerState::Failed => "failed",
        }
    }
}

/// Which workers run, and what the self-observing ones found.
#[derive(Debug, Default)]
pub struct Registry {
    states: Mutex<BTreeMap<&'static str, WorkerState>>,
    /// The scrubber's figures.
    pub scrub: Arc<ScrubStats>,
    /// The picture checks' findings.
    pub picture: Arc<PictureWatch>,
    /// The clock-jump watch's unconfirmed jump.
    pub clock_jump: Arc<ClockWatch>,
}

impl Registry {
    /// Every worker started so far, by name, with its state.
    pub fn states(&self) -> Vec<(&'static str, WorkerState)> {
        self.states.lock().expect("worker states").iter().map(|(n, s)| (*n, *s)).collect()
    }

    fn set(&self, name: &'static str, state: WorkerState) {
        self.states.lock().expect("worker states").insert(name, state);
    }
}

/// The running workers, in the order they started.
#[derive(Debug)]
pub struct Workers {
    registry: Arc<Registry>,
    shutdown: Shutdown,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Workers {
    /// No workers yet; those started will stop on `shutdown`.
    pub fn new(registry: Arc<Registry>, shutdown: Shutdown) -> Workers {
        Workers { registry, shutdown, running: Vec::new() }
    }

    /// The signal the workers stop on.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Starts `w` on the runtime, in a span named after it.
    pub fn spawn<W: Worker>(&mut self, w: W) {
        let name = w.name();
        let registry = self.registry.clone();
        registry.set(name, WorkerState::Running);
        let run = w.run(self.shutdown.clone()).instrument(tracing::info_span!("worker", name));
        let task = tokio::spawn(async move {
            let state = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(()) => WorkerState::Stopped,
                Err(_) => {
                    tracing::error!(worker = name, "a worker failed (panicked); the node runs on without it: report this as a bug and restart the node");
                    WorkerState::Failed
                }
            };
            registry.set(name, state);
        });
        self.running.push((name, task));
    }

    /// Waits for every worker to return, the last started first. Call once the shutdown
    /// signal has fired.
    pub async fn stop(self) {
        for (name, task) in self.running.into_iter().rev() {
            let _ = task.await;
            tracing::debug!(worker = name, "stopped");
        }
    }
}

/// What this node's scrubber has done since it started.
#[derive(Debug, Default)]
pub struct ScrubStats {
    pub passes: AtomicU64,
    pub segments: AtomicU64,
    pub bytes: AtomicU64,
    pub corrupt: AtomicU64,
    pub missing: AtomicU64,
    pub repaired: AtomicU64,
    /// Wall-clock ms of the last corrupt or missing blob found (0: none).
    pub last_finding_ms: AtomicI64,
    /// Wall-clock ms the last full pass ended (0: none yet).
    pub last_pass_ms: AtomicI64,
    /// `camera@start` → what is wrong, for damage not repaired yet.
    pub unrepaired: Mutex<BTreeMap<String, String>>,
}

impl ScrubStats {
    pub fn unrepaired_count(&self) -> u64 {
        self.unrepaired.lock().expect("scrub stats").len() as u64
    }
}

/// The latest finding of this node's picture checks, per camera it records: what it
/// reports to the others in pings, and the leader turns into `camera-picture` alarms.
#[derive(Debug, Default)]
pub struct PictureWatch {
    findings: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl PictureWatch {
    /// (camera, detail) for every camera whose last check found something, by camera.
    pub fn findings(&self) -> Vec<(String, String)> {
        self.findings.lock().expect("picture findings").iter().map(|(c, d)| (c.clone(), d.clone())).collect()
    }

    /// Records the last check of `camera`: what it found, or nothing.
    pub fn set(&self, camera: &str, finding: Option<String>) {
        let mut f = self.findings.lock().expect("picture findings");
        match finding {
            Some(detail) => f.insert(camera.to_string(), detail),
            None => f.remove(camera),
        };
    }

    /// Forgets cameras this node no longer records.
    pub fn keep_only(&self, cameras: &std::collections::BTreeSet<String>) {
        self.findings.lock().expect("picture findings").retain(|c, _| cameras.contains(c));
    }
}

/// An unconfirmed forward jump of this node's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jump {
    /// How far the wall clock ran ahead of the boot clock since the jump (ms).
    pub jump_ms: i64,
    /// The (new) wall clock when the jump was seen.
    pub seen_ms: i64,
    /// Accepted confirmations of this node's clock when the jump was seen.
    pub confirmations: u64,
}

/// This node's jump, shared by the watch, the expiry worker and ping answers.
#[derive(Debug, Default)]
pub struct ClockWatch {
    jump: Mutex<Option<Jump>>,
    /// The (wall, boot) clock readings of the watch's last comparison.
    checked: Mutex<Option<(i64, i64)>>,
}

impl ClockWatch {
    /// The unconfirmed jump, if any.
    pub fn jump(&self) -> Option<Jump> {
        self.jump.lock().expect("clock watch").clone()
    }

    /// The unconfirmed jump in ms (0: none), as pings report it.
    pub fn jump_ms(&self) -> i64 {
        self.jump().map_or(0, |j| j.jump_ms)
    }

    /// Sets or clears the unconfirmed jump (the watch, and tests).
    pub fn set(&self, j: Option<Jump>) {
        *self.jump.lock().expect("clock watch") = j;
    }

    /// The watch compared the clocks at these readings (ms).
    pub fn checked(&self, wall_ms: i64, boot_ms: i64) {
        *self.checked.lock().expect("clock watch") = Some((wall_ms, boot_ms));
    }

    /// How much more the wall clock moved than the boot clock since the watch last
    /// compared them, for readings taken now (ms); `None` before its first comparison.
    /// A jump the watch has not seen yet shows here at once.
    pub fn drift_since_check(&self, wall_ms: i64, boot_ms: i64) -> Option<i64> {
        self.checked.lock().expect("clock watch").map(|(w, b)| (wall_ms - w) - (boot_ms - b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_since_the_last_comparison_shows_before_the_watch_sees_it() {
        let w = ClockWatch::default();
        assert_eq!(w.drift_since_check(1_000, 50), None, "nothing vouched before the first comparison");
        w.checked(1_000, 50);
        // One second on both clocks: no drift.
        assert_eq!(w.drift_since_check(2_000, 1_050), Some(0));
        // The wall clock leapt two days within that second.
        assert_eq!(w.drift_since_check(2_000 + 2 * 86_400_000, 1_050), Some(2 * 86_400_000));
        // A machine suspended for a day: both clocks moved.
        assert_eq!(w.drift_since_check(1_000 + 86_400_000, 50 + 86_400_000), Some(0));
    }

    #[tokio::test]
    async fn stop_waits_for_every_worker_and_a_panic_is_recorded() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let registry = Arc::new(Registry::default());
        let mut w = Workers::new(registry.clone(), rx);
        for name in ["first", "second"] {
            let order = order.clone();
            w.spawn(task(name, move |s| async move {
                crate::wait_shutdown(s).await;
                // The later worker takes longer to stop; `stop` still waits for it.
                if name == "second" {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                order.lock().unwrap().push(name);
            }));
        }
        w.spawn(task("broken", |_| async { panic!("a bug") }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let states: BTreeMap<_, _> = registry.states().into_iter().collect();
        assert_eq!(states["first"], WorkerState::Running);
        assert_eq!(states["broken"], WorkerState::Failed);
        tx.send(true).unwrap();
        w.stop().await;
        assert_eq!(registry.states().iter().filter(|(_, s)| *s == WorkerState::Stopped).count(), 2);
        assert_eq!(*order.lock().unwrap(), ["first", "second"]);
    }
}

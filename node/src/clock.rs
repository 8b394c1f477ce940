//! Time as a parameter. Every decision that depends on "now" asks a [`Clock`], so tests
//! can run the node on a simulated clock. Decisions that must agree across the cluster
//! (retention, holds) use the time the leader wrote into the Raft command instead.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time in milliseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// How far the clock has been stepped since boot, in ms: its time minus the boot
    /// clock's. Constant while the clock only runs; a step moves it by the step.
    fn stepped_ms(&self) -> i64 {
        self.now_ms() - boot_ms()
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
    /// [`Clock::stepped_ms`]: moved by [`ManualClock::step_ms`] only.
    stepped_ms: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn new(now_ms: i64) -> Arc<Self> {
        Arc::new(Self { now_ms: AtomicI64::new(now_ms), stepped_ms: AtomicI64::new(0) })
    }

    /// Lets `delta_ms` of time pass (or go back, for a test's convenience).
    pub fn advance_ms(&self, delta_ms: i64) {
        self.now_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }

    /// Steps the clock by `delta_ms`, as NTP or a person setting it would.
    pub fn step_ms(&self, delta_ms: i64) {
        self.now_ms.fetch_add(delta_ms, Ordering::SeqCst);
        self.stepped_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn stepped_ms(&self) -> i64 {
        self.stepped_ms.load(Ordering::SeqCst)
    }
}

/// Shared handle to the node's clock.
pub type SharedClock = Arc<dyn Clock>;

/// The boot clock (ms): monotonic, and unlike `Instant` it counts time suspended, so a
/// machine resumed after two days is not taken for a jump.
pub fn boot_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

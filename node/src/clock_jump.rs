//! Clock jumps: a node whose own wall clock leaps forward while it runs.
//!
//! Every [`CHECK_EVERY`] the watch compares how far the wall clock moved with how far the
//! boot clock (`CLOCK_BOOTTIME`: monotonic, and counting time suspended) moved. A wall
//! clock that gained more than [`JUMP_MIN_MS`] in one step jumped: the node stops
//! expiring (as leader it proposes no expiry), the leader raises `clock-jump` naming it,
//! and the jump is logged, until the jump is confirmed:
//!
//! - through the change queue: `custos node confirm-clock ID`, which an approver accepts
//!   (`Command::ConfirmClock` counts confirmations per node; one more than when the jump
//!   was seen confirms it), or
//! - by the backup endpoint's clock: when `[backup]` is configured the watch asks the S3
//!   endpoint (a `HEAD`) every [`REFERENCE_EVERY`]; a `Date` header within
//!   [`REFERENCE_AGREE_MS`] of the new clock confirms it, with an audit entry.
//!
//! A clock set back to within a day of where it was undoes the jump. Backward jumps and
//! jumps under a day are not this case: `clock-skew` covers them. The jump is kept in the
//! data directory ([`STATE_FILE`]), so a restart does not forget it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::clock::boot_ms;
use crate::config::BackupConfig;
use crate::meta::{Command, Meta};
use crate::worker::{ClockWatch, Jump};

/// A forward leap of the wall clock, beyond the boot clock's progress, that stops expiry.
pub const JUMP_MIN_MS: i64 = 86_400_000;
/// How often the clocks are compared.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How close the backup endpoint's `Date` must be to the new clock to confirm it.
pub const REFERENCE_AGREE_MS: i64 = 60_000;
/// How often the backup endpoint's clock is asked while a jump waits.
pub const REFERENCE_EVERY: Duration = Duration::from_secs(30);
/// How long one request to the backup endpoint may take.
const REFERENCE_TIMEOUT: Duration = Duration::from_secs(10);
/// Where an unconfirmed jump is kept, in the data directory.
pub const STATE_FILE: &str = "clock-jump.json";

/// What one comparison of the clocks means.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No jump, and none now.
    Steady,
    /// The wall clock just jumped forward by this much (ms).
    Jumped(i64),
    /// Still jumped, now by this much in all.
    Still(i64),
    /// The clock was set back to within [`JUMP_MIN_MS`] of where it was: no jump any more.
    Undone,
}

/// The next state from the current jump (ms, if any) and the wall clock's gain over the
/// boot clock since the last comparison (`drift_ms`). Pure.
pub fn step(jumped_ms: Option<i64>, drift_ms: i64) -> Step {
    match jumped_ms {
        None if drift_ms > JUMP_MIN_MS => Step::Jumped(drift_ms),
        None => Step::Steady,
        Some(j) if j + drift_ms <= JUMP_MIN_MS => Step::Undone,
        Some(j) => Step::Still(j + drift_ms),
    }
}

/// Parses an HTTP `Date` header (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) to ms.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(s.trim(), fmt).ok()?.assume_utc();
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The backup endpoint's clock (ms), from the `Date` header of a `HEAD` of the bucket.
async fn reference_time(cfg: &BackupConfig) -> Result<i64, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = cfg.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region));
    let url = format!("{}/{}", base.trim_end_matches('/'), cfg.bucket);
    let client = reqwest::Client::builder().timeout(REFERENCE_TIMEOUT).build().map_err(|e| e.to_string())?;
    // Any answer carries the server's Date, a refusal (no credentials) included.
    let r = client.head(&url).send().await.map_err(|e| format!("HEAD {url}: {e}"))?;
    let date = r.headers().get(reqwest::header::DATE).ok_or_else(|| format!("HEAD {url}: no Date header"))?;
    let date = date.to_str().map_err(|e| e.to_string())?;
    parse_http_date(date).ok_or_else(|| format!("HEAD {url}: unreadable Date {date:?}"))
}

fn load(path: &Path) -> Option<Jump> {
    let b = std::fs::read(path).ok()?;
    match serde_json::from_slice(&b) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable clock-jump record; taking it as a jump");
            Some(Jump { jump_ms: JUMP_MIN_MS + 1, seen_ms: 0, confirmations: u64::MAX })
        }
    }
}

fn store(path: &Path, j: Option<&Jump>) {
    let res = match j {
        Some(j) => crate::files::write_file_atomic(path, &serde_json::to_vec(j).expect("json")),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::Error::io("remove", path, e)),
            _ => Ok(()),
        },
    };
    if let Err(e) = res {
        tracing::warn!(file = %path.display(), error = %e, "could not record the clock-jump state");
    }
}

/// The watch: compares the clocks until shutdown.
pub struct Watcher {
    pub meta: Meta,
    pub watch: std::sync::Arc<ClockWatch>,
    pub data_dir: PathBuf,
    pub backup: Option<BackupConfig>,
}

impl Watcher {
    fn confirmed(&self, how: &str, detail: String) {
        tracing::info!(how, %detail, "clock jump confirmed; expiry resumes");
        self.watch.set(None);
        store(&self.data_dir.join(STATE_FILE), None);
    }

    /// Runs the watch until `shutdown`.
    pub async fn run(self, shutdown: crate::Shutdown) {
        let path = self.data_dir.join(STATE_FILE);
        if let Some(j) = load(&path) {
            tracing::error!(jump_ms = j.jump_ms, "ALARM this node's clock jumped forward before it restarted and the jump is not confirmed yet: it expires nothing until `custos node confirm-clock {}` is approved", self.meta.node_id);
            self.watch.set(Some(j));
        }
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let (mut wall, mut boot) = (self.meta.now_ms(), boot_ms());
        self.watch.checked(wall, boot);
        let mut last_reference: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let (w, b) = (self.meta.now_ms(), boot_ms());
            let drift = (w - wall) - (b - boot);
            (wall, boot) = (w, b);
            let current = self.watch.jump();
            // The readings are recorded as compared only once any jump they show is
            // set, so a reader that sees them sees the jump too (`expiry::vouched`).
            match step(current.as_ref().map(|j| j.jump_ms), drift) {
                Step::Steady => {
                    self.watch.checked(w, b);
                    continue;
                }
                Step::Jumped(ms) => {
                    let me = self.meta.node_id;
                    let confirmations = self.meta.read(move |c| c.clock_confirmations(me)).await.unwrap_or(0);
                    let j = Jump { jump_ms: ms, seen_ms: w, confirmations };
                    tracing::error!(
                        jump = %custos_formats::fields::fmt_skew(ms),
                        "ALARM this node's clock jumped forward while it ran: it expires nothing until the jump is \
                         confirmed (`custos node confirm-clock {me}`, accepted by an approver, or the backup \
                         endpoint's clock)"
                    );
                    store(&path, Some(&j));
                    self.watch.set(Some(j));
                    self.watch.checked(w, b);
                    last_reference = None;
                }
                Step::Still(ms) => {
                    if let Some(mut j) = current.clone() {
                        if (ms - j.jump_ms).abs() > 1_000 {
                            j.jump_ms = ms;
                            store(&path, Some(&j));
                        }
                        j.jump_ms = ms;
                        self.watch.set(Some(j));
                    }
                    self.watch.checked(w, b);
                }
                Step::Undone => {
                    tracing::info!(
                        "this node's clock was set back to where it was: the jump is undone; expiry resumes"
                    );
                    self.watch.set(None);
                    store(&path, None);
                    self.watch.checked(w, b);
                    continue;
                }
            }
            let Some(j) = self.watch.jump() else { continue };
            let me = self.meta.node_id;
            if let Ok(n) = self.meta.read(move |c| c.clock_confirmations(me)).await {
                if n > j.confirmations {
                    self.confirmed("change queue", format!("an approver accepted `custos node confirm-clock {me}`"));
                    continue;
                }
            }
            let Some(cfg) = &self.backup else { continue };
            if last_reference.is_some_and(|t| t.elapsed() < REFERENCE_EVERY) {
                continue;
            }
            last_reference = Some(std::time::Instant::now());
            match reference_time(cfg).await {
                Ok(reference) => {
                    let now = self.meta.now_ms();
                    let off = now - reference;
                    if off.abs() <= REFERENCE_AGREE_MS {
                        let detail = format!(
                            "node {me}'s clock jumped {} forward; the backup endpoint's clock agrees with its new time \
                             within {} s ({} ms apart)",
                            custos_formats::fields::fmt_skew(j.jump_ms),
                            REFERENCE_AGREE_MS / 1000,
                            off
                        );
                        let ev = AuditEvent {
                            user: "-".into(),
                            role: "system".into(),
                            action: AuditAction::ClockConfirm,
                            outcome: Outcome::Ok,
                            detail: detail.clone(),
                            ..Default::default()
                        };
                        match self.meta.propose_audited(Command::Audit, ev).await {
                            Ok(_) => self.confirmed("backup endpoint", detail),
                            Err(e) => {
                                tracing::warn!(error = %e, "the clock jump's confirmation could not be audited; retrying")
                            }
                        }
                    } else {
                        tracing::warn!(
                            off_ms = off,
                            "the backup endpoint's clock disagrees with this node's new time: the jump stays unconfirmed"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read the backup endpoint's clock"),
            }
        }
    }
}

impl crate::worker::Worker for Watcher {
    fn name(&self) -> &'static str {
        "clock-jump"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        Watcher::run(self, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_forward_leap_over_a_day_is_a_jump_and_setting_it_back_undoes_it() {
        let day = JUMP_MIN_MS;
        assert_eq!(step(None, 5), Step::Steady);
        assert_eq!(step(None, day), Step::Steady, "a day exactly is not over a day");
        assert_eq!(step(None, -40 * day), Step::Steady, "backwards is clock-skew's case");
        assert_eq!(step(None, 2 * day), Step::Jumped(2 * day));
        assert_eq!(step(Some(2 * day), 3), Step::Still(2 * day + 3));
        assert_eq!(step(Some(2 * day), -2 * day), Step::Undone);
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}

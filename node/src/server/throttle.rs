//! Keeps unauthenticated noise out of the audit log and out of Raft.
//!
//! Every refused authentication used to commit its own audit entry through Raft, so
//! anyone who could reach the port could grow the audit log and the Raft log at the rate
//! they could send requests. Now:
//!
//! * [`Throttle`] counts refused authentications (bad tokens, bad join tokens) per
//!   client address in a bounded table ([`TABLE_MAX`] addresses, least recently seen
//!   evicted; IPv6 keyed by its /64, which one attacker usually holds whole). Only the
//!   first [`AUDITED_PER_ADDR`] per address per [`WINDOW`], and at most
//!   [`AUDITED_ALL`] per window from all addresses together, are audited one by one; the
//!   rest are counted, and [`run_summaries`] writes one summary audit entry every
//!   [`SUMMARY_EVERY`] naming how many were suppressed and from where.
//! * An address past [`REFUSE_AFTER`] failures in a window is answered
//!   `RESOURCE_EXHAUSTED` instead of `UNAUTHENTICATED`. A valid token is still accepted
//!   from it: the token is checked first, so a flood from a shared address (a NAT, a
//!   proxy) cannot lock out the legitimate users behind it.
//! * [`ClientLimit`] bounds the client requests being handled at once on the whole node
//!   ([`CLIENT_CONCURRENCY_MAX`]); past it a request is refused at once with
//!   `RESOURCE_EXHAUSTED`. Peer traffic (Raft, blobs, pings) is exempt, so a flood cannot
//!   starve the cluster's own heartbeats. Each connection is also bounded
//!   ([`PER_CONNECTION_MAX`], queued, in `lib.rs`).
//!
//! The counters are exported as Prometheus metrics (`custos_auth_refused`,
//! `custos_audit_suppressed`, `custos_requests_shed`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Semaphore;

/// Most client addresses the table tracks; the least recently seen is evicted.
pub const TABLE_MAX: usize = 4096;
/// The window failures are counted in, per address.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Refused authentications audited one by one per address per window.
pub const AUDITED_PER_ADDR: u32 = 5;
/// Refused authentications audited one by one per window, all addresses together.
pub const AUDITED_ALL: u32 = 20;
/// Failures per address per window after which the answer is `RESOURCE_EXHAUSTED`.
pub const REFUSE_AFTER: u32 = 50;
/// How often the suppressed failures are summarised in one audit entry.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Addresses named in one summary entry (the rest are counted together).
pub const SUMMARY_ADDRS: usize = 16;
/// Client requests handled at once on one node; past it they are refused.
pub const CLIENT_CONCURRENCY_MAX: usize = 512;
/// Requests handled at once on one connection; past it they wait.
pub const PER_CONNECTION_MAX: usize = 128;

/// What to do with one refused authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Audit it on its own.
    Audit,
    /// Count it for the next summary; answer as usual.
    Suppress,
    /// Count it for the next summary; answer `RESOURCE_EXHAUSTED` (this address has
    /// failed `failures` times in the window).
    Refuse { failures: u32 },
}

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    failures: u32,
    last_seen: Instant,
    /// Suppressed since the last summary.
    suppressed: u64,
}

#[derive(Debug)]
struct Table {
    by_addr: HashMap<String, Entry>,
    all_window_start: Instant,
    all_audited: u32,
    /// Suppressed failures of addresses evicted before the summary named them.
    evicted_suppressed: u64,
    /// When the current summary period began.
    period_start: Instant,
}

/// Suppressed failures since the last summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub total: u64,
    /// Addresses with the most suppressed failures, most first, at most [`SUMMARY_ADDRS`].
    pub top: Vec<(String, u64)>,
    /// Addresses involved, evicted ones not counted.
    pub addresses: usize,
    pub period: Duration,
}

impl Summary {
    /// The audit entry's reason.
    pub fn reason(&self) -> String {
        let secs = self.period.as_secs().max(1);
        format!(
            "{} refused authentications from {} address{} in the last {secs} s were counted, not audited one by one \
             (more than {AUDITED_PER_ADDR} per address or {AUDITED_ALL} in all per {} s)",
            self.total,
            self.addresses.max(1),
            if self.addresses == 1 { "" } else { "es" },
            WINDOW.as_secs()
        )
    }

    /// The audit entry's detail: the busiest addresses and their counts.
    pub fn detail(&self) -> String {
        let mut parts: Vec<String> = self.top.iter().map(|(a, n)| format!("{a}: {n}")).collect();
        let named: u64 = self.top.iter().map(|(_, n)| n).sum();
        if self.total > named {
            parts.push(format!("others: {}", self.total - named));
        }
        parts.join(", ")
    }
}

/// Per-address counts of refused authentications, and the counters the metrics show.
#[derive(Debug)]
pub struct Throttle {
    table: Mutex<Table>,
    /// Every refused authentication (bad token, bad join token).
    pub refused: Counter,
    /// Refused authentications not audited one by one (summarised instead).
    pub suppressed: Counter,
    /// Client requests refused because the node was handling [`CLIENT_CONCURRENCY_MAX`].
    pub shed: Counter,
}

impl Default for Throttle {
    fn default() -> Self {
        let now = Instant::now();
        Throttle {
            table: Mutex::new(Table {
                by_addr: HashMap::new(),
                all_window_start: now,
                all_audited: 0,
                evicted_suppressed: 0,
                period_start: now,
            }),
            refused: Counter::default(),
            suppressed: Counter::default(),
            shed: Counter::default(),
        }
    }
}

/// The table key of a client address: the IP without the port, and an IPv6 address
/// reduced to its /64.
pub fn addr_key(client: &str) -> String {
    let ip = match client.parse::<SocketAddr>() {
        Ok(sa) => sa.ip(),
        Err(_) => match client.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return client.to_string(),
        },
    };
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Throttle {
    /// Records one refused authentication from `client` (`ip:port`) at `now`.
    pub fn on_failure(&self, client: &str, now: Instant) -> Verdict {
        self.refused.inc();
        let key = addr_key(client);
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(t.all_window_start) >= WINDOW {
            t.all_window_start = now;
            t.all_audited = 0;
        }
        if !t.by_addr.contains_key(&key) && t.by_addr.len() >= TABLE_MAX {
            // Evict the least recently seen address; its unsummarised count is kept.
            let oldest = t.by_addr.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                if let Some(e) = t.by_addr.remove(&k) {
                    t.evicted_suppressed += e.suppressed;
                }
            }
        }
        let budget_left = t.all_audited < AUDITED_ALL;
        let e = t.by_addr.entry(key).or_insert(Entry { window_start: now, failures: 0, last_seen: now, suppressed: 0 });
        if now.duration_since(e.window_start) >= WINDOW {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_seen = now;
        let verdict = if e.failures <= AUDITED_PER_ADDR && budget_left {
            Verdict::Audit
        } else if e.failures > REFUSE_AFTER {
            Verdict::Refuse { failures: e.failures }
        } else {
            Verdict::Suppress
        };
        if verdict == Verdict::Audit {
            t.all_audited += 1;
        } else {
            e.suppressed += 1;
            self.suppressed.inc();
        }
        verdict
    }

    /// Takes the suppressed counts since the last summary; `None` if there were none.
    /// Addresses whose window has passed and that have nothing left to summarise are
    /// dropped from the table.
    pub fn take_summary(&self, now: Instant) -> Option<Summary> {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let period = now.duration_since(t.period_start);
        t.period_start = now;
        let mut top: Vec<(String, u64)> = Vec::new();
        let mut total = std::mem::take(&mut t.evicted_suppressed);
        for (k, e) in t.by_addr.iter_mut() {
            if e.suppressed > 0 {
                total += e.suppressed;
                top.push((k.clone(), std::mem::take(&mut e.suppressed)));
            }
        }
        t.by_addr.retain(|_, e| now.duration_since(e.window_start) < WINDOW);
        if total == 0 {
            return None;
        }
        let addresses = top.len();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(SUMMARY_ADDRS);
        Some(Summary { total, top, addresses, period })
    }

    /// Addresses in the table (for tests).
    pub fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).by_addr.len()
    }
}

impl super::Services {
    /// The answer to a refused authentication from `client` (`ip:port`) attempting
    /// `action` for `reason`: audited on its own while the address and the node are
    /// within their budgets, otherwise counted for the next summary.
    pub(crate) async fn refuse_authentication(
        &self,
        action: crate::audit::AuditAction,
        client: String,
        reason: String,
    ) -> tonic::Status {
        match self.throttle.on_failure(&client, Instant::now()) {
            Verdict::Audit => {
                let ev = crate::audit::AuditEvent {
                    user: "-".into(),
                    action,
                    outcome: crate::audit::Outcome::Unauthenticated,
                    reason: reason.clone(),
                    client,
                    ..Default::default()
                };
                // Best effort: a failing audit must not turn a refusal into a different error.
                let _ = self.meta.propose_audited(crate::meta::Command::Audit, ev).await;
                tonic::Status::unauthenticated(reason)
            }
            Verdict::Suppress => tonic::Status::unauthenticated(reason),
            Verdict::Refuse { failures } => tonic::Status::resource_exhausted(format!(
                "{reason}; and {failures} authentications from {} failed in the last {} s, so further failures \
                 are only counted: fix the token and retry later",
                addr_key(&client),
                WINDOW.as_secs()
            )),
        }
    }
}

/// Writes one audit entry per [`SUMMARY_EVERY`] summarising the refused authentications
/// that were not audited one by one, until `shutdown`.
pub async fn run_summaries(services: super::Services, shutdown: crate::Shutdown) {
    let mut tick = tokio::time::interval(SUMMARY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = crate::wait_shutdown(shutdown.clone()) => true,
        };
        if let Some(s) = services.throttle.take_summary(Instant::now()) {
            tracing::warn!(refused = s.total, addresses = s.addresses, top = %s.detail(), "refused authentications suppressed from the audit log (summarised)");
            let ev = crate::audit::AuditEvent {
                user: "-".into(),
                action: crate::audit::AuditAction::AuthenticateSummary,
                outcome: crate::audit::Outcome::Unauthenticated,
                reason: s.reason(),
                client: if s.top.len() == 1 { s.top[0].0.clone() } else { "-".into() },
                detail: s.detail(),
                ..Default::default()
            };
            // At shutdown, do not wait long for a quorum that may be gone.
            let wait = if stopping { Duration::from_secs(2) } else { Duration::from_secs(30) };
            match tokio::time::timeout(wait, services.meta.propose_audited(crate::meta::Command::Audit, ev)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not write the summary of refused authentications to the audit log")
                }
                Err(_) => tracing::warn!("the summary of refused authentications was not committed in time"),
            }
        }
        if stopping {
            return;
        }
    }
}

/// A tower layer bounding the client requests a node handles at once (see the module
/// documentation). Peer calls pass without a permit.
#[derive(Clone)]
pub struct ClientLimit {
    permits: Arc<Semaphore>,
    throttle: Arc<Throttle>,
}

impl ClientLimit {
    pub fn new(max: usize, throttle: Arc<Throttle>) -> ClientLimit {
        ClientLimit { permits: Arc::new(Semaphore::new(max)), throttle }
    }
}

impl<S> tower::Layer<S> for ClientLimit {
    type Service = ClientLimitService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientLimitService { inner, limit: self.clone() }
    }
}

/// The service [`ClientLimit`] wraps around the node's routes.
#[derive(Clone)]
pub struct ClientLimitService<S> {
    inner: S,
    limit: ClientLimit,
}

/// Path prefix of the node-to-node service, exempt from the client limit.
const PEER_PATH: &str = "/custos.v1.Peer/";

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for ClientLimitService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        // The clone is ready only if polled; swap so the ready one serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if req.uri().path().starts_with(PEER_PATH) {
            return Box::pin(inner.call(req));
        }
        match self.limit.permits.clone().try_acquire_owned() {
            Ok(permit) => Box::pin(async move {
                let r = inner.call(req).await;
                drop(permit);
                r
            }),
            Err(_) => {
                self.limit.throttle.shed.inc();
                let status = tonic::Status::resource_exhausted(format!(
                    "this node is handling {CLIENT_CONCURRENCY_MAX} requests already; retry in a moment"
                ));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_without_port_and_ipv6_by_prefix() {
        assert_eq!(addr_key("127.0.0.1:5555"), "127.0.0.1");
        assert_eq!(addr_key("[2001:db8:1:2:3:4:5:6]:443"), "2001:db8:1:2::/64");
        assert_eq!(addr_key("[::ffff:10.0.0.1]:80"), "10.0.0.1");
        assert_eq!(addr_key("-"), "-");
    }

    #[test]
    fn a_flood_from_one_address_is_audited_a_few_times_then_summarised() {
        let t = Throttle::default();
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..1000).map(|_| t.on_failure("10.0.0.1:1000", now)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Audit).count(), AUDITED_PER_ADDR as usize);
        assert_eq!(verdicts[REFUSE_AFTER as usize], Verdict::Refuse { failures: REFUSE_AFTER + 1 });
        assert_eq!(verdicts[REFUSE_AFTER as usize - 1], Verdict::Suppress);
        assert_eq!(t.refused.get(), 1000);
        assert_eq!(t.suppressed.get(), 1000 - u64::from(AUDITED_PER_ADDR));
        let s = t.take_summary(now + SUMMARY_EVERY).unwrap();
        assert_eq!(s.total, 995);
        assert_eq!(s.top, vec![("10.0.0.1".to_string(), 995)]);
        assert!(
            s.reason().starts_with("995 refused authentications from 1 address in the last 10 s"),
            "{}",
            s.reason()
        );
        // Nothing new: no summary.
        assert_eq!(t.take_summary(now + SUMMARY_EVERY * 2), None);
        // A new window audits again.
        assert_eq!(t.on_failure("10.0.0.1:1001", now + WINDOW), Verdict::Audit);
    }

    #[test]
    fn many_addresses_share_one_budget_and_the_table_stays_bounded() {
        let t = Throttle::default();
        let now = Instant::now();
        let mut audited = 0;
        for i in 0..(TABLE_MAX as u32 + 1000) {
            let a = format!("10.{}.{}.{}:1", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            if t.on_failure(&a, now + Duration::from_micros(u64::from(i))) == Verdict::Audit {
                audited += 1;
            }
        }
        assert_eq!(audited, AUDITED_ALL);
        assert_eq!(t.tracked(), TABLE_MAX);
        let s = t.take_summary(now + Duration::from_secs(1)).unwrap();
        // Evicted addresses are still counted.
        assert_eq!(s.total, u64::from(TABLE_MAX as u32 + 1000 - AUDITED_ALL));
        assert_eq!(s.top.len(), SUMMARY_ADDRS);
        assert!(s.detail().contains("others: "), "{}", s.detail());
    }
}

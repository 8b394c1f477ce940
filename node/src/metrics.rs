//! The Prometheus endpoint: `GET /metrics` on `metrics_listen`, in the OpenMetrics text
//! format (`prometheus-client`).
//!
//! Counters that happen on the write path (segments and bytes ingested per camera,
//! commit latency) are counted where they happen ([`Ingest`], in the recorder). Everything else is a
//! gauge read from the node's state when Prometheus scrapes, so a scrape always shows
//! the present: Raft role and term, disks, replication and repair backlogs, backup
//! lag, camera state and open alarms.
//!
//! Plain HTTP with no authentication, like most exporters: bind it to a management
//! network or loopback. It shows counts and states, never footage, users or tokens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use prometheus_client::registry::Registry;

use crate::recorder::{label, Ingest, Labels};
use crate::server::Services;

/// Gauges refreshed on every scrape.
#[derive(Default)]
struct Gauges {
    camera_up: Family<Labels, Gauge>,
    camera_last_segment_age: Family<Labels, Gauge<f64, AtomicU64>>,
    standby_lag: Family<Labels, Gauge<f64, AtomicU64>>,
    standby_held_bytes: Family<Labels, Gauge>,
    raft_leader: Gauge,
    raft_term: Gauge,
    raft_applied: Gauge,
    segments: Gauge,
    under_replicated: Gauge,
    committed_under_replicated: Gauge,
    repair_copies: Gauge,
    disk_free: Gauge,
    disk_total: Gauge,
    disk_floor: Gauge,
    nodes_up: Gauge,
    nodes_down: Gauge,
    node_clock_offset: Family<Labels, Gauge<f64, AtomicU64>>,
    backup_pending: Gauge,
    backup_lag: Gauge<f64, AtomicU64>,
    backup_segments: Gauge,
    backup_objects: Gauge,
    backup_object_bytes: Gauge,
    backup_failing: Gauge,
    alarms_open: Family<Labels, Gauge>,
    scrub_segments: Gauge,
    scrub_bytes: Gauge,
    scrub_found: Family<Labels, Gauge>,
    scrub_repaired: Gauge,
    scrub_unrepaired: Gauge,
    scrub_passes: Gauge,
    worker_up: Family<Labels, Gauge>,
    worker_failed: Family<Labels, Gauge>,
}

/// The registry and the gauges behind it.
pub struct Metrics {
    registry: Registry,
    gauges: Gauges,
}

impl Metrics {
    /// Registers every metric; `ingest` is the recorder's.
    pub fn new(ingest: &Ingest, throttle: &crate::server::throttle::Throttle) -> Metrics {
        let mut r = Registry::with_prefix("custos");
        let g = Gauges::default();
        r.register(
            "auth_refused",
            "Refused authentications (bad, expired or revoked tokens; bad join tokens) on this node",
            throttle.refused.clone(),
        );
        r.register(
            "audit_suppressed",
            "Refused authentications counted in a periodic summary entry instead of audited one by one",
            throttle.suppressed.clone(),
        );
        r.register(
            "requests_shed",
            "Client requests refused because this node was handling its limit of requests at once",
            throttle.shed.clone(),
        );
        r.register("ingest_segments", "Segments sealed and stored by this node, per camera", ingest.segments.clone());
        r.register("ingest_bytes", "Plaintext bytes ingested by this node, per camera", ingest.bytes.clone());
        r.register(
            "commit_latency_seconds",
            "Time from proposing a batch of segments to its Raft commit",
            ingest.commit_latency.clone(),
        );
        r.register(
            "camera_up",
            "1 while the camera's footage is being committed, 0 when it is down",
            g.camera_up.clone(),
        );
        r.register(
            "camera_last_segment_age_seconds",
            "Seconds since the camera's newest committed segment ended",
            g.camera_last_segment_age.clone(),
        );
        r.register(
            "standby_lag_seconds",
            "On a camera's standby node: seconds of pictures held past the recorder's committed footage (what a \
             takeover now would commit; grows while the recorder stops committing)",
            g.standby_lag.clone(),
        );
        r.register(
            "standby_held_bytes",
            "On a camera's standby node: bytes of pictures held in memory for a takeover",
            g.standby_held_bytes.clone(),
        );
        r.register("raft_leader", "1 on the node that leads the metadata group", g.raft_leader.clone());
        r.register("raft_term", "Current Raft term", g.raft_term.clone());
        r.register("raft_applied_index", "Last Raft log index applied to the catalog", g.raft_applied.clone());
        r.register("segments", "Segments in the catalog", g.segments.clone());
        r.register(
            "repair_backlog_segments",
            "Segments below the replication factor at the leader's last repair pass",
            g.under_replicated.clone(),
        );
        r.register(
            "replication_backlog_segments",
            "Segments this node committed with fewer copies than the factor",
            g.committed_under_replicated.clone(),
        );
        r.register("repair_copies", "Copies repair made since this node started", g.repair_copies.clone());
        r.register("disk_free_bytes", "Free space for this node's blobs", g.disk_free.clone());
        r.register("disk_total_bytes", "Space for this node's blobs", g.disk_total.clone());
        r.register("disk_floor_bytes", "Free space below which this node takes no new copies", g.disk_floor.clone());
        r.register("nodes_up", "Cluster members answering this node", g.nodes_up.clone());
        r.register("nodes_down", "Cluster members not answering this node", g.nodes_down.clone());
        r.register(
            "node_clock_offset_seconds",
            "How far each member's wall clock is from the cluster's median clock, as this node measures it",
            g.node_clock_offset.clone(),
        );
        r.register("backup_pending_segments", "Segments waiting for the backup bucket", g.backup_pending.clone());
        r.register(
            "backup_lag_seconds",
            "Age of the oldest segment waiting for the backup bucket (0 when none waits)",
            g.backup_lag.clone(),
        );
        r.register("backup_segments", "Segments held in the backup bucket", g.backup_segments.clone());
        r.register("backup_objects", "Pack objects in the backup bucket", g.backup_objects.clone());
        r.register("backup_object_bytes", "Bytes of pack objects in the backup bucket", g.backup_object_bytes.clone());
        r.register("backup_failing", "1 while the backup worker's last attempt failed", g.backup_failing.clone());
        r.register("alarms_open", "Open alarms by kind", g.alarms_open.clone());
        r.register("scrub_passes", "Full scrub passes over this node's blobs since it started", g.scrub_passes.clone());
        r.register(
            "scrub_verified_segments",
            "Blobs the scrubber verified since this node started",
            g.scrub_segments.clone(),
        );
        r.register(
            "scrub_verified_bytes",
            "Bytes the scrubber verified since this node started",
            g.scrub_bytes.clone(),
        );
        r.register(
            "scrub_found",
            "Damaged blobs the scrubber found, by problem (corrupt, missing)",
            g.scrub_found.clone(),
        );
        r.register(
            "scrub_repaired",
            "Damaged blobs the scrubber replaced with a verified copy",
            g.scrub_repaired.clone(),
        );
        r.register("scrub_unrepaired", "Damaged blobs with no verified copy found yet", g.scrub_unrepaired.clone());
        r.register(
            "worker_up",
            "This node's long-running loops by worker: 1 running, 0 not (stopped, finished or failed)",
            g.worker_up.clone(),
        );
        r.register(
            "worker_failed",
            "1 for a worker that failed (panicked): a bug; the node runs on without it until restarted",
            g.worker_failed.clone(),
        );
        Metrics { registry: r, gauges: g }
    }

    /// Reads the node's state into the gauges and renders everything.
    pub async fn render(&self, s: &Services) -> Result<String, crate::Error> {
        let g = &self.gauges;
        let m = s.meta.metrics();
        g.raft_leader.set(i64::from(m.current_leader == Some(s.meta.node_id)));
        g.raft_term.set(m.current_term as i64);
        g.raft_applied.set(m.last_applied.map(|l| l.index).unwrap_or(0) as i64);
        let seen = s.alarm_sources().observe().await?;
        let down_after = s.alarms.camera_down_after_ms(seen.segment_target_ms);
        g.camera_up.clear();
        g.camera_last_segment_age.clear();
        for c in &seen.cameras {
            let age_ms = seen.now_ms - c.last_end_ms.unwrap_or(c.added_ms);
            let l = label("camera", &c.id);
            g.camera_up.get_or_create(&l).set(i64::from(age_ms <= down_after));
            g.camera_last_segment_age.get_or_create(&l).set(age_ms.max(0) as f64 / 1000.0);
        }
        g.standby_lag.clear();
        g.standby_held_bytes.clear();
        let standing: Vec<_> =
            s.states.standing.lock().expect("standing").iter().map(|(id, c)| (id.clone(), c.clone())).collect();
        for (id, ctl) in standing.iter().filter(|(_, c)| c.is_standby()) {
            let l = label("camera", id);
            g.standby_held_bytes.get_or_create(&l).set(ctl.held().0 as i64);
            if let Some(lag) = ctl.lag_ms() {
                g.standby_lag.get_or_create(&l).set(lag as f64 / 1000.0);
            }
        }
        let members: Vec<_> = seen.nodes.iter().filter(|n| !n.node.retired).collect();
        g.nodes_up.set(members.iter().filter(|n| n.alive).count() as i64);
        g.nodes_down.set(members.iter().filter(|n| !n.alive).count() as i64);
        g.node_clock_offset.clear();
        if let Some(median) = crate::alarms::median_offset(&seen.nodes) {
            for n in members.iter().filter(|n| n.alive) {
                if let Some(off) = n.clock_offset_ms {
                    let l = label("node", &n.node.id.to_string());
                    g.node_clock_offset.get_or_create(&l).set((off - median) as f64 / 1000.0);
                }
            }
        }
        let own = s.health.get(s.meta.node_id);
        g.disk_free.set(own.disk_free as i64);
        g.disk_total.set(own.disk_total as i64);
        g.disk_floor.set(own.disk_floor as i64);
        let under = s.repair_stats.under_replicated.load(Ordering::Relaxed);
        g.under_replicated.set(if under == u64::MAX { 0 } else { under as i64 });
        g.committed_under_replicated.set(s.stats.segments_under_replicated.load(Ordering::Relaxed) as i64);
        g.repair_copies.set(s.repair_stats.copies_made.load(Ordering::Relaxed) as i64);
        let (segments, (backed, _), (objects, object_bytes), open) =
            s.meta.read(|c| Ok((c.segment_count()?, c.backed_up()?, c.backup_objects()?, c.open_alarms()?))).await?;
        g.segments.set(segments as i64);
        g.backup_segments.set(backed as i64);
        g.backup_objects.set(objects as i64);
        g.backup_object_bytes.set(object_bytes as i64);
        if let Some(b) = &seen.backup {
            g.backup_pending.set(b.waiting as i64);
            let lag = b.oldest_waiting_end_ms.map(|t| (seen.now_ms - t).max(0)).unwrap_or(0);
            g.backup_lag.set(lag as f64 / 1000.0);
            g.backup_failing.set(i64::from(b.last_error.is_some()));
        }
        for kind in crate::alarms::AlarmKind::ALL {
            let n = open.iter().filter(|a| a.kind == *kind).count();
            g.alarms_open.get_or_create(&label("kind", kind.as_str())).set(n as i64);
        }
        let sc = &s.health.workers.scrub;
        g.scrub_passes.set(sc.passes.load(Ordering::Relaxed) as i64);
        g.scrub_segments.set(sc.segments.load(Ordering::Relaxed) as i64);
        g.scrub_bytes.set(sc.bytes.load(Ordering::Relaxed) as i64);
        g.scrub_found.get_or_create(&label("problem", "corrupt")).set(sc.corrupt.load(Ordering::Relaxed) as i64);
        g.scrub_found.get_or_create(&label("problem", "missing")).set(sc.missing.load(Ordering::Relaxed) as i64);
        g.scrub_repaired.set(sc.repaired.load(Ordering::Relaxed) as i64);
        g.scrub_unrepaired.set(sc.unrepaired_count() as i64);
        for (name, state) in s.health.workers.states() {
            let l = label("worker", name);
            g.worker_up.get_or_create(&l).set(i64::from(state == crate::worker::WorkerState::Running));
            g.worker_failed.get_or_create(&l).set(i64::from(state == crate::worker::WorkerState::Failed));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| crate::Error::Internal(e.to_string()))?;
        Ok(out)
    }
}

/// Serves `GET /metrics` on `addr` until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Services,
    metrics: std::sync::Arc<Metrics>,
    shutdown: crate::Shutdown,
) {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (services, metrics) = (services.clone(), metrics.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let (services, metrics) = (services.clone(), metrics.clone());
                async move { Ok::<_, Infallible>(respond(req, &services, &metrics).await) }
            });
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = conn.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn respond(req: http::Request<hyper::body::Incoming>, s: &Services, m: &Metrics) -> http::Response<String> {
    let reply = |status: http::StatusCode, ctype: &str, body: String| {
        let mut r = http::Response::new(body);
        *r.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != http::Method::GET || req.uri().path() != "/metrics" {
        return reply(http::StatusCode::NOT_FOUND, "text/plain", "custos-node serves GET /metrics only\n".into());
    }
    match m.render(s).await {
        Ok(text) => reply(http::StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
        Err(e) => reply(http::StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("metrics unavailable: {e}\n")),
    }
}

/// Binds the metrics address, saying what to change when it is taken.
pub async fn bind(addr: SocketAddr) -> crate::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::Error::Internal(format!(
            "cannot listen for metrics on {addr}: {e}. Change metrics_listen in custos.toml (or remove it to serve no metrics)"
        ))
    })
}

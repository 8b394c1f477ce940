//! # custos-node
//!
//! The Custos recorder and storage daemon. A segment's life, and the module that owns
//! each step:
//!
//! | step | module |
//! |---|---|
//! | camera → access units → keyframe-cut MPEG-TS segments | [`ingest`] |
//! | BLAKE3 + age sealing, write-once blob store, pending records | [`segment`] |
//! | seal/store on the blocking pool, batched catalog commits, crash recovery | [`recorder`] |
//! | Raft (openraft) over RocksDB: log, state machine, catalog reads | [`meta`] |
//! | peers over mutual TLS, placement, replication, failover, repair | [`cluster`] |
//! | users, roles, tokens, the authorisation table | [`access`] |
//! | retention policies, the 30-day floor, holds (pure rules) | [`retention`] |
//! | the expiry worker: the only deletion path, with receipts | [`expiry`] |
//! | evidence exports: workflow rules, signed manifests | [`export`] |
//! | the hash-chained audit log | [`audit`] |
//! | continuous backup of sealed blobs to S3 | [`backup`] |
//! | gRPC API: cameras, search, verified fetch, status, admin, audit | [`server`] |
//!
//! [`run`] starts the pieces in that order and stops them in reverse when the shutdown
//! signal fires.

pub mod access;
pub mod alarms;
pub mod audit;
pub mod backup;
pub mod clock;
pub mod clock_jump;
pub mod cluster;
pub mod config;
pub mod error;
pub mod expiry;
pub mod export;
pub mod files;
pub mod ingest;
pub mod init;
pub mod meta;
pub mod metrics;
pub mod picture;
pub mod recorder;
pub mod report;
pub mod retention;
pub mod scrub;
pub mod seal;
pub mod segment;
pub mod server;
pub mod shifts;
pub mod standby;
pub mod start;
pub mod tls;
pub mod web;
pub mod webhooks;
pub mod worker;
pub mod zones;

#[cfg(test)]
mod layers;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tracing::Instrument;

pub use config::NodeConfig;
pub use error::{Error, Result};

use crate::meta::Meta;
use crate::recorder::SealContext;
use crate::segment::pending::PendingDir;
use crate::segment::{BlobStore, Keys};

/// How often the supervisor re-reads the camera assignments even without a change signal.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);
/// How long shutdown waits for the last segments to commit.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A shutdown signal: `true` once shutdown has begun.
pub type Shutdown = watch::Receiver<bool>;

pub(crate) async fn wait_shutdown(mut s: Shutdown) {
    while !*s.borrow() {
        if s.changed().await.is_err() {
            return;
        }
    }
}

/// Runs the node until `shutdown` fires, then stops every part in reverse order.
pub async fn run(config: NodeConfig, shutdown: Shutdown) -> Result<()> {
    run_with_clock(config, shutdown, Arc::new(clock::SystemClock)).await
}

/// [`run`] on a given clock. `custos-node` always uses the system clock; only the test
/// harness's simulated node (`custos-sim-node`) passes another.
pub async fn run_with_clock(config: NodeConfig, shutdown: Shutdown, clock: clock::SharedClock) -> Result<()> {
    Node::open(config, clock).await?.run(shutdown).await
}

/// A node opened from its config: keys read, blob store and catalog open, listeners
/// bound, services built; nothing running but Raft. [`Node::run`] starts the rest.
pub struct Node {
    config: NodeConfig,
    clock: clock::SharedClock,
    keys: Arc<Keys>,
    store: Arc<BlobStore>,
    pending: Arc<PendingDir>,
    peers: cluster::peers::Peers,
    meta: Meta,
    health: cluster::health::Health,
    replicator: cluster::replicate::Replicator,
    services: server::Services,
    tls_files: Option<(String, String, String)>,
    listeners: Option<Listeners>,
    cluster_keys: backup::snapshot::ClusterKeys,
}

impl Node {
    /// Opens everything `config` names. Every step that can fail on a bad config, a busy
    /// port or a missing file comes before the catalog opens, so a refused start leaves
    /// nothing running. Raft runs from here on: call [`Node::run`], which stops it on
    /// every path.
    pub async fn open(config: NodeConfig, clock: clock::SharedClock) -> Result<Node> {
        let data = config.data_dir.clone();
        tracing::info!(node_id = config.node_id, campus = %config.campus, data_dir = %data.display(), listen = %config.listen, "custos-node starting");
        tighten_data_dir(&data)?;
        if config.allow_test_sources {
            tracing::warn!("allow_test_sources = true: this node records file:// and test:// sources (trials only; such footage comes from no camera)");
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io("listen on", config.listen.to_string(), e))?;

        let identity_path = config.identity_path();
        let identity = std::fs::read_to_string(&identity_path)
            .map_err(|e| Error::io("read archive identity", &identity_path, e))?;
        let keys = Arc::new(Keys::new(&config.archive_recipients, &identity)?);

        let blob_root = data.join("blobs");
        let (store, swept) = tokio::task::spawn_blocking(move || BlobStore::open(&blob_root))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let store = Arc::new(store);
        tracing::info!(swept_temp_files = swept, "blob store open");
        let pending = Arc::new(PendingDir::open(&data.join("pending"))?);

        // TLS: the same certificate serves clients and authenticates this node to peers.
        let read = |p: &std::path::Path| {
            let p = config.resolve(p);
            std::fs::read_to_string(&p).map_err(|e| Error::io("read TLS file", p, e))
        };
        let (tls_files, pki) = match &config.tls {
            Some(tls) => {
                let files = (read(&tls.cert_file)?, read(&tls.key_file)?, read(&tls.ca_file)?);
                let ca_key = tls.ca_file.with_file_name("ca.key");
                let pki = read(&ca_key).ok().map(|k| server::ClusterPki { ca_pem: files.2.clone(), ca_key_pem: k });
                (Some(files), pki)
            }
            None => (None, None),
        };
        let peers = cluster::peers::Peers::new(tls_files.as_ref().map(|(cert, key, ca)| cluster::peers::PeerTls {
            ca_pem: ca.clone(),
            cert_pem: cert.clone(),
            key_pem: key.clone(),
        }));

        let signing_path = data.join(export::SIGNING_KEY_FILE);
        let signing_pkcs8 = match std::fs::read(&signing_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %signing_path.display(), "no export signing key: this node cannot run exports");
                None
            }
            Err(e) => return Err(Error::io("read the export signing key", &signing_path, e)),
        };
        let signing = match &signing_pkcs8 {
            Some(b) => Some(Arc::new(
                custos_evidence::export::SigningKey::from_pkcs8(b)
                    .map_err(|e| Error::Internal(format!("{}: {e}", signing_path.display())))?,
            )),
            None => None,
        };
        let cluster_keys = backup::snapshot::ClusterKeys {
            archive_identity: identity.clone(),
            archive_recipients: config.archive_recipients.clone(),
            ca_pem: pki.as_ref().map(|p| p.ca_pem.clone()).unwrap_or_default(),
            ca_key_pem: pki.as_ref().map(|p| p.ca_key_pem.clone()).unwrap_or_default(),
            signing_key_pkcs8: signing_pkcs8.clone().unwrap_or_default(),
            segment_target_ms: config.segment_target_ms,
        };
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(metrics::bind(addr).await?),
            None => None,
        };
        let web_listener =
            web::Listener::bind(&config, tls_files.as_ref().map(|(c, k, _)| (c.as_str(), k.as_str()))).await?;

        // The last step: from here on Raft runs, and only `run` stops it.
        let network = cluster::network::NetworkFactory { peers: peers.clone() };
        let meta = Meta::open(config.node_id, &data, clock.clone(), network, config.raft_snapshot_every).await?;
        let health = cluster::health::Health::new(config.node_id, &data).with_limits(cluster::health::DiskLimits {
            floor: config.free_space_floor_mib << 20,
            capacity: (config.capacity_mib > 0).then(|| (config.capacity_mib << 20, store.clone())),
        });
        let replicator = cluster::replicate::Replicator {
            meta: meta.clone(),
            peers: peers.clone(),
            health: health.clone(),
            factor: config.replication_factor,
        };
        let cluster_info = server::ClusterInfo {
            campus: config.campus.clone(),
            pki,
            archive_recipients: config.archive_recipients.clone(),
            archive_identity: identity,
            segment_target_ms: config.segment_target_ms,
            signing,
            signing_pkcs8,
        };
        let mut services = server::Services::new(
            meta.clone(),
            (store.clone(), keys.clone()),
            clock.clone(),
            replicator.clone(),
            cluster_info,
        );
        services.backup = config.backup.clone();
        services.alarms = config.alarms.clone();
        services.duty = config.duty.clone();
        services.allow_test_sources = config.allow_test_sources;
        services.hospital = config.hospital.clone();
        Ok(Node {
            config,
            clock,
            keys,
            store,
            pending,
            peers,
            meta,
            health,
            replicator,
            services,
            tls_files,
            listeners: Some(Listeners { api: listener, metrics: metrics_listener, web: web_listener }),
            cluster_keys,
        })
    }

    /// Runs the node until `outer` fires or the metadata store fails: serves the API,
    /// waits for the metadata group, recovers what the last stop left, starts the workers
    /// and the cameras; then stops them all in reverse order, on every path.
    pub async fn run(mut self, outer: Shutdown) -> Result<()> {
        let Listeners { api, metrics: metrics_listener, web: web_listener } =
            self.listeners.take().ok_or_else(|| Error::Internal("a node runs once".into()))?;
        // Every part stops on the caller's signal, or when the metadata store fails for
        // good (see `watch_metadata_store`).
        let (stop_tx, shutdown) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let forward = stop_tx.clone();
        tokio::spawn(async move {
            wait_shutdown(outer).await;
            let _ = forward.send(true);
        });
        let fatal = tokio::spawn(watch_metadata_store(self.meta.clone(), stop_tx.clone(), shutdown.clone()));

        // API and peer services start before Raft has a leader: the leader must reach this
        // node to bring it up to date.
        let server = match self.serve_api(api, shutdown.clone()) {
            Ok(s) => tokio::spawn(s),
            Err(e) => {
                self.meta.shutdown().await;
                return Err(e);
            }
        };
        let ready = tokio::select! {
            r = self.start() => r,
            _ = wait_shutdown(shutdown.clone()) => Err(Error::Unavailable("shut down before the node was ready".into())),
        };
        if let Err(e) = ready {
            let _ = stop_tx.send(true);
            let _ = server.await;
            self.meta.shutdown().await;
            return Err(e);
        }

        let workers = self.spawn_workers(shutdown.clone(), web_listener, metrics_listener);
        let recording = match self.start_recording(shutdown.clone()) {
            Ok(r) => r,
            Err(e) => {
                let _ = stop_tx.send(true);
                let _ = server.await;
                workers.stop().await;
                self.meta.shutdown().await;
                return Err(e);
            }
        };

        let served = server.await.map_err(|e| Error::Internal(e.to_string()));
        // The API may also have ended on its own (an error): everything else stops too.
        let _ = stop_tx.send(true);
        tracing::info!("shutting down: API closed");
        // Reverse order: the workers and the cameras stop, the last segments commit, then Raft.
        workers.stop().await;
        recording.stop().await;
        self.meta.shutdown().await;
        let stats = &self.services.stats;
        tracing::info!(
            sealed = stats.segments_sealed.load(std::sync::atomic::Ordering::Relaxed),
            committed = stats.segments_committed.load(std::sync::atomic::Ordering::Relaxed),
            "custos-node stopped"
        );
        if let Some(e) = fatal.await.ok().flatten() {
            return Err(e);
        }
        served?.map_err(|e| Error::Internal(format!("API server: {e}")))
    }

    /// The gRPC API and the peer service, on the listener `open` bound.
    fn serve_api(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: Shutdown,
    ) -> Result<impl std::future::Future<Output = std::result::Result<(), tonic::transport::Error>>> {
        tracing::info!(listen = %self.config.listen, "serving the client API and the peer service");
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let mut builder = tonic::transport::Server::builder();
        if let Some((cert, key, ca)) = &self.tls_files {
            let identity = tonic::transport::Identity::from_pem(cert, key);
            // Clients authenticate with tokens; nodes also present certificates, which the
            // peer service requires. A certificate from another CA fails the handshake.
            let tls = tonic::transport::ServerTlsConfig::new()
                .identity(identity)
                .client_ca_root(tonic::transport::Certificate::from_pem(ca))
                .client_auth_optional(true);
            builder = builder.tls_config(tls).map_err(|e| Error::Internal(format!("TLS configuration: {e}")))?;
        } else {
            tracing::warn!("serving the client API WITHOUT TLS (insecure_plaintext = true): for local development only; this node cannot join a cluster");
        }
        let services = &self.services;
        Ok(builder
            // Every log line a call causes names the call.
            .trace_fn(|req| tracing::info_span!("request", method = %req.uri().path()))
            // Bounds: requests at once per connection (queued) and client requests at once
            // on the node (refused past it; peer calls exempt). See `server/throttle.rs`.
            .concurrency_limit_per_connection(server::throttle::PER_CONNECTION_MAX)
            .layer(server::throttle::ClientLimit::new(
                server::throttle::CLIENT_CONCURRENCY_MAX,
                services.throttle.clone(),
            ))
            .add_service(services.clone().footage())
            .add_service(services.clone().admin())
            .add_service(services.clone().holds())
            .add_service(services.clone().cluster_service())
            .add_service(services.clone().peer_service())
            .add_service(services.clone().join_service())
            .add_service(services.clone().exports_service())
            .add_service(services.clone().operations_service())
            .add_service(services.clone().audit_service())
            .serve_with_incoming_shutdown(incoming, wait_shutdown(shutdown)))
    }

    /// Waits for the metadata group, founds it or registers this node where this node is
    /// the first, and recommits the segments the last stop left pending.
    async fn start(&self) -> Result<()> {
        let (meta, config, data) = (&self.meta, &self.config, &self.config.data_dir);
        let restored = data.join(backup::restore::RESTORED_FILE);
        if data.join(init::BOOTSTRAP_FILE).exists() || restored.exists() {
            meta.bootstrap(config.advertise_addr()).await?;
        }
        let mut waited = 0u64;
        loop {
            match meta.wait_for_leader(Duration::from_secs(10)).await {
                Ok(leader) => {
                    tracing::info!(leader, term = meta.metrics().current_term, "metadata group ready");
                    break;
                }
                // Raft's core stopped (the metadata store failed): the node is stopping.
                Err(e) if meta.metrics().running_state.is_err() => return Err(e),
                Err(_) => {
                    waited += 10;
                    tracing::warn!(waited_s = waited, "no leader yet: waiting for the cluster to reach this node (is it a member? are most nodes up?)");
                }
            }
        }
        if restored.exists() {
            // Joining nodes must get the restored catalog as a snapshot, not replay a log
            // that never contained it.
            meta.compact_now().await?;
            tracing::info!("founded a new metadata group on the catalog restored from backup");
            std::fs::remove_file(&restored).map_err(|e| Error::io("remove", &restored, e))?;
        }
        start::register_founder(meta, config, data).await?;
        if meta.is_leader() {
            // A cluster of one voter (founded by `custos-node init`, or restored) runs this
            // binary's format at once; a larger one once its leader has heard every voter.
            if let Err(e) = meta.raise_cluster_version(|id| self.health.get(id).format_max).await {
                tracing::warn!(error = %e, "could not raise the cluster version yet; the leader retries");
            }
        }
        start::bootstrap_admin(meta, data, &self.clock).await?;
        start::seed_cameras(meta, config).await?;
        let rec = recorder::recover(meta, self.store.clone(), self.pending.clone()).await?;
        if rec != recorder::Recovery::default() {
            tracing::info!(
                recommitted = rec.recommitted,
                already_committed = rec.already_committed,
                dropped_unacknowledged = rec.dropped,
                "recovered segments left by the last stop"
            );
        }
        Ok(())
    }

    /// Starts every long-running loop but the cameras' write path.
    fn spawn_workers(
        &self,
        shutdown: Shutdown,
        web_listener: Option<web::Listener>,
        metrics_listener: Option<tokio::net::TcpListener>,
    ) -> worker::Workers {
        let (config, meta, health, services) = (&self.config, &self.meta, &self.health, &self.services);
        let mut w = worker::Workers::new(health.workers.clone(), shutdown);
        // This node's certificate key, pinned so that no other certificate speaks for it.
        if let Some((cert, _, _)) = &self.tls_files {
            let (meta, cert) = (meta.clone(), cert.clone());
            w.spawn(worker::task("pin-key", move |s| start::pin_own_key(meta, cert, s)));
        }
        // Refused authentications beyond the audit budget: one summary entry per period.
        let s = services.clone();
        w.spawn(worker::task("refusal-summaries", move |stop| server::throttle::run_summaries(s, stop)));
        // Cluster duties: pings everywhere; membership, failover and repair on the leader.
        let (h, m, p) = (health.clone(), meta.clone(), self.peers.clone());
        w.spawn(worker::task("pings", move |s| h.run(m, p, s)));
        // This node's own clock: a forward jump stops expiry until it is confirmed.
        w.spawn(clock_jump::Watcher {
            meta: meta.clone(),
            watch: health.workers.clock_jump.clone(),
            data_dir: config.data_dir.clone(),
            backup: config.backup.clone(),
        });
        w.spawn(cluster::leader::LeaderDuties {
            meta: meta.clone(),
            health: health.clone(),
            replicator: self.replicator.clone(),
            store: self.store.clone(),
            stats: services.repair_stats.clone(),
            repair_after_down: Duration::from_secs(config.repair_after_down_s),
            cameras_changed: services.cameras_changed.clone(),
            standby_all: config.standby_all_cameras,
        });
        let notifier = webhooks::Notifier::start(config.alarms.webhooks.clone(), w.shutdown());
        w.spawn(alarms::AlarmWatch { sources: services.alarm_sources(), cfg: config.alarms.clone(), notifier });
        w.spawn(scrub::Scrubber {
            meta: meta.clone(),
            store: self.store.clone(),
            replicator: self.replicator.clone(),
            stats: health.workers.scrub.clone(),
            cfg: config.scrub.clone(),
            backup: config.backup.clone(),
        });
        // Picture checks of the cameras this node records: black, covered, blurred, turned.
        w.spawn(picture::Checker {
            meta: meta.clone(),
            store: self.store.clone(),
            keys: self.keys.clone(),
            replicator: self.replicator.clone(),
            watch: health.workers.picture.clone(),
            every: Duration::from_secs(config.picture_check_every_s),
        });
        // The web console, over HTTPS with this node's certificate.
        if let Some(l) = web_listener {
            let s = services.clone();
            w.spawn(worker::task("console", move |stop| l.serve(s, stop)));
        }
        if let Some(l) = metrics_listener {
            let m = Arc::new(metrics::Metrics::new(&services.stats.ingest, &services.throttle));
            tracing::info!(addr = ?l.local_addr().ok(), "serving Prometheus metrics at /metrics");
            let s = services.clone();
            w.spawn(worker::task("metrics", move |stop| metrics::serve(l, s, m, stop)));
        }
        // Backup: the leader uploads queued blobs.
        if let Some(cfg) = config.backup.clone() {
            w.spawn(backup::BackupWorker {
                cfg,
                meta: meta.clone(),
                store: self.store.clone(),
                replicator: self.replicator.clone(),
                keys: self.keys.clone(),
                cluster_keys: self.cluster_keys.clone(),
                state: services.backup_state.clone(),
            });
        }
        // Retention: expiry on the leader, blob removal from receipts everywhere.
        let (m, h, st) = (meta.clone(), health.clone(), self.store.clone());
        let (cursor, every) = (config.data_dir.join("expiry.cursor"), Duration::from_secs(config.expiry_every_s));
        w.spawn(worker::task("expiry", move |s| expiry::run(m, h, st, cursor, every, s)));
        // The daily seal, on the leader, by a node that holds the signing key.
        if let Some(key) = services.cluster.signing.clone() {
            w.spawn(seal::Sealer {
                meta: meta.clone(),
                health: health.clone(),
                key,
                every: Duration::from_secs(config.seal_every_s),
                settle_ms: config.alarms.camera_down_after_ms(config.segment_target_ms),
            });
        }
        w
    }

    /// The write path: a sealer per camera → replicas → the committer; the supervisor
    /// thread owns the GStreamer pipelines, and the assigner tells it which cameras to run.
    fn start_recording(&self, shutdown: Shutdown) -> Result<Recording> {
        let (config, stats) = (&self.config, &self.services.stats);
        let stopping = Arc::new(AtomicBool::new(false));
        let (commit_tx, commit_rx) = mpsc::channel(recorder::COMMIT_QUEUE);
        let committer = tokio::spawn(recorder::run_committer(
            commit_rx,
            self.meta.clone(),
            self.pending.clone(),
            stopping.clone(),
            stats.clone(),
            Some(recorder::SkewCheck { health: self.health.clone(), bound_ms: config.alarms.clock_skew_ms }),
        ));
        let seal_ctx = Arc::new(SealContext {
            node_id: config.node_id,
            keys: self.keys.clone(),
            store: self.store.clone(),
            pending: self.pending.clone(),
        });
        let handle = tokio::runtime::Handle::current();
        let (stats2, replicator) = (stats.clone(), self.replicator.clone());
        let on_new_camera = Box::new(move |camera: &str| {
            let (tx, rx) = mpsc::channel(ingest::SEGMENT_QUEUE_PER_CAMERA);
            let sealer =
                recorder::run_sealer(rx, seal_ctx.clone(), Some(replicator.clone()), commit_tx.clone(), stats2.clone());
            handle.spawn(sealer.instrument(tracing::info_span!("camera", id = %camera)));
            tx
        });
        let mut supervisor = ingest::Supervisor::new(
            config.segment_target_ms,
            self.services.states.clone(),
            on_new_camera,
            self.clock.clone(),
            config.allow_test_sources,
            config.rtsp_receiver,
        )
        .map_err(Error::Internal)?;
        let standing = self.services.states.standing.clone();
        let (assign_tx, assign_rx) = std::sync::mpsc::channel::<Option<BTreeMap<String, ingest::Assignment>>>();
        let supervisor = std::thread::Builder::new()
            .name("ingest-supervisor".into())
            .spawn(move || {
                while let Ok(Some(wanted)) = assign_rx.recv() {
                    supervisor.reconcile(&wanted);
                }
                supervisor.stop_all();
            })
            .map_err(|e| Error::Internal(format!("spawning the ingest supervisor: {e}")))?;
        let assigner = tokio::spawn(
            assign_cameras(
                self.meta.clone(),
                assign_tx,
                self.services.cameras_changed.clone(),
                standing.clone(),
                shutdown.clone(),
            )
            .instrument(tracing::info_span!("worker", name = "camera-assigner")),
        );
        tokio::spawn(
            standby::watch(
                self.meta.clone(),
                self.health.clone(),
                self.services.states.clone(),
                standing,
                config.segment_target_ms,
                shutdown,
            )
            .instrument(tracing::info_span!("worker", name = "standby-watch")),
        );
        Ok(Recording { assigner, supervisor, committer, stopping })
    }
}

/// The running write path.
struct Recording {
    assigner: tokio::task::JoinHandle<()>,
    supervisor: std::thread::JoinHandle<()>,
    committer: tokio::task::JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

impl Recording {
    /// Waits for the cameras to stop (the assigner tells the supervisor on shutdown) and
    /// their last segments to commit, up to [`DRAIN_TIMEOUT`]; what does not commit stays
    /// pending for the next start.
    async fn stop(self) {
        let _ = self.assigner.await;
        let supervisor = self.supervisor;
        let _ = tokio::task::spawn_blocking(move || supervisor.join()).await;
        tracing::info!("cameras stopped; committing the last segments");
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, self.committer).await.is_ok();
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        if !drained {
            tracing::warn!("last segments did not commit in time; they stay pending and commit at next start");
        }
    }
}

/// The listeners `open` bound, handed to their servers by `run`.
struct Listeners {
    api: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    web: Option<web::Listener>,
}

/// Fail-stop for the metadata store. When a Raft log or state-machine write fails (the
/// disk is full or failing), openraft stops this node's Raft core for good, and a node
/// that kept serving without it would look alive while it can neither commit nor vote.
/// So the whole node stops, with an error naming the cause, and exits non-zero; the
/// service manager restarts it (`Restart=on-failure`), and once the disk has room again
/// it rejoins and catches up from the others. Acknowledged footage is never at risk: it
/// was committed by a majority before it was acknowledged.
async fn watch_metadata_store(meta: Meta, stop: Arc<watch::Sender<bool>>, shutdown: Shutdown) -> Option<Error> {
    let mut m = meta.metrics_watch();
    let mut stopping = std::pin::pin!(wait_shutdown(shutdown));
    loop {
        let failed = match &m.borrow().running_state {
            Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(cause) = failed {
            let full = cause.contains("No space left") || cause.contains("os error 28");
            let hint = if full {
                "the data disk is full: free space on it; the node restarts under its service manager and catches up"
            } else {
                "check the data disk (dmesg, SMART); the node restarts under its service manager and catches up"
            };
            tracing::error!(error = %cause, "FATAL: the metadata store failed; stopping this node: {hint}");
            let _ = stop.send(true);
            return Some(Error::Unavailable(format!("the metadata store failed ({cause}); {hint}")));
        }
        tokio::select! {
            changed = m.changed() => if changed.is_err() { return None },
            _ = &mut stopping => return None,
        }
    }
}

/// Ends the process after [`run`] returned: waits for the runtime's last tasks (blocking
/// catalog reads, Raft's storage tasks), then exits without running C++ static
/// destructors. RocksDB's background threads can still touch its static mutexes while
/// `exit` destroys them, which aborts the process ("pthread lock: Invalid argument")
/// after an otherwise clean stop. Everything is durable by then: every Raft append was
/// synced, and the state machine's writes ride the same WAL. An error is printed and
/// makes the exit status 1, so a service manager restarts the node.
pub fn exit_after_stop(rt: tokio::runtime::Runtime, result: Result<()>) -> ! {
    use std::io::Write;
    rt.shutdown_timeout(Duration::from_secs(5));
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit(2) ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Sends the set of cameras this node should record or stand by for to the supervisor
/// whenever it may have changed; sends `None` at shutdown.
async fn assign_cameras(
    meta: Meta,
    tx: std::sync::mpsc::Sender<Option<BTreeMap<String, ingest::Assignment>>>,
    changed: Arc<Notify>,
    standing: ingest::Standing,
    shutdown: Shutdown,
) {
    let node = meta.node_id;
    let mut stop = std::pin::pin!(wait_shutdown(shutdown));
    loop {
        // Cameras this node held pictures for and now records: their footage resumes
        // where the catalog's ends (the takeover's seam).
        let held: Vec<String> = standing
            .lock()
            .expect("standing")
            .iter()
            .filter(|(_, c)| c.is_standby())
            .map(|(id, _)| id.clone())
            .collect();
        let read = meta
            .read(move |c| {
                let cams = c.cameras()?;
                let standbys = c.standbys()?;
                let mut wanted = BTreeMap::new();
                for cam in cams {
                    let standby = standbys.get(&cam.id).and_then(|s| s.node) == Some(node);
                    if cam.recorder != node && !standby {
                        continue;
                    }
                    let last_end_ms = match cam.recorder == node {
                        true => c.last_segment(&cam.id)?.map(|s| s.end_ms),
                        false => None,
                    };
                    let resume_ms = last_end_ms.filter(|_| held.contains(&cam.id));
                    wanted.insert(
                        cam.id,
                        ingest::Assignment {
                            source: cam.source,
                            standby: standby && cam.recorder != node,
                            resume_ms,
                            last_end_ms,
                        },
                    );
                }
                Ok(wanted)
            })
            .await;
        match read {
            Ok(wanted) => {
                // Sent even when unchanged: reconciling also restarts a dead pipeline thread.
                if tx.send(Some(wanted)).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read camera assignments"),
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
    let _ = tx.send(None);
}

/// Makes everything this process creates owner-only (umask 0077): keys, the config file,
/// the catalog's RocksDB files, blobs, pending records. `custos-node` calls it first
/// thing; the systemd unit sets the same (`UMask=0077`).
pub fn owner_only_umask() {
    // SAFETY: umask(2) only sets this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and missing parents) and makes it owner-only (mode 0700), also when it
/// existed: it holds the cluster's keys and every camera's credentials.
pub fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io("chmod 0700", dir, e))
}

/// Makes the data directory owner-only if it is not, saying so.
fn tighten_data_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).map_err(|e| Error::io("inspect", dir, e))?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(data_dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory was readable by others; made it owner-only (0700)");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("chmod 0700", dir, e))?;
    }
    Ok(())
}

//! Metadata: the Raft group (openraft 0.9) whose state machine holds the catalog.
//!
//! [`Meta::open`] opens RocksDB and starts Raft over the peer network; the founding
//! node then calls [`Meta::bootstrap`] once, and every node waits for a leader with
//! [`Meta::wait_for_leader`]. [`Meta::propose`] commits a command: on the leader
//! directly, elsewhere by forwarding it to the leader (`Peer.Propose`), which stamps it
//! with its clock. Either way it returns once the command is committed and applied. A
//! command introduced in a format newer than the cluster version is refused before it
//! reaches the log ([`schema`]); the leader raises that version once every voter decodes
//! the newer format ([`Meta::raise_cluster_version`]).

pub mod command;
pub mod db;
pub mod log_store;
pub mod network;
pub mod offline;
pub mod schema;
pub mod state;
pub mod types;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft, ServerState};

pub use state::{Catalog, CONSOLE_SESSION};
pub use types::{
    AlarmAck, AlarmChange, AlarmRecord, BackupLocation, Camera, ChangeRecord, ChangeState, Codec, Command, Credential,
    DeletionReceipt, DutyKind, DutyRecord, DutySignoff, ExportRecord, ExportStatus, FaultRecord, FaultSubject,
    HandoverAcceptance, JoinTokenRecord, NodeId, NodeRecord, PackMember, PackRecord, RejectKind, Request, Response,
    SegmentClock, SegmentRecord, StoredPack, TokenRecord, TypeConfig, User,
};

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::clock::SharedClock;
use crate::error::{Error, Result};

/// Raft entries between snapshots. The state machine lives in RocksDB, so a snapshot is
/// only needed to purge the log and to seed new members.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20_000;

/// How long a write waits for a leader to be elected before giving up.
pub const LEADER_WAIT: Duration = Duration::from_secs(5);
/// How long a forwarded write may take on the leader.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may wait to commit. A leader that lost its majority keeps waiting
/// for it; callers get Unavailable instead (the entry may still commit later, which every
/// command tolerates: segment commits skip duplicates, and an audit entry then records
/// an attempt that was refused).
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(8);

/// The running metadata group on this node.
#[derive(Clone)]
pub struct Meta {
    raft: Raft<TypeConfig>,
    pub catalog: Catalog,
    pub node_id: NodeId,
    clock: SharedClock,
    forwarder: Arc<dyn network::Forwarder>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl Meta {
    /// Opens the catalog under `dir` and starts Raft over `network` (the cluster's
    /// mutual-TLS peers, or [`network::NoPeers`]). Does not wait for a leader.
    /// `snapshot_every`: Raft entries between snapshots (0: [`SNAPSHOT_EVERY_ENTRIES`]).
    pub async fn open<N>(
        node_id: NodeId,
        dir: &Path,
        clock: SharedClock,
        network: N,
        snapshot_every: u64,
    ) -> Result<Meta>
    where
        N: openraft::network::RaftNetworkFactory<TypeConfig> + network::Forwarder + Clone,
    {
        let snapshot_every = if snapshot_every == 0 { SNAPSHOT_EVERY_ENTRIES } else { snapshot_every };
        let db_path = dir.join("catalog");
        let db = tokio::task::spawn_blocking(move || db::open(&db_path))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let log = log_store::LogStore::new(db.clone());
        let sm = state::StateMachine::new(db, &dir.join("snapshots"))
            .map_err(|e| Error::io("create directory", dir.join("snapshots"), e))?;
        let catalog = sm.catalog();
        let config = openraft::Config {
            cluster_name: "custos".into(),
            heartbeat_interval: 250,
            election_timeout_min: 1_000,
            election_timeout_max: 2_000,
            // Entries carry up to 512 segment records; keep one append under a few MB.
            max_payload_entries: 64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
            max_in_snapshot_log_to_keep: (snapshot_every / 20).min(1_000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Internal(format!("raft config: {e}")))?;
        let forwarder = Arc::new(network.clone());
        let raft = Raft::new(node_id, Arc::new(config), network, log, sm)
            .await
            .map_err(|e| Error::Internal(format!("starting raft: {e}")))?;
        Ok(Meta { raft, catalog, node_id, clock, forwarder })
    }

    /// Opens, founds and leads a single-node group with no peers: for in-process tests,
    /// tools and benchmarks.
    pub async fn start(node_id: NodeId, dir: &Path, advertise: String, clock: SharedClock) -> Result<Meta> {
        let meta = Meta::open(node_id, dir, clock, network::NoPeers, 0).await?;
        meta.bootstrap(advertise).await?;
        meta.raft
            .wait(Some(Duration::from_secs(20)))
            .state(ServerState::Leader, "become leader")
            .await
            .map_err(|e| Error::Unavailable(format!("this node did not become leader: {e}")))?;
        // The only voter: the cluster runs this binary's format at once.
        meta.raise_cluster_version(|_| 0).await?;
        Ok(meta)
    }

    /// Founds a new group with this node as its only member, unless the group already
    /// exists (a restart). Only the node made by `custos-node init` does this.
    pub async fn bootstrap(&self, advertise: String) -> Result<()> {
        if !self.raft.is_initialized().await.map_err(|e| Error::Internal(e.to_string()))? {
            tracing::info!(node_id = self.node_id, "founding a new metadata group");
            let members = BTreeMap::from([(self.node_id, BasicNode { addr: advertise })]);
            self.raft.initialize(members).await.map_err(|e| Error::Internal(format!("initialising raft: {e}")))?;
        }
        Ok(())
    }

    /// Waits until the group has a leader this node knows of.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let m = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a known leader")
            .await
            .map_err(|e| Error::Unavailable(format!("no leader of the metadata group is known yet: {e}")))?;
        Ok(m.current_leader.unwrap_or_default())
    }

    /// Proposes `command` stamped with this (leader) node's clock and waits for it to be
    /// committed and applied.
    pub async fn propose(&self, command: Command) -> Result<Response> {
        self.submit(Request { time_ms: self.clock.now_ms(), command, audit: None }).await
    }

    /// Like [`Meta::propose`], appending `audit` to the audit log in the same entry (with
    /// the command's outcome).
    pub async fn propose_audited(&self, command: Command, audit: AuditEvent) -> Result<Response> {
        self.submit(Request { time_ms: self.clock.now_ms(), command, audit: Some(audit) }).await
    }

    async fn submit(&self, req: Request) -> Result<Response> {
        if let Some((why, instead)) = self.too_new(&req).await? {
            if let Some(audit_only) = instead {
                self.write(audit_only).await?;
            }
            return Ok(Response::Rejected(RejectKind::FailedPrecondition, why));
        }
        self.write(req).await
    }

    /// If `req`'s command was introduced in a format newer than the cluster version: why it
    /// is refused, and what to write instead (its audit event marked refused, if it has
    /// one). Refused before it reaches the log, where a voter whose binary cannot decode it
    /// would stop; the state machine refuses it again, so replicas agree whatever happens.
    async fn too_new(&self, req: &Request) -> Result<Option<(String, Option<Request>)>> {
        if schema::introduced_in(&req.command).is_none() {
            return Ok(None);
        }
        let version = self.read(|c| c.cluster_version()).await?;
        let Some(why) = schema::too_new(&req.command, version) else { return Ok(None) };
        let instead = req.audit.clone().map(|mut ev| {
            ev.outcome = Outcome::Rejected;
            ev.reason = why.clone();
            Request { time_ms: req.time_ms, command: Command::Audit, audit: Some(ev) }
        });
        Ok(Some((why, instead)))
    }

    /// Raises the cluster version to the newest format every voter decodes, if that is
    /// above the recorded one: `format_of(id)` is what voter `id` last reported (0: not yet);
    /// this node counts with its own. Only the leader calls this. Returns the new version.
    pub async fn raise_cluster_version(&self, format_of: impl Fn(NodeId) -> u32) -> Result<Option<u32>> {
        let voters: Vec<NodeId> = self.raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        let formats: Vec<(NodeId, u32)> = voters
            .iter()
            .map(|&id| (id, if id == self.node_id { types::FORMAT_CURRENT.into() } else { format_of(id) }))
            .collect();
        // Nothing to read when some voter has not said, or says format 1.
        if formats.iter().any(|&(_, f)| f <= u32::from(types::FORMAT_V1)) {
            return Ok(None);
        }
        let current = self.read(|c| c.cluster_version()).await?;
        let Some(version) = schema::raise_to(current, formats.iter().map(|&(_, f)| f)) else { return Ok(None) };
        let ev = AuditEvent {
            user: "-".into(),
            action: AuditAction::ClusterVersion,
            outcome: Outcome::Ok,
            detail: format!(
                "format {current} -> {version}: every voter decodes it ({})",
                formats.iter().map(|(id, f)| format!("node {id}: {f}")).collect::<Vec<_>>().join(", ")
            ),
            ..Default::default()
        };
        match self.propose_audited(Command::SetClusterVersion(version), ev).await? {
            Response::Rejected(_, why) => Err(Error::Internal(format!("raising the cluster version: {why}"))),
            _ => {
                tracing::info!(
                    from = current,
                    to = version,
                    "cluster version raised: every voter decodes the new format"
                );
                Ok(Some(version))
            }
        }
    }

    /// Commits `req`, forwarding it to the leader when this node does not lead.
    async fn write(&self, req: Request) -> Result<Response> {
        use openraft::error::{ClientWriteError, RaftError};
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let write = tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(req.clone()));
            let Ok(written) = write.await else {
                return Err(Error::Unavailable(format!(
                    "not committed within {COMMIT_TIMEOUT:?}: the metadata group has no majority (are most nodes down?)"
                )));
            };
            match written {
                Ok(r) => return Ok(r.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    if let Some(node) = f.leader_node {
                        return self.forward(&node.addr, &req).await;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Error::Unavailable(
                            "no leader: the metadata group has no quorum (are most nodes down?)".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(Error::Unavailable(format!("could not commit to the metadata group: {e}"))),
            }
        }
    }

    /// Sends a write to the leader at `addr`, which stamps it with its own clock.
    async fn forward(&self, addr: &str, req: &Request) -> Result<Response> {
        let body = types::encode(&(&req.command, &req.audit));
        let reply =
            tokio::time::timeout(FORWARD_TIMEOUT + COMMIT_TIMEOUT, self.forwarder.forward(addr, body, FORWARD_TIMEOUT))
                .await
                .map_err(|_| Error::Unavailable(format!("forwarding a write to the leader at {addr}: no answer")))?
                .map_err(|e| Error::Unavailable(format!("forwarding a write to the leader at {addr}: {e}")))?;
        let res: std::result::Result<(Response, u64), String> =
            schema::decode_message(&reply).map_err(Error::Internal)?;
        let (resp, index) = res.map_err(Error::Unavailable)?;
        // Read-your-writes: a caller that reads this node's catalog next must see it.
        let wait = self.raft.wait(Some(FORWARD_TIMEOUT));
        if let Err(e) = wait.applied_index_at_least(Some(index), "forwarded write").await {
            tracing::warn!(index, error = %e, "a forwarded write committed but is not applied here yet");
        }
        Ok(resp)
    }

    /// Commits a write a follower forwarded (`Peer.Propose`, which checked the sender and
    /// what it may forward), stamped with this node's clock. Refused unless this node leads: the follower then retries.
    /// Returns the response and the entry's log index.
    pub async fn submit_forwarded(
        &self,
        command: Command,
        audit: Option<AuditEvent>,
    ) -> std::result::Result<(Response, u64), String> {
        let mut req = Request { time_ms: self.clock.now_ms(), command, audit };
        let mut refused = None;
        if let Some((why, instead)) = self.too_new(&req).await.map_err(|e| e.to_string())? {
            let Some(audit_only) = instead else {
                return Ok((Response::Rejected(RejectKind::FailedPrecondition, why), 0));
            };
            req = audit_only;
            refused = Some(Response::Rejected(RejectKind::FailedPrecondition, why));
        }
        match tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(req)).await {
            Ok(r) => r
                .map(|r| (refused.unwrap_or(r.data), r.log_id.index))
                .map_err(|e| format!("the leader could not commit: {e}")),
            Err(_) => Err(format!("the leader could not commit within {COMMIT_TIMEOUT:?}: it has no majority")),
        }
    }

    /// The node's clock (the leader's time goes into every command it proposes).
    /// What Raft reports now (role, term, leader, log, membership, replication).
    pub fn metrics(&self) -> openraft::RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Raft's reports as they change.
    pub fn metrics_watch(&self) -> tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, BasicNode>> {
        self.raft.metrics()
    }

    /// Waits, up to `timeout`, for a condition on Raft's reports (tests, start-up).
    pub fn wait(
        &self,
        timeout: Option<Duration>,
    ) -> openraft::metrics::Wait<NodeId, BasicNode, <TypeConfig as openraft::RaftTypeConfig>::AsyncRuntime> {
        self.raft.wait(timeout)
    }

    /// Changes the membership (the leader's duties, and clusters built in one process).
    pub async fn change_membership(
        &self,
        change: impl Into<openraft::ChangeMembers<NodeId, BasicNode>>,
        retain: bool,
    ) -> std::result::Result<(), String> {
        self.raft.change_membership(change, retain).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Adds a learner (clusters built in one process; nodes join through the leader's
    /// duties otherwise).
    pub async fn add_learner(&self, id: NodeId, node: BasicNode, blocking: bool) -> std::result::Result<(), String> {
        self.raft.add_learner(id, node, blocking).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Hands a Raft message a peer sent to this node's Raft (`Peer.Raft`); returns the
    /// reply and whether it came from the current leader.
    pub async fn serve_raft(
        &self,
        kind: &str,
        payload: &[u8],
        from: Option<NodeId>,
    ) -> std::result::Result<(Vec<u8>, bool), network::ServeError> {
        network::serve_from(&self.raft, kind, payload, from).await
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The clock itself, for tasks that read it on their own.
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// True while this node leads the metadata group.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// Runs a blocking catalog read on the blocking pool.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Catalog) -> Result<T> + Send + 'static) -> Result<T> {
        let c = self.catalog.clone();
        tokio::task::spawn_blocking(move || f(&c)).await.map_err(|e| Error::Internal(e.to_string()))?
    }

    /// Snapshots the state machine and purges the log it covers, so a node that joins
    /// later is seeded from the snapshot. Needed once after a restore, whose catalog
    /// was loaded under the log rather than built from it: replaying the log alone would
    /// give a new member an empty catalog.
    pub async fn compact_now(&self) -> Result<()> {
        let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0);
        let fatal = |e: openraft::error::Fatal<NodeId>| Error::Internal(format!("raft: {e}"));
        self.raft.trigger().snapshot().await.map_err(fatal)?;
        let timeout = Some(Duration::from_secs(60));
        self.raft
            .wait(timeout)
            .metrics(|m| m.snapshot.is_some_and(|s| s.index >= applied), "snapshot of the restored catalog")
            .await
            .map_err(|e| Error::Unavailable(format!("snapshot not built: {e}")))?;
        self.raft.trigger().purge_log(applied).await.map_err(fatal)?;
        self.raft
            .wait(timeout)
            .metrics(|m| m.purged.is_some_and(|p| p.index >= applied), "log purged")
            .await
            .map_err(|e| Error::Unavailable(format!("log not purged: {e}")))?;
        Ok(())
    }

    /// Stops Raft.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

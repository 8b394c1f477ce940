//! Metadata: the Raft group (openraft 0.9) whose state machine holds the catalog.
//!
//! [`Meta::start`] opens RocksDB, starts Raft, initialises a fresh single-node group and
//! waits until this node leads it. [`Meta::propose`] stamps a command with the leader's
//! clock and returns once it is committed and applied.

pub mod db;
pub mod log_store;
pub mod network;
pub mod state;
pub mod types;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft, ServerState};

pub use state::Catalog;
pub use types::{
    Camera, Codec, Command, DeletionReceipt, NodeId, Request, Response, SegmentRecord, TokenRecord, TypeConfig, User,
};

use crate::clock::SharedClock;
use crate::error::{Error, Result};

/// Raft entries between snapshots. The state machine lives in RocksDB, so a snapshot is
/// only needed to purge the log and to seed new members.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20_000;

/// How long start-up waits for this node to become leader of its group.
pub const LEADER_WAIT: Duration = Duration::from_secs(20);

/// The running metadata group on this node.
#[derive(Clone)]
pub struct Meta {
    pub raft: Raft<TypeConfig>,
    pub catalog: Catalog,
    pub node_id: NodeId,
    clock: SharedClock,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl Meta {
    /// Opens the catalog under `dir` and starts Raft.
    pub async fn start(node_id: NodeId, dir: &Path, advertise: String, clock: SharedClock) -> Result<Meta> {
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
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
            max_in_snapshot_log_to_keep: 1_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Internal(format!("raft config: {e}")))?;
        let raft = Raft::new(node_id, Arc::new(config), network::SingleNodeNetwork, log, sm)
            .await
            .map_err(|e| Error::Internal(format!("starting raft: {e}")))?;
        if !raft.is_initialized().await.map_err(|e| Error::Internal(e.to_string()))? {
            tracing::info!(node_id, "initialising a new single-node metadata group");
            let members = BTreeMap::from([(node_id, BasicNode { addr: advertise })]);
            raft.initialize(members).await.map_err(|e| Error::Internal(format!("initialising raft: {e}")))?;
        }
        raft.wait(Some(LEADER_WAIT))
            .state(ServerState::Leader, "become leader")
            .await
            .map_err(|e| Error::Unavailable(format!("this node did not become leader: {e}")))?;
        Ok(Meta { raft, catalog, node_id, clock })
    }

    /// Proposes `command` stamped with this (leader) node's clock and waits for it to be
    /// committed and applied.
    pub async fn propose(&self, command: Command) -> Result<Response> {
        self.submit(Request { time_ms: self.clock.now_ms(), command, audit: None }).await
    }

    /// Like [`Meta::propose`], appending `audit` to the audit log in the same entry (with
    /// the command's outcome).
    pub async fn propose_audited(&self, command: Command, audit: crate::audit::AuditEvent) -> Result<Response> {
        self.submit(Request { time_ms: self.clock.now_ms(), command, audit: Some(audit) }).await
    }

    async fn submit(&self, req: Request) -> Result<Response> {
        match self.raft.client_write(req).await {
            Ok(r) => Ok(r.data),
            Err(e) => Err(Error::Unavailable(format!("could not commit to the metadata group: {e}"))),
        }
    }

    /// The node's clock (the leader's time goes into every command it proposes).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
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

    /// Stops Raft.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

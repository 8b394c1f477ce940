//! What the leader does for the cluster, in one loop: keep the Raft membership in step
//! with the catalog's node list, raise the cluster version once every voter decodes a newer
//! format, move cameras off nodes that stopped answering, and copy segments back up to the
//! replication factor.
//!
//! Every decision goes through a Raft command, so a new leader picks up where the last
//! one stopped. Membership changes are made one at a time and retried on the next tick
//! when openraft reports one still in progress.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers};

use super::health::{Health, DOWN_AFTER};
use super::placement;
use super::replicate::{push_blob, Replicator};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::meta::types::Standby;
use crate::meta::{Camera, Command, Meta, NodeId, NodeRecord};
use crate::segment::BlobStore;

/// How often the leader loop runs.
pub const TICK: Duration = Duration::from_millis(500);
/// How often a repair pass starts.
pub const REPAIR_EVERY: Duration = Duration::from_secs(3);
/// Segments examined per repair tick (bounds the work per pass).
pub const REPAIR_SCAN: usize = 20_000;
/// Segments copied per repair tick.
pub const REPAIR_BATCH: usize = 64;
/// A learner is promoted once it is this close to the leader's log.
pub const PROMOTE_LAG: u64 = 100;

/// Figures the leader publishes for `custos status` and `custos nodes`.
#[derive(Debug, Default)]
pub struct RepairStats {
    /// Under-replicated segments found in the last complete pass (`u64::MAX`: none yet).
    pub under_replicated: AtomicU64,
    /// Copies made since this node started.
    pub copies_made: AtomicU64,
}

impl RepairStats {
    pub fn new() -> Self {
        RepairStats { under_replicated: AtomicU64::new(u64::MAX), copies_made: AtomicU64::new(0) }
    }
}

/// The leader's loop. Does nothing while this node follows.
pub struct LeaderDuties {
    pub meta: Meta,
    pub health: Health,
    pub replicator: Replicator,
    pub store: Arc<BlobStore>,
    pub stats: Arc<RepairStats>,
    /// Down this long, a node's copies no longer count and are replaced.
    pub repair_after_down: Duration,
    pub cameras_changed: Arc<tokio::sync::Notify>,
    /// Every camera gets a standby, marked or not (`standby_all_cameras`).
    pub standby_all: bool,
}

/// How long the leader leaves a camera with a live standby to that standby's takeover
/// after its recorder stopped answering, before moving it itself.
pub const STANDBY_GRACE: Duration = Duration::from_secs(10);

impl LeaderDuties {
    pub async fn run(self, shutdown: crate::Shutdown) {
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let mut cursor: Option<Vec<u8>> = None;
        let mut pass_count = 0u64;
        let mut last_repair = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            if !self.meta.is_leader() {
                continue;
            }
            let nodes = match self.meta.read(|c| c.nodes()).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the node list");
                    continue;
                }
            };
            self.reconcile_membership(&nodes).await;
            self.raise_cluster_version().await;
            if let Ok((cams, standbys)) = self.meta.read(|c| Ok((c.cameras()?, c.standbys()?))).await {
                self.fail_over_cameras(&nodes, &cams, &standbys).await;
                // Standbys are chosen from the catalog as the failovers left it.
                if let Ok((cams, standbys)) = self.meta.read(|c| Ok((c.cameras()?, c.standbys()?))).await {
                    self.assign_standbys(&nodes, &cams, &standbys).await;
                }
            }
            if last_repair.elapsed() >= REPAIR_EVERY {
                last_repair = tokio::time::Instant::now();
                self.repair_tick(&nodes, &mut cursor, &mut pass_count).await;
            }
        }
    }

    async fn reconcile_membership(&self, nodes: &[NodeRecord]) {
        let m = self.meta.metrics();
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
        let last = m.last_log_index.unwrap_or(0);
        let change = nodes.iter().find_map(|n| {
            if n.retired && voters.contains(&n.id) {
                Some((n.id, "remove from voters", ChangeMembers::RemoveVoters(BTreeSet::from([n.id]))))
            } else if n.retired && members.contains(&n.id) {
                Some((n.id, "remove", ChangeMembers::RemoveNodes(BTreeSet::from([n.id]))))
            } else if !n.retired && !members.contains(&n.id) {
                let node = BasicNode { addr: n.addr.clone() };
                Some((n.id, "add as learner", ChangeMembers::AddNodes(BTreeMap::from([(n.id, node)]))))
            } else if !n.retired && !voters.contains(&n.id) {
                let matched = m.replication.as_ref().and_then(|r| r.get(&n.id).cloned().flatten()).map(|l| l.index);
                match matched {
                    Some(i) if i + PROMOTE_LAG >= last => {
                        Some((n.id, "promote to voter", ChangeMembers::AddVoterIds(BTreeSet::from([n.id]))))
                    }
                    _ => None,
                }
            } else {
                None
            }
        });
        let Some((id, what, change)) = change else { return };
        // A change commits only with a quorum; never block the loop on it.
        match tokio::time::timeout(Duration::from_secs(10), self.meta.change_membership(change, true)).await {
            Ok(Ok(_)) => tracing::info!(node = id, change = what, "membership changed"),
            Ok(Err(e)) => {
                tracing::info!(node = id, change = what, error = %e, "membership change not made yet; retrying")
            }
            Err(_) => {
                tracing::warn!(node = id, change = what, "membership change did not commit within 10 s; retrying")
            }
        }
    }

    /// Adopts the newest format every voter's binary decodes, as their pings report it.
    async fn raise_cluster_version(&self) {
        if let Err(e) = self.meta.raise_cluster_version(|id| self.health.get(id).format_max).await {
            tracing::warn!(error = %e, "could not raise the cluster version; retrying");
        }
    }

    /// Gives each camera that wants a standby a live node of another campus (the least
    /// loaded), replacing a standby that is down, retired or became the recorder; drops
    /// the standby of a camera that no longer wants one.
    async fn assign_standbys(&self, nodes: &[NodeRecord], cams: &[Camera], standbys: &BTreeMap<String, Standby>) {
        let (live, mut load) = self.live_and_load(nodes, cams, Some(standbys));
        for cam in cams {
            let sb = standbys.get(&cam.id).cloned().unwrap_or_default();
            let wanted = sb.wanted || self.standby_all;
            let current = sb.node;
            let keep = current.is_some_and(|n| {
                n != cam.recorder && nodes.iter().any(|r| r.id == n && !r.retired) && self.health.alive(n)
            });
            let choice = if !wanted {
                None
            } else if keep {
                current
            } else {
                let campus = nodes.iter().find(|n| n.id == cam.recorder).map(|n| n.campus.as_str()).unwrap_or("");
                live.iter()
                    .filter(|n| n.id != cam.recorder)
                    .min_by_key(|n| (n.campus == campus, load.get(&n.id).copied().unwrap_or(0), n.id))
                    .map(|n| n.id)
                    // Nobody else is up: keep the one it had, which may come back.
                    .or(current.filter(|&n| n != cam.recorder))
            };
            if choice == current {
                continue;
            }
            match self.meta.propose(Command::AssignStandby { camera: cam.id.clone(), node: choice }).await {
                Ok(crate::meta::Response::Ok) => {
                    if let Some(n) = choice {
                        *load.entry(n).or_default() += 1;
                    }
                    tracing::info!(camera = %cam.id, standby = ?choice, was = ?current, "camera standby assigned");
                    self.cameras_changed.notify_one();
                }
                Ok(other) => tracing::warn!(camera = %cam.id, response = ?other, "could not assign a standby"),
                Err(e) => tracing::warn!(camera = %cam.id, error = %e, "could not assign a standby"),
            }
        }
    }

    /// A recorder or standby must be up and have room: a node under its free-space floor
    /// hands its cameras to nodes with room (its footage stays where it is).
    fn fit(&self, id: NodeId) -> bool {
        self.health.alive(id) && !self.health.get(id).disk_low()
    }

    /// The active nodes fit to take a camera, and how many cameras each records (and,
    /// given `standbys`, stands by for).
    fn live_and_load<'a>(
        &self,
        nodes: &'a [NodeRecord],
        cams: &[Camera],
        standbys: Option<&BTreeMap<String, Standby>>,
    ) -> (Vec<&'a NodeRecord>, BTreeMap<NodeId, usize>) {
        let live: Vec<&NodeRecord> = nodes.iter().filter(|n| !n.retired && self.fit(n.id)).collect();
        let mut load: BTreeMap<NodeId, usize> = live.iter().map(|n| (n.id, 0)).collect();
        for c in cams {
            let standby = standbys.and_then(|s| s.get(&c.id)).and_then(|s| s.node);
            for n in [Some(c.recorder), standby].into_iter().flatten() {
                if let Some(l) = load.get_mut(&n) {
                    *l += 1;
                }
            }
        }
        (live, load)
    }

    async fn fail_over_cameras(&self, nodes: &[NodeRecord], cams: &[Camera], standbys: &BTreeMap<String, Standby>) {
        let (live, mut load) = self.live_and_load(nodes, cams, None);
        let fit = |id: NodeId| self.fit(id);
        for cam in cams {
            let old = nodes.iter().find(|n| n.id == cam.recorder);
            if old.is_some_and(|n| !n.retired) && fit(cam.recorder) {
                continue;
            }
            // A live standby takes a failed recorder's camera over by itself, from the
            // pictures it holds; moving the camera elsewhere would only lose them.
            let standby = standbys.get(&cam.id).and_then(|s| s.node).filter(|&n| n != cam.recorder && fit(n));
            let failed = old.is_none_or(|n| n.retired) || !self.health.alive(cam.recorder);
            if standby.is_some()
                && failed
                && self.health.alive_within(cam.recorder, DOWN_AFTER + STANDBY_GRACE)
                && old.is_some_and(|n| !n.retired)
            {
                continue;
            }
            let why = if !self.health.alive(cam.recorder) || old.is_none_or(|n| n.retired) {
                "stopped answering"
            } else {
                "is below its free-space floor"
            };
            let campus = old.map(|n| n.campus.as_str()).unwrap_or("");
            let Some(target) = standby.or_else(|| {
                live.iter()
                    .min_by_key(|n| (n.campus != campus, load.get(&n.id).copied().unwrap_or(0), n.id))
                    .map(|n| n.id)
            }) else {
                return; // nobody alive to take it
            };
            let ev = AuditEvent {
                user: "-".into(),
                action: AuditAction::CameraFailover,
                outcome: Outcome::Ok,
                cameras: vec![cam.id.clone()],
                detail: format!("recorder {} {why}; camera moved to node {target}", cam.recorder),
                ..Default::default()
            };
            let cmd = Command::AssignCamera { camera: cam.id.clone(), recorder: target };
            match self.meta.propose_audited(cmd, ev).await {
                Ok(_) => {
                    *load.entry(target).or_default() += 1;
                    tracing::warn!(camera = %cam.id, from = cam.recorder, to = target, reason = why, "camera moved to another recorder");
                    self.cameras_changed.notify_one();
                }
                Err(e) => tracing::warn!(camera = %cam.id, error = %e, "could not move camera"),
            }
        }
    }

    async fn repair_tick(&self, nodes: &[NodeRecord], cursor: &mut Option<Vec<u8>>, pass_count: &mut u64) {
        let active: Vec<NodeId> = nodes.iter().filter(|n| !n.retired).map(|n| n.id).collect();
        let healthy: BTreeSet<NodeId> =
            active.iter().copied().filter(|&id| self.health.alive_within(id, self.repair_after_down)).collect();
        let factor = self.replicator.factor.min(healthy.len()).max(1);
        let after = cursor.take();
        let restarting = after.is_none();
        let h2 = healthy.clone();
        let found = self.meta.read(move |c| c.under_replicated(&h2, factor, after, REPAIR_SCAN)).await;
        let (segs, resume) = match found {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "repair scan failed");
                return;
            }
        };
        if restarting {
            *pass_count = 0;
        }
        *pass_count += segs.len() as u64;
        *cursor = resume.clone();
        if resume.is_none() {
            self.stats.under_replicated.store(*pass_count, Ordering::Relaxed);
        }
        if segs.is_empty() {
            return;
        }
        let cands = match self.replicator.candidates().await {
            Ok(c) => c,
            Err(_) => return,
        };
        let plain: Vec<placement::Candidate> = cands.iter().map(|(c, _)| c.clone()).collect();
        let mut adds = Vec::new();
        for seg in segs.into_iter().take(REPAIR_BATCH) {
            let live_holders: Vec<NodeId> =
                seg.replicas.iter().copied().filter(|r| healthy.contains(r) && self.health.alive(*r)).collect();
            let exclude: BTreeSet<NodeId> = seg.replicas.iter().copied().collect();
            let targets = placement::choose(&plain, &live_holders, 1, &exclude);
            let Some(&target) = targets.first() else { continue };
            if live_holders.is_empty() {
                tracing::error!(camera = %seg.camera, start_ms = seg.start_ms, "no live copy of this segment to repair from");
                continue;
            }
            let (s, h) = (self.store.clone(), seg.content_hash);
            let local = match tokio::task::spawn_blocking(move || s.get(&h)).await {
                Ok(Ok(Some(b))) if blake3::hash(&b).as_bytes() == &seg.blob_hash => Some(b),
                _ => None,
            };
            // No matching copy here (none, or a separately sealed one): read a replica's.
            let blob = match local {
                Some(b) => b,
                None => match self.replicator.fetch_remote(&seg).await {
                    Ok(b) => b,
                    Err(_) => continue,
                },
            };
            let addr = cands.iter().find(|(c, _)| c.id == target).map(|(_, a)| a.clone()).unwrap_or_default();
            match push_blob(&self.replicator.peers, &addr, &seg.content_hash, &seg.blob_hash, Arc::new(blob)).await {
                Ok(()) => adds.push((seg.camera.clone(), seg.start_ms, target)),
                Err(e) => {
                    tracing::warn!(camera = %seg.camera, start_ms = seg.start_ms, node = target, error = %e, "repair copy failed")
                }
            }
        }
        if adds.is_empty() {
            return;
        }
        let n = adds.len() as u64;
        match self.meta.propose(Command::AddReplicas(adds)).await {
            Ok(_) => {
                self.stats.copies_made.fetch_add(n, Ordering::Relaxed);
                tracing::info!(copies = n, "repair: segments copied back up to the replication factor");
            }
            Err(e) => tracing::warn!(error = %e, "repair: could not record the new copies"),
        }
    }
}

impl crate::worker::Worker for LeaderDuties {
    fn name(&self) -> &'static str {
        "leader-duties"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        LeaderDuties::run(self, shutdown)
    }
}

//! Who is alive. Every node pings every other active member twice a second and keeps the
//! answers: when each last answered, its campus and its disk. Placement, failover,
//! repair and `custos nodes` read this table; a node counts itself alive.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::peers::Peers;
use crate::meta::{Meta, NodeId};

/// How often each peer is pinged.
pub const PING_EVERY: Duration = Duration::from_millis(500);
/// How long one ping may take.
pub const PING_TIMEOUT: Duration = Duration::from_millis(1_000);
/// A node that has not answered for this long is down (placement skips it, failover
/// moves its cameras).
pub const DOWN_AFTER: Duration = Duration::from_millis(2_000);

/// What is known of one node.
#[derive(Debug, Clone, Default)]
pub struct PeerHealth {
    pub last_ok: Option<Instant>,
    pub disk_free: u64,
    pub disk_total: u64,
    /// The node's own free-space floor; below it the node is under disk pressure.
    pub disk_floor: u64,
    /// The peer's repair figure (meaningful when it leads; `u64::MAX`: unknown).
    pub under_replicated: u64,
    /// Damaged blobs the node's scrubber could not repair yet.
    pub scrub_unrepaired: u64,
    /// When the node's scrubber last found damage (0: never).
    pub scrub_last_finding_ms: i64,
}

impl PeerHealth {
    /// True when the node reported less free space than its floor.
    pub fn disk_low(&self) -> bool {
        self.disk_total > 0 && self.disk_free < self.disk_floor
    }
}

/// How this node measures its own disk.
#[derive(Debug, Clone)]
pub struct DiskLimits {
    /// Free space below which the node is under pressure.
    pub floor: u64,
    /// If set, the node may use at most this many bytes for blobs, whatever the
    /// filesystem has (`store` counts them).
    pub capacity: Option<(u64, Arc<crate::segment::BlobStore>)>,
}

/// The shared health table.
#[derive(Debug, Clone)]
pub struct Health {
    me: NodeId,
    data_dir: PathBuf,
    started: Instant,
    limits: Option<DiskLimits>,
    table: Arc<RwLock<HashMap<NodeId, PeerHealth>>>,
    /// This node's scrubber figures, reported to the others in pings.
    pub scrub: Arc<crate::scrub::ScrubStats>,
}

/// Free and total bytes of the filesystem holding `path`.
pub fn disk_usage(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

impl Health {
    /// A health table for node `me`, with no free-space floor.
    pub fn new(me: NodeId, data_dir: &Path) -> Health {
        Health {
            me,
            data_dir: data_dir.to_path_buf(),
            started: Instant::now(),
            limits: None,
            table: Arc::default(),
            scrub: Arc::default(),
        }
    }

    /// The same, measuring this node's disk against `limits`.
    pub fn with_limits(mut self, limits: DiskLimits) -> Health {
        self.limits = Some(limits);
        self
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This node's own disk figures: free and total bytes, and its floor.
    pub fn own_disk(&self) -> (u64, u64, u64) {
        let (fs_free, fs_total) = disk_usage(&self.data_dir).unwrap_or((0, 0));
        let Some(limits) = &self.limits else { return (fs_free, fs_total, 0) };
        match &limits.capacity {
            Some((cap, store)) => (fs_free.min(cap.saturating_sub(store.bytes())), *cap, limits.floor),
            None => (fs_free, fs_total, limits.floor),
        }
    }

    /// What is known of `id` (this node's own entry is always fresh).
    pub fn get(&self, id: NodeId) -> PeerHealth {
        if id == self.me {
            let (disk_free, disk_total, disk_floor) = self.own_disk();
            return PeerHealth {
                last_ok: Some(Instant::now()),
                disk_free,
                disk_total,
                disk_floor,
                under_replicated: u64::MAX,
                scrub_unrepaired: self.scrub.unrepaired_count(),
                scrub_last_finding_ms: self.scrub.last_finding_ms.load(std::sync::atomic::Ordering::Relaxed),
            };
        }
        self.table.read().expect("health table poisoned").get(&id).cloned().unwrap_or_default()
    }

    /// True if `id` answered within [`DOWN_AFTER`], or this node started too recently to
    /// know (so a restarted leader does not fail over a whole cluster at once).
    pub fn alive(&self, id: NodeId) -> bool {
        self.alive_within(id, DOWN_AFTER)
    }

    /// True if `id` answered within `within` (or this node has not been up that long).
    pub fn alive_within(&self, id: NodeId, within: Duration) -> bool {
        if id == self.me {
            return true;
        }
        match self.get(id).last_ok {
            Some(t) => t.elapsed() <= within,
            None => self.started.elapsed() <= within,
        }
    }

    /// The subset of `ids` that is alive.
    pub fn alive_set(&self, ids: impl IntoIterator<Item = NodeId>) -> BTreeSet<NodeId> {
        ids.into_iter().filter(|&i| self.alive(i)).collect()
    }

    fn record(&self, id: NodeId, r: &custos_proto::v1::PingReply) {
        let was_down = !self.alive(id);
        let mut t = self.table.write().expect("health table poisoned");
        let h = PeerHealth {
            last_ok: Some(Instant::now()),
            disk_free: r.disk_free_bytes,
            disk_total: r.disk_total_bytes,
            disk_floor: r.disk_floor_bytes,
            under_replicated: r.under_replicated,
            scrub_unrepaired: r.scrub_unrepaired,
            scrub_last_finding_ms: r.scrub_last_finding_ms,
        };
        if t.insert(id, h).is_some() && was_down {
            tracing::info!(node = id, "node answers again");
        }
    }

    /// Logs nodes that stopped answering, once per outage.
    fn note_down(&self, id: NodeId, reported: &mut BTreeSet<NodeId>) {
        if self.alive(id) {
            reported.remove(&id);
        } else if reported.insert(id) {
            tracing::warn!(node = id, after_ms = DOWN_AFTER.as_millis() as u64, "node stopped answering");
        }
    }

    /// Pings every other active member until `shutdown`.
    pub async fn run(self, meta: Meta, peers: Peers, shutdown: crate::Shutdown) {
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let mut reported = BTreeSet::new();
        let mut low = false;
        loop {
            let me = self.get(self.me);
            if me.disk_low() != low {
                low = me.disk_low();
                let (free_mib, floor_mib) = (me.disk_free >> 20, me.disk_floor >> 20);
                if low {
                    tracing::warn!(free_mib, floor_mib, "ALARM disk below the free-space floor: this node takes no new copies and its cameras move to nodes with room; nothing protected is deleted");
                } else {
                    tracing::info!(free_mib, floor_mib, "disk back above the free-space floor");
                }
            }
            let nodes = meta.read(|c| c.nodes()).await.unwrap_or_default();
            for n in nodes.into_iter().filter(|n| !n.retired && n.id != self.me) {
                self.note_down(n.id, &mut reported);
                let (h, peers, me) = (self.clone(), peers.clone(), self.me);
                tokio::spawn(async move {
                    let Ok(mut c) = peers.client(&n.addr) else { return };
                    let mut req = tonic::Request::new(custos_proto::v1::PingRequest { from: me });
                    req.set_timeout(PING_TIMEOUT);
                    // The header asks the peer to give up; the local timeout covers a peer
                    // that cannot answer at all (stopped process, partition).
                    if let Ok(Ok(r)) = tokio::time::timeout(PING_TIMEOUT, c.ping(req)).await {
                        let r = r.into_inner();
                        if r.node_id == n.id {
                            h.record(n.id, &r);
                        } else {
                            tracing::warn!(expected = n.id, answered = r.node_id, addr = %n.addr, "a different node answers at this address");
                        }
                    }
                });
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(PING_EVERY) => {}
            }
        }
    }
}

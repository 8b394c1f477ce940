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
    /// The node's wall clock as its last ping answer gave it, and the moment (this node's
    /// monotonic clock, middle of the round trip) it was read; `None` until it has said.
    /// Kept against the monotonic clock, not as an offset from this node's wall clock,
    /// so a jump of this node's own clock cannot make a stale reading agree with it.
    pub clock_read: Option<(i64, Instant)>,
    /// The newest catalog format the node's binary decodes (0: not said yet, or a binary
    /// from before format 2).
    pub format_max: u32,
    /// How far the node's clock jumped forward while it ran, unconfirmed (ms; 0: none).
    pub clock_jump_ms: i64,
    /// What the node's picture checks found wrong: (camera, detail), by camera.
    pub picture_findings: Vec<(String, String)>,
}

impl PeerHealth {
    /// True when the node reported less free space than its floor.
    pub fn disk_low(&self) -> bool {
        self.disk_total > 0 && self.disk_free < self.disk_floor
    }
}

/// The cluster's time relative to one node's clock: the lower median of the clock offsets
/// it measured (with an even count, the earlier of the two middle clocks). One clock that
/// runs wild moves it by one place at most.
pub fn median_offset(mut offsets: Vec<i64>) -> Option<i64> {
    offsets.sort_unstable();
    offsets.get(offsets.len().checked_sub(1)? / 2).copied()
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
    /// Since when this node's pinger has been running without a gap, and when its last
    /// round ran. A node that was not watching (just started, or the process was paused
    /// or starved) cannot tell a silent peer from its own stale table.
    watch: Arc<std::sync::Mutex<(Instant, Instant)>>,
    limits: Option<DiskLimits>,
    table: Arc<RwLock<HashMap<NodeId, PeerHealth>>>,
    /// When this node last accepted a Raft append or snapshot from the leader it follows.
    leader_contact: Arc<std::sync::Mutex<Option<Instant>>>,
    /// This node's workers, and what they observed (scrubbing, picture checks, clock
    /// jumps), reported to the others in pings.
    pub workers: Arc<crate::worker::Registry>,
    /// This node's clock against the cluster's median as the leader last measured it
    /// (ms, and when it said so).
    skew_by_leader: Arc<std::sync::Mutex<Option<(i64, Instant)>>>,
}

/// How old a clock reading (or a leader's word on this node's skew) may be to count.
pub const CLOCK_READING_FRESH: Duration = Duration::from_secs(10);

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
            watch: Arc::new(std::sync::Mutex::new((Instant::now(), Instant::now()))),
            limits: None,
            table: Arc::default(),
            leader_contact: Arc::default(),
            workers: Arc::default(),
            skew_by_leader: Arc::default(),
        }
    }

    /// Records how far the leader measures this node's clock from the cluster's median.
    pub fn note_skew_by_leader(&self, skew_ms: i64) {
        *self.skew_by_leader.lock().expect("skew") = Some((skew_ms, Instant::now()));
    }

    /// The cluster's median clock relative to this node's (the lower median of the fresh
    /// offsets, this node's own 0 included), if at least one other node was read.
    pub fn median_offset_ms(&self, now_ms: i64) -> Option<i64> {
        let ids: Vec<NodeId> = self.table.read().expect("health table poisoned").keys().copied().collect();
        let mut offsets = vec![0];
        for id in ids {
            let fresh = self.get(id).last_ok.is_some_and(|t| t.elapsed() <= CLOCK_READING_FRESH);
            if let (true, Some(o)) = (fresh, self.clock_offset_ms(id, now_ms)) {
                offsets.push(o);
            }
        }
        (offsets.len() > 1).then(|| median_offset(offsets)).flatten()
    }

    /// This node's clock minus the cluster's median clock, as the leader last measured it
    /// or as this node measures it itself: whichever is further off, and who measured it
    /// (`leader`, `recorder`). `None` while neither is known.
    pub fn own_skew_ms(&self, now_ms: i64) -> Option<(i64, &'static str)> {
        let by_leader = self
            .skew_by_leader
            .lock()
            .expect("skew")
            .filter(|(_, at)| at.elapsed() <= CLOCK_READING_FRESH)
            .map(|(s, _)| (s, "leader"));
        let own = self.median_offset_ms(now_ms).map(|m| (-m, "recorder"));
        match (by_leader, own) {
            (Some(a), Some(b)) => Some(if a.0.abs() >= b.0.abs() { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Records that the leader this node follows just reached it (an accepted append).
    pub fn note_leader_contact(&self) {
        *self.leader_contact.lock().expect("leader contact") = Some(Instant::now());
    }

    /// True if this node heard from leader `leader` within `within`: an accepted Raft
    /// append or snapshot, or an answer to its own ping.
    pub fn leader_in_touch(&self, leader: NodeId, within: Duration) -> bool {
        let appended = self.leader_contact.lock().expect("leader contact").is_some_and(|t| t.elapsed() <= within);
        appended || self.get(leader).last_ok.is_some_and(|t| t.elapsed() <= within)
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
                scrub_unrepaired: self.workers.scrub.unrepaired_count(),
                scrub_last_finding_ms: self.workers.scrub.last_finding_ms.load(std::sync::atomic::Ordering::Relaxed),
                clock_read: None,
                format_max: crate::meta::types::FORMAT_CURRENT.into(),
                clock_jump_ms: self.workers.clock_jump.jump_ms(),
                picture_findings: self.workers.picture.findings(),
            };
        }
        self.table.read().expect("health table poisoned").get(&id).cloned().unwrap_or_default()
    }

    /// True if `id` answered within [`DOWN_AFTER`], or this node has not been watching
    /// long enough to know (so a restarted or resumed leader does not fail over a whole
    /// cluster at once).
    pub fn alive(&self, id: NodeId) -> bool {
        self.alive_within(id, DOWN_AFTER)
    }

    /// True if `id` answered within `within`, or this node's pinger has not been running
    /// without a gap for that long (its table is stale, not the peer).
    pub fn alive_within(&self, id: NodeId, within: Duration) -> bool {
        if id == self.me {
            return true;
        }
        let (since, last_round) = *self.watch.lock().expect("health watch");
        if last_round.elapsed() > DOWN_AFTER || since.elapsed() <= within {
            return true;
        }
        self.get(id).last_ok.is_some_and(|t| t.elapsed() <= within)
    }

    /// Marks a pinger round; a gap longer than [`DOWN_AFTER`] since the last one (the
    /// process was paused or starved) restarts the watch.
    fn note_round(&self) {
        let mut w = self.watch.lock().expect("health watch");
        let now = Instant::now();
        if now.duration_since(w.1) > DOWN_AFTER {
            tracing::warn!(
                gap_ms = now.duration_since(w.1).as_millis() as u64,
                "this node was stalled; peers count as alive until they have been pinged again"
            );
            w.0 = now;
        }
        w.1 = now;
    }

    /// The subset of `ids` that is alive.
    pub fn alive_set(&self, ids: impl IntoIterator<Item = NodeId>) -> BTreeSet<NodeId> {
        ids.into_iter().filter(|&i| self.alive(i)).collect()
    }

    /// How far node `id`'s wall clock is ahead of `now_ms` (this node's clock, read now):
    /// its last reading moved on by the monotonic time since. 0 for this node itself.
    pub fn clock_offset_ms(&self, id: NodeId, now_ms: i64) -> Option<i64> {
        if id == self.me {
            return Some(0);
        }
        let (wall, at) = self.get(id).clock_read?;
        Some(wall + at.elapsed().as_millis() as i64 - now_ms)
    }

    fn record(&self, id: NodeId, r: &custos_proto::v1::PingReply, clock_read: Option<(i64, Instant)>) {
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
            clock_read,
            format_max: r.format_max,
            clock_jump_ms: r.clock_jump_ms,
            picture_findings: r.picture_findings.iter().map(|f| (f.camera.clone(), f.detail.clone())).collect(),
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
            self.note_round();
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
            let now_ms = meta.now_ms();
            let median = self.median_offset_ms(now_ms);
            for n in nodes.into_iter().filter(|n| !n.retired && n.id != self.me) {
                self.note_down(n.id, &mut reported);
                let (h, peers, me) = (self.clone(), peers.clone(), self.me);
                // Tell the peer how far its clock is from the median, as this node sees it.
                let skew = median.zip(self.clock_offset_ms(n.id, now_ms)).map(|(m, o)| o - m);
                tokio::spawn(async move {
                    let Ok(mut c) = peers.client(&n.addr) else { return };
                    let ping = custos_proto::v1::PingRequest {
                        from: me,
                        skew_seen_ms: skew.unwrap_or(0),
                        skew_known: skew.is_some(),
                    };
                    let mut req = tonic::Request::new(ping);
                    req.set_timeout(PING_TIMEOUT);
                    // The header asks the peer to give up; the local timeout covers a peer
                    // that cannot answer at all (stopped process, partition).
                    let sent = Instant::now();
                    if let Ok(Ok(r)) = tokio::time::timeout(PING_TIMEOUT, c.ping(req)).await {
                        let r = r.into_inner();
                        // The peer read its clock somewhere within the round trip: take
                        // the middle (the error is at most half the round trip).
                        let middle = sent + sent.elapsed() / 2;
                        let read = (r.wall_clock_ms != 0).then_some((r.wall_clock_ms, middle));
                        if r.node_id == n.id {
                            h.record(n.id, &r, read);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: NodeId) -> custos_proto::v1::PingReply {
        custos_proto::v1::PingReply { node_id: id, ..Default::default() }
    }

    #[test]
    fn a_stale_table_is_not_taken_for_silent_peers() {
        let h = Health::new(1, Path::new("/"));
        let long_ago = Instant::now() - Duration::from_secs(10);
        // Watching for a while, the pinger running: a peer never heard from is down, one
        // that answered is up.
        *h.watch.lock().unwrap() = (long_ago, Instant::now());
        h.record(2, &reply(2), None);
        assert!(h.alive(2) && !h.alive(3));
        // The process was paused: the pinger has not run for longer than DOWN_AFTER.
        h.table.write().unwrap().get_mut(&2).unwrap().last_ok = Some(long_ago);
        *h.watch.lock().unwrap() = (long_ago, long_ago);
        assert!(h.alive(2) && h.alive(3), "no verdict from a stale table");
        // The first round after the pause restarts the watch: still no verdict...
        h.note_round();
        assert!(h.alive(2) && h.alive(3));
        // ... until it has watched for DOWN_AFTER again.
        h.watch.lock().unwrap().0 = long_ago;
        assert!(!h.alive(2) && !h.alive(3));
    }
}

//! Hot standby, the node's side: the watcher that keeps each standby camera's held
//! pictures trimmed to what its recorder has not committed yet, detects the recorder's
//! failure, and takes the camera over.
//!
//! Failure detection is this node's own: its pings to the recorder (`cluster::health`),
//! not the leader's loop, so losing a recorder that also led Raft does not wait for a new
//! leader to notice; and a recorder that answers but has committed nothing of the camera
//! for three segments while this node receives it (it lost the stream, or its commits
//! hang) is taken over too. The takeover itself is a Raft command (`Command::TakeOver`), applied
//! only while the failed node still records the camera and this node still stands by
//! for it, so two nodes never both take one camera over; while no leader is elected it
//! waits, and the held pictures cover the wait (`ingest::standby::WINDOW`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::cluster::health::Health;
use crate::ingest::standby::StandbyCtl;
use crate::ingest::{CameraStates, Standing, State};
use crate::meta::{Command, Meta, NodeId, Response};

/// How often the watcher looks at the catalog and the health table.
pub const POLL: Duration = Duration::from_millis(200);

/// What the catalog says of one standby camera.
struct Seen {
    recorder: NodeId,
    standby: Option<NodeId>,
    committed_end_ms: Option<i64>,
}

/// How long a recorder that still answers pings may commit nothing of a camera the
/// standby receives before the standby takes it over: three segments, at least 15 s.
pub fn stalled_after_ms(segment_target_ms: u64) -> i64 {
    (3 * segment_target_ms).max(15_000) as i64
}

/// Runs until shutdown. `segment_target_ms` is the cluster's segment length.
pub async fn watch(
    meta: Meta,
    health: Health,
    states: CameraStates,
    standing: Standing,
    segment_target_ms: u64,
    shutdown: crate::Shutdown,
) {
    let me = meta.node_id;
    let in_flight: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    // Cameras whose recorder this node has found down, and since when (logged once).
    let mut down: BTreeMap<String, NodeId> = BTreeMap::new();
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let ctls: Vec<(String, Arc<StandbyCtl>)> = standing
            .lock()
            .expect("standing")
            .iter()
            .filter(|(_, c)| c.is_standby())
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect();
        if ctls.is_empty() {
            continue;
        }
        let ids: Vec<String> = ctls.iter().map(|(id, _)| id.clone()).collect();
        let seen = meta
            .read(move |c| {
                let mut out = BTreeMap::new();
                for id in ids {
                    let Some(cam) = c.camera(&id)? else { continue };
                    let standby = c.standbys_of(&id)?.and_then(|s| s.node);
                    let committed_end_ms = c.last_segment(&id)?.map(|s| s.end_ms);
                    out.insert(id, Seen { recorder: cam.recorder, standby, committed_end_ms });
                }
                Ok(out)
            })
            .await;
        let seen = match seen {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "standby: cannot read the catalog");
                continue;
            }
        };
        for (id, ctl) in ctls {
            let Some(s) = seen.get(&id) else { continue };
            if let Some(end) = s.committed_end_ms {
                ctl.set_primary_end(end);
            }
            // Reconciling handles a camera this node already records.
            if s.standby != Some(me) || s.recorder == me {
                down.remove(&id);
                continue;
            }
            // Only a standby that receives the camera can cover for its recorder.
            let receiving = states.get(&id).map(|(st, _)| st) == Some(State::Recording);
            // The recorder is down (its pings), or up but committing nothing of a camera
            // this node receives (it lost the camera's stream, or its disk or commits hang).
            let stalled_ms = s.committed_end_ms.map(|e| meta.now_ms() - e).filter(|&age| {
                receiving && age > stalled_after_ms(segment_target_ms) && ctl.held().2 > s.committed_end_ms.unwrap_or(0)
            });
            let why = match (health.alive(s.recorder), stalled_ms) {
                (false, _) => "stopped answering".to_string(),
                (true, Some(age)) => format!("has committed nothing of it for {} s", age / 1000),
                (true, None) => {
                    down.remove(&id);
                    continue;
                }
            };
            let first = down.insert(id.clone(), s.recorder) != Some(s.recorder);
            if first {
                tracing::warn!(camera = %id, recorder = s.recorder, "standby: the camera's recorder {why}; taking the camera over");
            }
            if !receiving {
                continue;
            }
            if !in_flight.lock().expect("in flight").insert(id.clone()) {
                continue;
            }
            let (meta, in_flight, from) = (meta.clone(), in_flight.clone(), s.recorder);
            tokio::spawn(async move {
                take_over(&meta, &id, (from, &why), me, &ctl, first).await;
                in_flight.lock().expect("in flight").remove(&id);
            });
        }
    }
}

/// Proposes the takeover of `camera` from `from`, and on success tells the camera's
/// thread where to start.
async fn take_over(meta: &Meta, camera: &str, (from, why): (NodeId, &str), me: NodeId, ctl: &StandbyCtl, first: bool) {
    let ev = AuditEvent {
        user: "-".into(),
        action: AuditAction::CameraFailover,
        outcome: Outcome::Ok,
        cameras: vec![camera.to_string()],
        detail: format!(
            "recorder {from} {why}; its standby, node {me}, took the camera over from the end of its committed footage"
        ),
        ..Default::default()
    };
    let cmd = Command::TakeOver { camera: camera.to_string(), from, to: me };
    match meta.propose_audited(cmd, ev).await {
        Ok(Response::TookOver { seam_ms }) => {
            ctl.take_over(seam_ms);
            tracing::warn!(camera, from, seam_ms, "standby: took the camera over; committing from the seam");
        }
        Ok(Response::Rejected(_, why)) => tracing::info!(camera, %why, "standby: takeover not applied"),
        Ok(other) => tracing::warn!(camera, response = ?other, "standby: unexpected answer to a takeover"),
        // No leader yet (the recorder may have led): the next poll asks again.
        Err(e) if first => {
            tracing::info!(camera, error = %e, "standby: takeover not committed yet (no leader?); retrying")
        }
        Err(e) => tracing::debug!(camera, error = %e, "standby: takeover not committed yet; retrying"),
    }
}

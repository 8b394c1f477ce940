//! Alarms: conditions an operator must act on, raised and cleared automatically.
//!
//! The leader evaluates the cluster every [`EVALUATE_EVERY`] ([`evaluate`] is pure) and
//! proposes the difference from the open alarms in the catalog as one `Alarms` command,
//! so every alarm is recorded through Raft with the time it was raised and cleared, and
//! a new leader carries on from the same list. Operators acknowledge alarms with a note
//! (`custos alarms ack`); acknowledging does not clear: only the condition going away
//! does.
//!
//! Any node can also evaluate its own view for `custos status`, which matters exactly
//! when Raft cannot record anything (no quorum): those conditions are shown as seen by
//! that node, not yet recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::backup::SharedBackupState;
use crate::cluster::health::Health;
use crate::cluster::leader::RepairStats;
use crate::config::AlarmsConfig;
pub use crate::meta::types::AlarmKind;
use crate::meta::{AlarmChange, AlarmRecord, Command, Meta, NodeRecord};
use custos_formats::fields::{fmt_ms, fmt_skew};

/// How often the leader evaluates.
pub const EVALUATE_EVERY: Duration = Duration::from_secs(2);

/// Handovers the evaluation looks back over for unaccepted ones.
const HANDOVERS_CHECKED: usize = 200;

/// A camera as the evaluation sees it.
#[derive(Debug, Clone)]
pub struct CameraSeen {
    pub id: String,
    pub recorder: crate::meta::NodeId,
    pub added_ms: i64,
    /// End of its newest committed segment.
    pub last_end_ms: Option<i64>,
}

/// A node as the evaluating node sees it.
#[derive(Debug, Clone)]
pub struct NodeSeen {
    pub node: NodeRecord,
    pub alive: bool,
    pub disk_free: u64,
    pub disk_floor: u64,
    pub disk_low: bool,
    pub scrub_unrepaired: u64,
    pub scrub_last_finding_ms: i64,
    /// Its clock's offset from the evaluating node's (ms), if measured.
    pub clock_offset_ms: Option<i64>,
    /// How far its clock jumped forward while it ran, unconfirmed (ms; 0: none).
    pub clock_jump_ms: i64,
    /// What its picture checks found wrong with the cameras it records: (camera, detail).
    pub picture_findings: Vec<(String, String)>,
}

/// The cluster's time relative to the evaluating node's clock: the median offset of the
/// live members that reported their clocks.
pub fn median_offset(nodes: &[NodeSeen]) -> Option<i64> {
    crate::cluster::health::median_offset(
        nodes.iter().filter(|n| !n.node.retired && n.alive).filter_map(|n| n.clock_offset_ms).collect(),
    )
}

/// The backup as the leader's worker sees it.
#[derive(Debug, Clone, Default)]
pub struct BackupSeen {
    /// End of the oldest segment waiting for the bucket.
    pub oldest_waiting_end_ms: Option<i64>,
    pub waiting: u64,
    pub last_error: Option<String>,
}

/// Everything one evaluation looks at.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub now_ms: i64,
    pub segment_target_ms: u64,
    pub cameras: Vec<CameraSeen>,
    pub nodes: Vec<NodeSeen>,
    /// Under-replicated segments and since when there have been some (leader only).
    pub under_replicated: Option<(u64, i64)>,
    /// `None` where backup is not configured or not run.
    pub backup: Option<BackupSeen>,
    /// Shift handovers nobody has accepted yet: (number, from, to, time).
    pub pending_handovers: Vec<(u64, String, String, i64)>,
    /// The last instance of each shift that ended within a day, the patrols recorded in
    /// it, and how many it needed.
    pub ended_shifts: Vec<(crate::shifts::ShiftInstance, u32, u32)>,
}

/// The conditions that are alarms now, as `raise` changes, in a stable order.
pub fn evaluate(o: &Observed, cfg: &AlarmsConfig) -> Vec<AlarmChange> {
    let mut out = Vec::new();
    let mut raise = |kind: AlarmKind, subject: String, detail: String| {
        out.push(AlarmChange { raise: true, kind, subject, detail });
    };
    let down_after = cfg.camera_down_after_ms(o.segment_target_ms);
    for c in &o.cameras {
        let since = c.last_end_ms.unwrap_or(c.added_ms);
        if o.now_ms - since > down_after {
            let detail = match c.last_end_ms {
                Some(t) => format!(
                    "no footage committed for {} s (the last segment ended {}): a blind spot; check the camera, \
                     its network and its recorder, and cover the area by patrol",
                    (o.now_ms - t) / 1000,
                    fmt_ms(t)
                ),
                None => format!(
                    "no footage since it was added at {}: check the camera's address and credentials",
                    fmt_ms(c.added_ms)
                ),
            };
            raise(AlarmKind::CameraDown, c.id.clone(), detail);
            continue;
        }
        // Only the camera's recorder decodes its footage; a node that recorded it before
        // a failover may still hold an old finding.
        let finding = o
            .nodes
            .iter()
            .filter(|n| n.node.id == c.recorder && n.alive)
            .flat_map(|n| n.picture_findings.iter())
            .find(|(cam, _)| *cam == c.id);
        if let Some((_, detail)) = finding {
            raise(AlarmKind::CameraPicture, c.id.clone(), detail.clone());
        }
    }
    for n in o.nodes.iter().filter(|n| !n.node.retired) {
        let (id, addr, campus) = (n.node.id, &n.node.addr, &n.node.campus);
        if !n.alive {
            raise(
                AlarmKind::NodeDown,
                format!("node {id}"),
                format!("node {id} ({addr}, campus {campus}) is not answering"),
            );
        } else if n.disk_low {
            raise(
                AlarmKind::DiskLow,
                format!("node {id}"),
                format!(
                    "node {id} ({addr}, campus {campus}) is below its free-space floor: {} MiB free, floor {} MiB; \
                     it takes no new copies and its cameras moved; free space or add capacity",
                    n.disk_free >> 20,
                    n.disk_floor >> 20
                ),
            );
        }
        let recent =
            n.scrub_last_finding_ms > 0 && o.now_ms - n.scrub_last_finding_ms < cfg.scrub_finding_hold_s as i64 * 1000;
        if n.alive && (n.scrub_unrepaired > 0 || recent) {
            let detail = if n.scrub_unrepaired > 0 {
                format!(
                    "node {id}'s scrubber holds {} damaged blobs it could not repair (no verified copy on another \
                     node or in the bucket); see the node's log and `custos status` on it",
                    n.scrub_unrepaired
                )
            } else {
                format!(
                    "node {id}'s scrubber found a corrupt or missing blob at {} and repaired it; check the disk \
                     (SMART, kernel log) and the `scrub-repair` audit entries",
                    fmt_ms(n.scrub_last_finding_ms)
                )
            };
            raise(AlarmKind::ScrubFailure, format!("node {id}"), detail);
        }
    }
    for (s, patrols, needed) in &o.ended_shifts {
        if patrols < needed {
            raise(
                AlarmKind::PatrolQuota,
                format!("shift {} {}", s.name, s.day),
                format!(
                    "the {} shift of {} ({} to {}) ended with {patrols} patrols of the {needed} required",
                    s.name,
                    s.day,
                    fmt_ms(s.start_ms),
                    fmt_ms(s.end_ms)
                ),
            );
        }
    }
    let accept_ms = cfg.handover_accept_min as i64 * 60_000;
    for (seq, from, to, at) in &o.pending_handovers {
        if o.now_ms - at > accept_ms {
            raise(
                AlarmKind::HandoverUnaccepted,
                format!("handover {seq}"),
                format!(
                    "{from} handed the shift to {to} at {} and {to} has not accepted it (custos shift accept {seq}): \
                     nobody may be watching",
                    fmt_ms(*at)
                ),
            );
        }
    }
    if let Some(median) = median_offset(&o.nodes) {
        for n in o.nodes.iter().filter(|n| !n.node.retired && n.alive) {
            let Some(off) = n.clock_offset_ms else { continue };
            let skew = off - median;
            if skew.unsigned_abs() > cfg.clock_skew_ms {
                let id = n.node.id;
                raise(
                    AlarmKind::ClockSkew,
                    format!("node {id}"),
                    format!(
                        "node {id}'s clock is {} {} the cluster's median clock (limit {} ms): timestamps it gives \
                         footage and any decision taken at its time cannot be trusted; fix its time source (NTP, \
                         battery) and check `custos nodes`",
                        fmt_skew(skew),
                        if skew > 0 { "ahead of" } else { "behind" },
                        cfg.clock_skew_ms
                    ),
                );
            }
        }
    }
    for n in o.nodes.iter().filter(|n| !n.node.retired && n.clock_jump_ms > 0) {
        let id = n.node.id;
        raise(
            AlarmKind::ClockJump,
            format!("node {id}"),
            format!(
                "node {id}'s clock jumped {} forward while it ran: it expires nothing (and proposes no expiry as \
                 leader) until the jump is confirmed: check its time source, then `custos node confirm-clock {id}` \
                 (an approver accepts it), or let the backup endpoint's clock confirm it",
                fmt_skew(n.clock_jump_ms)
            ),
        );
    }
    if let Some((count, since)) = o.under_replicated {
        if count > 0 && o.now_ms - since >= cfg.under_replicated_s as i64 * 1000 {
            raise(
                AlarmKind::UnderReplicated,
                "cluster".into(),
                format!(
                    "{count} segments have had fewer copies than the replication factor since {}: repair cannot \
                     keep up or has nowhere to copy to; check nodes and disks",
                    fmt_ms(since)
                ),
            );
        }
    }
    if let Some(b) = &o.backup {
        if let Some(e) = &b.last_error {
            raise(AlarmKind::BackupFailing, "bucket".into(), format!("backup is failing and retrying: {e}"));
        }
        if let Some(oldest) = b.oldest_waiting_end_ms {
            if o.now_ms - oldest > cfg.backup_lag_s as i64 * 1000 {
                raise(
                    AlarmKind::BackupLag,
                    "bucket".into(),
                    format!(
                        "backup is {} min behind: {} segments wait, the oldest ended {}",
                        (o.now_ms - oldest) / 60_000,
                        b.waiting,
                        fmt_ms(oldest)
                    ),
                );
            }
        }
    }
    out
}

/// What to propose so the open alarms match `now`: raises for new conditions, clears for
/// conditions gone.
pub fn diff(open: &[AlarmRecord], now: Vec<AlarmChange>) -> Vec<AlarmChange> {
    let is_open = |kind: &AlarmKind, subject: &str| open.iter().any(|a| a.kind == *kind && a.subject == subject);
    let mut changes: Vec<AlarmChange> = open
        .iter()
        .filter(|a| !now.iter().any(|c| c.kind == a.kind && c.subject == a.subject))
        .map(|a| AlarmChange { raise: false, kind: a.kind.clone(), subject: a.subject.clone(), detail: String::new() })
        .collect();
    changes.extend(now.into_iter().filter(|c| !is_open(&c.kind, &c.subject)));
    changes
}

/// One line for an alarm in `custos status`.
pub fn render(a: &AlarmRecord) -> String {
    let acked = match a.acks.last() {
        Some(k) => format!("; acknowledged by {} at {}: {}", k.user, fmt_ms(k.time_ms), k.note),
        None => String::new(),
    };
    format!("[{}] {} {}: {} (since {}{acked})", a.id, a.kind, a.subject, a.detail, fmt_ms(a.raised_ms))
}

/// What a node reads to evaluate: shared by the leader's watch and `custos status`.
#[derive(Clone)]
pub struct Sources {
    pub meta: Meta,
    pub health: Health,
    pub repair: Arc<RepairStats>,
    pub backup_configured: bool,
    pub backup_state: SharedBackupState,
    pub segment_target_ms: u64,
    pub duty: crate::shifts::DutyConfig,
}

impl Sources {
    /// This node's view now. Under-replication is left out: only the leader knows how
    /// long it has lasted.
    pub async fn observe(&self) -> crate::Result<Observed> {
        let backup_configured = self.backup_configured;
        let (offset, needed) = (self.duty.offset_min(), self.duty.patrols_per_shift);
        let now_ms = self.meta.now_ms();
        let (cams, nodes, backup, pending_handovers, ended_shifts) = self
            .meta
            .read(move |c| {
                let mut cams = Vec::new();
                for cam in c.cameras()? {
                    let last = c.last_segment(&cam.id)?.map(|s| s.end_ms);
                    cams.push(CameraSeen {
                        id: cam.id,
                        recorder: cam.recorder,
                        added_ms: cam.added_ms,
                        last_end_ms: last,
                    });
                }
                let backup = if backup_configured {
                    let heads = c.backup_runs(None, usize::MAX, 1)?;
                    Some(BackupSeen {
                        oldest_waiting_end_ms: heads.iter().filter_map(|r| r.first()).map(|s| s.end_ms).min(),
                        waiting: c.backup_pending()?,
                        last_error: None,
                    })
                } else {
                    None
                };
                let mut pending = Vec::new();
                let log = c.duty_log(HANDOVERS_CHECKED)?;
                for d in &log {
                    if d.kind == crate::meta::DutyKind::Handover && c.handover_acceptance(d.seq)?.is_none() {
                        pending.push((d.seq, d.user.clone(), d.to.clone(), d.time_ms));
                    }
                }
                let ended = crate::shifts::just_ended(&c.shifts()?, offset, now_ms)
                    .into_iter()
                    .map(|s| {
                        let n = log
                            .iter()
                            .filter(|d| d.kind == crate::meta::DutyKind::Patrol)
                            .filter(|d| s.start_ms <= d.time_ms && d.time_ms < s.end_ms)
                            .count() as u32;
                        (s, n, needed)
                    })
                    .collect();
                Ok((cams, c.nodes()?, backup, pending, ended))
            })
            .await?;
        let nodes = nodes
            .into_iter()
            .map(|n| {
                let h = self.health.get(n.id);
                NodeSeen {
                    alive: self.health.alive(n.id),
                    disk_free: h.disk_free,
                    disk_floor: h.disk_floor,
                    disk_low: h.disk_low(),
                    scrub_unrepaired: h.scrub_unrepaired,
                    scrub_last_finding_ms: h.scrub_last_finding_ms,
                    clock_offset_ms: self.health.clock_offset_ms(n.id, now_ms),
                    clock_jump_ms: h.clock_jump_ms,
                    picture_findings: h.picture_findings,
                    node: n,
                }
            })
            .collect();
        let last_error = self.backup_state.lock().expect("backup state").last_error.clone();
        let backup = backup.map(|b| BackupSeen { last_error, ..b });
        Ok(Observed {
            now_ms,
            segment_target_ms: self.segment_target_ms,
            cameras: cams,
            nodes,
            under_replicated: None,
            backup,
            pending_handovers,
            ended_shifts,
        })
    }
}

/// The leader's evaluation loop.
pub struct AlarmWatch {
    pub sources: Sources,
    pub cfg: AlarmsConfig,
    /// Where recorded changes are posted (`[alarms] webhooks`).
    pub notifier: Option<crate::webhooks::Notifier>,
}

impl AlarmWatch {
    pub async fn run(self, shutdown: crate::Shutdown) {
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let mut under_since: Option<i64> = None;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(EVALUATE_EVERY) => {}
            }
            let meta = &self.sources.meta;
            if !meta.is_leader() {
                under_since = None;
                continue;
            }
            let under = self.sources.repair.under_replicated.load(std::sync::atomic::Ordering::Relaxed);
            under_since = match under {
                0 | u64::MAX => None,
                _ => under_since.or(Some(meta.now_ms())),
            };
            let result = async {
                let mut seen = self.sources.observe().await?;
                seen.under_replicated = under_since.map(|since| (under, since));
                let open = meta.read(|c| c.open_alarms()).await?;
                let changes = diff(&open, evaluate(&seen, &self.cfg));
                if changes.is_empty() {
                    return Ok(());
                }
                let summary: BTreeMap<_, _> =
                    changes.iter().map(|c| ((c.kind.clone(), c.subject.clone()), c)).collect();
                meta.propose(Command::Alarms(changes.clone())).await?;
                if let Some(n) = &self.notifier {
                    n.send(crate::webhooks::payload(&changes, meta.now_ms(), meta.node_id));
                }
                for c in summary.values() {
                    if c.raise {
                        tracing::warn!(kind = %c.kind, subject = %c.subject, detail = %c.detail, "ALARM raised");
                    } else {
                        tracing::info!(kind = %c.kind, subject = %c.subject, "alarm cleared");
                    }
                }
                Ok::<_, crate::Error>(())
            }
            .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "alarm evaluation not recorded; retrying");
            }
        }
    }
}

impl crate::worker::Worker for AlarmWatch {
    fn name(&self) -> &'static str {
        "alarms"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        AlarmWatch::run(self, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, alive: bool, disk_low: bool) -> NodeSeen {
        NodeSeen {
            node: NodeRecord {
                id,
                campus: "east".into(),
                addr: format!("10.0.0.{id}:7400"),
                joined_ms: 0,
                retired: false,
            },
            alive,
            disk_free: 100 << 20,
            disk_floor: 200 << 20,
            disk_low,
            scrub_unrepaired: 0,
            scrub_last_finding_ms: 0,
            clock_offset_ms: Some(0),
            clock_jump_ms: 0,
            picture_findings: Vec::new(),
        }
    }

    #[test]
    fn a_picture_finding_of_a_cameras_recorder_is_an_alarm_and_a_stale_one_elsewhere_is_not() {
        let cfg = AlarmsConfig::default();
        let mut o = seen(1_000_000);
        o.cameras = vec![
            CameraSeen { recorder: 1, id: "ward".into(), added_ms: 0, last_end_ms: Some(999_000) },
            CameraSeen { recorder: 2, id: "door".into(), added_ms: 0, last_end_ms: Some(999_000) },
        ];
        o.nodes = vec![node(1, true, false), node(2, true, false)];
        o.nodes[0].picture_findings = vec![("ward".into(), "the picture is black".into())];
        // Node 1 recorded door before a failover and still holds its old finding.
        o.nodes[0].picture_findings.push(("door".into(), "the picture is black".into()));
        let a = evaluate(&o, &cfg);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!((a[0].kind.clone(), a[0].subject.as_str()), (AlarmKind::CameraPicture, "ward"));
        assert!(a[0].detail.contains("black"));
        // A down camera is camera-down only.
        o.cameras[0].last_end_ms = Some(900_000);
        let a = evaluate(&o, &cfg);
        assert_eq!(a.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(), [AlarmKind::CameraDown]);
    }

    #[test]
    fn a_clock_jump_is_an_alarm_naming_the_node_and_the_size() {
        let cfg = AlarmsConfig::default();
        let mut o = seen(10_000_000);
        o.nodes = vec![node(1, true, false), node(2, true, false)];
        o.nodes[1].clock_jump_ms = 2 * 86_400_000 + 5_000;
        let a = evaluate(&o, &cfg);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!((a[0].kind.clone(), a[0].subject.as_str()), (AlarmKind::ClockJump, "node 2"));
        assert!(a[0].detail.contains("jumped 2 d 0 h forward"), "{}", a[0].detail);
        assert!(a[0].detail.contains("custos node confirm-clock 2"), "{}", a[0].detail);
    }

    #[test]
    fn a_clock_off_the_median_is_an_alarm_naming_its_node_whoever_measures() {
        let cfg = AlarmsConfig::default();
        let day = 86_400_000;
        let mut o = seen(10_000_000);
        o.nodes = vec![node(1, true, false), node(2, true, false), node(3, true, false)];
        // Measured by node 1: node 3 runs 40 days ahead.
        o.nodes[1].clock_offset_ms = Some(300);
        o.nodes[2].clock_offset_ms = Some(40 * day);
        assert_eq!(median_offset(&o.nodes), Some(300));
        let a = evaluate(&o, &cfg);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!((a[0].kind.clone(), a[0].subject.as_str()), (AlarmKind::ClockSkew, "node 3"));
        assert!(a[0].detail.contains("40 d 0 h ahead of"), "{}", a[0].detail);
        // Measured by the fast node itself: the others look 40 days behind it, so it is
        // still node 3 that is off the median.
        o.nodes[0].clock_offset_ms = Some(-40 * day);
        o.nodes[1].clock_offset_ms = Some(-40 * day + 300);
        o.nodes[2].clock_offset_ms = Some(0);
        let a = evaluate(&o, &cfg);
        assert_eq!(a.iter().map(|c| c.subject.as_str()).collect::<Vec<_>>(), ["node 3"]);
        // Within the limit, or not measured, or down: no alarm.
        o.nodes[2].clock_offset_ms = Some(-40 * day + 1_900);
        assert!(evaluate(&o, &cfg).is_empty());
        o.nodes[2].clock_offset_ms = None;
        assert!(evaluate(&o, &cfg).is_empty());
        assert_eq!(fmt_skew(-2_500), "2.5 s");
        assert_eq!(fmt_skew(3 * 3600 * 1000 + 60_000), "3 h 1 min");
    }

    fn seen(now_ms: i64) -> Observed {
        Observed { now_ms, segment_target_ms: 4_000, ..Default::default() }
    }

    #[test]
    fn cameras_are_down_after_a_multiple_of_the_segment_length() {
        let cfg = AlarmsConfig::default();
        assert_eq!(cfg.camera_down_after_ms(4_000), 16_000);
        assert_eq!(cfg.camera_down_after_ms(1_000), 10_000, "never sooner than the minimum");
        let mut o = seen(1_000_000);
        o.cameras = vec![
            CameraSeen { recorder: 1, id: "ok".into(), added_ms: 0, last_end_ms: Some(990_000) },
            CameraSeen { recorder: 1, id: "stale".into(), added_ms: 0, last_end_ms: Some(983_000) },
            CameraSeen { recorder: 1, id: "new".into(), added_ms: 995_000, last_end_ms: None },
            CameraSeen { recorder: 1, id: "never".into(), added_ms: 900_000, last_end_ms: None },
        ];
        let a = evaluate(&o, &cfg);
        let subjects: Vec<_> = a.iter().map(|c| (c.kind.clone(), c.subject.as_str())).collect();
        assert_eq!(subjects, vec![(AlarmKind::CameraDown, "stale"), (AlarmKind::CameraDown, "never")]);
        assert!(a[0].detail.contains("17 s"), "{}", a[0].detail);
        assert!(a[1].detail.contains("since it was added"), "{}", a[1].detail);
    }

    #[test]
    fn nodes_disks_repair_and_backup() {
        let cfg = AlarmsConfig::default();
        let mut o = seen(10_000_000);
        o.nodes = vec![node(1, true, false), node(2, false, true), node(3, true, true)];
        o.under_replicated = Some((12, 10_000_000 - 299_000));
        o.backup = Some(BackupSeen {
            oldest_waiting_end_ms: Some(10_000_000 - 901_000),
            waiting: 40,
            last_error: Some("storing x: refused".into()),
        });
        let kinds: Vec<_> = evaluate(&o, &cfg).into_iter().map(|c| (c.kind, c.subject)).collect();
        let want = [
            (AlarmKind::NodeDown, "node 2"),
            (AlarmKind::DiskLow, "node 3"),
            (AlarmKind::BackupFailing, "bucket"),
            (AlarmKind::BackupLag, "bucket"),
        ];
        assert_eq!(kinds, want.map(|(k, s)| (k, s.to_string())));
        // Under-replication is an alarm only once it lasts.
        o.under_replicated = Some((12, 10_000_000 - 300_000));
        assert!(evaluate(&o, &cfg).iter().any(|c| c.kind == AlarmKind::UnderReplicated));
        // A retired node is never down.
        o.nodes[1].node.retired = true;
        assert!(!evaluate(&o, &cfg).iter().any(|c| c.kind == AlarmKind::NodeDown));
    }

    #[test]
    fn scrub_findings_stay_visible_for_a_while_and_unrepaired_ones_until_repaired() {
        let cfg = AlarmsConfig::default();
        let mut o = seen(10_000_000);
        o.nodes = vec![node(1, true, false)];
        o.nodes[0].scrub_last_finding_ms = 10_000_000 - 599_000;
        let a = evaluate(&o, &cfg);
        assert_eq!((a[0].kind.clone(), a[0].subject.as_str()), (AlarmKind::ScrubFailure, "node 1"));
        assert!(a[0].detail.contains("repaired it"), "{}", a[0].detail);
        o.nodes[0].scrub_last_finding_ms = 10_000_000 - 601_000;
        assert!(evaluate(&o, &cfg).is_empty(), "a repaired finding clears after the hold");
        o.nodes[0].scrub_unrepaired = 2;
        assert!(evaluate(&o, &cfg)[0].detail.contains("2 damaged blobs"));
    }

    #[test]
    fn diff_raises_new_and_clears_gone() {
        let open = vec![
            AlarmRecord {
                id: 1,
                kind: AlarmKind::CameraDown,
                subject: "a".into(),
                detail: String::new(),
                raised_ms: 0,
                cleared_ms: None,
                acks: vec![],
            },
            AlarmRecord {
                id: 2,
                kind: AlarmKind::CameraDown,
                subject: "b".into(),
                detail: String::new(),
                raised_ms: 0,
                cleared_ms: None,
                acks: vec![],
            },
        ];
        let now =
            |s: &str| AlarmChange { raise: true, kind: AlarmKind::CameraDown, subject: s.into(), detail: "x".into() };
        let d = diff(&open, vec![now("b"), now("c")]);
        let got: Vec<_> = d.iter().map(|c| (c.raise, c.subject.as_str())).collect();
        assert_eq!(got, vec![(false, "a"), (true, "c")]);
        assert!(diff(&open, vec![now("a"), now("b")]).is_empty());
    }
}

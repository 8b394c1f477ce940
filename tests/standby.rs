//! Hot standby, black-box: three real `custos-node` processes in three campuses and a
//! real RTSP camera. The camera is added through the Raft leader, so one node both leads
//! and records it; a node on another campus stands by. Then the recorder is killed
//! (`kill -9`), paused (`SIGSTOP`) or cut off from both other nodes (network namespaces),
//! and the camera's catalogued footage must have no gap of a second or more and no two
//! segments covering one instant, also after a paused or cut-off recorder comes back
//! and tries to commit what it recorded meanwhile.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{now_ms, wait_for, Host, Node, TestCamera, TestNet};
use custos_client::{AuditLogRequest, Client, Segment};

const PURPOSE: &str = "standby test: check the footage across a takeover";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Pause,
    Cut,
    /// The recorder loses the camera (its route to it blackholed) but still answers its
    /// peers: it commits nothing, and its standby takes over after three segments.
    LoseCamera,
}

/// Blackholes (or restores) the route from host `i` to the test's own address, where the
/// camera and the test's clients live.
fn camera_route(net: &TestNet, i: usize, add: bool) {
    let gw = format!("{}/32", net.gateway());
    let out = std::process::Command::new("ip")
        .args(["-n", &net.ns(i), "route", if add { "add" } else { "del" }, "blackhole", &gw])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn segments(c: &Client, camera: &str, from: i64, to: i64) -> Vec<Segment> {
    c.search(camera, from, to, PURPOSE).await.map(|(s, _)| s).unwrap_or_default()
}

/// The largest gap between consecutive segments, after checking that none overlaps
/// the one before it.
fn worst_gap(all: &[Segment]) -> i64 {
    for w in all.windows(2) {
        assert!(
            w[1].start_ms >= w[0].end_ms,
            "two segments cover one instant: {}..{} and {}..{}",
            w[0].start_ms,
            w[0].end_ms,
            w[1].start_ms,
            w[1].end_ms
        );
    }
    all.windows(2).map(|w| w[1].start_ms - w[0].end_ms).max().unwrap_or(0)
}

/// Applies `fault` to node `node` (host `i`), or with `on` false ends it (a killed node
/// stays dead).
fn inflict(fault: Fault, node: &mut Node, i: usize, net: Option<&TestNet>, on: bool) {
    match fault {
        Fault::Kill if on => node.kill9(),
        Fault::Kill => {}
        Fault::Pause => node.signal(if on { libc::SIGSTOP } else { libc::SIGCONT }),
        Fault::Cut => {
            let net = net.expect("a network for cuts");
            for j in (0..3).filter(|&j| j != i) {
                if on {
                    net.cut(i, j)
                } else {
                    net.mend(i, j)
                }
            }
        }
        Fault::LoseCamera => camera_route(net.expect("a network"), i, on),
    }
}

/// Which node records the camera, and whether it has a standby.
#[derive(Debug, Clone, Copy)]
struct Case {
    /// The recorder also leads Raft.
    leader: bool,
    standby: bool,
}

const HOT: Case = Case { leader: true, standby: true };

/// Fails the camera's recorder and returns the worst gap in its footage (ms).
async fn fail_over(fault: Fault, net: Option<&TestNet>, case: Case) -> i64 {
    let host = |i: usize| net.map_or_else(Host::loopback, |n| Host::on(n, i));
    let gw = net.map_or_else(|| "127.0.0.1".to_string(), TestNet::gateway);
    let cam = TestCamera::start_with(0, &["--address", &gw, "--keyint", "12", "--width", "320", "--height", "180"]);
    let mut nodes = vec![Node::init_on(host(0), None, &[], 1_000, &["--campus", "east"])];
    nodes[0].start().await;
    for (i, campus) in [(1, "west"), (2, "north")] {
        let mut n = Node::join_on(host(i), None, &nodes[0], campus).await;
        n.start().await;
        nodes.push(n);
    }
    let admin = nodes[0].connect(Some(&nodes[0].token)).await.unwrap();
    let leader = wait_for(60, "three voters, all up, and a leader", || async {
        let r = admin.list_nodes().await.ok()?;
        let ok = r.nodes.len() == 3 && r.nodes.iter().all(|n| n.raft_role != "learner" && n.health == "up");
        (ok && r.leader != 0).then_some(r.leader)
    })
    .await;
    // The camera is recorded by the node whose API added it: the leader, or another.
    let li = match case.leader {
        true => nodes.iter().position(|n| n.node_id() == leader).unwrap(),
        false => nodes.iter().position(|n| n.node_id() != leader).unwrap(),
    };
    let recorder = nodes[li].node_id();
    let via = nodes[li].connect(Some(&nodes[li].token)).await.unwrap();
    let c = via.add_camera_full("ward", &cam.url, "Ward 3 corridor", false, case.standby).await.unwrap();
    assert_eq!(c.recorder, recorder);
    let standby = match case.standby {
        true => {
            wait_for(30, "a standby on another node", || async {
                let cams = admin.list_cameras().await.ok()?;
                cams.into_iter().find(|c| c.id == "ward" && c.standby != 0).map(|c| c.standby)
            })
            .await
        }
        false => 0,
    };
    assert_ne!(standby, recorder);
    // Watch from a node that stays up: the standby, or another.
    let si = nodes.iter().position(|n| n.node_id() == standby).unwrap_or(if li == 0 { 1 } else { 0 });
    let sec = nodes[si].user("guard", "security", None).await;
    let watcher = nodes[si].connect(Some(&nodes[si].token)).await.unwrap();
    let t0 = now_ms();
    wait_for(60, "the recorder recording (and the standby standing by)", || async {
        let s = watcher.status().await.ok()?;
        let w = s.cameras.iter().find(|c| c.id == "ward")?;
        let recorded = segments(&sec, "ward", t0, now_ms()).await.len() >= 3;
        let standing = !case.standby || (w.standby == standby && w.standby_state == "standing-by");
        (standing && recorded).then_some(())
    })
    .await;
    if case.standby {
        let s = watcher.status().await.unwrap();
        let lag = s.cameras.into_iter().find(|c| c.id == "ward").unwrap().standby_lag_ms;
        assert!((0..5_000).contains(&lag), "the standby holds {lag} ms past the recorder's committed footage");
    }

    let fault_at = now_ms();
    inflict(fault, &mut nodes[li], li, net, true);
    let new_recorder = wait_for(60, "another node recording the camera", || async {
        let cams = sec.list_cameras().await.ok()?;
        cams.into_iter().find(|c| c.id == "ward" && c.recorder != recorder).map(|c| c.recorder)
    })
    .await;
    if case.standby {
        assert_eq!(new_recorder, standby, "the standby takes the camera over");
    }
    wait_for(60, "footage from the new recorder", || async {
        let s = segments(&sec, "ward", fault_at, now_ms()).await;
        s.iter().any(|s| s.start_ms > fault_at + 5_000).then_some(())
    })
    .await;
    // The old recorder comes back and commits what it recorded meanwhile: the catalog
    // must refuse what the new recorder covers.
    inflict(fault, &mut nodes[li], li, net, false);
    if fault != Fault::Kill {
        let old = &nodes[li];
        wait_for(60, "the old recorder stops recording the camera", || async {
            old.log().contains("stopping camera").then_some(())
        })
        .await;
        // Its last batches reach the leader and are refused.
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let all = segments(&sec, "ward", t0, now_ms()).await;
    let gap = worst_gap(&all);
    let recorders: BTreeSet<u64> = all.iter().map(|s| s.replicas[0]).collect();
    let who = if case.leader { "leader-and-recorder" } else { "recorder (not leading)" };
    let how = if case.standby { "hot standby" } else { "no standby" };
    println!(
        "failover gap: {gap} ms ({fault:?} of the {who}, {how}; {} segments, sealed by nodes {recorders:?})",
        all.len()
    );
    assert!(recorders.contains(&recorder) && recorders.contains(&new_recorder), "{recorders:?}");
    if !case.standby {
        // Detection, election, reassignment, RTSP connect and the first keyframe.
        assert!(gap <= 10_000, "footage gap {gap} ms without a standby");
        return gap;
    }
    // The standby took over from the pictures it held (not a cold reassignment).
    let log = nodes[si].log();
    let line = log.lines().find(|l| l.contains("took the camera over: committing the pictures held"));
    let line = line.unwrap_or_else(|| panic!("the standby did not take over from held pictures:\n{log}"));
    println!("  standby: {}", line.trim());
    assert!(gap < 1_000, "footage gap {gap} ms across the takeover ({fault:?}); the bound is 1 s");
    // The takeover is audited, and the leader chose a new standby.
    let auditor = nodes[si].user("audra", "auditor", None).await;
    let filter = AuditLogRequest { action: "camera-failover".into(), camera: "ward".into(), ..Default::default() };
    let entries = auditor.audit_log(filter).await.unwrap();
    let bodies: Vec<String> = entries.iter().map(|e| String::from_utf8_lossy(&e.body).into_owned()).collect();
    assert!(bodies.iter().any(|b| b.contains("its standby, node") && b.contains("took the camera over")), "{bodies:?}");
    wait_for(30, "a new standby", || async {
        let cams = sec.list_cameras().await.ok()?;
        cams.into_iter().find(|c| c.id == "ward" && c.standby != 0 && c.standby != standby).map(|_| ())
    })
    .await;
    gap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_and_recorder_loses_under_a_second() {
    fail_over(Fault::Kill, None, HOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_and_recorder_loses_under_a_second_and_its_late_footage_is_refused() {
    fail_over(Fault::Pause, None, HOT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_leader_and_recorder_loses_under_a_second_and_its_late_footage_is_refused() {
    let Some(net) = TestNet::try_new(3) else { return };
    fail_over(Fault::Cut, Some(&net), HOT).await;
}

/// A recorder that still answers its peers but no longer receives the camera (and so
/// commits nothing) is taken over by its standby, from the pictures it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_that_loses_the_camera_is_taken_over_by_its_standby() {
    let Some(net) = TestNet::try_new(3) else { return };
    fail_over(Fault::LoseCamera, Some(&net), Case { leader: false, standby: true }).await;
}

/// The same when the recorder does not lead Raft (no election in the way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_recorder_with_a_standby_loses_under_a_second() {
    fail_over(Fault::Kill, None, Case { leader: false, standby: true }).await;
}

/// Without a standby, for comparison (`ops/bench.sh p8`): the leader's loop moves the
/// camera once a new leader is elected and sees the recorder down, and the new recorder
/// connects cold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_and_recorder_without_a_standby_fails_over_cold() {
    fail_over(Fault::Kill, None, Case { leader: true, standby: false }).await;
}

/// A camera that serves one client cannot have a standby: marking it is refused, saying
/// why and what to do, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_with_one_session_is_refused_a_standby() {
    let cam = TestCamera::start_with(0, &["--keyint", "12", "--width", "320", "--height", "180", "--max-clients", "1"]);
    let (n1, _n2, _n3) = common::three_node_cluster().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    admin.add_camera("ward", &cam.url, "Ward").await.unwrap();
    wait_for(60, "the camera recording", || async {
        let s = admin.status().await.ok()?;
        s.cameras.iter().any(|c| c.id == "ward" && c.state == "recording").then_some(())
    })
    .await;
    let e = admin.set_camera_standby("ward", true).await.unwrap_err().to_string();
    assert!(e.contains("did not serve a second RTSP session") && e.contains("allow two sessions"), "{e}");
    let cams = admin.list_cameras().await.unwrap();
    let w = cams.iter().find(|c| c.id == "ward").unwrap();
    assert!(!w.standby_wanted && w.standby == 0);
    // Added with --standby before its recorder connects: two sessions at once are asked
    // for, so the camera is refused its standby (the camera itself is added).
    let cam3 =
        TestCamera::start_with(0, &["--keyint", "12", "--width", "320", "--height", "180", "--max-clients", "1"]);
    let e = admin.add_camera_full("gate", &cam3.url, "Gate", false, true).await.unwrap_err().to_string();
    assert!(e.contains("was added without a standby") && e.contains("custos camera standby gate"), "{e}");
    let cams = admin.list_cameras().await.unwrap();
    assert!(cams.iter().any(|c| c.id == "gate" && !c.standby_wanted));
    // A camera that serves two is accepted.
    let cam2 =
        TestCamera::start_with(0, &["--keyint", "12", "--width", "320", "--height", "180", "--max-clients", "2"]);
    admin.add_camera("door", &cam2.url, "Door").await.unwrap();
    // Once its recorder commits footage, one more session is all a standby needs.
    wait_for(60, "door's footage committed", || async {
        let s = admin.status().await.ok()?;
        s.cameras.iter().any(|c| c.id == "door" && c.last_segment_end_ms > 0).then_some(())
    })
    .await;
    admin.set_camera_standby("door", true).await.unwrap();
    let out = n1.cli(&n1.token, &["camera", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("STANDBY"), "{text}");
}

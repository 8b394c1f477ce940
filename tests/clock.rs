//! Cluster time: every node measures every other node's wall clock in its pings; a node
//! off the cluster's median raises `clock-skew` naming it, shows in `custos nodes` and
//! the metrics, and the alarm clears when its clock is fixed. Real processes; the skewed
//! node is `custos-sim-node`, whose clock is the system's plus an offset in a file.

mod common;

use common::{scrape_metrics as scrape, wait_for, Node};

const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_forty_days_ahead_raises_clock_skew_naming_it_until_its_clock_is_fixed() {
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    n2.start().await;
    let mut n3 = Node::join(&n2, "north").await;
    let clock_file = n3.data().join("sim-clock");
    std::fs::write(&clock_file, (40 * DAY_MS).to_string()).unwrap();
    n3.start_sim(&clock_file).await;
    let (id3, admin) = (n3.node_id(), n1.connect(Some(&n1.token)).await.unwrap());
    let subject = format!("node {id3}");

    let alarm = wait_for(60, "a clock-skew alarm naming the fast node", || async {
        let a = admin.list_alarms(false).await.ok()?;
        a.into_iter().find(|a| a.kind == "clock-skew")
    })
    .await;
    assert_eq!(alarm.subject, subject, "{alarm:?}");
    assert!(alarm.detail.contains("ahead of the cluster's median"), "{}", alarm.detail);
    let open = admin.list_alarms(false).await.unwrap();
    assert_eq!(open.iter().filter(|a| a.kind == "clock-skew").count(), 1, "only the fast node is off: {open:?}");

    // `custos nodes` (any node's view) and the metrics show the offset.
    let nodes = admin.list_nodes().await.unwrap().nodes;
    for n in &nodes {
        assert!(n.clock_known, "{n:?}");
        let want = if n.id == id3 { 40 * DAY_MS } else { 0 };
        assert!((n.clock_offset_ms - want).abs() < 2_000, "node {}: offset {} ms", n.id, n.clock_offset_ms);
    }
    let line = wait_for(10, "node 3's row in `custos nodes` on node 2", || async {
        let out = n2.cli(&n2.token, &["nodes"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            eprintln!("custos nodes: {}", String::from_utf8_lossy(&out.stderr));
        }
        text.lines().find(|l| l.starts_with(&format!("{id3} "))).map(str::to_string)
    })
    .await;
    assert!(line.trim_end().ends_with("+40d"), "{line}");
    let m = scrape(&n1.metrics);
    let gauge = m
        .lines()
        .find(|l| l.starts_with(&format!("custos_node_clock_offset_seconds{{node=\"{id3}\"}}")))
        .unwrap_or_else(|| panic!("{m}"));
    let secs: f64 = gauge.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((secs - 40.0 * 86_400.0).abs() < 2.0, "{gauge}");

    // The clock is fixed: the alarm clears.
    std::fs::write(&clock_file, "0").unwrap();
    wait_for(60, "the clock-skew alarm cleared", || async {
        let all = admin.list_alarms(true).await.ok()?;
        let a = all.into_iter().find(|a| a.kind == "clock-skew" && a.subject == subject)?;
        (a.cleared_ms != 0).then_some(())
    })
    .await;
    drop((n1, n2, n3));
}

/// The hole this closes: expiry was decided at the leader's own clock, so a leader whose
/// clock ran 40 days fast deleted footage every other clock said was inside its floor.
/// Expiry now runs at the time the voters' clocks agree on: nothing is deleted, the skew
/// alarm names the leader, and once its clock is fixed expiry works as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_forty_days_fast_deletes_nothing_and_expiry_resumes_once_it_is_fixed() {
    const WHY: &str = "retention check with a leader whose clock is wrong";
    let clocks = tempfile::tempdir().unwrap();
    let (leader_clock, others_clock) = (clocks.path().join("leader"), clocks.path().join("others"));
    let set = |f: &std::path::Path, days: i64| std::fs::write(f, (days * DAY_MS).to_string()).unwrap();
    set(&leader_clock, 0);
    set(&others_clock, 0);

    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.configure("expiry_every_s = 1");
    n1.start_sim(&leader_clock).await;
    let mut others = Vec::new();
    for campus in ["west", "north"] {
        let mut n = Node::join(&n1, campus).await;
        n.configure("expiry_every_s = 1");
        n.start_sim(&others_clock).await;
        others.push(n);
    }
    let admin = n1.connect(Some(&n1.user_token("admin2", "admin", None, 366).await)).await.unwrap();
    let sec = n1.connect(Some(&n1.user_token("guard", "security", None, 366).await)).await.unwrap();
    let aud = n1.connect(Some(&n1.user_token("aud", "auditor", None, 366).await)).await.unwrap();
    // The camera is recorded by node 2 (the node whose API registered it), so its
    // footage carries true times while node 1's clock is wrong.
    let via2 = others[0].connect(Some(&n1.token)).await.unwrap();
    via2.add_camera("lobby", "test://ball", "Lobby").await.unwrap();
    n1.approved(admin.set_policy(None, 30, 31).await).await.unwrap();
    let t0 = common::now_ms() - 10_000;
    let segs = wait_for(60, "replicated footage", || async {
        let s = sec.search("lobby", t0, common::now_ms(), WHY).await.ok()?.0;
        (s.len() >= 3 && s.iter().all(|s| s.replicas.len() >= 2)).then_some(s)
    })
    .await;
    let t1 = segs.last().unwrap().end_ms;
    let count = || async { sec.search("lobby", t0, t1, WHY).await.unwrap().0.len() };
    let kept = count().await;
    assert_eq!(admin.list_nodes().await.unwrap().leader, n1.node_id(), "node 1 leads");

    // The leader's clock jumps 40 days ahead: past lobby's max_days by its own clock.
    set(&leader_clock, 40);
    let subject = format!("node {}", n1.node_id());
    wait_for(30, "clock-skew naming the leader", || async {
        let a = admin.list_alarms(false).await.ok()?;
        a.iter().any(|a| a.kind == "clock-skew" && a.subject == subject).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await; // several expiry passes
    assert_eq!(admin.list_nodes().await.unwrap().leader, n1.node_id(), "node 1 still leads");
    assert_eq!(count().await, kept, "nothing was deleted at the fast leader's time");
    assert!(aud.receipts(Some("lobby")).await.unwrap().is_empty(), "no deletion receipt");

    // Its clock is fixed; then the whole cluster really is 32 days later: lobby's
    // footage is past max_days by every clock and expires, with receipts.
    set(&leader_clock, 0);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    set(&leader_clock, 32);
    set(&others_clock, 32);
    wait_for(30, "lobby's old footage expired", || async { (count().await == 0).then_some(()) }).await;
    let receipts = aud.receipts(Some("lobby")).await.unwrap();
    for s in segs.iter().filter(|s| s.end_ms <= t1) {
        assert!(receipts.iter().any(|r| r.start_ms == s.start_ms), "receipt for lobby@{}", s.start_ms);
    }
    drop((n1, others));
}

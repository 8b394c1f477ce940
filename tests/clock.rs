//! Cluster time: every node measures every other node's wall clock in its pings; a node
//! off the cluster's median raises `clock-skew` naming it, shows in `custos nodes` and
//! the metrics, and the alarm clears when its clock is fixed. Real processes; the skewed
//! node is `custos-sim-node`, whose clock is the system's plus an offset in a file.

mod common;

use std::io::{Read, Write};

use common::{wait_for, Node};

const DAY_MS: i64 = 86_400_000;

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

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
    let out = n2.cli(&n2.token, &["nodes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(&format!("{id3} "))).unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_end().ends_with("+40d"), "{text}");
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

//! Cluster time: every node measures every other node's wall clock in its pings; a node
//! off the cluster's median raises `clock-skew` naming it, shows in `custos nodes` and
//! the metrics, and the alarm clears when its clock is fixed. A node whose clock jumps
//! forward while it runs stops expiring until the jump is confirmed; footage a skewed
//! recorder records is flagged. Real processes; the skewed node is `custos-sim-node`,
//! whose clock is the system's plus an offset in a file.

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
    // Set back to where it was, the leader's jump is undone: its clock-jump alarm clears
    // (and a confirmation given before the next jump is seen would not confirm that one).
    wait_for(30, "the leader's clock-jump alarm cleared", || async {
        let all = admin.list_alarms(true).await.ok()?;
        let jumps: Vec<_> = all.into_iter().filter(|a| a.kind == "clock-jump" && a.subject == subject).collect();
        (!jumps.is_empty() && jumps.iter().all(|a| a.cleared_ms != 0)).then_some(())
    })
    .await;
    assert!(admin.list_alarms(false).await.unwrap().iter().all(|a| a.kind != "clock-jump"));
    set(&leader_clock, 32);
    set(&others_clock, 32);
    // Every clock jumped 32 days while the nodes ran: the leader expires nothing until
    // its jump is confirmed (issue 18, item 2), here through the change queue.
    let leader = n1.node_id();
    wait_for(30, "clock-jump naming the leader", || async {
        let a = admin.list_alarms(false).await.ok()?;
        a.iter().any(|a| a.kind == "clock-jump" && a.subject == subject).then_some(())
    })
    .await;
    assert_eq!(count().await, kept, "nothing expires before the jump is confirmed");
    let ids: Vec<u64> = std::iter::once(&n1).chain(others.iter()).map(|n| n.node_id()).collect();
    assert!(ids.contains(&leader));
    n1.confirm_clock_jumps(&ids).await;
    wait_for(30, "lobby's old footage expired", || async { (count().await == 0).then_some(()) }).await;
    let receipts = aud.receipts(Some("lobby")).await.unwrap();
    for s in segs.iter().filter(|s| s.end_ms <= t1) {
        assert!(receipts.iter().any(|r| r.start_ms == s.start_ms), "receipt for lobby@{}", s.start_ms);
    }
    drop((n1, others));
}

/// Issue 18, item 2: a node whose clock jumps forward by more than a day while it runs
/// (here the only node, so the leader, and its own clock is the only one) would find the
/// footage past its policy and delete it. It stops expiring instead, raises `clock-jump`
/// naming itself and the size of the jump, and logs it; once an administrator asks
/// `custos node confirm-clock` and an approver accepts, expiry resumes at the new time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_whose_clock_jumps_two_days_stops_expiring_until_the_jump_is_confirmed() {
    const WHY: &str = "retention check across a clock jump";
    let clocks = tempfile::tempdir().unwrap();
    let clock = clocks.path().join("clock");
    let set = |ms: i64| std::fs::write(&clock, ms.to_string()).unwrap();
    set(0);
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.configure("expiry_every_s = 1");
    n1.start_sim(&clock).await;
    let admin_token = n1.user_token("admin2", "admin", None, 366).await;
    let admin = n1.connect(Some(&admin_token)).await.unwrap();
    let sec = n1.connect(Some(&n1.user_token("guard", "security", None, 366).await)).await.unwrap();
    let aud = n1.connect(Some(&n1.user_token("aud", "auditor", None, 366).await)).await.unwrap();
    admin.add_camera("lobby", "test://ball", "Lobby").await.unwrap();
    n1.approved(admin.set_policy(None, 30, 31).await).await.unwrap();
    let t0 = common::now_ms() - 10_000;
    let segs = wait_for(60, "footage", || async {
        let s = sec.search("lobby", t0, common::now_ms(), WHY).await.ok()?.0;
        (s.len() >= 3).then_some(s)
    })
    .await;
    let t1 = segs.last().unwrap().end_ms;
    let count = || async { sec.search("lobby", t0, t1, WHY).await.unwrap().0.len() };
    let kept = count().await;

    // Restarted 29 days later (a restart is not a jump while running): the footage is 29
    // days old, inside its policy.
    n1.stop();
    set(29 * DAY_MS);
    n1.start_sim(&clock).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(count().await, kept, "nothing is past max_days yet");
    // Now its clock jumps 2.5 days forward while it runs: 31.5 days, past max_days.
    set(29 * DAY_MS + 5 * DAY_MS / 2);
    let id = n1.node_id();
    let subject = format!("node {id}");
    let alarm = wait_for(30, "clock-jump naming the node", || async {
        let a = admin.list_alarms(false).await.ok()?;
        a.into_iter().find(|a| a.kind == "clock-jump")
    })
    .await;
    assert_eq!(alarm.subject, subject, "{alarm:?}");
    assert!(alarm.detail.contains("jumped 2 d 12 h forward"), "{}", alarm.detail);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await; // several expiry passes
    assert_eq!(count().await, kept, "nothing was deleted at the jumped clock's time");
    assert!(aud.receipts(Some("lobby")).await.unwrap().is_empty(), "no deletion receipt");
    let log = n1.log();
    assert!(log.contains("clock jumped forward while it ran"), "{log}");
    assert!(log.contains("expiry pass skipped"), "{log}");

    // The administrator asks to confirm the jump: a pending change, nothing yet...
    let out = n1.cli(&admin_token, &["node", "confirm-clock", &id.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let change: u64 = text
        .strip_prefix("pending change ")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(count().await, kept, "a pending confirmation confirms nothing");
    // ... until an approver accepts it: expiry resumes, with receipts, and the alarm clears.
    n1.approve(change).await;
    wait_for(30, "lobby's old footage expired", || async { (count().await == 0).then_some(()) }).await;
    let receipts = aud.receipts(Some("lobby")).await.unwrap();
    for s in &segs {
        assert!(receipts.iter().any(|r| r.start_ms == s.start_ms), "receipt for lobby@{}", s.start_ms);
    }
    wait_for(30, "the clock-jump alarm cleared", || async {
        let all = admin.list_alarms(true).await.ok()?;
        let a = all.into_iter().find(|a| a.kind == "clock-jump" && a.subject == subject)?;
        (a.cleared_ms != 0).then_some(())
    })
    .await;
    drop(n1);
}

/// A camera records while its node's clock is stepped 32 days forward, past the policy's
/// 31 days. Once the jump is confirmed the footage from before it expires, but what the
/// camera records from the step on is stamped by the new time and kept. (The run used to
/// go on stamping from its start, 32 days back by the new clock, where retention deleted
/// each segment as soon as it was committed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_recorded_after_a_confirmed_clock_step_is_stamped_by_the_new_time_and_kept() {
    const WHY: &str = "stamps across a clock step";
    let clocks = tempfile::tempdir().unwrap();
    let clock = clocks.path().join("clock");
    std::fs::write(&clock, "0").unwrap();
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.configure("expiry_every_s = 1");
    n1.start_sim(&clock).await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let sec = n1.connect(Some(&n1.user_token("guard", "security", None, 366).await)).await.unwrap();
    let aud = n1.connect(Some(&n1.user_token("aud", "auditor", None, 366).await)).await.unwrap();
    admin.add_camera("lobby", "test://ball", "Lobby").await.unwrap();
    n1.approved(admin.set_policy(None, 30, 31).await).await.unwrap();
    let t0 = common::now_ms() - 10_000;
    wait_for(60, "footage", || async {
        let s = sec.search("lobby", t0, common::now_ms(), WHY).await.ok()?.0;
        (s.len() >= 3).then_some(())
    })
    .await;

    std::fs::write(&clock, (32 * DAY_MS).to_string()).unwrap();
    let step = common::now_ms() + 32 * DAY_MS;
    n1.confirm_clock_jumps(&[n1.node_id()]).await;
    wait_for(60, "the footage from before the step expired", || async {
        let s = sec.search("lobby", t0, step - 31 * DAY_MS, WHY).await.ok()?.0;
        s.is_empty().then_some(())
    })
    .await;
    let after = |min: usize| {
        let sec = &sec;
        async move {
            let s = sec.search("lobby", step, step + DAY_MS, WHY).await.ok()?.0;
            (s.len() >= min).then_some(s.len())
        }
    };
    let kept = wait_for(60, "footage stamped by the new time", || after(3)).await;
    tokio::time::sleep(std::time::Duration::from_secs(12)).await; // twelve expiry passes, six segments
    let later = after(kept + 3).await;
    assert!(later.is_some(), "what was recorded after the step is kept, and more follows: {kept} then {later:?}");
    let receipts = aud.receipts(Some("lobby")).await.unwrap();
    assert!(!receipts.is_empty());
    assert!(receipts.iter().all(|r| r.start_ms < step - 31 * DAY_MS), "nothing recorded after the step was deleted");
    assert!(n1.log().contains("this node's clock was stepped forward"), "{}", n1.log());
    drop(n1);
}

/// Issue 18, item 3: footage a recorder records while its clock is 10 s off the cluster's
/// median is flagged: `custos search` marks it with the offset, `custos fetch` warns on
/// stderr naming the segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_recorded_by_a_recorder_ten_seconds_off_is_flagged_in_search_and_fetch() {
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    n2.start().await;
    let mut n3 = Node::join(&n2, "north").await;
    let clock_file = n3.data().join("sim-clock");
    std::fs::write(&clock_file, "10000").unwrap();
    n3.start_sim(&clock_file).await;
    let guard = n1.user_token("guard", "security", None, 366).await;
    // Node 3 registers the camera, so node 3 records it.
    let via3 = n3.connect(Some(&n1.token)).await.unwrap();
    via3.add_camera("ward", "test://ball", "Ward").await.unwrap();
    let (from, to) = (common::now_ms() - 60_000, common::now_ms() + 600_000);
    let range = [
        "--camera",
        "ward",
        "--from",
        &custos_client::time::format_ms(from),
        "--to",
        &custos_client::time::format_ms(to),
        "--purpose",
        "clock check",
    ]
    .map(str::to_string);
    let line = wait_for(60, "a flagged segment in `custos search`", || async {
        let args: Vec<&str> = std::iter::once("search").chain(range.iter().map(String::as_str)).collect();
        let out = n1.cli(&guard, &args);
        String::from_utf8_lossy(&out.stdout).lines().find(|l| l.contains("CLOCK+")).map(str::to_string)
    })
    .await;
    let mark = line.split_whitespace().last().unwrap();
    let secs: f64 = mark.trim_start_matches("CLOCK+").trim_end_matches('s').parse().unwrap();
    assert!((secs - 10.0).abs() < 1.5, "{line}");

    let out_file = n1.data().join("ward.ts");
    let out_path = out_file.display().to_string();
    let mut args: Vec<&str> = std::iter::once("fetch").chain(range.iter().map(String::as_str)).collect();
    args.extend(["--quiet", "-o", &out_path]);
    let out = n1.cli(&guard, &args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("recorded while their recorder's clock was off the cluster's median"), "{err}");
    assert!(err.lines().any(|l| l.trim_start().starts_with("ward@") && l.contains("CLOCK+")), "{err}");
    drop((n1, n2, n3));
}

/// A recorder whose clock is 40 days slow (a dead BIOS battery, before NTP) stamps its
/// footage 40 days back, past the policy's 31 days. The leader's clock is right, so by the
/// stamps the footage would be expired as soon as it was committed. What the recorder
/// records once its skew is known is flagged, and expiry ages it by the corrected time:
/// it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_from_a_recorder_forty_days_slow_is_flagged_and_not_expired() {
    const WHY: &str = "slow recorder check";
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    n1.configure("expiry_every_s = 1");
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    n2.configure("expiry_every_s = 1");
    n2.start().await;
    let mut n3 = Node::join(&n2, "north").await;
    let clock_file = n3.data().join("sim-clock");
    std::fs::write(&clock_file, (-40 * DAY_MS).to_string()).unwrap();
    n3.configure("expiry_every_s = 1");
    n3.start_sim(&clock_file).await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    n1.approved(admin.set_policy(None, 30, 31).await).await.unwrap();
    let sec = n1.connect(Some(&n1.user_token("guard", "security", None, 366).await)).await.unwrap();
    let aud = n1.connect(Some(&n1.user_token("aud", "auditor", None, 366).await)).await.unwrap();
    // Node 3 registers the camera, so node 3 records it.
    let via3 = n3.connect(Some(&n1.token)).await.unwrap();
    via3.add_camera("ward", "test://ball", "Ward").await.unwrap();
    let (from, to) = (common::now_ms() - 40 * DAY_MS - 60_000, common::now_ms() - 39 * DAY_MS);
    let flagged = || async {
        let s = sec.search("ward", from, to, WHY).await.ok()?.0;
        Some(s.into_iter().filter(|s| s.clock_skewed).collect::<Vec<_>>())
    };
    let first = wait_for(60, "four flagged segments", || async { flagged().await.filter(|f| f.len() >= 4) }).await;
    let offset = first[0].clock_offset_ms;
    assert!((offset + 40 * DAY_MS).abs() < 5_000, "flagged with the recorder's offset: {offset}");
    tokio::time::sleep(std::time::Duration::from_secs(8)).await; // eight expiry passes on the leader
    let now = flagged().await.unwrap();
    for s in &first {
        assert!(now.iter().any(|n| n.start_ms == s.start_ms), "flagged segment ward@{} was expired", s.start_ms);
    }
    assert!(now.len() > first.len(), "and recording goes on");
    let receipts = aud.receipts(Some("ward")).await.unwrap();
    assert!(
        receipts.iter().all(|r| !first.iter().any(|s| s.start_ms == r.start_ms)),
        "no deletion receipt for a flagged segment"
    );
    drop((n1, n2, n3));
}

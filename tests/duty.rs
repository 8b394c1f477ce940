//! The monitoring centre's procedures, black-box: the fault register (report, shown in
//! status, patrols and handovers, resolved with a time to repair in the compliance
//! report) and two-party handovers (pending until the receiver accepts; an alarm when
//! nobody has after 30 minutes).

mod common;

use common::{wait_for, Node};

fn run(node: &Node, token: &str, args: &[&str]) -> (bool, String) {
    let o = node.cli(token, args);
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_registered_handed_over_and_repaired_and_handovers_wait_for_the_receiver() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let mut node = Node::init(&["lobby=test://ball".into()], 1_000);
    let admin = node.start_sim(&clock).await;
    let ann = node.user_token("ann", "operator", None, 0).await;
    let bob = node.user_token("bob", "operator", None, 0).await;
    let auditor = node.user_token("audit.office", "auditor", None, 0).await;

    // A fault nobody's software can see: registered at once, shown everywhere.
    let (ok, said) = run(&node, &ann, &["fault", "report", "--camera", "lobby", "--note", "lens taped over"]);
    assert!(ok && said.contains("fault 1 registered on camera lobby"), "{said}");
    let (ok, said) = run(&node, &ann, &["fault", "report", "--camera", "nope", "--note", "gone"]);
    assert!(!ok && said.contains("does not exist"), "{said}");
    let (ok, said) = run(&node, &auditor, &["fault", "report", "--camera", "lobby", "--note", "x"]);
    assert!(!ok && said.contains("may not"), "auditors watch, they do not register: {said}");
    let (_, said) = run(&node, &ann, &["status"]);
    assert!(said.contains("OPEN FAULT: fault 1 on camera lobby: lens taped over"), "{said}");
    let (ok, said) = run(&node, &ann, &["patrol", "--notes", "first round"]);
    assert!(ok, "{said}");
    let (_, said) = run(&node, &ann, &["patrol", "list", "--limit", "1"]);
    assert!(said.contains("patrol by ann"), "{said}");

    // A camera that is down: an open alarm for the handover to carry.
    admin.add_camera("door", "rtsp://127.0.0.1:1/nothing-here", "Door").await.unwrap();
    wait_for(40, "camera-down door", || async {
        admin.list_alarms(false).await.ok()?.into_iter().find(|a| a.kind == "camera-down" && a.subject == "door")
    })
    .await;
    // The handover carries the open alarm and the open fault by itself and waits for bob.
    let (ok, said) = run(&node, &ann, &["shift", "handover", "--to", "bob", "--notes", "quiet night"]);
    assert!(ok && said.contains("pending until bob"), "{said}");
    assert!(said.contains("open fault 1 on camera lobby"), "the handover names the open fault: {said}");
    assert!(said.contains("open alarm") && said.contains("camera-down door"), "and the open alarm: {said}");
    let seq: String = said.split("(#").nth(1).unwrap().split(')').next().unwrap().to_string();
    let (ok, said) = run(&node, &ann, &["shift", "accept", &seq]);
    assert!(!ok && said.contains("only they can accept"), "{said}");
    let (_, said) = run(&node, &bob, &["shift", "list"]);
    assert!(said.contains("PENDING"), "{said}");

    // Half an hour later nobody has accepted: an alarm says so.
    std::fs::write(&clock, (31 * 60_000i64).to_string()).unwrap();
    let alarm = wait_for(20, "handover-unaccepted", || async {
        admin.list_alarms(false).await.ok()?.into_iter().find(|a| a.kind == "handover-unaccepted")
    })
    .await;
    assert_eq!(alarm.subject, format!("handover {seq}"));
    let (ok, said) = run(&node, &bob, &["shift", "accept", &seq, "--note", "took over at the desk"]);
    assert!(ok && said.contains("accepted"), "{said}");
    wait_for(20, "the alarm clears once accepted", || async {
        let open = admin.list_alarms(false).await.ok()?;
        open.iter().all(|a| a.kind != "handover-unaccepted").then_some(())
    })
    .await;
    let (ok, said) = run(&node, &bob, &["shift", "accept", &seq]);
    assert!(!ok && said.contains("already"), "{said}");

    // Repaired: the compliance report gives the time to repair.
    let (ok, said) = run(&node, &bob, &["fault", "resolve", "1", "--note", "tape removed, picture checked"]);
    assert!(ok && said.contains("repaired in 31m"), "{said}");
    let (_, said) = run(&node, &bob, &["fault", "list"]);
    assert!(said.contains("no open faults"), "{said}");
    let o = node.cli(&auditor, &["--json", "report", "compliance", "--days", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &v["faults"][0];
    assert_eq!(f["id"], 1);
    assert!(f["repair_s"].as_i64().unwrap() >= 31 * 60, "{f}");
    assert_eq!(f["overdue"], false);
    node.stop();
}

/// A shift that ends with fewer patrols than the regulation's four raises `patrol-quota`,
/// and the compliance report counts them; shifts are defined through the change queue and
/// leadership signs the duty log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shift_short_of_patrols_is_an_alarm_and_leadership_signs_the_log() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let mut node = Node::init(&["lobby=test://ball".into()], 1_000);
    let admin = node.start_sim(&clock).await;
    let ann = node.user_token("ann", "operator", None, 0).await;
    let auditor = node.user_token("audit.office", "auditor", None, 0).await;

    // A shift under way now (UTC, the default time zone), ending in 50 minutes.
    let minute = (common::now_ms() / 60_000).rem_euclid(1440);
    let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(1440) % 60);
    let (ok, said) = run(
        &node,
        &node.token,
        &["shift", "define", "early", "--from", &hhmm(minute - 10), "--to", &hhmm(minute + 50)],
    );
    assert!(ok && said.contains("pending change"), "shifts wait for an approver: {said}");
    let id: u64 = said.split_whitespace().nth(2).unwrap().trim_end_matches(':').parse().unwrap();
    node.approve(id).await;
    let (_, said) = run(&node, &ann, &["status"]);
    assert!(said.contains("shift under way: early"), "{said}");
    for round in 1..=3 {
        let (ok, said) = run(&node, &ann, &["patrol", "--notes", &format!("round {round}")]);
        assert!(ok, "{said}");
    }
    // An hour later the shift has ended with 3 of 4.
    std::fs::write(&clock, (60 * 60_000i64).to_string()).unwrap();
    let alarm = wait_for(20, "patrol-quota", || async {
        admin.list_alarms(false).await.ok()?.into_iter().find(|a| a.kind == "patrol-quota")
    })
    .await;
    assert!(alarm.subject.starts_with("shift early ") && alarm.detail.contains("3 patrols of the 4"), "{alarm:?}");
    let o = node.cli(&auditor, &["--json", "report", "compliance", "--days", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v["shifts"][0];
    assert_eq!(
        (s["shift"].as_str(), s["patrols"].as_u64(), s["short"].as_bool()),
        (Some("early"), Some(3), Some(true)),
        "{v}"
    );

    // Leadership signs the log; nobody else can.
    let (ok, said) = run(&node, &node.token, &["duty", "sign", "--from", "-2h", "--to", "now"]);
    assert!(!ok && said.contains("may not"), "{said}");
    let (ok, said) =
        run(&node, &node.approver, &["duty", "sign", "--from", "-2h", "--to", "now", "--note", "reviewed"]);
    assert!(ok && said.contains("signed off by approver"), "{said}");
    let o = node.cli(&auditor, &["--json", "report", "compliance", "--days", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signoffs"][0]["user"], "approver", "{v}");
    node.stop();
}

/// A receiver that answers the first POST with 500 and the rest with 200, handing each
/// body over.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let status = if n == 0 { "500 Internal Server Error" } else { "200 OK" };
            let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if n > 0 {
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or_default());
            }
        }
    });
    (url, rx)
}

/// Alarms reach a webhook in Alertmanager's shape, retried when the receiver fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_posted_to_a_webhook_and_retried() {
    let (url, bodies) = webhook_receiver();
    let mut node = Node::init(&[], 1_000);
    let p = node.data().join("custos.toml");
    let text = std::fs::read_to_string(&p).unwrap().replace("webhooks = []", &format!("webhooks = [\"{url}\"]"));
    std::fs::write(&p, text).unwrap();
    let admin = node.start().await;
    admin.add_camera("door", "rtsp://127.0.0.1:1/nothing-here", "Door").await.unwrap();
    let body = tokio::task::spawn_blocking(move || bodies.recv_timeout(std::time::Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the webhook got the alarm (after one refused attempt)");
    assert_eq!(body["version"], "4");
    let alert = body["alerts"].as_array().unwrap().iter().find(|a| a["labels"]["subject"] == "door").cloned();
    let alert = alert.unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        (alert["status"].as_str(), alert["labels"]["alertname"].as_str()),
        (Some("firing"), Some("camera-down"))
    );
    node.stop();
}

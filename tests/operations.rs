//! Operations against real `custos-node` processes: the Prometheus endpoint scraped over
//! HTTP and parsed, a camera-down alarm that is raised when a camera's RTSP server stops
//! and cleared when it returns, acknowledgements, the compliance report (a gap, and a
//! camera whose footage does not reach its floor), patrols and shift handovers, and the
//! shipped Prometheus alert rules checked by `promtool`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;

use common::{now_ms, wait_for, Node, TestCamera};
use custos_client::AuditLogRequest;

/// `GET /metrics`, as Prometheus would.
fn scrape(addr: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ctype = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    // The body may be chunked: keep the exposition lines only.
    let body = body.lines().filter(|l| l.starts_with('#') || l.starts_with("custos_")).collect::<Vec<_>>().join("\n");
    (ctype, body)
}

/// Samples by name and labels (`name{k="v"}` → value), checking the exposition format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {line:?}"));
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
        out.insert(series.to_string(), v);
    }
    out
}

fn cli(node: &Node, token: &str, args: &[&str]) -> std::process::Output {
    node.cli(token, args)
}

/// A new user's token.
async fn token(node: &Node, name: &str, role: &str) -> String {
    node.user_token(name, role, None, 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_alarms_and_the_compliance_report_follow_a_camera_that_goes_away() {
    let mut cam = TestCamera::start_with(0, &["--keyint", "25", "--width", "320", "--height", "180"]);
    let port = cam.port;
    let mut node = Node::init(&[format!("door={}", cam.url), "lobby=test://ball".into()], 1_000);
    let admin = node.start().await;
    let operator = node.user("olga", "operator", None).await;

    // Metrics, scraped over HTTP and parsed.
    let m = wait_for(30, "both cameras counted in the metrics", || async {
        let (_, text) = scrape(&node.metrics);
        let m = parse(&text);
        (m.get("custos_ingest_segments_total{camera=\"door\"}").copied().unwrap_or(0.0) >= 2.0
            && m.get("custos_ingest_segments_total{camera=\"lobby\"}").copied().unwrap_or(0.0) >= 2.0)
            .then_some(m)
    })
    .await;
    let (ctype, _) = scrape(&node.metrics);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(m["custos_ingest_bytes_total{camera=\"door\"}"] > 1_000.0);
    assert_eq!(m["custos_raft_leader"], 1.0);
    assert!(m["custos_raft_term"] >= 1.0);
    assert!(m["custos_commit_latency_seconds_count"] >= 1.0);
    assert!(m["custos_disk_free_bytes"] > 0.0 && m["custos_disk_total_bytes"] >= m["custos_disk_free_bytes"]);
    assert_eq!(m["custos_camera_up{camera=\"door\"}"], 1.0);
    assert_eq!(m["custos_nodes_up"], 1.0);
    assert_eq!(m["custos_alarms_open{kind=\"camera-down\"}"], 0.0);
    assert!(m.keys().any(|k| k.starts_with("custos_commit_latency_seconds_bucket{le=")));
    // Every long-running loop is listed and up (the node has metrics and no backup; the
    // one-shot key pinning may have finished).
    for w in ["pings", "leader-duties", "expiry", "scrub", "picture", "alarms", "clock-jump", "metrics", "seal"] {
        assert_eq!(m.get(&format!("custos_worker_up{{worker=\"{w}\"}}")), Some(&1.0), "worker {w} in {m:?}");
    }
    assert!(!m.keys().any(|k| k.contains("worker=\"backup\"")), "no backup worker without [backup]");
    let failed: Vec<f64> = m.iter().filter(|(k, _)| k.starts_with("custos_worker_failed{")).map(|(_, v)| *v).collect();
    assert!(failed.len() >= 9 && failed.iter().all(|v| *v == 0.0), "no worker failed: {m:?}");

    // The camera's RTSP server goes away: a camera-down alarm is raised and recorded.
    cam.kill();
    let t_gone = now_ms();
    let alarm = wait_for(60, "a camera-down alarm for door", || async {
        let list = operator.list_alarms(false).await.ok()?;
        list.into_iter().find(|a| a.kind == "camera-down" && a.subject == "door")
    })
    .await;
    assert!(alarm.detail.contains("no footage committed"), "{}", alarm.detail);
    let st = operator.status().await.unwrap();
    assert!(st.alarms.iter().any(|a| a.contains("camera-down door")), "{:?}", st.alarms);
    let door = st.cameras.iter().find(|c| c.id == "door").unwrap();
    assert_ne!(door.state, "recording", "status lists door as not recording");
    let m = parse(&scrape(&node.metrics).1);
    assert_eq!(m["custos_camera_up{camera=\"door\"}"], 0.0);
    assert_eq!(m["custos_alarms_open{kind=\"camera-down\"}"], 1.0);
    let out = cli(&node, &node.token, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT RECORDING NOW") && text.contains("door"), "{text}");

    // Acknowledged with a note; never without one, and not by an auditor.
    let e = operator.ack_alarm(alarm.id, " ").await.unwrap_err().to_string();
    assert!(e.contains("--note"), "{e}");
    let auditor = node.user("audrey", "auditor", None).await;
    assert!(auditor.ack_alarm(alarm.id, "looked").await.is_err());
    let acked = operator.ack_alarm(alarm.id, "door camera unplugged by cleaners; guard posted").await.unwrap();
    assert_eq!(acked.acks.len(), 1);
    assert_eq!(acked.acks[0].user, "olga");
    assert_eq!(acked.cleared_ms, 0, "acknowledging does not clear");

    // The camera comes back on the same address: the alarm clears by itself.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let _cam = TestCamera::start_with(port, &["--keyint", "25", "--width", "320", "--height", "180"]);
    let cleared = wait_for(90, "the camera-down alarm cleared", || async {
        let all = operator.list_alarms(true).await.ok()?;
        all.into_iter().find(|a| a.id == alarm.id && a.cleared_ms != 0)
    })
    .await;
    assert!(cleared.cleared_ms > cleared.raised_ms);
    assert!(!operator.list_alarms(false).await.unwrap().iter().any(|a| a.id == alarm.id));
    let t_back = now_ms();

    // The compliance report finds the gap; both cameras keep footage back to their floor.
    let auditor_token = token(&node, "amir", "auditor").await;
    let out = cli(&node, &auditor_token, &["report", "compliance", "--days", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cams = r["cameras"].as_array().unwrap();
    let door = cams.iter().find(|c| c["camera"] == "door").unwrap();
    let lobby = cams.iter().find(|c| c["camera"] == "lobby").unwrap();
    assert_eq!(door["meets_floor"], true, "{door}");
    assert_eq!(lobby["meets_floor"], true, "{lobby}");
    let gaps = door["gaps"].as_array().unwrap();
    let longest = gaps.iter().map(|g| g["seconds"].as_i64().unwrap()).max().unwrap_or(0);
    assert!(longest >= 10 && longest <= (t_back - t_gone) / 1000 + 5, "door gaps {gaps:?}");
    assert!(door["coverage"].as_f64().unwrap() < lobby["coverage"].as_f64().unwrap());
    // Table and CSV say the same.
    let out = cli(&node, &auditor_token, &["report", "compliance", "--days", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("gaps in door:"), "{text}");
    let out = cli(&node, &auditor_token, &["report", "compliance", "--days", "1", "--csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.lines().next().unwrap().starts_with("camera,coverage_pct"));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // Operators may not run it; the report itself is audited.
    let op_token = token(&node, "otto", "operator").await;
    let out = cli(&node, &op_token, &["report", "compliance"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not allowed"));
    let audit_client = node.connect(Some(&auditor_token)).await.unwrap();
    let log = audit_client.audit_log(AuditLogRequest::default()).await.unwrap();
    let bodies: Vec<String> = log.iter().map(|e| String::from_utf8_lossy(&e.body).into_owned()).collect();
    assert!(bodies.iter().any(|b| b.contains("\"alarm-ack\"") && b.contains("guard posted")));
    assert!(bodies.iter().any(|b| b.contains("\"report-compliance\"")));
    drop(admin);
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compliance_report_flags_a_camera_whose_footage_does_not_reach_its_floor() {
    const DAY: i64 = 86_400_000;
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let mut cam = TestCamera::start_with(0, &["--keyint", "25", "--width", "320", "--height", "180"]);
    let mut node = Node::init(&[format!("gate={}", cam.url), "vault=test://snow".to_string()], 1_000);
    node.configure("expiry_every_s = 1");
    node.start_sim(&clock).await;
    let sec = node.user("sam", "security", None).await;
    let t0 = now_ms() - 10_000;
    sec.place_hold("case-vault", &["vault".to_string()], t0, None, "vault incident, keep everything").await.unwrap();
    wait_for(30, "footage of both cameras", || async {
        let a = sec.search("gate", t0, now_ms(), "compliance check: footage present").await.ok()?.0;
        let b = sec.search("vault", t0, now_ms(), "compliance check: footage present").await.ok()?.0;
        (a.len() >= 3 && b.len() >= 3).then_some(())
    })
    .await;

    // Gate's camera fails and stays down. Forty days on, expiry has deleted gate's footage
    // (30 days by default); vault's is held. Gate no longer has 30 days of footage.
    cam.kill();
    std::fs::write(&clock, (40 * DAY).to_string()).unwrap();
    // The clock jumped while the node ran: expiry waits for the jump to be confirmed.
    node.confirm_clock_jumps(&[node.node_id()]).await;
    let auditor = token(&node, "ada", "auditor").await;
    let r = wait_for(60, "gate's footage expired", || async {
        let out = cli(&node, &auditor, &["report", "compliance", "--json"]);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let gate = r["cameras"].as_array()?.iter().find(|c| c["camera"] == "gate")?.clone();
        (gate["deleted_segments"].as_u64()? >= 3 && gate["oldest"].is_null()).then_some((out.status, r))
    })
    .await;
    let (status, r) = r;
    assert!(!status.success(), "a broken floor makes the report exit non-zero");
    assert_eq!(r["breaking_floor"], 1);
    let cams = r["cameras"].as_array().unwrap();
    let gate = cams.iter().find(|c| c["camera"] == "gate").unwrap();
    let vault = cams.iter().find(|c| c["camera"] == "vault").unwrap();
    assert_eq!(gate["meets_floor"], false, "{gate}");
    assert_eq!(vault["meets_floor"], true, "{vault}");
    assert_eq!(vault["holds"].as_array().unwrap().len(), 1);
    assert!(!gate["gaps"].as_array().unwrap().is_empty());
    let out = cli(&node, &auditor, &["report", "compliance"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FLOOR BROKEN: gate"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention floor"));
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patrols_and_handovers_are_recorded_listed_and_audited() {
    let mut node = Node::init(&["lobby=test://ball".to_string(), "ghost=rtsp://127.0.0.1:9/none".to_string()], 1_000);
    node.start().await;
    let olga = token(&node, "olga", "operator").await;
    let _ = token(&node, "pavel", "operator").await;
    wait_for(30, "lobby recording", || async {
        let out = cli(&node, &olga, &["status", "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let lobby = s["cameras"].as_array()?.iter().find(|c| c["id"] == "lobby")?.clone();
        (lobby["state"] == "recording").then_some(())
    })
    .await;
    // Long enough for the camera that never connects to count as down.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;

    let out = cli(&node, &olga, &["patrol", "--notes", "walked wards 1-3; car park gate checked by hand"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("camera lobby: recording"), "{text}");
    assert!(text.contains("camera ghost: NOT RECORDING"), "{text}");
    assert!(text.contains("node 1 (campus main): up"), "{text}");
    let out = cli(&node, &olga, &["patrol", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &list[0];
    assert_eq!(p["user"], "olga");
    assert!(p["problems"].as_u64().unwrap() >= 1, "{p}");
    assert!(p["notes"].as_str().unwrap().contains("car park"));

    // Handovers: in writing, to someone else who exists.
    let out = cli(
        &node,
        &olga,
        &["shift", "handover", "--to", "pavel", "--notes", "ghost camera down since 06:00; IT called"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (to, notes, want) in [
        ("olga", "self", "not to yourself"),
        ("nobody", "notes", "does not exist"),
        ("pavel", " ", "--notes is required"),
    ] {
        let out = cli(&node, &olga, &["shift", "handover", "--to", to, "--notes", notes]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(want), "{to}: {e}");
    }
    let out = cli(&node, &olga, &["shift", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = &list["handovers"];
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!((list[0]["user"].as_str(), list[0]["to"].as_str()), (Some("olga"), Some("pavel")));
    // An auditor may read the duty log but not write it; both entries are in the audit log.
    let ada = token(&node, "ada", "auditor").await;
    let out = cli(&node, &ada, &["patrol"]);
    assert!(!out.status.success());
    let out = cli(&node, &ada, &["patrol", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("patrol by olga"));
    let audit = node.connect(Some(&ada)).await.unwrap().audit_log(AuditLogRequest::default()).await.unwrap();
    let bodies: Vec<String> = audit.iter().map(|e| String::from_utf8_lossy(&e.body).into_owned()).collect();
    assert!(bodies.iter().any(|b| b.contains("\"action\":\"patrol\"") && b.contains("\"user\":\"olga\"")));
    assert!(bodies.iter().any(|b| b.contains("\"action\":\"shift-handover\"") && b.contains("to pavel")));
    assert!(bodies.iter().any(|b| b.contains("\"duty-record\"") && b.contains("denied")));
    node.stop();
}

/// The alert rules IT loads into Prometheus parse and reference Custos's metrics.
#[test]
fn prometheus_alert_rules_pass_promtool() {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus/custos-alerts.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    for metric in [
        "custos_camera_up",
        "custos_nodes_down",
        "custos_disk_free_bytes",
        "custos_backup_lag_seconds",
        "custos_worker_failed",
    ] {
        assert!(text.contains(metric), "the rules watch {metric}");
    }
    match Command::new("promtool").arg("check").arg("rules").arg(&rules).output() {
        Ok(out) => assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("promtool not installed ({e}); ops/setup.sh installs it from Debian's prometheus package"),
    }
}

/// The example configs in ops/examples load as they are, once init/join's keys are in.
#[test]
fn example_configs_for_three_campuses_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/examples");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (custos_node::segment::seal::generate_identity(), custos_node::segment::seal::generate_identity());
    let mut campuses = Vec::new();
    for campus in ["east", "west", "north"] {
        let text = std::fs::read_to_string(root.join(campus).join("custos.toml")).unwrap();
        let text = text
            .replace("age1…cluster-archive-recipient…", &a.recipient)
            .replace("age1…offline-recovery-recipient…", &b.recipient);
        let path = dir.path().join(format!("{campus}.toml"));
        std::fs::write(&path, text).unwrap();
        let cfg = custos_node::config::NodeConfig::load(&path).unwrap_or_else(|e| panic!("{campus}: {e}"));
        assert!(cfg.metrics_listen.is_some() && cfg.backup.is_some());
        campuses.push(cfg.campus);
    }
    assert_eq!(campuses, ["east", "west", "north"]);
}

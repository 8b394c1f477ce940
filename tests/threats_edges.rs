//! Threats at Custos's edges, each against real `custos-node` processes and the `custos`
//! CLI (issue 16, items 6 to 8):
//! - a recorded file or a test pattern fed in as a camera puts footage no camera saw into
//!   the archive: refused unless the node is set up for trials, and seed cameras from the
//!   config file are registered once, audited, and stay removed;
//! - camera credentials must not leak through listings, status, the audit log, the node's
//!   log or the metrics, nor through files other local users can read;
//! - what the CLI prints must not attack the person reading it: formulas in CSV cells,
//!   control characters on a terminal, and an export verified without checking who
//!   signed it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{now_ms, wait_for, Node, TestCamera};
use custos_client::AuditLogRequest;
use tonic::Code;

const HINT: &str = "set allow_test_sources = true in custos.toml for trials";

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "custos failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Audit entries as JSON values.
async fn audit(node: &Node, auditor: &str) -> Vec<serde_json::Value> {
    let c = node.connect(Some(auditor)).await.unwrap();
    let log = c.audit_log(AuditLogRequest::default()).await.unwrap();
    log.iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect()
}

async fn token(node: &Node, name: &str, role: &str) -> String {
    node.user_token(name, role, None, 0).await
}

/// An admin could feed a recorded clip (`file://`) or a test pattern in as a camera, and
/// the archive would seal and sign that footage like a real camera's. A node refuses
/// both unless its config allows test sources: at `init` for seed cameras, at
/// `AddCamera` (audited), and in the recorder for a camera it is assigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_test_sources_are_refused_unless_the_node_allows_test_sources() {
    // init refuses a seed test source without --allow-test-sources, saying what to do.
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::bin("custos-node"))
        .arg("init")
        .arg("--data")
        .arg(tmp.path().join("data"))
        .args([
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
            "--metrics-listen",
            "off",
            "--web-listen",
            "off",
        ])
        .args(["--camera", "lobby=test://ball"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(HINT), "{err}");

    // A trial node records a test pattern...
    let mut node = Node::init(&[], 1_000);
    let admin = node.start().await;
    admin.add_camera("pattern", "test://ball", "").await.unwrap();
    wait_for(30, "the test pattern recorded", || async {
        let s = admin.status().await.ok()?;
        s.cameras.iter().any(|c| c.id == "pattern" && c.state == "recording").then_some(())
    })
    .await;
    node.stop();

    // ...and once it no longer allows test sources, it refuses to add or record them.
    node.configure("allow_test_sources = false");
    let admin = node.start().await;
    let restarted = now_ms();
    for (id, source) in [("replay", "file:///etc/hostname"), ("pattern2", "test://snow")] {
        let e = admin.add_camera(id, source, "").await.unwrap_err();
        assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
        assert!(e.to_string().contains(HINT), "{e}");
    }
    admin.add_camera("door", "rtsp://127.0.0.1:9/door", "").await.expect("a camera is still accepted");
    assert!(!admin.list_cameras().await.unwrap().iter().any(|c| c.id == "replay" || c.id == "pattern2"));
    let down = wait_for(20, "the test-pattern camera refused by the recorder", || async {
        let s = admin.status().await.ok()?;
        s.cameras.into_iter().find(|c| c.id == "pattern" && c.state == "down" && c.last_error.contains(HINT))
    })
    .await;
    println!("status: {} {}: {}", down.id, down.state, down.last_error);
    assert!(node.log().contains("refusing to record camera"), "the log says why");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sec = node.user("guard", "security", None).await;
    let (after, _) = sec.search("pattern", restarted, now_ms(), "threat test: nothing recorded since").await.unwrap();
    assert!(after.iter().all(|s| s.start_ms < restarted), "recorded after the restart: {after:?}");

    // The refused attempt is in the audit log.
    let ada = token(&node, "ada", "auditor").await;
    let log = audit(&node, &ada).await;
    assert!(
        log.iter().any(|b| b["action"] == "camera-add"
            && b["outcome"] == "rejected"
            && b["cameras"][0] == "replay"
            && b["reason"].as_str().unwrap().contains(HINT)),
        "no rejected camera-add for replay"
    );
    node.stop();
}

/// Seed cameras in `custos.toml` were registered at every start when the catalog lacked
/// them, without an audit entry: a camera an administrator removed (a camera pointed at
/// a changing room, say) came back on the next restart. Now each is registered once per
/// cluster, audited as coming from the config file, and stays removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_cameras_are_registered_once_audited_and_stay_removed_after_restarts() {
    let mut node = Node::init(&["lobby=test://ball".into(), "gate=test://snow".into()], 1_000);
    let admin = node.start().await;
    let ada = token(&node, "ada", "auditor").await;
    let seeds = |log: &[serde_json::Value]| -> Vec<String> {
        log.iter()
            .filter(|b| b["action"] == "camera-add" && b["outcome"] == "ok")
            .map(|b| {
                let d = b["detail"].as_str().unwrap();
                assert!(d.contains("seed camera") && d.contains("config file") && d.contains("custos.toml"), "{d}");
                b["cameras"][0].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(seeds(&audit(&node, &ada).await), ["lobby", "gate"]);
    node.approved(admin.remove_camera("lobby").await).await.unwrap();
    node.stop();

    for _ in 0..2 {
        let admin = node.start().await;
        let ids: Vec<String> = admin.list_cameras().await.unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["gate"], "the removed seed camera came back");
        node.stop();
    }
    node.start().await;
    let log = audit(&node, &ada).await;
    assert_eq!(seeds(&log), ["lobby", "gate"], "each seed is registered (and audited) once");
    assert_eq!(log.iter().filter(|b| b["action"] == "camera-remove" && b["outcome"] == "ok").count(), 1);
    node.stop();
}

use common::scrape_metrics as scrape;

/// Every file and directory under `dir` whose mode lets the group or others in.
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(format!("{} {:o}", p.display(), mode));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// A camera URL carries its credentials (`rtsp://user:password@host/…?token=…`). The old
/// redaction cut at the first `@`, so a password holding `@` showed its tail, and query
/// tokens showed whole. Anyone who may list cameras or read status, the audit log, the
/// node's log or the metrics could then log into the camera. Nor may other local users
/// read the keys, the config (which holds the URLs) or the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_credentials_never_show_in_listings_status_audit_logs_or_metrics() {
    let cam = TestCamera::start_with(0, &["--width", "320", "--height", "180"]);
    let secret_url = format!("rtsp://viewer:p@ss@word-7Q@127.0.0.1:{}/x?token=tok-abc-991&channel=1", cam.port);
    let closed_url = "rtsp://admin:hunter2-Zq@127.0.0.1:9/s?Password=pw-Zq-77";
    let secrets = ["p@ss", "ss@word", "word-7Q", "tok-abc-991", "hunter2-Zq", "pw-Zq-77", "cret-Zq"];
    let mut node = Node::init(&["lobby=test://ball".into()], 1_000);
    let modes = open_to_others(&node.data());
    assert!(modes.is_empty(), "init left files others can read: {modes:?}");
    node.start().await;

    let mut seen = String::new();
    let out = node.cli(&node.token, &["camera", "add", "door", "--source", &secret_url, "--name", "Door"]);
    seen += &ok(&out);
    let out = node.cli(&node.token, &["camera", "add", "closed", "--source", closed_url]);
    seen += &ok(&out);
    let out = node.cli(&node.token, &["camera", "add", "bad", "--source", "rtsp://u:se cret-Zq@h/x"]);
    assert!(!out.status.success());
    seen += &String::from_utf8_lossy(&out.stderr);

    // Both cameras fail (no such path; nothing listening), so GStreamer's errors reach
    // status and the log.
    let admin = node.connect(Some(&node.token)).await.unwrap();
    let status = wait_for(45, "both cameras down with an error", || async {
        let s = admin.status().await.ok()?;
        let down = |id: &str| s.cameras.iter().any(|c| c.id == id && c.state == "down" && !c.last_error.is_empty());
        (down("door") && down("closed")).then_some(s)
    })
    .await;
    for c in &status.cameras {
        println!("status {}: {} {}", c.id, c.state, c.last_error);
    }

    let operator = token(&node, "olga", "operator").await;
    let ada = token(&node, "ada", "auditor").await;
    let list = ok(&node.cli(&operator, &["camera", "list"]));
    assert!(list.contains(&format!("rtsp://***@127.0.0.1:{}/x?token=***&channel=1", cam.port)), "{list}");
    assert!(list.contains("rtsp://***@127.0.0.1:9/s?Password=***"), "{list}");
    seen += &list;
    seen += &ok(&node.cli(&operator, &["camera", "list", "--json"]));
    seen += &ok(&node.cli(&operator, &["status"]));
    seen += &ok(&node.cli(&operator, &["status", "--json"]));
    seen += &ok(&node.cli(&operator, &["alarms", "--all"]));
    seen += &ok(&node.cli(&ada, &["audit", "log"]));
    seen += &ok(&node.cli(&ada, &["audit", "log", "--csv"]));
    let audit_json = ok(&node.cli(&ada, &["audit", "log", "--json"]));
    assert!(audit_json.contains("source=rtsp://***@127.0.0.1"), "the audit entry names the camera's host");
    seen += &audit_json;
    seen += &scrape(&node.metrics);
    seen += &node.log();
    for s in secrets {
        assert!(!seen.contains(s), "{s:?} leaked:\n{seen}");
    }

    // Keys, config, catalog (RocksDB), blobs and pending records: owner-only.
    wait_for(30, "lobby footage stored", || async {
        let s = admin.status().await.ok()?;
        (s.segments >= 2).then_some(())
    })
    .await;
    node.stop();
    let modes = open_to_others(&node.data());
    assert!(modes.is_empty(), "files others can read: {modes:?}");
    assert!(node.data().join("catalog").is_dir() && node.data().join("blobs").is_dir());
}

/// Metrics are plain HTTP without authentication and name every camera and node; they
/// listened on the API's address (often 0.0.0.0) unless told otherwise.
#[test]
fn metrics_listen_on_loopback_unless_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let out = std::process::Command::new(common::bin("custos-node"))
        .arg("init")
        .arg("--data")
        .arg(tmp.path().join("data"))
        .args(["--listen", &format!("0.0.0.0:{port}"), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metrics_listen"], "127.0.0.1:9464", "{v}");
    let cfg = std::fs::read_to_string(tmp.path().join("data/custos.toml")).unwrap();
    assert!(cfg.contains("metrics_listen = \"127.0.0.1:9464\""), "{cfg}");
    // The console listens where the API does (it is authenticated HTTPS), on port 8443.
    assert!(cfg.contains("web_listen = \"0.0.0.0:8443\""), "{cfg}");
    assert!(v["web_url"].as_str().is_some_and(|u| u.starts_with("https://") && u.ends_with(":8443/")), "{v}");
    assert!(open_to_others(&tmp.path().join("data")).is_empty());
}

/// Splits CSV text into rows of cells (RFC 4180 quoting).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

/// Free text reaches auditors and operators: a purpose that begins with `=` became a
/// live formula when the audit CSV was opened in a spreadsheet, and escape sequences in
/// a purpose or a note cleared or rewrote the reader's terminal. Now CSV cells that a
/// spreadsheet would run get a leading `'`, and control characters print escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_terminal_output_cannot_attack_their_reader() {
    let mut node = Node::init(&["lobby=test://ball".into(), "ghost=rtsp://127.0.0.1:9/none".into()], 1_000);
    node.start().await;
    let sec = node.user("guard", "security", None).await;
    let olga_token = token(&node, "olga", "operator").await;
    let olga = node.connect(Some(&olga_token)).await.unwrap();
    let _ = token(&node, "pavel", "operator").await;
    let ada = token(&node, "ada", "auditor").await;
    let formulas = [
        "=HYPERLINK(\"http://x\",\"y\") incident 12",
        "+cmd|' /C calc'!A0 incident 12",
        "-2+3 incident twelve, ward 3",
        "@SUM(1+1) incident 12 ward 3",
        "\t=1+2 incident 12 ward 3",
    ];
    for p in formulas {
        sec.search("lobby", now_ms() - 60_000, now_ms(), p).await.unwrap();
    }
    let esc = "incident 12 \x1b[2J\x1b]0;owned\x07 screen cleared";
    sec.search("lobby", now_ms() - 60_000, now_ms(), esc).await.unwrap();
    olga.handover("pavel", "ghost down\x1b[2J\rALL CLEAR, nothing open").await.unwrap();

    // The audit CSV: no cell a spreadsheet would run.
    let csv = ok(&node.cli(&ada, &["audit", "log", "--csv"]));
    let rows = csv_rows(&csv);
    assert!(rows.len() > 6, "{csv}");
    let header = &rows[0];
    let purpose = header.iter().position(|h| h == "purpose").unwrap();
    for row in &rows[1..] {
        for cell in row {
            let live = cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell != "-";
            assert!(!live, "a live formula in the CSV: {cell:?}");
        }
    }
    let purposes: Vec<&str> = rows[1..].iter().map(|r| r[purpose].as_str()).collect();
    assert!(purposes.contains(&"'=HYPERLINK(\"http://x\",\"y\") incident 12"), "{purposes:?}");
    assert!(purposes.contains(&"'-2+3 incident twelve, ward 3"), "{purposes:?}");
    assert!(!csv.contains('\x1b'), "raw escape in the CSV");

    // Terminals: escapes printed, never obeyed.
    let log = ok(&node.cli(&ada, &["audit", "log"]));
    assert!(!log.contains('\x1b') && !log.contains('\x07'), "raw control characters in `audit log`");
    assert!(log.contains("\\x1b[2J\\x1b]0;owned\\x07"), "{log}");
    let shifts = ok(&node.cli(&olga_token, &["shift", "list"]));
    assert!(!shifts.contains('\x1b') && !shifts.contains('\r'), "raw control characters in `shift list`");
    assert!(shifts.contains("ghost down\\x1b[2J\\rALL CLEAR"), "{shifts}");

    // An alarm acknowledged with such a note.
    let alarm = wait_for(40, "the ghost camera's alarm", || async {
        olga.list_alarms(false).await.ok()?.into_iter().find(|a| a.subject == "ghost")
    })
    .await;
    olga.ack_alarm(alarm.id, "\x1b[2J\x1b[1;1Hcamera replaced\x08\x08\x08").await.unwrap();
    let out = ok(&node.cli(&olga_token, &["alarms", "--all"]));
    assert!(!out.contains('\x1b') && !out.contains('\x08'), "raw control characters in `alarms`");
    assert!(out.contains("\\x1b[2J\\x1b[1;1Hcamera replaced\\x08"), "{out}");
    node.stop();
}

/// `custos export verify` without `--pubkey` said "OK … every hash and the signature
/// check" for a package signed by whatever key its own manifest names, so a forger who
/// re-signed an altered package with their own key got the same answer as the hospital.
/// Now it says the signer was not checked and fails unless `--integrity-only` is given;
/// and the fingerprint people compare keys by is 128 bits, not 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_verify_without_a_key_says_the_signer_was_not_checked_and_fails() {
    use custos_evidence::export::{Manifest, SigningKey, MANIFEST_FILE, SIGNATURE_FILE};
    let mut node = Node::init(&["lobby=test://ball".into()], 1_000);
    node.start().await;
    let sec = node.user("li.wei", "security", None).await;
    let appr = node.user("dr.chen", "approver", None).await;
    let purpose = "court order 2026-115: theft at the lobby";
    let t0 = now_ms();
    let segs = wait_for(40, "three segments", || async {
        let s = sec.search("lobby", t0 - 60_000, now_ms(), purpose).await.ok()?.0;
        (s.len() >= 3).then_some(s)
    })
    .await;
    let e = sec
        .request_export(
            "case-8",
            "City Police",
            "letter 8",
            purpose,
            &[("lobby".into(), segs[0].start_ms, segs[2].end_ms)],
        )
        .await
        .unwrap();
    appr.decide_export(&e.id, true, "letter checked").await.unwrap();
    sec.run_export(&e.id).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    sec.download_export(&e.id, &pkg, |_, _| {}).await.unwrap();
    let key = sec.signing_key().await.unwrap();
    node.stop();

    let verify = |dir: &Path, extra: &[&str]| {
        std::process::Command::new(common::bin("custos"))
            .args(["export", "verify"])
            .arg(dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let out = verify(&pkg, &[]);
    assert!(!out.status.success(), "no --pubkey must not pass: {}", text(&out));
    assert!(
        text(&out).contains("SIGNER NOT CHECKED") && text(&out).contains("signer was NOT checked"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--pubkey"), "says what to do");
    let out = verify(&pkg, &["--integrity-only"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SIGNER NOT CHECKED"), "{}", text(&out));
    let out = verify(&pkg, &["--pubkey", &key.public_key]);
    assert!(out.status.success() && text(&out).contains("signed by the expected key"), "{}", text(&out));

    // A forger alters the package and signs it with their own key.
    let mut m: Manifest = serde_json::from_slice(&std::fs::read(pkg.join(MANIFEST_FILE)).unwrap()).unwrap();
    let forger = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
    m.organisation = "Someone Else".into();
    m.signing_key = forger.public_hex();
    let bytes = m.to_bytes();
    std::fs::write(pkg.join(MANIFEST_FILE), &bytes).unwrap();
    std::fs::write(pkg.join(SIGNATURE_FILE), forger.sign_hex(&bytes)).unwrap();
    let out = verify(&pkg, &[]);
    assert!(!out.status.success(), "a forged package passed without --pubkey: {}", text(&out));
    let out = verify(&pkg, &["--pubkey", &key.public_key]);
    assert!(!out.status.success(), "a forged package passed with the hospital's key: {}", text(&out));

    // The fingerprint people read aloud: 32 hex digits (128 bits) in groups of four.
    let fp = key.fingerprint;
    let digits: String = fp.chars().filter(|c| *c != '-').collect();
    assert!(digits.len() >= 32 && digits.chars().all(|c| c.is_ascii_hexdigit()), "{fp}");
    assert_eq!(fp.split('-').count(), digits.len() / 4, "{fp}");
}

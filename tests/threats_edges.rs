//! Threats at Custos's edges, each against real `custos-node` processes and the `custos`
//! CLI (issue 16):
//! - what the CLI prints must not attack the person reading it: formulas in CSV cells,
//!   control characters on a terminal, and an export verified without checking who
//!   signed it.

mod common;

use std::path::Path;

use common::{now_ms, wait_for, Node};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "custos failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn token(node: &Node, name: &str, role: &str) -> String {
    let admin = node.connect(Some(&node.token)).await.unwrap();
    admin.add_user(name, role, None, 0).await.unwrap().token
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

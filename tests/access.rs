//! Identity, roles and the audit log, black-box: a real node, real tokens, real RocksDB.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{bin, now_ms, wait_for, Node};
use custos_client::{AuditLogRequest, Client, ClientError};
use custos_evidence::{verify_chain, AuditBody, AuditRecord};
use tonic::Code;

const PURPOSE: &str = "incident 2026-0412: fall near lobby lift";

/// True if the call was refused by authorisation. Other failures (a hold that does not
/// exist, say) mean authorisation let the call through.
fn denied(r: Result<impl Sized, ClientError>) -> bool {
    match r {
        Ok(_) => false,
        Err(e) => {
            assert_ne!(e.code(), Some(Code::Unauthenticated), "every user here is authenticated: {e}");
            e.code() == Some(Code::PermissionDenied)
        }
    }
}

async fn audit_bodies(auditor: &Client, filter: AuditLogRequest) -> Vec<AuditBody> {
    auditor.audit_log(filter).await.unwrap().iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect()
}

/// Every cell of the role × action table, observed through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_action_matrix_cell_by_cell() {
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    let admin = node.start().await;
    let mut users = BTreeMap::new();
    for role in ["operator", "security", "approver", "auditor", "admin", "investigator"] {
        let case = (role == "investigator").then_some("case-7");
        users.insert(role, node.user(&format!("{role}-1"), role, case).await);
    }
    let t0 = now_ms() - 60_000;
    wait_for(30, "a committed segment", || async {
        let (s, _) = users["security"].search("lobby", t0, now_ms(), PURPOSE).await.ok()?;
        (!s.is_empty()).then_some(())
    })
    .await;

    // Expected table, written out independently of the node's own table.
    //  list status search fetch cams users audit policy set-policy place-hold holds release
    //  join-token | export: request decide run list download
    let (t, f) = (true, false);
    let expected: BTreeMap<&str, [bool; 18]> = BTreeMap::from([
        ("operator", [t, t, t, t, f, f, f, t, f, t, t, f, f, f, f, f, f, f]),
        ("security", [t, t, t, t, f, f, f, t, f, t, t, t, f, t, f, t, t, t]),
        ("approver", [t, t, f, f, f, f, f, t, f, f, t, t, f, f, t, f, t, f]),
        ("auditor", [t, t, f, f, f, f, t, t, f, f, t, f, f, f, f, f, t, f]),
        ("admin", [t, t, f, f, t, t, f, t, t, f, f, f, t, f, f, f, f, f]),
        ("investigator", [f, f, f, f, f, f, f, f, f, f, f, f, f, f, f, f, t, t]),
    ]);
    for (role, c) in &users {
        let now = now_ms();
        let got = [
            !denied(c.list_cameras().await),
            !denied(c.status().await),
            !denied(c.search("lobby", now - 30_000, now, PURPOSE).await),
            !denied(c.fetch("lobby", now - 30_000, now, PURPOSE, &mut Vec::new(), |_| {}).await),
            !denied(c.add_camera(&format!("cam-by-{role}"), "test://snow", "").await),
            !denied(c.add_user(&format!("made-by-{role}"), "operator", None, 0).await),
            !denied(c.audit_log(AuditLogRequest { limit: 1, ..Default::default() }).await),
            !denied(c.list_policies().await),
            !denied(c.set_policy(None, 30, 90).await),
            !denied(c.place_hold("case-1", &["lobby".to_string()], now - 60_000, None, PURPOSE).await),
            !denied(c.list_holds(true).await),
            !denied(c.approve_release("H-999999").await),
            !denied(c.join_token(0).await),
            !denied(c.request_export("case-7", "Police", "L-1", PURPOSE, &[("lobby".into(), now - 30_000, now)]).await),
            !denied(c.decide_export("E-999999", true, "").await),
            !denied(c.run_export("E-999999").await),
            !denied(c.list_exports().await),
            !denied(c.download_export_file("E-999999", "manifest.json", 0, &mut Vec::new(), |_| {}).await),
        ];
        assert_eq!(
            &got, &expected[role],
            "role {role}: list, status, search, fetch, cameras, users, audit, policy, set-policy, place-hold, holds, \
             release, join-token, export request/decide/run/list/download"
        );
    }

    // Operators see the last 24 hours only.
    let old = now_ms() - 48 * 3600 * 1000;
    assert!(denied(users["operator"].search("lobby", old, old + 60_000, PURPOSE).await));
    // Investigators need a case, and only investigators take one.
    let e = admin.add_user("inv-2", "investigator", None, 0).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument));
    let e = admin.add_user("sec-2", "security", Some("case-7"), 0).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument));
    let e = admin.add_user("x", "janitor", None, 0).await.unwrap_err();
    assert!(e.to_string().contains("unknown role"), "{e}");
    node.stop();
}

/// Revoked tokens and disabled users are refused at once; sensitive cameras need a grant;
/// each search or fetch leaves exactly one audit entry with its purpose; denials and
/// unauthenticated attempts are audited; the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_grants_and_audit_entries() {
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    let admin = node.start().await;
    admin.add_camera_with("theatre-1", "test://snow", "Operating theatre 1", true).await.unwrap();
    let guard = node.user("guard", "security", None).await;
    let auditor = node.user("audrey", "auditor", None).await;
    let t0 = now_ms() - 60_000;
    wait_for(30, "segments on both cameras", || async {
        let a = guard.search("lobby", t0, now_ms(), PURPOSE).await.ok()?.0;
        let b = admin.status().await.ok()?.cameras.into_iter().find(|c| c.id == "theatre-1")?;
        (!a.is_empty() && b.last_segment_end_ms > 0).then_some(())
    })
    .await;

    // Exactly one audit entry per access, carrying the purpose.
    let count = |action: &'static str| {
        let auditor = auditor.clone();
        async move {
            audit_bodies(
                &auditor,
                AuditLogRequest { user: "guard".into(), action: action.into(), ..Default::default() },
            )
            .await
        }
    };
    let before_s = count("search").await.len();
    let before_f = count("fetch").await.len();
    let now = now_ms();
    guard.search("lobby", now - 20_000, now, "unique purpose 4711 for the search").await.unwrap();
    guard
        .fetch("lobby", now - 20_000, now, "unique purpose 4712 for the fetch", &mut Vec::new(), |_| {})
        .await
        .unwrap();
    let s = count("search").await;
    let f = count("fetch").await;
    assert_eq!((s.len(), f.len()), (before_s + 1, before_f + 1));
    let last = s.last().unwrap();
    assert_eq!(last.event.purpose, "unique purpose 4711 for the search");
    assert_eq!(last.event.cameras, vec!["lobby".to_string()]);
    assert_eq!((last.event.from_ms, last.event.to_ms), (Some(now - 20_000), Some(now)));
    assert_eq!(last.event.outcome, "allowed");
    assert!(last.event.client.starts_with("127.0.0.1:"), "client address recorded: {}", last.event.client);
    assert_eq!(f.last().unwrap().event.purpose, "unique purpose 4712 for the fetch");
    // A vague purpose is refused before anything is read.
    let e = guard.search("lobby", now - 20_000, now, "test").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument));

    // Sensitive camera: refused without a grant (and the refusal is audited), allowed with one.
    let now = now_ms();
    assert!(denied(guard.search("theatre-1", now - 30_000, now, PURPOSE).await));
    let d = audit_bodies(
        &auditor,
        AuditLogRequest { user: "guard".into(), camera: "theatre-1".into(), ..Default::default() },
    )
    .await;
    assert_eq!(d.last().unwrap().event.outcome, "denied");
    assert!(d.last().unwrap().event.reason.contains("grant"));
    let change = admin.grant_camera("guard", "theatre-1", true).await.unwrap().expect("a grant waits for an approver");
    assert!(denied(guard.search("theatre-1", now - 30_000, now, PURPOSE).await), "not before it is approved");
    node.approve(change).await;
    guard.search("theatre-1", now - 30_000, now, PURPOSE).await.unwrap();
    admin.grant_camera("guard", "theatre-1", false).await.unwrap();
    assert!(denied(guard.search("theatre-1", now - 30_000, now, PURPOSE).await));

    // Revoking a token refuses it at once; the user's other tokens still work.
    let asked = admin.issue_token("guard", 1).await.unwrap();
    assert!(asked.token.is_empty() && asked.change_id != 0, "a token for someone else waits for an approver");
    let second = node.approve(asked.change_id).await.token.unwrap();
    let guard2 = node.connect(Some(&second.token)).await.unwrap();
    guard2.list_cameras().await.unwrap();
    admin.revoke_token(&second.token_id).await.unwrap();
    let e = guard2.list_cameras().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unauthenticated));
    assert!(e.to_string().contains("revoked"), "{e}");
    guard.list_cameras().await.unwrap();

    // Disabling a user refuses every token of theirs.
    admin.disable_user("guard").await.unwrap();
    let e = guard.search("lobby", now - 20_000, now, PURPOSE).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unauthenticated));
    assert!(e.to_string().contains("disabled"), "{e}");
    assert_eq!(admin.disable_user(&"x".repeat(65)).await.unwrap_err().code(), Some(Code::InvalidArgument));
    assert_eq!(admin.disable_user("nobody").await.unwrap_err().code(), Some(Code::NotFound));

    // Unauthenticated attempts and admin actions are in the log too.
    let anon = node.connect(Some("cst_forged")).await.unwrap();
    assert_eq!(anon.search("lobby", now - 1000, now, PURPOSE).await.unwrap_err().code(), Some(Code::Unauthenticated));
    let all = audit_bodies(&auditor, AuditLogRequest::default()).await;
    assert!(all.iter().any(|b| b.event.outcome == "unauthenticated" && b.event.user == "-"));
    for action in ["user-add", "camera-add", "camera-grant", "token-issue", "token-revoke", "user-disable"] {
        assert!(all.iter().any(|b| b.event.action == action && b.event.user == "admin"), "{action} audited");
    }
    // The whole chain verifies, through the CLI as an auditor would run it.
    let entries = auditor.audit_log(AuditLogRequest::default()).await.unwrap();
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.hash.as_slice().try_into().unwrap()).collect();
    verify_chain(entries.iter().zip(&hashes).map(|(e, h)| (e.body.as_slice(), h))).unwrap();
    node.stop();
}

fn cli(node: &Node, token: &str, args: &[&str]) -> std::process::Output {
    node.cli(token, args)
}

/// `custos user add` prints the token alone on its last line; an audit record altered on
/// disk makes `custos audit verify` report the break and where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_token_line_and_audit_tamper_detection() {
    let mut node = Node::init(&[], 4_000);
    node.start().await;
    let out = cli(&node, &node.token, &["user", "add", "audrey", "--role", "auditor"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().to_string();
    assert!(token.starts_with("cst_") && !token.contains(' '), "last line is the token alone: {stdout:?}");
    // Security users wait for the approver, who receives their tokens (two-person flow
    // through the CLI, as the runbook shows it).
    for name in ["ann", "bob", "cem"] {
        let out = cli(&node, &node.token, &["user", "add", name, "--role", "security"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8(out.stdout).unwrap();
        let id = said
            .strip_prefix("pending change ")
            .and_then(|r| r.split(':').next())
            .unwrap_or_else(|| panic!("the admin alone gets a pending change: {said:?}"));
        let out = cli(&node, &node.approver, &["change", "approve", id]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let t = stdout.lines().last().unwrap();
        assert!(
            t.starts_with("cst_") && !t.contains(' '),
            "the approver gets the token alone on the last line: {stdout:?}"
        );
    }
    let ok = cli(&node, &token, &["audit", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));
    let csv = cli(&node, &token, &["audit", "log", "--csv", "--action", "user-add"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("seq,time,user,role,action,outcome"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 7, "header, auditor's, and request and effect for 3 security users: {csv}");
    node.stop();

    // Test-only tamper tool: rewrite the first security user's entry on disk, as an
    // intruder with root would. (Its number depends on whether the harness's readiness
    // probe raced the founding admin's commit and left an `unauthenticated` entry.)
    let seq = {
        let db = custos_node::meta::db::open(&node.data().join("catalog")).unwrap();
        let cf = db.cf_handle(custos_node::meta::db::CF_AUDIT).unwrap();
        let (seq, mut rec) = (1u64..10)
            .find_map(|seq| {
                let rec: AuditRecord =
                    custos_node::meta::types::decode(&db.get_cf(cf, seq.to_be_bytes()).unwrap()?).unwrap();
                String::from_utf8_lossy(&rec.body).contains("role=security").then_some((seq, rec))
            })
            .expect("a user-add entry with role=security");
        let body = String::from_utf8(rec.body.clone()).unwrap().replace("role=security", "role=approver");
        rec.body = body.into_bytes();
        db.put_cf(cf, seq.to_be_bytes(), custos_node::meta::types::encode(&rec)).unwrap();
        seq
    };
    node.start().await;
    let bad = cli(&node, &token, &["audit", "verify"]);
    assert!(!bad.status.success(), "verify must fail on a tampered chain");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(&format!("BROKEN at entry {seq}")) && err.contains("altered"), "{err}");
    node.stop();
}

/// The client API is TLS: plaintext and a wrong CA are refused, and the CLI says how to
/// pass the CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_api_requires_tls_and_verifies_the_node() {
    let mut node = Node::init(&[], 4_000);
    node.start().await;
    node.connect(Some(&node.token)).await.unwrap().list_cameras().await.unwrap();

    let plain = match Client::connect(&node.addr, Some(&node.token), &custos_client::Transport::Plaintext).await {
        Ok(c) => c.list_cameras().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(plain.is_err(), "plaintext must not reach a TLS node");

    let other = Node::init(&[], 4_000);
    let wrong_ca = custos_client::Transport::Tls { ca_pem: std::fs::read(&other.ca_file).unwrap() };
    let res = match Client::connect(&node.addr, Some(&node.token), &wrong_ca).await {
        Ok(c) => c.list_cameras().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(res.is_err(), "a node whose certificate is not from the expected CA is refused");

    let out = Command::new(bin("custos"))
        .args(["--addr", &node.addr, "--token", &node.token, "camera", "list"])
        .env_remove("CUSTOS_CA")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"), "{}", String::from_utf8_lossy(&out.stderr));
    node.stop();
}

/// The 30-day floor: refused through the API and the CLI with a message naming the
/// floor; accepted policies are shown and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_floor_is_refused_everywhere() {
    let mut node = Node::init(&["ward-3=test://snow".to_string()], 4_000);
    let admin = node.start().await;
    for (min, max) in [(29, 60), (0, 0), (1, 365)] {
        let e = admin.set_policy(None, min, max).await.unwrap_err();
        assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
        assert!(e.to_string().contains("floor of 30"), "{e}");
        let e = admin.set_policy(Some("ward-3"), min, max).await.unwrap_err();
        assert!(e.to_string().contains("floor of 30"), "{e}");
    }
    let out = cli(&node, &node.token, &["policy", "set", "--camera", "ward-3", "--min-days", "29", "--max-days", "90"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("floor of 30"), "{}", String::from_utf8_lossy(&out.stderr));
    let e = admin.set_policy(Some("ward-3"), 60, 45).await.unwrap_err();
    assert!(e.to_string().contains("less than min_days"), "{e}");
    assert_eq!(admin.set_policy(Some("nope"), 30, 30).await.unwrap_err().code(), Some(Code::NotFound));

    let (default, cams) = admin.list_policies().await.unwrap();
    assert_eq!((default.min_days, default.max_days), (30, 30), "the default is the floor");
    assert!(cams.is_empty(), "refused policies left nothing behind");
    admin.set_policy(Some("ward-3"), 30, 180).await.unwrap();
    let out = cli(&node, &node.token, &["policy", "show", "--camera", "ward-3", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v[0]["min_days"].as_u64(), v[0]["max_days"].as_u64(), v[0]["from"].as_str()),
        (Some(30), Some(180), Some("camera"))
    );

    let auditor = node.user("audrey", "auditor", None).await;
    let set = audit_bodies(&auditor, AuditLogRequest { action: "policy-set".into(), ..Default::default() }).await;
    // The change that reached Raft but was refused there (unknown camera) is audited too.
    let outcomes: Vec<(&str, &str)> = set.iter().map(|b| (b.event.outcome.as_str(), b.event.detail.as_str())).collect();
    assert_eq!(
        outcomes,
        vec![("rejected", "camera nope min_days=30 max_days=30"), ("ok", "camera ward-3 min_days=30 max_days=180")]
    );
    node.stop();
}

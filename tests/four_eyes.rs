//! Four eyes on the roots of trust, black-box against real `custos-node` processes: what
//! an administrator alone gets (a pending change, nothing else), what the approver's
//! acceptance does, what a rejection leaves (nothing), that nobody decides their own
//! change, that lapsed changes never apply, and that the audit log shows request,
//! decision and effect. `docs/reliability.md` ("Threats and what stops them") names each
//! test.

mod common;

use common::{now_ms, wait_for, Node};
use custos_client::{AuditLogRequest, Client};
use custos_evidence::AuditBody;
use tonic::Code;

const PURPOSE: &str = "incident 2026-0802: door forced at the pharmacy";

async fn audit(auditor: &Client) -> Vec<AuditBody> {
    let f = AuditLogRequest { limit: 100_000, ..Default::default() };
    auditor.audit_log(f).await.unwrap().iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect()
}

/// The request (`pending`), the decision and the effect of change `id`, in that order.
fn three_steps(log: &[AuditBody], id: u64, action: &str, approver: &str) {
    let tag = format!("change {id}");
    let request = log
        .iter()
        .position(|e| {
            e.event.action == action && e.event.outcome == "pending" && e.event.detail.starts_with(&format!("{tag}:"))
        })
        .unwrap_or_else(|| panic!("no request entry for {tag} ({action})"));
    let decision = log
        .iter()
        .position(|e| e.event.action == "change-approve" && e.event.detail.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no decision entry for {tag}"));
    assert_eq!(log[decision].event.user, approver);
    let effect = log
        .iter()
        .position(|e| {
            e.event.action == action
                && e.event.outcome == "ok"
                && e.event.detail.contains(&format!("({tag}, approved by {approver})"))
        })
        .unwrap_or_else(|| panic!("no effect entry for {tag}"));
    assert!(request < decision && decision + 1 == effect, "request, decision, effect: {request} {decision} {effect}");
    assert_eq!(log[effect].event.user, log[request].event.user, "the effect is in the requester's name");
}

fn denied<T: std::fmt::Debug>(r: Result<T, custos_client::ClientError>) -> bool {
    matches!(r.map_err(|e| e.code()), Err(Some(Code::PermissionDenied)))
}

/// Every root of trust one node holds: users who may view footage, tokens for others,
/// grants, cleared flags, removed cameras, shorter retention, hold releases. The admin
/// alone gets `pending` and nothing changes; the approver's acceptance makes it happen; a
/// rejection leaves nothing; the admin cannot decide; a lapsed change never applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_alone_changes_no_root_of_trust() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let mut node = Node::init(&["lobby=test://ball".into(), "theatre=test://snow".into()], 1_000);
    let admin = node.start_sim(&clock).await;
    let boss = node.connect(Some(&node.approver)).await.unwrap();
    // An auditor and another administrator are made at once: neither can view footage.
    let auditor = node.user("audit.office", "auditor", None).await;
    let t = admin.add_user("it.second", "admin", None, 0).await.unwrap();
    assert_eq!(t.change_id, 0);
    let admin2 = node.connect(Some(&t.token)).await.unwrap();

    // 1. A user who may view footage.
    let asked = admin.add_user("li.wei", "security", None, 0).await.unwrap();
    assert!(asked.change_id != 0 && asked.token.is_empty(), "the admin alone gets a pending change: {asked:?}");
    assert!(admin.list_users().await.unwrap().iter().all(|u| u.name != "li.wei"), "nothing changes while pending");
    assert!(denied(admin.decide_change(asked.change_id, true, "").await), "administrators cannot decide");
    assert!(denied(admin2.decide_change(asked.change_id, true, "").await), "nor can a second administrator");
    let pending = boss.list_changes(false).await.unwrap();
    assert!(pending.iter().any(|c| c.id == asked.change_id && c.state == "pending" && c.requested_by == "admin"));
    let got = boss.decide_change(asked.change_id, true, "li.wei starts on the security desk").await.unwrap();
    let issued = got.token.expect("the approver receives the new user's token");
    let li = node.connect(Some(&issued.token)).await.unwrap();
    li.search("lobby", now_ms() - 60_000, now_ms(), PURPOSE).await.unwrap();
    let e = boss.decide_change(asked.change_id, true, "").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "decided once: {e}");
    let tokens = admin.list_tokens(Some("li.wei")).await.unwrap();
    assert_eq!(tokens[0].issued_by, "admin, approved by approver");

    // A rejection leaves nothing; a rejected change cannot be approved after.
    let asked = admin.add_user("mallory", "security", None, 0).await.unwrap();
    let e = boss.decide_change(asked.change_id, false, "").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "a rejection needs a reason: {e}");
    let r = boss.decide_change(asked.change_id, false, "nobody of that name works here").await.unwrap();
    assert!(r.token.is_none() && r.change.unwrap().state == "rejected");
    assert!(boss.decide_change(asked.change_id, true, "").await.is_err());
    assert!(admin.list_users().await.unwrap().iter().all(|u| u.name != "mallory"));

    // 2. A token for someone else waits; renewing one's own does not.
    let asked = admin.issue_token("li.wei", 30).await.unwrap();
    assert!(asked.change_id != 0 && asked.token.is_empty());
    assert_eq!(admin.list_tokens(Some("li.wei")).await.unwrap().len(), 1, "no token while pending");
    let own = li.issue_token("li.wei", 30).await.unwrap();
    assert!(own.change_id == 0 && own.token.starts_with("cst_"), "renewal is self-service");
    assert!(denied(li.issue_token("audit.office", 30).await), "but never for someone else");
    let minted = boss.decide_change(asked.change_id, true, "").await.unwrap().token.unwrap();
    let tokens = admin.list_tokens(Some("li.wei")).await.unwrap();
    let by = |id: &str| tokens.iter().find(|t| t.id == id).unwrap().issued_by.clone();
    assert_eq!(by(&own.token_id), "li.wei");
    assert_eq!(by(&minted.token_id), "admin, approved by approver");

    // 3. A grant of a sensitive camera.
    assert_eq!(admin.set_camera_sensitive("theatre", true).await.unwrap(), None, "marking sensitive is at once");
    let from = now_ms() - 60_000;
    assert!(denied(li.search("theatre", from, now_ms(), PURPOSE).await));
    let grant = admin.grant_camera("li.wei", "theatre", true).await.unwrap().expect("a grant waits");
    assert!(denied(li.search("theatre", from, now_ms(), PURPOSE).await), "not before it is approved");
    boss.decide_change(grant, true, "").await.unwrap();
    li.search("theatre", from, now_ms(), PURPOSE).await.unwrap();
    assert_eq!(admin.grant_camera("li.wei", "theatre", false).await.unwrap(), None, "withdrawing is at once");
    assert!(denied(li.search("theatre", from, now_ms(), PURPOSE).await));

    // 4. Clearing a sensitive flag.
    let clear = admin.set_camera_sensitive("theatre", false).await.unwrap().expect("clearing waits");
    let sensitive = |c: &str| {
        let (admin, c) = (admin.clone(), c.to_string());
        async move { admin.list_cameras().await.unwrap().iter().find(|x| x.id == c).unwrap().sensitive }
    };
    assert!(sensitive("theatre").await);
    boss.decide_change(clear, true, "the theatre became a store room").await.unwrap();
    assert!(!sensitive("theatre").await);

    // 5. Removing a camera: rejected, it keeps recording.
    let remove = admin.remove_camera("lobby").await.unwrap().expect("removal waits");
    boss.decide_change(remove, false, "the lobby camera stays").await.unwrap();
    assert!(admin.list_cameras().await.unwrap().iter().any(|c| c.id == "lobby"));

    // 6. Shorter retention waits; longer does not.
    let max = |admin: &Client| {
        let admin = admin.clone();
        async move { admin.list_policies().await.unwrap().0.max_days }
    };
    assert_eq!(max(&admin).await, 30, "the default keeps footage 30 days");
    assert_eq!(admin.set_policy(None, 30, 120).await.unwrap(), None, "a longer one is at once");
    assert_eq!(max(&admin).await, 120);
    let shorter = admin.set_policy(None, 30, 45).await.unwrap().expect("a shorter max_days waits");
    assert_eq!(max(&admin).await, 120);
    assert_eq!(admin.set_policy(Some("lobby"), 30, 200).await.unwrap(), None);
    let cam_shorter = admin.set_policy(Some("lobby"), 30, 60).await.unwrap().expect("a camera's too");
    boss.decide_change(shorter, true, "").await.unwrap();
    assert_eq!(max(&admin).await, 45);

    // 7. A hold's release needs an approver among its two people.
    let zhang = node.user("zhang.min", "security", None).await;
    let hold = li.place_hold("case-9", &["lobby".to_string()], from, None, PURPOSE).await.unwrap();
    li.approve_release(&hold.id).await.unwrap();
    let e = zhang.approve_release(&hold.id).await.unwrap_err();
    assert!(e.to_string().contains("needs an approver"), "{e}");
    assert!(li.list_holds(false).await.unwrap().iter().any(|h| h.id == hold.id), "two security staff release nothing");
    boss.approve_release(&hold.id).await.unwrap();
    assert!(li.list_holds(false).await.unwrap().iter().all(|h| h.id != hold.id));

    // A change nobody decides lapses after 7 days and never applies.
    std::fs::write(&clock, (8 * 86_400_000i64).to_string()).unwrap();
    let all = boss.list_changes(true).await.unwrap();
    assert_eq!(all.iter().find(|c| c.id == cam_shorter).unwrap().state, "expired");
    assert!(boss.list_changes(false).await.unwrap().iter().all(|c| c.id != cam_shorter), "not listed as pending");
    let e = boss.decide_change(cam_shorter, true, "").await.unwrap_err();
    assert!(e.to_string().contains("lapsed"), "{e}");
    let (_, cams) = admin.list_policies().await.unwrap();
    assert_eq!(cams.iter().find(|p| p.camera == "lobby").unwrap().max_days, 200);

    // The audit log: each step, in order, naming who and with which token.
    let log = audit(&auditor).await;
    let changes = boss.list_changes(true).await.unwrap();
    let id_of = |action: &str, detail: &str| {
        changes.iter().find(|c| c.action == action && c.detail.contains(detail) && c.state == "approved").unwrap().id
    };
    three_steps(&log, id_of("user-add", "li.wei"), "user-add", "approver");
    three_steps(&log, grant, "camera-grant", "approver");
    three_steps(&log, clear, "camera-sensitive", "approver");
    three_steps(&log, shorter, "policy-set", "approver");
    let rejected =
        log.iter().find(|e| e.event.action == "change-reject" && e.event.detail.contains("mallory")).unwrap();
    assert!(rejected.event.detail.contains("nobody of that name works here"));
    // Every authenticated entry names the token it came with and who issued it.
    let admin_token_id = &admin.list_tokens(Some("admin")).await.unwrap()[0].id;
    for e in log.iter().filter(|e| e.event.user == "admin" && e.event.outcome == "pending") {
        assert_eq!(&e.event.token_id, admin_token_id);
        assert_eq!(e.event.token_issued_by, "init");
    }
    let li_entry = log.iter().find(|e| e.event.user == "li.wei" && e.event.action == "search").unwrap();
    assert_eq!(li_entry.event.token_id, issued.token_id);
    assert_eq!(li_entry.event.token_issued_by, "admin, approved by approver");
}

/// A join token made by an administrator alone is inert: the joining machine is refused,
/// receives no key material and cannot start, until an approver accepts. Retiring a node
/// waits the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_enrolled_by_an_administrator_alone_gets_no_keys_until_approved() {
    let mut n1 = Node::init_with(&[], 1_000, &["--campus", "east"]);
    let admin = n1.start().await;
    let boss = n1.connect(Some(&n1.approver)).await.unwrap();
    let t = admin.join_token(0).await.unwrap();
    assert!(t.change_id != 0, "a join token waits for an approver");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (port, metrics) = (common::free_port(), common::free_port());
    let join = || {
        std::process::Command::new(common::bin("custos-node"))
            .arg("join")
            .arg("--data")
            .arg(&data)
            .args(["--campus", "west", "--listen", &format!("127.0.0.1:{port}"), "--cluster", &n1.addr])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}"), "--web-listen", "off"])
            .args(["--token", &t.token, "--json"])
            .output()
            .unwrap()
    };
    let out = join();
    assert!(!out.status.success(), "a pending join token is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waits for an approver") && err.contains(&format!("change {}", t.change_id)), "{err}");
    // Nothing was handed out: no archive identity, CA key, signing key or certificate.
    let files: Vec<_> = common::walk(dir.path());
    assert!(files.is_empty(), "the refused node holds nothing: {files:?}");
    let run = std::process::Command::new(common::bin("custos-node")).arg("run").arg("--data").arg(&data).output();
    assert!(!run.unwrap().status.success(), "and it cannot start");
    assert_eq!(admin.list_nodes().await.unwrap().nodes.len(), 1);

    boss.decide_change(t.change_id, true, "new recorder for the west campus").await.unwrap();
    let out = join();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("keys").is_dir(), "the approved node received its keys");
    let mut n2 = Node::adopt(
        dir,
        format!("127.0.0.1:{port}"),
        n1.token.clone(),
        n1.ca_file.clone(),
        format!("127.0.0.1:{metrics}"),
    );
    n2.start().await;
    let id2 = wait_for(30, "node 2 in the cluster", || async {
        let nodes = admin.list_nodes().await.ok()?.nodes;
        nodes.iter().find(|n| n.campus == "west" && n.health == "up").map(|n| n.id)
    })
    .await;

    // Retiring it waits too; a rejection keeps it.
    let change = admin.remove_node(id2).await.unwrap().expect("retiring waits");
    let role = |id: u64| {
        let admin = admin.clone();
        async move { admin.list_nodes().await.unwrap().nodes.iter().find(|n| n.id == id).unwrap().raft_role.clone() }
    };
    assert_ne!(role(id2).await, "retired");
    boss.decide_change(change, false, "the west campus still needs it").await.unwrap();
    assert_ne!(role(id2).await, "retired");
    let change = admin.remove_node(id2).await.unwrap().unwrap();
    boss.decide_change(change, true, "west campus closes").await.unwrap();
    assert_eq!(role(id2).await, "retired");
    n2.stop();
}

/// Root on one node cannot found the cluster again: a bootstrap file with the attacker's
/// own administrator and approver, dropped into the data directory before a restart,
/// creates nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_founding_creates_nobody() {
    let mut node = Node::init(&[], 1_000);
    let admin = node.start().await;
    node.stop();
    let mine = "cst_attacker_made_this_token_0000000000000000000000";
    let hash = blake3::hash(mine.as_bytes()).to_hex().to_string();
    let boot = serde_json::json!({
        "name": "root2", "token_blake3": hash, "approver": "boss2", "approver_token_blake3": hash,
    });
    std::fs::write(node.data().join("bootstrap-admin.json"), boot.to_string()).unwrap();
    node.start().await;
    let users = admin.list_users().await.unwrap();
    assert!(users.iter().all(|u| u.name != "root2" && u.name != "boss2"), "{users:?}");
    let e = node.connect(Some(mine)).await.unwrap().list_cameras().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unauthenticated));
    assert!(!node.data().join("bootstrap-admin.json").exists(), "the file is consumed, not kept for later");
}

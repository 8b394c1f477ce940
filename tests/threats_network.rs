//! Threats from the network, black-box: real `custos-node` processes on loopback.
//!
//! * Unauthenticated noise (bad tokens, bad join tokens) cannot fill the audit log or
//!   the Raft log, and cannot starve a legitimate user.
//! * A retired node's certificate loses its peer rights at once, and a live node's
//!   certificate cannot speak for another node id.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{now_ms, wait_for, Node};
use custos_client::{AuditLogRequest, Client};
use custos_evidence::AuditBody;
use tonic::Code;

const PURPOSE: &str = "incident 2026-0612: door forced at night";

async fn audit_bodies(auditor: &Client) -> Vec<AuditBody> {
    let all = auditor.audit_log(AuditLogRequest::default()).await.unwrap();
    all.iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect()
}

use common::scrape_metrics as scrape;

/// The value of an unlabelled sample `name` in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The number a summary entry's reason starts with.
fn summarised(b: &AuditBody) -> u64 {
    b.event.reason.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Item 4. 20 000 requests with a bogus token and 300 joins with a forged join token
/// used to commit 20 300 Raft entries and audit entries. Now a few are audited one by
/// one and the rest summarised; the Prometheus counters show them all; and a security
/// user's fetch from the same address during the flood succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_token_flood_cannot_fill_the_audit_log_or_starve_a_real_fetch() {
    const FLOOD: u64 = 20_000;
    const TASKS: u64 = 8;
    const JOINS: u64 = 300;
    let mut node = Node::init(&["lobby=test://ball".to_string()], 1_000);
    node.start().await;
    let sec = node.user("guard", "security", None).await;
    let auditor = node.user("audit.office", "auditor", None).await;
    let t0 = now_ms() - 5_000;
    wait_for(60, "committed footage", || async {
        let (s, _) = sec.search("lobby", t0, now_ms(), PURPOSE).await.ok()?;
        (s.len() >= 2).then_some(())
    })
    .await;
    let before = audit_bodies(&auditor).await.len();
    // The harness's first status calls may have been refused while the node was starting.
    let refused_before = sample(&scrape(&node.metrics), "custos_auth_refused_total").unwrap_or(0.0);

    let bogus =
        node.connect(Some("cst_0000000000000000000000000000000000000000000000000000000000000000")).await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (c, done) = (bogus.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let (mut unauth, mut exhausted) = (0u64, 0u64);
            for _ in 0..FLOOD / TASKS {
                match c.list_cameras().await {
                    Ok(_) => panic!("a bogus token was accepted"),
                    Err(e) if e.code() == Some(Code::Unauthenticated) => unauth += 1,
                    Err(e) if e.code() == Some(Code::ResourceExhausted) => {
                        assert!(e.to_string().contains("token not recognised"), "the reason is kept: {e}");
                        exhausted += 1
                    }
                    Err(e) => panic!("unexpected answer to a bogus token: {e}"),
                }
                done.fetch_add(1, Ordering::Relaxed);
                assert!(Instant::now() < deadline, "the flood took over 240 s");
            }
            (unauth, exhausted)
        }));
    }
    // Joins with a well-formed join token the cluster never issued.
    let ca = std::fs::read_to_string(&node.ca_file).unwrap();
    let join_addr = node.addr.clone();
    let joins = tokio::spawn(async move {
        use custos_proto::v1::join_client::JoinClient;
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("127.0.0.1");
        let ch = Endpoint::from_shared(format!("https://{join_addr}")).unwrap().tls_config(tls).unwrap();
        let mut c = JoinClient::new(ch.connect().await.unwrap());
        let mut codes = Vec::new();
        for i in 0..JOINS {
            let r = c
                .join(custos_proto::v1::JoinRequest {
                    token: format!("cjt1.{:064x}.{}", i, "a".repeat(32)),
                    campus: "west".into(),
                    addr: "127.0.0.1:9".into(),
                })
                .await;
            codes.push(r.map(|_| ()).unwrap_err().code());
        }
        codes
    });

    // A legitimate fetch while the flood runs, from the same address.
    wait_for(60, "the flood under way", || async { (done.load(Ordering::Relaxed) >= 2_000).then_some(()) }).await;
    let now = now_ms();
    let mut out = Vec::new();
    let fetch_started = Instant::now();
    let at_start = done.load(Ordering::Relaxed);
    let got =
        sec.fetch("lobby", now - 5_000, now, PURPOSE, &mut out, |_| {}).await.expect("a real fetch during the flood");
    let fetch_took = fetch_started.elapsed();
    let at_end = done.load(Ordering::Relaxed);
    assert!(!got.is_empty() && !out.is_empty(), "the fetch returned footage");
    assert!(at_end < FLOOD, "the fetch ran during the flood ({at_start}..{at_end} of {FLOOD} sent meanwhile)");
    println!(
        "fetch during the flood ({at_start}..{at_end} bogus requests sent meanwhile): {} segments, {} bytes in {fetch_took:?}",
        got.len(),
        out.len()
    );

    let (mut unauth, mut exhausted) = (0, 0);
    for t in tasks {
        let (u, x) = t.await.unwrap();
        unauth += u;
        exhausted += x;
    }
    let join_codes = joins.await.unwrap();
    println!(
        "flood: {FLOOD} requests in {:?}: {unauth} unauthenticated, {exhausted} resource exhausted",
        started.elapsed()
    );
    assert_eq!(unauth + exhausted, FLOOD);
    assert!(exhausted > FLOOD / 2, "an address failing this often is told to slow down");
    assert!(join_codes.iter().all(|c| matches!(c, Code::Unauthenticated | Code::ResourceExhausted)), "{join_codes:?}");

    // Every refusal is accounted for: audited one by one, or in a summary entry.
    let total = FLOOD + JOINS;
    let entries = wait_for(40, "summary entries covering every refused attempt", || async {
        let all = audit_bodies(&auditor).await;
        // The auditor's own reads of the log are audited too; they are not the flood's.
        let new: Vec<AuditBody> = all[before..].iter().filter(|b| b.event.user != "audit.office").cloned().collect();
        let single = new
            .iter()
            .filter(|b| b.event.outcome == "unauthenticated" && b.event.action != "authenticate-summary")
            .count() as u64;
        let summed: u64 = new.iter().filter(|b| b.event.action == "authenticate-summary").map(summarised).sum();
        (single + summed == total).then_some(new)
    })
    .await;
    let unauthenticated = entries.iter().filter(|b| b.event.outcome == "unauthenticated").count();
    let summaries: Vec<&AuditBody> = entries.iter().filter(|b| b.event.action == "authenticate-summary").collect();
    println!("{} new audit entries, {unauthenticated} unauthenticated, {} summaries", entries.len(), summaries.len());
    for s in &summaries {
        println!("  summary: {} [{}]", s.event.reason, s.event.detail);
    }
    assert!(entries.len() < 100, "{} audit entries for {total} refused attempts", entries.len());
    assert!(!summaries.is_empty());
    assert!(summaries.iter().all(|s| s.event.detail.starts_with("127.0.0.1: ")), "the summary names the address");
    assert!(entries.iter().all(|b| b.event.action != "node-join" || b.event.outcome == "unauthenticated"));
    // No bad join committed a registration.
    let nodes = node.connect(Some(&node.token)).await.unwrap().list_nodes().await.unwrap();
    assert_eq!(nodes.nodes.len(), 1);

    // The counters show every refusal.
    let m = scrape(&node.metrics);
    assert_eq!(sample(&m, "custos_auth_refused_total"), Some(refused_before + total as f64), "{m}");
    let suppressed = sample(&m, "custos_audit_suppressed_total").unwrap();
    assert!(suppressed >= (total - 100) as f64, "suppressed {suppressed}");
    assert_eq!(sample(&m, "custos_requests_shed_total"), Some(0.0));
}

/// A raw `Peer` client presenting the certificate and key in `keys` (PEM) to `addr`.
async fn peer_as(
    addr: &str,
    ca_pem: &str,
    keys: &(String, String),
) -> custos_proto::v1::peer_client::PeerClient<tonic::transport::Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("127.0.0.1")
        .identity(Identity::from_pem(&keys.0, &keys.1));
    let ch = Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap();
    custos_proto::v1::peer_client::PeerClient::new(ch.connect().await.expect("the TLS handshake succeeds"))
}

/// A node's certificate chain and key, as found in its data directory.
fn node_keys(n: &Node) -> (String, String) {
    let k = n.data().join("keys");
    (std::fs::read_to_string(k.join("node.pem")).unwrap(), std::fs::read_to_string(k.join("node.key")).unwrap())
}

/// A Raft vote request from `candidate` at `term`, as `Peer.Raft` carries it.
fn vote_request(candidate: u64, term: u64) -> custos_proto::v1::RaftMessage {
    let req: openraft::raft::VoteRequest<u64> =
        openraft::raft::VoteRequest::new(openraft::Vote::new(term, candidate), None);
    custos_proto::v1::RaftMessage {
        kind: custos_node::meta::network::KIND_VOTE.into(),
        payload: custos_node::meta::types::encode(&req),
    }
}

/// A forwarded write, as `Peer.Propose` carries it.
fn propose_request(
    command: custos_node::meta::Command,
    audit: Option<custos_node::audit::AuditEvent>,
) -> custos_proto::v1::ProposeRequest {
    custos_proto::v1::ProposeRequest { payload: custos_node::meta::types::encode(&(&command, &audit)) }
}

/// An audit entry in the name of `user`.
fn audit_as(user: &str, role: &str) -> custos_node::audit::AuditEvent {
    custos_node::audit::AuditEvent {
        user: user.into(),
        role: role.into(),
        action: "hold-release".into(),
        outcome: "ok".into(),
        ..Default::default()
    }
}

fn denied<T: std::fmt::Debug>(r: Result<T, tonic::Status>, what: &str, says: &str) {
    match r {
        Err(s) if s.code() == Code::PermissionDenied && s.message().contains(says) => {
            println!("{what}: refused: {}", s.message())
        }
        other => panic!("{what}: expected PermissionDenied saying {says:?}, got {other:?}"),
    }
}

/// Item 5. Peer RPCs used to accept any certificate of the cluster CA: a node removed
/// with `custos node remove` kept full peer rights with the key in its data directory
/// (Raft votes and appends, forwarded writes, blobs), and any node's certificate could
/// claim another node's id in its messages. Now a certificate names its node id, a
/// removed node's id is revoked on every peer RPC at once, a message claiming another
/// sender than the certificate is refused, and a forwarded write can carry neither a
/// leader-only command nor an audit entry in a made-up user's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_node_loses_peer_rights_and_no_node_speaks_for_another() {
    use custos_node::meta::Command;
    use custos_proto::v1::{GetBlobRequest, PingRequest};
    let (n1, n2, mut n3) = common::three_node_cluster().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let (id1, id2, id3) = (n1.node_id(), n2.node_id(), n3.node_id());
    let ca = std::fs::read_to_string(&n1.ca_file).unwrap();
    let (k2, k3) = (node_keys(&n2), node_keys(&n3));

    // While it is a member, node 3's certificate is a peer's.
    peer_as(&n1.addr, &ca, &k3)
        .await
        .ping(PingRequest { from: id3, ..Default::default() })
        .await
        .expect("a member's ping");

    // Node 3 is removed; its process is gone, its key and certificate are not.
    let out = n1.cli(&n1.token, &["--json", "node", "remove", &id3.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let asked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(asked["state"], "pending", "retiring a node waits for an approver");
    let out = n1.cli(&n1.approver, &["change", "approve", &asked["change_id"].to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    n3.kill9();
    let c2 = n2.connect(Some(&n2.token)).await.unwrap();
    wait_for(30, "node 2 knows node 3 is retired", || async {
        let r = c2.list_nodes().await.ok()?;
        r.nodes.iter().any(|n| n.id == id3 && n.raft_role == "retired").then_some(())
    })
    .await;
    let term = || sample(&scrape(&n1.metrics), "custos_raft_term").unwrap() as u64;
    let term_before = term();
    for n in [&n1, &n2] {
        let mut p = peer_as(&n.addr, &ca, &k3).await;
        denied(p.ping(PingRequest { from: id3, ..Default::default() }).await, "removed node's ping", "removed");
        denied(p.raft(vote_request(id3, term_before + 1000)).await, "removed node's vote request", "removed");
        let audit = propose_request(Command::Audit, Some(audit_as("-", "")));
        denied(p.propose(audit).await, "removed node's forwarded write", "removed");
        let blob = GetBlobRequest { content_hash: vec![0; 32] };
        denied(p.get_blob(blob).await.map(|_| ()), "removed node's blob read", "removed");
    }
    // Every node holds the cluster CA's key, so a removed node can mint itself a
    // certificate for a live node's id; the key pinned for that id refuses it.
    let ca_key = std::fs::read_to_string(n3.data().join("keys").join("ca.key")).unwrap();
    let minted = custos_node::tls::issue_node_cert(&ca, &ca_key, id2, &n3.addr).unwrap();
    let mut p = peer_as(&n1.addr, &ca, &minted).await;
    denied(p.ping(PingRequest { from: id2, ..Default::default() }).await, "a minted certificate for node 2", "pins");
    denied(p.raft(vote_request(id2, term_before + 1000)).await, "votes asked with a minted certificate", "pins");
    // Its vote request did not disturb the cluster.
    let t = term();
    assert!(t < term_before + 1000, "the term jumped from {term_before} to {t}");

    // A live node's certificate cannot claim another node's id.
    let mut p2 = peer_as(&n1.addr, &ca, &k2).await;
    denied(
        p2.ping(PingRequest { from: id1, ..Default::default() }).await,
        "node 2 pinging as node 1",
        &format!("node {id2}"),
    );
    denied(p2.raft(vote_request(id1, term_before + 1000)).await, "node 2 asking votes as node 1", "claims");
    denied(p2.raft(vote_request(id3, term_before + 1000)).await, "node 2 asking votes as node 3", "claims");
    p2.ping(PingRequest { from: id2, ..Default::default() }).await.expect("node 2 pinging as itself");

    // A live node cannot forward what only a leader proposes, nor an entry in the name
    // of a user who does not exist. Sent to the leader, where a forwarded write commits.
    let leader = admin.list_nodes().await.unwrap().leader;
    let k1 = node_keys(&n1);
    let (to, keys) = if leader == id1 { (&n1, &k2) } else { (&n2, &k1) };
    let mut p = peer_as(&to.addr, &ca, keys).await;
    let clear_all = Command::Alarms(vec![]);
    denied(p.propose(propose_request(clear_all, None)).await, "forwarded alarm changes", "only the leader");
    let fake = Command::AddReplicas(vec![("lobby".into(), 0, id3)]);
    denied(p.propose(propose_request(fake, None)).await, "forwarded replica claims", "only the leader");
    let release = Command::ApproveHoldRelease { id: "H-000001".into(), user: "mallory".into() };
    let forged = propose_request(release, Some(audit_as("mallory", "approver")));
    denied(p.propose(forged).await, "a release in a made-up user's name", "mallory");
    let admin_name = "admin"; // made by `custos-node init`
    let mismatched = Command::ApproveHoldRelease { id: "H-000001".into(), user: "mallory".into() };
    let forged = propose_request(mismatched, Some(audit_as(admin_name, "admin")));
    denied(p.propose(forged).await, "a release naming another user than its audit entry", "mallory");
    // Nor what only an approver's acceptance applies: a compromised follower cannot go
    // round the change queue by forwarding the effect itself.
    let raw = Command::RetireNode { id: id3 };
    denied(
        p.propose(propose_request(raw, Some(audit_as(admin_name, "admin")))).await,
        "a raw node retirement",
        "only ever the effect of a change",
    );
    let decide =
        Command::DecideChange { id: 1, user: "approver".into(), approve: true, note: String::new(), token: None };
    denied(
        p.propose(propose_request(decide, Some(audit_as(admin_name, "admin")))).await,
        "a decision in the approver's name",
        "approver",
    );
    // What a follower legitimately forwards still commits.
    let ok = p.propose(propose_request(Command::Audit, Some(audit_as("-", "")))).await;
    assert!(ok.is_ok(), "{ok:?}");
}

/// A node (or whoever holds its disk: its certificate and key) could forward a
/// `CommitSegments` naming another node as the segment's sealer, so footage of its own
/// making would show as sealed by the camera's real recorder. Now the leader refuses a
/// forwarded commit unless it names the sender as the sealer of every segment, and a
/// recorder that does not lead still commits its own footage, with its copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_commit_footage_in_another_nodes_name() {
    use custos_node::meta::types::{Codec, SegmentRecord};
    use custos_node::meta::Command;
    let (n1, n2, n3) = common::three_node_cluster().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let leader = admin.list_nodes().await.unwrap().leader;
    let nodes = [&n1, &n2, &n3];
    let by_id = |id: u64| *nodes.iter().find(|n| n.node_id() == id).unwrap();
    // The camera is recorded by the node whose API added it: here one that does not lead,
    // so its commits are forwarded.
    let recorder = *nodes.iter().find(|n| n.node_id() != leader).unwrap();
    let thief = *nodes.iter().find(|n| n.node_id() != leader && n.node_id() != recorder.node_id()).unwrap();
    let (rid, tid) = (recorder.node_id(), thief.node_id());
    let via = recorder.connect(Some(&recorder.token)).await.unwrap();
    assert_eq!(via.add_camera("ward", "test://ball", "Ward 3").await.unwrap().recorder, rid);
    let guard = n1.user("guard", "security", None).await;
    let t0 = now_ms();
    let first = wait_for(60, "the ward camera's footage, committed through the leader", || async {
        let (segs, _) = guard.search("ward", t0 - 60_000, now_ms() + 60_000, "threat test").await.ok()?;
        segs.into_iter().find(|s| s.replicas.len() >= 2)
    })
    .await;
    assert_eq!(first.replicas[0], rid, "sealed by its recorder, with its copies: {:?}", first.replicas);
    println!("ward is recorded by node {rid}; node {tid}'s keys forward to the leader, node {leader}");

    let ca = std::fs::read_to_string(&n1.ca_file).unwrap();
    let mut p = peer_as(&by_id(leader).addr, &ca, &node_keys(thief)).await;
    // An hour before the camera existed: a gap nobody recorded.
    let start = first.start_ms - 3_600_000;
    let forged = |replicas: Vec<u64>| SegmentRecord {
        camera: "ward".into(),
        start_ms: start,
        end_ms: start + 1_000,
        bytes: 188,
        blob_bytes: 400,
        content_hash: [7; 32],
        blob_hash: [8; 32],
        codec: Codec::H264,
        replicas,
    };
    denied(
        p.propose(propose_request(Command::CommitSegments(vec![forged(vec![rid])]), None)).await,
        "footage in the recorder's name",
        &format!("names node {rid} as its sealer"),
    );
    denied(
        p.propose(propose_request(Command::CommitSegments(vec![forged(vec![rid, tid])]), None)).await,
        "footage in the recorder's name, with a copy on the sender",
        "commits only segments it sealed itself",
    );
    let (segs, _) = guard.search("ward", start - 1_000, start + 2_000, "threat test").await.unwrap();
    assert!(segs.is_empty(), "nothing forged is in the catalog: {segs:?}");
}

//! Threats from the network, black-box: real `custos-node` processes on loopback.
//!
//! * Unauthenticated noise (bad tokens, bad join tokens) cannot fill the audit log or
//!   the Raft log, and cannot starve a legitimate user.
//! * A retired node's certificate loses its peer rights at once, and a live node's
//!   certificate cannot speak for another node id.

mod common;

use std::io::{Read, Write};
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

/// `GET /metrics` body.
fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

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

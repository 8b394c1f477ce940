//! Threats against who may see footage, black-box against real `custos-node` processes:
//! sensitivity that stays with the footage, export downloads that check the caller again,
//! refusals that leave an audit entry, and revocations that stop what is in flight.
//! `docs/reliability.md` ("Threats and what stops them") names each test.

mod common;

use common::{now_ms, wait_for, Node, TestCamera};
use custos_client::{AuditLogRequest, Client};
use custos_evidence::AuditBody;
use custos_proto::v1 as pb;
use tonic::Code;

const PURPOSE: &str = "incident 2026-0771: theft from the recovery ward";

async fn audit(auditor: &Client, user: &str) -> Vec<AuditBody> {
    let f = AuditLogRequest { user: user.into(), limit: 10_000, ..Default::default() };
    auditor.audit_log(f).await.unwrap().iter().map(|e| serde_json::from_slice(&e.body).unwrap()).collect()
}

fn denials<'a>(entries: &'a [AuditBody], action: &str) -> Vec<&'a AuditBody> {
    entries.iter().filter(|e| e.event.action == action && e.event.outcome == "denied").collect()
}

/// Removing a sensitive camera, re-adding its id without `--sensitive`, or clearing the
/// flag must not open the footage recorded while it was sensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_footage_stays_behind_its_grant_after_the_camera_is_removed_or_unmarked() {
    let mut node = Node::init(&[], 1_000);
    let admin = node.start().await;
    admin.add_camera_with("theatre-1", "test://snow", "Operating theatre 1", true).await.unwrap();
    admin.add_camera_with("ward-2", "test://ball", "Ward 2 beds", true).await.unwrap();
    let guard = node.user("guard", "security", None).await;
    let nurse_lead = node.user("head.nurse", "security", None).await;
    node.approved(admin.grant_camera("head.nurse", "theatre-1", true).await).await.unwrap();
    let auditor = node.user("audit.office", "auditor", None).await;
    let t0 = now_ms();
    wait_for(60, "footage on both sensitive cameras", || async {
        let s = admin.status().await.ok()?;
        let ok = |id: &str| s.cameras.iter().any(|c| c.id == id && c.last_segment_end_ms > t0 + 2_000);
        (ok("theatre-1") && ok("ward-2")).then_some(())
    })
    .await;
    let t1 = now_ms();
    let denied_search = |c: Client, cam: &'static str| async move {
        let e = c.search(cam, t0 - 1_000, t1, PURPOSE).await.unwrap_err();
        assert_eq!(e.code(), Some(Code::PermissionDenied), "{cam}: {e}");
        assert!(e.to_string().contains("grant"), "{e}");
    };
    denied_search(guard.clone(), "theatre-1").await;
    assert!(!nurse_lead.search("theatre-1", t0 - 1_000, t1, PURPOSE).await.unwrap().0.is_empty());

    // The camera is removed, and its id re-added as an ordinary camera.
    node.approved(admin.remove_camera("theatre-1").await).await.unwrap();
    denied_search(guard.clone(), "theatre-1").await;
    admin.add_camera_with("theatre-1", "test://ball", "Corridor (reused id)", false).await.unwrap();
    denied_search(guard.clone(), "theatre-1").await;
    let e = guard
        .request_export("case-77", "City Police", "L-77", PURPOSE, &[("theatre-1".into(), t0 - 1_000, t1)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    let e = guard.fetch("theatre-1", t0 - 1_000, t1, PURPOSE, &mut Vec::new(), |_| {}).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    // The grant holder still sees it: the footage is protected, not lost.
    assert!(!nurse_lead.search("theatre-1", t0 - 1_000, t1, PURPOSE).await.unwrap().0.is_empty());

    // A flag cleared later does not open what was recorded while it was set.
    node.approved(admin.set_camera_sensitive("ward-2", false).await).await.unwrap();
    denied_search(guard.clone(), "ward-2").await;

    // Every refusal is in the audit log, with the camera.
    let log = audit(&auditor, "guard").await;
    let searches = denials(&log, "search");
    assert!(searches.len() >= 4, "denied searches audited: {}", searches.len());
    assert!(searches.iter().all(|e| e.event.cameras.len() == 1));
    assert_eq!(denials(&log, "fetch").len(), 1);
    assert_eq!(denials(&log, "export-request").len(), 1, "the refused export request is audited");
    node.stop();
}

/// A completed export holding sensitive footage is downloadable by its requester and the
/// case's investigator, not by other security staff without the grant; refusals for
/// another case's export and for an ungranted camera in a request are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_download_checks_the_caller_and_every_refusal_is_audited() {
    let mut node = Node::init(&[], 1_000);
    let admin = node.start().await;
    admin.add_camera_with("icu-1", "test://ball", "ICU bay 1", true).await.unwrap();
    let requester = node.user("li.wei", "security", None).await;
    node.approved(admin.grant_camera("li.wei", "icu-1", true).await).await.unwrap();
    let colleague = node.user("zhang.min", "security", None).await;
    let approver = node.user("dr.chen", "approver", None).await;
    let inv = node.user("officer.wu", "investigator", Some("case-7")).await;
    let other_inv = node.user("officer.ma", "investigator", Some("case-9")).await;
    let auditor = node.user("audit.office", "auditor", None).await;
    let t0 = now_ms();
    let segs = wait_for(60, "three recorded segments", || async {
        let s = requester.search("icu-1", t0 - 60_000, now_ms(), PURPOSE).await.ok()?.0;
        (s.len() >= 3).then_some(s)
    })
    .await;
    let range = [("icu-1".to_string(), segs[0].start_ms, segs[2].end_ms)];
    let id = requester.request_export("case-7", "City Police", "L-2026-7", PURPOSE, &range).await.unwrap().id;
    approver.decide_export(&id, true, "letter checked").await.unwrap();
    requester.run_export(&id).await.unwrap();

    // The colleague holds no grant for icu-1: no download, audited.
    let e = colleague.download_export_file(&id, "manifest.json", 0, &mut Vec::new(), |_| {}).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    assert!(e.to_string().contains("icu-1"), "{e}");
    // Nor may they ask for a copy of it themselves.
    let e = colleague.request_export("case-8", "City Police", "L-8", PURPOSE, &range).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    // Requester and the case's investigator may.
    let dir = tempfile::tempdir().unwrap();
    requester.download_export(&id, &dir.path().join("req"), |_, _| {}).await.unwrap();
    inv.download_export(&id, &dir.path().join("inv"), |_, _| {}).await.unwrap();
    // Once granted, the colleague may too.
    node.approved(admin.grant_camera("zhang.min", "icu-1", true).await).await.unwrap();
    colleague.download_export_file(&id, "manifest.json", 0, &mut Vec::new(), |_| {}).await.unwrap();

    // Another case's investigator: get, download are refused and audited.
    assert_eq!(other_inv.get_export(&id).await.unwrap_err().code(), Some(Code::PermissionDenied));
    let e = other_inv.download_export_file(&id, "manifest.json", 0, &mut Vec::new(), |_| {}).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");

    let log = audit(&auditor, "zhang.min").await;
    assert_eq!(denials(&log, "export-download").len(), 1, "{log:?}");
    assert_eq!(denials(&log, "export-request").len(), 1, "{log:?}");
    let log = audit(&auditor, "officer.ma").await;
    assert_eq!(denials(&log, "export-list").len(), 1, "refused get audited: {log:?}");
    assert_eq!(denials(&log, "export-download").len(), 1, "refused download audited: {log:?}");
    assert!(denials(&log, "export-download")[0].event.detail.contains(&id));
    node.stop();
}

/// Reads `stream` until it ends; returns the segments received and how it ended.
async fn drain(stream: &mut tonic::Streaming<pb::FetchChunk>, segments: &mut usize) -> Result<(), tonic::Status> {
    while let Some(item) = stream.message().await? {
        if let Some(pb::fetch_chunk::Item::Segment(_)) = item.item {
            *segments += 1;
        }
    }
    Ok(())
}

/// A fetch that is streaming when its token is revoked stops within one segment (plus
/// what the transport already buffered), with Unauthenticated saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_stops_a_fetch_in_flight() {
    // About 450 KB per 1-second segment, so the whole range is far larger than what the
    // transport buffers (an HTTP/2 window and the node's send queue).
    let cam = TestCamera::start_with(0, &["--keyint", "25", "--bitrate-kbps", "3600", "--pattern", "snow"]);
    let mut node = Node::init(&[format!("door={}", cam.url)], 1_000);
    let admin = node.start().await;
    let asked = admin.add_user("night.guard", "security", None, 0).await.unwrap();
    let t = node.approve(asked.change_id).await.token.unwrap();
    let guard = node.connect(Some(&t.token)).await.unwrap();
    let t0 = now_ms();
    let segs = wait_for(90, "40 recorded segments", || async {
        let s = guard.search("door", t0 - 60_000, now_ms(), PURPOSE).await.ok()?.0;
        (s.len() >= 40).then_some(s)
    })
    .await;
    let bytes: u64 = segs.iter().map(|s| s.bytes).sum();
    assert!(bytes > 12 << 20, "the range should be far larger than the buffers: {bytes} bytes");

    let (from, to) = (segs[0].start_ms, segs[segs.len() - 1].end_ms);
    let mut stream = guard.fetch_stream("door", from, to, PURPOSE).await.unwrap();
    // Take the first segment, then revoke while the rest is still to come.
    let mut got = 0;
    while got == 0 {
        match stream.message().await.unwrap().unwrap().item {
            Some(pb::fetch_chunk::Item::Segment(_)) => got += 1,
            _ => continue,
        }
    }
    admin.revoke_token(&t.token_id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let end = drain(&mut stream, &mut got).await;
    let e = end.expect_err("the stream must end with an error once the token is revoked");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("revoked"), "{}", e.message());
    assert!(got < segs.len(), "the stream stopped early: {got} of {} segments", segs.len());
    // And the token is refused for anything new.
    assert_eq!(guard.list_cameras().await.unwrap_err().code(), Some(Code::Unauthenticated));
    node.stop();
}

/// A node cut off from the leader stops honouring tokens after the lease (it cannot know
/// of a revocation meanwhile), while its status stays readable; it serves again once the
/// cluster is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_leader_stops_honouring_tokens() {
    let (n1, n2, n3) = common::three_node_cluster().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let asked = admin.add_user("guard", "security", None, 0).await.unwrap();
    let t = n1.approve(asked.change_id).await.token.unwrap();
    let on3 = n3.connect(Some(&t.token)).await.unwrap();
    wait_for(10, "the user known on node 3", || async { on3.list_cameras().await.ok() }).await;

    // Node 3 loses both others (paused: they answer nothing).
    n1.signal(libc::SIGSTOP);
    n2.signal(libc::SIGSTOP);
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let e = on3.list_cameras().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    assert!(e.to_string().contains("leader"), "{e}");
    let e = on3.list_exports().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    on3.status().await.expect("status stays readable on a cut-off node");

    n1.signal(libc::SIGCONT);
    n2.signal(libc::SIGCONT);
    wait_for(30, "node 3 serves again once the leader is back", || async { on3.list_cameras().await.ok() }).await;
    drop((n1, n2, n3));
}

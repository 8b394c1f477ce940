//! Expiry on a simulated clock, in process against the real Raft group and blob store:
//! footage goes after `max_days` and never before `min_days`; holds keep it until two
//! different people release them; an open-ended hold covers footage recorded later; a
//! hand-made expiry command cannot delete protected footage; every deletion leaves a
//! receipt and the blob follows it off the disk.

mod common;

use custos_node::clock::ManualClock;
use custos_node::expiry::{expire_once, remove_expired_blobs};
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Command, Meta, Response};
use custos_node::recorder::seal_and_store;
use custos_node::retention::{Hold, Policy, DAY_MS};

const T0: i64 = 1_800_000_000_000;

fn hold(case: &str, camera: &str, from_ms: i64, to_ms: Option<i64>) -> Hold {
    Hold {
        id: String::new(),
        case_id: case.into(),
        cameras: vec![camera.into()],
        from_ms,
        to_ms,
        reason: "court order 2027-5".into(),
        placed_by: "ann".into(),
        placed_ms: 0,
        release_approvals: vec![],
        released_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_respects_policies_holds_and_two_person_release() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = common::write_path(dir.path());
    let clock = ManualClock::new(T0);
    let meta = Meta::start(1, &dir.path().join("meta"), "127.0.0.1:1".into(), clock.clone()).await.unwrap();
    for id in ["lobby", "ward"] {
        common::add_camera(&meta, id).await;
    }
    // Segments ending this many days before T0 (negative: after T0, recorded "later").
    let mut recs = Vec::new();
    for (camera, days_ago, fill) in
        [("lobby", 100, 1u8), ("lobby", 50, 2), ("lobby", 29, 3), ("lobby", 1, 4), ("ward", 100, 5), ("ward", -1, 6)]
    {
        let end = T0 - days_ago * DAY_MS;
        let raw = RawSegment {
            camera: camera.into(),
            start_ms: end - 4_000,
            end_ms: end,
            codec: Codec::H264,
            forced_cut: false,
            data: vec![fill; 5_000],
        };
        recs.push(seal_and_store(&ctx, &raw).unwrap());
    }
    meta.propose(Command::CommitSegments(recs.clone())).await.unwrap();
    let ok = Policy::new(30, 60).unwrap();
    meta.propose(Command::SetPolicy { camera: Some("lobby".into()), policy: ok }).await.unwrap();
    // A bounded case hold over ward's old footage, and an incident hold "from now on".
    let r = meta
        .propose(Command::PlaceHold(hold("CASE-1", "ward", T0 - 200 * DAY_MS, Some(T0 - 90 * DAY_MS))))
        .await
        .unwrap();
    assert_eq!(r, Response::Created("H-000001".into()));
    meta.propose(Command::PlaceHold(hold("INC-2", "ward", T0, None))).await.unwrap();

    let starts = |camera: &'static str| {
        let (s, _) = meta.catalog.search(camera, 0, i64::MAX, 100).unwrap();
        s.iter().map(|r| (T0 - r.end_ms) / DAY_MS).collect::<Vec<_>>()
    };

    // Pass 1 at T0: only lobby's 100-day-old segment is past max_days (60).
    assert_eq!(expire_once(&meta, meta.now_ms()).await.unwrap(), 1);
    assert_eq!(starts("lobby"), vec![50, 29, 1]);
    assert_eq!(starts("ward"), vec![100, -1], "held footage survives past max_days");
    let receipts = meta.catalog.receipts_after(0, 10).unwrap();
    assert_eq!(receipts.len(), 1);
    let r0 = &receipts[0];
    assert_eq!(
        (r0.camera.as_str(), r0.end_ms, r0.min_days, r0.max_days, r0.deleted_ms),
        ("lobby", T0 - 100 * DAY_MS, 30, 60, T0)
    );
    assert_eq!((r0.content_hash, r0.blob_hash), (recs[0].content_hash, recs[0].blob_hash));

    // Blobs follow the receipts off the disk, once.
    let cursor = dir.path().join("expiry.cursor");
    assert!(ctx.store.contains(&recs[0].content_hash));
    assert_eq!(remove_expired_blobs(&meta.catalog, &ctx.store, &cursor).unwrap(), 1);
    assert!(!ctx.store.contains(&recs[0].content_hash));
    assert!(ctx.store.contains(&recs[1].content_hash));
    assert_eq!(remove_expired_blobs(&meta.catalog, &ctx.store, &cursor).unwrap(), 0);

    // A hand-made expiry of protected footage deletes nothing.
    let all: Vec<(String, i64)> = recs.iter().map(|r| (r.camera.clone(), r.start_ms)).collect();
    let r = meta.propose(Command::ExpireSegments { at_ms: i64::MAX, segments: all }).await.unwrap();
    assert_eq!(
        r,
        Response::Committed { new: 0, duplicate: 6, superseded: 0 },
        "inside max_days, inside min_days, held or already gone"
    );

    // Jump 91 days: all of lobby is past 60 days; ward stays held.
    clock.advance_ms(91 * DAY_MS);
    assert_eq!(expire_once(&meta, meta.now_ms()).await.unwrap(), 3);
    assert!(starts("lobby").is_empty());
    assert_eq!(starts("ward"), vec![100, -1], "the open-ended hold covers footage recorded after it was placed");

    // Release of the case hold: one approval, or the same person twice, is not enough.
    let approve = |user: &str| Command::ApproveHoldRelease { id: "H-000001".into(), user: user.into() };
    assert_eq!(meta.propose(approve("ann")).await.unwrap(), Response::Ok);
    assert!(matches!(meta.propose(approve("ann")).await.unwrap(), Response::Rejected(..)));
    assert_eq!(expire_once(&meta, meta.now_ms()).await.unwrap(), 0);
    assert_eq!(starts("ward"), vec![100, -1]);
    assert!(matches!(meta.propose(approve("cem")).await.unwrap(), Response::Rejected(..)), "no approver among them");
    common::add_user(&meta, "bob", custos_node::access::Role::Approver, T0 + 365 * DAY_MS).await;
    assert_eq!(meta.propose(approve("bob")).await.unwrap(), Response::Ok);
    assert_eq!(expire_once(&meta, meta.now_ms()).await.unwrap(), 1, "released: the old ward segment may go");
    assert_eq!(starts("ward"), vec![-1], "the incident hold still protects the newer footage");

    assert_eq!(remove_expired_blobs(&meta.catalog, &ctx.store, &cursor).unwrap(), 4);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(ctx.store.contains(&r.content_hash), i == 5, "blob {i}");
    }
    assert_eq!(meta.catalog.segment_count().unwrap(), 1);
    let head = meta.catalog.audit_head().unwrap();
    assert!(head.0 >= 3, "each expiry pass that deleted something is audited");

    // Auditors read the receipts through the API; other roles cannot.
    let svc = common::services(&meta, &ctx, clock.clone());
    let auditor = common::add_user(&meta, "audrey", custos_node::access::Role::Auditor, T0 + 365 * DAY_MS).await;
    let security = common::add_user(&meta, "guard", custos_node::access::Role::Security, T0 + 365 * DAY_MS).await;
    use custos_proto::v1::audit_server::Audit;
    let ask = |token: &str, camera: &str| {
        let mut r =
            tonic::Request::new(custos_proto::v1::ReceiptsRequest { after_seq: 0, camera: camera.into(), limit: 0 });
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    let got = svc.receipts(ask(&auditor, "")).await.unwrap().into_inner().receipts;
    assert_eq!(got.len(), 5);
    let ward = svc.receipts(ask(&auditor, "ward")).await.unwrap().into_inner().receipts;
    assert_eq!(ward.len(), 1);
    assert_eq!(ward[0].content_hash, recs[4].content_hash.to_vec());
    assert_eq!((ward[0].min_days, ward[0].max_days), (30, 30));
    let denied = svc.receipts(ask(&security, "")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    meta.shutdown().await;
}

/// The same rules, black box: three `custos-sim-node` processes whose clock a file moves.
/// Jumps of 31 and 61 days: footage is kept until its `max_days`, then expires with
/// receipts on every node's disk; held footage outlives its policy until two people
/// release the hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_on_a_simulated_clock_keeps_and_expires_by_the_rules() {
    use common::{wait_for, Node};
    const DAY: i64 = 86_400_000;
    const WHY: &str = "retention check on a simulated clock";
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("offset-ms");
    std::fs::write(&clock, "0").unwrap();
    let jump = |days: i64| std::fs::write(&clock, (days * DAY).to_string()).unwrap();

    let cams = ["lobby=test://ball".to_string(), "gate=test://snow".to_string()];
    let mut n1 = Node::init_with(&cams, 1000, &["--campus", "east"]);
    n1.configure("expiry_every_s = 1");
    n1.start_sim(&clock).await;
    let mut others = Vec::new();
    for campus in ["west", "north"] {
        let mut n = Node::join(&n1, campus).await;
        n.configure("expiry_every_s = 1");
        n.start_sim(&clock).await;
        others.push(n);
    }
    // Tokens that outlive the jumps (the first admin's expires after 90 days).
    let admin = n1.connect(Some(&n1.user_token("admin2", "admin", None, 366).await)).await.unwrap();
    let sec = n1.connect(Some(&n1.user_token("guard", "security", None, 366).await)).await.unwrap();
    let appr = n1.connect(Some(&n1.user_token("head", "approver", None, 366).await)).await.unwrap();
    let auditor = n1.connect(Some(&n1.user_token("aud", "auditor", None, 366).await)).await.unwrap();
    n1.approved(admin.set_policy(Some("lobby"), 30, 60).await).await.unwrap();
    let t0 = custos_client::time::now_ms() - 10_000;
    let hold = sec.place_hold("case-gate", &["gate".to_string()], t0, None, WHY).await.unwrap();

    let both = |min: usize| {
        let sec = sec.clone();
        async move {
            let now = custos_client::time::now_ms();
            let l = sec.search("lobby", t0, now, WHY).await.ok()?.0;
            let g = sec.search("gate", t0, now, WHY).await.ok()?.0;
            (l.len() >= min && g.len() >= min && l.iter().chain(&g).all(|s| s.replicas.len() >= 2)).then_some((l, g))
        }
    };
    let (lobby, gate) = wait_for(60, "replicated footage of both cameras", || both(3)).await;
    let t1 = lobby.last().unwrap().end_ms.min(gate.last().unwrap().end_ms);
    let count = |cam: &'static str| {
        let sec = sec.clone();
        async move { sec.search(cam, t0, t1, WHY).await.unwrap().0.len() }
    };
    let (n_lobby, n_gate) = (count("lobby").await, count("gate").await);

    // +31 days: past min_days, before lobby's max_days; the gate is held.
    jump(31);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(count("lobby").await, n_lobby, "nothing expires before max_days");
    assert_eq!(count("gate").await, n_gate, "held footage stays");

    // +61 days: lobby expires everywhere, with receipts; the held gate footage stays.
    jump(61);
    // The clocks jumped while the nodes ran: expiry waits for the jumps to be confirmed.
    let ids: Vec<u64> = std::iter::once(&n1).chain(others.iter()).map(|n| n.node_id()).collect();
    n1.confirm_clock_jumps(&ids).await;
    wait_for(30, "lobby expired", || async { (count("lobby").await == 0).then_some(()) }).await;
    assert_eq!(count("gate").await, n_gate, "held footage survives its policy");
    let receipts = auditor.receipts(Some("lobby")).await.unwrap();
    for s in lobby.iter().filter(|s| s.end_ms <= t1) {
        assert!(receipts.iter().any(|r| r.start_ms == s.start_ms), "receipt for lobby@{}", s.start_ms);
    }
    let nodes: Vec<&Node> = std::iter::once(&n1).chain(others.iter()).collect();
    wait_for(30, "expired blobs removed on every node", || async {
        lobby
            .iter()
            .filter(|s| s.end_ms <= t1)
            .all(|s| nodes.iter().all(|n| !n.holds_blob(&s.content_hash)))
            .then_some(())
    })
    .await;
    for s in gate.iter().filter(|s| s.end_ms <= t1) {
        assert!(s.replicas.iter().all(|r| nodes
            .iter()
            .find(|n| n.node_id() == *r)
            .unwrap()
            .holds_blob(&s.content_hash)));
    }

    // Release needs two different people; then the gate footage expires too.
    sec.approve_release(&hold.id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(count("gate").await, n_gate, "one approval releases nothing");
    appr.approve_release(&hold.id).await.unwrap();
    wait_for(30, "gate expired after the release", || async { (count("gate").await == 0).then_some(()) }).await;
}

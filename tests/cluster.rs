//! Three-campus clusters of real `custos-node` processes on loopback: replication, the
//! loss of the leader, recorder failover, repair after a node is retired, a paused node,
//! a late joiner seeded by a snapshot, and certificates from another CA.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{now_ms, wait_for, Node, TestCamera};
use custos_client::{Client, Segment};

const PURPOSE: &str = "cluster test: verify replicated footage";

/// Three nodes in campuses east (founder, with `cameras`), west and north, all voters;
/// `cfg` holds extra config lines for each before its first start.
async fn three_campus_cluster(cameras: &[String], segment_ms: u64, cfg: [&str; 3]) -> (Node, Node, Node) {
    let mut n1 = Node::init_with(cameras, segment_ms, &["--campus", "east"]);
    let configure = |n: &Node, c: &str| {
        if !c.is_empty() {
            n.configure(c);
        }
    };
    configure(&n1, cfg[0]);
    n1.start().await;
    let mut n2 = Node::join(&n1, "west").await;
    configure(&n2, cfg[1]);
    n2.start().await;
    let mut n3 = Node::join(&n2, "north").await;
    configure(&n3, cfg[2]);
    n3.start().await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    wait_for(60, "three voters, all up", || async {
        let r = admin.list_nodes().await.ok()?;
        let roles: BTreeSet<_> =
            r.nodes.iter().map(|n| (n.raft_role.as_str() != "learner", n.health.as_str())).collect();
        (r.nodes.len() == 3 && roles == BTreeSet::from([(true, "up")]) && r.leader != 0).then_some(())
    })
    .await;
    (n1, n2, n3)
}

async fn segments(c: &Client, camera: &str, from: i64, to: i64) -> Vec<Segment> {
    c.search(camera, from, to, PURPOSE).await.map(|(s, _)| s).unwrap_or_default()
}

async fn leader_of(c: &Client) -> Option<u64> {
    c.list_nodes().await.ok().map(|r| r.leader).filter(|&l| l != 0)
}

/// The node with id `id` among `nodes`.
fn by_id<'a>(nodes: &'a mut [&mut Node], id: u64) -> &'a mut Node {
    nodes.iter_mut().find(|n| n.node_id() == id).map(|n| &mut **n).unwrap()
}

/// Every committed segment is held by at least two nodes in different campuses, each
/// of which has the blob on disk; the recorder's campus and the copies differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_across_campuses_and_survives_the_leader() {
    let cam = TestCamera::start_with(0, &["--keyint", "25", "--width", "320", "--height", "180"]);
    let cams = [format!("door={}", cam.url), "lobby=test://ball".to_string()];
    let (mut n1, mut n2, mut n3) = three_campus_cluster(&cams, 1000, ["", "", ""]).await;
    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms() - 120_000;

    // Wait until both cameras have segments and every one of them has two copies
    // (segments recorded before the others joined get theirs from repair).
    wait_for(90, "every segment replicated twice", || async {
        let mut all = segments(&sec, "door", t0, now_ms()).await;
        all.extend(segments(&sec, "lobby", t0, now_ms()).await);
        (all.len() >= 8 && all.iter().all(|s| s.replicas.len() >= 2)).then_some(())
    })
    .await;
    let campus: BTreeMap<u64, &str> =
        BTreeMap::from([(n1.node_id(), "east"), (n2.node_id(), "west"), (n3.node_id(), "north")]);
    for camera in ["door", "lobby"] {
        for s in segments(&sec, camera, t0, now_ms()).await.iter().filter(|s| s.replicas.len() >= 2) {
            let places: BTreeSet<_> = s.replicas.iter().map(|r| campus[r]).collect();
            assert_eq!(places.len(), s.replicas.len(), "copies of {camera}@{} share a campus", s.start_ms);
            for r in &s.replicas {
                let node = [&n1, &n2, &n3].into_iter().find(|n| n.node_id() == *r).unwrap();
                assert!(
                    node.holds_blob(&s.content_hash),
                    "node {r} is listed for {camera}@{} but lacks the blob",
                    s.start_ms
                );
            }
        }
    }

    // Kill the leader with ingest running.
    let leader = leader_of(&sec).await.unwrap();
    let killed_at = now_ms();
    let before: BTreeMap<&str, Vec<Segment>> = BTreeMap::from([
        ("door", segments(&sec, "door", t0, killed_at).await),
        ("lobby", segments(&sec, "lobby", t0, killed_at).await),
    ]);
    by_id(&mut [&mut n1, &mut n2, &mut n3], leader).kill9();
    let survivor = [&n1, &n2, &n3].into_iter().find(|n| n.node_id() != leader).unwrap();
    let s2 = survivor.connect(Some(&survivor.token)).await.unwrap();
    let new_leader = wait_for(30, "a new leader", || async { leader_of(&s2).await.filter(|&l| l != leader) }).await;
    assert_ne!(new_leader, leader);
    let sec2 = survivor.user("guard-after", "security", None).await;

    // Ingest continues on both cameras (the leader recorded them: they move).
    wait_for(60, "new segments after the leader died", || async {
        for c in ["door", "lobby"] {
            if !segments(&sec2, c, killed_at, now_ms()).await.iter().any(|s| s.start_ms > killed_at) {
                return None;
            }
        }
        Some(())
    })
    .await;

    // Every segment committed before the kill still fetches and verifies.
    for (camera, segs) in &before {
        assert!(!segs.is_empty());
        let from = segs.first().unwrap().start_ms;
        let to = segs.last().unwrap().end_ms;
        let mut out = Vec::new();
        let got = sec2
            .fetch(camera, from, to, PURPOSE, &mut out, |_| {})
            .await
            .unwrap_or_else(|e| panic!("fetching {camera} after the leader died: {e}"));
        let got_starts: BTreeSet<i64> = got.iter().map(|s| s.start_ms).collect();
        for s in segs {
            assert!(got_starts.contains(&s.start_ms), "{camera}@{} was committed but is not served", s.start_ms);
        }
        assert_eq!(out.len() as u64, got.iter().map(|s| s.bytes).sum::<u64>());
    }
}

/// A killed recorder's camera resumes on another node; the footage gap is measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_recorder_fails_over_within_bound() {
    let cam = TestCamera::start_with(0, &["--keyint", "12", "--width", "320", "--height", "180"]);
    let (n1, mut n2, n3) = three_campus_cluster(&[], 1000, ["", "", ""]).await;
    // Added through node 2's API, so node 2 records it (and node 2 is not the leader).
    let admin2 = n2.connect(Some(&n2.token)).await.unwrap();
    let c = admin2.add_camera("ward", &cam.url, "Ward 3 corridor").await.unwrap();
    assert_eq!(c.recorder, n2.node_id());
    assert_ne!(leader_of(&admin2).await, Some(n2.node_id()));
    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms();
    wait_for(60, "ward recording on node 2", || async {
        (segments(&sec, "ward", t0, now_ms()).await.len() >= 3).then_some(())
    })
    .await;

    let killed_at = now_ms();
    n2.kill9();
    let moved = wait_for(30, "the camera moved to a live node", || async {
        let cams = sec.list_cameras().await.ok()?;
        cams.into_iter().find(|c| c.id == "ward" && c.recorder != n2.node_id())
    })
    .await;
    assert!([n1.node_id(), n3.node_id()].contains(&moved.recorder));
    let after = wait_for(30, "segments from the new recorder", || async {
        let s = segments(&sec, "ward", killed_at, now_ms()).await;
        s.iter().any(|s| s.start_ms > killed_at).then_some(s)
    })
    .await;
    let all = segments(&sec, "ward", t0, now_ms()).await;
    let gap = all.windows(2).map(|w| w[1].start_ms - w[0].end_ms).max().unwrap();
    println!("failover gap: {gap} ms (recorder killed at {killed_at}, {} segments after)", after.len());
    // Budget: the unsealed segment lost with the process (up to 1 s here), detection
    // (2 s without an answer), reassignment, RTSP connect and the first keyframe.
    assert!(gap <= 5_000, "footage gap {gap} ms exceeds the 5 s failover bound");
    let _ = (n1, n3);
}

/// Retiring a node moves its cameras and repairs every segment back to two live copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_node_is_repaired() {
    let (n1, n2, n3) =
        three_campus_cluster(&["lobby=test://ball".into(), "gate=test://snow".into()], 1000, ["", "", ""]).await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms() - 60_000;
    wait_for(60, "replicated footage", || async {
        let s = segments(&sec, "lobby", t0, now_ms()).await;
        (s.len() >= 5 && s.iter().all(|s| s.replicas.len() >= 2)).then_some(())
    })
    .await;
    // Retire a node that holds copies.
    let victim = n2.node_id();
    n1.approved(admin.remove_node(victim).await).await.unwrap();
    let e = admin.remove_node(victim).await.unwrap_err();
    assert!(e.to_string().contains("already retired"), "{e}");
    let live = [n1.node_id(), n3.node_id()];
    wait_for(90, "every segment back to two live copies", || async {
        for c in ["lobby", "gate"] {
            let s = segments(&sec, c, t0, now_ms()).await;
            if s.is_empty() || !s.iter().all(|s| s.replicas.iter().filter(|r| live.contains(r)).count() >= 2) {
                return None;
            }
        }
        // The leader's repair pass agrees.
        let leader = leader_of(&admin).await?;
        let ln = if leader == n1.node_id() { &n1 } else { &n3 };
        let r = ln.connect(Some(&ln.token)).await.ok()?.list_nodes().await.ok()?;
        (r.under_replicated == 0).then_some(())
    })
    .await;
    let r = admin.list_nodes().await.unwrap();
    let retired = r.nodes.iter().find(|n| n.id == victim).unwrap();
    assert_eq!(retired.raft_role, "retired");
    assert_eq!(retired.cameras, 0, "no camera stays on a retired node");
    for s in segments(&sec, "lobby", t0, now_ms()).await {
        for r in s.replicas.iter().filter(|r| live.contains(r)) {
            let n = if *r == n1.node_id() { &n1 } else { &n3 };
            assert!(n.holds_blob(&s.content_hash));
        }
    }
    // The last active nodes cannot all be retired.
    n1.approved(admin.remove_node(n3.node_id()).await).await.unwrap();
    let e = admin.remove_node(n1.node_id()).await.unwrap_err();
    assert!(e.to_string().contains("last active node"), "{e}");
}

/// A paused leader cannot commit; the others carry on; after SIGCONT it follows and
/// catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_cannot_commit_and_catches_up() {
    let (mut n1, mut n2, mut n3) = three_campus_cluster(&["lobby=test://ball".into()], 1000, ["", "", ""]).await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let leader = leader_of(&admin).await.unwrap();
    let others: Vec<u64> = [&n1, &n2, &n3].iter().map(|n| n.node_id()).filter(|&i| i != leader).collect();
    let mut nodes = [&mut n1, &mut n2, &mut n3];
    by_id(&mut nodes, leader).signal(libc::SIGSTOP);
    let paused_at = now_ms();
    let other = nodes.iter().find(|n| n.node_id() == others[0]).unwrap();
    let c = other.connect(Some(&other.token)).await.unwrap();
    wait_for(30, "a new leader while the old one is paused", || async {
        leader_of(&c).await.filter(|l| others.contains(l))
    })
    .await;
    // Work committed meanwhile: a camera added through a live node.
    c.add_camera("during-pause", "test://snow", "").await.unwrap();
    let sec = other.user("guard", "security", None).await;
    wait_for(60, "lobby recorded again by a live node", || async {
        segments(&sec, "lobby", paused_at, now_ms()).await.iter().any(|s| s.start_ms > paused_at).then_some(())
    })
    .await;

    let paused = by_id(&mut nodes, leader);
    paused.signal(libc::SIGCONT);
    let pc = paused.connect(Some(&paused.token)).await.unwrap();
    wait_for(30, "the resumed node follows and has caught up", || async {
        let r = pc.list_nodes().await.ok()?;
        let me = r.nodes.iter().find(|n| n.id == leader)?;
        let cams = pc.list_cameras().await.ok()?;
        (me.raft_role == "follower" && cams.iter().any(|c| c.id == "during-pause")).then_some(())
    })
    .await;
}

/// A node that joins after the log was compacted is seeded from a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_catches_up_through_a_snapshot() {
    let mut n1 = Node::init_with(&["lobby=test://ball".into()], 1000, &["--campus", "east"]);
    n1.configure("raft_snapshot_every = 40");
    n1.start().await;
    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms() - 60_000;
    wait_for(30, "footage on the founder", || async {
        (segments(&sec, "lobby", t0, now_ms()).await.len() >= 2).then_some(())
    })
    .await;
    // Enough entries (segment batches and audit records) for a snapshot and a purge.
    for i in 0..60 {
        sec.search("lobby", t0, now_ms(), &format!("{PURPOSE} #{i}")).await.unwrap();
    }
    wait_for(30, "a snapshot on the founder", || async {
        let has = std::fs::read_dir(n1.data().join("snapshots"))
            .ok()?
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "snap"));
        has.then_some(())
    })
    .await;
    let early = segments(&sec, "lobby", t0, now_ms()).await;
    assert!(!early.is_empty());

    let mut n2 = Node::join(&n1, "west").await;
    n2.start().await;
    let c2 = n2.connect(Some(&n2.token)).await.unwrap();
    wait_for(60, "the joiner is a voter", || async {
        let r = c2.list_nodes().await.ok()?;
        r.nodes.iter().any(|n| n.id == n2.node_id() && n.raft_role == "follower").then_some(())
    })
    .await;
    let installed = std::fs::read_dir(n2.data().join("snapshots"))
        .unwrap()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "snap"));
    assert!(installed, "the joiner received a snapshot");
    // The joiner's own catalog answers for footage from before it existed, and the
    // audit chain it received verifies.
    let g2 = n2.user("guard2", "security", None).await;
    let seen = segments(&g2, "lobby", t0, early.last().unwrap().end_ms).await;
    assert!(seen.len() >= early.len());
    let auditor = n2.user("aud", "auditor", None).await;
    let log = auditor.audit_log(Default::default()).await.unwrap();
    assert!(log.len() > 60, "the audit log came with the snapshot ({} entries)", log.len());
}

/// Node-to-node calls need a certificate from this cluster's CA; join tokens are single
/// use and name the CA they belong to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_certificates_and_tokens_are_refused() {
    use custos_proto::v1::peer_client::PeerClient;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

    let mut n1 = Node::init_with(&[], 1000, &["--campus", "east"]);
    n1.start().await;
    let other = Node::init_with(&[], 1000, &["--campus", "elsewhere"]);
    let ca = std::fs::read_to_string(&n1.ca_file).unwrap();
    let peer = |cert: Option<(String, String)>| {
        let ca = ca.clone();
        let addr = n1.addr.clone();
        async move {
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("127.0.0.1");
            if let Some((c, k)) = cert {
                tls = tls.identity(Identity::from_pem(c, k));
            }
            let ch = Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap().connect().await;
            match ch {
                Ok(ch) => PeerClient::new(ch)
                    .ping(custos_proto::v1::PingRequest { from: 1, ..Default::default() })
                    .await
                    .map(|_| ())
                    .map_err(|s| s.to_string()),
                Err(e) => Err(format!("{e:?}")),
            }
        }
    };
    let keys = |n: &Node| {
        let k = n.data().join("keys");
        (std::fs::read_to_string(k.join("node.pem")).unwrap(), std::fs::read_to_string(k.join("node.key")).unwrap())
    };
    // Own CA: accepted.
    peer(Some(keys(&n1))).await.expect("a certificate from the cluster CA is accepted");
    // Another cluster's certificate: the handshake fails.
    let e = peer(Some(keys(&other))).await.unwrap_err();
    println!("foreign certificate: {e}");
    // No certificate: the peer service refuses.
    let e = peer(None).await.unwrap_err();
    assert!(e.contains("certificate"), "{e}");

    // Join tokens: another cluster's token names another CA; a used token is refused.
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let t = admin.join_token(0).await.unwrap();
    n1.approve(t.change_id).await;
    let token = t.token;
    let join = |token: &str, dir: &std::path::Path| {
        std::process::Command::new(common::bin("custos-node"))
            .arg("join")
            .arg("--data")
            .arg(dir)
            .args([
                "--campus",
                "west",
                "--listen",
                &format!("127.0.0.1:{}", common::free_port()),
                "--metrics-listen",
                &format!("127.0.0.1:{}", common::free_port()),
                "--web-listen",
                "off",
                "--cluster",
                &n1.addr,
                "--token",
                token,
            ])
            .output()
            .unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let forged = format!("{}.{}", &token[..token.rfind('.').unwrap()], "0".repeat(32));
    let out = join(&forged, &tmp.path().join("a"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not present the cluster CA"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(join(&token, &tmp.path().join("b")).status.success());
    let out = join(&token, &tmp.path().join("c"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used"), "{}", String::from_utf8_lossy(&out.stderr));
    // Only administrators make join tokens.
    let op = n1.user("op", "operator", None).await;
    assert_eq!(op.join_token(0).await.unwrap_err().code(), Some(tonic::Code::PermissionDenied));
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// With two of three nodes stopped nothing commits: footage requests are refused (their
/// audit entries cannot be written) while recording goes on into pending records. When
/// the nodes restart, membership is intact, the pending segments commit and the footage
/// has no hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_majority_refuses_reads_keeps_recording_and_recovers() {
    let (n1, mut n2, mut n3) = three_campus_cluster(&["lobby=test://ball".into()], 1000, ["", "", ""]).await;
    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms();
    wait_for(60, "lobby recording", || async {
        (segments(&sec, "lobby", t0, now_ms()).await.len() >= 3).then_some(())
    })
    .await;
    n2.stop();
    n3.stop();
    let down_at = now_ms();
    let e = sec.search("lobby", t0, now_ms(), PURPOSE).await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::Unavailable), "{e}");
    assert!(e.to_string().contains("audit"), "{e}");
    // Status needs no commit and tells the operator what is wrong.
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let r = admin.list_nodes().await.unwrap();
    assert_eq!(r.nodes.iter().filter(|n| n.health == "down").count(), 2);
    // Recording goes on: sealed segments wait in pending/.
    wait_for(30, "segments waiting in pending/", || async {
        let n = std::fs::read_dir(n1.data().join("pending")).ok()?.count();
        (n >= 3).then_some(())
    })
    .await;

    n2.start().await;
    n3.start().await;
    let up_at = now_ms();
    wait_for(60, "three voters again", || async {
        let r = admin.list_nodes().await.ok()?;
        (r.nodes.iter().all(|n| n.health == "up" && (n.raft_role == "leader" || n.raft_role == "follower")))
            .then_some(())
    })
    .await;
    let all = wait_for(60, "the outage's footage committed", || async {
        let s = segments(&sec, "lobby", t0, now_ms()).await;
        s.iter().any(|s| s.start_ms > up_at).then_some(s)
    })
    .await;
    let during = all.iter().filter(|s| s.start_ms > down_at && s.end_ms < up_at).count();
    assert!(during >= 3, "segments recorded without a majority were committed later ({during})");
    let gap = all.windows(2).map(|w| w[1].start_ms - w[0].end_ms).max().unwrap();
    assert!(gap <= 0, "no footage lost across the outage (largest gap {gap} ms)");
}

/// A token revoked through one node is refused by that node at once and by every other
/// node as soon as it applies the entry (milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_node() {
    let (n1, n2, n3) = three_campus_cluster(&[], 1000, ["", "", ""]).await;
    let admin1 = n1.connect(Some(&n1.token)).await.unwrap();
    let asked = admin1.add_user("temp-guard", "security", None, 0).await.unwrap();
    let t = n1.approve(asked.change_id).await.token.unwrap();
    let on = |n: &Node| {
        let (addr, ca) = (n.addr.clone(), n.ca_file.clone());
        let token = t.token.clone();
        async move {
            let ca_pem = std::fs::read(ca).unwrap();
            let c = Client::connect(&addr, Some(&token), &custos_client::Transport::Tls { ca_pem }).await.unwrap();
            c.list_cameras().await.map(|_| ()).map_err(|e| e.code())
        }
    };
    for n in [&n1, &n2, &n3] {
        wait_for(10, "the new token works everywhere", || async { on(n).await.ok() }).await;
    }
    let admin2 = n2.connect(Some(&n2.token)).await.unwrap();
    admin2.revoke_token(&t.token_id).await.unwrap();
    // The node that took the revocation refuses at once.
    assert_eq!(on(&n2).await, Err(Some(tonic::Code::Unauthenticated)));
    for n in [&n1, &n3] {
        wait_for(2, "the revocation applied on every node", || async {
            (on(n).await == Err(Some(tonic::Code::Unauthenticated))).then_some(())
        })
        .await;
    }
}

/// A node whose disk falls below its free-space floor raises an alarm, takes no new
/// copies, hands its camera to a node with room, and deletes nothing: held footage it
/// recorded stays on its disk and every segment still fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_raises_alarm_moves_recording_and_deletes_nothing() {
    let cam = TestCamera::start_with(0, &["--pattern", "snow", "--bitrate-kbps", "6000", "--keyint", "25"]);
    // Node 2 gets 8 MiB for blobs with a 5 MiB floor: under pressure after about 3 MiB.
    let (n1, n2, n3) = three_campus_cluster(&[], 1000, ["", "capacity_mib = 8\nfree_space_floor_mib = 5", ""]).await;
    let admin = n1.connect(Some(&n1.token)).await.unwrap();
    let admin2 = n2.connect(Some(&n2.token)).await.unwrap();
    admin2.add_camera("icu", &cam.url, "ICU bay 4").await.unwrap();
    let sec = n1.user("guard", "security", None).await;
    let t0 = now_ms() - 5_000;
    sec.place_hold("case-icu", &["icu".to_string()], t0, None, PURPOSE).await.unwrap();

    let low_at = wait_for(90, "node 2 under disk pressure and its camera moved", || async {
        let r = admin.list_nodes().await.ok()?;
        let n = r.nodes.iter().find(|n| n.id == n2.node_id())?;
        let moved = sec.list_cameras().await.ok()?.iter().any(|c| c.id == "icu" && c.recorder != n2.node_id());
        (n.disk_low && moved).then(now_ms)
    })
    .await;
    let st = admin.status().await.unwrap();
    assert!(
        st.alarms.iter().any(|a| a.contains(&format!("node {}", n2.node_id())) && a.contains("free-space floor")),
        "alarm raised: {:?}",
        st.alarms
    );
    // Recording goes on elsewhere, and new copies avoid the full node.
    let after = wait_for(60, "icu recorded by a node with room", || async {
        let s = segments(&sec, "icu", low_at + 3_000, now_ms()).await;
        (s.len() >= 3).then_some(s)
    })
    .await;
    for s in after.iter().filter(|s| s.start_ms > low_at + 3_000) {
        assert!(!s.replicas.contains(&n2.node_id()), "a copy went to the full node: {:?}", s.replicas);
        assert!(s.replicas.len() >= 2, "still two copies on the nodes with room");
    }
    // Nothing protected was deleted: every held segment node 2 holds is still on its disk,
    // and the whole range fetches and verifies.
    let all = segments(&sec, "icu", t0, now_ms()).await;
    let on_n2: Vec<_> = all.iter().filter(|s| s.replicas.contains(&n2.node_id())).collect();
    assert!(!on_n2.is_empty());
    for s in &on_n2 {
        assert!(n2.holds_blob(&s.content_hash), "held footage was removed from the full node");
    }
    let mut out = Vec::new();
    let got = sec.fetch("icu", all[0].start_ms, all.last().unwrap().end_ms, PURPOSE, &mut out, |_| {}).await.unwrap();
    assert_eq!(got.len(), all.len());
    let _ = n3;
}

//! Cluster benchmarks: three in-process nodes whose Raft and replication traffic goes over
//! real mutual-TLS gRPC on loopback (the same peer service `custos-node` serves).
//!
//! * **P3, part 1 (`c1`), batched commits**: segment records per second through the 3-node
//!   group, 512 records per entry from 4 concurrent proposers (the recorder's committer
//!   batches the same way).
//! * **P3, part 2 (`c2`), single-commit latency**: p50 of one-record commits on the 3-node
//!   leader, divided by the p50 of a raw 4 KiB write + fdatasync in the same filesystem,
//!   same run; with the parts of its critical path measured beside it, and its CPU cost.
//! * **P4 (`c3`), ingest**: 2 MiB segments from 4 cameras, sealed, stored, pushed to a
//!   second node (RF = 2) and committed through the 3-node group, against the same work on
//!   a single node (RF = 1, no peers). Rounds alternate; the median per-round ratio is
//!   printed.
//!
//! `cargo bench --bench cluster` (add `-- --smoke` for a quick run, `-- --only c2` for one part).

mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_node::clock::{SharedClock, SystemClock};
use custos_node::cluster::health::Health;
use custos_node::cluster::network::NetworkFactory;
use custos_node::cluster::peers::{PeerTls, Peers};
use custos_node::cluster::replicate::Replicator;
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Command, Meta, SegmentRecord};
use custos_node::recorder::{run_committer, run_sealer, RecorderStats, SealContext};
use custos_node::segment::pending::PendingDir;
use custos_node::segment::{seal, BlobStore, Keys};
use custos_node::server::{ClusterInfo, Services};
use tokio::sync::mpsc;

const SEGMENT_BYTES: usize = 2 << 20;
const CAMERAS: usize = 4;

struct BenchNode {
    meta: Meta,
    ctx: Arc<SealContext>,
    replicator: Replicator,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts node `id` with its peer service on `port`.
async fn start_node(id: u64, port: u16, tls: Option<PeerTls>, keys: Arc<Keys>, factor: usize) -> BenchNode {
    let dir = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let peers = Peers::new(tls.clone());
    let meta = Meta::open(id, dir.path(), clock.clone(), NetworkFactory { peers: peers.clone() }, 0).await.unwrap();
    let (store, _) = BlobStore::open(&dir.path().join("blobs")).unwrap();
    let store = Arc::new(store);
    let pending = Arc::new(PendingDir::open(&dir.path().join("pending")).unwrap());
    let health = Health::new(id, dir.path());
    let cluster = ClusterInfo {
        campus: format!("campus-{id}"),
        pki: None,
        archive_recipients: vec![],
        archive_identity: String::new(),
        segment_target_ms: 4000,
        signing: None,
        signing_pkcs8: None,
    };
    let replicator = Replicator { meta: meta.clone(), peers: peers.clone(), health: health.clone(), factor };
    let services = Services::new(meta.clone(), (store.clone(), keys.clone()), clock, replicator.clone(), cluster);
    if let Some(t) = &tls {
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&t.cert_pem, &t.key_pem))
            .client_ca_root(tonic::transport::Certificate::from_pem(&t.ca_pem))
            .client_auth_optional(true);
        let server = tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(services.peer_service())
            .serve(([127, 0, 0, 1], port).into());
        tokio::spawn(server);
        let (tx, rx) = tokio::sync::watch::channel(false);
        // The benchmark never shuts its nodes down: keep the sender for the process's life.
        std::mem::forget(tx);
        tokio::spawn(health.run(meta.clone(), peers.clone(), rx));
    }
    let ctx = Arc::new(SealContext { node_id: id, keys, store, pending });
    BenchNode { meta, ctx, replicator, _dir: dir }
}

/// Three nodes, all voters, all registered in the catalog (so placement sees them).
async fn three_nodes(keys: Arc<Keys>) -> Vec<BenchNode> {
    let ports = [free_port(), free_port(), free_port()];
    let pki = custos_node::tls::create_pki(1, format!("127.0.0.1:{}", ports[0]).parse().unwrap()).unwrap();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let (cert_pem, key_pem) = if id == 1 {
            (pki.node_cert_pem.clone(), pki.node_key_pem.clone())
        } else {
            custos_node::tls::issue_node_cert(&pki.ca_cert_pem, &pki.ca_key_pem, id, &format!("127.0.0.1:{port}"))
                .unwrap()
        };
        let tls = PeerTls { ca_pem: pki.ca_cert_pem.clone(), cert_pem, key_pem };
        nodes.push(start_node(id, *port, Some(tls), keys.clone(), 2).await);
    }
    let leader = &nodes[0].meta;
    leader.bootstrap(format!("127.0.0.1:{}", ports[0])).await.unwrap();
    leader.wait_for_leader(Duration::from_secs(20)).await.unwrap();
    for (i, port) in ports.iter().enumerate() {
        let id = i as u64 + 1;
        let founder = (id == 1).then_some(1);
        let token_hash = (id != 1).then(|| {
            let h = [id as u8; 32];
            let rec = custos_node::meta::JoinTokenRecord {
                created_by: "bench".into(),
                created_ms: 0,
                expires_ms: i64::MAX,
                used_by: None,
            };
            (h, rec)
        });
        if let Some((h, rec)) = &token_hash {
            leader.propose(Command::CreateJoinToken { token_hash: *h, token: rec.clone() }).await.unwrap();
        }
        let cmd = Command::RegisterNode {
            campus: format!("campus-{id}"),
            addr: format!("127.0.0.1:{port}"),
            token_hash: token_hash.map(|(h, _)| h),
            founder,
        };
        leader.propose(cmd).await.unwrap();
        if id != 1 {
            let node = openraft::BasicNode { addr: format!("127.0.0.1:{port}") };
            leader.add_learner(id, node, true).await.unwrap();
        }
    }
    leader.change_membership(BTreeSet::from([1, 2, 3]), false).await.unwrap();
    // Let the pings fill the health table (placement wants live peers with disk figures).
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes
}

fn record(camera: &str, i: i64) -> SegmentRecord {
    let h = *blake3::hash(&i.to_le_bytes()).as_bytes();
    SegmentRecord {
        camera: camera.into(),
        start_ms: 1_700_000_000_000 + i * 4000,
        end_ms: 1_700_000_004_000 + i * 4000,
        bytes: 2_000_000,
        blob_bytes: 2_000_200,
        content_hash: h,
        blob_hash: h,
        codec: Codec::H264,
        replicas: vec![1, 2],
    }
}

/// C1: records per second, 512 per entry, 4 proposers.
async fn batched_commits(meta: &Meta, total: usize) -> f64 {
    let per_task = total / 4;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..4 {
        let meta = meta.clone();
        tasks.push(tokio::spawn(async move {
            let cam = format!("bench-{p}");
            for chunk in (0..per_task as i64).collect::<Vec<_>>().chunks(512) {
                let batch: Vec<_> = chunk.iter().map(|&i| record(&cam, i)).collect();
                meta.propose(Command::CommitSegments(batch)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per_task * 4) as f64 / t.elapsed().as_secs_f64()
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// C2: p50 of single-record commits, and of a raw 4 KiB write + fdatasync.
async fn commit_latency(meta: &Meta, dir: &std::path::Path, n: usize) -> (Duration, Duration) {
    let mut commits = Vec::with_capacity(n);
    for i in 0..n as i64 {
        let t = Instant::now();
        meta.propose(Command::CommitSegments(vec![record("latency", i)])).await.unwrap();
        commits.push(t.elapsed());
    }
    let path = dir.join("fsync-baseline");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let block = [7u8; 4096];
    let mut raw = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        raw.push(t.elapsed());
    }
    (p50(commits), p50(raw))
}

/// p50 of a Peer.Ping round trip from node 1 to node 2.
async fn ping_rtt(node: &BenchNode, n: usize) -> Duration {
    let addr = node.meta.read(|c| Ok(c.node(2)?.expect("node 2 registered").addr)).await.unwrap();
    let mut client = node.replicator.peers.client(&addr).unwrap();
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client.ping(custos_proto::v1::PingRequest { from: 1, ..Default::default() }).await.unwrap();
        v.push(t.elapsed());
    }
    p50(v)
}

fn segment_bytes(camera: usize, i: usize, round: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(&[camera as u8, round as u8]);
    h.update(&(i as u64).to_le_bytes());
    let mut out = vec![0u8; SEGMENT_BYTES];
    h.finalize_xof().fill(&mut out);
    out
}

/// C3: MB/s of 2 MiB segments from 4 cameras through seal, store, (replicate) and commit.
async fn ingest(node: &BenchNode, replicate: bool, per_camera: usize, round: usize) -> f64 {
    let stats = Arc::new(RecorderStats::default());
    let (commit_tx, commit_rx) = mpsc::channel(1024);
    let pending = node.ctx.pending.clone();
    let committer = tokio::spawn(run_committer(
        commit_rx,
        node.meta.clone(),
        pending,
        Arc::new(AtomicBool::new(false)),
        stats.clone(),
        None,
    ));
    let inputs: Vec<Vec<RawSegment>> = (0..CAMERAS)
        .map(|c| {
            (0..per_camera)
                .map(|i| RawSegment {
                    camera: format!("cam{c}-r{round}-{replicate}"),
                    start_ms: 1_800_000_000_000 + i as i64 * 4000,
                    end_ms: 1_800_000_004_000 + i as i64 * 4000,
                    data: segment_bytes(c, i, round * 2 + replicate as usize),
                    codec: Codec::H264,
                    forced_cut: false,
                })
                .collect()
        })
        .collect();
    let t = Instant::now();
    let mut sealers = Vec::new();
    for segs in inputs {
        let (tx, rx) = mpsc::channel(3);
        let r = replicate.then(|| node.replicator.clone());
        sealers.push(tokio::spawn(run_sealer(rx, node.ctx.clone(), r, commit_tx.clone(), stats.clone())));
        tokio::spawn(async move {
            for s in segs {
                tx.send(s).await.unwrap();
            }
        });
    }
    drop(commit_tx);
    for s in sealers {
        s.await.unwrap();
    }
    committer.await.unwrap();
    let total = (CAMERAS * per_camera * SEGMENT_BYTES) as f64;
    total / t.elapsed().as_secs_f64() / 1e6
}

/// Process CPU time so far (user + system), from `/proc/self/stat`, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name: state is field 3, utime 14 and stime 15.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    let ticks: f64 = rest[11].parse::<f64>().unwrap() + rest[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// Context switches so far, summed over the process's threads (`/proc/self/task`).
fn context_switches() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        for line in status.lines() {
            if let Some(v) =
                line.strip_prefix("voluntary_ctxt_switches:").or(line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    // `--only c1|c2|c3` runs one part (for profiling it alone).
    let args: Vec<String> = std::env::args().collect();
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let want = |part: &str| only.as_deref().is_none_or(|o| o == part);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let id = seal::generate_identity();
        let keys = Arc::new(Keys::new(std::slice::from_ref(&id.recipient), &id.secret).unwrap());
        let nodes = three_nodes(keys.clone()).await;
        let single = start_node(1, 0, None, keys.clone(), 1).await;
        single.meta.bootstrap("127.0.0.1:1".into()).await.unwrap();
        single.meta.wait_for_leader(Duration::from_secs(20)).await.unwrap();

        let mut p3 = (None, None);
        if want("c1") {
            let total = if smoke { 20_480 } else { 204_800 };
            let one = batched_commits(&single.meta, total).await;
            let three = batched_commits(&nodes[0].meta, total).await;
            println!("C1 batched commits (512 records per entry, 4 proposers, {total} records)");
            println!("  1-node group: {one:>9.0} records/s");
            println!("  3-node group: {three:>9.0} records/s   (target >= 20000); ratio to 1 node {:.2}", three / one);
            p3.0 = Some(three);
        }

        if want("c2") {
            let n = if smoke { 50 } else { 1000 };
            let (cpu, switches) = (cpu_seconds(), context_switches());
            let (commit, raw) = commit_latency(&nodes[0].meta, nodes[0]._dir.path(), n).await;
            // The fsync loop in `commit_latency` costs almost no CPU and one switch per
            // fsync; the rest is the commits'.
            let cpu_per_commit = (cpu_seconds() - cpu) / n as f64;
            let switches_per_commit = (context_switches() - switches) as f64 / n as f64 - 1.0;
            let rtt = ping_rtt(&nodes[0], n).await;
            let (one_node, _) = commit_latency(&single.meta, single._dir.path(), n).await;
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let ratio = commit.as_secs_f64() / raw.as_secs_f64();
            println!("C2 single-record commit on the 3-node leader, p50 of {n}");
            println!(
                "  commit {:.2} ms, raw 4 KiB write + fdatasync {:.2} ms, ratio {ratio:.2} (target <= 2)",
                ms(commit),
                ms(raw),
            );
            // Where the time goes. The critical path of a 3-node commit is the round trip to
            // a follower plus the follower's synced append, then the leader's commit and
            // apply; a 1-node commit is the synced append plus the apply.
            let floor = ms(rtt) + ms(one_node);
            println!(
                "  breakdown: mutual-TLS gRPC round trip (Peer.Ping) p50 {:.2} ms; 1-node commit (synced append + \
                 apply) p50 {:.2} ms; their sum, the path without queueing, {floor:.2} ms = {:.2} x fdatasync; \
                 the rest, {:.2} ms, is waiting between tasks and threads",
                ms(rtt),
                ms(one_node),
                floor / ms(raw),
                ms(commit) - floor
            );
            println!(
                "  per 3-node commit, all three nodes together: {:.2} ms of CPU, {switches_per_commit:.0} thread context switches",
                cpu_per_commit * 1e3
            );
            p3.1 = Some((ms(commit), ms(raw), ratio));
        }
        if let (Some(rate), Some((commit, raw, ratio))) = p3 {
            report::result(
                "P3",
                "3-node catalog commits/s with batching; single-commit p50 ÷ 4 KiB write + fdatasync p50",
                &format!("{rate:.0}/s; {ratio:.2} ({commit:.2} ms ÷ {raw:.2} ms)"),
                "≥ 20,000/s; ≤ 2",
                Some(rate >= 20_000.0 && ratio <= 2.0),
                "three nodes in one process over mutual-TLS gRPC on loopback, sharing 2 cores and one disk",
            );
        }

        if want("c3") {
            let (rounds, per_camera) = if smoke { (1, 2) } else { (5, 12) };
            let mut ratios = Vec::new();
            let mut figures = BTreeMap::new();
            for round in 0..rounds {
                let a = ingest(&single, false, per_camera, round).await;
                let b = ingest(&nodes[0], true, per_camera, round).await;
                figures.insert(round, (a, b));
                ratios.push(b / a);
            }
            let replicated = nodes[1].ctx.store.contains(&seal_probe(&nodes[0]).await)
                || nodes[2].ctx.store.contains(&seal_probe(&nodes[0]).await);
            assert!(replicated, "segments reached a second node");
            let listed: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
            ratios.sort_by(f64::total_cmp);
            let ratio = ratios[ratios.len() / 2];
            println!("C3 ingest of 2 MiB segments, {CAMERAS} cameras x {per_camera} per round");
            for (r, (a, b)) in figures {
                println!("  round {r}: 1 node RF=1 {a:.0} MB/s, 3 nodes RF=2 {b:.0} MB/s, ratio {:.2}", b / a);
            }
            println!("  median ratio {ratio:.2} (target >= 0.45)");
            report::result(
                "P4",
                "3-node RF=2 ingest ÷ 1-node ingest on the same machine",
                &format!("{ratio:.2} (per round {})", listed.join(" ")),
                "≥ 0.45",
                Some(ratio >= 0.45),
                &format!(
                    "{CAMERAS} cameras × {per_camera} segments of 2 MiB per round, {rounds} rounds; every byte written \
                     twice to one disk"
                ),
            );
        }
    });
}

/// The content hash of the last segment the 3-node leader committed.
async fn seal_probe(node: &BenchNode) -> [u8; 32] {
    node.meta.read(|c| Ok(c.last_segment("cam0-r0-true")?.expect("a replicated segment").content_hash)).await.unwrap()
}

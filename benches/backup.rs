//! B1: backup throughput to S3 against restic, the same bytes to the same server.
//!
//! Server: `custos-test-s3` (s3s-fs) on loopback, which counts requests.
//!
//! Custos: the backup worker's own upload path (`BackupWorker::upload_round` until the
//! queue is empty) over about 100 MB of sealed segments (2 MiB each, or
//! `--segment-kib K`) committed to a fresh single-node catalog: read each blob, pack
//! runs of up to 8 MiB, upload (4 packs in flight), record the confirmed packs through
//! Raft.
//!
//! Baseline, same run: `restic backup` (Debian's restic, default settings) of the very
//! blob files the worker uploads, into a restic repository on the same server.
//!
//! Rounds alternate; the median of restic time ÷ custos time is printed with both
//! throughputs and the request counts of each side.
//! `cargo bench --bench backup` (add `-- --smoke` for a quick run, `-- --segment-kib 256`
//! for a low-bitrate camera's segments).

mod report;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use custos_node::backup::{snapshot::ClusterKeys, BackupWorker};
use custos_node::clock::{SharedClock, SystemClock};
use custos_node::cluster::{health::Health, peers::Peers, replicate::Replicator};
use custos_node::config::BackupConfig;
use custos_node::ingest::RawSegment;
use custos_node::meta::{Camera, Codec, Command as Cmd, Meta, SegmentRecord};
use custos_node::recorder::{seal_and_store, SealContext};
use custos_node::segment::pending::PendingDir;
use custos_node::segment::{seal, BlobStore, Keys};

/// Footage per run when not `--smoke`.
const TOTAL_BYTES: usize = 96 << 20;
const KEY: (&str, &str) = ("bench", "bench-secret-key-123");

fn segment(i: usize, bytes: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(&(i as u64).to_le_bytes());
    let mut out = vec![0u8; bytes];
    h.finalize_xof().fill(&mut out);
    out
}

/// Request counts by method since the server started.
fn stats(addr: &str) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /__custos_stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    // The body may be chunked: take the JSON object.
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    serde_json::from_str(json).unwrap()
}

fn requests_between(a: &serde_json::Value, b: &serde_json::Value) -> (u64, String) {
    let mut total = 0;
    let mut parts = Vec::new();
    for (k, v) in b.as_object().unwrap() {
        let d = v.as_u64().unwrap() - a[k].as_u64().unwrap();
        if d > 0 {
            total += d;
            parts.push(format!("{k} {d}"));
        }
    }
    (total, parts.join(", "))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds for the backup worker to empty a fresh catalog's queue of `recs`.
#[allow(clippy::too_many_arguments)]
async fn custos(
    dir: &std::path::Path,
    round: usize,
    recs: &[SegmentRecord],
    store: &Arc<BlobStore>,
    keys: &Arc<Keys>,
    url: &str,
    bucket: &str,
) -> f64 {
    let clock: SharedClock = Arc::new(SystemClock);
    let meta = Meta::start(1, &dir.join(format!("meta-{round}")), "127.0.0.1:1".into(), clock).await.unwrap();
    let cam = Camera {
        id: "bench".into(),
        name: String::new(),
        source: "test://".into(),
        recorder: 1,
        added_ms: 0,
        sensitive: false,
    };
    meta.propose(Cmd::AddCamera(cam)).await.unwrap();
    for chunk in recs.chunks(256) {
        meta.propose(Cmd::CommitSegments(chunk.to_vec())).await.unwrap();
    }
    let health = Health::new(1, dir);
    let cfg = BackupConfig {
        endpoint: Some(url.into()),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        prefix: format!("round-{round}"),
        allow_http: true,
        credentials_file: Some(dir.join("credentials")),
        ..BackupConfig::default()
    };
    let objects = custos_node::backup::open_store(&cfg).unwrap();
    let worker = BackupWorker {
        cfg,
        meta: meta.clone(),
        store: store.clone(),
        replicator: Replicator { meta: meta.clone(), peers: Peers::new(None), health, factor: 1 },
        keys: keys.clone(),
        cluster_keys: ClusterKeys::default(),
        state: Arc::new(Mutex::new(Default::default())),
    };
    let t = Instant::now();
    while worker.upload_round(&objects).await.unwrap().packs > 0 {}
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(meta.read(|c| c.backed_up()).await.unwrap().0, recs.len() as u64);
    meta.shutdown().await;
    secs
}

/// Seconds for `restic backup` of `blobs` into a new repository in `bucket`.
fn restic(blobs: &std::path::Path, url: &str, bucket: &str, round: usize) -> f64 {
    let repo = format!("s3:{url}/{bucket}/restic-{round}");
    let run = |args: &[&str]| {
        let out = Command::new("restic")
            .args(["-r", &repo, "--no-cache", "--quiet"])
            .args(args)
            .env("RESTIC_PASSWORD", "bench")
            .env("AWS_ACCESS_KEY_ID", KEY.0)
            .env("AWS_SECRET_ACCESS_KEY", KEY.1)
            .output()
            .expect("restic (ops/setup.sh installs it)");
        assert!(out.status.success(), "restic {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["init"]);
    let t = Instant::now();
    run(&["backup", blobs.to_str().unwrap()]);
    t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let segment_bytes = args
        .iter()
        .position(|a| a == "--segment-kib")
        .map(|i| args[i + 1].parse::<usize>().expect("--segment-kib takes a number") << 10)
        .unwrap_or(2 << 20);
    let (n, rounds) = if smoke { (8, 1) } else { ((TOTAL_BYTES / segment_bytes).max(8), 5) };
    let dir = tempfile::tempdir_in(std::env::var_os("CUSTOS_BENCH_DIR").unwrap_or_else(|| "target".into())).unwrap();
    let root = dir.path().join("s3");
    let bucket = "bench";
    std::fs::create_dir_all(root.join(bucket)).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_custos-test-s3"))
        .arg("--root")
        .arg(&root)
        .args(["--access-key", KEY.0, "--secret-key", KEY.1])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _server = KillOnDrop(server);
    let url = line.trim().strip_prefix("ready ").unwrap().to_string();
    let addr = url.strip_prefix("http://").unwrap().to_string();
    std::fs::write(
        dir.path().join("credentials"),
        format!("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n", KEY.0, KEY.1),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let id = seal::generate_identity();
    let keys = Arc::new(Keys::new(std::slice::from_ref(&id.recipient), &id.secret).unwrap());
    let blobs = dir.path().join("blobs");
    let store = Arc::new(BlobStore::open(&blobs).unwrap().0);
    let pending = Arc::new(PendingDir::open(&dir.path().join("pending")).unwrap());
    let ctx = SealContext { node_id: 1, keys: keys.clone(), store: store.clone(), pending };
    let start = custos_client::time::now_ms() - 3_600_000;
    let recs: Vec<SegmentRecord> = (0..n)
        .map(|i| {
            let raw = RawSegment {
                camera: "bench".into(),
                start_ms: start + i as i64 * 4000,
                end_ms: start + (i as i64 + 1) * 4000,
                codec: Codec::H264,
                forced_cut: false,
                data: segment(i, segment_bytes),
            };
            seal_and_store(&ctx, &raw).unwrap()
        })
        .collect();
    let mb = recs.iter().map(|r| r.blob_bytes).sum::<u64>() as f64 / 1e6;

    let mut ratios = Vec::new();
    for round in 0..rounds {
        let s0 = stats(&addr);
        let r = restic(&blobs, &url, bucket, round);
        let s1 = stats(&addr);
        let c = rt.block_on(custos(dir.path(), round, &recs, &store, &keys, &url, bucket));
        let s2 = stats(&addr);
        let (rn, rd) = requests_between(&s0, &s1);
        let (cn, cd) = requests_between(&s1, &s2);
        println!(
            "round {round}: restic {:.0} MB/s ({rn} requests: {rd}, init included), custos {:.0} MB/s ({cn} requests: {cd}), ratio {:.2}",
            mb / r,
            mb / c,
            r / c
        );
        ratios.push(r / c);
    }
    let listed: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
    let ratio = median(ratios);
    println!(
        "B1 backup of {n} sealed segments of {} KiB ({mb:.0} MB) to loopback S3: median throughput ratio custos/restic {ratio:.2} (target >= 3)",
        segment_bytes >> 10,
    );
    report::result(
        "P6",
        "backup throughput to loopback S3 ÷ restic backup of the same files to the same server",
        &format!("{ratio:.2} (per round {})", listed.join(" ")),
        "≥ 3",
        Some(ratio >= 3.0),
        &format!(
            "{n} sealed segments of {} KiB ({mb:.0} MB), {rounds} rounds, s3s-fs on loopback",
            segment_bytes >> 10
        ),
    );
}

/// Stops the S3 server however the benchmark ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

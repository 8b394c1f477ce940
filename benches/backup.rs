//! P6: backup throughput to S3 against what an operator would otherwise run, the same
//! bytes to the same server.
//!
//! Server: `custos-test-s3` (s3s-fs) on loopback, which counts requests.
//!
//! Custos: the backup worker's own upload path (`BackupWorker::upload_round` until the
//! queue is empty) over sealed segments committed to a fresh single-node catalog: read
//! each blob, pack runs of up to 8 MiB, upload (4 packs in flight), record the confirmed
//! packs through Raft.
//!
//! Baselines, same run, the very blob files the worker uploads:
//! - `rclone copy` (Debian's rclone, default settings: 4 transfers, an MD5 per file checked
//!   against the server's ETag) into a prefix of the same bucket, configured on the fly;
//! - `restic backup` (Debian's restic, default settings) into a new restic repository on
//!   the same server (its `init` is not timed).
//!
//! Both baselines are processes, so their time includes starting up; restic's in
//! particular opens its repository (a scrypt key derivation, the lock, the index) on
//! every run. That fixed cost is measured too: right after each timed run, the same tool
//! copies one new 1 KiB file to the same place (restic: a second backup into the same
//! repository, whose key derivation was calibrated at its `init`). The median of those is
//! printed beside the ratio, and the ratio against restic less its fixed cost of the
//! round.
//!
//! Two sizes, each a row of the table: about 101 MB (48 segments of 2 MiB, 5 rounds, row
//! `P6`) and 1 GiB (512 segments, 3 rounds, row `P6 1 GiB`). Each round runs the three
//! sides in a rotating order; the figures are the medians of the per-round ratios.
//! The curve `backup_segment_size` (`target/bench/series/backup_segment_size.tsv`) is the
//! throughput of each side over about 100 MB of 256 KiB, 1 MiB, 2 MiB (the `P6` run) and
//! 8 MiB segments, 3 rounds each.
//! `cargo bench --bench backup` (add `-- --smoke` for a quick run).

mod common;
mod report;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::median;
use custos_node::backup::{snapshot::ClusterKeys, BackupWorker};
use custos_node::clock::{SharedClock, SystemClock};
use custos_node::cluster::{health::Health, peers::Peers, replicate::Replicator};
use custos_node::config::BackupConfig;
use custos_node::meta::{Camera, Command as Cmd, Meta, SegmentRecord};
use custos_node::recorder::{seal_and_store, SealContext};
use custos_node::segment::pending::PendingDir;
use custos_node::segment::{seal, BlobStore, Keys};

const KEY: (&str, &str) = ("bench", "bench-secret-key-123");
const BUCKET: &str = "bench";

/// The loopback S3 server, its bucket directory and the scratch directory of the run.
struct Bench {
    dir: tempfile::TempDir,
    url: String,
    addr: String,
    bucket_dir: PathBuf,
    keys: Arc<Keys>,
    rt: tokio::runtime::Runtime,
    _server: KillOnDrop,
}

/// Sealed segments in their own blob store, and their catalog records.
struct Footage {
    name: String,
    blobs: PathBuf,
    store: Arc<BlobStore>,
    recs: Vec<SegmentRecord>,
    mb: f64,
}

/// Seconds each side took in each round, and each baseline's fixed cost in the round.
#[derive(Default)]
struct Times {
    custos: Vec<f64>,
    rclone: Vec<f64>,
    restic: Vec<f64>,
    rclone_fixed: Vec<f64>,
    restic_fixed: Vec<f64>,
}

#[derive(Clone, Copy)]
enum Side {
    Custos,
    Rclone,
    Restic,
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

fn requests_between(a: &serde_json::Value, b: &serde_json::Value) -> String {
    let mut total = 0;
    let mut parts = Vec::new();
    for (k, v) in b.as_object().unwrap() {
        let d = v.as_u64().unwrap() - a[k].as_u64().unwrap();
        if d > 0 {
            total += d;
            parts.push(format!("{k} {d}"));
        }
    }
    format!("{total} requests: {}", parts.join(", "))
}

/// Runs a baseline tool to completion; panics with its error output if it fails.
fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e} (ops/setup.sh installs it)"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Bench {
    fn start() -> Bench {
        let dir =
            tempfile::tempdir_in(std::env::var_os("CUSTOS_BENCH_DIR").unwrap_or_else(|| "target".into())).unwrap();
        let root = dir.path().join("s3");
        let bucket_dir = root.join(BUCKET);
        std::fs::create_dir_all(&bucket_dir).unwrap();
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
        let url = line.trim().strip_prefix("ready ").unwrap().to_string();
        let addr = url.strip_prefix("http://").unwrap().to_string();
        std::fs::write(
            dir.path().join("credentials"),
            format!("[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n", KEY.0, KEY.1),
        )
        .unwrap();
        let id = seal::generate_identity();
        let keys = Arc::new(Keys::new(std::slice::from_ref(&id.recipient), &id.secret).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        Bench { dir, url, addr, bucket_dir, keys, rt, _server: KillOnDrop(server) }
    }

    /// `n` segments of `kib` KiB sealed into a new blob store `name`.
    fn footage(&self, name: &str, n: usize, kib: usize) -> Footage {
        let base = self.dir.path().join(name);
        let blobs = base.join("blobs");
        let store = Arc::new(BlobStore::open(&blobs).unwrap().0);
        let pending = Arc::new(PendingDir::open(&base.join("pending")).unwrap());
        let ctx = SealContext { node_id: 1, keys: self.keys.clone(), store: store.clone(), pending };
        let start = custos_client::time::now_ms() - 3_600_000;
        let recs: Vec<SegmentRecord> = (0..n)
            .map(|i| {
                seal_and_store(&ctx, &common::raw_segment("bench", start, i, common::segment_of(0, i, kib << 10)))
                    .unwrap()
            })
            .collect();
        let mb = recs.iter().map(|r| r.blob_bytes).sum::<u64>() as f64 / 1e6;
        Footage { name: name.into(), blobs, store, recs, mb }
    }

    /// An rclone (or restic) command with the server's address and credentials.
    fn rclone(&self) -> Command {
        let mut c = Command::new("rclone");
        // A remote called `s3` made of environment variables; no configuration file. The
        // AWS SDK inside rclone refuses to start when AWS_CA_BUNDLE is set (it cannot add
        // a CA to rclone's own transport); the server is plain HTTP anyway.
        c.args(["--config", "", "--quiet"])
            .env_remove("AWS_CA_BUNDLE")
            .env("RCLONE_CONFIG_S3_TYPE", "s3")
            .env("RCLONE_CONFIG_S3_PROVIDER", "Other")
            .env("RCLONE_CONFIG_S3_ENDPOINT", &self.url)
            .env("RCLONE_CONFIG_S3_REGION", "us-east-1")
            .env("RCLONE_CONFIG_S3_FORCE_PATH_STYLE", "true")
            .env("RCLONE_CONFIG_S3_ACCESS_KEY_ID", KEY.0)
            .env("RCLONE_CONFIG_S3_SECRET_ACCESS_KEY", KEY.1);
        c
    }

    fn restic(&self, repo: &str) -> Command {
        let mut c = Command::new("restic");
        c.args(["-r", &format!("s3:{}/{BUCKET}/{repo}", self.url), "--no-cache", "--quiet"])
            .env("RESTIC_PASSWORD", "bench")
            .env("AWS_ACCESS_KEY_ID", KEY.0)
            .env("AWS_SECRET_ACCESS_KEY", KEY.1);
        c
    }

    /// One side's copy of `f`'s blobs under `prefix` of the bucket: its seconds, the
    /// requests it made and, for a baseline, the seconds of its next run copying one new
    /// 1 KiB file to the same place.
    fn side(&self, side: Side, f: &Footage, prefix: &str) -> (f64, String, Option<f64>) {
        let timed = |run: &mut dyn FnMut()| {
            let s0 = stats(&self.addr);
            let t = Instant::now();
            run();
            (t.elapsed().as_secs_f64(), requests_between(&s0, &stats(&self.addr)))
        };
        // A directory holding one new 1 KiB file, for the fixed cost.
        let tiny = || {
            let tiny = self.dir.path().join("tiny");
            let _ = std::fs::remove_dir_all(&tiny);
            std::fs::create_dir_all(&tiny).unwrap();
            std::fs::write(tiny.join(prefix), common::segment_of(1, 0, 1024)).unwrap();
            tiny
        };
        match side {
            Side::Custos => {
                let mut secs = 0.0;
                let (_, asked) = timed(&mut || secs = self.rt.block_on(self.custos(f, prefix)));
                (secs, asked, None)
            }
            Side::Rclone => {
                let copy = |from: &Path, to: String| {
                    let mut c = self.rclone();
                    c.arg("copy").arg(from).arg(format!("s3:{BUCKET}/{to}"));
                    move || run(&mut c, "rclone copy")
                };
                // To a path not there yet: s3s-fs answers rclone's first question (HEAD of
                // the destination, in case it is a file) with an error when the path is a
                // directory, and rclone retries that for about 90 s; S3 says 404.
                let (secs, asked) = timed(&mut copy(&f.blobs, prefix.to_string()));
                let (fixed, _) = timed(&mut copy(&tiny(), format!("{prefix}-tiny")));
                (secs, asked, Some(fixed))
            }
            Side::Restic => {
                let backup = |from: &Path| {
                    let mut c = self.restic(prefix);
                    c.arg("backup").arg(from);
                    move || run(&mut c, "restic backup")
                };
                run(self.restic(prefix).arg("init"), "restic init");
                let (secs, asked) = timed(&mut backup(&f.blobs));
                let (fixed, _) = timed(&mut backup(&tiny()));
                (secs, asked, Some(fixed))
            }
        }
    }

    /// Seconds for the backup worker to empty a fresh catalog's queue of `f`'s segments.
    async fn custos(&self, f: &Footage, prefix: &str) -> f64 {
        let clock: SharedClock = Arc::new(SystemClock);
        let meta_dir = self.dir.path().join(format!("meta-{prefix}"));
        let meta = Meta::start(1, &meta_dir, "127.0.0.1:1".into(), clock).await.unwrap();
        let cam = Camera {
            id: "bench".into(),
            name: String::new(),
            source: "test://".into(),
            recorder: 1,
            added_ms: 0,
            sensitive: false,
        };
        meta.propose(Cmd::AddCamera(cam)).await.unwrap();
        for chunk in f.recs.chunks(256) {
            meta.propose(Cmd::CommitSegments(chunk.to_vec())).await.unwrap();
        }
        let health = Health::new(1, self.dir.path());
        let cfg = BackupConfig {
            endpoint: Some(self.url.clone()),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            prefix: prefix.into(),
            allow_http: true,
            credentials_file: Some(self.dir.path().join("credentials")),
            ..BackupConfig::default()
        };
        let objects = custos_node::backup::open_store(&cfg).unwrap();
        let worker = BackupWorker {
            cfg,
            meta: meta.clone(),
            store: f.store.clone(),
            replicator: Replicator { meta: meta.clone(), peers: Peers::new(None), health, factor: 1 },
            keys: self.keys.clone(),
            cluster_keys: ClusterKeys::default(),
            state: Arc::new(Mutex::new(Default::default())),
        };
        let t = Instant::now();
        while worker.upload_round(&objects).await.unwrap().packs > 0 {}
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(meta.read(|c| c.backed_up()).await.unwrap().0, f.recs.len() as u64);
        meta.shutdown().await;
        let _ = std::fs::remove_dir_all(meta_dir);
        secs
    }

    /// `rounds` rounds of the three sides over `f`, in an order that rotates each round.
    fn compare(&self, f: &Footage, rounds: usize) -> Times {
        let mut times = Times::default();
        for round in 0..rounds {
            let mut order = [Side::Restic, Side::Rclone, Side::Custos];
            order.rotate_left(round % 3);
            let mut line = Vec::new();
            for side in order {
                let (name, list, fixed) = match side {
                    Side::Custos => ("custos", &mut times.custos, None),
                    Side::Rclone => ("rclone", &mut times.rclone, Some(&mut times.rclone_fixed)),
                    Side::Restic => ("restic", &mut times.restic, Some(&mut times.restic_fixed)),
                };
                let prefix = format!("{name}-{}-{round}", f.name);
                let (secs, asked, tiny) = self.side(side, f, &prefix);
                let after = tiny.map(|t| format!(", then one 1 KiB file {t:.2} s")).unwrap_or_default();
                line.push(format!("{name} {:.0} MB/s ({asked}{after})", f.mb / secs));
                list.push(secs);
                fixed.into_iter().zip(tiny).for_each(|(v, t)| v.push(t));
                // The copies are not needed again; only the time is.
                for p in [prefix.clone(), format!("{prefix}-tiny")] {
                    let _ = std::fs::remove_dir_all(self.bucket_dir.join(p));
                }
            }
            let (c, rc, rs) = (times.custos[round], times.rclone[round], times.restic[round]);
            println!(
                "{} round {round}: {}; ratios {:.2} (rclone), {:.2} (restic)",
                f.name,
                line.join(", "),
                rc / c,
                rs / c
            );
        }
        times
    }
}

/// The medians of one comparison.
struct Row {
    rclone: f64,
    restic: f64,
    /// Against restic's time less the fixed cost of its round.
    restic_less_fixed: f64,
    /// Fixed cost of one run, seconds: rclone, restic.
    fixed: [f64; 2],
    /// Throughputs in MB/s, the medians of the rounds.
    mb_s: [f64; 3],
    per_round: String,
}

/// The medians of `t`'s rounds over `f`.
fn row(f: &Footage, t: &Times) -> Row {
    let by = |base: &[f64]| -> Vec<f64> { base.iter().zip(&t.custos).map(|(b, c)| b / c).collect() };
    let listed = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(" ");
    let (rc, rs) = (by(&t.rclone), by(&t.restic));
    let less: Vec<f64> = t.restic.iter().zip(&t.restic_fixed).map(|(r, x)| r - x).collect();
    let speed = |v: &[f64]| median(v.iter().map(|s| f.mb / s).collect());
    Row {
        per_round: format!("{}; {}", listed(&rc), listed(&rs)),
        rclone: median(rc),
        restic: median(rs),
        restic_less_fixed: median(by(&less)),
        fixed: [median(t.rclone_fixed.clone()), median(t.restic_fixed.clone())],
        mb_s: [speed(&t.custos), speed(&t.rclone), speed(&t.restic)],
    }
}

fn main() {
    let smoke = common::smoke();
    let bench = Bench::start();

    // The two rows: about 101 MB and 1 GiB of 2 MiB segments.
    let sizes: [(&str, usize, usize); 2] =
        if smoke { [("P6", 4, 1), ("P6 1 GiB", 8, 1)] } else { [("P6", 48, 5), ("P6 1 GiB", 512, 3)] };
    let mut two_mib = None;
    for (id, n, rounds) in sizes {
        let f = bench.footage(&id.replace(' ', "-"), n, 2048);
        let t = bench.compare(&f, rounds);
        let r = row(&f, &t);
        let [c, rc, rs] = r.mb_s;
        let [fixed_rclone, fixed_restic] = r.fixed;
        println!(
            "{id}: backup of {n} sealed segments of 2 MiB ({:.0} MB) to loopback S3: custos {c:.0} MB/s, rclone {rc:.0} MB/s, \
             restic {rs:.0} MB/s; ratio {:.2} against rclone (target >= 1), {:.2} against restic (target >= 3), {:.2} against \
             restic less its fixed cost of {fixed_restic:.2} s",
            f.mb, r.rclone, r.restic, r.restic_less_fixed
        );
        report::result(
            id,
            &format!(
                "backup throughput to loopback S3, {} ÷ rclone copy; ÷ restic backup (same files, same server)",
                if f.mb < 1000.0 { format!("{:.0} MB", f.mb) } else { format!("{:.2} GB", f.mb / 1e3) }
            ),
            &format!(
                "{:.2}; {:.2} (per round {}); custos {c:.0} MB/s, rclone {rc:.0} MB/s, restic {rs:.0} MB/s",
                r.rclone, r.restic, r.per_round
            ),
            "≥ 1.0 (rclone); ≥ 3 (restic)",
            Some(r.rclone >= 1.0 && r.restic >= 3.0),
            &format!(
                "{n} sealed segments of 2048 KiB, {rounds} rounds, s3s-fs on loopback; fixed cost of one run \
                 (one 1 KiB file after each timed run, median): restic {fixed_restic:.2} s, rclone {fixed_rclone:.2} s; \
                 against restic less its fixed cost: {:.2}",
                r.restic_less_fixed
            ),
        );
        if id == "P6" {
            two_mib = Some(r.mb_s);
        }
    }

    // The curve against segment size, about 100 MB at each (2 MiB is the P6 run).
    let (total_kib, sizes_kib, rounds): (usize, &[usize], usize) =
        if smoke { (4 << 10, &[256, 2048], 1) } else { (96 << 10, &[256, 1024, 2048, 8192], 3) };
    let mut points = Vec::new();
    for &kib in sizes_kib {
        let mb_s = match two_mib {
            Some(m) if kib == 2048 => m,
            _ => {
                let f = bench.footage(&format!("curve-{kib}k"), (total_kib / kib).max(2), kib);
                row(&f, &bench.compare(&f, rounds)).mb_s
            }
        };
        println!(
            "segments of {kib} KiB: custos {:.0} MB/s, rclone {:.0} MB/s, restic {:.0} MB/s",
            mb_s[0], mb_s[1], mb_s[2]
        );
        points.push([vec![kib as f64], mb_s.iter().map(|x| x.round()).collect()].concat());
    }
    report::series("backup_segment_size", &["segment_kib", "custos_mb_s", "rclone_mb_s", "restic_mb_s"], &points);
}

/// Stops the S3 server however the benchmark ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

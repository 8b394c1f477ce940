//! How the catalog's cost grows with its size: records committed per second, bytes on
//! disk per record, and the latency of a typical search (one camera, one hour), measured
//! at 1 M and again at 10 M segment records on one node (`-- --smoke`: 20 k and 100 k).
//!
//! Records go through the real path (Raft proposals of 512 records from 4 concurrent
//! proposers into RocksDB), for 1 000 cameras recording side by side, 4 s segments, as a
//! large hospital's catalog fills. Searches read through `Meta::read`, as the API does.
//! The figure that matters is the ratio between the two sizes: a catalog indexed by
//! camera and time should search 10 M records about as fast as 1 M.
//! `cargo bench --bench catalog_scale`.

mod common;
mod report;

use std::time::{Duration, Instant};

use common::OneNode;
use custos_node::meta::{Codec, Command, Meta, SegmentRecord};
use rand::{Rng, SeedableRng};

const CAMERAS: i64 = 1_000;
const SEGMENT_MS: i64 = 4_000;
const T0: i64 = 1_700_000_000_000;

fn record(k: i64) -> SegmentRecord {
    let (cam, i) = (k % CAMERAS, k / CAMERAS);
    let h = *blake3::hash(&k.to_le_bytes()).as_bytes();
    SegmentRecord {
        camera: format!("cam-{cam:04}"),
        start_ms: T0 + i * SEGMENT_MS,
        end_ms: T0 + (i + 1) * SEGMENT_MS,
        bytes: 2_000_000,
        blob_bytes: 2_000_200,
        content_hash: h,
        blob_hash: *blake3::hash(&h).as_bytes(),
        codec: Codec::H264,
        replicas: vec![1, 2],
    }
}

/// Commits records `from..to`; returns records per second.
async fn grow(meta: &Meta, from: i64, to: i64) -> f64 {
    const BATCH: i64 = 512;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..4 {
        let meta = meta.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = from + p * BATCH;
            while b < to {
                let batch: Vec<_> = (b..(b + BATCH).min(to)).map(record).collect();
                meta.propose(Command::CommitSegments(batch)).await.unwrap();
                b += 4 * BATCH;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (to - from) as f64 / t.elapsed().as_secs_f64()
}

fn du(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `n` searches of one random camera over one random hour of what is recorded.
async fn searches(meta: &Meta, total: i64, n: usize) -> Vec<Duration> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(total as u64);
    let per_camera = total / CAMERAS;
    let hour = 3_600_000 / SEGMENT_MS;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let cam = format!("cam-{:04}", rng.gen_range(0..CAMERAS));
        let first = rng.gen_range(0..(per_camera - hour).max(1));
        let (from, to) = (T0 + first * SEGMENT_MS, T0 + (first + hour) * SEGMENT_MS);
        let t = Instant::now();
        let (found, _) = meta.read(move |c| c.search(&cam, from, to, 10_000)).await.unwrap();
        out.push(t.elapsed());
        assert!(!found.is_empty() && found.len() as i64 <= hour + 1, "{} records", found.len());
    }
    out.sort();
    out
}

fn main() {
    let sizes: [i64; 2] = if common::smoke() { [20_000, 100_000] } else { [1_000_000, 10_000_000] };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let node = OneNode::open(&rt);
    let mut done = 0;
    let mut p50s = Vec::new();
    for size in sizes {
        let rate = rt.block_on(grow(&node.meta, done, size));
        done = size;
        let bytes = du(&node.dir.path().join("meta"));
        let s = rt.block_on(searches(&node.meta, size, 300));
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
        println!(
            "{size} records: committed at {rate:.0} rec/s; catalog {:.0} MiB ({:.0} B/record); one camera, one hour: p50 {:.2} ms, p99 {:.2} ms",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / size as f64,
            at(0.5),
            at(0.99)
        );
        p50s.push(at(0.5));
        report::result(
            &format!("catalog {}", count(size)),
            &format!("catalog of {} segment records: commit rate, size on disk, search p50", count(size)),
            &format!("{rate:.0} rec/s; {:.0} B/record; p50 {:.2} ms", bytes as f64 / size as f64, at(0.5)),
            "",
            None,
            "1 000 cameras, 512 records per entry; one camera over one hour per search (p99 in the log)",
        );
    }
    println!(
        "catalog scale: search p50 at {} / at {} records = {:.2} (1.0 = no slower with 10x the records)",
        sizes[1],
        sizes[0],
        p50s[1] / p50s[0]
    );
    rt.block_on(node.meta.shutdown());
}

/// 1000000 as "1 M", 20000 as "20 k".
fn count(n: i64) -> String {
    if n >= 1_000_000 {
        format!("{} M", n / 1_000_000)
    } else {
        format!("{} k", n / 1_000)
    }
}

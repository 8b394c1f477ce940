//! How the catalog's cost grows with its size: records committed per second, bytes on
//! disk per record, and the latency of a typical search (one camera, one hour), measured
//! as one node's catalog grows through 10 k, 100 k, 1 M and 10 M segment records
//! (`-- --smoke`: 10 k, 20 k and 100 k). The two largest sizes are rows of the table; every
//! size is a point of the curve `catalog` (`target/bench/series/catalog.tsv`), which also
//! times a search of a fixed ten records, since below 900 records per camera the hour's
//! search returns fewer.
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

/// `n` searches of one random camera over a random window of `window` segments (one hour
/// is 900) of what is recorded; sorted, with the median number of records found.
async fn searches(meta: &Meta, total: i64, n: usize, window: i64) -> (Vec<Duration>, usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(total as u64 ^ window as u64);
    let per_camera = total / CAMERAS;
    let mut out = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        let cam = format!("cam-{:04}", rng.gen_range(0..CAMERAS));
        let first = rng.gen_range(0..(per_camera - window).max(1));
        let (from, to) = (T0 + first * SEGMENT_MS, T0 + (first + window) * SEGMENT_MS);
        let t = Instant::now();
        let (found, _) = meta.read(move |c| c.search(&cam, from, to, 10_000)).await.unwrap();
        out.push(t.elapsed());
        assert!(!found.is_empty() && found.len() as i64 <= window + 1, "{} records", found.len());
        counts.push(found.len());
    }
    out.sort();
    counts.sort();
    (out, counts[n / 2])
}

/// The `q` quantile of sorted durations, in milliseconds.
fn ms_at(s: &[Duration], q: f64) -> f64 {
    s[((s.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}

fn main() {
    let sizes: &[i64] =
        if common::smoke() { &[10_000, 20_000, 100_000] } else { &[10_000, 100_000, 1_000_000, 10_000_000] };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let node = OneNode::open(&rt);
    let mut done = 0;
    let mut p50s = Vec::new();
    let mut points = Vec::new();
    for (k, &size) in sizes.iter().enumerate() {
        let rate = rt.block_on(grow(&node.meta, done, size));
        done = size;
        let bytes = du(&node.dir.path().join("meta"));
        let (hour, found) = rt.block_on(searches(&node.meta, size, 300, 3_600_000 / SEGMENT_MS));
        let (ten, _) = rt.block_on(searches(&node.meta, size, 300, 10));
        println!(
            "{size} records: committed at {rate:.0} rec/s; catalog {:.0} MiB ({:.0} B/record); one camera, one hour \
             ({found} records): p50 {:.2} ms, p99 {:.2} ms; ten records: p50 {:.2} ms, p99 {:.2} ms",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / size as f64,
            ms_at(&hour, 0.5),
            ms_at(&hour, 0.99),
            ms_at(&ten, 0.5),
            ms_at(&ten, 0.99)
        );
        p50s.push(ms_at(&hour, 0.5));
        points.push(vec![
            size as f64,
            rate.round(),
            (bytes as f64 / size as f64).round(),
            ms_at(&hour, 0.5),
            ms_at(&hour, 0.99),
            found as f64,
            ms_at(&ten, 0.5),
            ms_at(&ten, 0.99),
        ]);
        // The two largest sizes are rows of the table; the smaller ones only points.
        if k + 2 >= sizes.len() {
            report::result(
                &format!("catalog {}", count(size)),
                &format!("catalog of {} segment records: commit rate, size on disk, search p50", count(size)),
                &format!(
                    "{rate:.0} rec/s; {:.0} B/record; p50 {:.2} ms",
                    bytes as f64 / size as f64,
                    ms_at(&hour, 0.5)
                ),
                "",
                None,
                "1 000 cameras, 512 records per entry; one camera over one hour per search (p99 in the log)",
            );
        }
    }
    let n = sizes.len();
    println!(
        "catalog scale: search p50 at {} / at {} records = {:.2} (1.0 = no slower with 10x the records)",
        sizes[n - 1],
        sizes[n - 2],
        p50s[n - 1] / p50s[n - 2]
    );
    report::series(
        "catalog",
        &[
            "records",
            "commits_per_s",
            "bytes_per_record",
            "hour_p50_ms",
            "hour_p99_ms",
            "hour_records",
            "ten_p50_ms",
            "ten_p99_ms",
        ],
        &points,
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

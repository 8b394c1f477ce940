//! P7: scrub throughput against raw BLAKE3 over the same bytes, and bit flips caught.
//!
//! Setup: one node's blob store and single-node Raft catalog, filled through the real
//! write path (`seal_and_store` and the batching committer) with 2 MiB segments.
//!
//! Custos: the real `Scrubber`, unthrottled (`bytes_per_s` = max), timed over one full
//! pass: catalog scan (`held_by`), blob read, BLAKE3 of the ciphertext, comparison with
//! the catalogued `blob_hash`. Baseline, same run, same files: read each blob file and
//! BLAKE3 it, in one loop. Both read through the page cache (the files were just
//! written), so the figure is the scrubber's own overhead, not the disk's speed.
//!
//! Then one bit is flipped in each of K random blobs and one more pass runs: the figure
//! is how many of the K it reports. `cargo bench --bench scrub` (`-- --smoke` for a
//! quick run).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
mod report;

use common::{median, OneNode};
use custos_node::cluster::health::Health;
use custos_node::cluster::peers::Peers;
use custos_node::cluster::replicate::Replicator;
use custos_node::config::ScrubConfig;
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Meta};
use custos_node::recorder::{run_committer, seal_and_store, RecorderStats, SealContext};
use custos_node::scrub::Scrubber;
use custos_node::segment::BlobStore;
use custos_node::worker::ScrubStats;
use rand::{Rng, SeedableRng};

/// Fills the store with `n` committed segments; returns their blob paths.
async fn fill(ctx: Arc<SealContext>, meta: &Meta, n: usize) -> Vec<std::path::PathBuf> {
    let stats = Arc::new(RecorderStats::default());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let committer = tokio::spawn(run_committer(
        rx,
        meta.clone(),
        ctx.pending.clone(),
        Arc::new(AtomicBool::new(false)),
        stats,
        None,
    ));
    let mut paths = Vec::new();
    for i in 0..n {
        let data = common::segment(0, i);
        let raw = RawSegment {
            camera: "bench".into(),
            start_ms: 1_700_000_000_000 + i as i64 * 4000,
            end_ms: 1_700_000_004_000 + i as i64 * 4000,
            codec: Codec::H264,
            forced_cut: false,
            data,
        };
        let c = ctx.clone();
        let rec = tokio::task::spawn_blocking(move || seal_and_store(&c, &raw)).await.unwrap().unwrap();
        paths.push(ctx.store.path_of(&rec.content_hash));
        tx.send(rec).await.unwrap();
    }
    drop(tx);
    committer.await.unwrap();
    paths
}

fn baseline(paths: &[std::path::PathBuf]) -> (f64, u64) {
    let t = Instant::now();
    let mut bytes = 0u64;
    for p in paths {
        let b = std::fs::read(p).unwrap();
        bytes += b.len() as u64;
        std::hint::black_box(blake3::hash(&b));
    }
    (t.elapsed().as_secs_f64(), bytes)
}

/// One full unthrottled pass of the real scrubber; returns its time and its stats.
async fn pass(meta: &Meta, store: Arc<BlobStore>, dir: &std::path::Path) -> (f64, Arc<ScrubStats>) {
    let stats = Arc::new(ScrubStats::default());
    let scrubber = Scrubber {
        meta: meta.clone(),
        store,
        replicator: Replicator { meta: meta.clone(), peers: Peers::new(None), health: Health::new(1, dir), factor: 1 },
        stats: stats.clone(),
        cfg: ScrubConfig { enabled: true, bytes_per_s: u64::MAX, pass_pause_s: 3_600 },
        backup: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let task = tokio::spawn(scrubber.run(stop_rx));
    while stats.passes.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    task.await.unwrap();
    (secs, stats)
}

fn main() {
    let (n, rounds, flips) = if common::smoke() { (8, 1, 3) } else { (256, 5, 10) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let OneNode { dir, store, ctx, meta, .. } = OneNode::open(&rt);
    let paths = rt.block_on(fill(ctx, &meta, n));

    let (mut base, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (b, bytes) = baseline(&paths);
        let (c, stats) = rt.block_on(pass(&meta, store.clone(), dir.path()));
        assert_eq!(stats.segments.load(Ordering::Relaxed), n as u64, "the pass verified every segment");
        assert_eq!(stats.bytes.load(Ordering::Relaxed), bytes, "the pass read the same bytes");
        let mb = bytes as f64 / 1e6;
        println!("round {round}: baseline {:.0} MB/s, scrub {:.0} MB/s", mb / b, mb / c);
        base.push(mb / b);
        ours.push(mb / c);
        ratios.push(b / c);
    }
    println!("P7 scrub of {n} x 2 MiB sealed segments, median of {rounds} rounds");
    println!("  baseline (read + BLAKE3 of each blob file): {:.0} MB/s", median(base));
    println!("  custos   (one unthrottled Scrubber pass):    {:.0} MB/s", median(ours));
    let listed: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
    println!("  ratio scrub/baseline per round: {}", listed.join(" "));
    let ratio = median(ratios);
    println!("  ratio scrub/baseline (median of rounds): {ratio:.2} (target >= 0.8)");

    // Bit flips: one in each of `flips` distinct blobs, anywhere in the file.
    let mut rng = rand::rngs::StdRng::seed_from_u64(77);
    let mut hit = std::collections::BTreeSet::new();
    while hit.len() < flips {
        hit.insert(rng.gen_range(0..paths.len()));
    }
    for &i in &hit {
        let p = &paths[i];
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        let mut b = std::fs::read(p).unwrap();
        let at = rng.gen_range(0..b.len());
        b[at] ^= 1 << rng.gen_range(0..8);
        std::fs::write(p, b).unwrap();
    }
    let (_, stats) = rt.block_on(pass(&meta, store, dir.path()));
    let caught = stats.corrupt.load(Ordering::Relaxed);
    println!(
        "  bit flips caught: {caught} of {flips} ({:.0} %), each quarantined and reported (target 100 %)",
        caught as f64 * 100.0 / flips as f64
    );
    report::result(
        "P7",
        "scrub throughput ÷ read + BLAKE3 of the same blobs; injected bit flips caught",
        &format!("{ratio:.2}; {caught} of {flips}"),
        "≥ 0.8; 100 %",
        Some(ratio >= 0.8 && caught == flips as u64),
        &format!("{n} sealed 2 MiB segments, {rounds} rounds, one bit flipped in {flips} blobs"),
    );
    assert_eq!(caught, flips as u64, "every flipped blob is found");
    rt.block_on(meta.shutdown());
}

//! P1: the recorder's write path against the raw work it cannot avoid.
//!
//! Custos: for each 2 MiB segment, `seal_and_store` (BLAKE3, age encryption, BLAKE3 of the
//! ciphertext, durable pending record, durable write-once blob) on the blocking pool, and
//! the real batching committer proposing the records to a single-node Raft group in
//! RocksDB. The clock stops when the last record is committed.
//!
//! Baseline, same bytes, same run: BLAKE3 + ChaCha20-Poly1305 (64 KiB chunks, as age's
//! STREAM) + write + fsync of one file per segment, in one loop.
//!
//! Rounds alternate between the two so machine noise hits both; the median of the
//! per-round ratios is printed. `cargo bench --bench seal_store_commit` (add `-- --smoke` for a quick run).

mod common;
mod report;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use common::{median, OneNode, SEGMENT_BYTES};
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Meta};
use custos_node::recorder::{run_committer, seal_and_store, RecorderStats, SealContext};

fn segments(n: usize, round: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| common::segment(round, i)).collect()
}

fn baseline(dir: &std::path::Path, segs: &[Vec<u8>]) -> f64 {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let t = Instant::now();
    for (i, s) in segs.iter().enumerate() {
        let h1 = blake3::hash(s);
        let mut buf = s.clone();
        let mut out = Vec::with_capacity(buf.len() + buf.len() / 4096 + 64);
        for (n, chunk) in buf.chunks_mut(64 * 1024).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", chunk).unwrap();
            out.extend_from_slice(chunk);
            out.extend_from_slice(&tag);
        }
        let h2 = blake3::hash(&out);
        let mut f = std::fs::File::create(dir.join(format!("{}-{i}", h1.to_hex()))).unwrap();
        f.write_all(&out).unwrap();
        f.sync_all().unwrap();
        std::hint::black_box(h2);
    }
    t.elapsed().as_secs_f64()
}

async fn custos(ctx: Arc<SealContext>, meta: &Meta, segs: Vec<Vec<u8>>, start_ms: i64) -> f64 {
    let n = segs.len() as u64;
    let stats = Arc::new(RecorderStats::default());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let committer = tokio::spawn(run_committer(
        rx,
        meta.clone(),
        ctx.pending.clone(),
        Arc::new(AtomicBool::new(false)),
        stats.clone(),
        None,
    ));
    let t = Instant::now();
    for (i, data) in segs.into_iter().enumerate() {
        let raw = RawSegment {
            camera: "bench".into(),
            start_ms: start_ms + i as i64 * 4000,
            end_ms: start_ms + (i as i64 + 1) * 4000,
            codec: Codec::H264,
            forced_cut: false,
            data,
        };
        let c = ctx.clone();
        let rec = tokio::task::spawn_blocking(move || seal_and_store(&c, &raw)).await.unwrap().unwrap();
        tx.send(rec).await.unwrap();
    }
    drop(tx);
    committer.await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(stats.segments_committed.load(std::sync::atomic::Ordering::Relaxed), n, "every segment committed");
    secs
}

fn main() {
    let (n, rounds) = if common::smoke() { (8, 1) } else { (48, 5) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let OneNode { dir, ctx, meta, .. } = OneNode::open(&rt);
    let raw_dir = dir.path().join("raw");
    std::fs::create_dir_all(&raw_dir).unwrap();

    let mb = (n * SEGMENT_BYTES) as f64 / 1e6;
    let (mut base, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let segs = segments(n, round);
        let b = baseline(&raw_dir, &segs);
        let c = rt.block_on(custos(ctx.clone(), &meta, segs, 1_700_000_000_000 + round as i64 * 10_000_000));
        println!("round {round}: baseline {:.0} MB/s, custos {:.0} MB/s", mb / b, mb / c);
        base.push(mb / b);
        ours.push(mb / c);
        ratios.push(b / c);
    }
    let (b, c) = (median(base), median(ours));
    println!("P1 seal+store+commit of {n} x 2 MiB segments, median of {rounds} rounds");
    println!("  baseline (BLAKE3 + ChaCha20-Poly1305 + write + fsync): {b:.0} MB/s");
    println!("  custos   (seal_and_store + batched Raft commit):        {c:.0} MB/s");
    // Each round measures both sides back to back, so a per-round ratio cancels the disk's
    // slow drifts; the median of those ratios is the figure.
    let r = median(ratios.clone());
    let listed: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
    println!("  ratio custos/baseline per round: {}", listed.join(" "));
    println!("  ratio custos/baseline (median of rounds): {r:.2} (target >= 0.85)");
    report::result(
        "P1",
        "seal + store + catalog commit of 2 MiB segments ÷ BLAKE3 + ChaCha20-Poly1305 + write + fsync",
        &format!("{r:.2} (per round {})", listed.join(" ")),
        "≥ 0.85",
        Some(r >= 0.85),
        &format!("{n} segments per side per round, {rounds} rounds; {b:.0} MB/s baseline, {c:.0} MB/s custos"),
    );
    rt.block_on(meta.shutdown());
}

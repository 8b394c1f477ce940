//! E1: export throughput against the raw work it cannot avoid.
//!
//! The footage is real H.264 in MPEG-TS (320×180 noise at the bitrate that makes 4 s
//! segments of the wanted size), cut into segments on packet boundaries, since an export
//! also remuxes each camera's footage into an MP4, and gives up on footage without video
//! only after a 3 s grace.
//!
//! Custos: `Exports::run_export` on a single node (the real service, called in process):
//! read each sealed 2 MiB segment from the blob store, check its ciphertext hash, decrypt
//! it (age), check its plaintext hash, hash the media file, remux it into an MP4 (on a
//! blocking thread, as the segments pass), build and sign the manifest, and commit the
//! archived copy with its hold through Raft.
//!
//! Baseline, same bytes, same run: ChaCha20-Poly1305 decryption in 64 KiB chunks (age's
//! STREAM) and BLAKE3 of the plaintext, from memory.
//!
//! Rounds alternate; the median of the per-round ratios is printed.
//!
//! The curve `export_segment_size` (`target/bench/series/export_segment_size.tsv`): the
//! same comparison over about 100 MB of 256 KiB, 1 MiB, 2 MiB (the row's run) and 8 MiB
//! segments, 3 rounds each, since a low-bitrate camera's segments are smaller.
//! `cargo bench --bench export` (add `-- --smoke` for a quick run).

use std::sync::Arc;
use std::time::Instant;

mod common;
mod report;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use custos_node::access::Role;
use custos_node::clock::{SharedClock, SystemClock};
use custos_node::cluster::health::Health;
use custos_node::cluster::replicate::Replicator;
use custos_node::meta::{Camera, Command, Meta, TokenRecord, User};
use custos_node::recorder::{seal_and_store, SealContext};
use custos_node::server::{ClusterInfo, Services};
use custos_proto::v1 as pb;
use custos_proto::v1::exports_server::Exports;
use custos_proto::v1::footage_server::Footage;
use tokio_stream::StreamExt;

use common::{median, OneNode, SEGMENT_BYTES};

/// Seconds to decrypt and hash `sealed` (ciphertext chunks with their tags).
fn baseline(sealed: &[Vec<u8>]) -> f64 {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let t = Instant::now();
    let mut file = blake3::Hasher::new();
    for s in sealed {
        let mut seg = blake3::Hasher::new();
        for (n, chunk) in s.chunks(64 * 1024 + 16).enumerate() {
            let (body, tag) = chunk.split_at(chunk.len() - 16);
            let mut buf = body.to_vec();
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(n as u64).to_be_bytes());
            cipher.decrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut buf, tag.into()).unwrap();
            seg.update(&buf);
            file.update(&buf);
        }
        std::hint::black_box(seg.finalize());
    }
    std::hint::black_box(file.finalize());
    t.elapsed().as_secs_f64()
}

fn seal_for_baseline(plain: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut out = Vec::with_capacity(plain.len() + plain.len() / 4096 + 16);
    for (n, chunk) in plain.chunks(64 * 1024).enumerate() {
        let mut buf = chunk.to_vec();
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut buf).unwrap();
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
    }
    out
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

async fn user(meta: &Meta, name: &str, role: Role) -> String {
    let token = format!("cst_bench_{name}");
    let hash = *blake3::hash(token.as_bytes()).as_bytes();
    let u = User { name: name.into(), role, case: None, disabled: false, grants: vec![], created_ms: 0 };
    let t = TokenRecord {
        id: hex::encode(&hash[..6]),
        user: name.into(),
        created_ms: 0,
        expires_ms: i64::MAX,
        revoked: false,
        issued_by: "bench".into(),
    };
    meta.propose(Command::CreateUser { user: u, token_hash: hash, token: t }).await.unwrap();
    token
}

/// Seconds of one `run_export` over `[from, to)` of `camera`.
async fn custos(svc: &Services, sec: &str, appr: &str, camera: &str, from: i64, to: i64) -> f64 {
    let r = pb::RequestExportRequest {
        case_id: "bench".into(),
        organisation: "Benchmark".into(),
        letter: "B-1".into(),
        purpose: "export throughput benchmark".into(),
        ranges: vec![pb::ExportRange { camera: camera.into(), from_ms: from, to_ms: to }],
        ..Default::default()
    };
    let id = svc.request_export(authed(r, sec)).await.unwrap().into_inner().id;
    let d = pb::DecideExportRequest { id: id.clone(), approve: true, ..Default::default() };
    svc.decide_export(authed(d, appr)).await.unwrap();
    let t = Instant::now();
    let e = svc.run_export(authed(pb::RunExportRequest { id }, sec)).await.unwrap().into_inner();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(e.status, "done");
    secs
}

/// `n` consecutive 4 s segments of about `bytes` each of one H.264 stream in MPEG-TS.
fn segments(n: usize, bytes: usize) -> Vec<Vec<u8>> {
    let piece = bytes / 188 * 188;
    let kbps = (bytes * 8 / 4 / 1000) as u32;
    // A tenth more frames than the pieces need: x264 misses its bitrate by a little.
    let ts = common::footage_ts("snow", 320, 180, kbps, (n as u32 * 100) * 11 / 10);
    let pieces: Vec<Vec<u8>> = ts.chunks_exact(piece).take(n).map(<[u8]>::to_vec).collect();
    assert_eq!(pieces.len(), n, "x264 wrote {} bytes at {kbps} kbit/s, too few for {n} segments", ts.len());
    pieces
}

/// `n` segments of `bytes` each for a new camera `camera`, sealed, stored and committed,
/// 4 s apart from `start`; returns the plaintexts.
async fn footage(ctx: &SealContext, meta: &Meta, camera: &str, n: usize, bytes: usize, start: i64) -> Vec<Vec<u8>> {
    let cam = Camera {
        id: camera.into(),
        name: String::new(),
        source: "test://".into(),
        recorder: 1,
        added_ms: 0,
        sensitive: false,
    };
    meta.propose(Command::AddCamera(cam)).await.unwrap();
    let plains = segments(n, bytes);
    let recs = (plains.iter().enumerate())
        .map(|(i, p)| seal_and_store(ctx, &common::raw_segment(camera, start, i, p.clone())).unwrap())
        .collect();
    meta.propose(Command::CommitSegments(recs)).await.unwrap();
    plains
}

/// What one segment size gave: per-round ratios and the medians of both throughputs.
#[derive(Clone)]
struct Measured {
    ratios: Vec<f64>,
    baseline_mb_s: f64,
    custos_mb_s: f64,
    /// The MP4 remux alone over the same plaintexts, not a baseline: where the time goes.
    remux_mb_s: f64,
}

/// Seconds of `mp4::remux` alone over `plains`, its output hashed as an export's is.
fn remux_alone(plains: &[Vec<u8>], scratch: &std::path::Path) -> f64 {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let owned = plains.to_vec();
    let t = Instant::now();
    let feeder = std::thread::spawn(move || {
        for p in owned {
            tx.blocking_send(Ok(p)).unwrap();
        }
    });
    let mut hash = blake3::Hasher::new();
    custos_node::export::mp4::remux(rx, 1_780_000_000_000, scratch, |b| {
        hash.update(b);
        true
    })
    .unwrap();
    std::hint::black_box(hash.finalize());
    feeder.join().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(scratch);
    secs
}

/// What every measurement uses: the runtime, the services, the security user and the
/// approver, and a directory for the MP4 working files.
struct Setup<'a> {
    rt: &'a tokio::runtime::Runtime,
    svc: &'a Services,
    users: (&'a str, &'a str),
    scratch: &'a std::path::Path,
}

/// Alternating rounds of the baseline and an export of all of `camera`'s footage, then
/// the MP4 remux alone.
fn measure(on: &Setup, camera: &str, plains: &[Vec<u8>], start: i64, rounds: usize) -> Measured {
    let sealed: Vec<Vec<u8>> = plains.iter().map(|p| seal_for_baseline(p)).collect();
    let mb = plains.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let end = start + plains.len() as i64 * 4000;
    let (mut ratios, mut ours, mut theirs, mut remuxes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let b = baseline(&sealed);
        let c = on.rt.block_on(custos(on.svc, on.users.0, on.users.1, camera, start, end));
        let m = remux_alone(plains, &on.scratch.join(format!("{camera}-{round}.mp4")));
        println!(
            "{camera} round {round}: baseline {:.0} MB/s, custos export {:.0} MB/s, ratio {:.2}; MP4 remux alone {:.0} MB/s",
            mb / b,
            mb / c,
            b / c,
            mb / m
        );
        ratios.push(b / c);
        ours.push(mb / c);
        theirs.push(mb / b);
        remuxes.push(mb / m);
    }
    Measured { ratios, baseline_mb_s: median(theirs), custos_mb_s: median(ours), remux_mb_s: median(remuxes) }
}

fn main() {
    let smoke = common::smoke();
    let (n, rounds) = if smoke { (8, 1) } else { (48, 5) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let OneNode { dir, keys, store, ctx, meta } = OneNode::open(&rt);
    let clock: SharedClock = Arc::new(SystemClock);
    let pk8 = custos_evidence::export::SigningKey::generate_pkcs8().unwrap();
    let cluster = ClusterInfo {
        campus: "main".into(),
        pki: None,
        archive_recipients: vec![],
        archive_identity: String::new(),
        segment_target_ms: 4000,
        signing: Some(Arc::new(custos_evidence::export::SigningKey::from_pkcs8(&pk8).unwrap())),
        signing_pkcs8: None,
    };
    let replicator = Replicator::alone(meta.clone(), Health::new(1, dir.path()));
    let svc = Services::new(meta.clone(), (store, keys), clock, replicator, cluster);

    // The footage: n sealed segments, committed.
    let start = custos_client::time::now_ms() - 3_600_000;
    let (plains, sec, appr) = rt.block_on(async {
        let plains = footage(&ctx, &meta, "bench", n, SEGMENT_BYTES, start).await;
        (plains, user(&meta, "sec", Role::Security).await, user(&meta, "appr", Role::Approver).await)
    });
    let on = Setup { rt: &rt, svc: &svc, users: (&sec, &appr), scratch: dir.path() };
    let two = measure(&on, "bench", &plains, start, rounds);
    drop(plains);
    let export_ratio = median(two.ratios.clone());
    println!("E1 export of {n} x 2 MiB segments: median ratio custos/baseline {export_ratio:.2} (target >= 0.7)");

    // The curve against segment size: about 100 MB at each size (2 MiB is the run above).
    let (total, sizes_kib, curve_rounds): (usize, &[usize], usize) =
        if smoke { (4 << 20, &[256, 2048], 1) } else { (96 << 20, &[256, 1024, 2048, 8192], 3) };
    let mut points = Vec::new();
    for &kib in sizes_kib {
        let m = if kib << 10 == SEGMENT_BYTES {
            two.clone()
        } else {
            let camera = format!("bench-{kib}k");
            let plains = rt.block_on(footage(&ctx, &meta, &camera, (total / (kib << 10)).max(2), kib << 10, start));
            measure(&on, &camera, &plains, start, curve_rounds)
        };
        let r = median(m.ratios.clone());
        println!(
            "segments of {kib} KiB: baseline {:.0} MB/s, custos export {:.0} MB/s, ratio {r:.2}; MP4 remux alone {:.0} MB/s",
            m.baseline_mb_s, m.custos_mb_s, m.remux_mb_s
        );
        points.push(vec![kib as f64, m.custos_mb_s.round(), m.baseline_mb_s.round(), m.remux_mb_s.round(), r]);
    }
    report::series(
        "export_segment_size",
        &["segment_kib", "custos_mb_s", "baseline_mb_s", "remux_mb_s", "ratio"],
        &points,
    );

    // P5 playback: time from a fetch request (one segment's range) to its first footage
    // byte: token check, authorisation, the audit entry committed through Raft, the
    // blob read, checked, decrypted and checked again.
    let fetches = if common::smoke() { 20 } else { 200 };
    let mut firsts = rt.block_on(async {
        let mut v = Vec::new();
        for k in 0..fetches {
            let from = start + (k % n) as i64 * 4000;
            let req = pb::FetchRequest {
                camera: "bench".into(),
                from_ms: from,
                to_ms: from + 4000,
                purpose: "playback latency benchmark".into(),
            };
            let t = Instant::now();
            let mut stream = svc.fetch(authed(req, &sec)).await.unwrap().into_inner();
            loop {
                match stream.next().await {
                    Some(Ok(pb::FetchChunk { item: Some(pb::fetch_chunk::Item::Data(_)) })) => break,
                    Some(Ok(_)) => {}
                    other => panic!("fetch ended before any footage: {other:?}"),
                }
            }
            v.push(t.elapsed());
            while stream.next().await.is_some() {}
        }
        v
    });
    firsts.sort();
    let at = |q: f64| firsts[((firsts.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "P5 playback first byte over {fetches} fetches of one 2 MiB segment: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 50 ms)",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    report::result(
        "P5",
        "export throughput (MP4 remux included) ÷ ChaCha20-Poly1305 decrypt + BLAKE3; playback first-byte p99",
        &format!("{export_ratio:.2}; p99 {:.1} ms", at(0.99)),
        "≥ 0.7; ≤ 50 ms",
        Some(export_ratio >= 0.7 && at(0.99) <= 50.0),
        &format!(
            "export of {n} × 2 MiB segments of H.264 in MPEG-TS, {rounds} rounds: custos {:.0} MB/s, baseline {:.0} MB/s, \
             the MP4 remux alone {:.0} MB/s; {fetches} one-segment fetches, p50 {:.1} ms",
            two.custos_mb_s,
            two.baseline_mb_s,
            two.remux_mb_s,
            at(0.5)
        ),
    );
}

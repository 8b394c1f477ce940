//! E1: export throughput against the raw work it cannot avoid.
//!
//! Custos: `Exports::run_export` on a single node (the real service, called in process):
//! read each sealed 2 MiB segment from the blob store, check its ciphertext hash, decrypt
//! it (age), check its plaintext hash, hash the media file, build and sign the manifest,
//! and commit the archived copy with its hold through Raft.
//!
//! Baseline, same bytes, same run: ChaCha20-Poly1305 decryption in 64 KiB chunks (age's
//! STREAM) and BLAKE3 of the plaintext, from memory.
//!
//! Rounds alternate; the median of the per-round ratios is printed.
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
use custos_node::ingest::RawSegment;
use custos_node::meta::{Camera, Codec, Command, Meta, TokenRecord, User};
use custos_node::recorder::seal_and_store;
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

/// Seconds of one `run_export` over `[from, to)` of camera `bench`.
async fn custos(svc: &Services, sec: &str, appr: &str, from: i64, to: i64) -> f64 {
    let r = pb::RequestExportRequest {
        case_id: "bench".into(),
        organisation: "Benchmark".into(),
        letter: "B-1".into(),
        purpose: "export throughput benchmark".into(),
        ranges: vec![pb::ExportRange { camera: "bench".into(), from_ms: from, to_ms: to }],
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

fn main() {
    let (n, rounds) = if common::smoke() { (8, 1) } else { (48, 5) };
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
    let plains: Vec<Vec<u8>> = (0..n).map(|i| common::segment(0, i)).collect();
    let (sec, appr) = rt.block_on(async {
        let cam = Camera {
            id: "bench".into(),
            name: String::new(),
            source: "test://".into(),
            recorder: 1,
            added_ms: 0,
            sensitive: false,
        };
        meta.propose(Command::AddCamera(cam)).await.unwrap();
        let mut recs = Vec::new();
        for (i, p) in plains.iter().enumerate() {
            let raw = RawSegment {
                camera: "bench".into(),
                start_ms: start + i as i64 * 4000,
                end_ms: start + (i as i64 + 1) * 4000,
                codec: Codec::H264,
                forced_cut: false,
                data: p.clone(),
            };
            recs.push(seal_and_store(&ctx, &raw).unwrap());
        }
        meta.propose(Command::CommitSegments(recs)).await.unwrap();
        (user(&meta, "sec", Role::Security).await, user(&meta, "appr", Role::Approver).await)
    });
    let sealed: Vec<Vec<u8>> = plains.iter().map(|p| seal_for_baseline(p)).collect();
    let mb = (n * SEGMENT_BYTES) as f64 / 1e6;
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let b = baseline(&sealed);
        let c = rt.block_on(custos(&svc, &sec, &appr, start, start + n as i64 * 4000));
        println!("round {round}: baseline {:.0} MB/s, custos export {:.0} MB/s, ratio {:.2}", mb / b, mb / c, b / c);
        ratios.push(b / c);
    }
    let export_ratio = median(ratios);
    println!("E1 export of {n} x 2 MiB segments: median ratio custos/baseline {export_ratio:.2} (target >= 0.7)");

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
        "export throughput ÷ ChaCha20-Poly1305 decrypt + BLAKE3; playback first-byte p99",
        &format!("{export_ratio:.2}; p99 {:.1} ms", at(0.99)),
        "≥ 0.7; ≤ 50 ms",
        Some(export_ratio >= 0.7 && at(0.99) <= 50.0),
        &format!(
            "export of {n} × 2 MiB segments, {rounds} rounds; {fetches} one-segment fetches, p50 {:.1} ms",
            at(0.5)
        ),
    );
}

//! Crash recovery of the write path, in process: a segment that was durable but not yet
//! committed when the node died is committed at the next start; a pending record whose
//! blob never became durable (never acknowledged) is dropped.

mod common;

use std::sync::Arc;

use custos_node::clock::SystemClock;
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Meta};
use custos_node::recorder::{recover, seal_and_store, Recovery};

fn raw(start_ms: i64, fill: u8) -> RawSegment {
    RawSegment {
        camera: "pharmacy".into(),
        start_ms,
        end_ms: start_ms + 4_000,
        codec: Codec::H264,
        forced_cut: false,
        data: vec![fill; 50_000],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_uncommitted_segments_are_recommitted_and_torn_ones_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = common::write_path(dir.path());
    let (keys, store, pending) = (ctx.keys.clone(), ctx.store.clone(), ctx.pending.clone());

    // A: pending record and blob durable, then the node died before the commit.
    let a = seal_and_store(&ctx, &raw(1_000_000, 1)).unwrap();
    // B: pending record durable, blob never written (died between the two).
    let mut b = seal_and_store(&ctx, &raw(1_004_000, 2)).unwrap();
    std::fs::remove_file(store.path_of(&b.content_hash)).unwrap();
    b.blob_hash = [0; 32];
    assert_eq!(pending.load().unwrap().len(), 2);

    let meta = Meta::start(1, &dir.path().join("meta"), "127.0.0.1:1".into(), Arc::new(SystemClock)).await.unwrap();
    let r = recover(&meta, store.clone(), pending.clone()).await.unwrap();
    assert_eq!(r, Recovery { recommitted: 1, already_committed: 0, dropped: 1 });
    assert!(pending.load().unwrap().is_empty(), "pending records are cleared");
    let (segs, _) = meta.catalog.search("pharmacy", 0, i64::MAX, 10).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0], a);
    // The recommitted segment opens and verifies.
    let blob = store.get(&a.content_hash).unwrap().unwrap();
    assert_eq!(keys.open(&blob, &a.blob_hash, &a.content_hash).unwrap(), vec![1u8; 50_000]);

    // Committed, then died before removing the pending record: recognised, not duplicated.
    pending.put(&a).unwrap();
    let r = recover(&meta, store.clone(), pending.clone()).await.unwrap();
    assert_eq!(r, Recovery { recommitted: 0, already_committed: 1, dropped: 0 });
    assert_eq!(meta.catalog.segment_count().unwrap(), 1);
    meta.shutdown().await;
}

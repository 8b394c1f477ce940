//! Audit before data: when the metadata group cannot commit (no quorum), a fetch serves
//! nothing, even though the catalog and the blobs are readable. In process, against the
//! real services, RocksDB and Raft.

mod common;

use std::sync::Arc;

use custos_node::access::Role;
use custos_node::clock::SystemClock;
use custos_node::ingest::RawSegment;
use custos_node::meta::{Codec, Command, Meta};
use custos_node::recorder::seal_and_store;
use custos_proto::v1 as pb;
use custos_proto::v1::footage_server::Footage;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_commit_for_the_audit_entry_nothing_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = common::write_path(dir.path());
    let clock: custos_node::clock::SharedClock = Arc::new(SystemClock);
    let meta = Meta::start(1, &dir.path().join("meta"), "127.0.0.1:1".into(), clock.clone()).await.unwrap();

    // A camera, one committed segment, and a security user.
    let now = custos_client::time::now_ms();
    common::add_camera(&meta, "pharmacy").await;
    let raw = RawSegment {
        camera: "pharmacy".into(),
        start_ms: now - 10_000,
        end_ms: now - 6_000,
        codec: Codec::H264,
        forced_cut: false,
        data: vec![7; 10_000],
    };
    let rec = seal_and_store(&ctx, &raw).unwrap();
    meta.propose(Command::CommitSegments(vec![rec])).await.unwrap();
    let token = common::add_user(&meta, "guard", Role::Security, now + 3_600_000).await;
    let svc = common::services(&meta, &ctx, clock);
    let request = || {
        let mut r = tonic::Request::new(pb::FetchRequest {
            camera: "pharmacy".into(),
            from_ms: now - 60_000,
            to_ms: now,
            purpose: "incident 2026-099: missing medication".into(),
        });
        r.metadata_mut().insert("authorization", format!("Bearer {}", token).parse().unwrap());
        r
    };

    // With a working group the fetch streams the segment.
    let mut stream = svc.fetch(request()).await.unwrap().into_inner();
    let mut bytes = 0;
    while let Some(item) = tokio_stream::StreamExt::next(&mut stream).await {
        if let Some(pb::fetch_chunk::Item::Data(d)) = item.unwrap().item {
            bytes += d.len();
        }
    }
    assert_eq!(bytes, 10_000);
    let entries_before = meta.catalog.audit_head().unwrap().0;

    // The group can no longer commit: the fetch is refused and nothing is served.
    meta.shutdown().await;
    let Err(err) = svc.fetch(request()).await else { panic!("no stream without an audit entry") };
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("audit"), "{}", err.message());
    assert_eq!(meta.catalog.audit_head().unwrap().0, entries_before, "nothing was appended either");
}

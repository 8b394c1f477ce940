//! The Raft storage layer against openraft's own conformance suite, plus a snapshot
//! round trip between two state machines.

use custos_node::meta::db;
use custos_node::meta::log_store::LogStore;
use custos_node::meta::state::StateMachine;
use custos_node::meta::{Camera, Codec, Command, Request, SegmentRecord, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder, StorageError};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let database = db::open(&dir.path().join("catalog")).unwrap();
        let sm = StateMachine::new(database.clone(), &dir.path().join("snapshots")).unwrap();
        Ok((dir, LogStore::new(database), sm))
    }
}

#[test]
fn rocksdb_storage_passes_the_openraft_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Request { time_ms: 1_700_000_000_000, command, audit: None }),
    }
}

fn segment(camera: &str, start_ms: i64) -> SegmentRecord {
    SegmentRecord {
        camera: camera.into(),
        start_ms,
        end_ms: start_ms + 4_000,
        bytes: 1000,
        blob_bytes: 1200,
        content_hash: *blake3::hash(format!("{camera}{start_ms}").as_bytes()).as_bytes(),
        blob_hash: [0; 32],
        codec: Codec::H264,
        replicas: vec![1],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_installs_an_identical_catalog_and_commits_are_idempotent() {
    let a_dir = tempfile::tempdir().unwrap();
    let a_db = db::open(&a_dir.path().join("catalog")).unwrap();
    let mut a = StateMachine::new(a_db, &a_dir.path().join("snapshots")).unwrap();
    let cam = Camera {
        id: "ward-3".into(),
        name: "Ward 3".into(),
        source: "test://".into(),
        recorder: 1,
        added_ms: 0,
        sensitive: true,
    };
    let batch: Vec<_> = (0..50).map(|i| segment("ward-3", 1_000_000 + i * 4_000)).collect();
    let resp = a
        .apply(vec![
            entry(1, Command::AddCamera(cam)),
            entry(2, Command::CommitSegments(batch.clone())),
            // A batch re-proposed after a crash changes nothing.
            entry(3, Command::CommitSegments(batch[..10].to_vec())),
            // The same segment twice in one batch is stored once.
            entry(4, Command::CommitSegments(vec![segment("ward-3", 9_000_000), segment("ward-3", 9_000_000)])),
        ])
        .await
        .unwrap();
    assert_eq!(resp[1], custos_node::meta::Response::Committed { new: 50, duplicate: 0, superseded: 0 });
    assert_eq!(resp[2], custos_node::meta::Response::Committed { new: 0, duplicate: 10, superseded: 0 });
    assert_eq!(resp[3], custos_node::meta::Response::Committed { new: 1, duplicate: 1, superseded: 0 });
    assert_eq!(a.catalog().segment_count().unwrap(), 51);
    // Added time comes from the command, not the applying node's clock.
    assert_eq!(a.catalog().camera("ward-3").unwrap().unwrap().added_ms, 1_700_000_000_000);

    let snap = a.build_snapshot().await.unwrap();
    assert_eq!(snap.meta.last_log_id.unwrap().index, 4);

    let b_dir = tempfile::tempdir().unwrap();
    let b_db = db::open(&b_dir.path().join("catalog")).unwrap();
    let mut b = StateMachine::new(b_db, &b_dir.path().join("snapshots")).unwrap();
    let mut recv = b.begin_receiving_snapshot().await.unwrap();
    let mut src = snap.snapshot;
    tokio::io::copy(&mut *src, &mut *recv).await.unwrap();
    b.install_snapshot(&snap.meta, recv).await.unwrap();

    let (applied, _) = b.applied_state().await.unwrap();
    assert_eq!(applied.unwrap().index, 4);
    let (sa, _) = a.catalog().search("ward-3", 0, i64::MAX, 1000).unwrap();
    let (sb, _) = b.catalog().search("ward-3", 0, i64::MAX, 1000).unwrap();
    assert_eq!(sa, sb);
    assert_eq!(sb.len(), 51);
    assert_eq!(b.catalog().segment_count().unwrap(), 51);
    assert_eq!(b.catalog().cameras().unwrap(), a.catalog().cameras().unwrap());
    let current = b.get_current_snapshot().await.unwrap().expect("installed snapshot is current");

    // The 30-day floor holds at apply time too: a hand-made command cannot lower it.
    use custos_node::meta::Response;
    use custos_node::retention::Policy;
    let low = Policy { min_days: 29, max_days: 29 };
    let ok = Policy { min_days: 30, max_days: 90 };
    let resp = b
        .apply(vec![
            entry(5, Command::SetPolicy { camera: None, policy: low }),
            entry(6, Command::SetPolicy { camera: Some("ward-3".into()), policy: low }),
            entry(7, Command::SetPolicy { camera: Some("ward-3".into()), policy: ok }),
        ])
        .await
        .unwrap();
    assert!(matches!(&resp[0], Response::Rejected(_, w) if w.contains("floor of 30")), "{resp:?}");
    assert!(matches!(&resp[1], Response::Rejected(_, w) if w.contains("floor of 30")), "{resp:?}");
    assert_eq!(resp[2], Response::Ok);
    assert_eq!(b.catalog().policy_for("ward-3").unwrap(), ok);
    assert_eq!(b.catalog().policy_for("lobby").unwrap(), Policy::default());
    assert_eq!(current.meta.snapshot_id, snap.meta.snapshot_id);

    // Range search: the segment that starts before `from` but runs into it is included.
    let (s, _) = a.catalog().search("ward-3", 1_000_000 + 6_000, 1_000_000 + 9_000, 100).unwrap();
    assert_eq!(s.iter().map(|x| x.start_ms).collect::<Vec<_>>(), vec![1_004_000, 1_008_000]);
    let (s, truncated) = a.catalog().search("ward-3", 0, i64::MAX, 7).unwrap();
    assert_eq!((s.len(), truncated), (7, true));
}

/// Packs in the backup bucket: a member is recorded only from the queue and only once, a
/// pack nobody needs goes to the trash at once, and expiry trashes a pack only when its
/// last member goes, so a hold on one member keeps the whole pack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packs_are_trashed_only_when_their_last_member_goes() {
    use custos_node::meta::{PackMember, Response, StoredPack};
    let dir = tempfile::tempdir().unwrap();
    let database = db::open(&dir.path().join("catalog")).unwrap();
    let mut sm = StateMachine::new(database, &dir.path().join("snapshots")).unwrap();
    let cam = Camera {
        id: "ward".into(),
        name: String::new(),
        source: "test://".into(),
        recorder: 1,
        added_ms: 0,
        sensitive: false,
    };
    let segs: Vec<_> = (0..6).map(|i| segment("ward", 1_000_000 + i * 4_000)).collect();
    let hold = custos_node::retention::Hold {
        id: String::new(),
        case_id: "case-1".into(),
        cameras: vec!["ward".into()],
        from_ms: 1_008_000,
        to_ms: Some(1_012_000),
        reason: "incident".into(),
        placed_by: "guard".into(),
        placed_ms: 0,
        release_approvals: vec![],
        released_ms: None,
    };
    let pack = |tag: u8, members: &[usize]| StoredPack {
        hash: [tag; 32],
        bytes: 100_000 + tag as u64,
        members: members
            .iter()
            .enumerate()
            .map(|(i, &m)| PackMember {
                camera: "ward".into(),
                start_ms: segs[m].start_ms,
                offset: i as u64 * 1200,
                len: 1200,
            })
            .collect(),
    };
    let mut odd = pack(9, &[5]);
    odd.members[0].len = 999; // not the catalogued blob's size
    let resp = sm
        .apply(vec![
            entry(1, Command::AddCamera(cam)),
            entry(2, Command::CommitSegments(segs.clone())),
            entry(3, Command::PlaceHold(hold)),
            entry(4, Command::MarkBackedUp(vec![pack(1, &[0, 1, 2]), pack(2, &[3, 4])])),
            // A repeated commit changes nothing; a pack of already backed-up footage is
            // trashed; a member whose size does not match is refused.
            entry(5, Command::MarkBackedUp(vec![pack(1, &[0, 1, 2]), pack(3, &[3]), odd])),
        ])
        .await
        .unwrap();
    assert_eq!(resp[3], Response::Committed { new: 5, duplicate: 0, superseded: 0 });
    assert_eq!(resp[4], Response::Committed { new: 0, duplicate: 5, superseded: 0 });
    let c = sm.catalog();
    assert_eq!(c.backed_up().unwrap(), (5, 5 * 1200));
    assert_eq!(c.backup_objects().unwrap(), (2, 200_003));
    assert_eq!(c.backup_pending().unwrap(), 1);
    let loc = c.backup_location("ward", segs[4].start_ms).unwrap().unwrap();
    assert_eq!((loc.pack, loc.offset, loc.len), ([2; 32], 1200, 1200));
    assert_eq!(c.trash_after(0, 10).unwrap(), vec![(1, [3; 32]), (2, [9; 32])]);

    // Everything is past its retention; the held segment stays, and with it pack 1.
    let all = segs.iter().map(|s| (s.camera.clone(), s.start_ms)).collect();
    let resp = sm.apply(vec![entry(6, Command::ExpireSegments { at_ms: i64::MAX, segments: all })]).await.unwrap();
    assert_eq!(resp[0], Response::Committed { new: 5, duplicate: 1, superseded: 0 });
    let c = sm.catalog();
    assert_eq!(c.trash_after(2, 10).unwrap(), vec![(3, [2; 32])], "pack 2 lost its last member");
    let p1 = c.backup_pack(&[1; 32]).unwrap().expect("pack 1 holds held footage");
    assert_eq!((p1.members, p1.live), (3, 1));
    assert!(c.backup_pack(&[2; 32]).unwrap().is_none());
    assert_eq!(c.backed_up().unwrap(), (1, 1200));
    assert_eq!(c.backup_objects().unwrap(), (1, 100_001));
    assert_eq!(c.backup_pending().unwrap(), 0);
    assert!(c.backup_location("ward", segs[0].start_ms).unwrap().is_none());
    assert!(c.backup_location("ward", segs[2].start_ms).unwrap().is_some());
}

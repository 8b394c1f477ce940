//! The catalog's state machine is total: a record it cannot read while applying an entry
//! stops the node (fail-stop) instead of being taken for a refusal, which would let one
//! replica apply the entry differently from the others.

mod common;

use common::Node;

/// A user record damaged on one node's disk: the next command that reads it stops that
/// node with the fail-stop message, and nothing is reported as a mere refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_during_apply_stops_the_node_instead_of_refusing() {
    let mut node = Node::init(&[], 4_000);
    let admin = node.start().await;
    admin.add_user("bob", "security", None, 0).await.unwrap();
    node.stop();
    {
        // A disk that returns garbage for bob's record, as a failing drive would.
        let db = custos_node::meta::db::open(&node.data().join("catalog")).unwrap();
        let cf = db.cf_handle(custos_node::meta::db::CF_USERS).unwrap();
        db.put_cf(cf, b"bob", [custos_node::meta::types::FORMAT_V1, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
    }
    let admin = node.start().await;
    let res = admin.disable_user("bob").await;
    let status = node.wait_exit(30).unwrap_or_else(|| {
        panic!("the node kept running after a failed apply (answer: {:?}):\n{}", res.as_ref().err(), node.log())
    });
    assert_eq!(status.code(), Some(1), "{}", node.log());
    let log = node.log();
    assert!(log.contains("FATAL: the metadata store failed"), "{log}");
    assert!(log.contains("catalog read failed"), "the log names the failed read: {log}");
    if let Err(e) = res {
        assert_ne!(e.code(), Some(tonic::Code::FailedPrecondition), "not reported as a refusal: {e}");
    }
}

mod determinism {
    use custos_node::access::Role;
    use custos_node::audit::AuditEvent;
    use custos_node::meta::db::{self, STATE_CFS};
    use custos_node::meta::state::StateMachine;
    use custos_node::meta::{
        AlarmChange, Camera, Codec, Command, DutyKind, DutyRecord, ExportRecord, Request, Response, SegmentRecord,
        TokenRecord, TypeConfig, User,
    };
    use custos_node::retention::{Hold, Policy};
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const CAMERAS: [&str; 4] = ["lobby", "ward-2", "theatre-1", "pharmacy"];
    const USERS: [&str; 4] = ["ann", "bob", "cem", "dee"];
    const T0: i64 = 1_790_000_000_000;

    fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
        from[rng.gen_range(0..from.len())]
    }

    /// One random command over a small world, so that commands collide, refer to what
    /// exists and what does not, and get refused as often as accepted.
    fn command(rng: &mut StdRng, i: u64, now: i64) -> Command {
        let cam = pick(rng, &CAMERAS).to_string();
        let user = pick(rng, &USERS).to_string();
        match rng.gen_range(0..20) {
            0 => Command::AddCamera(Camera {
                id: cam,
                name: String::new(),
                source: "rtsp://cam/x".into(),
                recorder: 1,
                added_ms: 0,
                sensitive: rng.gen_bool(0.5),
            }),
            1 => Command::RemoveCamera { id: cam },
            2 => Command::SetSensitive { camera: cam, sensitive: rng.gen_bool(0.5) },
            3..=6 => {
                let n = rng.gen_range(1..6);
                let start = now - rng.gen_range(0..90) * 86_400_000 - rng.gen_range(0..4) * 4_000;
                Command::CommitSegments(
                    (0..n)
                        .map(|k| SegmentRecord {
                            camera: cam.clone(),
                            start_ms: start + k * 4_000,
                            end_ms: start + (k + 1) * 4_000,
                            bytes: 1_000 + k as u64,
                            blob_bytes: 1_100,
                            content_hash: *blake3::hash(format!("{cam}{start}{k}").as_bytes()).as_bytes(),
                            blob_hash: [3; 32],
                            codec: Codec::H264,
                            replicas: vec![1],
                        })
                        .collect(),
                )
            }
            7 => Command::CreateUser {
                user: User {
                    name: user.clone(),
                    role: [Role::Security, Role::Approver, Role::Operator][rng.gen_range(0..3)],
                    case: None,
                    disabled: false,
                    grants: vec![],
                    created_ms: 0,
                },
                token_hash: *blake3::hash(format!("tok{i}").as_bytes()).as_bytes(),
                token: TokenRecord {
                    id: format!("t{i}"),
                    user,
                    created_ms: 0,
                    expires_ms: now + 1_000_000,
                    revoked: false,
                },
            },
            8 => Command::DisableUser { name: user },
            9 => Command::GrantCamera { user, camera: cam, grant: rng.gen_bool(0.7) },
            10 => Command::RevokeToken { id: format!("t{}", rng.gen_range(0..i.max(1))) },
            11 => Command::SetPolicy {
                camera: rng.gen_bool(0.5).then_some(cam),
                policy: Policy { min_days: rng.gen_range(25..40), max_days: rng.gen_range(20..100) },
            },
            12 => Command::PlaceHold(Hold {
                id: String::new(),
                case_id: format!("case-{}", rng.gen_range(0..3)),
                cameras: vec![cam],
                from_ms: now - rng.gen_range(0..60) * 86_400_000,
                to_ms: rng.gen_bool(0.5).then_some(now),
                reason: "incident under review".into(),
                placed_by: user,
                placed_ms: 0,
                release_approvals: vec![],
                released_ms: None,
            }),
            13 => Command::ApproveHoldRelease { id: format!("H-{:06}", rng.gen_range(1..4)), user },
            14 => {
                // Nominate old segments for expiry: apply decides which may go.
                let start = now - rng.gen_range(0..90) * 86_400_000;
                let segments = (0..3).map(|k| (cam.clone(), start + k * 4_000)).collect();
                Command::ExpireSegments { at_ms: now - rng.gen_range(0..3) * 86_400_000, segments }
            }
            15 => Command::RequestExport(ExportRecord::request(
                ("case-1".into(), "City Police".into(), "L-1".into()),
                "court order for case 1".into(),
                user,
                vec![(cam, now - 60_000, now)],
            )),
            16 => Command::DecideExport {
                id: format!("E-{:06}", rng.gen_range(1..4)),
                user,
                approve: rng.gen_bool(0.7),
                reason: "checked the letter".into(),
            },
            17 => Command::Alarms(vec![AlarmChange {
                raise: rng.gen_bool(0.6),
                kind: "camera-down".into(),
                subject: cam,
                detail: "no segment for 30 s".into(),
            }]),
            18 => Command::AckAlarm { id: rng.gen_range(1..5), user, note: "camera cleaned".into() },
            _ => Command::RecordDuty(DutyRecord {
                seq: 0,
                kind: DutyKind::Patrol,
                user,
                time_ms: 0,
                to: String::new(),
                notes: "round".into(),
                findings: vec![],
                problems: 0,
            }),
        }
    }

    fn entries(seed: u64, n: u64) -> Vec<Entry<TypeConfig>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (1..=n)
            .map(|i| {
                let now = T0 + i as i64 * 1_000;
                let command = command(&mut rng, i, now);
                let audit = rng.gen_bool(0.5).then(|| AuditEvent {
                    user: pick(&mut rng, &USERS).into(),
                    action: "test".into(),
                    outcome: "ok".into(),
                    ..Default::default()
                });
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
                    payload: EntryPayload::Normal(Request { time_ms: now, command, audit }),
                }
            })
            .collect()
    }

    /// One column family's name and its keys and values, in key order.
    type Family = (String, Vec<(Box<[u8]>, Box<[u8]>)>);

    /// Every state column family, key by key.
    fn dump(db: &rocksdb::DB) -> Vec<Family> {
        STATE_CFS
            .iter()
            .map(|name| {
                let cf = db.cf_handle(name).unwrap();
                let kv = db.iterator_cf(cf, rocksdb::IteratorMode::Start).map(|kv| kv.unwrap()).collect();
                (name.to_string(), kv)
            })
            .collect()
    }

    /// The same log, applied to two fresh stores in differently sized batches, gives the
    /// same answers and byte-identical column families: replicas cannot drift apart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_log_gives_byte_identical_catalogs() {
        let log = entries(20261202, 4_000);
        let mut out = Vec::new();
        for batch in [1usize, 37] {
            let dir = tempfile::tempdir().unwrap();
            let database = db::open(&dir.path().join("catalog")).unwrap();
            let mut sm = StateMachine::new(database.clone(), &dir.path().join("snapshots")).unwrap();
            let mut answers: Vec<Response> = Vec::new();
            for chunk in log.chunks(batch) {
                answers.extend(sm.apply(chunk.to_vec()).await.unwrap());
            }
            out.push((answers, dump(&database), dir));
        }
        let (a, b) = (&out[0], &out[1]);
        assert_eq!(a.0, b.0, "the same answers");
        let refused = a.0.iter().filter(|r| matches!(r, Response::Rejected(..))).count();
        assert!(refused > 400 && refused < 3_600, "the log mixes accepted and refused commands: {refused} refused");
        for ((name, ka), (_, kb)) in a.1.iter().zip(&b.1) {
            assert_eq!(ka.len(), kb.len(), "column family {name}: same number of keys");
            assert!(ka == kb, "column family {name} differs between the two stores");
        }
        let segments = a.1.iter().find(|(n, _)| n == "segments").unwrap().1.len();
        assert!(segments > 100, "segments were committed: {segments}");
    }
}

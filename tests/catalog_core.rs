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
    admin.add_user("bob", "auditor", None, 0).await.unwrap();
    node.stop();
    {
        // A disk that returns garbage for bob's record, as a failing drive would.
        let db = custos_node::meta::db::open(&node.data().join("catalog")).unwrap();
        let cf = db.cf_handle(custos_node::meta::db::CF_USERS).unwrap();
        db.put_cf(cf, b"bob", [custos_node::meta::types::FORMAT_V2, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap();
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
                    issued_by: "test".into(),
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

/// Each command, accepted and refused, against a fresh state machine: the answer and its
/// kind, and that a refusal writes nothing but the applied log id.
mod commands {
    use custos_node::access::Role;
    use custos_node::meta::db::{self, CF_SM, STATE_CFS};
    use custos_node::meta::state::StateMachine;
    use custos_node::meta::{
        Camera, ChangeRecord, ChangeState, Command, ExportRecord, NodeRecord, RejectKind, Request, Response,
        TokenRecord, TypeConfig, User,
    };
    use custos_node::retention::{Hold, Policy};
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

    const NOW: i64 = 1_790_000_000_000;

    struct Store {
        sm: StateMachine,
        db: std::sync::Arc<rocksdb::DB>,
        index: u64,
        _dir: tempfile::TempDir,
    }

    type Dump = Vec<Vec<(Box<[u8]>, Box<[u8]>)>>;

    impl Store {
        fn new() -> Store {
            let dir = tempfile::tempdir().unwrap();
            let db = db::open(&dir.path().join("catalog")).unwrap();
            let sm = StateMachine::new(db.clone(), &dir.path().join("snapshots")).unwrap();
            Store { sm, db, index: 0, _dir: dir }
        }

        async fn apply(&mut self, command: Command) -> Response {
            self.index += 1;
            let e: Entry<TypeConfig> = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
                payload: EntryPayload::Normal(Request { time_ms: NOW + self.index as i64, command, audit: None }),
            };
            self.sm.apply(vec![e]).await.unwrap().remove(0)
        }

        /// Every state family but the bookkeeping one (which holds the applied id).
        fn dump(&self) -> Dump {
            STATE_CFS
                .iter()
                .filter(|n| **n != CF_SM)
                .map(|n| {
                    let cf = self.db.cf_handle(n).unwrap();
                    self.db.iterator_cf(cf, rocksdb::IteratorMode::Start).map(|kv| kv.unwrap()).collect()
                })
                .collect()
        }

        async fn ok(&mut self, command: Command) -> Response {
            let what = format!("{command:?}");
            let r = self.apply(command).await;
            assert!(!matches!(r, Response::Rejected(..) | Response::StorageFailed(_)), "{what}: {r:?}");
            r
        }

        async fn refused(&mut self, command: Command, kind: RejectKind, words: &str) {
            let before = self.dump();
            let what = format!("{command:?}");
            match self.apply(command).await {
                Response::Rejected(k, why) => {
                    assert_eq!(k, kind, "{what}: {why}");
                    assert!(why.contains(words), "{what}: {why:?} should say {words:?}");
                }
                other => panic!("{what} was not refused: {other:?}"),
            }
            assert!(self.dump() == before, "{what}: a refusal wrote to the catalog");
        }
    }

    fn camera(id: &str, sensitive: bool) -> Camera {
        Camera {
            id: id.into(),
            name: String::new(),
            source: "rtsp://cam/x".into(),
            recorder: 1,
            added_ms: 0,
            sensitive,
        }
    }

    fn user(name: &str, role: Role) -> Command {
        Command::CreateUser {
            user: User { name: name.into(), role, case: None, disabled: false, grants: vec![], created_ms: 0 },
            token_hash: *blake3::hash(name.as_bytes()).as_bytes(),
            token: TokenRecord {
                id: format!("t-{name}"),
                user: name.into(),
                created_ms: 0,
                expires_ms: NOW * 2,
                revoked: false,
                issued_by: "test".into(),
            },
        }
    }

    fn hold(case: &str, by: &str) -> Hold {
        Hold {
            id: String::new(),
            case_id: case.into(),
            cameras: vec!["lobby".into()],
            from_ms: NOW - 1_000,
            to_ms: None,
            reason: "incident under review".into(),
            placed_by: by.into(),
            placed_ms: 0,
            release_approvals: vec![],
            released_ms: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_command_accepted_and_refused_with_its_kind() {
        use RejectKind::*;
        let mut s = Store::new();
        // Nodes: a founder, and a member to retire later.
        s.ok(Command::RegisterNode {
            campus: "east".into(),
            addr: "10.0.0.1:7400".into(),
            token_hash: None,
            founder: Some(1),
        })
        .await;
        s.refused(
            Command::RegisterNode {
                campus: "x".into(),
                addr: "10.0.0.9:7400".into(),
                token_hash: None,
                founder: Some(9),
            },
            FailedPrecondition,
            "founding node",
        )
        .await;
        s.refused(
            Command::RegisterNode { campus: "x".into(), addr: "10.0.0.1:7400".into(), token_hash: None, founder: None },
            FailedPrecondition,
            "already uses address",
        )
        .await;
        s.refused(Command::RetireNode { id: 1 }, FailedPrecondition, "last active node").await;
        s.refused(Command::RetireNode { id: 7 }, NotFound, "does not exist").await;
        s.refused(Command::PinNodeKey { id: 7, key_hash: [1; 32] }, NotFound, "does not exist").await;
        s.ok(Command::PinNodeKey { id: 1, key_hash: [1; 32] }).await;
        s.ok(Command::PinNodeKey { id: 1, key_hash: [1; 32] }).await;
        s.refused(Command::PinNodeKey { id: 1, key_hash: [2; 32] }, FailedPrecondition, "already pinned").await;

        // Cameras.
        s.ok(Command::AddCamera(camera("lobby", false))).await;
        s.refused(Command::AddCamera(camera("lobby", true)), AlreadyExists, "already exists").await;
        s.ok(Command::SeedCamera(camera("gate", false))).await;
        s.refused(Command::SeedCamera(camera("gate", false)), FailedPrecondition, "registered once").await;
        s.ok(Command::SeedCamera(camera("lobby", false))).await; // existed before: marked only
        s.refused(Command::RemoveCamera { id: "nope".into() }, NotFound, "does not exist").await;
        s.ok(Command::RemoveCamera { id: "gate".into() }).await;
        s.refused(Command::SetSensitive { camera: "gate".into(), sensitive: true }, NotFound, "does not exist").await;
        s.ok(Command::SetSensitive { camera: "lobby".into(), sensitive: true }).await;
        s.refused(
            Command::AssignCamera { camera: "lobby".into(), recorder: 7 },
            FailedPrecondition,
            "not an active member",
        )
        .await;
        s.refused(Command::AssignCamera { camera: "nope".into(), recorder: 1 }, NotFound, "does not exist").await;

        // Users and tokens.
        s.ok(user("ann", Role::Security)).await;
        s.ok(user("bob", Role::Approver)).await;
        s.refused(user("ann", Role::Operator), AlreadyExists, "already exists").await;
        s.refused(Command::DisableUser { name: "zed".into() }, NotFound, "does not exist").await;
        s.refused(
            Command::GrantCamera { user: "ann".into(), camera: "nope".into(), grant: true },
            NotFound,
            "does not exist",
        )
        .await;
        s.refused(
            Command::GrantCamera { user: "zed".into(), camera: "lobby".into(), grant: true },
            NotFound,
            "does not exist",
        )
        .await;
        s.ok(Command::GrantCamera { user: "ann".into(), camera: "lobby".into(), grant: true }).await;
        s.refused(Command::RevokeToken { id: "t-zed".into() }, NotFound, "no token").await;
        s.ok(Command::RevokeToken { id: "t-ann".into() }).await;
        let token = |user: &str| Command::IssueToken {
            token_hash: [9; 32],
            token: TokenRecord {
                id: "t-new".into(),
                user: user.into(),
                created_ms: 0,
                expires_ms: NOW * 2,
                revoked: false,
                issued_by: "test".into(),
            },
        };
        s.refused(token("zed"), NotFound, "does not exist").await;
        s.ok(user("cem", Role::Operator)).await;
        s.ok(Command::DisableUser { name: "cem".into() }).await;
        s.refused(token("cem"), FailedPrecondition, "disabled").await;

        // Retention: the floor, and holds released by two different people.
        let low = Policy { min_days: 29, max_days: 40 };
        s.refused(Command::SetPolicy { camera: None, policy: low }, FailedPrecondition, "floor of 30").await;
        let ok = Policy { min_days: 30, max_days: 90 };
        s.refused(Command::SetPolicy { camera: Some("nope".into()), policy: ok }, NotFound, "does not exist").await;
        s.ok(Command::SetPolicy { camera: Some("lobby".into()), policy: ok }).await;
        assert_eq!(s.ok(Command::PlaceHold(hold("case-1", "ann"))).await, Response::Created("H-000001".into()));
        s.refused(
            Command::ApproveHoldRelease { id: "H-000009".into(), user: "ann".into() },
            NotFound,
            "does not exist",
        )
        .await;
        s.ok(Command::ApproveHoldRelease { id: "H-000001".into(), user: "ann".into() }).await;
        s.refused(Command::ApproveHoldRelease { id: "H-000001".into(), user: "ann".into() }, FailedPrecondition, "")
            .await;
        s.ok(Command::ApproveHoldRelease { id: "H-000001".into(), user: "bob".into() }).await;

        // Exports: the requester never decides; a decision is final.
        let req = ExportRecord::request(
            ("case-1".into(), "City Police".into(), "L-1".into()),
            "court order for case 1".into(),
            "ann".into(),
            vec![("lobby".into(), NOW - 60_000, NOW)],
        );
        assert_eq!(s.ok(Command::RequestExport(req)).await, Response::Created("E-000001".into()));
        let decide = |user: &str| Command::DecideExport {
            id: "E-000001".into(),
            user: user.into(),
            approve: true,
            reason: "letter checked".into(),
        };
        s.refused(decide("ann"), PermissionDenied, "cannot also decide").await;
        s.refused(
            Command::DecideExport { id: "E-000009".into(), user: "bob".into(), approve: true, reason: String::new() },
            NotFound,
            "does not exist",
        )
        .await;
        s.ok(decide("bob")).await;
        s.refused(decide("bob"), FailedPrecondition, "already approved").await;

        // Alarms: an acknowledgement needs a note and an alarm.
        s.refused(Command::AckAlarm { id: 1, user: "ann".into(), note: " ".into() }, FailedPrecondition, "note").await;
        s.refused(Command::AckAlarm { id: 9, user: "ann".into(), note: "seen".into() }, NotFound, "does not exist")
            .await;

        // The change queue: a change that could not take effect is refused when asked; only
        // an active approver other than the requester decides, once; a lapsed change never
        // applies; the founding is refused once there are users.
        let change = |effect: Command| {
            Command::RequestChange(Box::new(ChangeRecord {
                id: 0,
                requested_by: "ann".into(),
                requested_ms: 0,
                action: "test".into(),
                detail: String::new(),
                why: String::new(),
                effect,
                effect_audit: Default::default(),
                state: ChangeState::Pending,
                decided_by: None,
                decided_ms: None,
                note: String::new(),
            }))
        };
        let decide = |id: u64, user: &str, approve: bool| Command::DecideChange {
            id,
            user: user.into(),
            approve,
            note: "because".into(),
            token: None,
        };
        // A catalog starts at format 1: the change queue (format 2) waits for the version.
        s.refused(
            change(Command::RemoveCamera { id: "nope".into() }),
            FailedPrecondition,
            "the cluster runs format 1 until every node is upgraded",
        )
        .await;
        s.ok(Command::SetClusterVersion(2)).await;
        s.ok(Command::SetClusterVersion(2)).await;
        s.refused(Command::SetClusterVersion(1), FailedPrecondition, "never goes down").await;
        s.refused(change(Command::RemoveCamera { id: "nope".into() }), NotFound, "does not exist").await;
        s.refused(change(decide(1, "bob", true)), InvalidArgument, "cannot queue or decide").await;
        assert_eq!(
            s.ok(change(Command::SetSensitive { camera: "lobby".into(), sensitive: false })).await,
            Response::Created("1".into())
        );
        s.refused(decide(1, "ann", true), PermissionDenied, "cannot also decide").await;
        s.refused(decide(1, "cem", true), PermissionDenied, "not an active approver").await;
        s.refused(decide(9, "bob", true), NotFound, "does not exist").await;
        s.ok(decide(1, "bob", true)).await;
        s.refused(decide(1, "bob", true), FailedPrecondition, "already approved").await;
        assert_eq!(s.ok(change(user("dan", Role::Security))).await, Response::Created("2".into()));
        s.refused(decide(2, "bob", true), InvalidArgument, "no token").await;
        s.ok(decide(2, "bob", false)).await;
        s.refused(decide(2, "bob", true), FailedPrecondition, "already rejected").await;
        s.refused(Command::FoundCluster(vec![]), FailedPrecondition, "founded already").await;

        // Seals: only the next in the chain, naming an audit entry as it is stored, signed
        // by the key of the first seal.
        use custos_evidence::export::SigningKey;
        use custos_evidence::seal::{SealFile, SealStatement};
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().unwrap()).unwrap();
        let (audit_seq, audit_hash) = s.sm.catalog().audit_head().unwrap();
        let first = SealStatement {
            format: "custos-seal-v1".into(),
            seq: 1,
            prev_seal: "0".repeat(64),
            audit_seq,
            audit_hash: hex::encode(audit_hash),
            signing_key: key.public_hex(),
            ..Default::default()
        };
        let second = SealStatement { seq: 2, ..first.clone() };
        s.refused(Command::StoreSeal(SealFile::sign(&second, &key)), FailedPrecondition, "does not follow").await;
        let wrong_head = SealStatement { audit_hash: "ab".repeat(32), ..first.clone() };
        s.refused(Command::StoreSeal(SealFile::sign(&wrong_head, &key)), FailedPrecondition, "audit entry").await;
        let mut altered = SealFile::sign(&first, &key);
        altered.statement = altered.statement.replace("\"day\":\"\"", "\"day\":\"x\"");
        s.refused(Command::StoreSeal(altered), InvalidArgument, "hash").await;
        let stored = SealFile::sign(&first, &key);
        assert_eq!(s.ok(Command::StoreSeal(stored.clone())).await, Response::Created("1".into()));
        let by_other =
            SealStatement { seq: 2, prev_seal: stored.hash.clone(), signing_key: other.public_hex(), ..first.clone() };
        s.refused(Command::StoreSeal(SealFile::sign(&by_other, &other)), FailedPrecondition, "another key").await;
        s.ok(Command::StoreSeal(SealFile::sign(&SealStatement { seq: 2, prev_seal: stored.hash, ..first }, &key)))
            .await;

        // Reference stills: the first is stored; a recorder cannot replace it; only a
        // confirmation (an accepted change) drops it.
        let still = |b: u8| custos_node::meta::types::PictureStill {
            thumb: vec![b; 32 * 18],
            laplacian_var_milli: 1_000,
            taken_ms: NOW,
        };
        let set = |camera: &str, still| Command::SetPictureReference { camera: camera.into(), still };
        s.refused(set("nope", Some(still(1))), NotFound, "does not exist").await;
        let huge = custos_node::meta::types::PictureStill { thumb: vec![0; 5_000], ..still(1) };
        s.refused(set("lobby", Some(huge)), InvalidArgument, "bytes").await;
        s.ok(set("lobby", Some(still(1)))).await;
        s.refused(set("lobby", Some(still(2))), FailedPrecondition, "custos camera confirm").await;
        s.ok(set("lobby", None)).await;
        s.ok(set("lobby", Some(still(2)))).await;
        // A removed camera's still goes with it; the id re-added starts without one.
        s.ok(Command::AddCamera(camera("porch", false))).await;
        s.ok(set("porch", Some(still(3)))).await;
        s.ok(Command::RemoveCamera { id: "porch".into() }).await;
        assert_eq!(s.sm.catalog().picture_reference("porch").unwrap(), None);
        s.ok(Command::AddCamera(camera("porch", false))).await;
        s.ok(set("porch", Some(still(4)))).await;

        // Nothing refused above left a node behind.
        let nodes: Vec<NodeRecord> = s.sm.catalog().nodes().unwrap();
        assert_eq!(nodes.iter().map(|n| n.id).collect::<Vec<_>>(), [1]);
    }

    fn recorded(camera: &str, from: i64, to: i64, by: u64) -> custos_node::meta::SegmentRecord {
        use custos_node::meta::{Codec, SegmentRecord};
        SegmentRecord {
            camera: camera.into(),
            start_ms: NOW + from,
            end_ms: NOW + to,
            bytes: 1_000,
            blob_bytes: 1_100,
            content_hash: *blake3::hash(format!("{camera}{from}{by}").as_bytes()).as_bytes(),
            blob_hash: [3; 32],
            codec: Codec::H264,
            replicas: vec![by],
        }
    }

    /// Hot standby (issue 23): who may stand by, when a takeover applies, where its seam
    /// lies, and which late segments of a node that no longer records the camera are
    /// superseded instead of catalogued, so no two segments cover one instant.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn takeovers_apply_once_and_a_former_recorder_cannot_overlap_the_new_one() {
        use RejectKind::*;
        let mut s = Store::new();
        let standby = |node: Option<u64>| Command::AssignStandby { camera: "lobby".into(), node };
        let take = |from: u64, to: u64| Command::TakeOver { camera: "lobby".into(), from, to };
        let commit = Command::CommitSegments;
        s.refused(standby(Some(2)), FailedPrecondition, "needs format 4").await;
        s.ok(Command::SetClusterVersion(4)).await;
        for (i, campus) in ["east", "west", "north"].iter().enumerate() {
            let founder = (i == 0).then_some(1);
            let token_hash = (i > 0).then_some([i as u8; 32]);
            if let Some(h) = token_hash {
                let token = custos_node::meta::types::JoinTokenRecord {
                    created_by: "admin".into(),
                    created_ms: 0,
                    expires_ms: NOW + 3_600_000,
                    used_by: None,
                };
                s.ok(Command::CreateJoinToken { token_hash: h, token }).await;
            }
            let addr = format!("10.0.0.{}:7400", i + 1);
            s.ok(Command::RegisterNode { campus: campus.to_string(), addr, token_hash, founder }).await;
        }
        s.ok(Command::AddCamera(camera("lobby", false))).await; // recorded by node 1
        s.refused(standby(Some(1)), InvalidArgument, "its standby must be another node").await;
        s.refused(standby(Some(9)), FailedPrecondition, "not an active member").await;
        s.ok(Command::SetStandby { camera: "lobby".into(), wanted: true }).await;
        s.ok(standby(Some(2))).await;
        let r = s.ok(commit(vec![recorded("lobby", 0, 1_000, 1), recorded("lobby", 1_000, 2_000, 1)])).await;
        assert_eq!(r, Response::Committed { new: 2, duplicate: 0, superseded: 0 });

        // Only the camera's standby takes over, and only from its recorder.
        s.refused(take(3, 2), FailedPrecondition, "another takeover or reassignment came first").await;
        s.refused(take(1, 3), FailedPrecondition, "another takeover or reassignment came first").await;
        assert_eq!(s.ok(take(1, 2)).await, Response::TookOver { seam_ms: Some(NOW + 2_000) });
        s.refused(take(1, 2), FailedPrecondition, "recorded by node 2").await;

        // The replaced recorder's late footage after the seam is superseded; the new
        // recorder's is catalogued, and so is the replaced one's before the seam (a gap
        // it fills) and any other node's.
        let late = s.ok(commit(vec![recorded("lobby", 2_000, 3_000, 1)])).await;
        assert_eq!(late, Response::Committed { new: 0, duplicate: 0, superseded: 1 });
        let new = s.ok(commit(vec![recorded("lobby", 2_000, 3_000, 2)])).await;
        assert_eq!(new, Response::Committed { new: 1, duplicate: 0, superseded: 0 });
        let early = s.ok(commit(vec![recorded("lobby", -1_000, 0, 1), recorded("lobby", 3_000, 3_500, 3)])).await;
        assert_eq!(early, Response::Committed { new: 2, duplicate: 0, superseded: 0 });
        // The recorder's own footage is catalogued as ever (a clock stepped back).
        let own = s.ok(commit(vec![recorded("lobby", 2_500, 3_500, 2)])).await;
        assert_eq!(own, Response::Committed { new: 1, duplicate: 0, superseded: 0 });

        // A standby made recorder by the leader sets the seam as a takeover does.
        s.ok(standby(Some(3))).await;
        s.ok(Command::AssignCamera { camera: "lobby".into(), recorder: 3 }).await;
        let late = s.ok(commit(vec![recorded("lobby", 3_500, 4_000, 2)])).await;
        assert_eq!(late, Response::Committed { new: 0, duplicate: 0, superseded: 1 });
        let cat = s.sm.catalog();
        let sb = cat.standbys_of("lobby").unwrap().unwrap();
        assert_eq!(
            (sb.node, sb.seam_ms, sb.last_takeover.map(|t| (t.1, t.2))),
            (None, Some(NOW + 3_500), Some((2, 3)))
        );
        // A cold move (onto a node that was not standing by) lifts the seam: the former
        // recorder's late segments are then the only footage of their time.
        s.ok(Command::AssignCamera { camera: "lobby".into(), recorder: 1 }).await;
        let late = s.ok(commit(vec![recorded("lobby", 4_000, 4_500, 2)])).await;
        assert_eq!(late, Response::Committed { new: 1, duplicate: 0, superseded: 0 });
        // Unmarked, a camera keeps no standby; removed, its record goes.
        s.ok(standby(Some(2))).await;
        s.ok(Command::SetStandby { camera: "lobby".into(), wanted: false }).await;
        assert_eq!(cat.standbys_of("lobby").unwrap().unwrap().node, None);
        s.refused(Command::SetStandby { camera: "nope".into(), wanted: true }, NotFound, "does not exist").await;
    }

    /// Issue 18, item 1: the state machine refuses an expiry whose time runs ahead of the
    /// previous expiry's by more than the leader's clock moved between the two entries
    /// (stamps of the same term) plus `EXPIRY_TIME_AHEAD_MAX_MS`, with FailedPrecondition,
    /// writing nothing; the next leader's first expiry is bounded by its own stamp alone;
    /// a cluster still at format 1 does not check.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expiry_time_running_ahead_of_the_leaders_clock_is_refused() {
        use custos_node::meta::state::EXPIRY_TIME_AHEAD_MAX_MS as BOUND;
        const DAY: i64 = 86_400_000;
        const MIN: i64 = 60_000;
        let mut s = Store::new();
        s.ok(Command::SetClusterVersion(2)).await;
        // (term, leader's stamp, expiry time, accepted, why), both times from NOW.
        let table: &[(u64, i64, i64, bool, &str)] = &[
            (1, 0, -40 * DAY, true, "the first expiry: nothing to compare with"),
            (1, MIN, -40 * DAY + MIN, true, "in step with the leader's clock"),
            (1, 2 * MIN, -40 * DAY + 2 * MIN + BOUND, true, "up to the bound ahead of it"),
            (1, 3 * MIN, 3 * MIN, false, "40 days ahead in a minute: the agreed time jumped"),
            (1, 3 * MIN, -40 * DAY + 2 * MIN + BOUND + MIN + BOUND + 1, false, "just over the bound"),
            (1, 4 * MIN, -40 * DAY + 2 * MIN + BOUND + 2 * MIN, true, "refusals do not move the reference"),
            (1, 5 * MIN, -41 * DAY, true, "going back is never refused"),
            (2, 6 * MIN, 0, true, "a new leader's first expiry is bounded by its own stamp alone"),
            (2, 7 * MIN, 3 * DAY, true, "at the earlier of its time and its stamp"),
            (2, 8 * MIN, 8 * MIN, true, "in step"),
        ];
        for &(term, stamp, at, accepted, why) in table {
            let before = s.dump();
            s.index += 1;
            let e: Entry<TypeConfig> = Entry {
                log_id: LogId::new(CommittedLeaderId::new(term, 1), s.index),
                payload: EntryPayload::Normal(Request {
                    time_ms: NOW + stamp,
                    command: Command::ExpireSegments { at_ms: NOW + at, segments: vec![] },
                    audit: None,
                }),
            };
            let r = s.sm.apply(vec![e]).await.unwrap().remove(0);
            match (accepted, &r) {
                (true, Response::Committed { .. }) => {}
                (false, Response::Rejected(RejectKind::FailedPrecondition, reason)) => {
                    assert!(reason.contains("the agreed time jumped"), "{why}: {reason}");
                    assert!(s.dump() == before, "{why}: a refusal wrote to the catalog");
                }
                _ => panic!("{why}: {r:?}"),
            }
        }
        // At format 1 (a replica of the previous release would not check) nothing is refused.
        let mut old = Store::new();
        for (i, at) in [-40 * DAY, 0].into_iter().enumerate() {
            let r = old.ok(Command::ExpireSegments { at_ms: NOW + at + i as i64, segments: vec![] }).await;
            assert!(matches!(r, Response::Committed { .. }), "{r:?}");
        }
    }
}

//! Schema versions: a catalog the previous release wrote (format 1) opens with this one.
//! Its records read back upgraded, the Raft log entries it had not applied yet are applied
//! from their format-1 bytes, its audit chain still verifies and goes on with entries
//! sealed exactly as the previous release sealed them, and the change queue (format 2)
//! waits until the leader raises the cluster version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use custos_evidence::{entry_hash, verify_chain, AuditRecord, GENESIS};
use custos_node::access::Role;
use custos_node::clock::{SharedClock, SystemClock};
use custos_node::meta::db::{self, CF_AUDIT, CF_LOG, CF_NODES, CF_RAFT, CF_SM, CF_TOKENS, CF_USERS};
use custos_node::meta::network::NoPeers;
use custos_node::meta::schema::v1::{self, AuditEventV1, CommandV1, EntryV1, RequestV1, TokenRecordV1};
use custos_node::meta::{ChangeRecord, ChangeState, Command, Meta, NodeRecord, RejectKind, Response, User};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership, ServerState, StoredMembership, Vote};

const T0: i64 = 1_790_000_000_000;
const ADDR: &str = "127.0.0.1:1";

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn membership() -> Membership<u64, BasicNode> {
    Membership::new(vec![BTreeSet::from([1])], BTreeMap::from([(1, BasicNode { addr: ADDR.into() })]))
}

fn event(user: &str, action: &str, detail: &str) -> AuditEventV1 {
    AuditEventV1 {
        user: user.into(),
        role: "admin".into(),
        action: action.into(),
        outcome: "ok".into(),
        client: "10.0.0.5".into(),
        detail: detail.into(),
        ..Default::default()
    }
}

/// An audit body exactly as the previous release sealed it: no token fields.
fn body_v1(seq: u64, time_ms: i64, ev: &AuditEventV1, prev: &[u8; 32]) -> Vec<u8> {
    format!(
        r#"{{"seq":{seq},"time_ms":{time_ms},"user":"{}","role":"{}","action":"{}","outcome":"{}","reason":"","purpose":"","cameras":[],"from_ms":null,"to_ms":null,"client":"{}","detail":"{}","prev":"{}"}}"#,
        ev.user,
        ev.role,
        ev.action,
        ev.outcome,
        ev.client,
        ev.detail,
        hex::encode(prev)
    )
    .into_bytes()
}

fn user(name: &str, role: Role) -> User {
    User { name: name.into(), role, case: None, disabled: false, grants: vec![], created_ms: 0 }
}

fn token(id: &str, user: &str) -> TokenRecordV1 {
    TokenRecordV1 { id: id.into(), user: user.into(), created_ms: 0, expires_ms: T0 * 2, revoked: false }
}

fn normal(index: u64, command: CommandV1, audit: Option<AuditEventV1>) -> EntryV1 {
    EntryV1 {
        log_id: log_id(index),
        payload: EntryPayload::Normal(RequestV1 { time_ms: T0 + index as i64, command, audit }),
    }
}

/// The log the previous release wrote: the founding membership, the founder's node, two
/// users (audited), a second token for bob (audited) and a footage access (audited).
fn log_v1() -> Vec<EntryV1> {
    vec![
        // What `Raft::initialize` writes, then the first leader's blank entry.
        EntryV1 {
            log_id: LogId::new(CommittedLeaderId::new(0, 0), 0),
            payload: EntryPayload::Membership(membership()),
        },
        EntryV1 { log_id: log_id(1), payload: EntryPayload::Blank },
        normal(
            2,
            CommandV1::RegisterNode { campus: "east".into(), addr: ADDR.into(), token_hash: None, founder: Some(1) },
            None,
        ),
        normal(
            3,
            CommandV1::CreateUser { user: user("ann", Role::Admin), token_hash: [1; 32], token: token("t-ann", "ann") },
            Some(event("-", "init", "administrator ann")),
        ),
        normal(
            4,
            CommandV1::CreateUser {
                user: user("bob", Role::Security),
                token_hash: [2; 32],
                token: token("t-bob", "bob"),
            },
            Some(event("ann", "user-add", "role=security")),
        ),
        normal(
            5,
            CommandV1::IssueToken { token_hash: [3; 32], token: token("t-bob-2", "bob") },
            Some(event("ann", "token-issue", "token t-bob-2 for bob")),
        ),
        normal(6, CommandV1::Audit, Some(event("bob", "fetch", "lobby"))),
    ]
}

/// Writes the catalog the previous release left when it stopped: every entry in the log
/// and committed, the state machine applied up to entry 4 (users, first tokens, two audit
/// entries), everything in format 1.
fn write_catalog_v1(path: &std::path::Path) -> Vec<AuditRecord> {
    let db = db::open(path).unwrap();
    let cf = |name| db.cf_handle(name).unwrap();
    for e in log_v1() {
        db.put_cf(cf(CF_LOG), e.log_id.index.to_be_bytes(), v1::encode(&e)).unwrap();
    }
    db.put_cf(cf(CF_RAFT), b"vote", v1::encode(&Vote::new_committed(1, 1))).unwrap();
    db.put_cf(cf(CF_RAFT), b"committed", v1::encode(&Some(log_id(6)))).unwrap();

    let node = NodeRecord { id: 1, campus: "east".into(), addr: ADDR.into(), joined_ms: T0 + 2, retired: false };
    db.put_cf(cf(CF_NODES), 1u64.to_be_bytes(), v1::encode(&node)).unwrap();
    for (name, role, hash, id, at) in
        [("ann", Role::Admin, [1; 32], "t-ann", 3), ("bob", Role::Security, [2; 32], "t-bob", 4)]
    {
        let u = User { created_ms: T0 + at, ..user(name, role) };
        db.put_cf(cf(CF_USERS), name.as_bytes(), v1::encode(&u)).unwrap();
        let t = TokenRecordV1 { created_ms: T0 + at, ..token(id, name) };
        db.put_cf(cf(CF_TOKENS), hash, v1::encode(&t)).unwrap();
    }
    let mut chain = Vec::new();
    let mut prev = GENESIS;
    for (seq, index) in [(1u64, 3u64), (2, 4)] {
        let EntryPayload::Normal(req) = &log_v1()[index as usize].payload else { unreachable!() };
        let body = body_v1(seq, req.time_ms, req.audit.as_ref().unwrap(), &prev);
        let rec = AuditRecord { hash: entry_hash(&body), body };
        db.put_cf(cf(CF_AUDIT), seq.to_be_bytes(), v1::encode(&rec)).unwrap();
        prev = rec.hash;
        chain.push(rec);
    }
    // The state machine's bookkeeping (keys of `meta::state`).
    db.put_cf(cf(CF_SM), b"applied", v1::encode(&Some(log_id(4)))).unwrap();
    db.put_cf(
        cf(CF_SM),
        b"membership",
        v1::encode(&StoredMembership::new(Some(LogId::new(CommittedLeaderId::new(0, 0), 0)), membership())),
    )
    .unwrap();
    db.put_cf(cf(CF_SM), b"audit_head", v1::encode(&(2u64, prev))).unwrap();
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_written_in_format_1_opens_upgraded_and_its_audit_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let old_chain = write_catalog_v1(&dir.path().join("catalog"));

    let clock: SharedClock = Arc::new(SystemClock);
    let meta = Meta::open(1, dir.path(), clock, NoPeers, 0).await.unwrap();
    meta.wait(Some(Duration::from_secs(20))).state(ServerState::Leader, "the only voter leads again").await.unwrap();
    meta.wait(Some(Duration::from_secs(10))).applied_index_at_least(Some(6), "the old log applied").await.unwrap();

    // Users and tokens written in format 1, and the token issued by an entry only in the
    // log, read back with their issuer unknown.
    let users: Vec<String> = meta.catalog.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(users, ["ann", "bob"]);
    let mut tokens = meta.catalog.tokens().unwrap();
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<(&str, &str, &str)> =
        tokens.iter().map(|t| (t.id.as_str(), t.user.as_str(), t.issued_by.as_str())).collect();
    assert_eq!(ids, [("t-ann", "ann", ""), ("t-bob", "bob", ""), ("t-bob-2", "bob", "")]);
    assert_eq!(meta.catalog.token(&[3; 32]).unwrap().unwrap().1.name, "bob", "the new token authenticates");
    assert_eq!(meta.catalog.cluster_version().unwrap(), 1, "a format-1 catalog runs format 1");

    // The chain: the two entries format 1 sealed, then the two this node sealed from
    // format-1 log entries, byte for byte as the previous release would have.
    let records: Vec<AuditRecord> = meta.catalog.audit_after(0, 100).unwrap().into_iter().map(|(_, r)| r).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(records[..2], old_chain[..]);
    let (n, head) = verify_chain(records.iter().map(|r| (r.body.as_slice(), &r.hash))).unwrap();
    assert_eq!((n, head), meta.catalog.audit_head().unwrap());
    let mut prev = old_chain[1].hash;
    for (seq, index) in [(3u64, 5usize), (4, 6)] {
        let EntryPayload::Normal(req) = &log_v1()[index].payload else { unreachable!() };
        let expected = body_v1(seq, req.time_ms, req.audit.as_ref().unwrap(), &prev);
        assert_eq!(String::from_utf8_lossy(&records[seq as usize - 1].body), String::from_utf8_lossy(&expected));
        prev = records[seq as usize - 1].hash;
    }

    // The change queue is format 2's: refused (and the attempt audited) until the cluster
    // version is raised, then accepted.
    let change = || {
        Command::RequestChange(Box::new(ChangeRecord {
            id: 0,
            requested_by: "ann".into(),
            requested_ms: 0,
            action: "camera-sensitive".into(),
            detail: String::new(),
            why: String::new(),
            effect: Command::RevokeToken { id: "t-bob".into() },
            effect_audit: Default::default(),
            state: ChangeState::Pending,
            decided_by: None,
            decided_ms: None,
            note: String::new(),
        }))
    };
    let ev = custos_node::audit::AuditEvent {
        user: "ann".into(),
        action: "change-request".into(),
        outcome: "ok".into(),
        ..Default::default()
    };
    match meta.propose_audited(change(), ev.clone()).await.unwrap() {
        Response::Rejected(RejectKind::FailedPrecondition, why) => {
            assert!(why.starts_with("the cluster runs format 1 until every node is upgraded;"), "{why}")
        }
        other => panic!("not refused: {other:?}"),
    }
    let last = meta.catalog.audit_after(4, 10).unwrap();
    let refused: custos_evidence::AuditBody = serde_json::from_slice(&last.last().unwrap().1.body).unwrap();
    assert_eq!((refused.event.action.as_str(), refused.event.outcome.as_str()), ("change-request", "rejected"));
    assert!(meta.catalog.changes(true, T0).unwrap().is_empty(), "nothing queued");

    let current = u32::from(custos_node::meta::types::FORMAT_CURRENT);
    assert!(current >= 2);
    assert_eq!(meta.raise_cluster_version(|_| 0).await.unwrap(), Some(current), "the only voter decodes this binary's");
    assert_eq!(meta.catalog.cluster_version().unwrap(), current);
    assert_eq!(meta.raise_cluster_version(|_| 0).await.unwrap(), None, "raised once");
    assert_eq!(meta.propose_audited(change(), ev).await.unwrap(), Response::Created("1".into()));

    // A snapshot of the mixed catalog (format-1 and format-2 values) builds, and the log
    // it covers, format-1 entries included, is purged.
    meta.compact_now().await.unwrap();
    assert_eq!(meta.catalog.tokens().unwrap().len(), 3);
    meta.shutdown().await;
}

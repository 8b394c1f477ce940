//! Evidence primitives that the node writes and anyone can check without it.
//!
//! ## The audit log
//!
//! Every footage access, every denial and every administrative change,
//! as a hash chain.
//!
//! An entry's body is a JSON document ([`AuditBody`]) whose `prev` field holds the hash
//! of the entry before it; the entry's hash is `BLAKE3("custos-audit-v1\0" ‖ body bytes)`.
//! The body bytes are stored and served exactly as hashed, so anyone holding the log can
//! recompute the chain without trusting the node (`custos audit verify` does). Entries
//! are appended only by the Raft state machine, which assigns `seq` and `prev`
//! deterministically, so every node holds the same chain. Entries never expire.

pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod seal;
pub mod vocabulary;

pub use vocabulary::{AuditAction, Outcome};

use serde::{Deserialize, Serialize};

/// What [`stable_names!`] needs from this crate, so a crate using it needs no serde of
/// its own.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

/// A 32-byte BLAKE3 digest.
pub type Hash = [u8; 32];

/// Domain separator in every entry hash.
pub const AUDIT_DOMAIN: &[u8] = b"custos-audit-v1\0";
/// `prev` of the first entry.
pub const GENESIS: Hash = [0u8; 32];

/// What a caller did, as the server describes it before Raft assigns its place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// User name, or "-" when the caller could not be authenticated.
    pub user: String,
    pub role: String,
    /// `search`, `fetch`, `user-add`, …; stored as its name, like the string it once was.
    pub action: AuditAction,
    /// `allowed`, `denied`, `unauthenticated`, `ok`, `rejected`, …; stored as its name.
    pub outcome: Outcome,
    /// Why it was denied or rejected.
    pub reason: String,
    pub purpose: String,
    pub cameras: Vec<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Client address as the server saw it.
    pub client: String,
    /// What changed, for administrative actions (`role=security`, `source=rtsp://***@…`).
    pub detail: String,
    /// Id of the token the caller authenticated with (empty when none was accepted, and
    /// in entries written before it was recorded).
    #[serde(default)]
    pub token_id: String,
    /// Who issued that token: `init`, the user themselves, or `ADMIN, approved by APPROVER`.
    #[serde(default)]
    pub token_issued_by: String,
}

/// One entry as stored and hashed. Field order is fixed: it is the serialisation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBody {
    pub seq: u64,
    /// Leader time of the Raft command that appended it.
    pub time_ms: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hex BLAKE3 of the previous entry.
    pub prev: String,
}

/// A stored entry: the exact body bytes and their chain hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub body: Vec<u8>,
    pub hash: Hash,
}

/// The chain hash of a body.
pub fn entry_hash(body: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(AUDIT_DOMAIN);
    h.update(body);
    *h.finalize().as_bytes()
}

/// Builds the next entry after (`seq - 1`, `prev`).
///
/// An event without a token (none was accepted, or it comes from an entry written before
/// tokens were recorded) is sealed without the two token fields, exactly as entries were
/// sealed before they existed: a node that applies an old Raft entry after upgrading then
/// seals the bytes that nodes applying it before the upgrade sealed, and every replica
/// keeps the same chain. Readers take the missing fields as empty.
pub fn seal_entry(seq: u64, time_ms: i64, event: AuditEvent, prev: &Hash) -> AuditRecord {
    let prev = hex::encode(prev);
    let bytes = if event.token_id.is_empty() && event.token_issued_by.is_empty() {
        serde_json::to_vec(&BodyWithoutToken::new(seq, time_ms, &event, &prev))
    } else {
        serde_json::to_vec(&AuditBody { seq, time_ms, event, prev })
    }
    .expect("audit body serialises");
    AuditRecord { hash: entry_hash(&bytes), body: bytes }
}

/// [`AuditBody`] without the token fields, in the same order: the body of every entry
/// sealed before tokens were recorded, and of every entry without a token since.
#[derive(Serialize)]
struct BodyWithoutToken<'a> {
    seq: u64,
    time_ms: i64,
    user: &'a str,
    role: &'a str,
    action: &'a str,
    outcome: &'a str,
    reason: &'a str,
    purpose: &'a str,
    cameras: &'a [String],
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    client: &'a str,
    detail: &'a str,
    prev: &'a str,
}

impl<'a> BodyWithoutToken<'a> {
    fn new(seq: u64, time_ms: i64, e: &'a AuditEvent, prev: &'a str) -> Self {
        BodyWithoutToken {
            seq,
            time_ms,
            user: &e.user,
            role: &e.role,
            action: e.action.as_str(),
            outcome: e.outcome.as_str(),
            reason: &e.reason,
            purpose: &e.purpose,
            cameras: &e.cameras,
            from_ms: e.from_ms,
            to_ms: e.to_ms,
            client: &e.client,
            detail: &e.detail,
            prev,
        }
    }
}

/// Where and how a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Position in the walk (1-based), which is the expected `seq`.
    pub seq: u64,
    pub problem: String,
}

/// Walks entries in order and checks each one's seq, link and hash. Returns the number of
/// entries verified and the head hash, or the first break.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a Hash)>) -> Result<(u64, Hash), ChainBreak> {
    let mut prev = GENESIS;
    let mut n = 0u64;
    for (body, hash) in entries {
        n += 1;
        let parsed: AuditBody = serde_json::from_slice(body)
            .map_err(|e| ChainBreak { seq: n, problem: format!("entry body is not a valid audit record: {e}") })?;
        if parsed.seq != n {
            return Err(ChainBreak {
                seq: n,
                problem: format!(
                    "entry claims seq {} where {n} was expected (an entry was removed or inserted)",
                    parsed.seq
                ),
            });
        }
        if parsed.prev != hex::encode(prev) {
            return Err(ChainBreak {
                seq: n,
                problem: format!(
                    "link broken: prev is {} but entry {} hashes to {}",
                    parsed.prev,
                    n - 1,
                    hex::encode(prev)
                ),
            });
        }
        let h = entry_hash(body);
        if &h != hash {
            return Err(ChainBreak {
                seq: n,
                problem: format!(
                    "content altered: body hashes to {} but the chain recorded {}",
                    hex::encode(h),
                    hex::encode(hash)
                ),
            });
        }
        prev = h;
    }
    Ok((n, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let ev = AuditEvent {
                    user: format!("u{seq}"),
                    action: "fetch".into(),
                    outcome: "allowed".into(),
                    ..Default::default()
                };
                let r = seal_entry(seq, 1000 + seq as i64, ev, &prev);
                prev = r.hash;
                r
            })
            .collect()
    }

    fn walk(c: &[AuditRecord]) -> Result<(u64, Hash), ChainBreak> {
        verify_chain(c.iter().map(|r| (r.body.as_slice(), &r.hash)))
    }

    /// An entry sealed before tokens were recorded, as that release's `AuditBody` wrote it.
    #[derive(Serialize)]
    struct BodyBeforeTokens {
        seq: u64,
        time_ms: i64,
        user: String,
        role: String,
        action: String,
        outcome: String,
        reason: String,
        purpose: String,
        cameras: Vec<String>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        client: String,
        detail: String,
        prev: String,
    }

    #[test]
    fn an_event_without_a_token_seals_as_before_tokens_were_recorded() {
        let ev = AuditEvent {
            user: "ann".into(),
            role: "admin".into(),
            action: "user-add".into(),
            outcome: "ok".into(),
            cameras: vec!["lobby".into()],
            from_ms: Some(3),
            detail: "role=security".into(),
            ..Default::default()
        };
        let old = BodyBeforeTokens {
            seq: 4,
            time_ms: 1000,
            user: "ann".into(),
            role: "admin".into(),
            action: "user-add".into(),
            outcome: "ok".into(),
            reason: String::new(),
            purpose: String::new(),
            cameras: vec!["lobby".into()],
            from_ms: Some(3),
            to_ms: None,
            client: String::new(),
            detail: "role=security".into(),
            prev: hex::encode([7u8; 32]),
        };
        let r = seal_entry(4, 1000, ev.clone(), &[7; 32]);
        assert_eq!(String::from_utf8(r.body.clone()).unwrap(), serde_json::to_string(&old).unwrap());
        let back: AuditBody = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(back.event, ev, "the token fields read back empty");

        let with = AuditEvent { token_id: "a1b2".into(), token_issued_by: "init".into(), ..ev };
        let r = seal_entry(4, 1000, with.clone(), &[7; 32]);
        assert_eq!(serde_json::from_slice::<AuditBody>(&r.body).unwrap().event, with);
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(walk(&c).unwrap(), (5, c[4].hash));
    }

    #[test]
    fn each_kind_of_tampering_is_found_where_it_happened() {
        let mut c = chain(5);
        let s = String::from_utf8(c[2].body.clone()).unwrap().replace("u3", "u9");
        c[2].body = s.into_bytes();
        let b = walk(&c).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("altered"), "{}", b.problem);

        // Re-hashing the altered entry moves the break to the next link.
        c[2].hash = entry_hash(&c[2].body);
        let b = walk(&c).unwrap_err();
        assert_eq!(b.seq, 4);
        assert!(b.problem.contains("link"), "{}", b.problem);

        let mut c = chain(5);
        c.remove(1);
        let b = walk(&c).unwrap_err();
        assert_eq!((b.seq, b.problem.contains("removed")), (2, true));
    }
}

//! Console sessions, kept in this node's memory.
//!
//! Signing in issues the user a token through Raft, like any other (`issued_by` says
//! `console sign-in from ADDR`), with the sign-in's audit entry in the same entry. The
//! session holds that token and hands it to the node's own services on every request, so
//! the console passes the same authentication, authorisation table and audit code as the
//! CLI: a disabled user or a revoked token ends the session on the next request, on every
//! node. The browser holds only a random session id (an `HttpOnly; Secure;
//! SameSite=Strict` cookie) and a CSRF token that every state-changing and media request
//! must echo in a header. A session ends after `idle` without the user doing anything; a
//! restart of the node ends all of its sessions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::access::Role;
use crate::segment::Hash;

/// Name of the session cookie.
pub const COOKIE: &str = "custos_session";
/// Most sessions one node keeps; past it the longest idle is dropped.
pub const SESSIONS_MAX: usize = 10_000;
/// Most review windows one session keeps open.
pub const REVIEWS_MAX: usize = 64;
/// A session's token lives at most this long, however active the session.
pub const SESSION_TOKEN_TTL_MS: i64 = 12 * 3600 * 1000;

/// What one review may play: the cameras and ranges whose viewing was audited, with the
/// purpose given.
#[derive(Debug, Clone)]
pub struct Review {
    pub id: u64,
    pub purpose: String,
    /// (camera, from_ms, to_ms).
    pub ranges: Vec<(String, i64, i64)>,
    /// The export whose approval this review serves, if any.
    pub export: Option<String>,
}

impl Review {
    /// The range of `camera` this review covers that holds `at_ms`, if any.
    pub fn covers(&self, camera: &str, at_ms: i64) -> Option<(i64, i64)> {
        self.ranges.iter().find(|(c, f, t)| c == camera && *f <= at_ms && at_ms < *t).map(|(_, f, t)| (*f, *t))
    }

    /// The first range of `camera`.
    pub fn range_of(&self, camera: &str) -> Option<(i64, i64)> {
        self.ranges.iter().find(|(c, _, _)| c == camera).map(|(_, f, t)| (*f, *t))
    }
}

/// One signed-in user on this node.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The session's bearer token (never sent to the browser).
    pub token: String,
    pub token_id: String,
    pub csrf: String,
    pub client: SocketAddr,
    pub last_active: Instant,
    pub reviews: Vec<Review>,
}

/// Why a request's session is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSession {
    Missing,
    /// It ended just now for want of activity; its token should be revoked.
    Expired {
        token_id: String,
        user: String,
    },
    /// It ended a while ago, for this reason.
    Ended(String),
}

/// How long the reason a session ended is remembered, to tell its browser.
const ENDED_KEPT: Duration = Duration::from_secs(3600);

/// The sessions of this node, by the BLAKE3 of their cookie value.
pub struct Sessions {
    idle: Duration,
    map: Mutex<HashMap<Hash, Session>>,
    ended: Mutex<HashMap<Hash, (String, Instant)>>,
    next_review: std::sync::atomic::AtomicU64,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            map: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            next_review: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Starts a session; returns the cookie value. Drops the longest-idle session when
    /// full.
    pub fn start(&self, mut s: Session) -> String {
        let id = random_hex(32);
        s.last_active = Instant::now();
        let mut map = self.map.lock().expect("sessions");
        map.retain(|_, v| v.last_active.elapsed() < self.idle);
        if map.len() >= SESSIONS_MAX {
            if let Some(k) = map.iter().min_by_key(|(_, v)| v.last_active).map(|(k, _)| *k) {
                map.remove(&k);
            }
        }
        map.insert(*blake3::hash(id.as_bytes()).as_bytes(), s);
        id
    }

    /// A new CSRF token.
    pub fn new_csrf() -> String {
        random_hex(24)
    }

    /// The session of cookie value `id`. `touch` counts the request as the user's
    /// activity (background refreshes do not). An idle session is removed and reported.
    pub fn get(&self, id: &str, touch: bool) -> Result<Session, NoSession> {
        let key = *blake3::hash(id.as_bytes()).as_bytes();
        let mut map = self.map.lock().expect("sessions");
        let Some(s) = map.get_mut(&key) else {
            return Err(match self.ended.lock().expect("sessions").get(&key) {
                Some((why, _)) => NoSession::Ended(why.clone()),
                None => NoSession::Missing,
            });
        };
        if s.last_active.elapsed() >= self.idle {
            let gone = map.remove(&key).expect("present");
            self.note_ended(key, self.idle_reason());
            return Err(NoSession::Expired { token_id: gone.token_id, user: gone.user });
        }
        if touch {
            s.last_active = Instant::now();
        }
        Ok(s.clone())
    }

    /// What a browser is told when its session ended for want of activity.
    pub fn idle_reason(&self) -> String {
        let s = self.idle.as_secs();
        let took = if s >= 120 { format!("{} minutes", s.div_ceil(60)) } else { format!("{s} seconds") };
        format!("your session ended after {took} without activity; sign in again")
    }

    /// Remembers why the session under `key` ended, for a while.
    fn note_ended(&self, key: Hash, why: String) {
        let mut ended = self.ended.lock().expect("sessions");
        ended.retain(|_, (_, t)| t.elapsed() < ENDED_KEPT);
        if ended.len() < SESSIONS_MAX {
            ended.insert(key, (why, Instant::now()));
        }
    }

    /// Ends the session of cookie value `id` because `why`, returning it.
    pub fn end_because(&self, id: &str, why: &str) -> Option<Session> {
        let key = *blake3::hash(id.as_bytes()).as_bytes();
        self.note_ended(key, why.to_string());
        self.map.lock().expect("sessions").remove(&key)
    }

    /// Ends the session of cookie value `id`, returning it.
    pub fn end(&self, id: &str) -> Option<Session> {
        self.map.lock().expect("sessions").remove(blake3::hash(id.as_bytes()).as_bytes())
    }

    /// Adds a review to the session of cookie value `id`; returns its id.
    pub fn add_review(&self, id: &str, mut review: Review) -> Option<u64> {
        let key = *blake3::hash(id.as_bytes()).as_bytes();
        let mut map = self.map.lock().expect("sessions");
        let s = map.get_mut(&key)?;
        review.id = self.next_review.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if s.reviews.len() >= REVIEWS_MAX {
            s.reviews.remove(0);
        }
        let rid = review.id;
        s.reviews.push(review);
        Some(rid)
    }

    /// Sessions that went idle: removed, their (token id, user) returned for revoking.
    pub fn sweep(&self) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        let mut keys = Vec::new();
        self.map.lock().expect("sessions").retain(|k, s| {
            let keep = s.last_active.elapsed() < self.idle;
            if !keep {
                gone.push((s.token_id.clone(), s.user.clone()));
                keys.push(*k);
            }
            keep
        });
        for k in keys {
            self.note_ended(k, self.idle_reason());
        }
        gone
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            user: "u".into(),
            role: Role::Security,
            token: "t".into(),
            token_id: "tid".into(),
            csrf: "c".into(),
            client: "127.0.0.1:1".parse().unwrap(),
            last_active: Instant::now(),
            reviews: vec![],
        }
    }

    #[test]
    fn idle_sessions_end_and_active_ones_stay() {
        let s = Sessions::new(Duration::from_millis(200));
        let id = s.start(session());
        assert!(s.get(&id, true).is_ok());
        std::thread::sleep(Duration::from_millis(120));
        assert!(s.get(&id, true).is_ok(), "activity keeps it");
        std::thread::sleep(Duration::from_millis(120));
        assert!(s.get(&id, false).is_ok(), "the last activity was 120 ms ago");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(s.get(&id, true).unwrap_err(), NoSession::Expired { token_id: "tid".into(), user: "u".into() });
        assert!(matches!(s.get(&id, true).unwrap_err(), NoSession::Ended(why) if why.contains("without activity")));
        assert_eq!(s.get("nonsense", true).unwrap_err(), NoSession::Missing);
    }

    #[test]
    fn reviews_cover_only_their_ranges() {
        let r = Review { id: 1, purpose: "p".into(), ranges: vec![("a".into(), 100, 200)], export: None };
        assert_eq!(r.covers("a", 100), Some((100, 200)));
        assert_eq!(r.covers("a", 200), None);
        assert_eq!(r.covers("b", 150), None);
    }

    #[test]
    fn cookies_and_secrets() {
        assert_eq!(cookie_value("a=1; custos_session=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie_value("a=1", COOKIE), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}

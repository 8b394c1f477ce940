//! The Raft log in RocksDB (column families `raft_log` and `raft_meta`).
//!
//! Appends are written to RocksDB at once (so they are readable when `append` returns, as
//! openraft requires) without waiting for the disk; a flusher thread then syncs the
//! write-ahead log and reports the entries persisted. Appends that queue up while one
//! sync runs share the next sync (group commit), and the leader can send entries to its
//! followers while its own copy is still being synced. Every other write (vote,
//! truncation, purge) is synced before it returns. RocksDB work runs on the blocking pool.

// openraft's trait methods return its StorageError (over 200 bytes); the blocking helpers
// return the same type so `?` flows through unchanged.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};

use super::db::{cf, CF_LOG, CF_RAFT};
use super::types::{decode, encode, NodeId, TypeConfig};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// The Raft log store. Cheap to clone: readers share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    flusher: Arc<Flusher>,
}

/// The sync thread's handle. When the last `LogStore` clone goes, dropping this closes the
/// queue and waits for the thread, so the thread's database handle is released before the
/// owner's. RocksDB must not be closed on a detached thread while the process exits: its
/// static mutexes may already be gone, and it aborts with "pthread lock: Invalid argument".
struct Flusher {
    queue: Option<std::sync::mpsc::Sender<LogFlushed<TypeConfig>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

/// Syncs the WAL for every batch of queued appends and reports them persisted, in order.
/// Ends when every `LogStore` handle is gone.
fn run_flusher(db: Arc<DB>, rx: std::sync::mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let res = db.flush_wal(true);
        for cb in waiting {
            cb.log_io_completed(res.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string())));
        }
    }
}

/// Log appends up to this size are written on the calling task.
const INLINE_APPEND_BYTES: usize = 64 << 10;

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking storage task panicked")
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

impl LogStore {
    /// A log store over an opened database.
    pub fn new(db: Arc<DB>) -> Self {
        let (queue, rx) = std::sync::mpsc::channel();
        let db2 = db.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || run_flusher(db2, rx))
            .expect("spawning the Raft log sync thread");
        LogStore { db, flusher: Arc::new(Flusher { queue: Some(queue), thread: Some(thread) }) }
    }

    fn get_meta<T: super::schema::Record>(db: &DB, key: &[u8]) -> Result<Option<T>, String> {
        match db.get_cf(cf(db, CF_RAFT), key).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(b) => decode(&b).map(Some),
        }
    }

    fn read_range(db: &DB, start: u64, end: Option<u64>) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let mut out = Vec::new();
        let it = db.iterator_cf(cf(db, CF_LOG), IteratorMode::From(&index_key(start), rocksdb::Direction::Forward));
        for kv in it {
            let (k, v) = kv.map_err(|e| StorageIOError::read_logs(&e))?;
            let idx = u64::from_be_bytes(k[..8].try_into().expect("8-byte log key"));
            if end.is_some_and(|e| idx >= e) {
                break;
            }
            let entry: Entry<TypeConfig> =
                decode(&v).map_err(|e| StorageIOError::read_log_at_index(idx, AnyError::error(e)))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Some(e + 1),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        let db = self.db.clone();
        blocking(move || Self::read_range(&db, start, end)).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let db = self.db.clone();
        blocking(move || {
            let last_purged: Option<LogId<NodeId>> =
                Self::get_meta(&db, KEY_LAST_PURGED).map_err(|e| StorageIOError::read_logs(AnyError::error(e)))?;
            let last = match db.iterator_cf(cf(&db, CF_LOG), IteratorMode::End).next() {
                None => None,
                Some(kv) => {
                    let (_, v) = kv.map_err(|e| StorageIOError::read_logs(&e))?;
                    let e: Entry<TypeConfig> = decode(&v).map_err(|e| StorageIOError::read_logs(AnyError::error(e)))?;
                    Some(e.log_id)
                }
            };
            Ok(LogState { last_purged_log_id: last_purged, last_log_id: last.or(last_purged) })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        let v = encode(vote);
        blocking(move || db.put_cf_opt(cf(&db, CF_RAFT), KEY_VOTE, v, &synced()))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        let db = self.db.clone();
        blocking(move || Self::get_meta(&db, KEY_VOTE))
            .await
            .map_err(|e| StorageIOError::read_vote(AnyError::error(e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        let db = self.db.clone();
        let v = encode(&committed);
        // Not synced: a lost committed id is only re-learned from the leader.
        blocking(move || db.put_cf(cf(&db, CF_RAFT), KEY_COMMITTED, v))
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let db = self.db.clone();
        blocking(move || Self::get_meta::<Option<LogId<NodeId>>>(&db, KEY_COMMITTED))
            .await
            .map(Option::flatten)
            .map_err(|e| StorageIOError::read(AnyError::error(e)).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let c = cf(&self.db, CF_LOG);
        for e in entries {
            batch.put_cf(c, index_key(e.log_id.index), encode(&e));
        }
        // Readable now; durable when the flusher's sync completes. Without a sync, a write
        // is a memtable insert and a buffered WAL write: a small one is done here, which
        // saves two thread switches on every single commit's path (docs/benchmarks.md,
        // P3); a large batch goes to the blocking pool.
        let res = if batch.size_in_bytes() <= INLINE_APPEND_BYTES {
            self.db.write(batch)
        } else {
            let db = self.db.clone();
            blocking(move || db.write(batch)).await
        };
        match res {
            Ok(()) => {
                let queue = self.flusher.queue.as_ref().expect("the queue lives as long as the store");
                if let Err(std::sync::mpsc::SendError(cb)) = queue.send(callback) {
                    cb.log_io_completed(Err(std::io::Error::other("the Raft log sync thread has stopped")));
                }
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(move || {
            let mut b = WriteBatch::default();
            b.delete_range_cf(cf(&db, CF_LOG), index_key(log_id.index), index_key(u64::MAX));
            b.delete_cf(cf(&db, CF_LOG), index_key(u64::MAX));
            db.write_opt(b, &synced())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let db = self.db.clone();
        blocking(move || {
            let mut b = WriteBatch::default();
            b.put_cf(cf(&db, CF_RAFT), KEY_LAST_PURGED, encode(&log_id));
            b.delete_range_cf(cf(&db, CF_LOG), index_key(0), index_key(log_id.index + 1));
            db.write_opt(b, &synced())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

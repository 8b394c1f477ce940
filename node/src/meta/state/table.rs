//! Typed tables: each column family of the state machine holds one record type under one
//! kind of key, said once here instead of at every read and write.
//!
//! A [`Table`] pairs a column family with its key type ([`Key`]: a name, an id, or raw
//! bytes for composite keys) and its value type; a [`Cell`] is one value of one type under
//! a fixed key of `sm_meta` (a sequence, a head, a version). Reads decode through
//! [`schema::Record`], so older formats upgrade on the way in; writes go into the apply's
//! batch in the current format.

use std::borrow::Cow;
use std::marker::PhantomData;

use rocksdb::{WriteBatch, DB};
use serde::Serialize;

use super::super::db::*;
use super::super::schema;
use super::super::types::*;
use crate::audit::AuditRecord;

/// How a table's key becomes RocksDB key bytes.
pub trait Key {
    fn key(&self) -> Cow<'_, [u8]>;
}

/// Names (camera ids, user names, export ids): their UTF-8 bytes.
impl Key for str {
    fn key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

/// Sequence numbers and node ids: big-endian, so keys sort as numbers.
impl Key for u64 {
    fn key(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.to_be_bytes().to_vec())
    }
}

/// Composite keys built by their own functions (`segment_key`, hashes).
impl Key for [u8] {
    fn key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

/// A column family of `V` records under keys of type `K`.
pub struct Table<K: ?Sized, V> {
    cf: &'static str,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: Key + ?Sized, V: schema::Record + Serialize> Table<K, V> {
    pub const fn new(cf: &'static str) -> Self {
        Table { cf, _types: PhantomData }
    }

    /// The record under `key`, if any.
    pub fn get(&self, db: &DB, key: &K) -> Result<Option<V>, String> {
        match db.get_cf(cf(db, self.cf), key.key()).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(b) => decode(&b).map(Some),
        }
    }

    /// Every record, in key order.
    pub fn all(&self, db: &DB) -> Result<Vec<V>, String> {
        let mut out = Vec::new();
        for kv in db.iterator_cf(cf(db, self.cf), rocksdb::IteratorMode::Start) {
            let (_, v) = kv.map_err(|e| e.to_string())?;
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    /// Writes `value` under `key` in the apply's batch.
    pub fn put(&self, db: &DB, batch: &mut WriteBatch, key: &K, value: &V) {
        batch.put_cf(cf(db, self.cf), key.key(), encode(value));
    }

    /// Deletes `key` in the apply's batch.
    pub fn delete(&self, db: &DB, batch: &mut WriteBatch, key: &K) {
        batch.delete_cf(cf(db, self.cf), key.key());
    }
}

/// Values of type `V` in `sm_meta`, each under a key made for its item (a node, a
/// camera). Unlike a [`Table`] it has no `all`: `sm_meta` holds values of many types.
pub struct Keyed<V> {
    _type: PhantomData<fn() -> V>,
}

impl<V: schema::Record + Serialize> Keyed<V> {
    pub const fn new() -> Self {
        Keyed { _type: PhantomData }
    }

    pub fn get(&self, db: &DB, key: &[u8]) -> Result<Option<V>, String> {
        match db.get_cf(cf(db, CF_SM), key).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(b) => decode(&b).map(Some),
        }
    }

    pub fn put(&self, db: &DB, batch: &mut WriteBatch, key: &[u8], value: &V) {
        batch.put_cf(cf(db, CF_SM), key, encode(value));
    }
}

/// One value of type `V` under a fixed key of `sm_meta`.
pub struct Cell<V> {
    key: &'static [u8],
    _type: PhantomData<fn() -> V>,
}

impl<V: schema::Record + Serialize> Cell<V> {
    pub const fn new(key: &'static [u8]) -> Self {
        Cell { key, _type: PhantomData }
    }

    pub fn get(&self, db: &DB) -> Result<Option<V>, String> {
        match db.get_cf(cf(db, CF_SM), self.key).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(b) => decode(&b).map(Some),
        }
    }

    pub fn put(&self, db: &DB, batch: &mut WriteBatch, value: &V) {
        batch.put_cf(cf(db, CF_SM), self.key, encode(value));
    }
}

// The state machine's tables, by column family (see `meta::db` for what each holds).
pub const ALARMS: Table<[u8], AlarmRecord> = Table::new(CF_ALARMS);
pub const AUDIT: Table<u64, AuditRecord> = Table::new(CF_AUDIT);
pub const BACKUP_LOCS: Table<[u8], BackupLocation> = Table::new(CF_BACKUP_LOCS);
pub const BACKUP_PACKS: Table<[u8], PackRecord> = Table::new(CF_BACKUP_PACKS);
pub const CAMERAS: Table<str, Camera> = Table::new(CF_CAMERAS);
pub const CHANGES: Table<u64, ChangeRecord> = Table::new(CF_CHANGES);
pub const CREDENTIALS: Table<str, Credential> = Table::new(CF_CREDENTIALS);
pub const DUTY: Table<u64, DutyRecord> = Table::new(CF_DUTY);
pub const EXPORTS: Table<str, ExportRecord> = Table::new(CF_EXPORTS);
pub const FAULTS: Table<u64, FaultRecord> = Table::new(CF_FAULTS);
pub const HANDOVER_ACCEPTS: Table<u64, HandoverAcceptance> = Table::new(CF_HANDOVER_ACCEPTS);
pub const HOLDS: Table<str, crate::retention::Hold> = Table::new(CF_HOLDS);
pub const JOIN_TOKENS: Table<[u8], JoinTokenRecord> = Table::new(CF_JOIN_TOKENS);
pub const NODES: Table<u64, NodeRecord> = Table::new(CF_NODES);
pub const PICTURE_REFS: Table<str, PictureStill> = Table::new(CF_PICTURE_REFS);
pub const POLICIES: Table<str, crate::retention::Policy> = Table::new(CF_POLICIES);
pub const PRIVACY_ZONES: Table<str, Vec<crate::zones::Zone>> = Table::new(CF_PRIVACY_ZONES);
pub const REDACTIONS: Table<str, ExportRedaction> = Table::new(CF_REDACTIONS);
pub const STANDBY: Table<str, Standby> = Table::new(CF_STANDBY);
pub const SEGMENTS: Table<[u8], SegmentRecord> = Table::new(CF_SEGMENTS);
pub const SEGMENT_CLOCKS: Table<[u8], SegmentClock> = Table::new(CF_SEGMENT_CLOCKS);
pub const SENSITIVITY: Table<str, Vec<SensitivePeriod>> = Table::new(CF_SENSITIVITY);
pub const TOKENS: Table<[u8], TokenRecord> = Table::new(CF_TOKENS);
pub const USERS: Table<str, User> = Table::new(CF_USERS);
pub const SHIFTS: Table<str, crate::shifts::ShiftDef> = Table::new(CF_SHIFTS);
pub const SIGNOFFS: Table<u64, DutySignoff> = Table::new(CF_SIGNOFFS);
pub const SEALS: Table<u64, custos_evidence::seal::SealFile> = Table::new(CF_SEALS);
pub const RECEIPTS: Table<u64, DeletionReceipt> = Table::new(CF_RECEIPTS);
pub const BACKUP_TRASH: Table<u64, Hash> = Table::new(CF_BACKUP_TRASH);
pub const LOST: Table<[u8], LostSegment> = Table::new(CF_LOST);
// Two column families are indexes of bare keys, not records: `alarms_open` (kind and
// subject to the open alarm's id) and `backup_queue` (segments waiting for the bucket).
// Raft's own bookkeeping in `sm_meta` (applied log id, membership) is written by the
// openraft glue in `state/mod.rs`.

// Values in `sm_meta` under keys made per item.
/// Pinned certificate key hashes, under `node_key_key(id)`.
pub const NODE_KEYS: Keyed<Hash> = Keyed::new();
/// Accepted clock confirmations per node, under `clock_confirm_key(id)`.
pub const CLOCK_CONFIRMS: Keyed<u64> = Keyed::new();
/// When each seed camera was registered from a config file, under `seeded_camera_key(id)`.
pub const SEEDED_CAMERAS: Keyed<i64> = Keyed::new();

// Single values in `sm_meta`.
pub const ALARM_SEQ: Cell<u64> = Cell::new(super::KEY_ALARM_SEQ);
pub const AUDIT_HEAD: Cell<(u64, Hash)> = Cell::new(super::KEY_AUDIT_HEAD);
pub const BACKED_UP: Cell<(u64, u64)> = Cell::new(super::KEY_BACKED_UP);
pub const BACKUP_OBJECTS: Cell<(u64, u64)> = Cell::new(super::KEY_BACKUP_OBJECTS);
pub const CHANGE_SEQ: Cell<u64> = Cell::new(super::changes::KEY_CHANGE_SEQ);
pub const CLUSTER_VERSION: Cell<u32> = Cell::new(super::KEY_CLUSTER_VERSION);
pub const DUTY_SEQ: Cell<u64> = Cell::new(super::KEY_DUTY_SEQ);
pub const EXPORT_SEQ: Cell<u64> = Cell::new(super::KEY_EXPORT_SEQ);
pub const FAULT_SEQ: Cell<u64> = Cell::new(super::duty::KEY_FAULT_SEQ);
pub const HOLD_SEQ: Cell<u64> = Cell::new(super::KEY_HOLD_SEQ);
pub const LAST_EXPIRY: Cell<(i64, i64, u64)> = Cell::new(super::clocks::KEY_LAST_EXPIRY);
pub const RECEIPT_SEQ: Cell<u64> = Cell::new(super::KEY_RECEIPT_SEQ);
pub const SEAL_HEAD: Cell<super::seals::SealHead> = Cell::new(super::seals::KEY_SEAL_HEAD);
pub const SEAL_KEY: Cell<String> = Cell::new(super::seals::KEY_SEAL_KEY);
pub const SEGMENT_COUNT: Cell<u64> = Cell::new(super::KEY_SEGMENT_COUNT);
pub const SIGNOFF_SEQ: Cell<u64> = Cell::new(super::duty::KEY_SIGNOFF_SEQ);
pub const TRASH_SEQ: Cell<u64> = Cell::new(super::KEY_TRASH_SEQ);

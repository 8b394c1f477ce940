//! The catalog outside Raft: the state dump that backup snapshots carry, and adopting a
//! restored dump as the founding state of a rebuilt cluster.
//!
//! Adoption runs once, in `custos-node restore`, on a database no Raft group has opened:
//! it is the restored cluster's equivalent of `init` writing a fresh data directory. It
//! keeps every record and the audit chain, retires the nodes that were lost, and appends
//! one chained audit entry that says what was restored and what was missing.

use std::collections::HashMap;

use rocksdb::{IteratorMode, WriteBatch, DB};

use super::db::{cf, CF_BACKUP_LOCS, CF_BACKUP_QUEUE, CF_SEGMENTS, CF_SM};
use super::state::table::*;
use super::state::{StateMachine, KEY_APPLIED, KEY_MEMBERSHIP};
use super::types::{decode, BackupLocation, NodeRecord, SegmentRecord};
use super::Catalog;
use crate::audit::{seal_entry, AuditAction, AuditEvent, Outcome, GENESIS};
use crate::error::{Error, Result};
use crate::meta::types::Hash;

impl Catalog {
    /// A consistent dump of the whole state machine and the log index it reflects.
    /// Blocks; the dump is about 150 bytes per segment.
    pub fn dump_state(&self) -> Result<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let (applied, _) = StateMachine::write_state(&self.db, &mut out).map_err(Error::Internal)?;
        Ok((applied.map(|l| l.index).unwrap_or(0), out))
    }
}

impl Catalog {
    /// How many segments the backup store holds, and `sample` of them chosen at random
    /// (every one when `sample` is 0), with where each is. Blocks; walks every location.
    pub fn backed_up_segments(&self, sample: usize) -> Result<(u64, Vec<(SegmentRecord, BackupLocation)>)> {
        use rand::Rng;
        let db = &self.db;
        let mut rng = rand::thread_rng();
        let (mut seen, mut out) = (0u64, Vec::new());
        for kv in db.iterator_cf(cf(db, CF_BACKUP_LOCS), IteratorMode::Start) {
            let (k, v) = kv.map_err(|e| Error::Internal(e.to_string()))?;
            seen += 1;
            // Reservoir sampling keeps each backed-up segment equally likely.
            let slot = if sample == 0 || out.len() < sample {
                None
            } else {
                match rng.gen_range(0..seen) as usize {
                    j if j < sample => Some(j),
                    _ => continue,
                }
            };
            let Some(rec) = SEGMENTS.get(db, &k).map_err(Error::Internal)? else {
                continue;
            };
            let item = (rec, decode(&v).map_err(Error::Internal)?);
            match slot {
                None => out.push(item),
                Some(j) => out[j] = item,
            }
        }
        Ok((seen, out))
    }
}

/// Loads a dump into an empty database and forgets the old group's Raft position, so
/// the restored node founds a new group on top of the restored state. Blocks.
pub fn load_restored(db: &DB, state: &[u8]) -> Result<()> {
    StateMachine::load_snapshot_file(db, state)
        .map_err(|e| Error::Internal(format!("the snapshot's catalog is unreadable: {e}")))?;
    let mut b = WriteBatch::default();
    b.delete_cf(cf(db, CF_SM), KEY_APPLIED);
    b.delete_cf(cf(db, CF_SM), KEY_MEMBERSHIP);
    db.write(b).map_err(|e| Error::Internal(e.to_string()))
}

/// Every segment record in catalog order, with its place in the backup bucket when it
/// was backed up. Blocks.
pub fn segments(db: &DB) -> Result<Vec<(SegmentRecord, Option<BackupLocation>)>> {
    let mut out = Vec::new();
    for kv in db.iterator_cf(cf(db, CF_SEGMENTS), IteratorMode::Start) {
        let (k, v) = kv.map_err(|e| Error::Internal(e.to_string()))?;
        let loc = BACKUP_LOCS.get(db, &k).map_err(Error::Internal)?;
        out.push((decode(&v).map_err(Error::Internal)?, loc));
    }
    Ok(out)
}

/// The founding node of the restored cluster and what was recovered.
#[derive(Debug, Clone)]
pub struct Adoption {
    /// The restored node, with a fresh id.
    pub node: NodeRecord,
    /// Segments whose blobs were restored and verified, by content hash: the blob hash
    /// and size of the copy now stored.
    pub restored: HashMap<Hash, (Hash, u64)>,
    /// Why each segment not restored was lost, by content hash.
    pub lost: HashMap<Hash, String>,
    pub time_ms: i64,
    /// Names the snapshot restored from, for the audit entry.
    pub source: String,
    /// How far the bucket has applied its trash. The snapshot may predate entries the
    /// bucket already applied; new entries must number after them.
    pub trash_applied: u64,
}

/// What adoption changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopted {
    pub nodes_retired: usize,
    pub cameras_moved: usize,
    pub segments_restored: u64,
    /// Catalogued segments whose blobs the bucket did not have (committed after their
    /// last upload). Their records stay, with no replica, so the loss is visible.
    pub segments_missing: u64,
    pub audit_head: u64,
}

/// The id the restored node takes: above every id the old cluster used.
pub fn next_node_id(db: &DB) -> Result<u64> {
    let nodes: Vec<NodeRecord> = NODES.all(db).map_err(Error::Internal)?;
    Ok(nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1)
}

/// Makes the restored catalog the state of a one-node cluster: old nodes retired,
/// cameras recorded by the new node, restored segments held by it, the backup queue
/// settled, and one audit entry appended to the chain. Blocks.
pub fn adopt(db: &DB, a: &Adoption) -> Result<Adopted> {
    let err = |e: String| Error::Internal(e);
    let mut out = Adopted::default();
    let mut b = WriteBatch::default();
    let new_id = a.node.id;
    for mut n in NODES.all(db).map_err(err)? {
        if !n.retired {
            n.retired = true;
            out.nodes_retired += 1;
            NODES.put(db, &mut b, &n.id, &n);
        }
    }
    NODES.put(db, &mut b, &new_id, &a.node);
    for mut c in CAMERAS.all(db).map_err(err)? {
        c.recorder = new_id;
        out.cameras_moved += 1;
        CAMERAS.put(db, &mut b, &c.id, &c);
    }
    let mut restored_bytes = 0u64;
    for kv in db.iterator_cf(cf(db, CF_SEGMENTS), IteratorMode::Start) {
        let (k, v) = kv.map_err(|e| err(e.to_string()))?;
        let mut rec: SegmentRecord = decode(&v).map_err(err)?;
        if let Some(&(blob_hash, blob_bytes)) = a.restored.get(&rec.content_hash) {
            rec.replicas = vec![new_id];
            rec.blob_hash = blob_hash;
            rec.blob_bytes = blob_bytes;
            out.segments_restored += 1;
            restored_bytes += rec.blob_bytes;
        } else {
            rec.replicas.clear();
            out.segments_missing += 1;
            // Marked lost, so search shows a gap with the reason and fetch serves the rest.
            let reason = a
                .lost
                .get(&rec.content_hash)
                .cloned()
                .unwrap_or_else(|| "its blob was not in the backup bucket at the restore".into());
            let lost = super::types::LostSegment { end_ms: rec.end_ms, reason, since_ms: a.time_ms };
            LOST.put(db, &mut b, &k, &lost);
        }
        SEGMENTS.put(db, &mut b, &k, &rec);
    }
    // Everything restored came from the bucket; what is missing can never be uploaded.
    for kv in db.iterator_cf(cf(db, CF_BACKUP_QUEUE), IteratorMode::Start) {
        let (k, _) = kv.map_err(|e| err(e.to_string()))?;
        b.delete_cf(cf(db, CF_BACKUP_QUEUE), k);
    }
    BACKED_UP.put(db, &mut b, &(out.segments_restored, restored_bytes));
    let trash_seq: u64 = TRASH_SEQ.get(db).map_err(err)?.unwrap_or(0);
    TRASH_SEQ.put(db, &mut b, &trash_seq.max(a.trash_applied));

    let head: (u64, Hash) = AUDIT_HEAD.get(db).map_err(err)?.unwrap_or((0, GENESIS));
    let ev = AuditEvent {
        user: "-".into(),
        action: AuditAction::ClusterRestore,
        outcome: Outcome::Ok,
        detail: format!(
            "cluster restored by custos-node restore from {} as node {new_id} (campus {}): {} segments restored and verified, {} missing from the bucket, {} old nodes retired",
            a.source, a.node.campus, out.segments_restored, out.segments_missing, out.nodes_retired
        ),
        ..Default::default()
    };
    let seq = head.0 + 1;
    let rec = seal_entry(seq, a.time_ms, ev, &head.1);
    AUDIT.put(db, &mut b, &seq, &rec);
    AUDIT_HEAD.put(db, &mut b, &(seq, rec.hash));
    out.audit_head = seq;
    let mut o = rocksdb::WriteOptions::default();
    o.set_sync(true);
    db.write_opt(b, &o).map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// The hash of audit entry `seq`, if the catalog holds it.
pub fn audit_hash_at(db: &DB, seq: u64) -> Result<Option<Hash>> {
    let rec: Option<crate::audit::AuditRecord> = AUDIT.get(db, &seq).map_err(Error::Internal)?;
    Ok(rec.map(|r| r.hash))
}

/// Walks the whole audit chain in the database and checks that it ends at the recorded
/// head. Returns the number of entries. Blocks.
pub fn verify_audit(db: &DB) -> Result<u64> {
    let mut records = Vec::new();
    for kv in db.iterator_cf(cf(db, super::db::CF_AUDIT), IteratorMode::Start) {
        let (_, v) = kv.map_err(|e| Error::Internal(e.to_string()))?;
        records.push(decode::<crate::audit::AuditRecord>(&v).map_err(Error::Internal)?);
    }
    let (n, head) = crate::audit::verify_chain(records.iter().map(|r| (r.body.as_slice(), &r.hash)))
        .map_err(|b| Error::Integrity(format!("the audit chain breaks at entry {}: {}", b.seq, b.problem)))?;
    let recorded: (u64, Hash) = AUDIT_HEAD.get(db).map_err(Error::Internal)?.unwrap_or((0, GENESIS));
    if recorded != (n, head) {
        return Err(Error::Integrity(format!(
            "the audit chain holds {n} entries but the catalog's head says {}: entries are missing",
            recorded.0
        )));
    }
    Ok(n)
}

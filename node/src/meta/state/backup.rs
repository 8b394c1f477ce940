//! Backup commands: confirmed packs, their live members, and the bucket's trash.

use rocksdb::{WriteBatch, DB};

use super::table::*;
use crate::meta::db::{cf, segment_key, CF_BACKUP_PACKS, CF_BACKUP_QUEUE};
use crate::meta::types::Hash;
use crate::meta::types::{BackupLocation, PackRecord, Response, StoredPack};

/// Pack records changed by one command, written back together: a pack whose last live
/// member goes is deleted and its object put in the bucket's trash.
#[derive(Default)]
pub(super) struct Packs {
    changed: std::collections::BTreeMap<Hash, PackRecord>,
    trashed: Vec<Hash>,
    /// Change in (live packs, their bytes).
    objects: (i64, i64),
    /// Change in (backed-up segments, their blob bytes).
    segments: (i64, i64),
}

impl Packs {
    /// One member of `pack`, `blob_bytes` long, left the catalog.
    pub(super) fn release(&mut self, db: &DB, pack: &Hash, blob_bytes: u64) -> Result<(), String> {
        self.segments.0 -= 1;
        self.segments.1 -= blob_bytes as i64;
        let rec = match self.changed.get_mut(pack) {
            Some(r) => r,
            None => match BACKUP_PACKS.get(db, pack)? {
                Some(r) => self.changed.entry(*pack).or_insert(r),
                None => return Ok(()), // already trashed
            },
        };
        rec.live = rec.live.saturating_sub(1);
        Ok(())
    }

    pub(super) fn write(self, db: &DB, batch: &mut WriteBatch) -> Result<(), String> {
        let mut objects = self.objects;
        let mut trash = self.trashed;
        for (hash, rec) in self.changed {
            if rec.live == 0 {
                BACKUP_PACKS.delete(db, batch, &hash);
                objects.0 -= 1;
                objects.1 -= rec.bytes as i64;
                trash.push(hash);
            } else {
                BACKUP_PACKS.put(db, batch, &hash, &rec);
            }
        }
        if !trash.is_empty() {
            let mut seq: u64 = TRASH_SEQ.get(db)?.unwrap_or(0);
            for h in trash {
                seq += 1;
                BACKUP_TRASH.put(db, batch, &seq, &h);
            }
            TRASH_SEQ.put(db, batch, &seq);
        }
        for (counter, delta) in [(&BACKUP_OBJECTS, objects), (&BACKED_UP, self.segments)] {
            if delta != (0, 0) {
                let (n, b) = counter.get(db)?.unwrap_or((0, 0));
                let n = n.saturating_add_signed(delta.0);
                let b = b.saturating_add_signed(delta.1);
                counter.put(db, batch, &(n, b));
            }
        }
        Ok(())
    }
}

/// Records confirmed packs: each member still queued leaves the queue and gets its
/// location. A pack seen before changes nothing; a pack with no member left to record is
/// trashed at once, so no object in the bucket is left without an owner.
pub(super) fn mark_backed_up(db: &DB, batch: &mut WriteBatch, now_ms: i64, stored: &[StoredPack]) -> Response {
    let (mut new, mut skipped) = (0u32, 0u32);
    let mut seen = std::collections::HashSet::new();
    let mut packs = Packs::default();
    for p in stored {
        let known = matches!(db.get_pinned_cf(cf(db, CF_BACKUP_PACKS), p.hash), Ok(Some(_)));
        if known || packs.changed.contains_key(&p.hash) || packs.trashed.contains(&p.hash) {
            skipped += p.members.len() as u32;
            continue;
        }
        let mut live = 0u32;
        for m in &p.members {
            let k = segment_key(&m.camera, m.start_ms);
            let queued = matches!(db.get_pinned_cf(cf(db, CF_BACKUP_QUEUE), &k), Ok(Some(_)));
            match SEGMENTS.get(db, &k) {
                Ok(Some(rec)) if queued && rec.blob_bytes == m.len && seen.insert(k.clone()) => {
                    batch.delete_cf(cf(db, CF_BACKUP_QUEUE), &k);
                    let loc = BackupLocation { pack: p.hash, offset: m.offset, len: m.len };
                    BACKUP_LOCS.put(db, batch, &k, &loc);
                    packs.segments.0 += 1;
                    packs.segments.1 += rec.blob_bytes as i64;
                    new += 1;
                    live += 1;
                }
                _ => skipped += 1,
            }
        }
        if live == 0 {
            packs.trashed.push(p.hash);
        } else {
            let rec = PackRecord { bytes: p.bytes, members: p.members.len() as u32, live, stored_ms: now_ms };
            packs.changed.insert(p.hash, rec);
            packs.objects.0 += 1;
            packs.objects.1 += p.bytes as i64;
        }
    }
    if let Err(e) = packs.write(db, batch) {
        return Response::StorageFailed(format!("catalog read failed: {e}"));
    }
    Response::Committed { new, duplicate: skipped, superseded: 0 }
}

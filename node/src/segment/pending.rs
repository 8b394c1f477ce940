//! Pending segment records: the node's promise to commit a segment it has sealed.
//!
//! Order on the write path: pending record (durable) → blob (durable) → Raft commit →
//! pending record removed. After a crash, every pending record whose blob is present is
//! re-proposed (the commit is idempotent), and one whose blob never became durable is
//! dropped: that segment was never acknowledged. So nothing acknowledged is lost and no
//! blob is left without a catalog entry. Every function blocks on the filesystem.

use std::fs;
use std::path::{Path, PathBuf};

use super::seal::Hash;
use crate::error::{Error, Result};
use crate::files::{sync_dir, write_file_atomic};
use crate::meta::types::{decode, encode, SegmentRecord};

/// The directory of pending records.
#[derive(Debug)]
pub struct PendingDir {
    dir: PathBuf,
}

impl PendingDir {
    /// Opens (creating if needed) `dir`.
    pub fn open(dir: &Path) -> Result<PendingDir> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        Ok(PendingDir { dir: dir.to_path_buf() })
    }

    fn path_of(&self, content_hash: &Hash) -> PathBuf {
        self.dir.join(format!("{}.rec", hex::encode(content_hash)))
    }

    /// Durably records the intent to commit `rec`.
    pub fn put(&self, rec: &SegmentRecord) -> Result<()> {
        write_file_atomic(&self.path_of(&rec.content_hash), &encode(rec))
    }

    /// Forgets the records of committed segments.
    pub fn remove_all<'a>(&self, hashes: impl IntoIterator<Item = &'a Hash>) -> Result<()> {
        for h in hashes {
            let p = self.path_of(h);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &p, e)),
            }
        }
        sync_dir(&self.dir)
    }

    /// Every pending record, oldest first. Unreadable files (torn by a crash before the
    /// rename, or `.tmp` leftovers) are removed: their segment was never acknowledged.
    pub fn load(&self) -> Result<Vec<SegmentRecord>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))? {
            let p = entry.map_err(|e| Error::io("list", &self.dir, e))?.path();
            let rec = match p.extension().and_then(|e| e.to_str()) {
                Some("rec") => fs::read(&p).ok().and_then(|b| decode::<SegmentRecord>(&b).ok()),
                _ => None,
            };
            match rec {
                Some(r) => out.push(r),
                None => {
                    tracing::warn!(path = %p.display(), "removing unreadable pending record");
                    fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
                }
            }
        }
        out.sort_by(|a, b| (a.start_ms, &a.camera).cmp(&(b.start_ms, &b.camera)));
        Ok(out)
    }
}

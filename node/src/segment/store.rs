//! The write-once blob store: one file per sealed segment, addressed by its content hash.
//!
//! A blob is written to `tmp/`, fsynced, renamed to `<2 hex>/<2 hex>/<content hash>`,
//! and the directory is fsynced, so a blob either exists whole or not at all. Files are
//! made read-only once in place; nothing here overwrites a blob. Whatever a crash left in
//! `tmp/` is swept when the store opens. Every function blocks on the filesystem.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::seal::Hash;
use crate::error::{Error, Result};
use crate::files::sync_dir;

/// Blobs on this node's disk.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    next_tmp: AtomicU64,
    /// Bytes of blobs stored, counted at open and kept up to date.
    bytes: AtomicU64,
}

/// Where the scrubber moves blobs that failed verification, kept for investigation.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Total size of the blob files under `root` (the two fan-out levels); `tmp` and the
/// quarantine are not blobs.
fn stored_bytes(root: &Path, tmp: &Path) -> Result<u64> {
    let mut total = 0;
    let list = |d: &Path| fs::read_dir(d).map_err(|e| Error::io("list", d, e));
    for a in list(root)? {
        let a = a.map_err(|e| Error::io("list", root, e))?.path();
        let fan_out = a.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() == 2);
        if a == tmp || !a.is_dir() || !fan_out {
            continue;
        }
        for b in list(&a)? {
            let b = b.map_err(|e| Error::io("list", &a, e))?.path();
            for f in list(&b)? {
                let f = f.map_err(|e| Error::io("list", &b, e))?;
                total += f.metadata().map_err(|e| Error::io("stat", f.path(), e))?.len();
            }
        }
    }
    Ok(total)
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root` and sweeps temp files a crash
    /// may have left. Returns the store and how many temp files were removed.
    pub fn open(root: &Path) -> Result<(BlobStore, usize)> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| Error::io("create directory", &tmp, e))?;
        let mut swept = 0;
        for entry in fs::read_dir(&tmp).map_err(|e| Error::io("list", &tmp, e))? {
            let entry = entry.map_err(|e| Error::io("list", &tmp, e))?;
            fs::remove_file(entry.path()).map_err(|e| Error::io("remove temp file", entry.path(), e))?;
            swept += 1;
        }
        if swept > 0 {
            sync_dir(&tmp)?;
        }
        let bytes = AtomicU64::new(stored_bytes(root, &tmp)?);
        Ok((BlobStore { root: root.to_path_buf(), tmp, next_tmp: AtomicU64::new(0), bytes }, swept))
    }

    /// A fresh path in the store's temp directory for a working file (an MP4 being
    /// remuxed for an export). The caller removes it; a crash leaves it to the sweep at
    /// the next open.
    pub fn scratch_path(&self, tag: &str) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{tag}.{n}"))
    }

    /// Bytes of sealed blobs this store holds.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Where the blob for `content_hash` lives.
    pub fn path_of(&self, content_hash: &Hash) -> PathBuf {
        let h = hex::encode(content_hash);
        self.root.join(&h[0..2]).join(&h[2..4]).join(h)
    }

    /// Stores `ciphertext` under `content_hash` durably and returns `blob_hash`, the
    /// BLAKE3 of `ciphertext`, which every caller has already computed (sealing) or
    /// checked (a replica, a repair), so it is not hashed a second time here. If a blob
    /// with that content hash is already stored, it is kept as it is and its bytes' BLAKE3
    /// is returned (age encryption is randomised, so the stored ciphertext may differ).
    pub fn put(&self, content_hash: &Hash, ciphertext: &[u8], blob_hash: &Hash) -> Result<Hash> {
        debug_assert_eq!(blake3::hash(ciphertext).as_bytes(), blob_hash, "put with a wrong blob hash");
        let dest = self.path_of(content_hash);
        if dest.exists() {
            let existing = fs::read(&dest).map_err(|e| Error::io("read", &dest, e))?;
            return Ok(*blake3::hash(&existing).as_bytes());
        }
        let dir = dest.parent().expect("blob path has a parent");
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            sync_dir(dir.parent().expect("fan-out dir has a parent"))?;
            sync_dir(&self.root)?;
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}.{n}", hex::encode(&content_hash[..8])));
        {
            let mut f =
                OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            f.write_all(ciphertext).map_err(|e| Error::io("write", &tmp, e))?;
            f.set_permissions(fs::Permissions::from_mode(0o400)).map_err(|e| Error::io("chmod", &tmp, e))?;
            f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        }
        fs::rename(&tmp, &dest).map_err(|e| Error::io("rename", &dest, e))?;
        sync_dir(dir)?;
        self.bytes.fetch_add(ciphertext.len() as u64, Ordering::Relaxed);
        Ok(*blob_hash)
    }

    /// Reads a blob, or `None` if this node does not hold it.
    pub fn get(&self, content_hash: &Hash) -> Result<Option<Vec<u8>>> {
        let p = self.path_of(content_hash);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &p, e)),
        }
    }

    /// Unlinks a blob. Only the expiry worker calls this, after the catalog has recorded
    /// a deletion receipt for the segment. Missing blobs are fine (already removed).
    pub fn remove(&self, content_hash: &Hash) -> Result<()> {
        let p = self.path_of(content_hash);
        let len = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&p) {
            Ok(()) => {
                self.bytes.fetch_sub(len.min(self.bytes()), Ordering::Relaxed);
                sync_dir(p.parent().expect("blob path has a parent"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove expired blob", &p, e)),
        }
    }

    /// Moves a blob that failed verification out of the store, into `quarantine/` with
    /// `tag` in its name, so a good copy can be stored in its place and the bad one can
    /// still be examined. Returns where it went (`None`: there was no file).
    pub fn quarantine(&self, content_hash: &Hash, tag: &str) -> Result<Option<PathBuf>> {
        let p = self.path_of(content_hash);
        let len = match fs::metadata(&p) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("stat", &p, e)),
        };
        let dir = self.root.join(QUARANTINE_DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let dest = dir.join(format!("{}.{tag}", hex::encode(content_hash)));
        fs::rename(&p, &dest).map_err(|e| Error::io("move to quarantine", &dest, e))?;
        sync_dir(&dir)?;
        sync_dir(p.parent().expect("blob path has a parent"))?;
        self.bytes.fetch_sub(len.min(self.bytes()), Ordering::Relaxed);
        Ok(Some(dest))
    }

    /// True if the blob is on this node's disk.
    pub fn contains(&self, content_hash: &Hash) -> bool {
        self.path_of(content_hash).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_and_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let (s, swept) = BlobStore::open(dir.path()).unwrap();
        assert_eq!(swept, 0);
        let h = *blake3::hash(b"plain").as_bytes();
        let bh = *blake3::hash(b"cipher-1").as_bytes();
        assert_eq!(s.put(&h, b"cipher-1", &bh).unwrap(), bh);
        // A second put of the same content keeps the first blob and reports its hash.
        assert_eq!(s.put(&h, b"cipher-2", blake3::hash(b"cipher-2").as_bytes()).unwrap(), bh);
        assert_eq!(s.get(&h).unwrap().unwrap(), b"cipher-1");
        let mode = fs::metadata(s.path_of(&h)).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "blobs are read-only");

        fs::write(dir.path().join("tmp/leftover.0"), b"half").unwrap();
        drop(s);
        let (s, swept) = BlobStore::open(dir.path()).unwrap();
        assert_eq!(swept, 1);
        assert!(s.contains(&h));
        assert!(s.get(&[0u8; 32]).unwrap().is_none());
        assert_eq!(s.bytes(), 8, "the size of what is stored is counted at open");
        s.remove(&h).unwrap();
        assert_eq!(s.bytes(), 0);
    }
}

//! Durable small-file writes: configs, keys, cursors, pending records and snapshot
//! metadata either land whole or not at all, and survive a crash once written.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// fsyncs a directory so a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// Writes `bytes` to `path` atomically: temp file beside it, fsync, rename, fsync dir.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    {
        // Owner-only whatever the umask: config files, certificates, cursors.
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    sync_dir(dir)
}

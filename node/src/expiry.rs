//! The expiry worker: the only way footage is ever deleted.
//!
//! On the leader, each pass nominates segments past their policy's `max_days` that no
//! active hold covers and proposes them in batches; applying the command decides again,
//! at the command's time, and writes a deletion receipt for each segment it removes.
//! On every node, [`remove_expired_blobs`] then follows the receipts with a persisted
//! cursor and unlinks the local blob files, so a crash at any point only delays removal.

use std::path::Path;
use std::time::Duration;

use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::meta::{Catalog, Command, Meta, Response};
use crate::segment::store::write_file_atomic;
use crate::segment::BlobStore;

/// Segments nominated per Raft entry.
pub const EXPIRY_BATCH: usize = 512;
/// Receipts followed per step of blob removal.
const RECEIPT_PAGE: usize = 512;

/// One expiry pass on the leader. Returns how many segments were deleted.
pub async fn expire_once(meta: &Meta) -> Result<u64> {
    let mut total = 0;
    loop {
        let now = meta.now_ms();
        let nominated = meta.read(move |c| c.expiry_candidates(now, EXPIRY_BATCH)).await?;
        if nominated.is_empty() {
            return Ok(total);
        }
        let ev = AuditEvent {
            user: "retention".into(),
            role: "system".into(),
            action: "expire".into(),
            outcome: "ok".into(),
            cameras: nominated
                .iter()
                .map(|(c, _)| c.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            ..Default::default()
        };
        match meta.propose_audited(Command::ExpireSegments(nominated), ev).await? {
            Response::Committed { new, .. } if new > 0 => total += u64::from(new),
            // Everything nominated was protected by the time it applied: stop this pass.
            _ => return Ok(total),
        }
    }
}

/// Unlinks the local blobs of every receipt after the cursor stored in `cursor_file`.
/// Blocks on the filesystem. Returns how many receipts it followed.
pub fn remove_expired_blobs(catalog: &Catalog, store: &BlobStore, cursor_file: &Path) -> Result<u64> {
    let mut cursor: u64 = match std::fs::read_to_string(cursor_file) {
        Ok(s) => s.trim().parse().map_err(|_| Error::Internal(format!("{} is not a number", cursor_file.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io("read", cursor_file, e)),
    };
    let mut followed = 0;
    loop {
        let page = catalog.receipts_after(cursor, RECEIPT_PAGE)?;
        let Some(last) = page.last().map(|r| r.seq) else { return Ok(followed) };
        for r in &page {
            // Segments embed their wall-clock timestamps, so no two share content: the
            // blob belongs to this receipt's segment alone.
            store.remove(&r.content_hash)?;
        }
        followed += page.len() as u64;
        cursor = last;
        write_file_atomic(cursor_file, cursor.to_string().as_bytes())?;
    }
}

/// Runs expiry passes (on the leader) and local blob removal (everywhere) until shutdown.
pub async fn run(
    meta: Meta,
    store: std::sync::Arc<BlobStore>,
    cursor_file: std::path::PathBuf,
    every: Duration,
    shutdown: crate::Shutdown,
) {
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    loop {
        if meta.is_leader() {
            match expire_once(&meta).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention expired segments past their policy"),
                Err(e) => tracing::warn!(error = %e, "expiry pass failed; retrying next pass"),
            }
        }
        let (c, s, f) = (meta.catalog.clone(), store.clone(), cursor_file.clone());
        match tokio::task::spawn_blocking(move || remove_expired_blobs(&c, &s, &f)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(blobs = n, "removed blobs of expired segments"),
            Ok(Err(e)) => tracing::warn!(error = %e, "removing expired blobs failed; retrying next pass"),
            Err(e) => tracing::warn!(error = %e, "blob removal task failed"),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

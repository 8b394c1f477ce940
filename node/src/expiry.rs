//! The expiry worker: the only way footage is ever deleted.
//!
//! On the leader, each pass nominates segments past their policy's `max_days` that no
//! active hold covers and proposes them in batches; applying the command decides again,
//! at the command's time, and writes a deletion receipt for each segment it removes.
//! On every node, [`remove_expired_blobs`] then follows the receipts with a persisted
//! cursor and unlinks the local blob files, so a crash at any point only delays removal.

use std::path::Path;
use std::time::Duration;

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::error::{Error, Result};
use crate::files::write_file_atomic;
use crate::meta::{Catalog, Command, Meta, Response};
use crate::segment::BlobStore;

/// Segments nominated per Raft entry.
pub const EXPIRY_BATCH: usize = 512;
/// Receipts followed per step of blob removal.
const RECEIPT_PAGE: usize = 512;

/// One expiry pass on the leader at time `now` (the time the voters' clocks agree on, see
/// [`agreed_time`]). Returns how many segments were deleted.
pub async fn expire_once(meta: &Meta, now: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let nominated = meta.read(move |c| c.expiry_candidates(now, EXPIRY_BATCH)).await?;
        if nominated.is_empty() {
            return Ok(total);
        }
        let ev = AuditEvent {
            user: "retention".into(),
            role: "system".into(),
            action: AuditAction::Expire,
            outcome: Outcome::Ok,
            cameras: nominated
                .iter()
                .map(|(c, _)| c.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            ..Default::default()
        };
        match meta.propose_audited(Command::ExpireSegments { at_ms: now, segments: nominated }, ev).await? {
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

use crate::cluster::health::CLOCK_READING_FRESH;
/// The leader's clock may run this far ahead of the agreed time before it says so.
const CLOCK_AHEAD_WARN_MS: i64 = 60_000;

/// The time a majority of the voters' clocks confirm, as the leader measures it: its own
/// clock moved by the median of the voters' offsets from it (its own offset is 0). A
/// leader whose clock runs 40 days ahead sees the others 40 days behind, so the median is
/// theirs and expiry runs at their time, not its own. Refused while fewer than a majority
/// of the voters have reported their clocks recently: then nothing can be confirmed.
pub fn agreed_time(meta: &Meta, health: &crate::cluster::health::Health) -> std::result::Result<i64, String> {
    let m = meta.metrics();
    let voters: Vec<_> = m.membership_config.membership().voter_ids().collect();
    let now = meta.now_ms();
    let offsets: Vec<i64> = voters
        .iter()
        .filter_map(|&v| {
            let h = health.get(v);
            let fresh = h.last_ok.is_some_and(|t| t.elapsed() <= CLOCK_READING_FRESH);
            if fresh {
                health.clock_offset_ms(v, now)
            } else {
                None
            }
        })
        .collect();
    let majority = voters.len() / 2 + 1;
    if offsets.len() < majority {
        return Err(format!(
            "only {} of {} voters' clocks have been read in the last {} s; a majority is needed to confirm the time",
            offsets.len(),
            voters.len(),
            CLOCK_READING_FRESH.as_secs()
        ));
    }
    let median = crate::cluster::health::median_offset(offsets).unwrap_or(0);
    Ok(now + median)
}

/// Refuses the pass when this node's clock jumped at any point up to now: called after the
/// pass read its time, so that time is covered. A jump the clock watch has not compared
/// yet shows as the wall clock's gain on the boot clock since the watch's last readings;
/// one it has compared is flagged by then (it records readings only after flagging what
/// they show), so the flag is read second.
fn vouched(meta: &Meta, health: &crate::cluster::health::Health) -> std::result::Result<(), String> {
    let watch = &health.workers.clock_jump;
    match watch.drift_since_check(meta.now_ms(), crate::clock::boot_ms()) {
        None => return Err("the clock watch has not compared this node's clocks yet".into()),
        Some(d) if d > crate::clock_jump::JUMP_MIN_MS => {
            return Err(format!(
                "this node's clock gained {} on its boot clock since the clock watch last looked: a jump",
                custos_formats::fields::fmt_skew(d)
            ))
        }
        Some(_) => {}
    }
    match watch.jump() {
        Some(j) => Err(format!(
            "this node's clock jumped {} forward and the jump is not confirmed (alarm clock-jump)",
            custos_formats::fields::fmt_skew(j.jump_ms)
        )),
        None => Ok(()),
    }
}

/// Runs expiry passes (on the leader) and local blob removal (everywhere) until shutdown.
/// Passes run only while a [`crate::clock_jump::Watcher`] compares the clocks of the same
/// `health` (see `vouched`).
pub async fn run(
    meta: Meta,
    health: crate::cluster::health::Health,
    store: std::sync::Arc<BlobStore>,
    cursor_file: std::path::PathBuf,
    every: Duration,
    shutdown: crate::Shutdown,
) {
    let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
    loop {
        // A clock jump, flagged or not yet, stops the pass in `vouched`.
        let now = if !meta.is_leader() {
            None
        } else {
            match agreed_time(&meta, &health).and_then(|t| vouched(&meta, &health).map(|()| t)) {
                Ok(t) => {
                    let ahead = meta.now_ms() - t;
                    if ahead > CLOCK_AHEAD_WARN_MS {
                        tracing::warn!(ahead_ms = ahead, "this leader's clock runs ahead of the time the voters agree on; expiry uses theirs. Fix this node's clock");
                    }
                    Some(t)
                }
                Err(why) => {
                    tracing::warn!(%why, "expiry pass skipped: the time could not be vouched for");
                    None
                }
            }
        };
        if let Some(now) = now {
            match expire_once(&meta, now).await {
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

//! The daily seal (a leader duty): once every `seal_every_s` (a day by default) the
//! leader states what the cluster kept since the previous seal, signs it with the
//! cluster's signing key and commits it (`Command::StoreSeal`); the backup worker copies
//! each seal to the bucket (`seals/`). The format and the offline checks live in
//! `custos_evidence::seal`.
//!
//! The sealed period ends at the time a majority of the voters' clocks agree on
//! (`expiry::agreed_time`), so a leader whose clock runs ahead cannot date a seal into
//! the future. The first seal comes `seal_every_s` after the cluster was founded.

use std::sync::Arc;
use std::time::Duration;

use custos_evidence::export::SigningKey;
use custos_evidence::seal::{SealCamera, SealDeletions, SealFile, SealHold, SealStatement, SEAL_FORMAT};

use crate::meta::{Catalog, Command, Meta, Response};

/// Receipts read per page while sealing.
const RECEIPT_PAGE: usize = 4_096;

/// The statement of what `c` kept in `[from_ms, to_ms)`, following the newest stored
/// seal. `settle_ms`: a silence at the end shorter than this is not a gap yet. Blocks;
/// reads every segment of the period.
pub fn statement(
    c: &Catalog,
    (from_ms, to_ms): (i64, i64),
    made_by: u64,
    settle_ms: i64,
    signing_key: &str,
) -> crate::Result<SealStatement> {
    let (seq, prev, last_receipt) = c.seal_head()?;
    let holds = c.holds()?;
    let cameras = c.cameras()?;
    let mut out = Vec::with_capacity(cameras.len());
    for cam in &cameras {
        let policy = c.policy_for(&cam.id)?;
        let cov = crate::report::coverage(c, &cam.id, from_ms.max(cam.added_ms), to_ms, settle_ms)?;
        out.push(SealCamera {
            camera: cam.id.clone(),
            kept_from_ms: c.first_segment(&cam.id)?.map(|s| s.start_ms),
            kept_to_ms: c.last_segment(&cam.id)?.map(|s| s.end_ms),
            segments: cov.segments,
            bytes: cov.bytes,
            recorded_ms: cov.recorded_ms,
            gaps: cov.gaps,
            min_days: policy.min_days,
            max_days: policy.max_days,
            holds: holds.iter().filter(|h| h.active() && h.cameras.contains(&cam.id)).map(|h| h.id.clone()).collect(),
            deleted: 0,
            lost: cov.lost,
        });
    }
    // Every deletion since the previous seal, in receipt order, hashed together.
    let mut deletions = SealDeletions::default();
    let mut hasher = blake3::Hasher::new();
    let mut cursor = last_receipt;
    loop {
        let page = c.receipts_after(cursor, RECEIPT_PAGE)?;
        let Some(last) = page.last().map(|r| r.seq) else { break };
        for r in &page {
            hasher.update(&r.seq.to_be_bytes());
            hasher.update(r.camera.as_bytes());
            hasher.update(&[0]);
            hasher.update(&r.start_ms.to_be_bytes());
            hasher.update(&r.end_ms.to_be_bytes());
            hasher.update(&r.content_hash);
            if deletions.first_receipt == 0 {
                deletions.first_receipt = r.seq;
            }
            deletions.count += 1;
            if let Some(cam) = out.iter_mut().find(|x| x.camera == r.camera) {
                cam.deleted += 1;
            }
        }
        deletions.last_receipt = last;
        cursor = last;
    }
    deletions.receipts_hash = hasher.finalize().to_hex().to_string();
    let (audit_seq, audit_hash) = c.audit_head()?;
    Ok(SealStatement {
        format: SEAL_FORMAT.into(),
        seq: seq + 1,
        day: crate::server::fmt_ms(to_ms).chars().take(10).collect(),
        from_ms,
        to_ms,
        made_by,
        cameras: out,
        holds: holds
            .iter()
            .filter(|h| h.active())
            .map(|h| SealHold {
                id: h.id.clone(),
                case_id: h.case_id.clone(),
                cameras: h.cameras.clone(),
                from_ms: h.from_ms,
                to_ms: h.to_ms,
                placed_by: h.placed_by.clone(),
            })
            .collect(),
        deletions,
        audit_seq,
        audit_hash: hex::encode(audit_hash),
        prev_seal: hex::encode(prev),
        signing_key: signing_key.to_string(),
    })
}

/// When the newest seal's period ended, or (before the first seal) when the cluster was
/// founded.
fn last_sealed_ms(c: &Catalog) -> crate::Result<i64> {
    let (seq, _, _) = c.seal_head()?;
    if let Some(f) = c.seal(seq)? {
        if let Ok(s) = serde_json::from_str::<SealStatement>(&f.statement) {
            return Ok(s.to_ms);
        }
    }
    Ok(c.nodes()?.iter().map(|n| n.joined_ms).min().unwrap_or(0))
}

/// The seal duty: what the leader needs to make seals.
pub struct Sealer {
    pub meta: Meta,
    pub health: crate::cluster::health::Health,
    pub key: Arc<SigningKey>,
    pub every: Duration,
    /// A silence at the end of a period shorter than this is not a gap yet.
    pub settle_ms: i64,
}

impl Sealer {
    /// Makes and commits the next seal if one is due; its number if one was made.
    pub async fn seal_if_due(&self) -> std::result::Result<Option<u64>, String> {
        let now = crate::expiry::agreed_time(&self.meta, &self.health)?;
        let since = self.meta.read(last_sealed_ms).await.map_err(|e| e.to_string())?;
        let every_ms = self.every.as_millis() as i64;
        if now - since < every_ms {
            return Ok(None);
        }
        let (made_by, settle, key_hex) = (self.meta.node_id, self.settle_ms, self.key.public_hex());
        let st = self
            .meta
            .read(move |c| statement(c, (since, now), made_by, settle, &key_hex))
            .await
            .map_err(|e| e.to_string())?;
        let key = self.key.clone();
        let file = tokio::task::spawn_blocking(move || SealFile::sign(&st, &key)).await.map_err(|e| e.to_string())?;
        let st: SealStatement = serde_json::from_str(&file.statement).map_err(|e| e.to_string())?;
        let ev = crate::audit::AuditEvent {
            user: "-".into(),
            action: crate::audit::AuditAction::Seal,
            outcome: crate::audit::Outcome::Ok,
            client: format!("node {}", self.meta.node_id),
            detail: format!(
                "seal {} of {}: hash {}, {} cameras, {} deletions, audit head {}",
                st.seq,
                st.day,
                &file.hash[..16],
                st.cameras.len(),
                st.deletions.count,
                st.audit_seq
            ),
            ..Default::default()
        };
        match self.meta.propose_audited(Command::StoreSeal(file), ev).await.map_err(|e| e.to_string())? {
            Response::Created(_) => Ok(Some(st.seq)),
            Response::Rejected(_, why) => Err(format!("seal {} refused: {why}", st.seq)),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Runs on every node; seals only while it leads.
    pub async fn run(self, shutdown: crate::Shutdown) {
        let mut stop = std::pin::pin!(crate::wait_shutdown(shutdown));
        let check = (self.every / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(check) => {}
            }
            if !self.meta.is_leader() {
                continue;
            }
            match self.seal_if_due().await {
                Ok(Some(seq)) => tracing::info!(seal = seq, "daily seal signed and committed"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "no seal made this time; retrying"),
            }
        }
    }
}

impl crate::worker::Worker for Sealer {
    fn name(&self) -> &'static str {
        "seal"
    }

    fn run(self, shutdown: crate::Shutdown) -> impl std::future::Future<Output = ()> + Send {
        Sealer::run(self, shutdown)
    }
}

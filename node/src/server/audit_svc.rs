//! The Audit service: streams the hash chain, whole or filtered. Reading it is logged.

use custos_proto::v1 as pb;
use custos_proto::v1::audit_server::Audit;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Services;
use crate::access::Action;
use crate::audit::AuditBody;

/// Entries read from RocksDB per step of the stream.
const AUDIT_PAGE: usize = 512;
/// Most receipts one call returns.
pub const RECEIPTS_MAX: usize = 10_000;

fn matches(r: &pb::AuditLogRequest, body: &AuditBody) -> bool {
    let e = &body.event;
    (r.user.is_empty() || e.user == r.user)
        && (r.camera.is_empty() || e.cameras.iter().any(|c| c == &r.camera))
        && (r.action.is_empty() || e.action == r.action.as_str())
        && (r.from_ms == 0 || body.time_ms >= r.from_ms)
        && (r.to_ms == 0 || body.time_ms < r.to_ms)
}

#[tonic::async_trait]
impl Audit for Services {
    type LogStream = ReceiverStream<Result<pb::AuditEntry, Status>>;

    async fn log(&self, req: Request<pb::AuditLogRequest>) -> Result<Response<Self::LogStream>, Status> {
        self.guard(&req, Action::ReadAudit, true).await?;
        let r = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let meta = self.meta.clone();
        tokio::spawn(async move {
            let mut after = r.after_seq;
            let mut sent = 0u64;
            loop {
                let page = match meta.read(move |c| c.audit_after(after, AUDIT_PAGE)).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.into_status())).await;
                        return;
                    }
                };
                if page.is_empty() {
                    return;
                }
                for (seq, rec) in page {
                    after = seq;
                    let Ok(body) = serde_json::from_slice::<AuditBody>(&rec.body) else {
                        // An unreadable body is still sent: verification must see it.
                        if tx.send(Ok(pb::AuditEntry { seq, hash: rec.hash.to_vec(), body: rec.body })).await.is_err() {
                            return;
                        }
                        continue;
                    };
                    if !matches(&r, &body) {
                        continue;
                    }
                    if tx.send(Ok(pb::AuditEntry { seq, hash: rec.hash.to_vec(), body: rec.body })).await.is_err() {
                        return;
                    }
                    sent += 1;
                    if r.limit > 0 && sent >= r.limit {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn receipts(&self, req: Request<pb::ReceiptsRequest>) -> Result<Response<pb::ReceiptsResponse>, Status> {
        self.guard(&req, Action::ReadAudit, true).await?;
        let r = req.into_inner();
        let limit = if r.limit == 0 { RECEIPTS_MAX } else { (r.limit as usize).min(RECEIPTS_MAX) };
        let camera = r.camera.clone();
        let receipts = self
            .meta
            .read(move |c| {
                let mut out = Vec::new();
                let mut after = r.after_seq;
                loop {
                    let page = c.receipts_after(after, AUDIT_PAGE)?;
                    let Some(last) = page.last().map(|x| x.seq) else { return Ok(out) };
                    after = last;
                    for x in page.into_iter().filter(|x| camera.is_empty() || x.camera == camera) {
                        if out.len() == limit {
                            return Ok(out);
                        }
                        out.push(x);
                    }
                }
            })
            .await?;
        let receipts = receipts
            .iter()
            .map(|x| pb::DeletionReceipt {
                seq: x.seq,
                camera: x.camera.clone(),
                start_ms: x.start_ms,
                end_ms: x.end_ms,
                bytes: x.bytes,
                content_hash: x.content_hash.to_vec(),
                blob_hash: x.blob_hash.to_vec(),
                min_days: x.min_days,
                max_days: x.max_days,
                deleted_ms: x.deleted_ms,
            })
            .collect();
        Ok(Response::new(pb::ReceiptsResponse { receipts }))
    }

    async fn list_seals(&self, req: Request<pb::ListSealsRequest>) -> Result<Response<pb::ListSealsResponse>, Status> {
        self.guard(&req, Action::ReadSeals, false).await?;
        let seals = self.meta.read(|c| c.seals()).await?;
        Ok(Response::new(pb::ListSealsResponse { seals: seals.iter().filter_map(seal_info).collect() }))
    }

    async fn get_seal(&self, req: Request<pb::GetSealRequest>) -> Result<Response<pb::SealFileReply>, Status> {
        self.guard(&req, Action::ReadSeals, true).await?;
        let r = req.into_inner();
        let seals = self.meta.read(|c| c.seals()).await?;
        // The newest that matches.
        let found = seals.iter().rev().filter_map(|f| seal_info(f).map(|i| (f, i))).find(|(_, i)| {
            match (r.seq, r.day.trim()) {
                (0, "") => true,
                (0, day) => i.day == day,
                (seq, _) => i.seq == seq,
            }
        });
        let Some((file, info)) = found else {
            return Err(Status::not_found(match (r.seq, r.day.trim()) {
                (0, "") => {
                    "no seal yet: the first is made one seal period (seal_every_s) after the cluster was founded"
                        .to_string()
                }
                (0, day) => format!("no seal of {day} (custos seal list shows the days sealed)"),
                (seq, _) => format!("no seal {seq} (custos seal list)"),
            }));
        };
        let file_json = serde_json::to_string_pretty(file).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::SealFileReply { file_json, info: Some(info) }))
    }
}

/// A seal's summary; `None` for a record whose statement cannot be read.
fn seal_info(f: &custos_evidence::seal::SealFile) -> Option<pb::SealInfo> {
    let s: custos_evidence::seal::SealStatement = serde_json::from_str(&f.statement).ok()?;
    Some(pb::SealInfo {
        seq: s.seq,
        day: s.day,
        from_ms: s.from_ms,
        to_ms: s.to_ms,
        hash: f.hash.clone(),
        audit_seq: s.audit_seq,
        cameras: s.cameras.len() as u32,
        deletions: s.deletions.count,
        key_fingerprint: custos_evidence::export::key_fingerprint(&s.signing_key),
    })
}

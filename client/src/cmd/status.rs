//! `custos status` and `custos backup status`.

use custos_client::time::format_ms;
use custos_client::Client;
use serde_json::json;

pub async fn run(client: &Client, as_json: bool) -> anyhow::Result<()> {
    let s = client.status().await?;
    if as_json {
        super::print_json(&json!({
            "node_id": s.node_id, "raft_role": s.raft_role, "raft_term": s.raft_term,
            "last_applied_index": s.last_applied_index, "segments": s.segments, "version": s.version,
            "replication_factor": s.replication_factor,
            "under_replicated": (s.under_replicated != u64::MAX).then_some(s.under_replicated),
            "repair_copies": s.repair_copies,
            "committed_under_replicated": s.committed_under_replicated,
            "alarms": s.alarms,
            "cameras": s.cameras.iter().map(|c| json!({
                "id": c.id, "state": c.state,
                "last_segment_end": (c.last_segment_end_ms > 0).then(|| format_ms(c.last_segment_end_ms)),
                "last_error": (!c.last_error.is_empty()).then_some(&c.last_error),
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "node {} ({}), raft {} in term {}, applied index {}",
        s.node_id, s.version, s.raft_role, s.raft_term, s.last_applied_index
    );
    println!("{} segments in the catalog", s.segments);
    let under =
        if s.under_replicated == u64::MAX { "not known yet".to_string() } else { s.under_replicated.to_string() };
    println!(
        "replication: factor {}, under-replicated segments {under}, repair copies made {}",
        s.replication_factor, s.repair_copies
    );
    if s.committed_under_replicated > 0 {
        println!(
            "this node committed {} segments with fewer copies than the factor (peers were down); repair tops them up",
            s.committed_under_replicated
        );
    }
    println!("{:<24} {:<13} {:<26} LAST ERROR", "CAMERA", "STATE", "LAST SEGMENT END");
    for c in &s.cameras {
        let last = if c.last_segment_end_ms > 0 { format_ms(c.last_segment_end_ms) } else { "-".into() };
        println!("{:<24} {:<13} {:<26} {}", c.id, c.state, last, c.last_error);
    }
    for a in &s.alarms {
        println!("ALARM: {a}");
    }
    let blind: Vec<_> = s.cameras.iter().filter(|c| c.state != "recording").map(|c| c.id.as_str()).collect();
    if !blind.is_empty() {
        println!("NOT RECORDING NOW: {}", blind.join(", "));
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum BackupCmd {
    /// Segments waiting, segments and bytes stored, the last error and the last success.
    Status,
}

pub async fn backup(client: &Client, cmd: BackupCmd, as_json: bool) -> anyhow::Result<()> {
    let BackupCmd::Status = cmd;
    let s = client.status().await?;
    if as_json {
        super::print_json(&json!({
            "configured": s.backup_configured, "pending_segments": s.backup_pending,
            "backed_up_segments": s.backed_up_segments, "backed_up_bytes": s.backed_up_bytes,
            "last_error": (!s.backup_last_error.is_empty()).then_some(&s.backup_last_error),
            "last_success": (s.backup_last_success_ms > 0).then(|| format_ms(s.backup_last_success_ms)),
        }));
        return Ok(());
    }
    if !s.backup_configured {
        println!("backup is not configured on node {} (add a [backup] section to custos.toml)", s.node_id);
    }
    println!("{} segments ({} bytes) backed up; {} waiting", s.backed_up_segments, s.backed_up_bytes, s.backup_pending);
    if s.backup_last_success_ms > 0 {
        println!("last upload confirmed {}", format_ms(s.backup_last_success_ms));
    }
    if !s.backup_last_error.is_empty() {
        println!("FAILING (retrying): {}", s.backup_last_error);
    }
    Ok(())
}

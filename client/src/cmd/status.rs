//! `custos status` and `custos backup status`.

use custos_client::time::format_ms;
use custos_client::Client;
use serde_json::json;

pub async fn run(client: &Client, as_json: bool) -> anyhow::Result<()> {
    let s = client.status().await?;
    let nodes = client.list_nodes().await?;
    let blind: Vec<&str> = s.cameras.iter().filter(|c| c.state != "recording").map(|c| c.id.as_str()).collect();
    if as_json {
        super::print_json(&json!({
            "node_id": s.node_id, "raft_role": s.raft_role, "raft_term": s.raft_term,
            "last_applied_index": s.last_applied_index, "segments": s.segments, "version": s.version,
            "replication_factor": s.replication_factor,
            "under_replicated": (s.under_replicated != u64::MAX).then_some(s.under_replicated),
            "repair_copies": s.repair_copies,
            "committed_under_replicated": s.committed_under_replicated,
            "alarms": s.alarms,
            "open_faults": s.open_faults,
            "current_shift": (!s.current_shift.is_empty()).then_some(&s.current_shift),
            "nodes": nodes.nodes.iter().map(|n| json!({
                "id": n.id, "campus": n.campus, "addr": n.addr, "raft_role": n.raft_role, "health": n.health,
                "disk_free_bytes": n.disk_free_bytes, "disk_total_bytes": n.disk_total_bytes, "disk_low": n.disk_low,
            })).collect::<Vec<_>>(),
            "cameras": s.cameras.iter().map(|c| json!({
                "id": c.id, "state": c.state, "recorder": c.recorder,
                "standby": (c.standby != 0).then_some(c.standby),
                "standby_state": (!c.standby_state.is_empty()).then_some(&c.standby_state),
                "standby_lag_ms": (!c.standby_state.is_empty()).then_some(c.standby_lag_ms),
                "last_segment_end": (c.last_segment_end_ms > 0).then(|| format_ms(c.last_segment_end_ms)),
                "last_error": (!c.last_error.is_empty()).then_some(&c.last_error),
            })).collect::<Vec<_>>(),
            "not_recording": blind,
            "scrub": json!({
                "passes": s.scrub_passes, "segments_verified": s.scrub_segments, "bytes_verified": s.scrub_bytes,
                "corrupt_found": s.scrub_corrupt, "missing_found": s.scrub_missing, "repaired": s.scrub_repaired,
                "unrepaired": s.scrub_unrepaired,
                "last_pass_end": (s.scrub_last_pass_ms > 0).then(|| format_ms(s.scrub_last_pass_ms)),
            }),
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
    println!(
        "scrub on this node: {} passes, {} blobs ({} MiB) verified, {} corrupt and {} missing found, {} repaired{}",
        s.scrub_passes,
        s.scrub_segments,
        s.scrub_bytes >> 20,
        s.scrub_corrupt,
        s.scrub_missing,
        s.scrub_repaired,
        if s.scrub_last_pass_ms > 0 {
            format!("; last pass ended {}", format_ms(s.scrub_last_pass_ms))
        } else {
            String::new()
        }
    );
    for u in &s.scrub_unrepaired {
        println!("NOT REPAIRED: {}", custos_client::text::terminal(u));
    }
    println!();
    println!(
        "{:<4} {:<12} {:<22} {:<9} {:<6} {:>16} {:>10}",
        "NODE", "CAMPUS", "ADDRESS", "RAFT", "HEALTH", "DISK FREE", "CLOCK"
    );
    for n in &nodes.nodes {
        let disk = format!(
            "{:.1}/{:.1} GiB{}",
            n.disk_free_bytes as f64 / (1u64 << 30) as f64,
            n.disk_total_bytes as f64 / (1u64 << 30) as f64,
            if n.disk_low { " LOW" } else { "" }
        );
        println!(
            "{:<4} {:<12} {:<22} {:<9} {:<6} {:>16} {:>10}",
            n.id,
            n.campus,
            custos_client::text::terminal(&n.addr),
            n.raft_role,
            n.health,
            disk,
            super::node::clock(n)
        );
    }
    println!();
    println!(
        "{:<24} {:<13} {:<8} {:<20} {:<26} LAST ERROR",
        "CAMERA", "STATE", "RECORDER", "STANDBY", "LAST SEGMENT END"
    );
    for c in &s.cameras {
        let last = if c.last_segment_end_ms > 0 { format_ms(c.last_segment_end_ms) } else { "-".into() };
        // On the standby node itself: how it stands and how far it holds past the
        // recorder's committed footage.
        let standby = match (c.standby, c.standby_state.as_str()) {
            (0, _) => "-".to_string(),
            (n, "") => n.to_string(),
            (n, st) => format!("{n} {st} +{:.1}s", c.standby_lag_ms as f64 / 1000.0),
        };
        println!(
            "{:<24} {:<13} {:<8} {:<20} {:<26} {}",
            c.id,
            c.state,
            c.recorder,
            standby,
            last,
            custos_client::text::terminal(&c.last_error)
        );
    }
    println!();
    if !s.current_shift.is_empty() {
        println!("shift under way: {}", custos_client::text::terminal(&s.current_shift));
    }
    if blind.is_empty() {
        println!("every camera is recording");
    } else {
        println!("NOT RECORDING NOW (blind spots, cover by patrol): {}", blind.join(", "));
    }
    for f in &s.open_faults {
        println!("OPEN FAULT: {}", custos_client::text::terminal(f));
    }
    if s.alarms.is_empty() {
        println!("no open alarms");
    }
    for a in &s.alarms {
        println!("ALARM: {}", custos_client::text::terminal(a));
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum BackupCmd {
    /// Lag (segments waiting), segments and bytes stored, the newest snapshot, the last
    /// error and the last success. Ask the leader: the backup worker runs there.
    Status,
    /// Read back what the bucket holds and check it: the newest snapshot opens, and each
    /// checked segment's object matches its hashes. Exits non-zero on any problem.
    Verify {
        /// Segments to check, chosen at random among those backed up.
        #[arg(long, default_value_t = 100, conflicts_with = "full")]
        sample: u64,
        /// Check every backed-up segment.
        #[arg(long)]
        full: bool,
    },
}

pub async fn backup(client: &Client, cmd: BackupCmd, as_json: bool) -> anyhow::Result<()> {
    let (sample, full) = match cmd {
        BackupCmd::Status => return backup_status(client, as_json).await,
        BackupCmd::Verify { sample, full } => (sample, full),
    };
    let r = client.verify_backup(if full { 0 } else { sample.max(1) }).await?;
    let healthy = r.snapshot_problem.is_empty() && r.missing.is_empty() && r.corrupt.is_empty();
    if as_json {
        super::print_json(&json!({
            "healthy": healthy, "snapshot": r.snapshot,
            "snapshot_created": (r.snapshot_created_ms > 0).then(|| format_ms(r.snapshot_created_ms)),
            "snapshot_problem": (!r.snapshot_problem.is_empty()).then_some(&r.snapshot_problem),
            "backed_up": r.backed_up, "checked": r.checked, "ok": r.ok,
            "missing": r.missing, "corrupt": r.corrupt,
        }));
    } else {
        match (r.snapshot.is_empty(), r.snapshot_problem.is_empty()) {
            (_, true) => {
                println!("snapshot {} ({}): opens and matches its hash", r.snapshot, format_ms(r.snapshot_created_ms))
            }
            (true, false) => println!("snapshot: PROBLEM: {}", r.snapshot_problem),
            (false, false) => println!("snapshot {}: PROBLEM: {}", r.snapshot, r.snapshot_problem),
        }
        println!("{} of {} checked segments verified ({} backed up in all)", r.ok, r.checked, r.backed_up);
        for m in &r.missing {
            println!("MISSING from the bucket: {m}");
        }
        for c in &r.corrupt {
            println!("CORRUPT in the bucket: {c}");
        }
    }
    if !healthy {
        anyhow::bail!("the backup has problems (see above): the listed segments could not be restored from it");
    }
    Ok(())
}

async fn backup_status(client: &Client, as_json: bool) -> anyhow::Result<()> {
    let s = client.status().await?;
    if as_json {
        super::print_json(&json!({
            "configured": s.backup_configured, "pending_segments": s.backup_pending,
            "backed_up_segments": s.backed_up_segments, "backed_up_bytes": s.backed_up_bytes,
            "objects": s.backup_objects, "object_bytes": s.backup_object_bytes,
            "last_error": (!s.backup_last_error.is_empty()).then_some(&s.backup_last_error),
            "last_success": (s.backup_last_success_ms > 0).then(|| format_ms(s.backup_last_success_ms)),
            "last_snapshot": (!s.backup_last_snapshot.is_empty()).then(|| json!({
                "key": s.backup_last_snapshot, "created": format_ms(s.backup_last_snapshot_ms),
                "bytes": s.backup_last_snapshot_bytes,
            })),
            "expired_objects_deleted": s.backup_expired_objects,
        }));
        return Ok(());
    }
    if !s.backup_configured {
        println!("backup is not configured on node {} (add a [backup] section to custos.toml)", s.node_id);
    }
    println!(
        "{} segments ({} bytes) backed up in {} objects ({} bytes); {} waiting",
        s.backed_up_segments, s.backed_up_bytes, s.backup_objects, s.backup_object_bytes, s.backup_pending
    );
    if s.backup_last_success_ms > 0 {
        println!("last upload confirmed {}", format_ms(s.backup_last_success_ms));
    }
    if !s.backup_last_snapshot.is_empty() {
        println!(
            "last catalog snapshot {} ({} bytes) at {}",
            s.backup_last_snapshot,
            s.backup_last_snapshot_bytes,
            format_ms(s.backup_last_snapshot_ms)
        );
    } else if s.backup_configured && s.raft_role == "leader" {
        println!("no catalog snapshot in the bucket yet");
    }
    if s.backup_expired_objects > 0 {
        println!("{} expired segments deleted from the bucket since this leader started", s.backup_expired_objects);
    }
    if !s.backup_last_error.is_empty() {
        println!("FAILING (retrying): {}", custos_client::text::terminal(&s.backup_last_error));
    }
    if s.backup_configured && s.raft_role != "leader" {
        println!("(node {} is a {}; the backup worker's own view is on the leader)", s.node_id, s.raft_role);
    }
    Ok(())
}

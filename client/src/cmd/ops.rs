//! Duty commands for the monitoring centre: `custos alarms`, `custos patrol`,
//! `custos shift` and `custos report compliance`.

use clap::{Args, Subcommand};
use custos_client::text::{csv_cell, terminal};
use custos_client::time::{format_ms, now_ms, parse_time_ms};
use custos_client::Client;
use custos_proto::v1 as pb;
use serde_json::json;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlarmsArgs {
    #[command(subcommand)]
    pub cmd: Option<AlarmsCmd>,
    /// Cleared alarms too.
    #[arg(long)]
    pub all: bool,
}

#[derive(Subcommand)]
pub enum AlarmsCmd {
    /// List open alarms, newest first (the default).
    List {
        /// Cleared alarms too.
        #[arg(long)]
        all: bool,
    },
    /// Acknowledge an alarm: say what was done about it. The alarm clears by itself
    /// once the condition is gone.
    Ack {
        id: u64,
        #[arg(long)]
        note: String,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PatrolArgs {
    #[command(subcommand)]
    pub cmd: Option<PatrolCmd>,
    /// What you add to the automatic checks (rounds walked, areas covered by hand).
    #[arg(long, default_value = "")]
    pub notes: String,
}

#[derive(Subcommand)]
pub enum PatrolCmd {
    /// Check every camera and node now and record the patrol (the default).
    Run {
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Recorded patrols, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum ShiftCmd {
    /// Hand the shift over in writing to the person taking over.
    Handover {
        /// The user taking over.
        #[arg(long)]
        to: String,
        /// What the next shift must know: open incidents, blind spots, pending work.
        #[arg(long)]
        notes: String,
    },
    /// Accept a handover made to you (the receiver's signature); until then it is pending
    /// and, after 30 minutes, an alarm.
    Accept {
        /// The handover's number (`custos shift list`).
        id: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The shifts (and the one under way), then recorded handovers, newest first, with who
    /// accepted each.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Define a shift by name and local times (administrators; waits for an approver):
    /// `custos shift define night --from 20:00 --to 08:00`.
    Define {
        name: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
pub enum DutyCmd {
    /// Sign off the duty log of a period (approvers): patrols, handovers, faults.
    Sign {
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub async fn duty(client: &Client, c: DutyCmd, as_json: bool) -> anyhow::Result<()> {
    let DutyCmd::Sign { from, to, note } = c;
    let now = now_ms();
    let from_ms = parse_time_ms(&from, now).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to_ms = parse_time_ms(&to, now).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let s = client.sign_duty(from_ms, to_ms, &note).await?;
    if as_json {
        super::print_json(
            &json!({"seq": s.seq, "from": format_ms(s.from_ms), "to": format_ms(s.to_ms), "user": s.user, "signed": format_ms(s.time_ms), "note": s.note}),
        );
    } else {
        println!(
            "duty log {} to {} signed off by {} (#{})",
            format_ms(s.from_ms),
            format_ms(s.to_ms),
            terminal(&s.user),
            s.seq
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum FaultCmd {
    /// Register a fault you saw that the system cannot (a covered lens, a camera turned
    /// away, a damaged dome, a node making noises): on one camera or one node.
    Report {
        #[arg(long, conflicts_with = "node", required_unless_present = "node")]
        camera: Option<String>,
        #[arg(long)]
        node: Option<u64>,
        /// What is wrong.
        #[arg(long)]
        note: String,
    },
    /// Open faults, newest first; --all adds resolved ones with their time to repair.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Mark a fault repaired, saying what was done.
    Resolve {
        id: u64,
        #[arg(long)]
        note: String,
    },
}

fn fault_subject(f: &pb::Fault) -> String {
    if f.camera.is_empty() {
        format!("node {}", f.node)
    } else {
        format!("camera {}", terminal(&f.camera))
    }
}

fn fault_json(f: &pb::Fault) -> serde_json::Value {
    json!({
        "id": f.id, "camera": (!f.camera.is_empty()).then_some(&f.camera), "node": (f.node != 0).then_some(f.node),
        "reported_by": f.reported_by, "reported": format_ms(f.reported_ms), "note": f.note,
        "resolved_by": (!f.resolved_by.is_empty()).then_some(&f.resolved_by),
        "resolved": (f.resolved_ms != 0).then(|| format_ms(f.resolved_ms)),
        "resolution": (!f.resolution.is_empty()).then_some(&f.resolution),
        "repair_s": (f.resolved_ms != 0).then(|| (f.resolved_ms - f.reported_ms) / 1000),
    })
}

pub async fn fault(client: &Client, c: FaultCmd, as_json: bool) -> anyhow::Result<()> {
    match c {
        FaultCmd::Report { camera, node, note } => {
            let f = client.report_fault(camera.as_deref().unwrap_or(""), node.unwrap_or(0), &note).await?;
            if as_json {
                super::print_json(&fault_json(&f));
            } else {
                println!("fault {} registered on {} at {}", f.id, fault_subject(&f), format_ms(f.reported_ms));
            }
        }
        FaultCmd::List { all } => {
            let v = client.list_faults(all).await?;
            if as_json {
                super::print_json(&json!(v.iter().map(fault_json).collect::<Vec<_>>()));
            } else if v.is_empty() {
                println!("{}", if all { "no faults registered" } else { "no open faults" });
            }
            for f in &v {
                let state = if f.resolved_ms == 0 {
                    "OPEN".to_string()
                } else {
                    format!("repaired in {} by {}", span(f.resolved_ms - f.reported_ms), terminal(&f.resolved_by))
                };
                println!(
                    "{:<5} {:<24} {:<16} {:<26} {state}: {}",
                    f.id,
                    fault_subject(f),
                    terminal(&f.reported_by),
                    format_ms(f.reported_ms),
                    terminal(&f.note)
                );
            }
        }
        FaultCmd::Resolve { id, note } => {
            let f = client.resolve_fault(id, &note).await?;
            if as_json {
                super::print_json(&fault_json(&f));
            } else {
                println!(
                    "fault {id} on {} resolved; repaired in {}",
                    fault_subject(&f),
                    span(f.resolved_ms - f.reported_ms)
                );
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ReportCmd {
    /// Per camera over the window: coverage and every gap, whether the footage kept reaches
    /// the retention floor, holds, deletions and accesses. Exits non-zero when any camera
    /// breaks its floor, so it can run from cron.
    Compliance {
        /// Window length in days, ending now.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// One CSV row per camera instead of the table (`--json` wins over it).
        #[arg(long)]
        csv: bool,
    },
}

/// `1d02h03m`, `4m05s`, `12s`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m"),
    }
}

fn alarm_json(a: &pb::Alarm) -> serde_json::Value {
    json!({
        "id": a.id, "kind": a.kind, "subject": a.subject, "detail": a.detail,
        "raised": format_ms(a.raised_ms), "cleared": (a.cleared_ms != 0).then(|| format_ms(a.cleared_ms)),
        "acks": a.acks.iter().map(|k| json!({"user": k.user, "time": format_ms(k.time_ms), "note": k.note})).collect::<Vec<_>>(),
    })
}

pub async fn alarms(client: &Client, a: AlarmsArgs, as_json: bool) -> anyhow::Result<()> {
    let all = match a.cmd {
        Some(AlarmsCmd::Ack { id, note }) => {
            let alarm = client.ack_alarm(id, &note).await?;
            if as_json {
                super::print_json(&alarm_json(&alarm));
            } else {
                println!("alarm {} ({} {}) acknowledged", alarm.id, terminal(&alarm.kind), terminal(&alarm.subject));
            }
            return Ok(());
        }
        Some(AlarmsCmd::List { all }) => all || a.all,
        None => a.all,
    };
    let list = client.list_alarms(all).await?;
    if as_json {
        super::print_json(&json!(list.iter().map(alarm_json).collect::<Vec<_>>()));
        return Ok(());
    }
    if list.is_empty() {
        println!("{}", if all { "no alarms recorded" } else { "no open alarms" });
    }
    for a in &list {
        let state = if a.cleared_ms != 0 { format!("cleared {}", format_ms(a.cleared_ms)) } else { "OPEN".into() };
        println!(
            "[{}] {} {} since {} ({state})",
            a.id,
            terminal(&a.kind),
            terminal(&a.subject),
            format_ms(a.raised_ms)
        );
        println!("    {}", terminal(&a.detail));
        for k in &a.acks {
            println!("    acknowledged by {} at {}: {}", terminal(&k.user), format_ms(k.time_ms), terminal(&k.note));
        }
        if a.acks.is_empty() && a.cleared_ms == 0 {
            println!("    not acknowledged: custos alarms ack {} --note \"what was done\"", a.id);
        }
    }
    Ok(())
}

fn duty_json(d: &pb::DutyRecord) -> serde_json::Value {
    json!({
        "seq": d.seq, "kind": d.kind, "user": d.user, "time": format_ms(d.time_ms),
        "to": (!d.to.is_empty()).then_some(&d.to), "notes": d.notes, "findings": d.findings, "problems": d.problems,
        "accepted_by": (!d.accepted_by.is_empty()).then_some(&d.accepted_by),
        "accepted": (d.accepted_ms != 0).then(|| format_ms(d.accepted_ms)),
        "pending": d.kind == "handover" && d.accepted_ms == 0,
    })
}

fn print_duty_list(list: &[pb::DutyRecord], as_json: bool, what: &str) {
    if as_json {
        super::print_json(&json!(list.iter().map(duty_json).collect::<Vec<_>>()));
        return;
    }
    if list.is_empty() {
        println!("no {what} recorded");
    }
    for d in list {
        match d.kind.as_str() {
            "handover" => {
                let state = if d.accepted_ms == 0 {
                    "PENDING (not accepted)".to_string()
                } else {
                    format!("accepted {}", format_ms(d.accepted_ms))
                };
                println!(
                    "#{} {} handover {} -> {} [{state}]: {}",
                    d.seq,
                    format_ms(d.time_ms),
                    terminal(&d.user),
                    terminal(&d.to),
                    terminal(&d.notes)
                );
                for f in &d.findings {
                    println!("    {}", terminal(f));
                }
            }
            _ => {
                let notes = if d.notes.is_empty() { String::new() } else { format!(": {}", terminal(&d.notes)) };
                println!(
                    "#{} {} patrol by {}: {} checks, {} problems{notes}",
                    d.seq,
                    format_ms(d.time_ms),
                    terminal(&d.user),
                    d.findings.len(),
                    d.problems
                );
            }
        }
    }
}

pub async fn patrol(client: &Client, a: PatrolArgs, as_json: bool) -> anyhow::Result<()> {
    let notes = match a.cmd {
        Some(PatrolCmd::List { limit }) => {
            print_duty_list(&client.list_duty("patrol", limit).await?, as_json, "patrols");
            return Ok(());
        }
        Some(PatrolCmd::Run { notes }) => notes,
        None => a.notes,
    };
    let d = client.patrol(&notes).await?;
    if as_json {
        super::print_json(&duty_json(&d));
        return Ok(());
    }
    for f in &d.findings {
        println!("{}", terminal(f));
    }
    println!(
        "patrol #{} by {} recorded at {}: {} problems",
        d.seq,
        terminal(&d.user),
        format_ms(d.time_ms),
        d.problems
    );
    Ok(())
}

pub async fn shift(client: &Client, c: ShiftCmd, as_json: bool) -> anyhow::Result<()> {
    match c {
        ShiftCmd::Handover { to, notes } => {
            let d = client.handover(&to, &notes).await?;
            if as_json {
                super::print_json(&duty_json(&d));
            } else {
                println!(
                    "shift handed over from {} to {} at {} (#{}); pending until {} runs `custos shift accept {}`",
                    terminal(&d.user),
                    terminal(&d.to),
                    format_ms(d.time_ms),
                    d.seq,
                    terminal(&d.to),
                    d.seq
                );
                for f in &d.findings {
                    println!("    {}", terminal(f));
                }
            }
        }
        ShiftCmd::Accept { id, note } => {
            let d = client.accept_handover(id, &note).await?;
            if as_json {
                super::print_json(&duty_json(&d));
            } else {
                println!("handover #{} from {} accepted at {}", d.seq, terminal(&d.user), format_ms(d.accepted_ms));
            }
        }
        ShiftCmd::List { limit } => {
            let shifts = client.list_shifts().await?;
            let handovers = client.list_duty("handover", limit).await?;
            if as_json {
                super::print_json(&json!({
                    "time_zone": shifts.time_zone, "patrols_per_shift": shifts.patrols_per_shift,
                    "shifts": shifts.shifts.iter().map(|s| json!({"name": s.name, "from": s.from, "to": s.to, "defined_by": s.defined_by})).collect::<Vec<_>>(),
                    "current": (!shifts.current.is_empty()).then(|| json!({"name": shifts.current, "day": shifts.current_day, "from": format_ms(shifts.current_start_ms), "to": format_ms(shifts.current_end_ms)})),
                    "handovers": handovers.iter().map(duty_json).collect::<Vec<_>>(),
                }));
            } else {
                if shifts.shifts.is_empty() {
                    println!("no shifts defined (custos shift define NAME --from HH:MM --to HH:MM)");
                }
                for s in &shifts.shifts {
                    let now = if s.name == shifts.current { "  <- now" } else { "" };
                    println!("shift {:<12} {} to {} {}{now}", terminal(&s.name), s.from, s.to, shifts.time_zone);
                }
                println!("{} patrols required per shift", shifts.patrols_per_shift);
                print_duty_list(&handovers, false, "handovers");
            }
        }
        ShiftCmd::Define { name, from, to } => match client.define_shift(&name, &from, &to).await? {
            Some(change) => return super::pending(change, as_json),
            None => println!("shift {name} defined: {from} to {to}"),
        },
    }
    Ok(())
}

fn camera_json(c: &pb::CameraCompliance) -> serde_json::Value {
    json!({
        "camera": c.camera, "name": c.name,
        "window": {"from": format_ms(c.window_start_ms), "to": format_ms(c.window_end_ms)},
        "recorded_s": c.recorded_ms / 1000, "coverage": c.coverage, "segments": c.segments, "bytes": c.bytes,
        "gaps": c.gaps.iter().map(|g| json!({
            "from": format_ms(g.start_ms), "to": format_ms(g.end_ms), "seconds": (g.end_ms - g.start_ms) / 1000,
        })).collect::<Vec<_>>(),
        "oldest": (c.oldest_ms != 0).then(|| format_ms(c.oldest_ms)),
        "min_days": c.min_days, "max_days": c.max_days, "required_from": format_ms(c.required_from_ms),
        "meets_floor": c.meets_floor, "holds": c.holds, "deleted_segments": c.deleted_segments,
        "accesses_allowed": c.accesses_allowed, "accesses_denied": c.accesses_denied,
        "lost_segments": c.lost_segments,
    })
}

pub async fn report(client: &Client, c: ReportCmd, as_json: bool) -> anyhow::Result<()> {
    let ReportCmd::Compliance { days, csv } = c;
    let r = client.compliance_report(days).await?;
    if as_json {
        super::print_json(&json!({
            "generated": format_ms(r.generated_ms), "days": r.days, "breaking_floor": r.breaking_floor,
            "cameras": r.cameras.iter().map(camera_json).collect::<Vec<_>>(),
            "faults_overdue": r.faults_overdue,
            "shifts_short": r.shifts_short,
            "shifts": r.shifts.iter().map(|s| json!({
                "shift": s.shift, "day": s.day, "from": format_ms(s.start_ms), "to": format_ms(s.end_ms),
                "patrols": s.patrols, "required": s.required, "short": s.short,
            })).collect::<Vec<_>>(),
            "signoffs": r.signoffs.iter().map(|s| json!({
                "seq": s.seq, "from": format_ms(s.from_ms), "to": format_ms(s.to_ms), "user": s.user,
                "signed": format_ms(s.time_ms), "note": s.note,
            })).collect::<Vec<_>>(),
            "faults": r.faults.iter().map(|f| {
                let mut v = f.fault.as_ref().map(fault_json).unwrap_or_default();
                v["repair_s"] = json!(f.repair_ms / 1000);
                v["overdue"] = json!(f.overdue);
                v
            }).collect::<Vec<_>>(),
        }));
    } else if csv {
        println!("camera,coverage_pct,recorded_s,segments,gaps,longest_gap_s,gap_list,oldest,min_days,required_from,meets_floor,holds,deleted_segments,accesses_allowed,accesses_denied");
        for c in &r.cameras {
            let longest = c.gaps.iter().map(|g| g.end_ms - g.start_ms).max().unwrap_or(0);
            let list: Vec<String> =
                c.gaps.iter().map(|g| format!("{}/{}", format_ms(g.start_ms), format_ms(g.end_ms))).collect();
            let oldest = if c.oldest_ms != 0 { format_ms(c.oldest_ms) } else { String::new() };
            println!(
                "{},{:.2},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_cell(&c.camera),
                c.coverage * 100.0,
                c.recorded_ms / 1000,
                c.segments,
                c.gaps.len(),
                longest / 1000,
                csv_cell(&list.join(";")),
                oldest,
                c.min_days,
                format_ms(c.required_from_ms),
                c.meets_floor,
                csv_cell(&c.holds.join(";")),
                c.deleted_segments,
                c.accesses_allowed,
                c.accesses_denied
            );
        }
    } else {
        println!("compliance over the {} days to {}", r.days, format_ms(r.generated_ms));
        println!(
            "{:<20} {:>8} {:>5} {:>12} {:<26} {:>5} {:<6} {:>6} {:>8} {:>7}",
            "CAMERA",
            "COVERAGE",
            "GAPS",
            "LONGEST GAP",
            "OLDEST FOOTAGE",
            "FLOOR",
            "MEETS",
            "HOLDS",
            "DELETED",
            "ACCESS"
        );
        for c in &r.cameras {
            let longest = c.gaps.iter().map(|g| g.end_ms - g.start_ms).max().unwrap_or(0);
            let oldest = if c.oldest_ms != 0 { format_ms(c.oldest_ms) } else { "none".into() };
            println!(
                "{:<20} {:>7.2}% {:>5} {:>12} {:<26} {:>4}d {:<6} {:>6} {:>8} {:>7}",
                terminal(&c.camera),
                c.coverage * 100.0,
                c.gaps.len(),
                if longest > 0 { span(longest) } else { "-".into() },
                oldest,
                c.min_days,
                if c.meets_floor { "yes" } else { "NO" },
                c.holds.len(),
                c.deleted_segments,
                c.accesses_allowed + c.accesses_denied
            );
        }
        for c in r.cameras.iter().filter(|c| !c.gaps.is_empty()) {
            println!("gaps in {}:", c.camera);
            for g in &c.gaps {
                println!("    {} to {} ({})", format_ms(g.start_ms), format_ms(g.end_ms), span(g.end_ms - g.start_ms));
            }
        }
        for s in &r.shifts {
            println!(
                "shift {} {}: {} patrols of {}{}",
                terminal(&s.shift),
                s.day,
                s.patrols,
                s.required,
                if s.short { " (SHORT)" } else { "" }
            );
        }
        for s in &r.signoffs {
            println!(
                "duty log {} to {} signed off by {} at {}",
                format_ms(s.from_ms),
                format_ms(s.to_ms),
                terminal(&s.user),
                format_ms(s.time_ms)
            );
        }
        for f in &r.faults {
            let Some(x) = &f.fault else { continue };
            let state = if x.resolved_ms == 0 { "open for" } else { "repaired in" };
            println!(
                "fault {} on {}: {state} {}{}: {}",
                x.id,
                fault_subject(x),
                span(f.repair_ms),
                if f.overdue { " (OVERDUE)" } else { "" },
                terminal(&x.note)
            );
        }
        for c in r.cameras.iter().filter(|c| c.lost_segments > 0) {
            println!(
                "LOST: {} segments of {} are lost for good (custos search shows each with why)",
                c.lost_segments, c.camera
            );
        }
        for c in r.cameras.iter().filter(|c| !c.meets_floor) {
            println!(
                "FLOOR BROKEN: {} must keep footage from {} ({} days) but the oldest is {}",
                c.camera,
                format_ms(c.required_from_ms),
                c.min_days,
                if c.oldest_ms != 0 { format_ms(c.oldest_ms) } else { "none".into() }
            );
        }
    }
    if r.breaking_floor > 0 {
        anyhow::bail!("{} camera(s) do not keep footage back to their retention floor", r.breaking_floor);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(12_400), "12s");
        assert_eq!(span(245_000), "4m05s");
        assert_eq!(span(3_723_000), "1h02m03s");
        assert_eq!(span(90_000_000), "1d01h00m");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}

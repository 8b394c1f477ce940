//! `custos seal …`: the daily seals, the cluster's signed statements of what it kept
//! (auditors, approvers, administrators). `verify` works offline.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use custos_client::time::format_ms;
use custos_client::Client;
use custos_evidence::seal::{SealFile, SealStatement};
use serde_json::json;

#[derive(Subcommand)]
pub enum SealCmd {
    /// Every seal: day, period, hash, audit head.
    List,
    /// One seal (a number, or a day YYYY-MM-DD for that day's newest; default the newest);
    /// -o saves the seal file to keep or to check offline.
    Show {
        which: Option<String>,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check a seal file offline: its hash, and its signature by the hospital's published
    /// key. Without --pubkey the signer is not checked and the exit status is 1 unless
    /// --integrity-only is given.
    Verify {
        file: PathBuf,
        #[arg(long)]
        pubkey: Option<String>,
        #[arg(long, conflicts_with = "pubkey")]
        integrity_only: bool,
    },
}

/// Reads and checks a seal file; the statement and whether its signer was checked
/// against a key the caller gave.
pub fn read_verified(path: &Path, pubkey: Option<&str>) -> anyhow::Result<(SealStatement, bool)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the seal file {}", path.display()))?;
    let file: SealFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a seal file (custos seal show … -o FILE writes one)", path.display()))?;
    match file.verify(pubkey) {
        Ok(s) => Ok((s, pubkey.is_some())),
        Err(problems) => anyhow::bail!("SEAL INVALID: {}", problems.join("; ")),
    }
}

fn summary(s: &SealStatement) {
    println!(
        "seal {} of {}: {} .. {}, made by node {}",
        s.seq,
        s.day,
        format_ms(s.from_ms),
        format_ms(s.to_ms),
        s.made_by
    );
    println!("  signed by key {}", custos_evidence::export::key_fingerprint(&s.signing_key));
    println!("  audit head: entry {} ({})", s.audit_seq, &s.audit_hash[..16.min(s.audit_hash.len())]);
    println!(
        "  deletions: {} (receipts {}..{}, hash {})",
        s.deletions.count,
        s.deletions.first_receipt,
        s.deletions.last_receipt,
        &s.deletions.receipts_hash[..16.min(s.deletions.receipts_hash.len())]
    );
    println!("  previous seal: {}", &s.prev_seal[..16.min(s.prev_seal.len())]);
    println!(
        "  {:<20} {:>9} {:>8} {:>5} {:>8} {:>8}  HOLDS",
        "CAMERA", "SEGMENTS", "COVERED", "GAPS", "DELETED", "KEEP"
    );
    for c in &s.cameras {
        let span = (s.to_ms - s.from_ms).max(1);
        println!(
            "  {:<20} {:>9} {:>7.1}% {:>5} {:>8} {:>3}-{:<4}  {}",
            custos_client::text::terminal(&c.camera),
            c.segments,
            c.recorded_ms as f64 * 100.0 / span as f64,
            c.gaps.len(),
            c.deleted,
            c.min_days,
            c.max_days,
            c.holds.join(",")
        );
    }
    for h in &s.holds {
        println!("  hold {} case {} on {}", h.id, custos_client::text::terminal(&h.case_id), h.cameras.join(","));
    }
}

/// `custos seal verify`, which needs no node.
pub fn verify(file: &Path, pubkey: Option<&str>, integrity_only: bool, as_json: bool) -> anyhow::Result<()> {
    let (s, checked) = read_verified(file, pubkey)?;
    if as_json {
        super::print_json(
            &json!({"valid": true, "signer_checked": checked, "seq": s.seq, "day": s.day, "audit_seq": s.audit_seq, "statement": s}),
        );
    } else {
        summary(&s);
        if checked {
            println!("SEAL VALID: hash and signature check out under the given key");
        } else {
            println!(
                "integrity checked; SIGNER NOT CHECKED: anyone can sign a statement with a key of their own; pass \
                 --pubkey with the hospital's published key (custos export pubkey)"
            );
        }
    }
    if !checked && !integrity_only {
        std::process::exit(1);
    }
    Ok(())
}

pub async fn run(client: &Client, cmd: SealCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        SealCmd::List => {
            let v = client.list_seals().await?;
            if as_json {
                let v: Vec<_> = v
                    .iter()
                    .map(|s| json!({"seq": s.seq, "day": s.day, "from": format_ms(s.from_ms), "to": format_ms(s.to_ms), "hash": s.hash, "audit_seq": s.audit_seq, "cameras": s.cameras, "deletions": s.deletions, "key": s.key_fingerprint}))
                    .collect();
                super::print_json(&json!(v));
            } else if v.is_empty() {
                println!("no seals yet: the first is made one seal period (seal_every_s, a day) after founding");
            } else {
                println!(
                    "{:<6} {:<11} {:<26} {:<26} {:>8} {:>9} HASH",
                    "SEAL", "DAY", "FROM", "TO", "AUDIT", "DELETED"
                );
                for s in &v {
                    println!(
                        "{:<6} {:<11} {:<26} {:<26} {:>8} {:>9} {}",
                        s.seq,
                        s.day,
                        format_ms(s.from_ms),
                        format_ms(s.to_ms),
                        s.audit_seq,
                        s.deletions,
                        &s.hash[..16.min(s.hash.len())]
                    );
                }
            }
        }
        SealCmd::Show { which, output } => {
            let (seq, day) = match which.as_deref() {
                None => (0, String::new()),
                Some(w) if w.parse::<u64>().is_ok() => (w.parse().unwrap_or(0), String::new()),
                Some(w) if w.len() == 10 && w.as_bytes()[4] == b'-' => (0, w.to_string()),
                Some(w) => anyhow::bail!("{w:?} is neither a seal number nor a day (YYYY-MM-DD)"),
            };
            let r = client.get_seal(seq, &day).await?;
            if let Some(path) = &output {
                std::fs::write(path, format!("{}\n", r.file_json))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            let file: SealFile = serde_json::from_str(&r.file_json)?;
            let s: SealStatement = serde_json::from_str(&file.statement)?;
            if as_json {
                super::print_json(
                    &json!({"file": serde_json::from_str::<serde_json::Value>(&r.file_json)?, "statement": s}),
                );
            } else {
                summary(&s);
                if let Some(p) = &output {
                    println!(
                        "seal file written to {}; check it with: custos seal verify {} --pubkey KEY",
                        p.display(),
                        p.display()
                    );
                }
            }
        }
        SealCmd::Verify { file, pubkey, integrity_only } => verify(&file, pubkey.as_deref(), integrity_only, as_json)?,
    }
    Ok(())
}

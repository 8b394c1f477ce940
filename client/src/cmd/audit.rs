//! `custos audit log` and `custos audit verify` (auditors).

use clap::Subcommand;
use custos_client::text::{csv_cell, terminal};
use custos_client::time::{format_ms, now_ms, parse_time_ms};
use custos_client::{AuditEntry, AuditLogRequest, Client};
use custos_evidence::{verify_chain, AuditBody, Hash};
use serde_json::json;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Show audit entries, oldest first.
    Log {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        camera: Option<String>,
        /// search, fetch, user-add, token-revoke, camera-add, …
        #[arg(long)]
        action: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 0)]
        limit: u64,
        /// Comma-separated values with a header row.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Fetch the whole chain and recompute every link here; reports the first break. With
    /// --against-seal, also check that the chain still holds the entry a seal recorded as
    /// its head, unchanged (a log cut or rewritten after the seal fails).
    Verify {
        /// A seal file (`custos seal show … -o FILE`, or `seals/` in the backup bucket).
        #[arg(long, value_name = "FILE")]
        against_seal: Option<std::path::PathBuf>,
        /// The hospital's published signing key (hex) the seal must be signed with.
        #[arg(long, requires = "against_seal")]
        pubkey: Option<String>,
    },
    /// Deletion receipts: every segment retention removed, with its hashes and policy.
    Receipts {
        #[arg(long)]
        camera: Option<String>,
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
}

fn to_hash(b: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    if b.len() == 32 {
        h.copy_from_slice(b);
    }
    h
}

fn opt_time(ms: Option<i64>) -> String {
    ms.map(format_ms).unwrap_or_default()
}

pub async fn run(client: &Client, cmd: AuditCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Log { user, camera, action, from, to, limit, csv } => {
            let now = now_ms();
            let t = |s: Option<String>| -> anyhow::Result<i64> {
                s.map(|s| parse_time_ms(&s, now).map_err(anyhow::Error::msg)).transpose().map(|v| v.unwrap_or(0))
            };
            let filter = AuditLogRequest {
                after_seq: 0,
                user: user.unwrap_or_default(),
                camera: camera.unwrap_or_default(),
                action: action.unwrap_or_default(),
                from_ms: t(from)?,
                to_ms: t(to)?,
                limit,
            };
            let entries = client.audit_log(filter).await?;
            print_entries(&entries, as_json, csv)
        }
        AuditCmd::Receipts { camera, csv } => {
            let rs = client.receipts(camera.as_deref()).await?;
            if as_json {
                let v: Vec<_> = rs
                    .iter()
                    .map(|r| json!({
                        "seq": r.seq, "camera": r.camera, "start": format_ms(r.start_ms), "end": format_ms(r.end_ms),
                        "bytes": r.bytes, "content_blake3": hex::encode(&r.content_hash), "blob_blake3": hex::encode(&r.blob_hash),
                        "min_days": r.min_days, "max_days": r.max_days, "deleted": format_ms(r.deleted_ms),
                    }))
                    .collect();
                super::print_json(&json!(v));
            } else if csv {
                println!("seq,camera,start,end,bytes,content_blake3,blob_blake3,min_days,max_days,deleted");
                for r in &rs {
                    let f = [
                        r.seq.to_string(),
                        r.camera.clone(),
                        format_ms(r.start_ms),
                        format_ms(r.end_ms),
                        r.bytes.to_string(),
                        hex::encode(&r.content_hash),
                        hex::encode(&r.blob_hash),
                        r.min_days.to_string(),
                        r.max_days.to_string(),
                        format_ms(r.deleted_ms),
                    ];
                    println!("{}", f.iter().map(|x| csv_cell(x)).collect::<Vec<_>>().join(","));
                }
            } else if rs.is_empty() {
                println!("no footage has been deleted by retention");
            } else {
                println!(
                    "{:<6} {:<16} {:<25} {:<25} {:<9} {:<25} CONTENT BLAKE3",
                    "SEQ", "CAMERA", "START", "END", "POLICY", "DELETED"
                );
                for r in &rs {
                    let policy = format!("{}/{}d", r.min_days, r.max_days);
                    println!(
                        "{:<6} {:<16} {:<25} {:<25} {:<9} {:<25} {}",
                        r.seq,
                        r.camera,
                        format_ms(r.start_ms),
                        format_ms(r.end_ms),
                        policy,
                        format_ms(r.deleted_ms),
                        &hex::encode(&r.content_hash)[..16]
                    );
                }
            }
            Ok(())
        }
        AuditCmd::Verify { against_seal, pubkey } => {
            // Read the seal first: a bad file should not cost a download of the chain.
            let seal = match &against_seal {
                Some(path) => Some(super::seal::read_verified(path, pubkey.as_deref())?),
                None => None,
            };
            let entries = client.audit_log(AuditLogRequest::default()).await?;
            let hashes: Vec<Hash> = entries.iter().map(|e| to_hash(&e.hash)).collect();
            match verify_chain(entries.iter().zip(&hashes).map(|(e, h)| (e.body.as_slice(), h))) {
                Ok((n, head)) => {
                    if let Some((statement, signer_checked)) = &seal {
                        let chain: Vec<(u64, Hash)> = entries.iter().zip(&hashes).map(|(e, h)| (e.seq, *h)).collect();
                        if let Err(why) = custos_evidence::seal::check_chain_against(&chain, statement) {
                            if as_json {
                                super::print_json(
                                    &json!({"intact": false, "entries": n, "against_seal": statement.seq, "problem": why}),
                                );
                            }
                            anyhow::bail!("AUDIT LOG CUT OR REWRITTEN: {why}");
                        }
                        if !as_json {
                            println!(
                                "the chain holds entry {} as seal {} of {} recorded it{}",
                                statement.audit_seq,
                                statement.seq,
                                statement.day,
                                if *signer_checked { "" } else { " (SIGNER NOT CHECKED: pass --pubkey)" }
                            );
                        }
                    }
                    if as_json {
                        super::print_json(
                            &json!({"intact": true, "entries": n, "head": hex::encode(head), "against_seal": seal.as_ref().map(|s| s.0.seq)}),
                        );
                    } else {
                        println!("audit chain intact: {n} entries verified, head {}", hex::encode(head));
                    }
                    Ok(())
                }
                Err(b) => {
                    if as_json {
                        super::print_json(
                            &json!({"intact": false, "entries": entries.len(), "first_break": b.seq, "problem": b.problem}),
                        );
                    }
                    anyhow::bail!("AUDIT CHAIN BROKEN at entry {} of {}: {}", b.seq, entries.len(), b.problem)
                }
            }
        }
    }
}

fn print_entries(entries: &[AuditEntry], as_json: bool, csv: bool) -> anyhow::Result<()> {
    let bodies: Vec<Option<AuditBody>> = entries.iter().map(|e| serde_json::from_slice(&e.body).ok()).collect();
    if as_json {
        let v: Vec<serde_json::Value> = entries
            .iter()
            .zip(&bodies)
            .map(|(e, b)| {
                let mut v: serde_json::Value = serde_json::from_slice(&e.body).unwrap_or(json!({"unreadable": true}));
                v["hash"] = json!(hex::encode(&e.hash));
                if let Some(b) = b {
                    v["time"] = json!(format_ms(b.time_ms));
                }
                v
            })
            .collect();
        super::print_json(&json!(v));
        return Ok(());
    }
    if csv {
        println!(
            "seq,time,user,role,action,outcome,reason,purpose,cameras,from,to,client,detail,token,token_issued_by"
        );
    } else {
        println!(
            "{:<6} {:<25} {:<14} {:<13} {:<16} {:<15} DETAILS",
            "SEQ", "TIME", "USER", "ROLE", "ACTION", "OUTCOME"
        );
    }
    for (e, b) in entries.iter().zip(&bodies) {
        let Some(b) = b else {
            println!("{} <unreadable entry>", e.seq);
            continue;
        };
        let ev = &b.event;
        if csv {
            let fields = [
                b.seq.to_string(),
                format_ms(b.time_ms),
                ev.user.clone(),
                ev.role.clone(),
                ev.action.to_string(),
                ev.outcome.to_string(),
                ev.reason.clone(),
                ev.purpose.clone(),
                ev.cameras.join(" "),
                opt_time(ev.from_ms),
                opt_time(ev.to_ms),
                ev.client.clone(),
                ev.detail.clone(),
                ev.token_id.clone(),
                ev.token_issued_by.clone(),
            ];
            println!("{}", fields.iter().map(|f| csv_cell(f)).collect::<Vec<_>>().join(","));
        } else {
            let mut details = Vec::new();
            if !ev.cameras.is_empty() {
                details.push(format!(
                    "cameras={} {}..{}",
                    terminal(&ev.cameras.join(",")),
                    opt_time(ev.from_ms),
                    opt_time(ev.to_ms)
                ));
            }
            if !ev.purpose.is_empty() {
                details.push(format!("purpose=\"{}\"", terminal(&ev.purpose).replace('"', "\\\"")));
            }
            if !ev.detail.is_empty() {
                details.push(terminal(&ev.detail).into_owned());
            }
            if !ev.reason.is_empty() {
                details.push(format!("reason=\"{}\"", terminal(&ev.reason).replace('"', "\\\"")));
            }
            details.push(format!("from {}", terminal(&ev.client)));
            if !ev.token_id.is_empty() {
                details.push(format!("token {} issued by {}", terminal(&ev.token_id), terminal(&ev.token_issued_by)));
            }
            println!(
                "{:<6} {:<25} {:<14} {:<13} {:<16} {:<15} {}",
                b.seq,
                format_ms(b.time_ms),
                terminal(&ev.user),
                terminal(&ev.role),
                terminal(ev.action.as_str()),
                terminal(ev.outcome.as_str()),
                details.join("; ")
            );
        }
    }
    Ok(())
}

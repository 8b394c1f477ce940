//! `custos export`: evidence for police and courts, from request to offline verification.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use custos_client::text::terminal;
use custos_client::time::{format_ms, now_ms, parse_time_ms};
use custos_client::{Client, Export};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Subcommand)]
pub enum ExportCmd {
    /// Ask for an export (security staff). Repeat --camera/--from/--to for several ranges;
    /// the n-th --from and --to belong to the n-th --camera.
    Request {
        /// The case the export is for.
        #[arg(long = "case")]
        case_id: String,
        /// The requesting organisation (police station, court).
        #[arg(long = "org")]
        organisation: String,
        /// Reference of the official letter that asks for the footage.
        #[arg(long)]
        letter: String,
        /// Why the footage is exported.
        #[arg(long)]
        purpose: String,
        #[arg(long = "camera", required = true)]
        cameras: Vec<String>,
        /// Start of each range: RFC 3339, `now`, or an offset like -2h.
        #[arg(long = "from", required = true, allow_hyphen_values = true)]
        from: Vec<String>,
        #[arg(long = "to", required = true, allow_hyphen_values = true)]
        to: Vec<String>,
        /// Ask for a redacted copy of each camera's footage: its privacy zones filled in
        /// (`custos camera privacy-zone`), plus any --redact-box. The approver decides
        /// whether the originals go out too.
        #[arg(long)]
        redact: bool,
        /// A box to fill for this request only: CAMERA:x,y,w,h (fractions of the picture).
        #[arg(long = "redact-box", requires = "redact")]
        redact_boxes: Vec<String>,
    },
    /// Approve a request (an approver other than the requester).
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// For a redacted export: put the originals in the package too (by default the
        /// recipient gets the redacted copies only; the hospital keeps the originals).
        #[arg(long)]
        include_original: bool,
    },
    /// Reject a request, saying why.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Build, sign and archive the package of an approved request (security staff).
    Run { id: String },
    /// Exports you may see.
    List,
    /// One export, with its files and Merkle root.
    Show { id: String },
    /// Download a completed export into DIR (resumable: run it again after a break).
    Download {
        id: String,
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Verify a package offline: signature, every file, every segment, the Merkle root.
    /// Who signed is checked only against --pubkey; without it the command fails unless
    /// --integrity-only says that an integrity check alone is wanted.
    Verify {
        dir: PathBuf,
        /// The hospital's published signing key (hex, `custos export pubkey`).
        #[arg(long)]
        pubkey: Option<String>,
        /// Check only that the package is intact (files, segments, Merkle root, and a
        /// signature by the key the manifest names), not who made it.
        #[arg(long, conflicts_with = "pubkey")]
        integrity_only: bool,
    },
    /// Print the cluster's export signing key and its fingerprint.
    Pubkey,
    /// Write a completed export's custody receipt (receipt.pdf) again, to print and sign
    /// at the handing-over: the same file as in the package.
    Receipt {
        id: String,
        /// Where to write it (default: receipt-ID.pdf in the current directory).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

fn export_json(e: &Export) -> serde_json::Value {
    json!({
        "id": e.id, "case": e.case_id, "organisation": e.organisation, "letter": e.letter,
        "purpose": e.purpose, "requester": e.requester, "requested": format_ms(e.requested_ms),
        "ranges": e.ranges.iter().map(|r| json!({"camera": r.camera, "from": format_ms(r.from_ms), "to": format_ms(r.to_ms)})).collect::<Vec<_>>(),
        "status": e.status, "decided_by": (!e.decided_by.is_empty()).then_some(&e.decided_by),
        "decided": (e.decided_ms != 0).then(|| format_ms(e.decided_ms)), "reason": e.reason,
        "merkle_root": (!e.merkle_root.is_empty()).then_some(&e.merkle_root),
        "hold": (!e.hold_id.is_empty()).then_some(&e.hold_id),
        "completed": (e.completed_ms != 0).then(|| format_ms(e.completed_ms)),
        "files": e.files.iter().map(|f| json!({"name": f.name, "bytes": f.bytes})).collect::<Vec<_>>(),
        "redacted": e.redacted, "redact_boxes": e.redact_boxes,
        "originals": (!e.originals.is_empty()).then_some(&e.originals),
    })
}

fn print_export(e: &Export) {
    println!("export {} for case {}: {}", e.id, terminal(&e.case_id), e.status);
    println!("  for:        {} (letter {})", terminal(&e.organisation), terminal(&e.letter));
    println!("  purpose:    {}", terminal(&e.purpose));
    println!("  requested:  {} by {}", format_ms(e.requested_ms), terminal(&e.requester));
    if !e.decided_by.is_empty() {
        println!("  decided:    {} by {} {}", format_ms(e.decided_ms), terminal(&e.decided_by), terminal(&e.reason));
    }
    for r in &e.ranges {
        println!("  camera {:<16} {} to {}", r.camera, format_ms(r.from_ms), format_ms(r.to_ms));
    }
    if e.redacted {
        let boxes = if e.redact_boxes.is_empty() { "none".to_string() } else { e.redact_boxes.join("; ") };
        println!("  redacted:   the cameras' privacy zones, plus boxes {}", terminal(&boxes));
        match e.originals.as_str() {
            "" => println!("  originals:  the approver decides whether they go out too"),
            o => println!("  originals:  {o}"),
        }
    }
    if !e.merkle_root.is_empty() {
        println!("  run:        {}; archived copy held by {}", format_ms(e.completed_ms), e.hold_id);
        println!("  Merkle root {}", e.merkle_root);
        for f in &e.files {
            println!("  file {:<24} {} bytes", terminal(&f.name), f.bytes);
        }
    }
}

fn show(e: &Export, as_json: bool) {
    if as_json {
        super::print_json(&export_json(e));
    } else {
        print_export(e);
    }
}

pub async fn run(client: &Client, cmd: ExportCmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        ExportCmd::Request { case_id, organisation, letter, purpose, cameras, from, to, redact, redact_boxes } => {
            if cameras.len() != from.len() || cameras.len() != to.len() {
                bail!("give one --from and one --to for each --camera, in the same order");
            }
            let now = now_ms();
            let mut ranges = Vec::new();
            for ((c, f), t) in cameras.iter().zip(&from).zip(&to) {
                let f = parse_time_ms(f, now).map_err(anyhow::Error::msg).context("--from")?;
                let t = parse_time_ms(t, now).map_err(anyhow::Error::msg).context("--to")?;
                ranges.push((c.clone(), f, t));
            }
            let boxes = redact.then_some(redact_boxes.as_slice());
            let e = client.request_export_with(&case_id, &organisation, &letter, &purpose, &ranges, boxes).await?;
            if !as_json {
                println!("export {} requested; an approver must now run `custos export approve {}`", e.id, e.id);
            }
            show(&e, as_json);
        }
        ExportCmd::Approve { id, reason, include_original } => {
            show(&client.decide_export_with(&id, true, &reason, include_original).await?, as_json)
        }
        ExportCmd::Reject { id, reason } => show(&client.decide_export(&id, false, &reason).await?, as_json),
        ExportCmd::Run { id } => {
            let e = client.run_export(&id).await?;
            if !as_json {
                println!(
                    "export {id} built, signed and archived; download it with `custos export download {id} -o DIR`"
                );
            }
            show(&e, as_json);
        }
        ExportCmd::List => {
            let all = client.list_exports().await?;
            if as_json {
                super::print_json(&json!(all.iter().map(export_json).collect::<Vec<_>>()));
            } else {
                println!(
                    "{:<10} {:<10} {:<16} {:<12} {:<24} REQUESTED",
                    "ID", "STATUS", "CASE", "REQUESTER", "ORGANISATION"
                );
                for e in &all {
                    println!(
                        "{:<10} {:<10} {:<16} {:<12} {:<24} {}",
                        e.id,
                        e.status,
                        terminal(&e.case_id),
                        terminal(&e.requester),
                        terminal(&e.organisation),
                        format_ms(e.requested_ms)
                    );
                }
            }
        }
        ExportCmd::Show { id } => show(&client.get_export(&id).await?, as_json),
        ExportCmd::Download { id, dir } => {
            let bar = if as_json { ProgressBar::hidden() } else { ProgressBar::new(0) };
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .expect("progress template")
                    .progress_chars("=> "),
            );
            let e = client
                .download_export(&id, &dir, |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await?;
            bar.finish_and_clear();
            if as_json {
                super::print_json(&json!({"export": id, "dir": dir, "merkle_root": e.merkle_root}));
            } else {
                println!("export {id} downloaded to {} (Merkle root {})", dir.display(), e.merkle_root);
                println!(
                    "check it anywhere with: custos export verify {} --pubkey KEY (KEY: `custos export pubkey`)",
                    dir.display()
                );
            }
        }
        ExportCmd::Verify { .. } => unreachable!("verified without a connection in dispatch"),
        ExportCmd::Receipt { id, file } => {
            let e = client.get_export(&id).await?;
            let Some(f) = e.files.iter().find(|f| f.name == custos_evidence::export::RECEIPT_FILE) else {
                bail!(
                    "export {id} has no custody receipt: it is {} (a receipt is made when the export runs), or it \
                     was run by a release that made none",
                    e.status
                );
            };
            let path = file.unwrap_or_else(|| PathBuf::from(format!("receipt-{id}.pdf")));
            let mut pdf = Vec::with_capacity(f.bytes as usize);
            client.download_export_file(&id, &f.name, 0, &mut pdf, |_| {}).await?;
            std::fs::write(&path, &pdf).with_context(|| format!("writing {}", path.display()))?;
            if as_json {
                super::print_json(&json!({"export": id, "receipt": path, "bytes": pdf.len()}));
            } else {
                println!("custody receipt of export {id} written to {} ({} bytes)", path.display(), pdf.len());
            }
        }
        ExportCmd::Pubkey => {
            let k = client.signing_key().await?;
            if as_json {
                super::print_json(&json!({"public_key": k.public_key, "fingerprint": k.fingerprint}));
            } else {
                println!("{}", k.public_key);
                eprintln!("fingerprint {}", k.fingerprint);
            }
        }
    }
    Ok(())
}

/// `custos export verify`: no node, no network. Without `pubkey`, a package made and
/// signed by anyone with any key verifies, so the command says plainly that the signer
/// was not checked and fails unless `integrity_only` asks for integrity alone.
pub fn verify(dir: &Path, pubkey: Option<&str>, integrity_only: bool, as_json: bool) -> anyhow::Result<()> {
    match custos_evidence::export::verify_package(dir, pubkey) {
        Ok(v) => {
            let fingerprint = custos_evidence::export::key_fingerprint(&v.signing_key);
            if as_json {
                super::print_json(&json!({
                    "ok": v.key_checked || integrity_only, "export": v.export_id, "files": v.files,
                    "mp4_files": v.mp4s, "redacted_files": v.redacted, "receipt": v.receipt,
                    "withheld": v.withheld,
                    "segments": v.segments, "bytes": v.bytes, "merkle_root": v.merkle_root,
                    "signing_key": v.signing_key, "fingerprint": fingerprint,
                    "key_checked": v.key_checked, "signer_checked": v.key_checked,
                }));
            } else {
                println!(
                    "intact: export {}: {} files ({} MP4{}), {} segments, {} bytes; every file, every segment and the Merkle root match the signed manifest",
                    terminal(&v.export_id),
                    v.files,
                    v.mp4s,
                    if v.receipt { ", the custody receipt" } else { "" },
                    v.segments,
                    v.bytes
                );
                if v.redacted > 0 {
                    println!(
                        "{} redacted copies (privacy zones filled in; the zones are listed in the manifest)",
                        v.redacted
                    );
                }
                if !v.withheld.is_empty() {
                    println!(
                        "withheld by the approver, kept by the hospital (listed, so the segments and the Merkle root still cover them): {}",
                        terminal(&v.withheld.join(", "))
                    );
                }
                // The package is someone else's file: even its hex fields are escaped.
                println!("Merkle root {}", terminal(&v.merkle_root));
                if v.key_checked {
                    println!("OK: signed by the expected key {} (fingerprint {fingerprint})", terminal(&v.signing_key));
                } else {
                    println!(
                        "SIGNER NOT CHECKED: the manifest is signed by the key it names itself, {} (fingerprint {fingerprint}); \
                         anyone can make such a package. Compare the fingerprint with the hospital's published one, or \
                         verify with --pubkey KEY.",
                        terminal(&v.signing_key)
                    );
                }
            }
            if !v.key_checked && !integrity_only {
                bail!(
                    "the signer was NOT checked: without --pubkey this shows only that the package is intact, not \
                     that the hospital made it; pass --pubkey KEY (the hospital's published signing key, \
                     `custos export pubkey`), or --integrity-only to accept an integrity check alone"
                );
            }
            Ok(())
        }
        Err(problems) => {
            if as_json {
                super::print_json(&json!({"ok": false, "problems": problems}));
            } else {
                eprintln!("VERIFICATION FAILED for {}:", dir.display());
                for p in &problems {
                    eprintln!("  {}", terminal(p));
                }
            }
            bail!("the package in {} does not verify ({} problems)", dir.display(), problems.len())
        }
    }
}

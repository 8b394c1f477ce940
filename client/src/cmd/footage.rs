//! `custos search` and `custos fetch`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use custos_client::time::{format_ms, now_ms, parse_time_ms};
use custos_client::{Client, FetchEvent, Segment};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Args)]
pub struct Range {
    /// Camera id.
    #[arg(long)]
    pub camera: String,
    /// Start: RFC 3339, `now`, or an offset like -10m.
    #[arg(long, allow_hyphen_values = true)]
    pub from: String,
    /// End (exclusive): RFC 3339, `now`, or an offset like -1m.
    #[arg(long, allow_hyphen_values = true)]
    pub to: String,
    /// Why you are looking at this footage; recorded with the access.
    #[arg(long)]
    pub purpose: String,
}

impl Range {
    fn times(&self) -> anyhow::Result<(i64, i64)> {
        let now = now_ms();
        let from = parse_time_ms(&self.from, now).map_err(anyhow::Error::msg).context("--from")?;
        let to = parse_time_ms(&self.to, now).map_err(anyhow::Error::msg).context("--to")?;
        Ok((from, to))
    }
}

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub range: Range,
}

#[derive(Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub range: Range,
    /// File to write (MPEG-TS). Written to FILE.part and renamed when complete.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Do not show a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn segment_json(s: &Segment) -> serde_json::Value {
    json!({
        "camera": s.camera, "start": format_ms(s.start_ms), "end": format_ms(s.end_ms),
        "start_ms": s.start_ms, "end_ms": s.end_ms, "bytes": s.bytes, "blob_bytes": s.blob_bytes,
        "content_blake3": hex::encode(&s.content_hash), "blob_blake3": hex::encode(&s.blob_hash),
        "codec": s.codec, "replicas": s.replicas,
        "clock_offset_ms": s.clock_skewed.then_some(s.clock_offset_ms),
    })
}

/// The marker of a segment recorded by a skewed clock: `CLOCK+10.2s`, or empty.
pub fn clock_mark(s: &Segment) -> String {
    if !s.clock_skewed {
        return String::new();
    }
    let sign = if s.clock_offset_ms < 0 { '-' } else { '+' };
    format!("CLOCK{sign}{:.1}s", s.clock_offset_ms.unsigned_abs() as f64 / 1000.0)
}

/// Warns on stderr, naming them, about segments recorded while their recorder's clock was
/// off the cluster's median: their times are that recorder's.
fn warn_skewed(segs: &[Segment]) {
    let skewed: Vec<_> = segs.iter().filter(|s| s.clock_skewed).collect();
    if skewed.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} segments were recorded while their recorder's clock was off the cluster's median; their times \
         may be off by that much:",
        skewed.len()
    );
    for s in skewed {
        eprintln!("  {}@{} ({}): {}", s.camera, s.start_ms, format_ms(s.start_ms), clock_mark(s));
    }
}

pub async fn search(client: &Client, a: SearchArgs, as_json: bool) -> anyhow::Result<()> {
    let (from, to) = a.range.times()?;
    let r = client.search_full(&a.range.camera, from, to, &a.range.purpose).await?;
    let (segs, truncated, lost) = (r.segments, r.truncated, r.lost);
    if as_json {
        super::print_json(&json!({
            "segments": segs.iter().map(segment_json).collect::<Vec<_>>(), "truncated": truncated,
            "lost": lost.iter().map(|l| json!({"start": format_ms(l.start_ms), "end": format_ms(l.end_ms), "reason": l.reason})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "{:<26} {:<26} {:>8} {:>10} {:<6} {:<16} CLOCK",
        "START", "END", "SECONDS", "BYTES", "CODEC", "CONTENT BLAKE3"
    );
    for s in &segs {
        println!(
            "{:<26} {:<26} {:>8.2} {:>10} {:<6} {:<16} {}",
            format_ms(s.start_ms),
            format_ms(s.end_ms),
            (s.end_ms - s.start_ms) as f64 / 1000.0,
            s.bytes,
            s.codec,
            &hex::encode(&s.content_hash)[..16],
            clock_mark(s)
        );
    }
    for l in &lost {
        println!(
            "{:<26} {:<26} LOST: {}",
            format_ms(l.start_ms),
            format_ms(l.end_ms),
            custos_client::text::terminal(&l.reason)
        );
    }
    let skewed = segs.iter().filter(|s| s.clock_skewed).count();
    if skewed > 0 {
        println!(
            "{skewed} segments marked CLOCK were recorded while their recorder's clock was off the cluster's median"
        );
    }
    let secs: i64 = segs.iter().map(|s| s.end_ms - s.start_ms).sum();
    println!(
        "{} segments, {:.1} s of footage{}",
        segs.len(),
        secs as f64 / 1000.0,
        if truncated { " (more matched; narrow the range)" } else { "" }
    );
    Ok(())
}

pub async fn fetch(client: &Client, a: FetchArgs, as_json: bool) -> anyhow::Result<()> {
    let (from, to) = a.range.times()?;
    let part = a.output.with_extension("part");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&part).with_context(|| format!("cannot create {}", part.display()))?,
    );
    let bar = if a.quiet || as_json { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    let mut seen = 0u32;
    let mut total_segments = 0u32;
    let mut lost = Vec::new();
    let result = client
        .fetch(&a.range.camera, from, to, &a.range.purpose, &mut file, |ev| match ev {
            FetchEvent::Summary(s) => {
                bar.set_length(s.bytes);
                total_segments = s.segments;
            }
            FetchEvent::Segment(_) => {
                seen += 1;
                bar.set_message(format!("segment {seen}/{total_segments}"));
            }
            FetchEvent::Bytes(n) => bar.set_position(n),
            FetchEvent::Lost(l) => lost.push(l.clone()),
        })
        .await;
    bar.finish_and_clear();
    let segs = match result {
        Ok(s) => s,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&part);
            return Err(e.into());
        }
    };
    file.flush()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&part, &a.output)?;
    let bytes: u64 = segs.iter().map(|s| s.bytes).sum();
    warn_skewed(&segs);
    for l in &lost {
        eprintln!(
            "warning: LOST {} to {} of camera {} (not in the file): {}",
            format_ms(l.start_ms),
            format_ms(l.end_ms),
            custos_client::text::terminal(&l.camera),
            custos_client::text::terminal(&l.reason)
        );
    }
    if as_json {
        super::print_json(&json!({
            "output": a.output, "bytes": bytes,
            "segments": segs.iter().map(segment_json).collect::<Vec<_>>(),
            "lost": lost.iter().map(|l| json!({"start": format_ms(l.start_ms), "end": format_ms(l.end_ms), "reason": l.reason})).collect::<Vec<_>>(),
        }));
    } else {
        let (first, last) = (segs.first().map(|s| s.start_ms).unwrap_or(0), segs.last().map(|s| s.end_ms).unwrap_or(0));
        println!(
            "wrote {} ({} bytes, {} segments, {} to {}); every segment's BLAKE3 was verified",
            a.output.display(),
            bytes,
            segs.len(),
            format_ms(first),
            format_ms(last)
        );
    }
    Ok(())
}

//! E2: making an export's MP4, against copying the same file; E3: redacting footage.
//!
//! The footage: 1280×720 H.264 at 25 fps, about 4 Mbit/s (GStreamer's `snow` pattern, so
//! the encoder spends its bitrate), one MPEG-TS made once at the start.
//!
//! Custos: `export::mp4::remux` of that MPEG-TS, fed in 4-second pieces as an export
//! feeds it, into a file (demux, parse, mux with the index first, stamp).
//! Baseline, same bytes, same run: `std::fs::copy` of the MPEG-TS file (what a plain
//! copy of the original costs).
//!
//! Rounds alternate; the median of the per-round ratios (copy time ÷ remux time) is
//! printed.
//!
//! E3: `export::redact::redact` of the same footage with two privacy zones (decode, fill,
//! encode H.264 with x264 at `ultrafast`, mux): frames per second per core, from the
//! process's CPU time (every thread) over the run, against real time at 25 fps (target
//! ≥ 4× real time on one core).
//!
//! `cargo bench --bench evidence` (add `-- --smoke` for a quick run).

use std::time::Instant;

mod common;
mod report;

use common::median;
use custos_node::export::mp4;

/// An MPEG-TS of `frames` frames of 720p H.264 at 4 Mbit/s of a test pattern.
fn footage(pattern: &str, frames: u32) -> Vec<u8> {
    common::footage_ts(pattern, 1280, 720, 4000, frames)
}

/// Seconds to remux `pieces` into `out`.
fn remux(pieces: &[Vec<u8>], dir: &std::path::Path, out: &std::path::Path) -> (f64, u64) {
    use std::io::Write;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let owned = pieces.to_vec();
    let t = Instant::now();
    let feeder = std::thread::spawn(move || {
        for p in owned {
            tx.blocking_send(Ok(p)).unwrap();
        }
    });
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut n = 0u64;
    mp4::remux(rx, 1_780_000_000_000, &dir.join("scratch"), |b| {
        n += b.len() as u64;
        f.write_all(b).is_ok()
    })
    .unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
    feeder.join().unwrap();
    (t.elapsed().as_secs_f64(), n)
}

/// CPU seconds (user + system, every thread) this process has used.
fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let (seconds, rounds) = if common::smoke() { (4, 1) } else { (120, 5) };
    let dir = tempfile::tempdir_in(std::env::var_os("CUSTOS_BENCH_DIR").unwrap_or_else(|| "target".into())).unwrap();
    let t = Instant::now();
    let ts = footage("snow", seconds * 25);
    println!("footage: {seconds} s of 720p H.264, {} bytes, encoded in {:.1} s", ts.len(), t.elapsed().as_secs_f64());
    // 4-second pieces, on packet boundaries, as segments arrive.
    let piece = (ts.len() / seconds as usize * 4).div_ceil(188) * 188;
    let pieces: Vec<Vec<u8>> = ts.chunks(piece).map(<[u8]>::to_vec).collect();
    let src = dir.path().join("original.ts");
    std::fs::write(&src, &ts).unwrap();
    let mb = ts.len() as f64 / 1e6;
    let mut ratios = Vec::new();
    let mut mp4_bytes = 0;
    for round in 0..rounds {
        let dst = dir.path().join("copy.ts");
        let t = Instant::now();
        std::fs::copy(&src, &dst).unwrap();
        std::fs::File::open(&dst).unwrap().sync_all().unwrap();
        let copy = t.elapsed().as_secs_f64();
        let (r, n) = remux(&pieces, dir.path(), &dir.path().join("out.mp4"));
        mp4_bytes = n;
        println!("round {round}: copy {:.0} MB/s, MP4 remux {:.0} MB/s, ratio {:.2}", mb / copy, mb / r, copy / r);
        ratios.push(copy / r);
    }
    let ratio = median(ratios);
    let realtime = {
        let (r, _) = remux(&pieces, dir.path(), &dir.path().join("out.mp4"));
        seconds as f64 / r
    };
    println!(
        "E2 MP4 remux of {seconds} s of 720p H.264 ({:.1} MB → {:.1} MB): median speed ratio remux/copy {ratio:.3}, \
         {realtime:.0}× real time",
        mb,
        mp4_bytes as f64 / 1e6
    );
    // E3: redaction, of the worst footage (the first part of the same noise) and of a
    // scene with steady motion on a still background (scrolling colour bars).
    let redact_s = if common::smoke() { 4 } else { 40 };
    let worst: Vec<Vec<u8>> = pieces.iter().take(redact_s / 4).cloned().collect();
    let bars = footage("smpte horizontal-speed=2", redact_s as u32 * 25);
    let calm: Vec<Vec<u8>> = bars.chunks(piece).map(<[u8]>::to_vec).collect();
    let zones = [
        custos_node::export::redact::Zone::rect(0.1, 0.2, 0.3, 0.5),
        custos_node::export::redact::Zone::parse("0.6,0.1 0.9,0.2 0.8,0.7").unwrap(),
    ];
    let redact_rate = |pieces: Vec<Vec<u8>>, what: &str| {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let feeder = std::thread::spawn(move || pieces.into_iter().for_each(|p| tx.blocking_send(Ok(p)).unwrap()));
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let frames =
            custos_node::export::redact::redact(rx, &zones, 1_780_000_000_000, &dir.path().join("r"), |_| true)
                .unwrap();
        let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
        feeder.join().unwrap();
        let per_core = frames as f64 / cpu;
        println!(
            "E3 redaction of {frames} frames of 720p {what}: {wall:.1} s wall, {cpu:.1} s CPU: {per_core:.0} frames/s \
             per core, {:.1}× real time at 25 fps per core",
            per_core / 25.0
        );
        (frames, per_core / 25.0)
    };
    let (frames, worst_x) = redact_rate(worst, "noise");
    let (_, calm_x) = redact_rate(calm, "moving bars");
    report::result(
        "E3",
        "export redaction speed, 720p H.264, per core ÷ real time (25 fps): full-frame noise; moving bars",
        &format!("{worst_x:.1}×; {calm_x:.1}×"),
        "≥ 4×",
        Some(worst_x >= 4.0),
        &format!(
            "{frames} frames each, 2 zones, decode + fill + x264 ultrafast + mp4mux; CPU time of every thread; the \
             target is judged on the noise"
        ),
    );
    report::result(
        "E2",
        "export MP4 remux speed ÷ plain file copy",
        &format!("{ratio:.3} ({realtime:.0}× real time)"),
        "-",
        None,
        &format!("{seconds} s of 720p H.264 at 4 Mbit/s, {rounds} rounds; copy = std::fs::copy + fsync"),
    );
}

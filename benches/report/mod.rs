//! The one line per figure that `ops/bench.sh` gathers into the table at the top of
//! `docs/benchmarks.md`. Everything else a benchmark prints is for the reader.

/// Prints a tab-separated `RESULT` line: the row's id (P1…P8 or a scale measure), what
/// was measured, the figure, the target, whether it was met (`None` for measures
/// without a target) and a short note on how it was obtained.
pub fn result(id: &str, measure: &str, figure: &str, target: &str, met: Option<bool>, note: &str) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "-",
    };
    for field in [id, measure, figure, target, note] {
        assert!(!field.contains(['\t', '\n']), "a result field holds a tab or newline: {field:?}");
    }
    println!("RESULT\t{id}\t{measure}\t{figure}\t{target}\t{verdict}\t{note}");
}

/// Writes one curve a benchmark measured to `<dir>/<name>.tsv`, for `ops/plot.py`: a
/// `# measured …` line (the date and commit, from `CUSTOS_BENCH_STAMP` as `ops/bench.sh`
/// sets it, else from `date` and `git`), then a header row and one row per point, all
/// tab-separated. The directory is `CUSTOS_BENCH_SERIES`, else `target/bench/series`, or
/// `target/bench/smoke/series` for a `--smoke` pass (so a quick check never replaces a
/// measured curve).
#[allow(dead_code)] // not every benchmark draws a curve
pub fn series(name: &str, header: &[&str], rows: &[Vec<f64>]) {
    let smoke = std::env::args().any(|a| a == "--smoke") || std::env::var_os("CUSTOS_BENCH_SMOKE").is_some();
    let dir = match std::env::var_os("CUSTOS_BENCH_SERIES") {
        Some(d) => std::path::PathBuf::from(d),
        None if smoke => "target/bench/smoke/series".into(),
        None => "target/bench/series".into(),
    };
    let stamp = std::env::var("CUSTOS_BENCH_STAMP").unwrap_or_else(|_| {
        let out = |cmd: &str, args: &[&str]| {
            std::process::Command::new(cmd)
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        format!("{} at {}", out("date", &["+%F"]), out("git", &["rev-parse", "--short", "HEAD"]))
    });
    let mut text = format!("# measured {stamp}\n{}\n", header.join("\t"));
    for row in rows {
        assert_eq!(row.len(), header.len(), "a row of series {name} does not match its header");
        // Four decimals at most: 0.0609, 132338, 2.5.
        let cells: Vec<String> =
            row.iter().map(|v| format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.tsv"));
    std::fs::write(&path, text).unwrap();
    println!("series {name}: {} points in {}", rows.len(), path.display());
}

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

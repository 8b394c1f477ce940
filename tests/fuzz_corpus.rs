//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) and every crash they
//! found and we fixed (`fuzz/regressions/<target>/`) through the same property checks
//! the fuzz targets run, on the stable toolchain, so CI holds the ground fuzzing won.
//! `ops/fuzz.sh` grows the corpus.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{target}: input {} breaks a property", e.path().display());
            n += 1;
        }
    }
    assert!(n > 0, "{target}: no corpus under fuzz/corpus/{target}");
    println!("{target}: {n} inputs replayed");
}

#[test]
fn fields_corpus() {
    replay("fields", custos_formats::fuzzing::fields);
}

#[test]
fn ts_demux_corpus() {
    replay("ts_demux", custos_formats::fuzzing::ts_demux);
}

#[test]
fn ts_roundtrip_corpus() {
    replay("ts_roundtrip", custos_formats::fuzzing::ts_roundtrip);
}

#[test]
fn manifest_corpus() {
    replay("manifest", custos_evidence::fuzzing::manifest);
}

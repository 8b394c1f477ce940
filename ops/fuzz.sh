#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and keeps what the fuzzer learns.
#
#   ops/fuzz.sh               # 10 minutes per target
#   ops/fuzz.sh 3600 manifest # one hour on one target
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Inputs that
# grow coverage are kept in fuzz/corpus/<target>/ (commit them: CI replays every one
# through tests/fuzz_corpus.rs on stable); a crash is saved in fuzz/artifacts/<target>/
# and the run stops with the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fields ts_demux ts_roundtrip manifest)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s"
    # -O: optimised; -a: keep debug assertions and overflow checks, which find bugs.
    cargo +nightly fuzz run -O -a "$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 |
        grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)|panicked|SUMMARY|artifact_prefix|Test unit written" || true
    test "${PIPESTATUS[0]}" -eq 0 || { echo "fuzz target $t failed: replay with cargo +nightly fuzz run $t fuzz/artifacts/$t/<file>"; exit 1; }
    echo "corpus: $(ls "corpus/$t" | wc -l) inputs"
done

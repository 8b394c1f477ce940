#!/usr/bin/env bash
# Installs what is needed (ops/setup.sh) and runs the whole test suite: unit tests and
# black-box tests against real custos-node processes and a real RTSP camera; then, when
# no test filter is given, a smoke pass of every benchmark (ops/bench.sh --smoke).
# Formatting and clippy (warnings are errors) are checked first.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo nextest run --locked --workspace --no-fail-fast "$@"
# The benchmarks still run: a smoke pass of every part of ops/bench.sh (each cargo
# benchmark, the baselines, the cluster and camera parts, the plots) on the test build.
# Nothing here is timed or compared; the figures come from a full ops/bench.sh run
# (docs/benchmarks.md). The smoke pass writes under target/bench/ only.
if [ $# -eq 0 ]; then
  ops/bench.sh --smoke > target/bench-smoke.log 2>&1 ||
    { tail -n 60 target/bench-smoke.log; echo "ops/bench.sh --smoke failed (log: target/bench-smoke.log)" >&2; exit 1; }
  echo "benchmarks: every smoke pass ran ($(grep -c '^RESULT' target/bench-smoke.log || true) rows; log: target/bench-smoke.log)"
fi

#!/usr/bin/env bash
# Installs what is needed (ops/setup.sh) and runs the whole test suite: unit tests and
# black-box tests against real custos-node processes and a real RTSP camera; then, when
# no test filter is given, a smoke pass of every cargo benchmark. Formatting and clippy
# (warnings are errors) are checked first.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo nextest run --locked --workspace --no-fail-fast "$@"
# The benchmarks still build and run: one short pass of each in the test profile. Nothing
# here is timed or compared; the figures come from ops/bench.sh (docs/benchmarks.md).
if [ $# -eq 0 ]; then
  for b in seal_store_commit cluster export backup scrub catalog_scale console evidence; do
    cargo bench --locked --profile dev --bench "$b" -- --smoke > "target/bench-smoke-$b.log" 2>&1 ||
      { cat "target/bench-smoke-$b.log"; echo "benchmark $b failed its smoke pass" >&2; exit 1; }
  done
  echo "benchmarks: every smoke pass ran"
fi

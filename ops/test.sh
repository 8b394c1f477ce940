#!/usr/bin/env bash
# Installs what is needed (ops/setup.sh) and runs the whole test suite: unit tests and
# black-box tests against real custos-node processes and a real RTSP camera.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
cargo fmt --all -- --check
cargo nextest run --locked --workspace --no-fail-fast "$@"

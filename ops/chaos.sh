#!/usr/bin/env bash
# Runs N randomised fault schedules (default 10) over a three-node cluster and prints
# one line per schedule plus the totals. Each schedule prints its seed; replay one with
#   CUSTOS_CHAOS_SEED=S ops/chaos.sh 1
# Figures go in docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10}"
ops/setup.sh > /dev/null
seed="${CUSTOS_CHAOS_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
CUSTOS_CHAOS_SEED="$seed" CUSTOS_CHAOS_SCHEDULES="$n" cargo nextest run --locked --test chaos --no-capture 2>&1 \
  | grep -E '^chaos|PASS|FAIL|panicked'

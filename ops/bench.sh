#!/usr/bin/env bash
# Runs the benchmarks (release build) and prints their figures. Benchmarks print ratios
# against a baseline measured in the same run; copy the figures to docs/benchmarks.md.
#
#   ops/bench.sh            full runs
#   ops/bench.sh --smoke    a quick pass that only checks the benchmarks still run
set -euo pipefail
cd "$(dirname "$0")/.."
smoke="${1:-}"
ops/setup.sh --release

echo "== P1: seal + store + commit vs raw BLAKE3 + ChaCha20-Poly1305 + write + fsync"
cargo bench --locked --bench seal_store_commit -- $smoke

echo "== E1: export run (read, decrypt, verify, hash, sign, archive) vs raw ChaCha20-Poly1305 + BLAKE3; P5 playback first byte"
cargo bench --locked --bench export -- $smoke

echo "== B1: backup to loopback S3 (custos worker) vs restic backup of the same blobs to the same server"
cargo bench --locked --bench backup -- $smoke

echo "== P7: scrub pass vs raw read + BLAKE3 of the same blobs; bit flips caught"
cargo bench --locked --bench scrub -- $smoke

echo "== Catalog scale: commit rate, bytes per record and search latency at 1 M and 10 M records"
cargo bench --locked --bench catalog_scale -- $smoke

echo "== C1-C3: 3-node cluster commits, commit latency vs fsync, RF=2 ingest vs 1 node"
cargo bench --locked --bench cluster -- $smoke

echo "== C4: recorder failover gap (real processes; the cluster test prints it)"
runs=5
[ "$smoke" = "--smoke" ] && runs=1
for _ in $(seq 1 "$runs"); do
  cargo nextest run --locked --test cluster --no-capture killed_recorder_fails_over_within_bound 2>&1 | grep 'failover gap'
done

echo "== Memory per recorded camera: one node recording 4, then 16 RTSP cameras (one shared H.264 test stream at 1 and at 4 Mbit/s)"
secs=60
[ "$smoke" = "--smoke" ] && secs=10
dir="$(mktemp -d)"
trap 'kill -INT "${pid:-0}" 2>/dev/null || true; kill "${cam_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
for kbps in 1000 4000; do
  # One camera process (noise, so the encoder really spends its bitrate); its RTSP server
  # shares one encoder among every session, so the node pulls N independent streams
  # while the encoder's CPU stays that of one camera.
  target/release/custos-test-camera --port 0 --path /cam --width 1280 --height 720 --bitrate-kbps "$kbps" --keyint 50 --pattern snow > "$dir/camera$kbps.out" &
  cam_pid=$!
  for _ in $(seq 1 100); do grep -q '^ready ' "$dir/camera$kbps.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^ready //p' "$dir/camera$kbps.out")
  declare -A peak
  for n in 4 16; do
    cams=()
    for i in $(seq 1 "$n"); do cams+=(--camera "cam$i=$url"); done
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    data="$dir/node$kbps-$n"
    target/release/custos-node init --data "$data" --listen "127.0.0.1:$port" --metrics-listen off --segment-target-ms 4000 "${cams[@]}" --json > "$data.json"
    RUST_LOG=warn target/release/custos-node run --data "$data" 2> "$data.log" &
    pid=$!
    sleep "$secs"
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$data.json")
    segs=$(CUSTOS_ADDR="127.0.0.1:$port" CUSTOS_CA="$data/keys/ca.pem" CUSTOS_TOKEN="$token" target/release/custos status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"])')
    kill -INT "$pid"; wait "$pid" || true
    peak[$n]=$hwm
    echo "  ${kbps} kbit/s, $n cameras for ${secs} s: ${segs} segments committed, peak RSS $((hwm / 1024)) MiB, RSS at end $((rss / 1024)) MiB"
  done
  kill "$cam_pid"; wait "$cam_pid" 2>/dev/null || true
  echo "  ${kbps} kbit/s: memory per recorded camera (peak RSS, 16 cameras minus 4, over 12): $(( (peak[16] - peak[4]) / 12 )) KiB"
done

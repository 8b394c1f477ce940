#!/usr/bin/env bash
# Installs what is needed, builds in release mode, and runs a Custos node recording three
# test-pattern cameras and one real RTSP camera (custos-test-camera). Prints the client
# commands to try. Ctrl-C stops everything cleanly; run it again to continue recording
# into the same data directory.
#
#   ops/demo.sh [DATA_DIR]       (default ./demo-data)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-./demo-data}"
port="${CUSTOS_DEMO_PORT:-7400}"
rtsp_port="${CUSTOS_DEMO_RTSP_PORT:-8554}"

ops/setup.sh --release
bin="$PWD/target/release"

if [ ! -f "$data/custos.toml" ]; then
  "$bin/custos-node" init --data "$data" --listen "127.0.0.1:$port" \
    --camera lobby=test://ball --camera pharmacy=test://smpte --camera ward-3=test://snow \
    --camera entrance="rtsp://127.0.0.1:$rtsp_port/stream" --json > "$data.init.json.tmp"
  # The demo keeps the admin token in a file so its commands can be pasted; a real
  # deployment stores it in the operator's password safe instead.
  ( umask 077; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$data.init.json.tmp" > "$data/demo-admin.token" )
  rm -f "$data.init.json.tmp"
  echo "demo: initialised a node in $data"
fi
data="$(cd "$data" && pwd)"

# Own sessions: a terminal's Ctrl-C reaches only this script, which stops the node once.
setsid "$bin/custos-test-camera" --port "$rtsp_port" --path /stream --pattern pinwheel > /dev/null &
camera_pid=$!
setsid "$bin/custos-node" run --data "$data" &
node_pid=$!

stop() {
  trap - INT TERM
  echo
  echo "demo: stopping the node (it commits its last segments) and the RTSP camera"
  kill -INT "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  kill "$camera_pid" 2>/dev/null || true
  wait "$camera_pid" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

admin_token="$(cat "$data/demo-admin.token")"
export CUSTOS_ADDR="127.0.0.1:$port" CUSTOS_CA="$data/keys/ca.pem"
for _ in $(seq 1 100); do
  CUSTOS_TOKEN="$admin_token" "$bin/custos" status > /dev/null 2>&1 && break
  sleep 0.2
done
# Footage is for security staff and the audit log for auditors; administrators see neither.
for who in security auditor; do
  if [ ! -f "$data/demo-$who.token" ]; then
    ( umask 077; CUSTOS_TOKEN="$admin_token" \
        "$bin/custos" user add "demo-$who" --role "$who" | tail -n 1 > "$data/demo-$who.token" )
  fi
done

cat <<EOT

================================================================================
 Custos is recording 4 cameras into $data
 In another terminal, try:

   export CUSTOS_ADDR=127.0.0.1:$port CUSTOS_CA=$data/keys/ca.pem   # TLS, verified against the cluster CA
   # as security staff: footage, always with a purpose
   export CUSTOS_TOKEN=\$(cat $data/demo-security.token)
   $bin/custos camera list
   $bin/custos status
   $bin/custos search --camera lobby --from -2m --to now --purpose "demo: look around the lobby"
   $bin/custos fetch --camera entrance --from -1m --to now --purpose "demo: export a clip" -o entrance.ts
   gst-play-1.0 entrance.ts        # or: vlc entrance.ts / ffplay entrance.ts

   # as an auditor: who looked at what, and is the log intact
   CUSTOS_TOKEN=\$(cat $data/demo-auditor.token) $bin/custos audit log
   CUSTOS_TOKEN=\$(cat $data/demo-auditor.token) $bin/custos audit verify

   # as the administrator: cameras and users
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos camera add garage --source test://checkers-8 --name "Car park"
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos user list

 Press Ctrl-C here to stop.
================================================================================

EOT
wait "$node_pid"

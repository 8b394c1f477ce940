#!/usr/bin/env bash
# Installs what is needed, builds in release mode, and runs a three-campus Custos cluster
# on loopback: node 1 (campus east), node 2 (west) and node 3 (north), recording three
# test-pattern cameras and one real RTSP camera (custos-test-camera) spread over the
# nodes, every segment kept on two campuses, backed up to an S3 server on loopback
# (custos-test-s3). Prints the client commands to try. Ctrl-C
# stops everything cleanly; run it again to continue recording into the same data.
#
#   ops/demo.sh [DATA_DIR]       (default ./demo-data)
#   CUSTOS_DEMO_PROFILE=debug ops/demo.sh   uses the debug build the tests use (no release build)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-./demo-data}"
port="${CUSTOS_DEMO_PORT:-7400}"
rtsp_port="${CUSTOS_DEMO_RTSP_PORT:-8554}"
s3_port="${CUSTOS_DEMO_S3_PORT:-7480}"
campuses=(east west north)

if [ "${CUSTOS_DEMO_PROFILE:-release}" = debug ]; then
  ops/setup.sh
  bin="$PWD/target/debug"
else
  ops/setup.sh --release
  bin="$PWD/target/release"
fi
mkdir -p "$data"
data="$(cd "$data" && pwd)"
addr() { echo "127.0.0.1:$((port + $1 - 1))"; }
# Prometheus endpoints: 9464, 9465, 9466 (override the first with CUSTOS_DEMO_METRICS_PORT).
metrics_port="${CUSTOS_DEMO_METRICS_PORT:-9464}"
metrics() { echo "127.0.0.1:$((metrics_port + $1 - 1))"; }
# Web consoles: https://127.0.0.1:8443/, 8444, 8445 (override the first with CUSTOS_DEMO_WEB_PORT).
web_port="${CUSTOS_DEMO_WEB_PORT:-8443}"
web() { echo "127.0.0.1:$((web_port + $1 - 1))"; }

if [ ! -f "$data/n1/custos.toml" ]; then
  # --allow-test-sources: the demo records test patterns; a deployed node accepts only rtsp:// cameras.
  "$bin/custos-node" init --data "$data/n1" --campus east --listen "$(addr 1)" --metrics-listen "$(metrics 1)" --web-listen "$(web 1)" \
    --allow-test-sources --camera lobby=test://ball --camera entrance="rtsp://127.0.0.1:$rtsp_port/stream" --json > "$data/init.json.tmp"
  # The demo keeps the admin's and the founding approver's tokens in files so its
  # commands can be pasted; a real deployment gives each to its own person.
  ( umask 077; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$data/init.json.tmp" > "$data/demo-admin.token" )
  ( umask 077; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["approver_token"])' "$data/init.json.tmp" > "$data/demo-approver.token" )
  rm -f "$data/init.json.tmp"
  echo "demo: founded the cluster with node 1 (campus east) in $data/n1"
fi
admin_token="$(cat "$data/demo-admin.token")"
approver_token="$(cat "$data/demo-approver.token")"
# Four eyes: what an administrator asks that touches a root of trust (a node joining, a
# user who may view footage) waits as a change until an approver accepts it. The demo's
# approver accepts the demo's own changes; the second field printed is a token if the
# change issued one.
approve() {
  CUSTOS_ADDR="$(addr 1)" CUSTOS_TOKEN="$approver_token" "$bin/custos" --json change approve "$1" --note "demo setup" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], (d.get("token") or {}).get("token", ""))'
}
export CUSTOS_CA="$data/n1/keys/ca.pem"

# Own sessions: a terminal's Ctrl-C reaches only this script, which stops each node once.
pids=()
setsid "$bin/custos-test-camera" --port "$rtsp_port" --path /stream --pattern pinwheel > /dev/null &
camera_pid=$!
# The backup bucket: a real S3 server on a directory, with demo credentials.
export AWS_ACCESS_KEY_ID=custos-demo AWS_SECRET_ACCESS_KEY=custos-demo-secret
mkdir -p "$data/s3/footage"
setsid "$bin/custos-test-s3" --root "$data/s3" --port "$s3_port" \
  --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" > /dev/null 2> "$data/s3.log" &
s3_pid=$!
with_backup() {
  grep -q '^\[backup\]' "$data/n$1/custos.toml" || printf '\n[backup]\nendpoint = "http://127.0.0.1:%s"\nbucket = "footage"\nprefix = "demo"\nallow_http = true\nsnapshot_every_s = 60\npack_max_wait_s = 20\n' "$s3_port" >> "$data/n$1/custos.toml"
}
stop() {
  trap - INT TERM
  echo
  echo "demo: stopping the nodes (each commits its last segments) and the RTSP camera"
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  kill "$camera_pid" "$s3_pid" 2>/dev/null || true
  wait "$camera_pid" "$s3_pid" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

# Data from before nodes refused test sources by default: say that this demo allows them.
allow_test_sources() {
  grep -q '^allow_test_sources' "$data/n$1/custos.toml" || sed -i '1a allow_test_sources = true' "$data/n$1/custos.toml"
  # The name export receipts print.
  sed -i 's/^hospital = ""$/hospital = "Custos Demo Hospital"/' "$data/n$1/custos.toml"
  grep -q '^hospital' "$data/n$1/custos.toml" || sed -i '1a hospital = "Custos Demo Hospital"' "$data/n$1/custos.toml"
}

start_node() {
  allow_test_sources "$1"
  with_backup "$1"
  setsid "$bin/custos-node" run --data "$data/n$1" 2> "$data/n$1.log" &
  pids+=($!)
  for _ in $(seq 1 150); do
    CUSTOS_ADDR="$(addr "$1")" CUSTOS_TOKEN="$admin_token" "$bin/custos" status > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "demo: node $1 did not come up; see $data/n$1.log" >&2
  stop
}

demo_started=$(date +%s)
start_node 1
for n in 2 3; do
  if [ ! -f "$data/n$n/custos.toml" ]; then
    asked="$(CUSTOS_ADDR="$(addr 1)" CUSTOS_TOKEN="$admin_token" "$bin/custos" --json node join-token)"
    token="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<< "$asked")"
    change="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("change_id", ""))' <<< "$asked")"
    [ -z "$change" ] || approve "$change" > /dev/null
    "$bin/custos-node" join --data "$data/n$n" --campus "${campuses[$((n - 1))]}" --listen "$(addr "$n")" \
      --metrics-listen "$(metrics "$n")" --web-listen "$(web "$n")" --allow-test-sources \
      --cluster "$(addr 1)" --token "$token" > /dev/null
    echo "demo: node $n joined (campus ${campuses[$((n - 1))]})"
  fi
  start_node "$n"
done

# Spread cameras: a camera is recorded by the node whose API registered it.
export CUSTOS_TOKEN="$admin_token"
cams="$(CUSTOS_ADDR="$(addr 1)" "$bin/custos" camera list)"
grep -q '^pharmacy ' <<< "$cams" || CUSTOS_ADDR="$(addr 2)" "$bin/custos" camera add pharmacy --source test://smpte --name "Pharmacy" > /dev/null
grep -q '^ward-3 ' <<< "$cams" || CUSTOS_ADDR="$(addr 3)" "$bin/custos" camera add ward-3 --source test://snow --name "Ward 3" > /dev/null
# The RTSP camera gets a hot standby on another campus: if its recorder dies, the standby
# takes over from the pictures it held, losing under a second. (Retried while the new
# nodes' format is being adopted.)
for try in $(seq 1 20); do
  if why="$(CUSTOS_ADDR="$(addr 1)" "$bin/custos" camera standby entrance 2>&1 > /dev/null)"; then break; fi
  if ! grep -q "needs format" <<< "$why" || [ "$try" = 20 ]; then
    echo "demo: entrance gets no standby: $why" >&2
    break
  fi
  sleep 1
done
# Footage is for security staff and the audit log for auditors; administrators see neither.
# The approver is the founding one (init made it); security and operators wait for it.
for who in security auditor operator; do
  if [ ! -f "$data/demo-$who.token" ]; then
    asked="$(CUSTOS_ADDR="$(addr 1)" "$bin/custos" --json user add "demo-$who" --role "$who")"
    change="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("change_id", ""))' <<< "$asked")"
    if [ -n "$change" ]; then
      token="$(approve "$change" | cut -d' ' -f2)"
    else
      token="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<< "$asked")"
    fi
    ( umask 077; echo "$token" > "$data/demo-$who.token" )
  fi
done
unset CUSTOS_TOKEN
# Web console passwords for the demo's people, set with each one's enrolment code (their
# token) on node 1's console; a second run finds them set and leaves them.
demo_password="custos demo password"
console_enrol() {
  curl -s --cacert "$data/n1/keys/ca.pem" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"code\":\"$2\",\"password\":\"$demo_password\"}" \
    "https://$(web 1)/api/enrol" > /dev/null || true
}
if grep -q '^web_listen' "$data/n1/custos.toml"; then
  console_enrol approver "$approver_token"
  for who in security auditor operator; do console_enrol "demo-$who" "$(cat "$data/demo-$who.token")"; done
fi

# The commands below export the lobby from 60 to 30 s ago, recorded since node 1 started:
# wait until then, so they work when pasted at once.
while [ $(($(date +%s) - demo_started)) -lt 72 ]; do
  [ -n "${said_wait:-}" ] || { echo "demo: waiting until the cameras have recorded a minute, so every command below finds footage"; said_wait=1; }
  sleep 1
done

cat <<EOT

================================================================================
 Custos: a three-campus cluster recording 4 cameras into $data
   node 1 east  $(addr 1)    node 2 west  $(addr 2)    node 3 north  $(addr 3)
 In another terminal, try (any node's address works for every command):

   export CUSTOS_ADDR=$(addr 2) CUSTOS_CA=$data/n1/keys/ca.pem   # TLS, verified against the cluster CA
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos nodes
   # as security staff: footage, always with a purpose
   export CUSTOS_TOKEN=\$(cat $data/demo-security.token)
   $bin/custos camera list
   $bin/custos status
   $bin/custos search --camera lobby --from -2m --to now --purpose "demo: look around the lobby"
   $bin/custos fetch --camera entrance --from -1m --to now --purpose "demo: export a clip" -o entrance.ts
   gst-play-1.0 entrance.ts        # or: vlc entrance.ts / ffplay entrance.ts

   # an export for the police: requested by security, approved by a second person, verified offline
   $bin/custos export request --case demo-1 --org "City Police Station 3" --letter L-2026-1 \
       --purpose "demo: evidence for case demo-1" --camera lobby --from -60s --to -30s
   CUSTOS_TOKEN=\$(cat $data/demo-approver.token) $bin/custos export approve E-000001
   $bin/custos export run E-000001 && $bin/custos export download E-000001 -o demo-export
   $bin/custos export verify demo-export --pubkey \$($bin/custos export pubkey 2>/dev/null)
   ls demo-export          # lobby.ts is the original, lobby.mp4 plays in stock players, receipt.pdf is to print and sign

   # a redacted copy: the right half of the lobby filled in; the approver keeps the original back
   $bin/custos export request --case demo-1 --org "City Police Station 3" --letter L-2026-1 \
       --purpose "demo: evidence without bystanders" --camera lobby --from -60s --to -30s --redact --redact-box lobby:0.5,0,0.5,1
   CUSTOS_TOKEN=\$(cat $data/demo-approver.token) $bin/custos export approve E-000002
   $bin/custos export run E-000002 && $bin/custos export download E-000002 -o demo-redacted
   ls demo-redacted        # lobby-redacted.mp4 and the receipt only: the original stays in the hospital

   # four eyes: an administrator alone cannot open footage, keys or deletion; an approver decides
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos user grant demo-security --camera ward-3   # pending change N
   export CUSTOS_TOKEN=\$(cat $data/demo-approver.token)    # leadership: decides, never views footage
   $bin/custos change list --all
   $bin/custos change approve \$($bin/custos --json change list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["change_id"])')
   export CUSTOS_TOKEN=\$(cat $data/demo-security.token)

   # backup: what the bucket holds ($data/s3/footage/demo), and read it back
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos backup status     # ask the leader
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos backup verify --full
   # lose everything but the bucket: rebuild from it and the recovery key (docs/backup.md)
   AWS_ACCESS_KEY_ID=custos-demo AWS_SECRET_ACCESS_KEY=custos-demo-secret $bin/custos-node restore \
       --from s3://footage/demo --endpoint http://127.0.0.1:$s3_port --allow-http \
       --recovery-identity $data/n1/keys/RECOVERY-move-offline.age --data $data/restored-\$(date +%s) --listen 127.0.0.1:7499 --metrics-listen 127.0.0.1:9499 --web-listen off --allow-test-sources

   # as an auditor: who looked at what, and is the log intact
   CUSTOS_TOKEN=\$(cat $data/demo-auditor.token) $bin/custos audit log
   CUSTOS_TOKEN=\$(cat $data/demo-auditor.token) $bin/custos audit verify
   CUSTOS_TOKEN=\$(cat $data/demo-auditor.token) $bin/custos report compliance --days 1

   # the monitoring centre: alarms, patrols, handovers; Prometheus metrics on every node
   export CUSTOS_TOKEN=\$(cat $data/demo-operator.token)
   $bin/custos alarms --all
   $bin/custos patrol --notes "demo round: lobby and entrance checked"
   $bin/custos shift handover --to demo-security --notes "demo: nothing open"
   curl -s http://$(metrics 1)/metrics | grep -E '^custos_(camera_up|raft_leader|backup_lag)'

   # the web console (trust $data/n1/keys/ca.pem in the browser, or accept its warning):
   # https://$(web 1)/  sign in as approver, demo-security, demo-operator or demo-auditor,
   # password "$demo_password"; the approver previews and decides export requests there
   curl -s --cacert $data/n1/keys/ca.pem https://$(web 1)/ | grep -o '<title>.*</title>'

   # lose a node (last: the others elect a new leader within seconds); its cameras move
   # to a live node and its footage stays readable from the other copies; entrance has a
   # hot standby (custos camera list: STANDBY), which takes it over without a gap
   kill -9 \$(pgrep -f "custos-node run --data $data/n1"); sleep 8
   CUSTOS_TOKEN=\$(cat $data/demo-admin.token) $bin/custos status

 Node logs: $data/n1.log, n2.log, n3.log. Press Ctrl-C here to stop.
================================================================================

EOT
wait "${pids[0]}" || true
wait

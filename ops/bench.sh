#!/usr/bin/env bash
# The benchmark suite. Every figure is a ratio against a baseline measured in the same
# run, or a count; nothing here asserts a timing. Prints a table at the end and, after a
# full run, rewrites the table at the top of docs/benchmarks.md (docs/benchmarks.json
# keeps each row with the date, commit and machine it was measured on).
#
#   ops/bench.sh                  every part (about 50 minutes on 2 cores)
#   ops/bench.sh --smoke          a quick pass that only checks every part still runs;
#                                 prints the table, writes nothing under docs/
#   ops/bench.sh p2 cameras       only these parts; their rows are replaced, the others kept
#
# Parts: p1 p2 p3 p4 p5 p6 p7 p8 catalog memory cameras cameras-pinned standby picture console evidence
# (p3 and p4 are one benchmark).
# Raw output of each part is kept in target/bench/. Parts p5, p6, catalog, memory and
# cameras also measure a growth curve (target/bench/series/NAME.tsv); at the end every
# curve there is drawn to docs/bench/NAME.svg by ops/plot.py (--smoke: target/bench/smoke/).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=""
parts=()
for a in "$@"; do
  case "$a" in
    --smoke) smoke=--smoke ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    p[1-8] | catalog | memory | cameras | cameras-pinned | standby | picture | console | evidence) parts+=("$a") ;;
    *) echo "ops/bench.sh: unknown part '$a'; parts are p1 … p8, catalog, memory, cameras, cameras-pinned, standby, picture, console, evidence (or --smoke)" >&2; exit 2 ;;
  esac
done
want() {
  [ ${#parts[@]} -eq 0 ] && return 0
  local p
  for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}
is_smoke() { [ -n "$smoke" ]; }

# The figures come from the release build. A smoke pass only checks that every part still
# runs, so it uses the test build (ops/test.sh has made it; CI runs the smoke pass there).
if is_smoke; then
  ops/setup.sh
  bin=target/debug
  profile=(--profile dev)
else
  ops/setup.sh --release
  bin=target/release
  profile=()
fi

out=target/bench
mkdir -p "$out"
results="$out/results.tsv"
: > "$results"
# Growth curves: the parts that measure one write it here, with the date and commit; the
# Rust benchmarks read both variables (benches/report).
series_dir="$out/series"
is_smoke && series_dir="$out/smoke/series"
mkdir -p "$series_dir"
stamp="$(date +%F) at $(git rev-parse --short HEAD)"
# As in ops/bench_report.py: changes under docs/ do not change what runs.
if git status --porcelain --untracked-files=no | grep -qv '^.. docs/'; then stamp+="+changes"; fi
export CUSTOS_BENCH_SERIES="$series_dir" CUSTOS_BENCH_STAMP="$stamp"
# series_start NAME COLUMN… starts a curve (replacing the last one); series_point NAME
# VALUE… adds a point to it.
series_start() {
  local name="$1"
  shift
  { echo "# measured $stamp"; (IFS=$'\t'; echo "$*"); } > "$series_dir/$name.tsv"
}
series_point() {
  local name="$1"
  shift
  (IFS=$'\t'; echo "$*") >> "$series_dir/$name.tsv"
}
work="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A row of the table: id, measure, figure, target, met|missed|-, note.
result() {
  printf 'RESULT\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" | tee -a "$results"
}
# Runs one cargo benchmark; its RESULT lines join the table.
bench() {
  local name="$1"
  shift
  cargo bench --locked "${profile[@]}" --bench "$name" -- $smoke "$@" | tee "$out/$name.log"
  grep '^RESULT' "$out/$name.log" >> "$results" || true
}
# User + system CPU seconds a process has used so far.
cpu_seconds() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ printf "%.2f", ($12 + $13) / 100 }'
}
calc() { python3 -c "print($1)"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Commands the node and the camera are started under (taskset, for the pinned ramp).
node_pin=()
cam_pin=()
# One test camera: 1280×720 at 25 fps, H.264, a keyframe every 2 s, the `snow` pattern so
# the encoder really spends its bitrate. Its RTSP server shares one encoder among every
# session, so N recorded "cameras" cost one encoder. Further arguments go to the camera
# (`--replay`: encode a 10 s clip once and serve it in a loop). Sets cam_url and cam_pid.
start_camera() {
  local kbps="$1"
  shift
  "${cam_pin[@]}" $bin/custos-test-camera --port 0 --path /cam --width 1280 --height 720 \
    --bitrate-kbps "$kbps" --keyint 50 --pattern snow "$@" > "$work/camera-$kbps.out" &
  cam_pid=$!
  pids+=("$cam_pid")
  local _
  for _ in $(seq 1 100); do grep -q '^ready ' "$work/camera-$kbps.out" 2>/dev/null && break; sleep 0.1; done
  cam_url=$(sed -n 's/^ready //p' "$work/camera-$kbps.out")
  [ -n "$cam_url" ] || { echo "the test camera did not start" >&2; exit 1; }
}
# Stops the test camera; sets cam_died=1 if it had already died (gst-rtsp-server can abort).
cam_died=0
stop_camera() {
  if ! kill -0 "$cam_pid" 2>/dev/null; then
    cam_died=1
    echo "  the test camera had died (its last words are above)" >&2
  fi
  kill "$cam_pid" 2>/dev/null || true
  wait "$cam_pid" 2>/dev/null || true
}

# A fresh single node recording N RTSP sessions of $cam_url as cam1…camN, 4 s segments.
# Sets node_pid, node_data and the CUSTOS_* variables the client reads.
start_node() { init_node "$@"; run_node; }
# start_node in two steps, so a part can edit $node_data/custos.toml in between.
init_node() {
  local n="$1" name="$2" i sources=()
  for i in $(seq 1 "$n"); do sources+=(--camera "cam$i=$cam_url"); done
  local port
  port=$(free_port)
  node_data="$work/$name"
  $bin/custos-node init --data "$node_data" --listen "127.0.0.1:$port" --metrics-listen off --web-listen off \
    --segment-target-ms 4000 "${sources[@]}" --json > "$node_data.json"
  export CUSTOS_ADDR="127.0.0.1:$port" CUSTOS_CA="$node_data/keys/ca.pem"
  CUSTOS_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$node_data.json")
  export CUSTOS_TOKEN
}
# Runs the node init_node made; its log (RUST_LOG=$1, warn by default) goes to $node_data.log.
run_node() {
  RUST_LOG="${1:-warn}" "${node_pin[@]}" $bin/custos-node run --data "$node_data" 2> "$node_data.log" &
  node_pid=$!
  pids+=("$node_pid")
}
# Sets a top-level key of the node's custos.toml (as `custos-node init` writes it).
set_node_config() {
  sed -i "s/^$1 = .*/$1 = $2/" "$node_data/custos.toml"
  grep -qx "$1 = $2" "$node_data/custos.toml" || { echo "cannot set $1 in $node_data/custos.toml" >&2; exit 1; }
}
# A security user for the footage checks: the administrator asks, the founding approver
# accepts (four eyes) and receives the token, which this prints.
viewer_token() {
  local asked change
  asked=$($bin/custos --json user add bench-viewer --role security)
  change=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["change_id"])' <<< "$asked")
  CUSTOS_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["approver_token"])' "$node_data.json") \
    $bin/custos --json change approve "$change" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"]["token"])'
}
stop_node() { kill -INT "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; }
segments_committed() { $bin/custos status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["segments"])'; }

if want p1; then
  echo "== P1: seal + store + commit vs raw BLAKE3 + ChaCha20-Poly1305 + write + fsync"
  bench seal_store_commit
fi

if want p2; then
  echo "== P2: CPU of a node recording many RTSP cameras vs FFmpeg segment muxers and GStreamer splitmuxsink recording the same streams"
  cams=16 secs=40 warm=10 rounds=3
  is_smoke && { cams=2 secs=8 warm=6 rounds=1; }
  ratios=() ratios_ff=() ratios_rx=() ours=() theirs=() ffs=() olds=()
  round=0
  while [ ${#ratios[@]} -lt "$rounds" ] && [ "$round" -lt $((2 * rounds)) ]; do
    round=$((round + 1))
    cam_died=0
    # Each side gets a fresh test camera: gst-rtsp-server 1.22 aborts (an assertion in
    # gst_rtsp_media_get_rates) when a client PLAYs while the shared media is still being
    # torn down after the last side's clients left.
    # Custos: the whole node as deployed (recording, sealing, Raft, scrubber, alarms).
    start_camera 4000
    start_node "$cams" "p2-custos-$round"
    sleep "$warm"
    c0=$(cpu_seconds "$node_pid")
    s0=$(segments_committed)
    sleep "$secs"
    c1=$(cpu_seconds "$node_pid")
    s1=$(segments_committed)
    stop_node
    stop_camera
    start_camera 4000
    # The same node receiving through GStreamer's rtspsrc (rtsp_receiver = "gstreamer"),
    # as every release before the native receiver did: the gain the receiver alone gives.
    init_node "$cams" "p2-custos-gst-$round"
    set_node_config rtsp_receiver '"gstreamer"'
    run_node
    sleep "$warm"
    o0=$(cpu_seconds "$node_pid")
    sleep "$secs"
    o1=$(cpu_seconds "$node_pid")
    stop_node
    stop_camera
    start_camera 4000
    # Baseline: one gst-launch process, one rtspsrc → depay → parse → splitmuxsink
    # per camera, the same RTSP options as the node's pipeline, MPEG-TS files cut at the
    # keyframe before 4.5 s (so 4 s files with 2 s GOPs, as the node's 4 s segments).
    dir="$work/p2-gst-$round"
    mkdir -p "$dir"
    desc=()
    for i in $(seq 1 "$cams"); do
      # shellcheck disable=SC2054 # the commas belong to GStreamer caps
      desc+=(rtspsrc "location=$cam_url" latency=200 protocols=tcp '!' rtph264depay '!' h264parse config-interval=-1
        '!' video/x-h264,stream-format=byte-stream,alignment=au
        '!' splitmuxsink muxer=mpegtsmux max-size-time=4500000000 "location=$dir/cam$i-%05d.ts")
    done
    gst-launch-1.0 -q -e "${desc[@]}" > "$dir.log" 2>&1 &
    gst_pid=$!
    pids+=("$gst_pid")
    sleep "$warm"
    g0=$(cpu_seconds "$gst_pid")
    f0=$(find "$dir" -name '*.ts' | wc -l)
    sleep "$secs"
    g1=$(cpu_seconds "$gst_pid")
    f1=$(find "$dir" -name '*.ts' | wc -l)
    kill -INT "$gst_pid"; wait "$gst_pid" 2>/dev/null || true
    stop_camera
    start_camera 4000
    # Baseline 2: what Frigate and ZoneMinder run, FFmpeg's segment muxer, one process per
    # camera: RTSP over TCP, stream copy, 4 s MPEG-TS files (cut at the next keyframe).
    dir="$work/p2-ffmpeg-$round"
    mkdir -p "$dir"
    ff_pids=()
    for i in $(seq 1 "$cams"); do
      ffmpeg -nostdin -loglevel error -rtsp_transport tcp -i "$cam_url" -c copy -map 0 -f segment \
        -segment_time 4 -reset_timestamps 1 -segment_format mpegts "$dir/cam$i-%05d.ts" > "$dir-$i.log" 2>&1 &
      ff_pids+=($!)
      pids+=($!)
    done
    ff_cpu() {
      local t=0 p c
      for p in "${ff_pids[@]}"; do
        c=$(cpu_seconds "$p" 2>/dev/null || echo 0)
        t=$(calc "$t + ${c:-0}")
      done
      echo "$t"
    }
    sleep "$warm"
    m0=$(ff_cpu)
    n0=$(find "$dir" -name '*.ts' | wc -l)
    sleep "$secs"
    m1=$(ff_cpu)
    n1=$(find "$dir" -name '*.ts' | wc -l)
    kill -INT "${ff_pids[@]}"; wait "${ff_pids[@]}" 2>/dev/null || true
    stop_camera
    if [ "$cam_died" = 1 ]; then
      echo "  round $round discarded: a test camera died under one of its sides"
      continue
    fi
    ours+=("$(calc "$c1 - $c0")")
    theirs+=("$(calc "$g1 - $g0")")
    ffs+=("$(calc "$m1 - $m0")")
    olds+=("$(calc "$o1 - $o0")")
    ratio_rx=$(calc "'%.2f' % (($c1 - $c0) / max($o1 - $o0, 0.01))")
    ratios_rx+=("$ratio_rx")
    ratio=$(calc "'%.2f' % (($c1 - $c0) / max($g1 - $g0, 0.01))")
    ratios+=("$ratio")
    ratio_ff=$(calc "'%.2f' % (($c1 - $c0) / max($m1 - $m0, 0.01))")
    ratios_ff+=("$ratio_ff")
    echo "  round $round: custos $(calc "round($c1 - $c0, 2)") CPU s ($((s1 - s0)) segments committed), splitmuxsink $(calc "round($g1 - $g0, 2)") CPU s ($((f1 - f0)) files started), ffmpeg segment $(calc "round($m1 - $m0, 2)") CPU s ($((n1 - n0)) files started), custos through rtspsrc $(calc "round($o1 - $o0, 2)") CPU s over ${secs} s; ratios $ratio_ff (ffmpeg), $ratio (splitmuxsink), $ratio_rx (custos with rtspsrc)"
  done
  med=$(median "${ratios[@]}")
  med_ff=$(median "${ratios_ff[@]}")
  per_cam=$(calc "'%.2f' % (100 * $(median "${ours[@]}") / $secs / $cams)")
  per_cam_gst=$(calc "'%.2f' % (100 * $(median "${theirs[@]}") / $secs / $cams)")
  per_cam_ff=$(calc "'%.2f' % (100 * $(median "${ffs[@]}") / $secs / $cams)")
  per_cam_old=$(calc "'%.2f' % (100 * $(median "${olds[@]}") / $secs / $cams)")
  med_rx=$(median "${ratios_rx[@]}")
  echo "  median ratio $med_ff against ffmpeg (target <= 1.0), $med against splitmuxsink; $med_rx against the same node receiving through rtspsrc; per camera: custos ${per_cam} % of a core, ffmpeg ${per_cam_ff} %, splitmuxsink ${per_cam_gst} %, custos with rtspsrc ${per_cam_old} %"
  met=missed
  python3 -c "import sys; sys.exit(0 if $med_ff <= 1.0 else 1)" && met=met
  result P2 "CPU per recorded camera (RTSP, H.264 4 Mbit/s) ÷ FFmpeg's segment muxer (-c copy, 4 s, TCP); ÷ GStreamer splitmuxsink; same streams" \
    "$med_ff; $med (per round ${ratios_ff[*]}; ${ratios[*]}); ${per_cam} % of a core per camera, ffmpeg ${per_cam_ff} %, splitmuxsink ${per_cam_gst} %" "≤ 1.0 (ffmpeg)" "$met" \
    "$cams cameras, ${secs} s per side per round, $rounds rounds; one shared 720p test stream; native receiver; the same node receiving through rtspsrc: ${per_cam_old} % per camera (ratio $med_rx, per round ${ratios_rx[*]})"
fi

if want p3 || want p4; then
  echo "== P3, P4: 3-node cluster commits, commit latency vs fsync, RF=2 ingest vs 1 node"
  bench cluster
fi

if want p5; then
  echo "== P5: export run (read, decrypt, verify, hash, MP4 remux, sign, archive) vs raw ChaCha20-Poly1305 + BLAKE3; playback first byte"
  bench export
fi

if want p6; then
  echo "== P6: backup to loopback S3 (custos worker) vs rclone copy and restic backup of the same blobs to the same server, 101 MB and 1 GiB"
  bench backup
fi

if want p7; then
  echo "== P7: scrub pass vs raw read + BLAKE3 of the same blobs; bit flips caught"
  bench scrub
fi

if want p8; then
  echo "== P8: footage gap when a camera's recorder is killed (kill -9): a recorder, and a recorder that leads Raft, each with and without a hot standby (real processes; the tests print it)"
  runs=5
  is_smoke && runs=1
  # The tests start the dev-profile binaries (dependencies optimised, as in CI).
  cargo build --locked --workspace --bins
  # p8_case NAME WHAT TEST-BINARY TEST TARGET-MS (or - for a reference without a target)
  p8_case() {
    local name="$1" what="$2" binary="$3" filter="$4" target="$5" gaps=() out line gap
    for _ in $(seq 1 "$runs"); do
      # The whole output first: a grep that stops at the first match closes the pipe, and
      # the test, killed by SIGPIPE mid-run, would leave its nodes and camera running.
      out=$(cargo nextest run --locked --test "$binary" --no-capture "$filter" 2>&1 || true)
      line=$(grep -m 1 'failover gap' <<< "$out" || true)
      echo "  $name: ${line:-the test failed}"
      gap=$(sed -n 's/.*failover gap: \([0-9]*\) ms.*/\1/p' <<< "$line")
      [ -n "$gap" ] && gaps+=("$gap")
    done
    if [ ${#gaps[@]} -gt 0 ]; then
      local med max met=-
      med=$(median "${gaps[@]}")
      max=$(printf '%s\n' "${gaps[@]}" | sort -n | tail -n 1)
      if [ "$target" != - ]; then
        met=missed
        [ "$max" -le "$target" ] && met=met
        target="≤ $target ms"
      else
        target=""
      fi
      result "P8 $name" "$what" "median $med ms, max $max ms" "$target" "$met" \
        "${#gaps[@]} runs of 3 custos-node processes and a real RTSP camera, 1 s segments; gaps ${gaps[*]} ms"
    else
      result "P8 $name" "$what" "not measured: the test failed" "" missed "see cargo nextest run --test $binary $filter"
    fi
  }
  p8_case "recorder, no standby" "footage gap when a camera's recorder (not the Raft leader) is killed (kill -9), no standby" \
    cluster killed_recorder_fails_over_within_bound 5000
  p8_case "recorder, hot standby" "the same with a hot standby" \
    standby killed_recorder_with_a_standby_loses_under_a_second 1000
  p8_case "leader-and-recorder, no standby" "footage gap when a camera's recorder that also leads Raft is killed (kill -9), no standby (reference)" \
    standby killed_leader_and_recorder_without_a_standby_fails_over_cold -
  p8_case "leader-and-recorder, hot standby" "the same with a hot standby" \
    standby killed_leader_and_recorder_loses_under_a_second 1000
fi

if want standby; then
  cams=16 secs=40 warm=10
  is_smoke && { cams=2; secs=8; warm=4; }
  echo "== Standby: CPU and memory per camera of a node standing by for $cams RTSP cameras (4 Mbit/s 720p), against the node recording them, measured in the same run"
  start_camera 4000
  init_node "$cams" standby-a
  a_data=$node_data a_addr=$CUSTOS_ADDR
  approver=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["approver_token"])' "$a_data.json")
  run_node
  a_pid=$node_pid
  for _ in $(seq 1 100); do $bin/custos status > /dev/null 2>&1 && break; sleep 0.2; done
  # A second node, on another campus, joins (the founding approver accepts it).
  asked=$($bin/custos --json node join-token)
  join_token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<< "$asked")
  change=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("change_id", ""))' <<< "$asked")
  [ -z "$change" ] || CUSTOS_TOKEN="$approver" $bin/custos --json change approve "$change" > /dev/null
  b_port=$(free_port)
  b_data="$work/standby-b"
  $bin/custos-node join --data "$b_data" --campus west --listen "127.0.0.1:$b_port" --metrics-listen off \
    --web-listen off --cluster "$a_addr" --token "$join_token" > /dev/null
  RUST_LOG=warn $bin/custos-node run --data "$b_data" 2> "$b_data.log" &
  b_pid=$!
  pids+=("$b_pid")
  # Both nodes' CPU over one window, and node B's resident memory at its end.
  window() {
    local a0 b0
    a0=$(cpu_seconds "$a_pid")
    b0=$(cpu_seconds "$b_pid")
    sleep "$secs"
    a_cpu=$(calc "$(cpu_seconds "$a_pid") - $a0")
    b_cpu=$(calc "$(cpu_seconds "$b_pid") - $b0")
    b_rss=$(awk '/VmRSS/ {print $2}' "/proc/$b_pid/status")
  }
  sleep "$warm"
  # Window 1: B follows Raft and holds a copy of every segment, standing by for nothing.
  window
  a1=$a_cpu b1=$b_cpu r1=$b_rss
  for i in $(seq 1 "$cams"); do $bin/custos camera standby "cam$i" > /dev/null; done
  standing=0
  for _ in $(seq 1 120); do
    standing=$(CUSTOS_ADDR="127.0.0.1:$b_port" $bin/custos --json status 2> /dev/null |
      python3 -c 'import json,sys; print(sum(c.get("standby_state") == "standing-by" for c in json.load(sys.stdin)["cameras"]))' || echo 0)
    [ "$standing" = "$cams" ] && break
    sleep 0.5
  done
  sleep "$warm"
  # Window 2: B also stands by for every camera.
  window
  a2=$a_cpu b2=$b_cpu r2=$b_rss
  lag=$(CUSTOS_ADDR="127.0.0.1:$b_port" $bin/custos --json status |
    python3 -c 'import json,sys; l=[c["standby_lag_ms"] for c in json.load(sys.stdin)["cameras"] if c.get("standby_lag_ms") is not None]; print(round(sum(l)/max(len(l),1)/1000, 1))')
  kill -INT "$b_pid" 2> /dev/null || true
  wait "$b_pid" 2> /dev/null || true
  stop_node
  stop_camera
  rec_pct=$(calc "round(($a1 + $a2) / 2 / $secs / $cams * 100, 2)")
  sb_pct=$(calc "round(($b2 - $b1) / $secs / $cams * 100, 2)")
  sb_mib=$(calc "round(($r2 - $r1) / $cams / 1024, 1)")
  echo "  node A records $cams cameras: $(calc "round($a1 / $secs * 100)") % then $(calc "round($a2 / $secs * 100)") % of a core; node B: $(calc "round($b1 / $secs * 100)") % idle, $(calc "round($b2 / $secs * 100)") % standing by ($standing of $cams standing by), RSS $((r1 / 1024)) → $((r2 / 1024)) MiB, pictures held past the recorder's committed end: $lag s on average"
  result "standby CPU" "CPU per standby camera (4 Mbit/s 720p), ÷ CPU per recorded camera in the same run" \
    "$sb_pct % of a core per camera ($(calc "round($sb_pct / $rec_pct, 2)") of recording's $rec_pct %)" "" - \
    "$cams cameras, ${secs} s windows; node B's CPU standing by for every camera minus the same node standing by for none"
  result "standby memory" "memory per standby camera at 4 Mbit/s (node B's RSS standing by for every camera minus for none, ÷ cameras)" \
    "$sb_mib MiB" "" - "pictures held: $lag s past the recorder's committed end on average (4 s segments, a keyframe every 2 s)"
fi

if want console; then
  echo "== W1, W2: web console first frame and seek to frame in headless Chromium vs the same player on static files"
  bench console
fi

if want evidence; then
  echo "== E2: an export's MP4 remux vs a plain copy of the same file"
  bench evidence
fi

if want catalog; then
  echo "== Catalog scale: commit rate, bytes per record and search latency at 10 k, 100 k, 1 M and 10 M records"
  bench catalog_scale
fi

if want memory; then
  # Rows for 1 and 4 Mbit/s; the curve `memory` has every bitrate.
  bitrates=(1000 2000 4000 8000)
  secs=60
  is_smoke && { secs=10; bitrates=(1000 4000); }
  echo "== Memory per recorded camera: one node recording 4, then 16 RTSP cameras (one shared stream at $(printf '%s ' "${bitrates[@]}")kbit/s)"
  series_start memory bitrate_mbit_s mib_per_camera peak_rss_4_mib peak_rss_16_mib
  for kbps in "${bitrates[@]}"; do
    start_camera "$kbps"
    declare -A peak
    for n in 4 16; do
      start_node "$n" "memory-$kbps-$n"
      sleep "$secs"
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$node_pid/status")
      rss=$(awk '/VmRSS/ {print $2}' "/proc/$node_pid/status")
      segs=$(segments_committed)
      stop_node
      peak[$n]=$hwm
      echo "  ${kbps} kbit/s, $n cameras for ${secs} s: ${segs} segments committed, peak RSS $((hwm / 1024)) MiB, RSS at end $((rss / 1024)) MiB"
    done
    stop_camera
    per=$(calc "round((${peak[16]} - ${peak[4]}) / 12 / 1024, 1)")
    echo "  ${kbps} kbit/s: memory per recorded camera (peak RSS, 16 cameras minus 4, over 12): $per MiB"
    series_point memory "$(calc "$kbps / 1000")" "$per" "$(calc "round(${peak[4]} / 1024, 1)")" "$(calc "round(${peak[16]} / 1024, 1)")"
    case "$kbps" in
      1000 | 4000)
        result "memory $((kbps / 1000)) Mbit/s" "memory per recorded camera at $((kbps / 1000)) Mbit/s (peak RSS: 16 cameras − 4, ÷ 12)" \
          "$per MiB" "" - "peak RSS $((peak[4] / 1024)) MiB with 4 cameras, $((peak[16] / 1024)) MiB with 16; ${secs} s each; 4 s segments"
        ;;
    esac
  done
fi

# Jiffies the whole machine has spent so far: busy (user, nice, system, irq, softirq,
# steal), softirq alone, and everything (idle and iowait too).
machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# cameras_ramp ID WHAT NODE-CPUS CAMERA-CPUS STEP…: one node recording N cameras of the
# replay camera for $secs per step, until a step loses footage. NODE-CPUS and CAMERA-CPUS
# pin the node and the camera with taskset ("" leaves them free). The `cameras` ramp also
# writes the curve.
cameras_ramp() {
  local id="$1" what="$2" ncpu="$3" ccpu="$4"
  shift 4
  local steps=("$@") n best=0 stop="every step passed; the ramp ends there, so that is not the limit"
  node_pin=()
  cam_pin=()
  [ -z "$ncpu" ] || node_pin=(taskset -c "$ncpu")
  [ -z "$ccpu" ] || cam_pin=(taskset -c "$ccpu")
  local cores
  cores=$(nproc)
  # The camera replays a clip it encoded at start, so its encoder takes no CPU from the
  # node: what remains of its cost is serving the sessions.
  start_camera 4000 --replay
  # The curve: per step the node's and the camera's CPU, what the node stored (segments
  # and blob bytes committed by the end of the window, over its length), its peak RSS,
  # and whether the step kept every segment (1) or not (0).
  [ "$id" != cameras ] || series_start cameras cameras node_cpu_pct camera_cpu_pct segments_per_s mbit_s peak_rss_mib complete
  for n in "${steps[@]}"; do
    start_node "$n" "$id-$n"
    t0=$(date +%s%3N)
    k0=$(cpu_seconds "$cam_pid")
    read -r busy0 soft0 all0 <<< "$(machine_jiffies)"
    sleep "$secs"
    read -r busy1 soft1 all1 <<< "$(machine_jiffies)"
    t1=$(date +%s%3N)
    cpu=$(cpu_seconds "$node_pid")
    k1=$(cpu_seconds "$cam_pid")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$node_pid/status")
    segs=$(segments_committed)
    stored=$(du -sb "$node_data/blobs" | cut -f1)
    ( umask 077; viewer_token > "$work/viewer.token" )
    # Every camera's footage must be one unbroken run of segments from its first keyframe
    # to within two segments of the end, and the node must report no loss.
    verdict=$(CUSTOS_TOKEN="$(cat "$work/viewer.token")" CUSTOS_CLIENT="$bin/custos" \
      python3 ops/bench_cameras.py "$n" "$t0" "$t1" "$node_data.log")
    stop_node
    # A step stores tens of GB at the top of the ramp: each step's footage goes once it is
    # checked (its log stays), so the ramp never runs the machine's disk full.
    rm -rf "$node_data"
    node_pct=$(calc "round($cpu / ($secs + 2) * 100)")
    cam_pct=$(calc "round(($k1 - $k0) / $secs * 100)")
    # The machine's cores as one (200 % for two): how busy, and how much of it softirq (the
    # kernel's network receive work, charged to no process).
    busy_pct=$(calc "round(($busy1 - $busy0) / ($all1 - $all0) * $cores * 100)")
    soft_pct=$(calc "round(($soft1 - $soft0) / ($all1 - $all0) * $cores * 100)")
    echo "  $n cameras × 4 Mbit/s for ${secs} s: $verdict; CPU: node $node_pct % of a core, test camera $cam_pct %, machine $busy_pct % of $((cores * 100)) % (softirq $soft_pct %); stored $(calc "round($stored * 8 / 1e6 / $secs)") Mbit/s; peak RSS $((hwm / 1024)) MiB"
    complete=0
    case "$verdict" in complete*) complete=1 ;; esac
    [ "$id" != cameras ] || series_point cameras "$n" "$node_pct" "$cam_pct" "$(calc "round($segs / $secs, 2)")" \
      "$(calc "round($stored * 8 / 1e6 / $secs, 1)")" "$(calc "round($hwm / 1024, 1)")" "$complete"
    case "$verdict" in
      complete*) best=$n ;;
      *) stop="$n lost footage (${verdict#incomplete: })"; break ;;
    esac
  done
  stop_camera
  node_pin=()
  cam_pin=()
  result "$id" "$what" "$best" "" - "steps of ${steps[*]} cameras, ${secs} s each, the test camera (a clip encoded once, served in a loop by its RTSP server) on the same 2 cores${ncpu:+ (node on CPU $ncpu, camera on CPU $ccpu)}; $stop"
}

if want cameras; then
  echo "== Cameras per node: the most real RTSP cameras (4 Mbit/s each) one node records without losing a segment"
  secs=60
  steps=(16 64 128 192 256 320 384 448 512)
  is_smoke && { secs=12; steps=(2 4); }
  cameras_ramp cameras "most real RTSP cameras (H.264 4 Mbit/s) one node records without losing a segment" "" "" "${steps[@]}"
fi

if want cameras-pinned; then
  # The node alone on one core and the camera on another: how many cameras one core of
  # node work records, with the camera's serving and sending off the node's core.
  echo "== Cameras per node core: the same ramp with the node pinned to one CPU and the camera to another"
  secs=60
  steps=(64 128 160 192 224 256 288)
  is_smoke && { secs=12; steps=(2 4); }
  # The first two CPUs this script may run on.
  read -r cpu_a cpu_b _ <<< "$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))') -"
  what="most real RTSP cameras (H.264 4 Mbit/s) one node pinned to one core records without losing a segment, the camera on another core"
  if [ "$cpu_b" = - ]; then
    result "cameras, node on one core" "$what" "not measured" "" - "this machine lets the benchmark use one CPU only"
  else
    cameras_ramp "cameras, node on one core" "$what" "$cpu_a" "$cpu_b" "${steps[@]}"
  fi
fi

if want picture; then
  # Checks run every 5 s so a 40 s window holds enough of them to measure; the cost of one
  # check then gives the cost at the default 60 s. The warm-up is longer than P2's so the
  # first checks (the first segments are committed about 6 s in), which load the decoder
  # plugins and take the reference stills, fall before the window.
  cams=16 secs=40 warm=20 rounds=5 every=5 default=60
  is_smoke && { cams=2 secs=8 warm=6 rounds=1 every=2; }
  echo "== Picture checks: CPU per recorded camera with picture checks off and every ${every} s; the cost of one check"
  start_camera 4000
  offs=() ons=() costs=() counts=()
  failed=0
  for round in $(seq 1 "$rounds"); do
    # Each round runs both sides, in alternating order, so a drift in the machine's load
    # favours neither.
    sides=(0 "$every")
    [ $((round % 2)) -eq 0 ] && sides=("$every" 0)
    for s in "${sides[@]}"; do
      init_node "$cams" "picture-$s-$round"
      set_node_config picture_check_every_s "$s"
      # Every check logs "picture checked" at debug level (or a warning when it cannot
      # decode): the count of checks in the window.
      run_node warn,custos_node::picture=debug
      sleep "$warm"
      c0=$(cpu_seconds "$node_pid")
      k0=$(grep -c -e 'picture checked' -e 'picture check: cannot decode' "$node_data.log" || true)
      sleep "$secs"
      c1=$(cpu_seconds "$node_pid")
      k1=$(grep -c -e 'picture checked' -e 'picture check: cannot decode' "$node_data.log" || true)
      segs=$(segments_committed)
      stop_node
      bad=$(grep -c 'picture check: cannot decode' "$node_data.log" || true)
      failed=$((failed + bad))
      if [ "$s" = 0 ]; then
        off=$(calc "round($c1 - $c0, 2)")
        echo "  round $round, checks off: $off CPU s over ${secs} s ($segs segments committed)"
      else
        on=$(calc "round($c1 - $c0, 2)")
        checks=$((k1 - k0))
        findings=$(sed -n 's/.*picture checked.* finding=\(Some(\)\{0,1\}\([A-Za-z]*\).*/\2/p' "$node_data.log" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
        echo "  round $round, checks every ${s} s: $on CPU s over ${secs} s, $checks checks ($segs segments committed; findings in the run: ${findings:-none}; $bad could not decode)"
      fi
    done
    offs+=("$off")
    ons+=("$on")
    counts+=("$checks")
    cost=$(calc "'%.1f' % (1000 * ($on - $off) / max($checks, 1))")
    costs+=("$cost")
    echo "  round $round: one check costs $cost ms of CPU"
  done
  stop_camera
  off=$(median "${offs[@]}")
  on=$(median "${ons[@]}")
  cost=$(median "${costs[@]}")
  checks=$(median "${counts[@]}")
  per_cam_off=$(calc "'%.3f' % (100 * $off / $secs / $cams)")
  per_cam_on=$(calc "'%.3f' % (100 * $on / $secs / $cams)")
  # At the default interval each camera costs one check per $default s on top.
  per_cam_check=$(calc "'%.4f' % (100 * $cost / 1000 / $default)")
  ratio=$(calc "'%.3f' % (($per_cam_off + $per_cam_check) / $per_cam_off)")
  echo "  per camera: ${per_cam_off} % of a core without checks, ${per_cam_on} % with checks every ${every} s ($checks checks per window);"
  echo "  one check ${cost} ms of CPU (per round ${costs[*]}), so ${per_cam_check} % of a core per camera at every ${default} s;"
  echo "  with ÷ without at ${default} s: $ratio (target <= 1.05)"
  met=missed
  python3 -c "import sys; sys.exit(0 if $ratio <= 1.05 else 1)" && met=met
  result picture "CPU per recorded camera with picture checks every ${default} s ÷ without (RTSP, H.264 4 Mbit/s)" \
    "$ratio; one check $cost ms of CPU (per round ${costs[*]}), ${per_cam_check} % of a core per camera at ${default} s" \
    "≤ 1.05" "$met" \
    "$cams cameras, ${secs} s per side per round, $rounds rounds; checks off: ${per_cam_off} % of a core per camera; checks every ${every} s (median $checks checks per window, $failed could not decode): ${per_cam_on} %; cost at ${default} s derived from the cost of one check"
fi

echo
python3 ops/bench_report.py $smoke "$results"

# The growth curves, from every series there is (a part not run this time keeps its last
# curve, with the date it was measured). Debian's python3 has matplotlib.
echo
plots=docs/bench
is_smoke && plots="$out/smoke/plots"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 ops/plot.py "$series_dir" "$plots"
else
  echo "plots: matplotlib is missing (ops/setup.sh installs python3-matplotlib); no curves drawn"
fi

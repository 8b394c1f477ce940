#!/usr/bin/env bash
# Installs every system package Custos needs to build, run its demo and run its tests,
# then builds. Idempotent: packages already installed are not fetched again.
#
#   ops/setup.sh             debug build of everything, tests included (what ops/test.sh uses)
#   ops/setup.sh --release   release build of the binaries (what ops/demo.sh uses)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # Toolchain pieces: RocksDB is C++ built from source, bindgen needs libclang, tonic needs protoc.
  g++ make clang libclang-dev pkg-config protobuf-compiler
  # GStreamer 1.22 development files, the RTSP server library, and the plugins ingest uses:
  # rtspsrc/depayloaders/parsers (good, bad), x264enc (ugly), x265enc (bad), tsdemux (bad).
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-plugins-base-apps
  # The backup benchmark's baselines (ops/bench.sh p6): what an operator would run instead,
  # a deduplicating backup tool and a plain uploader.
  restic rclone
  # matplotlib for Debian's python3, which draws the benchmarks' growth curves (ops/plot.py).
  python3-matplotlib
  # promtool, which checks ops/prometheus/custos-alerts.yml in the tests.
  prometheus
  # `ip netns`/veth for the partitions in tests/chaos.rs (mount, for its tmpfs disks, is
  # in util-linux, always present).
  iproute2
  # Python venvs, for moto below.
  python3 python3-venv
  # Headless Chromium and its WebDriver, which drive the web console in tests/console.rs;
  # openssl names the node certificate the browser is told to trust.
  chromium chromium-driver openssl curl
  # The font of the custody receipt in export packages (Latin and Chinese), embedded at
  # build time; ffprobe and pdftotext, which read the MP4s and the receipt in tests.
  fonts-wqy-microhei ffmpeg poppler-utils
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Install packages without starting their services (the prometheus package ships a
  # daemon; only its promtool is wanted here).
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" > /dev/null
    $sudo chmod 755 "$policy"
    made_policy=1
    trap '$sudo rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$made_policy" ] || { $sudo rm -f "$policy"; trap - EXIT; }
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# moto, an S3 server that implements Object Lock, for tests/object_lock.rs. It lives in a
# venv at a fixed path (Debian's own Python refuses pip installs, PEP 668); tests/common
# starts target/py/bin/moto_server.
moto_version=5.2.5
if ! target/py/bin/python -c "import sys, moto; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
  echo "setup: installing moto $moto_version into target/py"
  python3 -m venv target/py
  target/py/bin/pip install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi

if [ "${1:-}" = "--release" ]; then
  cargo build --release --locked --workspace --bins
else
  cargo build --locked --workspace --all-targets
fi

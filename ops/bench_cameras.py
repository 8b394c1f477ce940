#!/usr/bin/env python3
"""Checks that a node recorded every one of its cameras without losing a segment.

Used by `ops/bench.sh cameras`. Arguments: the number of cameras (cam1…camN), the wall
clock in ms when the node started and when the run ended, and the node's log. Reads each
camera's segments with `custos search`, run as CUSTOS_CLIENT (the build bench.sh chose:
release, or the test build in a smoke pass) with CUSTOS_ADDR, CUSTOS_CA and CUSTOS_TOKEN of
a user allowed to search. Prints one line: `complete: …` when every camera has one
unbroken run of segments from soon after the start to near the end and the log reports no
loss, else `incomplete: …` with the first problems found.
"""
import datetime
import json
import os
import subprocess
import sys

# A camera must be recording this soon after the node starts (connect + first keyframe)…
FIRST_WITHIN_MS = 15_000
# …and have committed footage up to this close to the end (one open, one being sealed).
LAST_WITHIN_MS = 10_000
# Consecutive segments further apart than this are a hole in the footage.
GAP_MS = 500
# Node log lines that mean footage was or may have been lost.
LOSS_WORDS = ("footage lost", "camera down", "camera ended its stream", "segment cut without a keyframe",
              "segment commit failed", "sealing task failed")


def rfc3339(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat()


def main():
    n, t0, t1, log = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    client = os.environ.get("CUSTOS_CLIENT", "target/release/custos")
    if not os.access(client, os.X_OK):
        sys.exit(f"bench_cameras: no client at {client}; build it (cargo build --bins) or set CUSTOS_CLIENT")
    problems, total = [], 0
    for i in range(1, n + 1):
        cam = f"cam{i}"
        out = subprocess.run(
            [client, "search", "--camera", cam, "--from", rfc3339(t0 - 5_000),
             "--to", rfc3339(t1 + 5_000), "--purpose", "benchmark: cameras per node", "--json"],
            capture_output=True, text=True)
        if out.returncode != 0:
            problems.append(f"{cam}: search failed: {out.stderr.strip()}")
            continue
        segs = sorted(json.loads(out.stdout)["segments"], key=lambda s: s["start_ms"])
        total += len(segs)
        if not segs:
            problems.append(f"{cam}: no segment")
            continue
        if segs[0]["start_ms"] - t0 > FIRST_WITHIN_MS:
            problems.append(f"{cam}: first segment {(segs[0]['start_ms'] - t0) / 1000:.1f} s after the start")
        if t1 - segs[-1]["end_ms"] > LAST_WITHIN_MS:
            problems.append(f"{cam}: footage ends {(t1 - segs[-1]['end_ms']) / 1000:.1f} s before the end")
        for a, b in zip(segs, segs[1:]):
            if b["start_ms"] - a["end_ms"] > GAP_MS:
                problems.append(f"{cam}: {(b['start_ms'] - a['end_ms']) / 1000:.1f} s hole after {a['end']}")
    with open(log, errors="replace") as f:
        # Without the timestamp: from the level on ("WARN custos_node::ingest… camera down …").
        losses = [line.strip().split(" ", 1)[-1].strip() for line in f if any(w in line for w in LOSS_WORDS)]
    if losses:
        problems.append(f"{len(losses)} loss lines in the node log, first: {losses[0][:160]}")
    if problems:
        print(f"incomplete: {total} segments; " + "; ".join(problems[:3]) +
              (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""))
    else:
        print(f"complete: {total} segments, every camera unbroken")


if __name__ == "__main__":
    main()

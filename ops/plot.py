#!/usr/bin/env python3
"""Draws the growth curves the benchmark parts measured, one SVG per series.

    ops/plot.py SERIES_DIR OUT_DIR

A series is a tab-separated file SERIES_DIR/<name>.tsv that a part of `ops/bench.sh`
wrote: a `# measured <date> at <commit>` line, a header row of column names, one row per
point. The series below are drawn with their own axes and labels; any other series is
drawn plainly (first column across, the others up). A series that is missing is skipped
with a note. Needs matplotlib (Debian's python3-matplotlib, which ops/setup.sh installs).
"""
import os
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
from matplotlib.ticker import FuncFormatter  # noqa: E402

# The same input gives the same file: no date in the SVG, fixed element ids, text kept as
# text (smaller, and searchable).
plt.rcParams.update({
    "svg.hashsalt": "custos",
    "svg.fonttype": "none",
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
})


def number(v, _pos=None):
    """1000 as 1 k, 10000000 as 10 M, 0.5 as 0.5."""
    for div, unit in ((1e6, " M"), (1e3, " k")):
        if abs(v) >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def kib(v, _pos=None):
    """256 as 256 KiB, 2048 as 2 MiB."""
    return f"{v / 1024:g} MiB" if v >= 1024 else f"{v:g} KiB"


def plain(v, _pos=None):
    return f"{v:g}"


# Each series: title, the command that measures it, the column across (with its label,
# scale: "log", "log2" or "linear", and optionally how to write its values), and panels of
# columns drawn up, each with its label ("dashed": a dashed line in the colour of the line
# before, such as a p99 after its p50).
# A panel's scale is "auto": logarithmic when its values span more than 30 times.
SPECS = {
    "catalog": {
        "title": "Catalog of one node: commit rate and search latency as it grows",
        "command": "cargo bench --bench catalog_scale",
        "x": ("records", "segment records in the catalog", "log"),
        "panels": [
            ("records committed per second\n(over the step up to this size)",
             [("commits_per_s", "512 records per Raft entry, 4 proposers")]),
            ("search latency (ms)",
             [("hour_p50_ms", "one camera, one hour: p50"), ("hour_p99_ms", "p99", "dashed"),
              ("ten_p50_ms", "one camera, ten records: p50"), ("ten_p99_ms", "p99", "dashed")]),
        ],
    },
    "backup_segment_size": {
        "title": "Backup to loopback S3 against segment size (about 100 MB)",
        "command": "cargo bench --bench backup",
        "x": ("segment_kib", "segment size (4 s segments at 0.5 to 16 Mbit/s)", "log2", kib),
        "panels": [
            ("throughput (MB/s)",
             [("custos_mb_s", "Custos backup worker"), ("rclone_mb_s", "rclone copy"),
              ("restic_mb_s", "restic backup")]),
        ],
    },
    "export_segment_size": {
        "title": "Export against segment size (about 100 MB)",
        "command": "cargo bench --bench export",
        "x": ("segment_kib", "segment size (4 s segments at 0.5 to 16 Mbit/s)", "log2", kib),
        "panels": [
            ("throughput (MB/s)",
             [("custos_mb_s", "Custos export (read, verify, decrypt, hash, MP4 remux, sign, commit)"),
              ("baseline_mb_s", "ChaCha20-Poly1305 decrypt + BLAKE3, from memory"),
              ("remux_mb_s", "the MP4 remux alone (mp4::remux), output hashed")]),
        ],
    },
    "cameras": {
        "title": "One node recording more and more RTSP cameras (H.264 4 Mbit/s each)",
        "command": "ops/bench.sh cameras",
        "x": ("cameras", "cameras recorded", "linear"),
        "failed": "complete",
        "panels": [
            ("CPU (% of one core)", [("node_cpu_pct", "custos-node"), ("camera_cpu_pct", "test camera (encoder + RTSP)")]),
            ("footage stored (Mbit/s)", [("mbit_s", "blob bytes written ÷ step length")]),
            ("peak RSS of the node (MiB)", [("peak_rss_mib", "custos-node VmHWM")]),
        ],
    },
    "memory": {
        "title": "Memory per recorded camera against the stream's bitrate",
        "command": "ops/bench.sh memory",
        "x": ("bitrate_mbit_s", "bitrate of each camera (Mbit/s)", "log2"),
        "panels": [
            ("memory per camera (MiB)", [("mib_per_camera", "(peak RSS with 16 − with 4) ÷ 12")]),
            ("peak RSS of the node (MiB)", [("peak_rss_4_mib", "4 cameras"), ("peak_rss_16_mib", "16 cameras")]),
        ],
    },
}


def read(path):
    """(measured, columns, rows) of a series file."""
    measured, header, rows = "", None, []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                if line.startswith("# measured "):
                    measured = line[len("# measured "):]
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
            else:
                rows.append([float(c) for c in cells])
    if header is None or not rows:
        raise ValueError("no points")
    return measured, header, rows


def plot(name, spec, measured, header, rows, out):
    col = {h: i for i, h in enumerate(header)}
    xname, xlabel, xscale = spec["x"][:3]
    xfmt = spec["x"][3] if len(spec["x"]) > 3 else number
    xs = [r[col[xname]] for r in rows]
    panels = [(label, [line for line in lines if line[0] in col]) for label, lines in spec["panels"]]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise ValueError("none of the expected columns")
    failed = [r[col[spec["failed"]]] == 0 for r in rows] if spec.get("failed") in col else [False] * len(rows)
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 2.2 + 2.4 * len(panels)), sharex=True, squeeze=False)
    for k, (ax, (ylabel, lines)) in enumerate(zip(axes[:, 0], panels)):
        values = []
        colour = None
        for c, text, *style in lines:
            ys = [r[col[c]] for r in rows]
            values += ys
            if style == ["dashed"] and colour:
                ax.plot(xs, ys, marker="o", markersize=3, label=text, color=colour, linestyle="--")
            else:
                colour = ax.plot(xs, ys, marker="o", markersize=4, label=text)[0].get_color()
            bad = [(x, y) for x, y, f in zip(xs, ys, failed) if f]
            if bad:
                ax.plot(*zip(*bad), linestyle="none", marker="x", markersize=9, color="tab:red",
                        label="step that lost footage" if k == 0 and c == lines[0][0] else None)
        ax.set_ylabel(ylabel)
        positive = [v for v in values if v > 0]
        if positive and len(positive) == len(values) and max(positive) / min(positive) > 30:
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
        else:
            ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(number if max(values) >= 1e4 else plain))
        ax.legend(fontsize=8, frameon=False)
    ax = axes[-1, 0]
    if xscale == "log2":
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
    elif xscale == "log":
        ax.set_xscale("log")
        ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(FuncFormatter(xfmt))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    ax.set_xlabel(xlabel)
    axes[0, 0].set_title(spec["title"], fontsize=11)
    fig.text(0.01, 0.005, f"measured {measured or '(date not recorded)'} · {spec['command']}", fontsize=7.5,
             color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = os.path.join(out, f"{name}.svg")
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
    return path


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    found = sorted(f[:-4] for f in os.listdir(src) if f.endswith(".tsv")) if os.path.isdir(src) else []
    os.makedirs(out, exist_ok=True)
    for name in list(SPECS) + [n for n in found if n not in SPECS]:
        if name not in found:
            print(f"plot: no series {name} in {src} (ops/bench.sh did not measure it this time): skipped")
            continue
        try:
            measured, header, rows = read(os.path.join(src, f"{name}.tsv"))
            spec = SPECS.get(name) or {
                "title": name, "command": "ops/bench.sh", "x": (header[0], header[0], "linear"),
                "panels": [("", [(h, h) for h in header[1:]])],
            }
            print(f"plot: {plot(name, spec, measured, header, rows, out)} ({len(rows)} points, measured {measured})")
        except (OSError, ValueError, KeyError, IndexError) as e:
            print(f"plot: series {name} cannot be drawn ({e}): skipped")


if __name__ == "__main__":
    main()

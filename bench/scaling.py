"""How a training step's cost grows with T, B and N: one log-log plot and a CSV.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/scaling.py [--peers spikingjelly]

Network: config b of bench/peers (700-N-20 LIF, Bernoulli(0.05) input spikes, forward, loss,
backward, Adam), varying one of T (25-1000), B (8-256) or N (256-8192) around T=100, B=32,
N=1024. Each point is a fresh process (`bench/peers/time_peer.py`, median of `--repeats` steps
after 2 warm-up steps). Writes bench/out/scaling.csv and bench/out/scaling.png, whose x axis is
the varied size over its value in config b, so the three sweeps share one axis and a slope of 1
means cost proportional to that size.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME_PEER = ROOT / "bench" / "peers" / "time_peer.py"
BASE = {"steps": 100, "batch": 32, "hidden": 1024}
SWEEPS = {
    "steps": [25, 50, 100, 250, 500, 1000],
    "batch": [8, 16, 32, 64, 128, 256],
    "hidden": [256, 512, 1024, 2048, 4096, 8192],
}
LABELS = {"steps": "T", "batch": "B", "hidden": "N"}
COLORS = {"steps": "tab:blue", "batch": "tab:orange", "hidden": "tab:green"}


def measure(python: str, peer: str, sizes: dict[str, int], repeats: int, threads: int) -> dict:
    cmd = [
        python,
        str(TIME_PEER),
        "--peer",
        peer,
        "--config",
        "b",
        "--threads",
        str(threads),
        "--repeats",
        str(repeats),
        "--warmup",
        "2",
    ]
    cmd += [arg for k, v in sizes.items() for arg in (f"--{k}", str(v))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    import math

    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx
    )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for (peer, sweep), style in _groups(rows):
        points = [r for r in rows if r["contender"] == peer and r["sweep"] == sweep]
        xs = [r[sweep] / BASE[sweep] for r in points]
        ys = [r["median_ms"] for r in points]
        label = f"{peer}, {LABELS[sweep]} (slope {slope(xs, ys):.2f})"
        ax.plot(xs, ys, style, color=COLORS[sweep], label=label, marker="o", markersize=4)
    base = [r["median_ms"] for r in rows if all(r[k] == v for k, v in BASE.items())]
    y0 = sorted(base)[len(base) // 2] if base else 20.0
    ax.plot([1 / 8, 10], [y0 / 8, y0 * 10], ":", color="grey", label="slope 1")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("size / config b's (T=100, B=32, N=1024)")
    ax.set_ylabel("ms per training step")
    ax.set_title("700-N-20 LIF, input spikes p=0.05, forward + backward + Adam")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _groups(rows: list[dict]) -> list[tuple[tuple[str, str], str]]:
    seen = dict.fromkeys((r["contender"], r["sweep"]) for r in rows)
    return [((peer, sweep), "-" if peer == "torchspike" else "--") for peer, sweep in seen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--peers",
        nargs="*",
        default=["spikingjelly"],
        choices=["snntorch", "spikingjelly", "norse"],
    )
    parser.add_argument("--peer-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweeps", nargs="+", default=list(SWEEPS), choices=list(SWEEPS))
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()

    contenders = {"torchspike": sys.executable}
    for peer in args.peers:
        if Path(args.peer_python).exists():
            contenders[peer] = args.peer_python
        else:
            print(f"{peer} skipped: no {args.peer_python}", file=sys.stderr)
    rows = []
    for sweep in args.sweeps:
        for value in SWEEPS[sweep]:
            sizes = {**BASE, sweep: value}
            for peer, python in contenders.items():
                try:
                    r = measure(python, peer, sizes, args.repeats, args.threads)
                except subprocess.CalledProcessError as err:
                    tail = (err.stderr or "").strip().splitlines()[-1:]
                    print(f"{peer} {sizes} failed: {tail}", file=sys.stderr)
                    continue
                row = {
                    "sweep": sweep,
                    "contender": peer,
                    **sizes,
                    "median_ms": r["median_ms"],
                    "min_ms": r["min_ms"],
                    "max_ms": r["max_ms"],
                    "rss_above_baseline_mib": round(r["peak_rss_mib"] - r["baseline_rss_mib"], 1),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "scaling.png")
    print(f"wrote {out / 'scaling.csv'} and {out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A/B of torchspike's conv fast paths, and the scaling of config n, interleaved in child processes.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/conv_ab.py --config n \
        --variants plain channels_last current snntorch floor_cl --repeats 8

Each contender is one `bench/peers/time_peer.py --serve` process (as in `bench/peers.py`),
timed in turns A B C .. then .. C B A, `--repeats` rounds of one untimed and `--steps` timed
steps; reported: median ms, its ratio to the first contender, peak RSS above the baseline.
torchspike variants (the library keeps no switch for them: `bench/peers/ab_child.py` undoes
fast paths in the child before it builds the network):
  plain          no channels-last input for Conv2d, PyTorch's max pooling (the state before #18)
  channels_last  channels-last Conv2d input, PyTorch's max pooling
  current        the library as it is (channels-last and `kernels.conv_pool`)
Other contenders: snntorch, spikingjelly (peer venv), floor, floor_cl (the dense floors).
`--T`, `--B`, `--density` override the config (the scaling of n).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from peers import Child  # noqa: E402

AB_CHILD = ROOT / "bench" / "peers" / "ab_child.py"
VARIANTS = ("plain", "channels_last", "current")
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"


def command(name: str) -> tuple[str, list[str]]:
    """(the --peer of time_peer.py, the python command) of a contender."""
    if name in VARIANTS:
        return "torchspike", [sys.executable, str(AB_CHILD), name]
    if name in ("snntorch", "spikingjelly"):
        return name, [str(PEER_PYTHON)]
    return name, [sys.executable]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="n")
    parser.add_argument("--variants", nargs="+", default=["plain", "current"])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per turn")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--T", type=int)
    parser.add_argument("--B", type=int)
    parser.add_argument("--density", type=float)
    args = parser.parse_args()
    extra = []
    for flag, value in (("--steps", args.T), ("--batch", args.B), ("--density", args.density)):
        if value is not None:
            extra += [flag, str(value)]
    children = {}
    try:
        for name in args.variants:
            peer, python = command(name)
            child = Child(peer, python, args.config, args.threads, 0, extra)
            child.read(timeout=600)
            child.ask(f"run {args.warmup}", timeout=600)
            children[name] = child
        times: dict[str, list[float]] = {name: [] for name in children}
        for r in range(args.repeats):
            order = list(children) if r % 2 == 0 else list(reversed(children))
            for name in order:
                got = children[name].ask(f"run {1 + args.steps}", 600)
                times[name] += got["ms"][1:]
                time.sleep(0.05)
        info = {name: child.ask("quit", 60) for name, child in children.items()}
    finally:
        for child in children.values():
            child.close()
    first = statistics.median(times[args.variants[0]])
    result = {
        "command": "bench/conv_ab.py " + shlex.join(sys.argv[1:]),
        "config": args.config,
        "T": args.T,
        "B": args.B,
        "density": args.density,
        "threads": args.threads,
        "results": {},
    }
    for name, ms in times.items():
        med = statistics.median(ms)
        rss = info[name]["peak_rss_mib"] - info[name]["baseline_rss_mib"]
        result["results"][name] = {
            "median_ms": round(med, 1),
            "min_ms": round(min(ms), 1),
            "samples": len(ms),
            "first_over_this": round(first / med, 3),
            "rss_above_baseline_mib": round(rss),
        }
        print(
            f"{name:>14}: median {med:8.1f} ms (min {min(ms):8.1f}, {len(ms)} steps)  "
            f"{args.variants[0]} / {name} = {first / med:5.2f}  RSS +{rss:.0f} MiB"
        )
    print("@@ " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

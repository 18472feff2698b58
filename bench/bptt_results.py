"""Reproduce the BPTT results of the seed tutorials on MNIST / Fashion-MNIST (../shared/data).

    python bench/bptt_results.py [--only NAME ...] [--data-dir ../shared/data]

Each configuration runs as a `torchspike train` command (printed), one after another, and the
figures (test accuracy, epochs, wall time) go to bench/RESULTS_bptt.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL5 = "--hidden 1000 --steps 25 --beta 0.95 --encoding direct --lr 5e-4 --batch-size 128"
CONV = (
    "--arch conv --channels 32 64 --hidden 256 --dropout 0.2 --steps 4 --lr 2e-3 --batch-size 128"
)
RUNS = {
    "tutorial5": (
        "snnTorch tutorial 5: 784-1000-10 LIF, 25 steps, direct, Adam 5e-4, batch 128, 1 epoch",
        f"--dataset mnist {TUTORIAL5} --epochs 1 --schedule none",
        0.9387,
    ),
    "fc-best": (
        "784-1000-10 LIF, our settings: Adam 1e-3 with cosine decay, 10 epochs",
        "--dataset mnist --hidden 1000 --steps 25 --beta 0.95 --lr 1e-3 --epochs 10",
        0.98,
    ),
    "if-rate": (
        "SurrGD tutorial setting: IF neurons, fast-sigmoid, rate code, 784-1000-10, 5 epochs",
        "--dataset mnist --neuron if --surrogate fast_sigmoid --encoding rate --hidden 1000 "
        "--steps 25 --lr 1e-3 --epochs 5",
        0.97,
    ),
    "conv-mnist": (
        "conv SNN (SpikingNet): 2 conv blocks + FC, T=4",
        f"--dataset mnist {CONV} --epochs 8",
        0.992,
    ),
    "conv-fashion": (
        "conv SNN (SpikingNet) on Fashion-MNIST, T=4",
        f"--dataset fashion-mnist {CONV} --epochs 8",
        0.90,
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--runs-dir", default=str(ROOT / "runs" / "bench"))
    args = parser.parse_args()
    results_path = ROOT / "bench" / "RESULTS_bptt.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.only:
        what, options, target = RUNS[name]
        out = Path(args.runs_dir) / name
        cmd = f"torchspike train {options} --data-dir {args.data_dir} --out {out}"
        print(f"== {name}: {cmd}", flush=True)
        t0 = time.perf_counter()
        argv = [sys.executable, "-m", "torchspike", *cmd.split()[1:]]
        subprocess.run(argv, check=True)
        metrics = json.loads((out / "metrics.json").read_text())
        results[name] = {
            "what": what,
            "command": cmd.replace(args.data_dir, "../shared/data").replace(str(ROOT) + "/", ""),
            "epochs": len(metrics["epochs"]),
            "test_accuracy": metrics["test_accuracy"],
            "target": target,
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    write_table(results)
    return 0


def write_table(results: dict) -> None:
    lines = [
        "# BPTT results (written by `python bench/bptt_results.py`)",
        "",
        "| run | test accuracy | target | epochs | wall time | command |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        ok = "yes" if r["test_accuracy"] >= r["target"] else "**no**"
        lines.append(
            f"| {name}: {r['what']} | {100 * r['test_accuracy']:.2f}% | >= {100 * r['target']:.2f}%"
            f" ({ok}) | {r['epochs']} | {r['wall_seconds'] / 60:.1f} min | `{r['command']}` |"
        )
    (ROOT / "bench" / "RESULTS_bptt.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

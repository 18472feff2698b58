"""Check torchspike.data against the shared data folder (not a unit test).

Yin-Yang: ``generate()`` equals the publication ``.npy`` files bit for bit. MNIST and
Fashion-MNIST: ``load`` gives the counts, label histograms and pixel statistics of the README.
Usage: python bench/check_data.py [--data-dir DIR]; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from torchspike.data import generate, load

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
HISTOGRAMS = {
    "mnist": {
        "train+validation": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    },
    "fashion-mnist": {"train+validation": [6000] * 10, "test": [1000] * 10},
}
MEAN_STD = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def check_yinyang(data_dir: Path, split: str) -> str:
    folder = data_dir / "yin-yang"
    if (folder / "publication_data").is_dir():
        folder = folder / "publication_data"
    samples, labels = generate(split)
    for name, ours in (("samples", samples), ("labels", labels)):
        ref = np.load(folder / f"{split}_{name}.npy")
        if ref.dtype != ours.dtype or ref.shape != ours.shape or ref.tobytes() != ours.tobytes():
            raise AssertionError(
                f"{name}: {ours.dtype}{ours.shape} differs from {ref.dtype}{ref.shape}"
            )
    return f"{len(labels)} samples, labels {np.bincount(labels).tolist()}, bit-identical"


def check_idx(data_dir: Path, name: str) -> str:
    parts = {s: load(name, s, data_dir, download=False) for s in ("train", "validation", "test")}
    parts["train+validation"] = load(name, "train+validation", data_dir, download=False)
    counts = {s: len(y) for s, (_, y) in parts.items()}
    want = {"train": 55000, "validation": 5000, "test": 10000, "train+validation": 60000}
    if counts != want:
        raise AssertionError(f"counts {counts}, expected {want}")
    for s, hist in HISTOGRAMS[name].items():
        got = torch.bincount(parts[s][1], minlength=10).tolist()
        if got != hist:
            raise AssertionError(f"{s} label histogram {got}, expected {hist}")
    split_hist = torch.bincount(torch.cat([parts["train"][1], parts["validation"][1]]))
    if split_hist.tolist() != HISTOGRAMS[name]["train+validation"]:
        raise AssertionError("train + validation histograms do not add up to the training file")
    x = parts["train+validation"][0].double()
    mean, std = x.mean().item(), x.std().item()
    if (round(mean, 4), round(std, 4)) != MEAN_STD[name]:
        raise AssertionError(f"train mean/std {mean:.4f}/{std:.4f}, expected {MEAN_STD[name]}")
    if x.shape[1:] != (1, 28, 28) or x.min() != 0 or x.max() != 1:
        raise AssertionError(f"shape {tuple(x.shape)} or range [{x.min()}, {x.max()}] is wrong")
    return f"counts {counts}, histograms match, train mean/std {mean:.4f}/{std:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    checks: list[tuple[str, Callable[[], str]]] = [
        *(
            (f"yinyang {s}", lambda s=s: check_yinyang(args.data_dir, s))
            for s in ("train", "validation", "test")
        ),
        *((n, lambda n=n: check_idx(args.data_dir, n)) for n in ("mnist", "fashion-mnist")),
    ]
    failed = 0
    for label, check in checks:
        try:
            print(f"PASS {label}: {check()}")
        except Exception as e:  # report every check, then fail at the end
            failed += 1
            print(f"FAIL {label}: {type(e).__name__}: {e}")
    print(f"{len(checks) - failed}/{len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

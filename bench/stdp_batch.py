"""What batching costs: Diehl & Cook on the first N training images at several batch sizes.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/stdp_batch.py --train-images 10000

Same seed, data order and parameters for every batch size; all 10,000 test images. Prints one
JSON line per batch size (wall time, presentations, both read-outs).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from torchspike.data import load
from torchspike.stdp import STDPConfig, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--n-neurons", type=int, default=100)
    ap.add_argument("--train-images", type=int, default=10_000)
    ap.add_argument("--test-images", type=int, default=10_000)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16, 64, 256])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    x, y = load("mnist", "train+validation", args.data_dir)
    xt, yt = load("mnist", "test", args.data_dir)
    train = x[: args.train_images], y[: args.train_images]
    test = xt[: args.test_images], yt[: args.test_images]
    for batch in args.batch_sizes:
        config = STDPConfig(
            n_neurons=args.n_neurons,
            batch_size=batch,
            update_interval=min(10_000, args.train_images),
            threads=args.threads,
        )
        start = time.perf_counter()
        m = fit(config, train, test).metrics
        row = {"batch_size": batch, "wall_s": round(time.perf_counter() - start, 1)}
        row.update({k: round(v, 4) for k, v in m.items()})
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()

"""Diehl & Cook (2015) on MNIST: one run of ``torchspike.stdp.train.fit``, timed.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/stdp_mnist.py --n-neurons 100

Trains on all 60,000 training images (``train+validation``) unless ``--train-images`` is given,
assigns classes from training data only, and tests on the 10,000 test images. Prints one JSON
line with the configuration, wall times and both read-outs' accuracies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from torchspike.data import load
from torchspike.stdp.train import STDPConfig, fit


def _value(text: str) -> float | str | None:
    """A ``--param`` value: None, a number, or a word (``g_decay=euler``)."""
    if text == "None":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--n-neurons", type=int, default=100)
    ap.add_argument("--synapse", default="conductance")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--eval-batch-size", type=int, default=1024, help="labelling and test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (see STDPConfig)")
    ap.add_argument("--train-images", type=int, default=0, help="0: all")
    ap.add_argument("--test-images", type=int, default=0, help="0: all")
    ap.add_argument("--update-interval", type=int, default=10_000)
    ap.add_argument("--label-images", type=int, default=0)
    ap.add_argument("--param", action="append", default=[], help="NAME=VALUE override")
    ap.add_argument("--save", default="", help="write the final state here (safetensors)")
    ap.add_argument("--resume", default="", help="start from this saved state (e.g. to relabel)")
    args = ap.parse_args()
    params = {}
    for item in args.param:
        name, value = item.split("=", 1)
        params[name] = _value(value)
    x, y = load(args.dataset, "train+validation", args.data_dir)
    xt, yt = load(args.dataset, "test", args.data_dir)
    if args.train_images:
        x, y = x[: args.train_images], y[: args.train_images]
    if args.test_images:
        xt, yt = xt[: args.test_images], yt[: args.test_images]
    config = STDPConfig(
        n_neurons=args.n_neurons,
        synapse=args.synapse,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        seed=args.seed,
        update_interval=args.update_interval,
        label_images=args.label_images,
        threads=args.threads,
        params=params,
    )
    last = [0.0]

    def progress(info: dict) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or info["done"] == info["total"]:
            last[0] = now
            print(
                json.dumps(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()}
                ),
                file=sys.stderr,
                flush=True,
            )

    state = None
    if args.resume:
        from torchspike.stdp import load_state

        state, _ = load_state(args.resume)
    start = time.perf_counter()
    result = fit(config, (x, y), (xt, yt), state=state, on_progress=progress)
    wall = time.perf_counter() - start
    if args.save:
        from torchspike.stdp import save_state

        save_state(args.save, result.state, config)
    history = result.state["history"].tolist()
    print(
        json.dumps(
            {
                "config": config.to_dict(),
                "threads": args.threads,
                "train_images": len(x),
                "test_images": len(xt),
                "wall_s": round(wall, 1),
                **{k: round(v, 4) for k, v in result.metrics.items()},
                "history": [[round(v, 4) for v in row] for row in history],
            }
        )
    )


if __name__ == "__main__":
    main()

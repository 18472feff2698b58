"""Train the EventProp reference configurations and report accuracy, wall time and peak memory.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/eventprop_train.py seed --threads 1
    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/eventprop_train.py yinyang
    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/eventprop_train.py mnist \
        --time-limit 1200

``seed``: the pytorch-eventprop configuration (784 -> 10, binary spike-time code, first-spike
loss). ``yinyang`` and ``mnist``: Wunderlich & Pehle's setups (parameters as in Nowotny et al.'s
GeNN reproduction, genn_eventprop). Training uses the train split; validation accuracy picks the
kept epoch where ``keep_best`` is set; test accuracy is printed after every epoch and for the
model that ``fit`` returns.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from torchspike.data import load
from torchspike.eventprop import train as ep_train

SPLITS = ("train", "validation", "test")

PRESETS = {
    "seed": dict(
        data="mnist",
        config=dict(
            encoding="binary-time",
            hidden=0,
            loss="ttfs",
            tau_mem=20e-3,
            tau_syn=5e-3,
            dt=1e-3,
            duration=20e-3,
            binary_t_min=2e-3,
            binary_t_max=12e-3,
            init=[(0.1, 0.1)],
            xi=0.4,
            alpha=0.01,
            beta=2.0,
            epochs=10,
            batch_size=128,
            optimizer="sgd",
            lr=1.0,
            lr_decay=1.0,
            rescue_silent=0.1,
        ),
    ),
    "yinyang": dict(
        data="yinyang",
        config=dict(
            encoding="latency",
            hidden=200,
            loss="ttfs",
            tau_mem=20e-3,
            tau_syn=5e-3,
            dt=0.5e-3,
            duration=30e-3,
            latency_start=1e-3,
            latency_end=29e-3,
            bias_spike=True,
            init=[(1.5, 0.78), (0.93, 0.1)],
            xi=0.1,
            alpha=3e-3,
            beta=1.28,
            epochs=30,
            batch_size=32,
            lr=5e-3,
            lr_decay=0.95,
            keep_best=True,
        ),
    ),
    "mnist": dict(
        data="mnist",
        config=dict(
            encoding="latency",
            hidden=350,
            loss="max-voltage",
            tau_mem=20e-3,
            tau_syn=5e-3,
            dt=1e-3,
            duration=20e-3,
            latency_threshold=0.004,
            init=[(0.078, 0.045), (0.2, 0.37)],
            input_dropout=0.2,
            epochs=50,
            batch_size=32,
            lr=5e-3,
            lr_decay=0.95,
            keep_best=True,
        ),
    ),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="stop after the epoch that passes this many seconds",
    )
    parser.add_argument("--data-dir", default="/work/shared/data")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="override config entries, e.g. lr=1e-3",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    config = dict(preset["config"])
    for item in args.set:
        key, value = item.split("=", 1)
        config[key] = json.loads(value)
    if args.epochs is not None:
        config["epochs"] = args.epochs
    train, val, test = (load(preset["data"], s, args.data_dir) for s in SPLITS)
    sizes = ", ".join(f"{s} {len(d[0])}" for s, d in zip(SPLITS, (train, val, test), strict=True))
    print(f"# {args.preset}: {json.dumps(config)}; {sizes}")
    cfg = ep_train.Config.from_dict(config)
    torch.manual_seed(cfg.seed)
    n_in = ep_train.n_inputs(train[0].shape[1:], cfg)
    model = ep_train.build_model(cfg, n_in, int(train[1].max()) + 1)
    start = time.perf_counter()

    def log(record: dict) -> None:
        record = {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
        record["test_acc"] = ep_train.evaluate(model, *test, cfg)
        record["elapsed_s"] = round(time.perf_counter() - start, 1)
        record["peak_rss_mb"] = round(peak_rss_mb())
        print(json.dumps(record), flush=True)

    model, history = ep_train.fit(cfg, train, val, model=model, log=log, time_limit=args.time_limit)
    summary = {
        "preset": args.preset,
        "epochs": len(history),
        "test_acc": ep_train.evaluate(model, *test, cfg),
        "best_val_epoch": max(history, key=lambda h: h["val_acc"])["epoch"],
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "threads": args.threads,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

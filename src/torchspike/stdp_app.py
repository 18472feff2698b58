"""``torchspike train | eval | plot`` for ``--method stdp``: the Diehl & Cook network.

The run directory holds the same files as for the gradient methods: ``config.json``,
``metrics.json``, ``model.safetensors`` (the full STDP state: weights, thresholds, assignment,
accuracy history) and the resumable ``checkpoint.safetensors``, written atomically.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt
from . import data
from .config import Config

CHECKPOINT, WEIGHTS = "checkpoint.safetensors", "model.safetensors"


def stdp_config(cfg: Config):
    from .stdp import STDPConfig

    extra = {"checkpoint_every": 5000, **cfg.extra}  # Ctrl-C stops at the next checkpoint
    return STDPConfig(
        n_neurons=extra.pop("n_neurons", 100),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        n_classes=data.num_classes(cfg.dataset),
        **extra,
    )


class _Progress:
    """A tqdm bar on a terminal, a plain line every ~10% otherwise."""

    def __init__(self, log) -> None:
        self.log, self.bar, self.phase, self.next_line = log, None, None, 0.0

    def __call__(self, p: dict[str, Any]) -> None:
        phase = f"{p['phase']} epoch {p['epoch']}/{p['epochs']}" if "epoch" in p else p["phase"]
        if phase != self.phase:  # a new bar (or 10% lines from 0) for each phase and epoch
            self.close()
            self.phase, self.next_line = phase, 0.0
            if sys.stderr.isatty():
                from tqdm import tqdm

                self.bar = tqdm(total=p["total"], desc=phase, leave=False)
        if self.bar is not None:
            self.bar.n = p["done"]
            self.bar.set_postfix(img_s=f"{p['images_per_s']:.0f}", acc=p.get("acc_proportion"))
            self.bar.refresh()
        elif p["done"] / p["total"] >= self.next_line:
            self.next_line += 0.1
            self.log(f"{self.phase}: {p['done']}/{p['total']} ({p['images_per_s']:.0f} img/s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def fit_run(cfg: Config, *, resume: bool = False, log=print) -> dict[str, Any]:
    """Train unsupervised, assign classes from training data, test; write the run directory."""
    from .stdp import fit, load_state, save_state

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    config = stdp_config(cfg)
    state = None
    if resume and (out / CHECKPOINT).exists():
        state, _ = load_state(out / CHECKPOINT)
        log(f"resuming from {out / CHECKPOINT} (epoch {int(state['epoch'])})")
    ckpt.save_json(out / "config.json", cfg.to_dict())
    train = data.load(cfg.dataset, "train+validation", cfg.data_dir)
    test = data.load(cfg.dataset, "test", cfg.data_dir)
    progress = _Progress(log)
    stop = {"requested": False}

    def on_checkpoint(s: dict[str, torch.Tensor]) -> None:
        save_state(out / CHECKPOINT, s, config)
        if stop["requested"]:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))
    t0 = time.perf_counter()
    try:
        result = fit(
            config, train, test, state=state, on_progress=progress, on_checkpoint=on_checkpoint
        )
    except KeyboardInterrupt:
        from .train import Interrupted

        log(f"interrupted: checkpoint saved in {out / CHECKPOINT}; use --resume")
        raise Interrupted from None
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    save_state(out / WEIGHTS, result.state, config)
    history = result.state["history"].tolist()  # rows: images seen, acc all, acc proportion, ..
    metrics = {
        **result.metrics,
        "test_accuracy": result.metrics["test_accuracy_proportion"],
        "windows": [
            {"images": r[0], "accuracy_all": r[1], "accuracy_proportion": r[2]} for r in history
        ],
        "epochs": [],
        "wall_seconds": time.perf_counter() - t0,
    }
    ckpt.save_json(out / "metrics.json", metrics)
    log(
        f"test accuracy {metrics['test_accuracy']:.4f} (proportion vote; all-neuron vote "
        f"{metrics['test_accuracy_all']:.4f})  ({metrics['wall_seconds']:.1f} s)  -> {out}"
    )
    return metrics


def evaluate_run(run_dir: Path, *, dataset: str | None, split: str, data_dir: str | None) -> float:
    from .stdp import evaluate, load_state

    cfg = Config.from_dict(ckpt.load_json(Path(run_dir) / "config.json"))
    state, config = load_state(Path(run_dir) / WEIGHTS)
    x, y = data.load(dataset or cfg.dataset, split, data_dir or cfg.data_dir)
    m = evaluate(state, config, (x, y))
    print(
        f"{dataset or cfg.dataset} {split} accuracy: {m['test_accuracy_proportion']:.4f} "
        f"(proportion vote), {m['test_accuracy_all']:.4f} (all-neuron vote)"
    )
    return m["test_accuracy_proportion"]


def plot_run(run_dir: Path, out: Path) -> list[Path]:
    from .stdp import load_state
    from .stdp.plot import save_figures

    state, _ = load_state(Path(run_dir) / WEIGHTS)
    return save_figures(state, out)

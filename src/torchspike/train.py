"""The training loop: epochs, progress, validation, metrics, checkpoints, resume, Ctrl-C.

Files in ``cfg.out``: ``config.json``, ``metrics.json``, ``model.safetensors`` and the resumable
``checkpoint.pt`` (model, optimiser, position, RNG state; written atomically).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import checkpoint as ckpt
from . import data, distributed
from .config import Config
from .methods import method_for

CHECKPOINT, WEIGHTS, METRICS, CONFIG = (
    "checkpoint.pt",
    "model.safetensors",
    "metrics.json",
    "config.json",
)


class Interrupted(Exception):
    """Training stopped by Ctrl-C after saving a checkpoint."""


class _StopOnSigint:
    """Turn the first Ctrl-C into a request to stop after the current batch; a second one
    interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except KeyboardInterrupt:
            self.requested = True

    def __enter__(self) -> _StopOnSigint:
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _progress(iterable, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(batch_size))


@torch.no_grad()
def predict(method: Any, model: nn.Module, x: Tensor, cfg: Config) -> Tensor:
    """Class predictions for ``x`` in batches, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    preds = [
        method.scores(model, x[idx].to(device), cfg).argmax(1).cpu()
        for idx in _batches(len(x), max(cfg.batch_size, 256), None)
    ]
    model.train(was_training)
    return torch.cat(preds)


def accuracy(method: Any, model: nn.Module, x: Tensor, y: Tensor, cfg: Config) -> float:
    return (predict(method, model, x, cfg) == y).float().mean().item()


def build(cfg: Config) -> tuple[Any, nn.Module]:
    method = method_for(cfg.method)
    model = method.build(cfg, data.input_shape(cfg.dataset), data.num_classes(cfg.dataset))
    return method, model.to(cfg.device)


def fit(
    cfg: Config,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train, validate each epoch, test at the end; returns the metrics written to disk.

    ``on_batch(epoch, batch)`` is called after each optimiser step (tests use it to interrupt).
    """
    ctx = distributed.Context.from_env(cfg.device)
    try:
        return _fit(cfg, ctx, resume, log if ctx.is_main else (lambda _: None), on_batch)
    finally:
        ctx.close()


def _fit(cfg, ctx, resume, log, on_batch) -> dict[str, Any]:
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    method, model = build(cfg)
    model = model.to(ctx.device)
    runner = ctx.wrap(model)
    optimizer = _adam(model, cfg)
    scheduler = _scheduler(optimizer, cfg)
    x_train, y_train = data.load(cfg.dataset, "train", cfg.data_dir)
    x_val, y_val = data.load(cfg.dataset, "validation", cfg.data_dir)

    start = {"epoch": 0, "batch": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "history": []}
    best: dict[str, Any] = {}  # keep_best: the best validation epoch's weights, on the CPU
    if resume and (out / CHECKPOINT).exists():
        state = ckpt.load_checkpoint(out / CHECKPOINT)
        model.load_state_dict(state["model"])
        best = state.get("best", {})
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start = state["position"]
        log(f"resuming from epoch {start['epoch'] + 1}, batch {start['batch']}")
    elif resume:
        log(f"no checkpoint in {out}; starting fresh")
    if ctx.is_main:
        ckpt.save_json(out / CONFIG, cfg.to_dict())

    def save(position: dict[str, Any]) -> None:
        if not ctx.is_main:
            return
        ckpt.save_checkpoint(
            out / CHECKPOINT,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "rng": torch.get_rng_state(),
                "position": position,
                "best": best,
            },
        )

    history: list[dict[str, Any]] = start["history"]
    device = torch.device(ctx.device)
    t0 = time.perf_counter() - sum(h["seconds"] for h in history)
    model.train()
    with _StopOnSigint() as stop:
        for epoch in range(start["epoch"], cfg.epochs):
            generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
            batches = _batches(len(x_train), cfg.batch_size, generator)
            first = start["batch"] if epoch == start["epoch"] else 0
            run = {"loss_sum": 0.0, "correct": 0, "seen": 0}
            if first:
                run = {k: start[k] for k in run}
            epoch_t0 = time.perf_counter()
            bar = _progress(range(first, len(batches)), len(batches) - first, f"epoch {epoch + 1}")
            for b in bar:
                idx = ctx.shard(batches[b])
                x, y = x_train[idx].to(device), y_train[idx].to(device)
                loss, scores = method.loss_and_scores(runner, x, y, cfg)
                optimizer.zero_grad(set_to_none=True)
                # DDP averages rank gradients: weight each rank's mean loss by its share
                (loss * (ctx.world * len(idx) / len(batches[b]))).backward()
                optimizer.step()
                method.after_step(model, scores, cfg, ctx)
                run["loss_sum"] += loss.item() * len(idx)
                run["correct"] += (scores.argmax(1) == y).sum().item()
                run["seen"] += len(idx)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(
                        loss=f"{run['loss_sum'] / run['seen']:.4f}",
                        acc=f"{run['correct'] / run['seen']:.3f}",
                    )
                if on_batch is not None:
                    stop.call(on_batch, epoch, b)
                if ctx.any(stop.requested):
                    save({"epoch": epoch, "batch": b + 1, **run, "history": history})
                    log(f"interrupted: checkpoint saved in {out / CHECKPOINT}; use --resume")
                    raise Interrupted
            if scheduler is not None:
                scheduler.step()
            val_acc = accuracy(method, model, x_val, y_val, cfg)
            if cfg.keep_best and val_acc > best.get("validation_accuracy", -1.0):
                weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = {"epoch": epoch + 1, "validation_accuracy": val_acc, "weights": weights}
            seconds = time.perf_counter() - epoch_t0
            run = dict(zip(run, ctx.sum(list(run.values())), strict=True))
            seen = max(run["seen"], 1)
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": run["loss_sum"] / seen,
                    "train_accuracy": run["correct"] / seen,
                    "validation_accuracy": val_acc,
                    "seconds": seconds,
                }
            )
            log(
                f"epoch {epoch + 1}/{cfg.epochs}  loss {run['loss_sum'] / seen:.4f}  "
                f"train acc {run['correct'] / seen:.4f}  val acc {val_acc:.4f}  ({seconds:.1f} s)"
            )
            save(
                {
                    "epoch": epoch + 1,
                    "batch": 0,
                    "loss_sum": 0.0,
                    "correct": 0,
                    "seen": 0,
                    "history": history,
                }
            )
            wall = time.perf_counter() - t0
            if ctx.is_main:
                ckpt.save_json(out / METRICS, {"epochs": history, "wall_seconds": wall})
            if ctx.any(stop.requested):
                log(f"interrupted: checkpoint saved in {out / CHECKPOINT}; use --resume")
                raise Interrupted
    if best:
        model.load_state_dict(best["weights"])
        acc = best["validation_accuracy"]
        log(f"keeping epoch {best['epoch']} (validation accuracy {acc:.4f})")
    x_test, y_test = data.load(cfg.dataset, "test", cfg.data_dir)
    test_acc = accuracy(method, model, x_test, y_test, cfg)
    metrics = {
        "epochs": history,
        "test_accuracy": test_acc,
        "wall_seconds": time.perf_counter() - t0,
    }
    if best:
        metrics["best_epoch"] = best["epoch"]
    if ctx.is_main:
        ckpt.save_weights(out / WEIGHTS, model.state_dict())
        ckpt.save_json(out / METRICS, metrics)
    log(f"test accuracy {test_acc:.4f}  ({metrics['wall_seconds']:.1f} s)  -> {out}")
    return metrics


def _scheduler(optimizer: torch.optim.Optimizer, cfg: Config):
    if cfg.schedule == "none":
        return None
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    raise ValueError(f"schedule must be one of ('none', 'cosine'), got {cfg.schedule!r}")


def load_run(run_dir: str | Path) -> tuple[Config, Any, nn.Module]:
    """The config, method and trained model of a finished run (weights via safetensors)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise FileNotFoundError(f"no {CONFIG} in {run_dir}: is it a torchspike run directory?")
    cfg = Config.from_dict(ckpt.load_json(run_dir / CONFIG))
    cfg.device = "cpu"
    method, model = build(cfg)
    if (run_dir / WEIGHTS).exists():
        model.load_state_dict(ckpt.load_weights(run_dir / WEIGHTS))
    elif (run_dir / CHECKPOINT).exists():
        model.load_state_dict(ckpt.load_checkpoint(run_dir / CHECKPOINT)["model"])
    else:
        raise FileNotFoundError(f"no {WEIGHTS} or {CHECKPOINT} in {run_dir}")
    model.eval()
    return cfg, method, model


def _adam(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Adam; the fused implementation (one kernel for all parameters) where it exists."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

"""The training loop of every gradient method (bptt, eventprop): epochs, progress, the
learning-rate schedule, clipping, validation, keep-best, metrics, checkpoints, resume, Ctrl-C.

The learning rate of epoch ``e`` (0-based) of a run of ``E`` epochs is ``lr * f(e)`` with
``f = 1`` (none), ``(1 + cos(pi e / E)) / 2`` (cosine), ``gamma ** (e // step)`` (step) or
``gamma ** e`` (exponential): a function of the epoch alone, so a resumed run continues the
schedule, and a run extended to more epochs follows the schedule of its new length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .. import files
from . import augment, datasets
from .config import ConfigError, Gradient
from .datasets import Source, as_source
from .distributed import Context
from .progress import Interrupted, StopOnSigint, bar
from .rundir import FORMAT, METRICS, WEIGHTS, RunDir, RunError, peak_memory_mib

Pair = tuple[Tensor, Tensor]
SPLITS = ("train", "validation", "test")


class DivergedError(ValueError):
    """The loss or the weights became NaN or infinite: the CLI says so in one line, naming
    --lr."""


def _diverged(what: str, epoch: int, batch: int, lr: float) -> str:
    return (
        f"training diverged: {what} became non-finite at epoch {epoch + 1}, batch {batch + 1}; "
        f"lower --lr (now {lr:.3g})"
    )


def _finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@dataclass
class Splits:
    """Training, validation and test data: sources (:mod:`.datasets`) or ``(x, y)`` pairs."""

    train: Source | Pair
    validation: Source | Pair | None = None
    test: Source | Pair | None = None

    def __post_init__(self) -> None:
        self.train = as_source(self.train)
        self.validation = None if self.validation is None else as_source(self.validation)
        self.test = None if self.test is None else as_source(self.test)


def load_splits(cfg: Gradient) -> Splits:
    return Splits(*(datasets.load(cfg.dataset, s, cfg.data_dir) for s in SPLITS))


def lr_factor(cfg: Gradient, epoch: int) -> float:
    """The schedule's multiplier of ``cfg.lr`` in epoch ``epoch`` (0-based)."""
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
    if cfg.schedule == "step":
        return cfg.lr_gamma ** (epoch // cfg.lr_step)
    if cfg.schedule == "exponential":
        return cfg.lr_gamma**epoch
    return 1.0


def make_optimizer(model: nn.Module, cfg: Gradient) -> torch.optim.Optimizer:
    """Adam (fused where it exists) or SGD over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(batch_size))


@torch.no_grad()
def predict(method: Any, model: nn.Module, source: Source, cfg: Gradient) -> Tensor:
    """Class predictions for every sample of ``source`` in batches, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    preds = [
        method.scores(model, source.take(idx)[0].to(device), cfg).argmax(1).cpu()
        for idx in batches(len(source), max(cfg.batch_size, 256), None)
    ]
    model.train(was_training)
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def accuracy(method: Any, model: nn.Module, source: Source, cfg: Gradient) -> float:
    y = source.labels
    return (predict(method, model, source, cfg) == y).float().mean().item() if len(y) else math.nan


def has_rows(source: Source | None) -> bool:
    return source is not None and len(source.labels) > 0


def check_splits(cfg: Gradient, splits: Splits) -> None:
    """``keep_best`` picks an epoch by validation accuracy: refuse it without validation rows."""
    if cfg.keep_best and not has_rows(splits.validation):
        raise ConfigError(
            f"keep_best needs a validation split, and dataset {cfg.dataset!r} has none here "
            f"(its test split is the held-out one): set keep_best = false (--no-keep-best)"
        )


def fit(
    cfg: Gradient,
    method: Any,
    model: nn.Module,
    splits: Splits,
    *,
    run: RunDir | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``cfg.epochs``, validate each epoch, test at the end; with a ``run``
    directory, write checkpoints, metrics and weights there. Returns the metrics.

    ``on_batch(epoch, batch)`` is called after each optimiser step (tests interrupt with it);
    ``on_epoch(record)`` after each epoch.
    """
    check_splits(cfg, splits)
    ctx = Context.from_env(cfg.device)
    try:
        quiet = log if ctx.is_main else (lambda _: None)
        return _Loop(cfg, method, model, splits, run, ctx, quiet, on_batch, on_epoch).run(resume)
    finally:
        ctx.close()


class _Loop:
    def __init__(self, cfg, method, model, splits, run, ctx, log, on_batch, on_epoch) -> None:
        self.cfg, self.method, self.splits, self.run_dir, self.ctx = cfg, method, splits, run, ctx
        self.log, self.on_batch, self.on_epoch = log, on_batch, on_epoch
        self.model = model.to(ctx.device)
        self.runner = ctx.wrap(self.model)
        self.optimizer = make_optimizer(self.model, cfg)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}  # keep_best: the best validation epoch's weights (CPU)
        self.position = _fresh(0)

    # --- checkpoints --------------------------------------------------------------------------
    def save(self, position: dict[str, Any]) -> None:
        if self.run_dir is None or not self.ctx.is_main:
            return
        files.save_checkpoint(
            self.run_dir.checkpoint(self.cfg.method),
            {
                "format": FORMAT,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "position": position,
                "history": self.history,
                "best": self.best,
            },
        )

    def restore(self) -> None:
        path = self.run_dir.checkpoint(self.cfg.method)
        if not path.exists():
            raise RunError(f"--resume: no checkpoint in {self.run_dir.path} ({path.name})")
        state = files.load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise RunError(
                f"{path} was written by an earlier torchspike (0.1), whose loop this version "
                f"does not continue: eval, plot and export still work; start a new run to train"
            )
        keys = ("model", "optimizer", "rng", "position", "history", "best")
        missing = [k for k in keys if k not in state]
        if missing:
            raise files.RunFileError(
                f"{path} lacks {', '.join(missing)}: not a checkpoint of a torchspike run; "
                f"delete it, or start again with --overwrite"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise files.RunFileError(
                f"{path} does not fit the model of {self.run_dir / 'config.json'} "
                f"({str(err).splitlines()[0]}): start a new run"
            ) from None
        torch.set_rng_state(state["rng"])
        self.position, self.history, self.best = state["position"], state["history"], state["best"]
        epoch, batch = self.position["epoch"], self.position["batch"]
        self.log(f"resuming from epoch {epoch + 1}, batch {batch}")

    # --- the loop ------------------------------------------------------------------------------
    def run(self, resume: bool) -> dict[str, Any]:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        if resume:
            self.restore()
        t0 = time.perf_counter() - sum(h["seconds"] for h in self.history)
        self.model.train()
        with StopOnSigint() as stop:
            for epoch in range(self.position["epoch"], cfg.epochs):
                self.epoch(epoch, stop)
                if self.ctx.any(stop.requested):
                    self.interrupted()
        return self.finish(t0)

    def epoch(self, epoch: int, stop: StopOnSigint) -> None:
        cfg, ctx = self.cfg, self.ctx
        lr = cfg.lr * lr_factor(cfg, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        train = self.splits.train
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        order = batches(len(train), cfg.batch_size, generator)
        start = self.position if self.position["epoch"] == epoch else _fresh(epoch)
        tally = {k: start[k] for k in ("loss_sum", "correct", "seen", "silent")}
        began = time.perf_counter()
        device = torch.device(ctx.device)
        first = start["batch"]
        for b in bar(range(first, len(order)), len(order) - first, f"epoch {epoch + 1}"):
            picked = ctx.shard(torch.arange(len(order[b])))  # this rank's places in the batch
            weight = ctx.world * len(picked) / len(order[b])
            if not len(picked):  # fewer rows than workers: take part with a zero-weight row
                picked = picked.new_zeros(1)
            x, y = train.take(order[b][picked])
            if cfg.random_shift:  # drawn for the whole batch: the same draws under torchrun
                g = augment.generator_for(cfg.seed, epoch, b)
                x = augment.translate(
                    x, augment.draw_shifts(len(order[b]), cfg.random_shift, g)[picked]
                )
            x, y = x.to(device), y.to(device)
            try:
                loss, scores = self.method.loss_and_scores(self.runner, x, y, cfg)
            except ValueError:  # a layer's check of its input: weights gone non-finite?
                if _finite(self.model):
                    raise
                raise DivergedError(_diverged("the weights", epoch, b, lr)) from None
            self.optimizer.zero_grad(set_to_none=True)
            # DDP averages rank gradients: weight each rank's mean loss by its share
            (loss * weight).backward()
            if cfg.clip_value:
                nn.utils.clip_grad_value_(self.model.parameters(), cfg.clip_value)
            if cfg.clip_norm:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm)
            self.optimizer.step()
            self.method.after_step(self.model, scores, cfg, ctx)
            n = len(picked) if weight else 0
            value = loss.item()
            if not math.isfinite(value):
                raise DivergedError(_diverged(f"the loss ({value})", epoch, b, lr))
            if n:
                tally["loss_sum"] += value * n
                tally["correct"] += (scores.argmax(1) == y).sum().item()
                tally["seen"] += n
                silent = self.method.silent(scores, cfg)
                tally["silent"] += int(silent.sum()) if silent is not None else 0
            if self.on_batch is not None:
                stop.call(self.on_batch, epoch, b)
            if ctx.any(stop.requested):
                self.save({"epoch": epoch, "batch": b + 1, **tally})
                self.interrupted()
        tally = dict(zip(tally, ctx.sum(list(tally.values())), strict=True))
        self.end_epoch(epoch, tally, lr, time.perf_counter() - began)

    def end_epoch(self, epoch: int, tally: dict[str, float], lr: float, seconds: float) -> None:
        cfg = self.cfg
        seen = max(tally["seen"], 1)
        self.method.check_epoch(epoch, tally, cfg)
        val = self.splits.validation
        val_acc = accuracy(self.method, self.model, val, cfg) if has_rows(val) else None
        if cfg.keep_best and val_acc > self.best.get("validation_accuracy", -1.0):
            weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.best = {"epoch": epoch + 1, "validation_accuracy": val_acc, "weights": weights}
        record = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": tally["loss_sum"] / seen,
            "train_accuracy": tally["correct"] / seen,
            "validation_accuracy": val_acc,
            "seconds": seconds,
        }
        if tally["silent"]:
            record["silent_samples"] = int(tally["silent"])
        self.history.append(record)
        self.log(
            f"epoch {epoch + 1}/{cfg.epochs}  lr {lr:.3g}  loss {record['train_loss']:.4f}  "
            f"train acc {record['train_accuracy']:.4f}  "
            + (f"val acc {val_acc:.4f}  " if val_acc is not None else "")
            + f"({seconds:.1f} s)"
        )
        self.position = _fresh(epoch + 1)
        self.save(self.position)
        if self.run_dir is not None and self.ctx.is_main:
            files.save_json(self.run_dir / METRICS, {"epochs": self.history})
        if self.on_epoch is not None:
            self.on_epoch(record)

    def interrupted(self) -> None:
        where = self.run_dir.checkpoint(self.cfg.method) if self.run_dir else "memory"
        self.log(f"interrupted: checkpoint saved in {where}; continue with --resume")
        raise Interrupted

    def finish(self, t0: float) -> dict[str, Any]:
        if self.best:
            self.model.load_state_dict(self.best["weights"])
            acc = self.best["validation_accuracy"]
            self.log(f"keeping epoch {self.best['epoch']} (validation accuracy {acc:.4f})")
        test = self.splits.test
        test_acc = (
            accuracy(self.method, self.model, test, self.cfg) if test is not None else math.nan
        )
        wall = time.perf_counter() - t0
        metrics: dict[str, Any] = {
            "epochs": self.history,
            "test_accuracy": test_acc,
            "wall_seconds": wall,
            "peak_memory_mib": peak_memory_mib(),
        }
        if self.best:
            metrics["best_epoch"] = self.best["epoch"]
        if self.run_dir is not None and self.ctx.is_main:
            files.save_weights(self.run_dir / WEIGHTS, self.model.state_dict())
            files.save_json(self.run_dir / METRICS, metrics)
        where = f"  -> {self.run_dir.path}" if self.run_dir else ""
        self.log(f"test accuracy {test_acc:.4f}  ({wall:.1f} s){where}")
        return metrics


def _fresh(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "batch": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "silent": 0}

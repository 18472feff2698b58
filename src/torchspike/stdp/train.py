"""Training and evaluating the Diehl & Cook network: the entry point the CLI calls.

``fit`` runs unsupervised STDP over the training images, assigns each neuron a class from
training data only, and evaluates both read-outs on the test images. Every
``update_interval`` training images, the accuracy of that window under the previous window's
assignment is recorded (Diehl & Cook's running estimate) and the assignment is renewed. The
whole run lives in a flat ``dict[str, Tensor]`` (safetensors-ready) that ``fit`` can resume from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .assign import Assignment, assign, vote_all, vote_proportion
from .config import STDPConfig
from .diehl_cook import DiehlCook
from .loop import present_all
from .state import KEYS, assignment_of, model_from_state, new_state

Progress = Callable[[dict[str, Any]], None]
Checkpoint = Callable[[dict[str, Tensor]], None]


class FitResult(NamedTuple):
    state: dict[str, Tensor]
    metrics: dict[str, float]


@contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _data(data: tuple[Tensor, Tensor], name: str) -> tuple[Tensor, Tensor]:
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise ValueError(f"{name} must be a pair (x, y), got {type(data).__name__}")
    x, y = data
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise ValueError(f"{name} x must be a float tensor [N, ...], got {x!r:.60}")
    if not isinstance(y, Tensor) or y.shape != (x.shape[0],):
        raise ValueError(f"{name} y must be a tensor [{x.shape[0]}], got {y!r:.60}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} x must lie in [0, 1], got [{x.min():g}, {x.max():g}]")
    return x.reshape(x.shape[0], -1).float(), y.long()


def _accuracy(counts: Tensor, labels: Tensor, a: Assignment) -> tuple[float, float]:
    if not len(labels):
        return math.nan, math.nan
    acc_all = (vote_all(counts, a) == labels).double().mean().item()
    return acc_all, (vote_proportion(counts, a) == labels).double().mean().item()


def _window(state: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    filled = min(int(state["seen"]), len(state["window_labels"]))
    return state["window_counts"][:filled], state["window_labels"][:filled]


def _record(state: dict[str, Tensor], counts: Tensor, labels: Tensor) -> bool:
    """Add finished samples to the window; True when a window boundary was crossed."""
    size, seen = len(state["window_labels"]), int(state["seen"])
    slots = (seen + torch.arange(len(labels))) % size
    state["window_counts"][slots] = counts.to(state["window_counts"].dtype)
    state["window_labels"][slots] = labels
    state["seen"] = torch.tensor(seen + len(labels))
    return (seen + len(labels)) // size > seen // size


def _renew(state: dict[str, Tensor], n_classes: int) -> None:
    counts, labels = _window(state)
    acc = _accuracy(counts, labels, assignment_of(state))
    if int((state["assignment"] >= 0).sum()) == 0:
        acc = (math.nan, math.nan)
    row = torch.tensor([[int(state["seen"]), *acc, counts.sum(1).mean().item()]])
    state["history"] = torch.cat([state["history"], row.double()])
    a = assign(counts, labels, n_classes)
    state["assignment"], state["proportions"], state["rates"] = a


def run_counts(
    model: DiehlCook,
    x: Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
    phase: str,
    on_progress: Progress | None = None,
) -> Tensor:
    """Frozen-network spike counts ``[M, N]`` for flat inputs ``x [M, n_inputs]``."""
    counts = torch.zeros(len(x), model.n_neurons)
    order, finished, start = torch.arange(len(x)), 0, time.perf_counter()
    for done in present_all(
        model, x, order, learn=False, batch_size=batch_size, generator=generator
    ):
        counts[done.index] = done.counts
        finished += len(done.index)
        if on_progress is not None:
            rate = finished / max(time.perf_counter() - start, 1e-9)
            on_progress({"phase": phase, "done": finished, "total": len(x), "images_per_s": rate})
    return counts


def evaluate(
    state: dict[str, Tensor],
    config: STDPConfig,
    test: tuple[Tensor, Tensor],
    *,
    on_progress: Progress | None = None,
) -> dict[str, float]:
    """Test accuracy of both read-outs with the stored (training-data) assignment."""
    with _threads(config.threads):
        return _evaluate(state, config, test, on_progress)


def _evaluate(state, config, test, on_progress) -> dict[str, float]:
    x, y = _data(test, "test")
    model = model_from_state(state, config)
    gen = torch.Generator().manual_seed(config.seed + 7)
    start = time.perf_counter()
    counts = run_counts(
        model,
        x,
        batch_size=config.eval_batch_size,
        generator=gen,
        phase="test",
        on_progress=on_progress,
    )
    acc_all, acc_prop = _accuracy(counts, y, assignment_of(state))
    return {
        "test_accuracy_all": acc_all,
        "test_accuracy_proportion": acc_prop,
        "test_spikes_per_image": counts.sum(1).mean().item(),
        "test_time_s": time.perf_counter() - start,
    }


def fit(
    config: STDPConfig,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor] | None = None,
    *,
    state: dict[str, Tensor] | None = None,
    on_progress: Progress | None = None,
    on_checkpoint: Checkpoint | None = None,
) -> FitResult:
    """Train (or resume ``state``), assign classes from training data, then evaluate ``test``.

    ``on_progress`` gets a dict after every batch (``phase``, ``epoch``, ``done``, ``total``,
    ``images_per_s``, ``presentations`` (retries included), the latest window's ``acc_all`` and
    ``acc_proportion``); ``on_checkpoint`` gets the state every ``checkpoint_every`` training
    images and after each epoch.
    """
    with _threads(config.threads):
        return _fit(config, train, test, state, on_progress, on_checkpoint)


def _fit(config, train, test, state, on_progress, on_checkpoint) -> FitResult:
    x, y = _data(train, "train")
    n_classes = config.n_classes or int(y.max()) + 1
    if state is None:
        state = new_state(config, tuple(train[0].shape[1:]), n_classes)
    _check_state(state, config, x.shape[1], n_classes)
    state = {k: v.clone() for k, v in state.items()}
    model = model_from_state(state, config)
    gen = torch.Generator()
    gen.set_state(state["rng"])
    metrics: dict[str, float] = {}
    start, presented, since_ckpt, fresh = time.perf_counter(), 0, 0, 0
    for epoch in range(int(state["epoch"]), config.epochs):
        order_gen = torch.Generator().manual_seed(config.seed * 1000 + epoch + 1)
        order = torch.randperm(len(x), generator=order_gen)
        finished = int(state["position"]) - len(state["pending"])
        for done in present_all(
            model,
            x,
            order,
            learn=True,
            batch_size=config.batch_size,
            generator=gen,
            position=int(state["position"]),
            pending=state["pending"],
        ):
            presented += done.presented
            finished += len(done.index)
            state["position"], state["pending"] = torch.tensor(done.position), done.pending
            if _record(state, done.counts, y[done.index]):
                _renew(state, n_classes)
            since_ckpt += len(done.index)
            fresh += len(done.index)
            if on_progress is not None:
                last = state["history"][-1] if len(state["history"]) else torch.full((4,), math.nan)
                rate = fresh / max(time.perf_counter() - start, 1e-9)
                on_progress(
                    {
                        "phase": "train",
                        "epoch": epoch + 1,
                        "epochs": config.epochs,
                        "done": finished,
                        "total": len(x),
                        "images_per_s": rate,
                        "presentations": presented,
                        "acc_all": last[1].item(),
                        "acc_proportion": last[2].item(),
                    }
                )
            if config.checkpoint_every and since_ckpt >= config.checkpoint_every:
                since_ckpt = 0
                _checkpoint(state, model, gen, on_checkpoint)
        state["epoch"], state["position"] = torch.tensor(epoch + 1), torch.tensor(0)
        state["pending"] = torch.zeros(0, 3, dtype=torch.float64)
        _checkpoint(state, model, gen, on_checkpoint)
    metrics["train_time_s"] = time.perf_counter() - start
    metrics["train_presentations"] = float(presented)
    _final_assignment(state, model, config, x, y, n_classes, gen, metrics, on_progress)
    _sync(state, model, gen)
    if test is not None:
        metrics.update(_evaluate(state, config, test, on_progress))
    return FitResult(state, metrics)


def _check_state(state: dict[str, Tensor], config: STDPConfig, n_inputs: int, n_classes: int):
    missing = sorted(set(KEYS) - set(state))
    if missing:
        raise ValueError(f"state is missing {missing}")
    expected = {
        "weight": (config.n_neurons, n_inputs),
        "window_labels": (config.update_interval,),
        "rates": (config.n_neurons, n_classes),
    }
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(
                f"state[{key!r}] has shape {tuple(state[key].shape)}, but the config and data "
                f"need {shape} (n_neurons, update_interval, input size and classes must match)"
            )


def _final_assignment(state, model, config, x, y, n_classes, gen, metrics, on_progress) -> None:
    start = time.perf_counter()
    if config.label_images:
        pick = torch.randperm(len(x), generator=gen)[: config.label_images]
        counts = run_counts(
            model,
            x[pick],
            batch_size=config.eval_batch_size,
            generator=gen,
            phase="label",
            on_progress=on_progress,
        )
        labels = y[pick]
    else:
        counts, labels = _window(state)
    a = assign(counts, labels, n_classes)
    state["assignment"], state["proportions"], state["rates"] = a
    acc_all, acc_prop = _accuracy(counts, labels, a)
    metrics.update(
        {
            "label_accuracy_all": acc_all,
            "label_accuracy_proportion": acc_prop,
            "label_images": float(len(labels)),
            "label_time_s": time.perf_counter() - start,
        }
    )


def _sync(state: dict[str, Tensor], model: DiehlCook, gen: torch.Generator) -> None:
    state["weight"], state["theta"] = model.weight.clone(), model.theta.clone()
    state["rng"] = gen.get_state()


def _checkpoint(state, model, gen, on_checkpoint: Checkpoint | None) -> None:
    if on_checkpoint is not None:
        _sync(state, model, gen)
        on_checkpoint({k: v.clone() for k, v in state.items()})

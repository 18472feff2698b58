"""A run's state as a flat ``dict[str, Tensor]``: weights, theta, assignment, progress, RNG.

``save_state`` / ``load_state`` store it as safetensors with the config as JSON metadata.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from torch import Tensor

from .assign import Assignment
from .config import STDPConfig
from .diehl_cook import DiehlCook

KEYS = (
    "weight",
    "theta",
    "input_shape",
    "assignment",
    "proportions",
    "rates",
    "history",
    "epoch",
    "position",
    "pending",
    "seen",
    "window_counts",
    "window_labels",
    "rng",
)  # what new_state returns (tests check they agree)


def new_state(config: STDPConfig, input_shape: tuple[int, ...], n_classes: int) -> dict:
    """A fresh run: initial weights and ``theta`` from ``config.seed``, no progress."""
    gen = torch.Generator().manual_seed(config.seed)
    model = DiehlCook(
        math.prod(input_shape), config.n_neurons, config.model_params(), generator=gen
    )
    n, w = config.n_neurons, config.update_interval
    return {
        "weight": model.weight,
        "theta": model.theta,
        "input_shape": torch.tensor(input_shape, dtype=torch.int64),
        "assignment": torch.full((n,), -1, dtype=torch.int64),
        "proportions": torch.zeros(n, n_classes),
        "rates": torch.zeros(n, n_classes),
        "history": torch.zeros(0, 4, dtype=torch.float64),
        "epoch": torch.tensor(0),
        "position": torch.tensor(0),
        "pending": torch.zeros(0, 3, dtype=torch.float64),
        "seen": torch.tensor(0),
        "window_counts": torch.zeros(w, n),
        "window_labels": torch.zeros(w, dtype=torch.int64),
        "rng": gen.get_state(),
    }


def model_from_state(state: dict[str, Tensor], config: STDPConfig) -> DiehlCook:
    """The network holding ``state``'s weights and ``theta``."""
    weight = state["weight"]
    model = DiehlCook(weight.shape[1], weight.shape[0], config.model_params())
    model.weight.copy_(weight)
    model.theta.copy_(state["theta"])
    return model


def assignment_of(state: dict[str, Tensor]) -> Assignment:
    return Assignment(state["assignment"], state["proportions"], state["rates"])


def save_state(path: str | os.PathLike, state: dict[str, Tensor], config: STDPConfig) -> None:
    """Write ``state`` to a safetensors file (atomically), with ``config`` in its metadata."""
    from ..files import save_weights

    metadata = {"method": "stdp", "config": json.dumps(config.to_dict())}
    save_weights(Path(path), state, metadata)


def load_state(path: str | os.PathLike) -> tuple[dict[str, Tensor], STDPConfig]:
    """Read a file written by :func:`save_state`: ``(state, config)``."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("method") != "stdp" or "config" not in meta:
            raise ValueError(f"path must be an STDP state written by save_state, got {path!r}")
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    return state, STDPConfig.from_dict(json.loads(meta["config"]))

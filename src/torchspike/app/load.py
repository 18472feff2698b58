"""Reading a finished run back: its configuration and its trained model."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from .. import files
from . import datasets
from .config import RunConfig
from .rundir import CHECKPOINT, WEIGHTS, RunDir, RunError


def build(cfg: RunConfig) -> tuple[Any, nn.Module]:
    """The method object and a freshly initialised model of a gradient-method configuration."""
    from .methods import method_for

    method = method_for(cfg.method)
    shape, classes = datasets.input_shape(cfg.dataset), datasets.num_classes(cfg.dataset)
    model = method.build(cfg, shape, classes)
    return method, model


def open_trained(
    path: str | os.PathLike, flag: str = "run"
) -> tuple[RunDir, RunConfig, Any, nn.Module]:
    """``(run, config, method, model)`` of a gradient-method run, its weights loaded, in eval
    mode on the CPU."""
    run = RunDir.open(path, flag)
    cfg = run.config()
    if cfg.method == "stdp":
        raise RunError(f"{flag} {path} is an STDP run: it has no torch model to load")
    cfg.device = "cpu"
    method, model = build(cfg)
    if (run / WEIGHTS).exists():
        state = files.load_weights(run / WEIGHTS)
    elif (run / CHECKPOINT[cfg.method]).exists():
        state = files.load_checkpoint(run / CHECKPOINT[cfg.method])["model"]
    else:
        raise RunError(f"{flag} {path}: no {WEIGHTS} or {CHECKPOINT[cfg.method]}: not trained yet")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise files.RunFileError(
            f"{run / WEIGHTS} does not fit the model that {run / 'config.json'} describes "
            f"({str(err).splitlines()[0]})"
        ) from None
    model.eval()
    return run, cfg, method, model


def load_run(path: str | os.PathLike) -> tuple[nn.Module, RunConfig]:
    """The trained model (eval mode, CPU) and the configuration of the run in ``path``."""
    _, cfg, _, model = open_trained(path)
    return model, cfg

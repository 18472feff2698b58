"""Deprecated: ``torchspike.sequence`` moved to :mod:`torchspike.kernels.lif_sequence` and
:mod:`torchspike.steps`."""

import warnings

from .kernels.lif_sequence import (
    RESETS,
    can_overwrite,
    lif_adjoint,
    lif_sequence,
    needs_grad,
    refuse_spent_input,
    saved_membrane,
)
from .steps import StepFn, fold_time, fold_time_owned, has_hooks, is_static, plain_linear, run_steps

__all__ = [
    "RESETS",
    "StepFn",
    "can_overwrite",
    "fold_time",
    "fold_time_owned",
    "has_hooks",
    "is_static",
    "lif_adjoint",
    "lif_sequence",
    "needs_grad",
    "plain_linear",
    "refuse_spent_input",
    "run_steps",
    "saved_membrane",
]

warnings.warn(
    "torchspike.sequence moved to torchspike.kernels.lif_sequence (the fused LIF) and "
    "torchspike.steps (run_steps, fold_time and the other time-folding helpers); "
    "import from there, this path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

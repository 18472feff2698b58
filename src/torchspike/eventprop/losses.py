"""Losses on EventProp outputs: ordinary torch functions, so autograd meets the adjoint.

``ttfs``: cross-entropy over first-spike times with the early-spike regulariser
(:func:`torchspike.loss.first_spike_ce`); ``max-voltage``, ``sum``, ``sum-exp``: cross-entropy
over an :class:`~.layers.LIReadout`'s ``max``, ``sum`` or ``sum_exp`` readout.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .. import _checks as check
from ..loss import first_spike_ce
from .spikes import Spikes, first_spike_times

LOSSES = ("ttfs", "max-voltage", "sum", "sum-exp")
READOUT = {"max-voltage": "max", "sum": "sum", "sum-exp": "sum_exp"}


def first_spike_loss(spikes: Spikes, target: Tensor, **options: float) -> Tensor:
    """:func:`torchspike.loss.first_spike_ce` on the first-spike times of ``spikes`` (silent
    neurons count as spiking at the window end); ``options``: ``tau_syn``, ``xi``, ``alpha``,
    ``beta``."""
    return first_spike_ce(first_spike_times(spikes), target, **options)


def voltage_ce(readout: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy with an LI readout (max, sum or sum_exp voltage) ``[B, C]`` as logits."""
    return F.cross_entropy(readout, target)


def scores(output: Spikes | Tensor, loss: str) -> Tensor:
    """Class scores ``[B, C]``: minus the first-spike times for ``ttfs``, the readout otherwise."""
    check.choice(loss, LOSSES, "loss")
    return -first_spike_times(output) if loss == "ttfs" else output


def predict(output: Spikes | Tensor, loss: str) -> Tensor:
    """Class predictions: the earliest first spike for ``ttfs``, the largest readout otherwise."""
    return scores(output, loss).argmax(1)

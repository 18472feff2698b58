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


def first_spike_loss(
    spikes: Spikes,
    target: Tensor,
    *,
    tau_syn: float,
    xi: float = 0.4,
    alpha: float = 3e-3,
    beta: float = 6.4,
) -> Tensor:
    """``CE(softmax(-t / (xi tau_syn)), y) + alpha (exp(t_y / (beta tau_syn)) - 1)`` over the
    first-spike times ``t`` of ``spikes``; silent neurons count as spiking at the window end."""
    return first_spike_ce(
        first_spike_times(spikes), target, tau_syn=tau_syn, xi=xi, alpha=alpha, beta=beta
    )


def voltage_ce(readout: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy with an LI readout (max, sum or sum_exp voltage) ``[B, C]`` as logits."""
    return F.cross_entropy(readout, target)


def predict(output: Spikes | Tensor, loss: str) -> Tensor:
    """Class predictions: the earliest first spike for ``ttfs``, the largest readout otherwise."""
    check.choice(loss, LOSSES, "loss")
    if loss == "ttfs":
        return first_spike_times(output).argmin(1)
    return output.argmax(1)

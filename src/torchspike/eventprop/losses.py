"""Losses on EventProp outputs: ordinary torch functions, so autograd meets the adjoint.

``ttfs``: cross-entropy over first-spike times with the early-spike regulariser
(:func:`torchspike.loss.first_spike_ce`); ``max-voltage``, ``sum``, ``sum-exp``: cross-entropy
over an :class:`~.layers.LIReadout`'s ``max``, ``sum`` or ``sum_exp`` readout.

A first-spike loss sees a silent output neuron at the window end, a constant: when no output
neuron fires for any sample, no gradient reaches the weights and training cannot start.
:func:`silent_samples` and :func:`check_outputs_fired` turn that into an error.
"""

from __future__ import annotations

import torch
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


class SilentOutputError(RuntimeError):
    """Every output neuron stayed silent for every sample, so the first-spike loss has no
    gradient."""


def silent_samples(output: Spikes | Tensor, duration: float | None = None) -> Tensor:
    """``[B]`` bool: the samples for which no output neuron fired. ``output``: the output layer's
    :class:`~.spikes.Spikes`, or first-spike times ``[B, C]`` (silent: ``>= duration``)."""
    if isinstance(output, Spikes):
        fired = torch.zeros(output.batch_size, dtype=torch.bool, device=output.batch.device)
        fired[output.batch] = True
        return ~fired
    if duration is None:
        raise ValueError("silent_samples needs duration with first-spike times")
    return (output >= duration).all(1)


def check_outputs_fired(silent: int, samples: int, *, epoch: int) -> None:
    """Raise :class:`SilentOutputError` when all ``samples`` of ``epoch`` (as shown to the user)
    were silent: ``silent`` is the sum of :func:`silent_samples` over the epoch."""
    if samples > 0 and silent >= samples:
        raise SilentOutputError(
            f"eventprop: every output neuron stayed silent for every sample in epoch {epoch}, "
            "so the first-spike loss has no gradient; raise the initial weights (init), add "
            "bias_spike, or enable rescue_silent"
        )

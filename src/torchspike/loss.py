"""Losses on spiking outputs; each takes time-first outputs and integer class targets."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _checks as check


def ce_membrane_sum(v: Tensor, target: Tensor) -> Tensor:
    """snnTorch tutorial 5: ``sum_t CE(v[t], y)``, cross-entropy on the membrane at every step;
    ``v`` is ``[T, B, C]``, ``target`` class indices ``[B]``."""
    _checked(v, "v", target)
    steps, batch = v.shape[:2]
    per_step = F.cross_entropy(v.reshape(steps * batch, -1), target.repeat(steps), reduction="sum")
    return per_step / batch


def ce_count(spikes: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy with spike counts as logits (``spikes`` ``[T, B, C]``, ``target`` ``[B]``)."""
    _checked(spikes, "spikes", target)
    return F.cross_entropy(spikes.sum(0), target)


def mse_count(
    spikes: Tensor, target: Tensor, *, correct_rate: float = 0.8, incorrect_rate: float = 0.2
) -> Tensor:
    """snnTorch's ``mse_count_loss``: ``mean((sum_t s_t - n)^2) / T``, with target counts
    ``n = floor(correct_rate * T)`` for the label and ``floor(incorrect_rate * T)`` for the
    other classes (the same value and gradient as snnTorch's, the division by ``T`` included)."""
    check.unit_interval(correct_rate, "correct_rate")
    check.unit_interval(incorrect_rate, "incorrect_rate")
    _checked(spikes, "spikes", target)
    steps, classes = spikes.shape[0], spikes.shape[-1]
    one_hot = F.one_hot(target, classes).to(spikes.dtype)
    on, off = math.floor(steps * correct_rate), math.floor(steps * incorrect_rate)
    wanted = off + (on - off) * one_hot
    return F.mse_loss(spikes.sum(0), wanted) / steps


def first_spike_ce(
    times: Tensor,
    target: Tensor,
    *,
    tau_syn: float,
    xi: float = 0.4,
    alpha: float = 3e-3,
    beta: float = 6.4,
) -> Tensor:
    """EventProp's time-to-first-spike loss on first-spike ``times`` ``[B, C]``.

    ``CE(softmax(-t / (xi tau_syn)), y) + alpha * (exp(t_y / (beta tau_syn)) - 1)``, averaged
    over the batch. Silent neurons should carry a finite time (e.g. the window end).
    """
    check.positive(tau_syn, "tau_syn")
    check.positive(xi, "xi")
    check.positive(beta, "beta")
    check.outputs(times, "times", "[B, C]")
    check.class_targets(target, times.shape[0], "times", tuple(times.shape))
    if not bool(torch.isfinite(times).all()):
        raise ValueError("times must be finite: give silent neurons the window end as their time")
    ce = F.cross_entropy(-times / (xi * tau_syn), target)
    t_label = times.gather(1, target.unsqueeze(1)).squeeze(1)
    reg = alpha * (torch.exp(t_label / (beta * tau_syn)) - 1)
    return ce + reg.mean()


def _checked(outputs: Tensor, name: str, target: Tensor) -> None:
    check.outputs(outputs, name, "[T, B, C]")
    check.class_targets(target, outputs.shape[1], name, tuple(outputs.shape))

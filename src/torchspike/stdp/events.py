"""Sparse input spikes for a presentation: a time-sorted list of ``(sample, input)`` events.

Poisson inputs at MNIST rates put ~3 spikes per image in each 0.5 ms step out of 784 inputs, so
the simulation adds the weight rows of the events instead of multiplying dense spike vectors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _checks as check


class Events(NamedTuple):
    sample: Tensor  # [E] int64: batch index of each event, sorted by step
    input: Tensor  # [E] int64: input index
    offsets: list[int]  # steps + 1 boundaries: step t holds events offsets[t]:offsets[t + 1]


def _sorted(step: Tensor, sample: Tensor, inp: Tensor, steps: int) -> Events:
    order = torch.argsort(step, stable=True)
    counts = torch.bincount(step, minlength=steps)
    offsets = [0, *torch.cumsum(counts, 0).tolist()]
    return Events(sample[order], inp[order], offsets)


def poisson_events(
    rates_hz: Tensor, steps: int, dt_ms: float, *, generator: torch.Generator | None = None
) -> Events:
    """Events of independent Poisson processes with ``rates_hz [B, n]`` over ``steps`` of ``dt_ms``.

    Each input's spike count over the window is Poisson(rate * steps * dt) and the spikes fall in
    uniformly random steps (two spikes in one step both count).
    """
    check.positive_int(steps, "steps")
    check.positive(dt_ms, "dt_ms")
    if rates_hz.dim() != 2:
        raise ValueError(f"rates_hz must be [B, n], got shape {tuple(rates_hz.shape)}")
    check.finite(rates_hz, "rates_hz")
    if rates_hz.numel() and rates_hz.min() < 0:
        raise ValueError(f"rates_hz must be >= 0, got min {rates_hz.min().item():g}")
    n = rates_hz.shape[1]
    lam = (rates_hz * (steps * dt_ms * 1e-3)).float()
    counts = torch.poisson(lam, generator=generator).long().flatten()
    flat = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    step = torch.randint(0, steps, flat.shape, generator=generator, device=flat.device)
    return _sorted(step, flat // n, flat % n, steps)


def spike_events(spikes: Tensor) -> Events:
    """Events of dense 0/1 spikes ``[T, B, n]`` (one event per nonzero entry)."""
    if spikes.dim() != 3:
        raise ValueError(f"spikes must be [T, B, n], got shape {tuple(spikes.shape)}")
    step, sample, inp = spikes.nonzero(as_tuple=True)
    return _sorted(step, sample, inp, spikes.shape[0])

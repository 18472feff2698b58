"""Spikes as a list of events, the currency between EventProp layers.

A spike at time ``t`` (seconds) falls in step ``k = floor(t / dt)``, the interval
``[k dt, (k + 1) dt)``; memory is proportional to the number of spikes, not to ``T``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _checks as check


class Spikes(NamedTuple):
    """Events sorted by step: ``times`` ``[E]`` (differentiable) and int64 ``step``, ``batch``,
    ``unit`` ``[E]``, over ``steps`` steps of ``dt`` for ``batch_size`` samples of ``units``
    neurons."""

    times: Tensor
    step: Tensor
    batch: Tensor
    unit: Tensor
    batch_size: int
    units: int
    steps: int
    dt: float

    @property
    def duration(self) -> float:
        return self.steps * self.dt


def step_bounds(step: Tensor, steps: int) -> list[int]:
    """Index ranges of sorted events per step: step ``k`` holds ``bounds[k]:bounds[k + 1]``."""
    counts = torch.bincount(step, minlength=steps)
    return [0, *torch.cumsum(counts, 0).tolist()]


def from_events(
    times: Tensor,
    batch: Tensor,
    unit: Tensor,
    *,
    batch_size: int,
    units: int,
    steps: int,
    dt: float,
) -> Spikes:
    """Spikes from event lists; events at ``inf`` or at or after ``steps * dt`` are dropped."""
    check.positive_int(steps, "steps")
    check.positive(dt, "dt")
    if not isinstance(times, Tensor) or not times.is_floating_point() or times.dim() != 1:
        raise ValueError(f"times must be a 1-d floating-point tensor, got {_describe(times)}")
    if bool(torch.isnan(times).any()) or (times.numel() and bool((times < 0).any())):
        raise ValueError("times must be >= 0 (inf for no spike), got a negative or NaN time")
    for name, index, size in (("batch", batch, batch_size), ("unit", unit, units)):
        if not isinstance(index, Tensor) or index.shape != times.shape or index.is_floating_point():
            raise ValueError(
                f"{name} must be an integer tensor shaped like times, got {_describe(index)}"
            )
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
            raise ValueError(
                f"{name} indices must lie in [0, {size}), got "
                f"[{int(index.min())}, {int(index.max())}]"
            )
    keep = times < steps * dt
    times, batch, unit = times[keep], batch[keep], unit[keep]
    step = torch.floor(times.detach() / dt).long().clamp_(0, steps - 1)
    order = torch.argsort(step * batch_size + batch, stable=True)
    return Spikes(
        times[order], step[order], batch[order], unit[order], batch_size, units, steps, dt
    )


def from_times(times: Tensor, *, steps: int, dt: float) -> Spikes:
    """One spike per input from first-spike ``times`` ``[B, N]`` (``inf``: no spike), e.g. the
    output of :func:`torchspike.encode.latency_times` or :func:`torchspike.encode.binary_times`."""
    if not isinstance(times, Tensor) or times.dim() != 2:
        raise ValueError(f"times must be a [B, N] tensor, got {_describe(times)}")
    b, n = times.shape
    batch = torch.arange(b, device=times.device).repeat_interleave(n)
    unit = torch.arange(n, device=times.device).repeat(b)
    return from_events(times.reshape(-1), batch, unit, batch_size=b, units=n, steps=steps, dt=dt)


def first_spike_times(spikes: Spikes, silent: float | None = None) -> Tensor:
    """First spike time of each neuron ``[B, N]``, differentiable; silent neurons get ``silent``
    (default: the window end ``steps * dt``)."""
    silent = spikes.duration if silent is None else silent
    size = spikes.batch_size * spikes.units
    key = spikes.batch * spikes.units + spikes.unit
    first = torch.full((size,), spikes.steps, dtype=torch.long, device=key.device)
    first = first.scatter_reduce(0, key, spikes.step, "amin")
    is_first = spikes.step == first[key]
    out = torch.full((size,), float(silent), dtype=spikes.times.dtype, device=key.device)
    out = out.scatter(0, key[is_first], spikes.times[is_first])
    return out.view(spikes.batch_size, spikes.units)


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    return repr(type(x))

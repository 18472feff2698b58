"""Encoders: static inputs to time-first spike trains or currents, all ``[T, B, ...]``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _checks as check


def _unit_input(x: Tensor, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {type(x)!r}")
    check.finite(x, name)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{x.min().item():g}, {x.max().item():g}]"
        )
    return x


def direct(x: Tensor, steps: int) -> Tensor:
    """The same input current at every step: a stride-0 view, so layers compute it once."""
    check.positive_int(steps, "steps")
    check.finite(x, "x")
    return x.unsqueeze(0).expand(steps, *x.shape)


def rate(
    x: Tensor, steps: int, *, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Bernoulli spikes with probability ``gain * x`` at each step (``x`` in [0, 1])."""
    check.positive_int(steps, "steps")
    check.positive(gain, "gain")
    p = _unit_input(x) * gain
    if p.numel() and p.max() > 1:
        raise ValueError(f"gain * x must be <= 1, got gain={gain!r} and max(x)={x.max().item():g}")
    u = torch.rand((steps, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
    return (u < p).to(x.dtype)


def poisson(
    rates_hz: Tensor, steps: int, dt: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Poisson spike trains: a spike in each step of length ``dt`` with probability rate * dt."""
    check.positive_int(steps, "steps")
    check.positive(dt, "dt")
    check.finite(rates_hz, "rates_hz")
    if rates_hz.numel() and rates_hz.min() < 0:
        raise ValueError(f"rates_hz must be >= 0, got min {rates_hz.min().item():g}")
    p = rates_hz * dt
    if p.numel() and p.max() > 1:
        raise ValueError(
            f"rates_hz * dt must be <= 1 (one spike per step), got max {p.max().item():g}"
        )
    u = torch.rand((steps, *p.shape), generator=generator, dtype=p.dtype, device=p.device)
    return (u < p).to(p.dtype)


def latency_times(
    x: Tensor, t_max: float, *, method: str = "linear", tau: float = 1.0, threshold: float = 0.01
) -> Tensor:
    """First-spike times (same unit as ``t_max``): strong inputs fire early; ``inf`` = no spike.

    ``linear``: ``t = (1 - x) * t_max`` for ``x > threshold``.
    ``log``: the charging time of an RC circuit, ``t = tau * log(x / (x - threshold))``; times
    beyond ``t_max`` give no spike.
    """
    check.choice(method, ("linear", "log"), "method")
    check.positive(t_max, "t_max")
    check.positive(tau, "tau")
    _unit_input(x)
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    if method == "linear":
        t = (1 - x) * t_max
    else:
        ratio = x / (x - threshold).clamp_min(torch.finfo(x.dtype).tiny)
        t = tau * torch.log(ratio)
    return torch.where((x > threshold) & (t <= t_max), t, torch.full_like(x, math.inf))


def times_to_spikes(times: Tensor, steps: int, dt: float = 1.0) -> Tensor:
    """Spike trains ``[T, B, ...]`` with one spike in step ``round(t / dt)`` (``inf``: none)."""
    check.positive_int(steps, "steps")
    check.positive(dt, "dt")
    index = torch.round(times / dt)
    valid = torch.isfinite(index) & (index >= 0) & (index < steps)
    index = torch.where(valid, index, torch.zeros_like(index)).long()
    spikes = torch.zeros((steps, *times.shape), dtype=times.dtype, device=times.device)
    spikes.scatter_(0, index.unsqueeze(0), valid.to(times.dtype).unsqueeze(0))
    return spikes


def latency(
    x: Tensor, steps: int, *, method: str = "linear", tau: float = 1.0, threshold: float = 0.01
) -> Tensor:
    """Time-to-first-spike code: one spike per input in a window of ``steps`` steps."""
    check.positive_int(steps, "steps")
    times = latency_times(x, steps - 1, method=method, tau=tau, threshold=threshold)
    return times_to_spikes(times, steps)


def binary_times(x: Tensor, t_min: float = 2e-3, t_max: float = 12e-3) -> Tensor:
    """EventProp seed code: binarise at 0.5; ink (> 0.5) spikes at ``t_min``, background at
    ``t_max``. Returns spike times (same unit as ``t_min``)."""
    _unit_input(x)
    if not 0 <= t_min < t_max:
        raise ValueError(f"need 0 <= t_min < t_max, got t_min={t_min!r}, t_max={t_max!r}")
    return torch.where(x > 0.5, torch.full_like(x, t_min), torch.full_like(x, t_max))


def binary_time(
    x: Tensor, steps: int, dt: float = 1e-3, t_min: float = 2e-3, t_max: float = 12e-3
) -> Tensor:
    """:func:`binary_times` as spike trains of ``steps`` steps of ``dt``."""
    if t_max / dt >= steps - 0.5:
        raise ValueError(f"t_max={t_max!r} does not fit in steps={steps!r} of dt={dt!r}")
    return times_to_spikes(binary_times(x, t_min, t_max), steps, dt)

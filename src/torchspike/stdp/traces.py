"""Spike traces: exponentially decaying memories of recent spikes.

    x[t] = d * x[t-1] + s[t]          (mode "add": all-to-all pairing)
    x[t] = 1 if s[t] else d * x[t-1]  (mode "set": nearest-spike pairing, as in Diehl & Cook)

with ``d = exp(-dt / tau)``.
"""

from __future__ import annotations

from torch import Tensor

from .. import _checks as check

MODES = ("set", "add")


def decay(tau: float, dt: float) -> float:
    """The per-step decay factor ``exp(-dt / tau)`` (``tau`` and ``dt`` in the same unit)."""
    return check.decay(tau, dt, "tau", "dt")


def trace_step(x: Tensor, spikes: Tensor, d: float | Tensor, mode: str = "set") -> Tensor:
    """One step of the trace recursion in the module docstring (a new tensor)."""
    return add_spikes(x * d, spikes, check.choice(mode, MODES, "mode"))


def add_spikes(decayed: Tensor, spikes: Tensor, mode: str) -> Tensor:
    """The second half of :func:`trace_step`, on an already decayed trace (``mode`` checked)."""
    if mode == "add":
        return decayed + spikes
    return decayed.masked_fill(spikes != 0, 1.0)

"""Current-based LIF (CubaLIF), the neuron of EventProp, integrated exactly over steps of ``dt``.

The ODE is ``tau_syn di/dt = -i`` with jumps ``i += x`` at input spikes, ``tau_mem dv/dt = -v + i``,
a spike when ``v`` crosses ``v_th`` and a reset to 0. With inputs arriving at the start of a step,
its exact solution over one step is

    j    = i[t-1] + x[t]                                  (current after the input jump)
    v[t] = beta * v[t-1] * (1 - R[t]) + kappa * j,        R[t] = H(v[t-1] - v_th)  (detached)
    i[t] = alpha * j,                                     z[t] = H(v[t] - v_th)

with ``alpha = exp(-dt/tau_syn)``, ``beta = exp(-dt/tau_mem)`` and
``kappa = tau_syn (alpha - beta) / (tau_syn - tau_mem)`` (``dt/tau * beta`` for equal taus).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .. import _checks as check
from .. import surrogate
from .base import Neuron


class CubaLIFState(NamedTuple):
    v: Tensor  # membrane, before the reset of its own spike
    i: Tensor  # synaptic current


def cuba_coefficients(tau_mem: float, tau_syn: float, dt: float) -> tuple[float, float, float]:
    """``(alpha, beta, kappa)`` of the exact one-step solution (see the module docstring)."""
    alpha = check.decay(tau_syn, dt, "tau_syn", "dt")
    beta = check.decay(tau_mem, dt, "tau_mem", "dt")
    if math.isclose(tau_syn, tau_mem, rel_tol=1e-9):
        return alpha, beta, dt / tau_mem * beta
    return alpha, beta, tau_syn * (alpha - beta) / (tau_syn - tau_mem)


def cuba_lif_step(
    x: Tensor,
    state: CubaLIFState,
    *,
    alpha: Tensor | float,
    beta: Tensor | float,
    kappa: Tensor | float,
    v_th: Tensor | float,
    spike_fn: surrogate.Surrogate,
) -> tuple[Tensor, CubaLIFState]:
    """One step of the recursion in the module docstring (the reference maths); the coefficients
    come from :func:`cuba_coefficients`, or any others (Norse's Euler ones, for instance)."""
    fired = (state.v > v_th).to(x.dtype)
    j = state.i + x
    v = beta * state.v * (1 - fired) + kappa * j
    return spike_fn(v - v_th), CubaLIFState(v, alpha * j)


class CubaLIF(Neuron):
    """Current-based LIF with time constants ``tau_mem``, ``tau_syn`` and step ``dt`` (seconds).

    Args:
        tau_mem: membrane time constant, > 0 (seconds by convention; any unit shared with ``dt``).
        tau_syn: synaptic current time constant, > 0, same unit.
        dt: the step, > 0, same unit.
        v_th: threshold, > 0; a float or a per-neuron tensor. A spike resets the membrane to 0.
        spike_fn: the surrogate: ``"atan"`` (default), ``"fast_sigmoid"``, ``"sigmoid"``,
            ``"triangle"``, ``"straight_through"``, or any :class:`~torchspike.surrogate.Surrogate`.
    """

    def __init__(
        self,
        tau_mem: float = 20e-3,
        tau_syn: float = 5e-3,
        dt: float = 1e-3,
        v_th: float | Tensor = 1.0,
        *,
        spike_fn: str | surrogate.Surrogate = "atan",
    ):
        super().__init__()
        self.tau_mem, self.tau_syn, self.dt = float(tau_mem), float(tau_syn), float(dt)
        alpha, beta, kappa = cuba_coefficients(tau_mem, tau_syn, dt)
        self.register("alpha", alpha, False)
        self.register("beta", beta, False)
        self.register("kappa", kappa, False)
        self.register("v_th", check.positive(v_th, "v_th"), False)
        self.spike_fn = surrogate.get(spike_fn)

    def extra_repr(self) -> str:
        return f"tau_mem={self.tau_mem:g}, tau_syn={self.tau_syn:g}, dt={self.dt:g}"

    def initial_state(self, x: Tensor) -> CubaLIFState:
        return CubaLIFState(torch.zeros_like(x), torch.zeros_like(x))

    def step(self, x: Tensor, state: CubaLIFState) -> tuple[Tensor, CubaLIFState]:
        return cuba_lif_step(
            x,
            state,
            alpha=self.alpha.to(x.dtype),
            beta=self.beta.to(x.dtype),
            kappa=self.kappa.to(x.dtype),
            v_th=self.v_th.to(x.dtype),
            spike_fn=self.spike_fn,
        )

"""LIF with an adaptive threshold (ALIF): each spike raises the threshold, which decays back.

a[t] = rho * a[t-1] + jump * R[t],        R[t] = H(U[t-1] - v_th - a[t-1])  (detached)
U[t] = beta * U[t-1] + x[t] - (v_th + a[t-1]) * R[t]
z[t] = H(U[t] - v_th - a[t])
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _checks as check
from .. import surrogate
from .base import Neuron


class ALIFState(NamedTuple):
    v: Tensor  # membrane, before the reset of its own spike
    a: Tensor  # threshold adaptation, added to v_th


class ALIF(Neuron):
    """Adaptive LIF; ``rho`` (or ``tau_adapt`` with ``dt``) sets how fast the threshold decays.

    Args:
        beta: membrane decay per step, in [0, 1]; a float or a per-neuron tensor.
        v_th: base threshold, > 0 (the units of the input current summed over steps).
        jump: added to the threshold by each spike, >= 0.
        rho: decay per step of the threshold's increase, in [0, 1]; or give ``tau_adapt``.
        tau_adapt: time constant of that decay, > 0, with ``dt`` in the same unit
            (``rho = exp(-dt / tau_adapt)``).
        dt: the step, > 0 (only with ``tau_adapt``).
        spike_fn: the surrogate: ``"atan"`` (default), ``"fast_sigmoid"``, ``"sigmoid"``,
            ``"triangle"``, ``"straight_through"``, or any :class:`~torchspike.surrogate.Surrogate`.
    """

    def __init__(
        self,
        beta: float | Tensor,
        v_th: float | Tensor = 1.0,
        *,
        jump: float = 0.2,
        rho: float | None = None,
        tau_adapt: float | None = None,
        dt: float | None = None,
        spike_fn: str | surrogate.Surrogate = "atan",
    ):
        super().__init__()
        if (rho is None) == (tau_adapt is None):
            raise ValueError(
                f"give exactly one of rho or tau_adapt, got rho={rho!r}, tau_adapt={tau_adapt!r}"
            )
        if tau_adapt is not None:
            if dt is None:
                raise ValueError(f"dt must be given with tau_adapt, got dt={dt!r}")
            rho = check.decay(tau_adapt, dt, "tau_adapt", "dt")
        check.non_negative(jump, "jump")
        self.register("beta", check.unit_interval(beta, "beta"), False)
        self.register("v_th", check.positive(v_th, "v_th"), False)
        self.register("rho", check.unit_interval(rho, "rho"), False)
        self.register("jump", jump, False)
        self.spike_fn = surrogate.get(spike_fn)

    def initial_state(self, x: Tensor) -> ALIFState:
        return ALIFState(torch.zeros_like(x), torch.zeros_like(x))

    def step(self, x: Tensor, state: ALIFState) -> tuple[Tensor, ALIFState]:
        v_th = self.v_th.to(x.dtype)
        threshold = v_th + state.a
        fired = (state.v > threshold).to(x.dtype)
        a = self.rho.to(x.dtype) * state.a + self.jump.to(x.dtype) * fired
        v = self.beta.to(x.dtype) * state.v + x - threshold.detach() * fired
        return self.spike_fn(v - v_th - a), ALIFState(v, a)

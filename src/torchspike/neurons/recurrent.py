"""Recurrent LIF: a learned weight feeds a layer's spikes back into its own input.

U[t] = beta * U[t-1] + x[t] + W z[t-1] - v_th * R[t]      (otherwise as ``LIF``)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import surrogate
from .base import Neuron
from .lif import LIF, LIFState


class RecurrentLIFState(NamedTuple):
    v: Tensor  # membrane, before the reset of its own spike
    z: Tensor  # spikes of the previous step


class RecurrentLIF(Neuron):
    """LIF layer of ``size`` neurons with all-to-all recurrent weights ``recurrent.weight``.

    Args:
        size: number of neurons, > 0 (the last dimension of the input).
        beta: membrane decay per step, in [0, 1]; a float or a per-neuron tensor.
        v_th: threshold, > 0.
        reset: ``"subtract"`` (default), ``"zero"`` or ``"none"``, as for :class:`~torchspike.LIF`.
        spike_fn: the surrogate: ``"atan"`` (default), ``"fast_sigmoid"``, ``"sigmoid"``,
            ``"triangle"``, ``"straight_through"``, or any :class:`~torchspike.surrogate.Surrogate`.
        learn_beta: make ``beta`` an ``nn.Parameter``.
        learn_v_th: make ``v_th`` an ``nn.Parameter``.
    """

    def __init__(
        self,
        size: int,
        beta: float | Tensor,
        v_th: float | Tensor = 1.0,
        *,
        reset: str = "subtract",
        spike_fn: str | surrogate.Surrogate = "atan",
        learn_beta: bool = False,
        learn_v_th: bool = False,
    ):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"size must be an integer > 0, got {size!r}")
        self.size = size
        self.cell = LIF(
            beta, v_th, reset=reset, spike_fn=spike_fn, learn_beta=learn_beta, learn_v_th=learn_v_th
        )
        self.recurrent = nn.Linear(size, size, bias=False)

    def feature_shape(self) -> tuple[int, ...]:
        return (self.size,)

    def initial_state(self, x: Tensor) -> RecurrentLIFState:
        return RecurrentLIFState(torch.zeros_like(x), torch.zeros_like(x))

    def step(self, x: Tensor, state: RecurrentLIFState) -> tuple[Tensor, RecurrentLIFState]:
        z, lif_state = self.cell.step(x + self.recurrent(state.z), LIFState(state.v))
        return z, RecurrentLIFState(lif_state.v, z)

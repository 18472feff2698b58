"""EventProp layers: ``nn.Module`` wrappers that own the weights and the time constants.

:class:`LIFLayer` maps :class:`~.spikes.Spikes` to spikes (feed-forward or recurrent) and
:class:`LIReadout` maps spikes to voltages; chain them with ``nn.Sequential``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import _checks as check
from .kernel import Kernel
from .li import READOUTS, li_readout
from .lif import lif_layer
from .spikes import Spikes


def _weight(shape: tuple[int, int], mean: float, std: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).normal_(mean, std))


class _EventLayer(nn.Module):
    def __init__(
        self, in_features: int, out_features: int, tau_mem: float, tau_syn: float, dt: float
    ):
        super().__init__()
        self.in_features = check.positive_int(in_features, "in_features")
        self.out_features = check.positive_int(out_features, "out_features")
        self.kernel = Kernel(tau_mem, tau_syn, dt)

    def _check(self, spikes: Spikes) -> Spikes:
        if not isinstance(spikes, Spikes):
            raise ValueError(f"spikes must be eventprop.Spikes, got {type(spikes)!r}")
        if spikes.units != self.in_features:
            raise ValueError(
                f"spikes has {spikes.units} units, this layer takes in_features={self.in_features}"
            )
        if not math.isclose(spikes.dt, self.kernel.dt, rel_tol=1e-9):
            raise ValueError(
                f"spikes.dt={spikes.dt!r} differs from the layer's dt={self.kernel.dt!r}"
            )
        return spikes._replace(times=spikes.times.to(self.weight.dtype))

    def extra_repr(self) -> str:
        k = self.kernel
        return (
            f"{self.in_features}, {self.out_features}, tau_mem={k.tau_mem:g}, "
            f"tau_syn={k.tau_syn:g}, dt={k.dt:g}"
        )


class LIFLayer(_EventLayer):
    """CubaLIF neurons (reset to 0 at ``v_th``) with EventProp gradients; ``Spikes -> Spikes``.

    ``weight`` is ``[out, in]`` drawn from N(``init_mean``, ``init_std``), default
    N(2.2, 1.3) / sqrt(in) (Wunderlich & Pehle's MNIST values at in = 784). ``recurrent`` adds
    ``w_rec`` ``[out, out]`` from N(0, ``rec_std``), default 0.5 / sqrt(out).

    Args:
        in_features: input units, > 0.
        out_features: neurons, > 0.
        recurrent: add recurrent weights ``w_rec``.
        tau_mem: membrane time constant, > 0 (seconds by convention; the unit of ``dt`` and of
            the spike times).
        tau_syn: synaptic time constant, > 0, same unit.
        dt: the step of the time grid, > 0, same unit.
        v_th: threshold, > 0.
        init_mean: mean of the initial weights (default above).
        init_std: their standard deviation.
        rec_std: standard deviation of the initial recurrent weights.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        recurrent: bool = False,
        tau_mem: float = 20e-3,
        tau_syn: float = 5e-3,
        dt: float = 1e-3,
        v_th: float = 1.0,
        init_mean: float | None = None,
        init_std: float | None = None,
        rec_std: float | None = None,
    ):
        super().__init__(in_features, out_features, tau_mem, tau_syn, dt)
        self.v_th = float(check.positive(v_th, "v_th"))
        scale = 1 / math.sqrt(in_features)
        mean = 2.2 * scale if init_mean is None else init_mean
        std = 1.3 * scale if init_std is None else init_std
        self.weight = _weight((out_features, in_features), mean, std)
        if recurrent:
            std = 0.5 / math.sqrt(out_features) if rec_std is None else rec_std
            self.w_rec = _weight((out_features, out_features), 0.0, std)
        else:
            self.register_parameter("w_rec", None)

    def forward(self, spikes: Spikes) -> Spikes:
        spikes = self._check(spikes)
        return lif_layer(spikes, self.weight, self.w_rec, self.kernel, self.v_th)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, v_th={self.v_th:g}, recurrent={self.w_rec is not None}"


class LIReadout(_EventLayer):
    """Non-spiking leaky integrators (CubaLIF without threshold) read out by ``readout``:
    ``max`` / ``sum`` / ``sum_exp`` give ``[B, out]``, ``trace`` gives ``[T, B, out]``
    (see ``torchspike.eventprop.li``). ``weight`` from N(``init_mean``, ``init_std``), default
    N(3.7, 6.9) / sqrt(in) (Wunderlich & Pehle's MNIST values at in = 350).

    Args:
        in_features: input units, > 0.
        out_features: read-out units (classes), > 0.
        readout: ``"max"`` (default), ``"sum"``, ``"sum_exp"`` or ``"trace"``.
        tau_mem: membrane time constant, > 0 (seconds by convention; the unit of ``dt``).
        tau_syn: synaptic time constant, > 0, same unit.
        dt: the step of the time grid, > 0, same unit.
        init_mean: mean of the initial weights (default above).
        init_std: their standard deviation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        readout: str = "max",
        tau_mem: float = 20e-3,
        tau_syn: float = 5e-3,
        dt: float = 1e-3,
        init_mean: float | None = None,
        init_std: float | None = None,
    ):
        super().__init__(in_features, out_features, tau_mem, tau_syn, dt)
        self.readout = check.choice(readout, READOUTS, "readout")
        scale = 1 / math.sqrt(in_features)
        mean = 3.7 * scale if init_mean is None else init_mean
        std = 6.9 * scale if init_std is None else init_std
        self.weight = _weight((out_features, in_features), mean, std)

    def forward(self, spikes: Spikes) -> Tensor:
        spikes = self._check(spikes)
        return li_readout(spikes, self.weight, self.kernel, self.readout)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, readout={self.readout!r}"

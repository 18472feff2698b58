"""Neurons and layers with NIR's semantics, read in discrete time by forward Euler over ``dt``.

NIR defines its neurons as ODEs. torchspike runs them with forward Euler over steps of ``dt``,
the input ``x[t]`` held for one step (the convention of snnTorch and Norse):

    LIF, LI      v[t] = v'[t-1] + dt / tau * (v_leak - v'[t-1] + r * x[t])
    IF, I        v[t] = v'[t-1] + dt * r * x[t]
    CubaLIF/LI   i[t] = i[t-1] + dt / tau_syn * (w_in * x[t] - i[t-1])
                 v[t] = v'[t-1] + dt / tau_mem * (v_leak - v'[t-1] + r * i[t])
    fire         z[t] = H(v[t] - v_th)                  (strict >, surrogate gradient)
    reset        v'[t] = v_reset if z[t] else v[t]      (same step, no gradient through it)

LI, I and CubaLI have no threshold: they output ``v[t]`` and never reset; the others output
``z[t]``. The state starts at rest (``v = v_leak``, ``i = 0``) and holds ``v'``, the membrane after
its reset. The coefficients (``v[t] = a v' + b + g x``) are computed in float64 from the NIR
parameters, which are stored as float64 buffers.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import surrogate
from ..neurons import Neuron
from ..steps import run_steps

Param = float | Tensor | None


class NIRWarning(UserWarning):
    """A network that NIR cannot represent exactly, or a graph that Euler cannot run faithfully."""


class NIRLIFState(NamedTuple):
    v: Tensor  # membrane after its reset


class NIRCubaLIFState(NamedTuple):
    v: Tensor  # membrane after its reset
    i: Tensor  # synaptic current


def _f64(value: float | Tensor, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return t


def _time_constant(tau: float | Tensor, dt: float, name: str) -> Tensor:
    t = _f64(tau, name)
    if not bool((t > 0).all()):
        raise ValueError(f"{name} must be > 0, got {tau!r}")
    if bool((t < dt).any()):
        warnings.warn(
            f"{name} < dt = {dt:g} (min {t.min().item():g}): forward Euler overshoots and the "
            "membrane oscillates; was the graph exported with another dt?",
            NIRWarning,
            stacklevel=3,
        )
    return t


def _check_dt(dt: float) -> float:
    if not (isinstance(dt, int | float) and dt > 0 and dt < float("inf")):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    return float(dt)


class _NIRNeuron(Neuron):
    """Shared plumbing: ``dt``, the threshold and reset (float64 buffers), the surrogate, and
    ``_run`` with every coefficient converted once, not at each step."""

    def __init__(self, dt: float, v_th: Param, v_reset: float | Tensor, spike_fn) -> None:
        super().__init__()
        self.dt = _check_dt(dt)
        self.register_buffer("v_th", None if v_th is None else _f64(v_th, "v_th"))
        self.register_buffer("v_reset", _f64(v_reset, "v_reset") if v_th is not None else None)
        self.spike_fn = surrogate.get(spike_fn)

    def extra_repr(self) -> str:
        return f"{self.kind}, dt={self.dt:g}"

    def _constants(self, dtype: torch.dtype) -> tuple:
        """The coefficients of the subclass's ``_step``, then ``v_th`` and ``v_reset``."""
        if self.v_th is None:
            return (*self.coefficients(dtype), None, None)
        return (*self.coefficients(dtype), self.v_th.to(dtype), self.v_reset.to(dtype))

    def _fire_and_reset(self, v: Tensor, v_th: Tensor | None, v_reset: Tensor | None):
        if v_th is None:
            return v, v
        z = self.spike_fn(v - v_th)
        return z, torch.where(z.detach() > 0, v_reset, v)

    def _run(self, xs: Tensor, state):
        constants = self._constants(xs.dtype)
        return run_steps(lambda x, s: self._step(x, s, *constants), xs, state)

    def step(self, x: Tensor, state):
        return self._step(x, state, *self._constants(x.dtype))


class NIRLIF(_NIRNeuron):
    """NIR ``LIF`` (``tau`` and ``v_th`` given), ``LI`` (no ``v_th``), ``IF`` (no ``tau``) or ``I``.

    One forward-Euler step: ``v = v' + (dt / tau) (v_leak - v' + r x)`` (``IF``:
    ``v = v' + dt r x``); a spike where ``v > v_th``, then ``v = v_reset``. Parameters are
    numbers or per-neuron tensors.

    Args:
        dt: the step, > 0, in the units of ``tau`` (seconds for most producers).
        tau: membrane time constant, > 0 (below ``dt`` a NIRWarning: Euler overshoots); ``None``
            for ``IF`` / ``I`` (no leak).
        r: input resistance: the gain of the input current (NIR's ``r``).
        v_leak: resting potential; only with ``tau``. The state starts there.
        v_th: threshold; ``None`` for ``LI`` / ``I`` (no spikes: the output is the membrane).
        v_reset: the membrane after a spike.
        spike_fn: the surrogate of the spike's derivative: ``"atan"`` (default),
            ``"fast_sigmoid"``, ``"sigmoid"``, ``"triangle"``, ``"straight_through"``, or any
            :class:`~torchspike.surrogate.Surrogate`.
    """

    def __init__(
        self,
        *,
        dt: float,
        tau: Param = None,
        r: float | Tensor = 1.0,
        v_leak: float | Tensor = 0.0,
        v_th: Param = None,
        v_reset: float | Tensor = 0.0,
        spike_fn: str | surrogate.Surrogate = "atan",
    ):
        super().__init__(dt, v_th, v_reset, spike_fn)
        if tau is None and not bool((torch.as_tensor(v_leak) == 0).all()):
            raise ValueError(f"v_leak needs a leak: give tau too, got v_leak={v_leak!r}")
        self.register_buffer("tau", None if tau is None else _time_constant(tau, self.dt, "tau"))
        self.register_buffer("r", _f64(r, "r"))
        self.register_buffer("v_leak", _f64(v_leak, "v_leak") if tau is not None else None)

    @property
    def kind(self) -> str:
        """The NIR node type: ``LIF``, ``LI``, ``IF`` or ``I``."""
        return ("L" if self.tau is not None else "") + ("IF" if self.v_th is not None else "I")

    def coefficients(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """``(a, b, g)`` of ``v[t] = a v' + b + g x[t]``."""
        if self.tau is None:
            a, b, g = torch.ones((), dtype=torch.float64), torch.zeros(()), self.dt * self.r
        else:
            k = self.dt / self.tau
            a, b, g = 1 - k, k * self.v_leak, k * self.r
        return a.to(dtype), b.to(dtype), g.to(dtype)

    def initial_state(self, x: Tensor) -> NIRLIFState:
        rest = self.v_leak if self.v_leak is not None else torch.zeros(())
        return NIRLIFState(torch.zeros_like(x) + rest.to(x.dtype))

    def _step(self, x: Tensor, state: NIRLIFState, a, b, g, v_th, v_reset):
        z, v = self._fire_and_reset(a * state.v + b + g * x, v_th, v_reset)
        return z, NIRLIFState(v)


class NIRCubaLIF(_NIRNeuron):
    """NIR ``CubaLIF`` (current-based LIF), or ``CubaLI`` when ``v_th`` is ``None``.

    One forward-Euler step: ``i = i' + (dt / tau_syn) (w_in x - i')``, then
    ``v = v' + (dt / tau_mem) (v_leak - v' + r i)``; a spike where ``v > v_th``, then
    ``v = v_reset``. Parameters are numbers or per-neuron tensors.

    Args:
        dt: the step, > 0, in the units of the time constants.
        tau_syn: synaptic time constant, > 0 (below ``dt`` a NIRWarning: Euler overshoots).
        tau_mem: membrane time constant, > 0 (likewise).
        r: input resistance: the gain of the synaptic current into the membrane.
        v_leak: resting potential; the state starts there.
        w_in: the gain of the input into the synaptic current.
        v_th: threshold; ``None`` for ``CubaLI`` (no spikes: the output is the membrane).
        v_reset: the membrane after a spike.
        spike_fn: the surrogate of the spike's derivative: ``"atan"`` (default),
            ``"fast_sigmoid"``, ``"sigmoid"``, ``"triangle"``, ``"straight_through"``, or any
            :class:`~torchspike.surrogate.Surrogate`.
    """

    def __init__(
        self,
        *,
        dt: float,
        tau_syn: float | Tensor,
        tau_mem: float | Tensor,
        r: float | Tensor = 1.0,
        v_leak: float | Tensor = 0.0,
        w_in: float | Tensor = 1.0,
        v_th: Param = None,
        v_reset: float | Tensor = 0.0,
        spike_fn: str | surrogate.Surrogate = "atan",
    ):
        super().__init__(dt, v_th, v_reset, spike_fn)
        self.register_buffer("tau_syn", _time_constant(tau_syn, self.dt, "tau_syn"))
        self.register_buffer("tau_mem", _time_constant(tau_mem, self.dt, "tau_mem"))
        self.register_buffer("r", _f64(r, "r"))
        self.register_buffer("v_leak", _f64(v_leak, "v_leak"))
        self.register_buffer("w_in", _f64(w_in, "w_in"))

    @property
    def kind(self) -> str:
        """The NIR node type: ``CubaLIF`` or ``CubaLI``."""
        return "CubaLIF" if self.v_th is not None else "CubaLI"

    def coefficients(self, dtype: torch.dtype) -> tuple[Tensor, ...]:
        """``(a_syn, g_syn, a_mem, b_mem, g_mem)``: ``i = a_syn i + g_syn x``,
        ``v = a_mem v' + b_mem + g_mem i``."""
        k_syn, k_mem = self.dt / self.tau_syn, self.dt / self.tau_mem
        values = (1 - k_syn, k_syn * self.w_in, 1 - k_mem, k_mem * self.v_leak, k_mem * self.r)
        return tuple(c.to(dtype) for c in values)

    def initial_state(self, x: Tensor) -> NIRCubaLIFState:
        return NIRCubaLIFState(torch.zeros_like(x) + self.v_leak.to(x.dtype), torch.zeros_like(x))

    def _step(self, x, state: NIRCubaLIFState, a_syn, g_syn, a_mem, b_mem, g_mem, v_th, v_reset):
        i = a_syn * state.i + g_syn * x
        z, v = self._fire_and_reset(a_mem * state.v + b_mem + g_mem * i, v_th, v_reset)
        return z, NIRCubaLIFState(v, i)


class Threshold(nn.Module):
    """NIR ``Threshold``: ``z = H(x - threshold)`` (strict), stateless, surrogate gradient.

    Args:
        threshold: a number or a per-element tensor.
        spike_fn: the surrogate of the spike's derivative: ``"atan"`` (default),
            ``"fast_sigmoid"``, ``"sigmoid"``, ``"triangle"``, ``"straight_through"``, or any
            :class:`~torchspike.surrogate.Surrogate`.
    """

    def __init__(self, threshold: float | Tensor, spike_fn: str | surrogate.Surrogate = "atan"):
        super().__init__()
        self.register_buffer("threshold", _f64(threshold, "threshold"))
        self.spike_fn = surrogate.get(spike_fn)

    def forward(self, x: Tensor) -> Tensor:
        return self.spike_fn(x - self.threshold.to(x.dtype))


class SumPool2d(nn.Module):
    """NIR ``SumPool2d``: the sum over each window (zero padding).

    Args:
        kernel_size: the window, an int or ``(height, width)``.
        stride: the step between windows, an int or a pair; ``None``: the window's size.
        padding: zeros added on each side, an int or a pair.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)


class Scale(nn.Module):
    """NIR ``Scale``: ``y = x * scale`` elementwise."""

    def __init__(self, scale: float | Tensor):
        super().__init__()
        self.register_buffer("scale", _f64(scale, "scale"))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype)

"""Leaky and non-leaky integrate-and-fire neurons, with snnTorch ``Leaky`` semantics.

    U[t] = beta * U[t-1] + x[t] - v_th * R[t],   R[t] = H(U[t-1] - v_th)  (detached)
    z[t] = H(U[t] - v_th)                          (strict >, surrogate gradient)

``reset="zero"`` gives ``U[t] = beta * U[t-1] * (1 - R[t]) + x[t]`` (the old membrane is zeroed,
the new input kept, as snnTorch 1.0 computes it) and ``"none"`` drops the reset term. The state
holds ``U`` before its own reset, which is applied at the next step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _checks as check
from .. import surrogate
from ..kernels import layout
from ..kernels.lif_linear import lif_linear
from ..kernels.lif_sequence import RESETS, lif_sequence, needs_grad
from ..kernels.workspace import Workspace
from .base import Neuron, autocast_device, fused_applies


class LIFState(NamedTuple):
    v: Tensor  # membrane potential U, before the reset of its own spike


def lif_step(
    x: Tensor,
    state: LIFState,
    *,
    beta: Tensor | float,
    v_th: Tensor | float,
    reset: str,
    spike_fn: surrogate.Surrogate,
) -> tuple[Tensor, LIFState]:
    """One step of the recursion in the module docstring (the reference maths)."""
    fired = (state.v > v_th).to(x.dtype)
    if reset == "zero":
        v = beta * state.v * (1 - fired) + x
    else:
        v = beta * state.v + x
        if reset == "subtract":
            v = v - fired * v_th
    return spike_fn(v - v_th), LIFState(v)


class LIF(Neuron):
    """Leaky integrate-and-fire; give ``beta`` or both ``tau`` and ``dt`` (``beta = exp(-dt/tau)``).

    ``beta`` and ``v_th`` may be per-neuron tensors; ``learn_beta`` / ``learn_v_th`` make them
    parameters (``nn.Parameter``). A learned ``beta`` is used as ``beta.clamp(0, 1)``, as in
    snnTorch.
    ``output="membrane"`` returns ``U`` instead of the spikes (snnTorch's ``mem`` read-out; the
    reset still acts, but no gradient flows through the output spikes). ``compile=True`` runs
    the fused kernel's elementwise pieces through ``torch.compile``
    (see ``torchspike.kernels.compiled``). With spike output the fused backward computes the
    surrogate gradient in the saved membrane's buffer, so a graph can be backpropagated once;
    ``reuse_membrane=False`` keeps the membrane (one more ``[T, B, ...]`` buffer) for
    ``retain_graph=True``. A backward with ``create_graph=True`` leaves the membrane as it is
    and records itself, so a double backward goes through the fused kernel. Under
    ``torch.func`` transforms, forward-mode AD and :func:`~torchspike.neurons.step_by_step` the
    layer runs ``lif_step`` step by step instead of the fused kernel: the same spikes.

    ``tau`` is a time constant in the units of ``dt``, ``beta = exp(-dt/tau)``; SpikingJelly's
    ``tau`` counts steps (decay ``1 - 1/tau``): for its ``tau=2.0`` give ``beta=0.5``.

    Args:
        beta: membrane decay per step, in [0, 1]; a float or a per-neuron tensor.
        v_th: threshold, > 0 (the units of the input current summed over steps); a float or a
            per-neuron tensor.
        tau: membrane time constant, > 0, instead of ``beta`` (with ``dt`` in the same unit).
        dt: the step, > 0 (only with ``tau``).
        reset: ``"subtract"`` (default, ``v_th`` subtracted), ``"zero"`` or ``"none"``.
        spike_fn: the surrogate: ``"atan"`` (default), ``"fast_sigmoid"``, ``"sigmoid"``,
            ``"triangle"``, ``"straight_through"``, or any :class:`~torchspike.surrogate.Surrogate`.
        learn_beta: make ``beta`` an ``nn.Parameter``.
        learn_v_th: make ``v_th`` an ``nn.Parameter``.
        output: ``"spikes"`` (default) or ``"membrane"``.
        compile: run the fused kernel's elementwise pieces through ``torch.compile``.
        reuse_membrane: ``False`` keeps the membrane for ``retain_graph=True``.
    """

    def __init__(
        self,
        beta: float | Tensor | None = None,
        v_th: float | Tensor = 1.0,
        *,
        tau: float | None = None,
        dt: float | None = None,
        reset: str = "subtract",
        spike_fn: str | surrogate.Surrogate = "atan",
        learn_beta: bool = False,
        learn_v_th: bool = False,
        output: str = "spikes",
        compile: bool = False,
        reuse_membrane: bool = True,
    ):
        super().__init__()
        if (beta is None) == (tau is None):
            raise ValueError(f"give exactly one of beta or tau, got beta={beta!r}, tau={tau!r}")
        if tau is not None:
            if dt is None:
                raise ValueError(f"dt must be given with tau, got dt={dt!r}{_TAU_NOTE}")
            beta = check.decay(tau, dt)
        self.register("beta", check.unit_interval(beta, "beta"), learn_beta)
        self.register("v_th", check.positive(v_th, "v_th"), learn_v_th)
        self.reset = check.choice(reset, RESETS, "reset")
        self.spike_fn = surrogate.get(spike_fn)
        self.output = check.choice(output, ("spikes", "membrane"), "output")
        self.compile = bool(compile)
        self.reuse_membrane = bool(reuse_membrane)

    def extra_repr(self) -> str:
        extra = "" if self.output == "spikes" else f", output={self.output!r}"
        return f"beta={_short(self.beta)}, v_th={_short(self.v_th)}, reset={self.reset!r}{extra}"

    def initial_state(self, x: Tensor) -> LIFState:
        return LIFState(torch.zeros_like(x))

    def _start_state(self, x: Tensor) -> LIFState:
        """Zeros as one element expanded to ``x``'s shape: the fused kernel keeps its start
        state for the backward, and a full tensor of zeros would be one more ``[B, ...]``."""
        return LIFState(x.new_zeros(()).expand(x.shape))

    def emits_spikes(self) -> bool:
        """True for ``output="spikes"`` (a subclass with graded outputs must return False)."""
        return self.output == "spikes"

    def _beta(self, dtype: torch.dtype) -> Tensor:
        beta = self.beta.clamp(0, 1) if self.beta.requires_grad else self.beta
        return beta.to(dtype)

    def step(self, x: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        z, state = lif_step(
            x,
            state,
            beta=self._beta(x.dtype),
            v_th=self.v_th.to(x.dtype),
            reset=self.reset,
            spike_fn=self.spike_fn,
        )
        return (state.v if self.output == "membrane" else z), state

    def _run(self, xs: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        return self._fused(xs, state, overwrite=False, workspace=None)

    def _fused(
        self, xs: Tensor, state: LIFState, overwrite: bool, workspace: Workspace | None
    ) -> tuple[Tensor, LIFState]:
        beta, v_th = self._beta(xs.dtype), self.v_th.to(xs.dtype)
        if not fused_applies(xs, state.v, beta, v_th):
            return Neuron._run(self, xs, state)  # the reference, lif_step under autograd
        if layout.channels_last_steps(xs, beta, v_th):  # elementwise: any order of the neurons
            nhwc = [layout.to_nhwc(t) for t in (xs, state.v, beta, v_th)]
            outs, end = self._fused_steps(*nhwc, overwrite, workspace)
            return layout.from_nhwc(outs), LIFState(layout.from_nhwc(end.v))
        return self._fused_steps(xs, state.v, beta, v_th, overwrite, workspace)

    def _fused_steps(
        self,
        xs: Tensor,
        v0: Tensor,
        beta: Tensor,
        v_th: Tensor,
        overwrite: bool,
        workspace: Workspace | None,
    ) -> tuple[Tensor, LIFState]:
        inference = not needs_grad(xs, v0, beta, v_th)
        if self.output == "spikes" and (self.reuse_membrane or inference):
            spikes, v = lif_sequence(
                xs,
                v0,
                beta,
                v_th,
                self.reset,
                self.spike_fn,
                self.compile,
                membrane=False,
                overwrite_input=overwrite and self.reuse_membrane,
                workspace=workspace,
            )
            return spikes, LIFState(v)
        spikes, vs = lif_sequence(
            xs, v0, beta, v_th, self.reset, self.spike_fn, self.compile, workspace=workspace
        )
        return (vs if self.output == "membrane" else spikes), LIFState(vs[-1])

    def forward_into_linear(
        self,
        xs: Tensor,
        state: LIFState | None,
        linear: nn.Linear,
        *,
        overwrite_input: bool = False,
        workspace: Workspace | None = None,
    ) -> tuple[Tensor, LIFState] | None:
        """The spikes fed to ``linear`` inside one autograd node
        (:mod:`torchspike.kernels.lif_linear`), which never holds their whole gradient: for a
        spiking layer that reuses its membrane, without compile or a subclass's own ``forward``,
        ``_run`` or ``_fused``, when a gradient is needed."""
        cls = type(self)
        if (
            cls._run is not LIF._run  # a subclass's own run, or its own fused kernel
            or cls._fused not in (LIF._fused, IF._fused)
            or cls.forward is not Neuron.forward
            or xs.numel() == 0
            or self.output != "spikes"
            or not self.reuse_membrane
            or self.compile
            or xs.dim() != 3
            or autocast_device(xs) is not None  # the neuron in float32, the Linear autocast
        ):
            return None
        state = self._checked(xs, state)
        beta, v_th = self._beta(xs.dtype), self.v_th.to(xs.dtype)
        params = [p for p in (linear.weight, linear.bias) if p is not None]
        if not fused_applies(xs, state.v, beta, v_th, *params):
            return None
        if not needs_grad(xs, state.v, beta, v_th, *params):
            return None
        y, v = lif_linear(
            xs,
            state.v,
            beta,
            v_th,
            self.reset,
            self.spike_fn,
            linear.weight,
            linear.bias,
            overwrite_input=overwrite_input,
            workspace=workspace,
        )
        return y, LIFState(v)

    def _run_with(
        self, xs: Tensor, state: LIFState, overwrite: bool, workspace: Workspace | None
    ) -> tuple[Tensor, LIFState]:
        """The membrane sequence kept in ``xs`` (one ``[T, B, ...]`` buffer fewer) and the
        others in ``workspace``, unless a subclass runs its own ``_run``."""
        if type(self)._run is not LIF._run:
            return self._run(xs, state)
        return self._fused(xs, state, overwrite, workspace)


class IF(LIF):
    """Integrate-and-fire: LIF with ``beta = 1``.

    ``rectify=True`` (the surrogate-gradient IF tutorial) clamps a negative membrane to 0 and
    resets to 0 after a spike: ``U[t] = max(0, U[t-1] * (1 - R[t]) + x[t])``.

    Args:
        v_th: threshold, > 0; a float or a per-neuron tensor.
        rectify: clamp the membrane at 0 (then ``reset`` must be ``"zero"`` or left out).
        reset: ``"subtract"`` (the default without ``rectify``), ``"zero"`` or ``"none"``.
        spike_fn: the surrogate: ``"atan"`` (default), ``"fast_sigmoid"``, ``"sigmoid"``,
            ``"triangle"``, ``"straight_through"``, or any :class:`~torchspike.surrogate.Surrogate`.
        learn_v_th: make ``v_th`` an ``nn.Parameter``.
        reuse_membrane: ``False`` keeps the membrane for ``retain_graph=True``.
    """

    def __init__(
        self,
        v_th: float | Tensor = 1.0,
        *,
        rectify: bool = False,
        reset: str | None = None,
        spike_fn: str | surrogate.Surrogate = "atan",
        learn_v_th: bool = False,
        reuse_membrane: bool = True,
    ):
        if rectify and reset not in (None, "zero"):
            raise ValueError(f"rectify=True resets to zero; reset must be 'zero', got {reset!r}")
        reset = reset or ("zero" if rectify else "subtract")
        super().__init__(
            1.0,
            v_th,
            reset=reset,
            spike_fn=spike_fn,
            learn_v_th=learn_v_th,
            reuse_membrane=reuse_membrane,
        )
        self.rectify = rectify

    def extra_repr(self) -> str:
        return f"v_th={_short(self.v_th)}, reset={self.reset!r}, rectify={self.rectify}"

    def step(self, x: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        if not self.rectify:
            return super().step(x, state)
        v_th = self.v_th.to(x.dtype)
        fired = (state.v > v_th).to(x.dtype)
        v = torch.relu(state.v * (1 - fired) + x)
        return self.spike_fn(v - v_th), LIFState(v)

    def forward_into_linear(self, xs, state, linear, **options):
        if self.rectify:  # no fused kernel for the clamp
            return None
        return super().forward_into_linear(xs, state, linear, **options)

    def _fused(
        self, xs: Tensor, state: LIFState, overwrite: bool, workspace: Workspace | None
    ) -> tuple[Tensor, LIFState]:
        if self.rectify:  # the clamp has no fused kernel: the step-by-step reference
            return Neuron._run(self, xs, state)
        return super()._fused(xs, state, overwrite, workspace)


class LI(Neuron):
    """Leaky integrator read-out (no spikes): ``v[t] = beta * v[t-1] + x[t]``; returns ``v``.

    Args:
        beta: decay per step, in [0, 1]; a float or a per-neuron tensor.
        tau: time constant, > 0, instead of ``beta`` (``beta = exp(-dt/tau)``).
        dt: the step, > 0, in the unit of ``tau`` (only with ``tau``).
        learn_beta: make ``beta`` an ``nn.Parameter``.
    """

    def __init__(
        self,
        beta: float | Tensor | None = None,
        *,
        tau: float | None = None,
        dt: float | None = None,
        learn_beta: bool = False,
    ):
        super().__init__()
        if (beta is None) == (tau is None):
            raise ValueError(f"give exactly one of beta or tau, got beta={beta!r}, tau={tau!r}")
        if tau is not None:
            if dt is None:
                raise ValueError(f"dt must be given with tau, got dt={dt!r}{_TAU_NOTE}")
            beta = check.decay(tau, dt)
        self.register("beta", check.unit_interval(beta, "beta"), learn_beta)

    def extra_repr(self) -> str:
        return f"beta={_short(self.beta)}"

    def initial_state(self, x: Tensor) -> LIFState:
        return LIFState(torch.zeros_like(x))

    def step(self, x: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        v = self.beta.to(x.dtype) * state.v + x
        return v, LIFState(v)


_TAU_NOTE = (
    " (beta = exp(-dt/tau); SpikingJelly's tau counts steps, decay 1 - 1/tau: for that give "
    "beta=1 - 1/tau instead)"
)


def _short(t: Tensor) -> str:
    return f"{t.item():.4g}" if t.numel() == 1 else f"tensor{tuple(t.shape)}"

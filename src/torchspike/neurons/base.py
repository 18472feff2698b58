"""The neuron contract: ``forward(xs, state=None) -> (outputs, state)`` over ``[T, B, ...]``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .. import _checks as check
from ..kernels import lif_sequence
from ..kernels.workspace import Workspace
from ..steps import current_scope, run_steps
from .peer_names import check_peer_names

_STEP_BY_STEP: ContextVar[bool] = ContextVar("torchspike_step_by_step", default=False)


@contextmanager
def step_by_step() -> Iterator[None]:
    """Neurons called inside run their step function under autograd (the reference), not a
    fused kernel: to compare a result with the reference, or to rule a kernel out. The fused
    kernels support a double backward (``create_graph=True``) themselves; ``torch.func``
    transforms and forward-mode AD take the reference path without this."""
    token = _STEP_BY_STEP.set(True)
    try:
        yield
    finally:
        _STEP_BY_STEP.reset(token)


def fused_applies(*tensors: Tensor) -> bool:
    """True where a neuron may run a fused kernel on ``tensors``: outside :func:`step_by_step`,
    ``torch.func`` transforms and forward-mode AD
    (:func:`~torchspike.kernels.lif_sequence.applies`)."""
    return lif_sequence.applies(*tensors) and (
        torch.compiler.is_compiling() or not _STEP_BY_STEP.get()
    )


def as_param(value: float | Tensor, learn: bool) -> Tensor:
    """A float tensor for a neuron parameter: an ``nn.Parameter`` if ``learn``, else a buffer."""
    t = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone().detach()
    return nn.Parameter(t) if learn else t


class Neuron(nn.Module):
    """Base class: subclasses define ``initial_state`` and ``step`` (the maths, autograd-friendly).

    ``forward`` checks the input, builds zero state lazily from ``xs[0]`` (shape, dtype, device)
    and runs ``step`` over time. Subclasses with a fused kernel override ``_run``. Called inside
    a module that ``SpikingNet`` runs (``x`` is one step ``[B, ...]``, or all steps folded as
    ``[T*B, ...]``), a neuron returns ``(outputs, state)`` shaped like ``x`` and the network
    keeps its state from step to step (:mod:`torchspike.net`).

    Under ``torch.autocast`` a neuron runs in float32, as normalisation layers do: a bfloat16 or
    float16 input and state are cast to float32, autocast is off inside, and the outputs and
    state are float32 (a membrane summed over many steps in bfloat16 drifts, and flips spikes).
    Keyword names from other libraries (``threshold=``, ``spike_grad=``, ...) raise a
    ``TypeError`` naming torchspike's (:mod:`torchspike.neurons.peer_names`).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = check_peer_names(cls.__init__)
        if "step" in cls.__dict__:  # step(x) and step(x, None) start from initial_state(x)
            cls.step = _fresh_state(cls.__dict__["step"])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """As ``nn.Module``; inside a module that ``SpikingNet`` runs over time, the call goes
        through the network's :class:`~torchspike.steps.Scope`, which keeps the state."""
        # torch.compile: SpikingNet runs modules with neurons inside outside the compiled graph
        scope = None if torch.compiler.is_compiling() else current_scope()
        if scope is None:
            return super().__call__(*args, **kwargs)
        return scope.run_neuron(self, *args, **kwargs)

    def register(self, name: str, value: float | Tensor, learn: bool) -> None:
        param = as_param(value, learn)
        if learn:
            self.register_parameter(name, param)
        else:
            self.register_buffer(name, param)

    def feature_shape(self) -> tuple[int, ...] | None:
        """The trailing input shape the parameters fix, or ``None`` if any shape works."""
        shapes = [tuple(t.shape) for t in self._per_neuron_tensors() if t.dim() > 0]
        return max(shapes, key=len) if shapes else None

    def _per_neuron_tensors(self) -> list[Tensor]:
        return [*self.parameters(recurse=False), *self.buffers(recurse=False)]

    def emits_spikes(self) -> bool:
        """True when ``forward`` returns only 0s and 1s (a layer fed them may store them as
        bytes); False where that is not known."""
        return False

    def initial_state(self, x: Tensor) -> NamedTuple:
        raise NotImplementedError

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def _start_state(self, x: Tensor) -> Any:
        """The state ``forward`` starts from when given none: ``initial_state(x)``, or the same
        values in less memory (a subclass may return read-only views, as ``LIF`` does)."""
        return self.initial_state(x)

    def forward(
        self,
        xs: Tensor,
        state: Any = None,
        *,
        overwrite_input: bool = False,
        workspace: Workspace | None = None,
    ) -> tuple[Tensor, Any]:
        """``(outputs, state)`` over ``xs``; ``overwrite_input=True`` says ``xs`` is a temporary
        the caller no longer needs, so a fused kernel may keep its own buffers in it (as
        ``SpikingNet`` does with the output of a layer it computed); a ``workspace``
        (:mod:`torchspike.kernels.workspace`) lends a fused kernel its buffers."""
        if autocast_device(xs) is not None:
            with neuron_precision(xs) as xs:
                return self.forward(xs, _float32_state(state), workspace=workspace)
        state = self._checked(xs, state)
        if overwrite_input or workspace is not None:
            return self._run_with(xs, state, overwrite_input, workspace)
        return self._run(xs, state)

    def _checked(self, xs: Tensor, state: Any) -> Any:
        """The state to start from, after checking ``xs`` and ``state`` against the layer."""
        check.sequence(xs)
        shape = self.feature_shape()
        if shape is not None:
            check.trailing_shape(xs, shape, "xs", f"the {type(self).__name__} size")
        if state is None:
            return self._start_state(xs[0])
        _check_state(state, xs)
        return state

    def forward_into_linear(
        self,
        xs: Tensor,
        state: Any,
        linear: nn.Linear,
        *,
        overwrite_input: bool = False,
        workspace: Workspace | None = None,
    ) -> tuple[Tensor, Any] | None:
        """``(linear applied to the outputs, state)`` from one fused kernel, or ``None`` where
        the layer has none for this call (the caller then runs the two layers one by one)."""
        return None

    def _run(self, xs: Tensor, state: Any) -> tuple[Tensor, Any]:
        return run_steps(self.step, xs, state)

    def _run_with(
        self, xs: Tensor, state: Any, overwrite: bool, workspace: Workspace | None
    ) -> tuple[Tensor, Any]:
        """``_run`` for an ``xs`` that may be overwritten and with buffers from ``workspace``; by
        default the same as ``_run``."""
        return self._run(xs, state)


def autocast_device(xs: Tensor) -> str | None:
    """The device type of ``xs`` where autocast is on for it (a neuron then runs in float32)."""
    if not _any_autocast():  # one global check, a third of the per-device one
        return None
    device = xs.device.type
    return device if torch.is_autocast_enabled(device) else None


_any_autocast = getattr(torch._C, "_is_any_autocast_enabled", lambda: True)


@contextmanager
def neuron_precision(xs: Tensor) -> Iterator[Tensor]:
    """``xs`` as a neuron runs on it: under autocast, cast to float32 with autocast off inside
    the block (see :class:`Neuron`); otherwise ``xs`` itself."""
    device = autocast_device(xs)
    if device is None:
        yield xs
        return
    with torch.autocast(device, enabled=False):
        yield _float32(xs)


def _float32(x: Tensor) -> Tensor:
    low = x.is_floating_point() and torch.finfo(x.dtype).bits < 32
    return x.float() if low else x


def _float32_state(state: Any) -> Any:
    if state is None:
        return None
    return type(state)(*(_float32(t) if isinstance(t, Tensor) else t for t in state))


def _fresh_state(step: Any) -> Any:
    @functools.wraps(step)
    def step_from(self: Neuron, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        return step(self, x, self.initial_state(x) if state is None else state)

    return step_from


def _check_state(state: Any, xs: Tensor) -> None:
    for name, value in zip(state._fields, state, strict=True):
        if tuple(value.shape) != tuple(xs.shape[1:]):
            raise ValueError(
                f"state.{name} must have shape {tuple(xs.shape[1:])} (one step of xs), "
                f"got {tuple(value.shape)}"
            )

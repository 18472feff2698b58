"""Running layers over time: step by step, or with time folded into the batch.

A neuron's reference execution loops its step function under autograd (:func:`run_steps`);
a stateless layer runs once on all steps as ``[T * B, ...]`` (:func:`fold_time`), through the
fast Linear products of :mod:`torchspike.kernels` where they give the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor, nn

from .kernels.conv_pool import is_pool_2x2, max_pool_2x2
from .kernels.event_conv import maybe_event_conv
from .kernels.event_conv_pool import maybe_event_conv_pool
from .kernels.folded_linear import folded_linear
from .kernels.lif_sequence import applies as kernels_apply
from .kernels.lif_sequence import needs_grad
from .kernels.sparse import maybe_sparse_linear
from .kernels.workspace import Workspace

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


def run_steps(step: StepFn, xs: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Reference execution: ``y[t], state = step(x[t], state)`` for each t, stacked."""
    ys = []
    for x in xs.unbind(0):  # unbind, not xs[t]: indexing makes backward O(T^2)
        y, state = step(x, state)
        ys.append(y)
    return torch.stack(ys), state


def is_static(xs: Tensor) -> bool:
    """True when ``xs`` is one input repeated over time (an ``expand`` with time stride 0)."""
    return xs.dim() >= 1 and xs.shape[0] > 1 and xs.stride(0) == 0


def fold_time(layer: nn.Module, xs: Tensor) -> Tensor:
    """Apply a stateless layer to all time steps at once, as ``[T * B, ...]``.

    A static input (see :func:`is_static`) goes through the layer once and is expanded again,
    so a Linear or Conv in front of the first neuron costs one step, not T. A Linear fed sparse
    binary spikes uses :func:`torchspike.kernels.sparse.maybe_sparse_linear` (a Conv2d fed sparse
    binary events or spikes :func:`torchspike.kernels.event_conv.maybe_event_conv`), unless it has
    forward hooks (they see the layer called as usual). A neuron called inside ``layer`` raises:
    it would take the folded ``T*B`` as time (``SpikingNet`` runs such layers over time).
    """
    return fold_time_owned(layer, xs)[0]


def fold_time_owned(
    layer: nn.Module,
    xs: Tensor,
    spikes: bool = False,
    *,
    workspace: Workspace | None = None,
) -> tuple[Tensor, bool]:
    """:func:`fold_time`, and whether its result is a new tensor that nothing else refers to
    (no view, no hook saw it), which the next neuron may overwrite. A plain Linear runs as
    :func:`~torchspike.kernels.folded_linear.folded_linear` with a ``workspace`` (its output
    and input gradient in reused buffers) or with ``spikes``: ``xs`` holds only 0s and 1s (a
    spiking neuron's output), kept as bytes for the weight gradient. A CPU Conv2d runs
    channels-last (:func:`channels_last`)."""
    steps = xs.shape[0]
    if is_static(xs):
        with _stateless(layer, xs):
            y = layer(channels_last(layer, xs[0]))
        return y.unsqueeze(0).expand(steps, *y.shape), False
    x = xs.reshape(steps * xs.shape[1], *xs.shape[2:])
    if plain_linear(layer, x):
        shape = (steps, xs.shape[1], layer.out_features)
        w, b = layer.weight, layer.bias
        y = maybe_sparse_linear(x, w, b, shape, workspace=workspace)  # sums of weight columns
        as_bytes = spikes and needs_grad(x, *[p for p in (w, b) if p is not None])
        if y is None and (workspace is not None or as_bytes):
            y = folded_linear(x, w, b, shape, spikes_as_bytes=as_bytes, workspace=workspace)
        if y is not None:
            return y, True
    if is_pool_2x2(layer, x):  # after a convolution or a neuron (kernels.conv_pool)
        y = max_pool_2x2(x, workspace)
        return y.view(steps, xs.shape[1], *y.shape[1:]), True
    if type(layer) is nn.Conv2d:  # input events or spikes: kernels.event_conv
        y = maybe_event_conv(layer, x)
        if y is not None:
            return y.view(steps, xs.shape[1], *y.shape[1:]), False
    with _stateless(layer, xs):
        y = layer(channels_last(layer, x))
    return y.reshape(steps, xs.shape[1], *y.shape[1:]), False


def fold_conv_pool(
    conv: nn.Module, pool: nn.Module | None, xs: Tensor, workspace: Workspace | None = None
) -> Tensor | None:
    """``pool`` after ``conv``, both folded over time (:func:`fold_time`), as one event
    convolution with 2x2 max pooling (:mod:`torchspike.kernels.event_conv_pool`) where ``xs``
    holds sparse binary events or spikes and both layers are plain; else ``None``. The result
    is a new tensor that nothing else refers to; ``workspace`` supplies the buffer of the
    input gradient."""
    if type(conv) is not nn.Conv2d or is_static(xs) or xs.dim() != 5:
        return None
    y = maybe_event_conv_pool(conv, pool, xs.reshape(-1, *xs.shape[2:]), workspace)
    return None if y is None else y.view(*xs.shape[:2], *y.shape[1:])


def channels_last(layer: nn.Module, x: Tensor) -> Tensor:
    """``x`` in channels-last memory for a CPU ``nn.Conv2d``, else ``x``: the same values up to
    float rounding (the sums run in another order). oneDNN's channels-last convolutions beat
    its NCHW ones, forward and backward (its NCHW path reorders to a blocked layout and back
    on every call), and the layers after a convolution keep the layout: BatchNorm, a LIF
    (:mod:`.kernels.layout`) and the 2x2 max pooling (:mod:`.kernels.conv_pool`, which returns
    NCHW). The weight keeps its own layout, and so does its gradient."""
    if type(layer) is nn.Conv2d and x.dim() == 4 and x.device.type == "cpu":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _stateless(layer: nn.Module, xs: Tensor) -> AbstractContextManager:
    """The scope of a layer run once on all steps: a neuron called inside it raises."""
    if torch.compiler.is_compiling():  # a compiled graph keeps no context variable
        return nullcontext()
    return scoped(Scope("stateless", xs, layer=type(layer).__name__))


def plain_linear(layer: nn.Module, x: Tensor, dims: int = 2) -> bool:
    """True when ``layer(x)`` is exactly ``F.linear(x, weight, bias)`` for an ``x`` of ``dims``
    dimensions: an ``nn.Linear`` (not a subclass) without hooks, outside autocast, with ``x`` of
    the weight's dtype; only then may its product be computed another way (:mod:`.kernels.sparse`,
    :mod:`.kernels.folded_linear`, :mod:`.kernels.lif_linear`), and not under ``torch.func``
    transforms or forward-mode AD, which those kernels do not support
    (:func:`~torchspike.kernels.lif_sequence.applies`)."""
    return (
        type(layer) is nn.Linear
        and not has_hooks(layer)
        and x.dim() == dims
        and x.dtype == layer.weight.dtype
        and not torch.is_autocast_enabled(x.device.type)
        and kernels_apply(x, layer.weight)
    )


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def has_hooks(layer: nn.Module) -> bool:
    """True when calling ``layer`` would run hooks, its own or global ones, forward or backward:
    they must see the layer called as usual, with inputs and outputs of their own."""
    module = nn.modules.module
    return any(getattr(layer, name, None) for name in _HOOKS) or any(
        getattr(module, "_global" + name, None) for name in _HOOKS
    )


# ---------------------------------------------------------------------------------------------
# A module with neurons inside, run over time: the scope its neurons keep their state in


class Scope:
    """The time context of one call: where a module's neurons find and leave their state.

    ``SpikingNet`` opens one for each call of a layer and discards it afterwards (a context
    variable, so threads and nested calls never share it). ``path`` says what the layer's
    ``forward`` receives: ``"folded"``, all steps at once as ``[T*B, ...]`` (each neuron
    unfolds it to ``[T, B, ...]`` and runs its sequence kernel); ``"per-step"``, one step
    ``[B, ...]`` per call (each neuron advances one step); ``"stateless"``, a layer run as if it
    held no neuron, where calling one is an error. ``names`` maps the layer's neurons (and
    ``Feedback`` loops) to their names; ``states`` holds their state, updated as they run.
    """

    def __init__(
        self,
        path: str,
        xs: Tensor,
        *,
        layer: str,
        names: dict[nn.Module, str] | None = None,
        states: dict[nn.Module, Any] | None = None,
        records: dict[nn.Module, list] | None = None,
    ):
        self.path, self.layer = path, layer
        self.steps, self.batch = xs.shape[0], (xs.shape[1] if xs.dim() > 1 else 0)
        self.dtype, self.device = xs.dtype, xs.device
        self.names = names or {}
        self.states = dict(states or {})
        self.records = records
        self.called: set[nn.Module] = set()  # neurons run during this step (or the folded call)
        self.pending: dict[nn.Module, Tensor] = {}  # Feedback values written during this step

    def end_step(self) -> None:
        self.states.update(self.pending)
        self.pending.clear()
        self.called.clear()

    def name(self, module: nn.Module) -> str:
        name = self.names.get(module)
        if name is not None:
            return f"'{name}' ({type(module).__name__})"
        raise ValueError(
            f"a {type(module).__name__} was called in the forward of layer {self.layer} but is "
            "not one of its submodules, so SpikingNet cannot keep its state: register it (as an "
            "attribute or in an nn.ModuleList, not a plain list or dict)"
        )

    def run_neuron(self, neuron: nn.Module, x: Tensor, state: Any = None, **options: Any):
        """``neuron(x)`` as the module calls it: unfold ``[T*B, ...]`` (or take one step
        ``[B, ...]``), run the neuron's own ``forward`` over time with its state from the
        scope, keep the new state, and hand back ``(outputs, state)`` shaped like ``x``."""
        if self.path == "stateless":
            raise ValueError(
                f"a {type(neuron).__name__} was called inside layer {self.layer}, which "
                "SpikingNet runs once on all time steps folded into the batch ([T*B, ...]): the "
                "neuron would take T*B as time. Register the neuron as a submodule of that "
                "layer (an attribute or nn.ModuleList, not a plain list) so that SpikingNet "
                "runs the layer over time, or call it outside the layer"
            )
        name = self.name(neuron)
        if state is not None or options:
            raise ValueError(
                f"neuron {name} was called with a state or options inside SpikingNet, which "
                "keeps every neuron's state itself: call it as neuron(x), and pass a state to "
                "continue a sequence to the network, net(xs, state)"
            )
        if neuron in self.called:
            raise ValueError(
                f"neuron {name} was called twice in one time step of layer {self.layer}: a "
                "neuron module holds one state; give each place in forward its own neuron"
            )
        self.called.add(neuron)
        xs = self._sequence(name, x)
        token = _SCOPE.set(None)  # the neuron's own forward runs as called directly
        try:
            ys, state = nn.Module.__call__(neuron, xs, self.states.get(neuron))
        finally:
            _SCOPE.reset(token)
        self.states[neuron] = state
        if self.records is not None:
            self.records.setdefault(neuron, []).append((ys, state))
        return ys.reshape(-1, *ys.shape[2:]), state

    def _sequence(self, name: str, x: Tensor) -> Tensor:
        """``x`` as the ``[T, B, ...]`` the neuron runs on, or a clear error."""
        folded = self.path == "folded"
        rows, steps = (self.steps * self.batch, self.steps) if folded else (self.batch, 1)
        if isinstance(x, Tensor) and x.dim() >= 1 and x.shape[0] == rows:
            return x.reshape(steps, self.batch, *x.shape[1:])
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        if folded:
            raise ValueError(
                f"neuron {name} in layer {self.layer} got {shape}; with time folded into the "
                f"batch every tensor there has T*B = {self.steps}*{self.batch} = {rows} rows "
                "first. Something in forward mixes samples or time steps (a reduction, "
                "concatenation or view over dimension 0): run the layer step by step with "
                "SpikingNet(..., path='per-step')"
            )
        raise ValueError(
            f"neuron {name} in layer {self.layer} got {shape}; run step by step, forward sees "
            f"one time step [B, ...] with B = {self.batch} and must hand each neuron a tensor "
            "with the batch first"
        )

    def feedback(self, loop: nn.Module, what: str) -> Scope:
        if self.path != "per-step":
            raise ValueError(
                f"Feedback {self.name(loop)}.{what}() in layer {self.layer} needs the layer run "
                f"step by step, not {self.path}: use SpikingNet(..., path='auto' or 'per-step')"
            )
        self.name(loop)
        return self


_SCOPE: ContextVar[Scope | None] = ContextVar("torchspike_scope", default=None)


def current_scope() -> Scope | None:
    """The scope of the module call now running in this thread, if any."""
    return _SCOPE.get()


@contextmanager
def scoped(scope: Scope | None) -> Iterator[Scope | None]:
    """Make ``scope`` current for the ``with`` block (``None``: no scope)."""
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


@torch.compiler.disable  # the scope is a context variable: run eagerly inside torch.compile
def run_module(
    layer: nn.Module,
    xs: Tensor,
    path: str,
    *,
    name: str,
    names: dict[nn.Module, str],
    states: dict[nn.Module, Any],
    records: dict[nn.Module, list] | None = None,
) -> tuple[Tensor, dict[nn.Module, Any]]:
    """Run ``layer`` (whose ``forward`` takes one step ``[B, ...]``) over ``xs`` ``[T, B, ...]``
    on ``path`` (``"folded"`` or ``"per-step"``, see :class:`Scope`); returns the outputs
    ``[T, B, ...]`` and every neuron's state at the end."""
    steps, batch = xs.shape[0], xs.shape[1]
    scope = Scope(path, xs, layer=name, names=names, states=states, records=records)
    with scoped(scope):
        if path == "folded":
            y = layer(xs.reshape(steps * batch, *xs.shape[2:]))
            ys = _unfold(y, steps, batch, name, path).reshape(steps, batch, *y.shape[1:])
        else:
            outs = []
            for x in xs.unbind(0):
                outs.append(_unfold(layer(x), 1, batch, name, path))
                scope.end_step()
            ys = torch.stack(outs)
    return ys, scope.states


def _unfold(y: Any, steps: int, batch: int, name: str, path: str) -> Tensor:
    if not isinstance(y, Tensor):
        raise ValueError(
            f"layer {name}'s forward must return one tensor, got {type(y).__name__} (a neuron "
            "returns (outputs, state): return the outputs; read states with net.trace)"
        )
    if y.dim() == 0 or y.shape[0] != steps * batch:
        raise ValueError(
            f"layer {name} ({path}) returned shape {tuple(y.shape)}, expected {steps * batch} "
            f"rows first (T*B = {steps}*{batch} folded, B per step): forward must keep the "
            "batch first; if it mixes time steps, use SpikingNet(..., path='per-step')"
        )
    return y

"""Running layers over time: step by step, or with time folded into the batch.

A neuron's reference execution loops its step function under autograd (:func:`run_steps`);
a stateless layer runs once on all steps as ``[T * B, ...]`` (:func:`fold_time`), through the
fast Linear products of :mod:`torchspike.kernels` where they give the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .kernels.folded_linear import folded_linear
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
    binary spikes uses :func:`torchspike.kernels.sparse.maybe_sparse_linear`, unless it has
    forward hooks (they see the layer called as usual).
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
    spiking neuron's output), kept as bytes for the weight gradient."""
    steps = xs.shape[0]
    if is_static(xs):
        y = layer(xs[0])
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
    y = layer(x)
    return y.reshape(steps, xs.shape[1], *y.shape[1:]), False


def plain_linear(layer: nn.Module, x: Tensor, dims: int = 2) -> bool:
    """True when ``layer(x)`` is exactly ``F.linear(x, weight, bias)`` for an ``x`` of ``dims``
    dimensions: an ``nn.Linear`` (not a subclass) without hooks, outside autocast, with ``x`` of
    the weight's dtype; only then may its product be computed another way (:mod:`.kernels.sparse`,
    :mod:`.kernels.folded_linear`, :mod:`.kernels.lif_linear`)."""
    return (
        type(layer) is nn.Linear
        and not has_hooks(layer)
        and x.dim() == dims
        and x.dtype == layer.weight.dtype
        and not torch.is_autocast_enabled(x.device.type)
    )


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def has_hooks(layer: nn.Module) -> bool:
    """True when calling ``layer`` would run hooks, its own or global ones, forward or backward:
    they must see the layer called as usual, with inputs and outputs of their own."""
    module = nn.modules.module
    return any(getattr(layer, name, None) for name in _HOOKS) or any(
        getattr(module, "_global" + name, None) for name in _HOOKS
    )

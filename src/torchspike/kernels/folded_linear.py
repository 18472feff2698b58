"""The Linear of a ``SpikingNet`` over folded time: ``y = x W^T + b`` on ``[T * B, K]`` rows.

The same products as ``F.linear``, in buffers of the network's
:class:`~torchspike.kernels.workspace.Workspace`: the output and the input gradient ``dx = dy W`` (a
``[T, B, K]`` block every step) are reused from step to step instead of being allocated afresh. The
weight gradient ``dW = dy^T x`` needs ``x``; with ``spikes_as_bytes`` (``x`` holds only 0s and 1s,
the output of a spiking neuron) it is kept as one byte per entry, a quarter of float32, and backward
accumulates ``dW`` over blocks of rows, each converted back to float in one small buffer (from
uint8: the bool-to-float copy is slower).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .workspace import Workspace, empty

_ROWS = 1024  # rows of x converted back to float at a time in backward (fastest of 256-1024)


class _FoldedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, shape, as_bytes: bool, workspace: Workspace | None):
        y = empty(workspace, shape, x.dtype, x.device)
        linear_into(x, weight, bias, y.view(x.shape[0], weight.shape[0]))
        saved = None
        if ctx.needs_input_grad[1]:
            saved = x.bool().view(torch.uint8) if as_bytes else x
        ctx.save_for_backward(saved, weight)
        ctx.has_bias, ctx.as_bytes, ctx.workspace = bias is not None, as_bytes, workspace
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gy = gy.reshape(-1, weight.shape[0])
        gx = gw = gb = None
        if need_x:
            gx = input_grad(gy, weight, ctx.workspace)
        if need_w and not ctx.as_bytes:
            gw = gy.t() @ x
        elif need_w:
            gw = _weight_grad_from_bytes(gy, x, weight)
        if need_b and ctx.has_bias:
            gb = gy.sum(0)
        return gx, gw, gb, None, None, None


def linear_into(x: Tensor, weight: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
    """``F.linear(x, weight, bias)`` for a 2-D ``x``, written into ``out``."""
    if bias is None:
        return torch.mm(x, weight.t(), out=out)
    return torch.addmm(bias, x, weight.t(), out=out)


def weight_grad_accumulator(gy: Tensor, weight: Tensor) -> Tensor:
    """Zeros of the weight's shape to sum ``dW`` over blocks of rows in, in float32 at least:
    half precision would round after each block."""
    acc = torch.promote_types(gy.dtype, torch.float32)
    return torch.zeros(weight.shape, dtype=acc, device=weight.device)


def input_grad(gy: Tensor, weight: Tensor, workspace: Workspace | None) -> Tensor:
    """``dy W`` into a buffer of ``workspace``; as a plain product when autograd records the
    backward (``create_graph=True``): a product into a given buffer is not differentiable."""
    if torch.is_grad_enabled():
        return gy @ weight
    gx = empty(workspace, (gy.shape[0], weight.shape[1]), gy.dtype, gy.device)
    return torch.mm(gy, weight, out=gx)


def _weight_grad_from_bytes(gy: Tensor, spikes: Tensor, weight: Tensor) -> Tensor:
    """``dy^T x`` with ``x`` as uint8, over blocks of rows (:func:`weight_grad_accumulator`)."""
    gw = weight_grad_accumulator(gy, weight)
    block = gy.new_empty(min(_ROWS, len(spikes)), weight.shape[1], dtype=gw.dtype)
    for start in range(0, len(spikes), _ROWS):
        rows = spikes[start : start + _ROWS]
        x = block[: len(rows)]
        x.copy_(rows)
        gw.addmm_(gy[start : start + _ROWS].t().to(gw.dtype), x)
    return gw.to(weight.dtype)


def folded_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    shape: tuple[int, ...] | None = None,
    *,
    spikes_as_bytes: bool = False,
    workspace: Workspace | None = None,
) -> Tensor:
    """``F.linear`` for a 2-D ``x``. ``shape`` (a reshape of ``[M, out_features]``) gives the
    result that shape as a tensor of its own rather than a view; ``spikes_as_bytes`` keeps ``x``
    for the weight gradient as uint8 (not checked: the caller knows it holds 0s and 1s);
    ``workspace`` supplies the output and input-gradient buffers."""
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [M, in_features], got shape {tuple(x.shape)}")
    shape = shape or (x.shape[0], weight.shape[0])
    return _FoldedLinear.apply(x, weight, bias, shape, spikes_as_bytes, workspace)

"""A Linear layer fed spikes: the input kept for the weight gradient as bytes, not floats.

``y = x W^T + b`` as usual, but backward's ``dW = dy^T x`` needs ``x``: for spikes in {0, 1}
one byte per entry holds it exactly, a quarter of float32, so the float spikes are free as soon
as the forward pass is done with them. Backward accumulates ``dW`` over blocks of rows, each
converted back to float in one small buffer (from uint8: the bool-to-float copy is slower).
"""

from __future__ import annotations

import torch
from torch import Tensor

_ROWS = 1024  # rows of x converted back to float at a time in backward (fastest of 256-1024)


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, shape: tuple[int, ...]):
        y = torch.empty(shape, dtype=x.dtype, device=x.device)
        flat = y.view(x.shape[0], weight.shape[0])
        if bias is None:
            torch.mm(x, weight.t(), out=flat)
        else:
            torch.addmm(bias, x, weight.t(), out=flat)
        spikes = x.bool().view(torch.uint8) if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(spikes, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        spikes, weight = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        gy = gy.reshape(-1, weight.shape[0])
        gx = gy @ weight if need_x else None
        gw = None
        if need_w:  # summed in float32 at least: half precision would round after each block
            acc = torch.promote_types(gy.dtype, torch.float32)
            gw = torch.zeros(weight.shape, dtype=acc, device=weight.device)
            block = gy.new_empty(min(_ROWS, len(spikes)), weight.shape[1], dtype=acc)
            for start in range(0, len(spikes), _ROWS):
                rows = spikes[start : start + _ROWS]
                x = block[: len(rows)]
                x.copy_(rows)
                gw.addmm_(gy[start : start + _ROWS].t().to(acc), x)
            gw = gw.to(weight.dtype)
        gb = gy.sum(0) if need_b and ctx.has_bias else None
        return gx, gw, gb, None


def spike_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, shape: tuple[int, ...] | None = None
) -> Tensor:
    """``F.linear`` for a 2-D ``x`` of 0s and 1s (not checked: the caller knows it holds
    spikes), saving ``x`` as bytes; ``shape`` (a reshape of [M, out_features]) gives the result
    that shape as a tensor of its own rather than a view."""
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [M, in_features], got shape {tuple(x.shape)}")
    return _SpikeLinear.apply(x, weight, bias, shape or (x.shape[0], weight.shape[0]))

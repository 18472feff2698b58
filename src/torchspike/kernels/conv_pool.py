"""2x2 max pooling of a channels-last convolution output, without PyTorch's layout round trips.

``F.max_pool2d`` on a channels-last ``x`` returns channels-last, so the neuron after it reads
strided memory and hands back an NCHW gradient that the pooling's backward first copies to
channels-last; it also saves int64 indices and zero-fills its full-size input gradient before
scattering into it. Here the pooled output is made NCHW (contiguous, for the neuron), the
index of the maximum within each window is kept as one byte, and the input gradient is written
once, window position by window position, in the channels-last layout the convolution's
backward wants. The maths is ``F.max_pool2d(x, 2)`` exactly: the same maxima, and the gradient
goes to the first maximum of a window in PyTorch's scan order (row by row), as its kernel does
for ties (which are common where a convolution saw no input spike: its output is the bias).
Finite inputs only (a NaN is not routed as PyTorch routes it). For float32 both passes run
as one loop each in :mod:`.native` where it is built (the index then lies in ``y``'s layout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import native

_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # PyTorch's scan order within a window


def is_max_pool_2x2(layer: nn.Module | None) -> bool:
    """True for a plain ``nn.MaxPool2d`` of 2x2 windows with stride 2 and no hooks."""
    from ..steps import has_hooks  # steps imports this module

    pair = ((2, 2), 2)
    return (
        type(layer) is nn.MaxPool2d
        and layer.kernel_size in pair
        and layer.stride in pair
        and layer.padding in ((0, 0), 0)
        and layer.dilation in ((1, 1), 1)
        and not layer.ceil_mode
        and not layer.return_indices
        and not has_hooks(layer)
    )


def is_pool_2x2(layer: nn.Module, x: Tensor) -> bool:
    """True when ``layer(x)`` is ``F.max_pool2d(x, 2)`` on a channels-last CPU ``x``, which
    :func:`max_pool_2x2` computes (a plain ``nn.MaxPool2d``, no hooks, no autocast)."""
    return (
        is_max_pool_2x2(layer)
        and x.dim() == 4
        and x.shape[2] >= 2
        and x.shape[3] >= 2
        and x.device.type == "cpu"
        and x.is_floating_point()
        and x.is_contiguous(memory_format=torch.channels_last)
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()
    )


def _windows(x: Tensor, ho: int, wo: int) -> list[Tensor]:
    """The four corners of every window, as [N, Ho, Wo, C] views of a channels-last ``x``."""
    q = x.permute(0, 2, 3, 1)
    return [q[:, dy : 2 * ho : 2, dx : 2 * wo : 2] for dy, dx in _CORNERS]


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        ho, wo = h // 2, w // 2
        y = x.new_empty(n, c, ho, wo)
        lib = native.library() if x.dtype == torch.float32 else None
        ctx.native = lib is not None
        if lib is not None:
            index = torch.empty(y.shape, dtype=torch.uint8)
            args = (x.data_ptr(), y.data_ptr(), index.data_ptr(), n, c, h, w, native.threads())
            native.check(lib.pool2x2_forward(*args))
            if ctx.needs_input_grad[0]:
                ctx.save_for_backward(index)
                ctx.shape = x.shape
            return y
        a, b, c_, d = _windows(x, ho, wo)
        top, bottom = torch.maximum(a, b), torch.maximum(c_, d)
        torch.maximum(top, bottom, out=y.permute(0, 2, 3, 1))
        if ctx.needs_input_grad[0]:  # the first maximum of each window, 0..3, as one byte
            first = (b > a).to(torch.uint8)
            second = (d > c_).to(torch.uint8).add_(2)
            ctx.save_for_backward(torch.where(bottom > top, second, first))
            ctx.shape = x.shape
        return y

    @staticmethod
    def backward(ctx, gy: Tensor) -> Tensor:
        (index,) = ctx.saved_tensors
        return max_unpool_2x2(gy, index, ctx.shape, native_index=ctx.native)


def max_unpool_2x2(
    gy: Tensor, index: Tensor, shape: torch.Size, *, native_index: bool, threads: int = 0
) -> Tensor:
    """The gradient of the pooling's channels-last input of ``shape`` [N, C, H, W] from that of
    its output ``gy``: ``gy`` at the first maximum of each window (``index``, NCHW as the native
    kernel makes it if ``native_index``, else [N, Ho, Wo, C]), zero elsewhere; channels-last.
    Differentiable in ``gy`` where grad mode is on (a double backward). ``threads``: those of
    the native kernel (0: PyTorch's number)."""
    n, c, h, w = shape
    ho, wo = h // 2, w // 2
    lib = native.library() if native_index and not torch.is_grad_enabled() else None
    if lib is not None:
        q = gy.new_empty(n, h, w, c)
        gy = gy.contiguous()
        args = (gy.data_ptr(), index.data_ptr(), q.data_ptr(), n, c, h, w)
        native.check(lib.pool2x2_backward(*args, threads or native.threads()))
        return q.permute(0, 3, 1, 2)
    if native_index:
        index = index.permute(0, 2, 3, 1)
    if torch.is_grad_enabled():  # create_graph: the same sum from differentiable ops
        g = gy.permute(0, 2, 3, 1)
        parts = torch.stack([g * (index == k) for k in range(4)], 3)  # [N, Ho, Wo, 4, C]
        q = parts.view(n, ho, wo, 2, 2, c).permute(0, 1, 3, 2, 4, 5)
        q = F.pad(q.reshape(n, 2 * ho, 2 * wo, c), (0, 0, 0, w % 2, 0, h % 2))
        return q.permute(0, 3, 1, 2)
    q = gy.new_empty(n, h, w, c)
    gx = q.permute(0, 3, 1, 2)  # [N, C, H, W], channels-last
    if h % 2:  # the row and column a floor-mode pooling drops get no gradient
        q[:, -1].zero_()
    if w % 2:
        q[:, :, -1].zero_()
    g = gy.permute(0, 2, 3, 1)
    for k, corner in enumerate(_windows(gx, ho, wo)):
        torch.mul(g, index == k, out=corner)
    return gx


def max_pool_2x2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 2)`` of a channels-last ``x`` [N, C, H, W], returned contiguous."""
    return _MaxPool2x2.apply(x)

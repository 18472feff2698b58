"""2x2 max pooling without PyTorch's int64 indices, saved input and zero fills.

``F.max_pool2d`` saves its input and int64 indices, and zero-fills its full-size input gradient
before scattering into it. Here the index of the maximum within each window is kept as one
byte, and the input gradient is written once. Output and gradients keep ``x``'s layout:
channels-last after a convolution (as ``SpikingNet`` runs them,
:func:`~torchspike.steps.channels_last`) and after a neuron fed one, NCHW elsewhere (native
kernel only). The maths is
``F.max_pool2d(x, 2)`` exactly: the same maxima, and the gradient goes to the first maximum of
a window in PyTorch's scan order (row by row), as its kernel does for ties (which are common
where a convolution saw no input spike, and in every window of a neuron's spikes with fewer
than two zeros). For float32 both passes run as one loop each in :mod:`.native` where it is
built (a NaN is routed as PyTorch routes it); the pure-PyTorch version takes finite inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import native
from .workspace import Workspace, empty

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
    """True when ``layer(x)`` is ``F.max_pool2d(x, 2)`` on a CPU ``x`` that :func:`max_pool_2x2`
    computes (a plain ``nn.MaxPool2d``, no hooks, no autocast): channels-last, or contiguous
    float32 where the native kernels are built."""
    return (
        is_max_pool_2x2(layer)
        and x.dim() == 4
        and x.shape[2] >= 2
        and x.shape[3] >= 2
        and x.device.type == "cpu"
        and x.is_floating_point()
        and (_channels_last(x) or _native_nchw(x))
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()
    )


def _channels_last(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last)


def _native_nchw(x: Tensor) -> bool:
    return x.dtype == torch.float32 and x.is_contiguous() and native.library() is not None


def _windows(x: Tensor, ho: int, wo: int) -> list[Tensor]:
    """The four corners of every window, as [N, Ho, Wo, C] views of a channels-last ``x``."""
    q = x.permute(0, 2, 3, 1)
    return [q[:, dy : 2 * ho : 2, dx : 2 * wo : 2] for dy, dx in _CORNERS]


class _MaxPool2x2(torch.autograd.Function):
    """Output in ``x``'s layout: channels-last (the index [N, Ho, Wo, C]) or NCHW (native only:
    the index [N, C, Ho, Wo])."""

    @staticmethod
    def forward(ctx, x: Tensor, workspace: Workspace | None) -> Tensor:
        n, c, h, w = x.shape
        ho, wo = h // 2, w // 2
        lib = native.library() if x.dtype == torch.float32 else None
        nhwc = _channels_last(x)
        if nhwc:
            y = empty(workspace, (n, ho, wo, c), x.dtype, x.device).permute(0, 3, 1, 2)
        else:
            y = empty(workspace, (n, c, ho, wo), x.dtype, x.device)
        if lib is not None and not (nhwc or x.is_contiguous()):
            lib = None
        ctx.kernel = None if lib is None else "nhwc" if nhwc else "nchw"
        ctx.workspace, ctx.shape = workspace, x.shape
        if lib is not None:
            index = torch.empty(n, *((ho, wo, c) if nhwc else (c, ho, wo)), dtype=torch.uint8)
            args = (x.data_ptr(), y.data_ptr(), index.data_ptr(), n, c, h, w, native.threads())
            native.check((lib.pool2x2_nhwc_forward if nhwc else lib.pool2x2_nchw_forward)(*args))
            if ctx.needs_input_grad[0]:
                ctx.save_for_backward(index)
            return y
        a, b, c_, d = _windows(x, ho, wo)
        top, bottom = torch.maximum(a, b), torch.maximum(c_, d)
        torch.maximum(top, bottom, out=y.permute(0, 2, 3, 1))
        if ctx.needs_input_grad[0]:  # the first maximum of each window, 0..3, as one byte
            first = (b > a).to(torch.uint8)
            second = (d > c_).to(torch.uint8).add_(2)
            ctx.save_for_backward(torch.where(bottom > top, second, first))
        return y

    @staticmethod
    def backward(ctx, gy: Tensor) -> tuple[Tensor, None]:
        (index,) = ctx.saved_tensors
        lib = native.library() if ctx.kernel and not torch.is_grad_enabled() else None
        if lib is None:  # pure PyTorch, or a double backward (differentiable ops)
            nchw_index = ctx.kernel == "nchw"
            return max_unpool_2x2(gy, index, ctx.shape, native_index=nchw_index), None
        n, c, h, w = ctx.shape
        if ctx.kernel == "nhwc":
            q = empty(ctx.workspace, (n, h, w, c), gy.dtype, gy.device)
            g = gy.permute(0, 2, 3, 1).contiguous()
            args = (g.data_ptr(), index.data_ptr(), q.data_ptr(), n, c, h, w, native.threads())
            native.check(lib.pool2x2_nhwc_backward(*args))
            return q.permute(0, 3, 1, 2), None
        gx, gy = empty(ctx.workspace, ctx.shape, gy.dtype, gy.device), gy.contiguous()
        args = (gy.data_ptr(), index.data_ptr(), gx.data_ptr(), n, c, h, w, native.threads())
        native.check(lib.pool2x2_nchw_backward(*args))
        return gx, None


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


def max_pool_2x2(x: Tensor, workspace: Workspace | None = None) -> Tensor:
    """``F.max_pool2d(x, 2)`` of ``x`` [N, C, H, W] (see :func:`is_pool_2x2`), in ``x``'s
    layout (channels-last or NCHW); ``workspace`` supplies the buffers of the output and of the
    native kernels' input gradient."""
    return _MaxPool2x2.apply(x, workspace)

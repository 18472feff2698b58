"""An event convolution and the 2x2 max pooling after it as one kernel: the convolution's
full-size output is never stored.

``F.max_pool2d(F.conv2d(x, w, b, padding=p), 2)`` for sparse binary ``x``: each sample's
convolution output (:mod:`.event_conv`'s sum of kernel slices at the events) is made in a buffer
of the thread that stays in cache and pooled from there (:mod:`.conv_pool`'s maxima, the first
maximum of a window in PyTorch's scan order, index as one byte). Backward, the weight and bias
gradients are summed from the events and each sample's output gradient, remade in that buffer
from the pooled gradient and the index; only where the input needs a gradient (a hidden layer's
spikes) is the full output gradient made, for the dense input gradient, a chunk of samples at
a time. The values and the weight and bias gradients are those of the two kernels one after
the other, bit for bit; the input gradient is oneDNN's, as F.conv2d's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import native
from .conv_pool import is_max_pool_2x2, max_unpool_2x2
from .event_conv import (
    applies,
    conv_backward,
    grad_buffers,
    input_grad,
    kernel_operands,
    kernel_shape,
    sparse_binary,
)
from .workspace import Workspace, empty


def maybe_event_conv_pool(
    conv: nn.Module, pool: nn.Module | None, x: Tensor, workspace: Workspace | None = None
) -> Tensor | None:
    """``pool(conv(x))`` as one event convolution with pooling, returned contiguous, where
    ``conv`` runs as an event convolution (:func:`.event_conv.maybe_event_conv`) and ``pool``
    is a plain 2x2 max pooling (:func:`.conv_pool.is_max_pool_2x2`) of an output at least 2x2;
    else ``None``. ``workspace`` supplies the input gradient's buffer. A channels-last ``x``
    is copied to NCHW for the kernel only once it is known to be sparse."""
    if not (is_max_pool_2x2(pool) and applies(conv, x)):
        return None
    padding = conv.padding
    ho, wo = (x.shape[i + 2] + 2 * padding[i] - conv.kernel_size[i] + 1 for i in (0, 1))
    if ho < 2 or wo < 2 or not sparse_binary(x):
        return None
    return _EventConvPool2d.apply(x.contiguous(), conv.weight, conv.bias, padding, workspace)


# The input gradient is made in chunks of samples whose full-size output gradient takes about
# this many bytes: config n's conv2 (gradient 24.8 MB, 6 chunks) peaks 88 MiB of RSS lower than
# in one piece (bench/RESULTS_native_conv.md).
CHUNK_BYTES = 4 << 20


class _EventConvPool2d(torch.autograd.Function):
    """The input is kept for the weight gradient as floats, or as bytes where it needs a
    gradient itself (a hidden layer's spikes, which then need not outlive the forward pass)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, workspace):
        n, c, h, w, co, kh, kw, ph, pw = kernel_shape(x, weight, padding)
        ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        y = x.new_empty(n, co, ho // 2, wo // 2)
        index = torch.empty(y.shape, dtype=torch.uint8)
        as_bytes = ctx.needs_input_grad[0]
        xbytes = torch.empty(x.shape, dtype=torch.uint8) if as_bytes else None
        wt, b = kernel_operands(weight, bias)
        native.check(
            native.library().event_conv_pool_forward(
                x.data_ptr(), wt.data_ptr(), native.ptr(b), y.data_ptr(), index.data_ptr(),
                native.ptr(xbytes), *kernel_shape(x, weight, padding), native.threads(),
            )
        )  # fmt: skip
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(xbytes if as_bytes else x, weight, index)
            ctx.as_bytes, ctx.x_shape, ctx.padding = as_bytes, x.shape, padding
            ctx.conv_shape, ctx.workspace = (n, co, ho, wo), workspace
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight, index = ctx.saved_tensors
        needs, lib = ctx.needs_input_grad[:3], native.library()
        if torch.is_grad_enabled() or lib is None:  # from the full output gradient
            g = max_unpool_2x2(gy, index, ctx.conv_shape, native_index=True)
            x = x.to(gy.dtype) if ctx.as_bytes else x
            return *conv_backward(x, weight, g, ctx.padding, needs), None, None
        gy, gx, gw, gb = gy.contiguous(), None, None, None
        if needs[1] or needs[2]:
            gwt, gb, scratch = grad_buffers(gy, weight, needs[2])
            xf, xb = (None, x) if ctx.as_bytes else (x, None)
            native.check(
                lib.event_conv_pool_weight_grad(
                    native.ptr(xf), native.ptr(xb), gy.data_ptr(), index.data_ptr(),
                    gwt.data_ptr(), native.ptr(gb), scratch.data_ptr(),
                    *kernel_shape(x, weight, ctx.padding), native.threads(),
                )
            )  # fmt: skip
            gw = gwt.permute(3, 0, 1, 2).contiguous() if needs[1] else None
        if needs[0]:
            gx = _input_grad(gy, index, weight, ctx)
        return gx, gw, gb, None, None


def _input_grad(gy: Tensor, index: Tensor, weight: Tensor, ctx) -> Tensor:
    """The dense input gradient, ``CHUNK_BYTES`` of the convolution's output gradient at a time
    (made from the pooled one): neither that gradient nor oneDNN's buffers for it exist for the
    whole batch at once. Each chunk's small unpooling runs on one thread: a parallel region per
    chunk costs more than it saves where other processes share the cores."""
    n, co, ho, wo = ctx.conv_shape
    rows = max(1, CHUNK_BYTES // (co * ho * wo * gy.element_size()))
    gx = empty(ctx.workspace, ctx.x_shape, gy.dtype, gy.device)
    for i in range(0, n, rows):
        part = gy[i : i + rows]
        g = max_unpool_2x2(
            part, index[i : i + rows], (len(part), co, ho, wo), native_index=True, threads=1
        )
        gx[i : i + rows] = input_grad((len(part), *ctx.x_shape[1:]), weight, g, ctx.padding)
    return gx

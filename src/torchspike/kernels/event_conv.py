"""Convolutions of sparse binary spikes: the kernel added at each input event, not a dense GEMM.

For an input ``x`` [N, C, H, W] of 0s and 1s, a stride-1 convolution with zero padding ``p``

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] x[n, c, i + u - p, j + v - p]

is ``b`` plus, for every spike at (n, c, i', j'), the slice ``w[:, c, u, v]`` added at the
outputs (i' + p - u, j' + p - v) it reaches; the weight gradient ``dw[o, c, u, v]`` is the sum of
``dy[n, o, i' + p - u, j' + p - v]`` over the spikes, and ``db`` the sum of ``dy``. Both cost in
proportion to the spike count. The input gradient (a hidden layer's) is the dense transposed
convolution, as ``F.conv2d``'s. The output is channels-last (each event adds ``C_out``
contiguous values); :mod:`.native` runs the loops.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import native

# The largest fraction of ones at which the event convolution is used: bench/native_conv_ab.py,
# one training pass of config n's layers (2-core CPU, bench/RESULTS_native_conv.md), event vs
# dense channels-last: conv1 (2->12, 5x5) 2.6x / 1.5x / 1.2x / 0.94x / 0.63x faster at density
# 0.02 / 0.05 / 0.1 / 0.2 / 0.3; conv2 (12->32, with its dense input gradient) 1.7x / 1.35x /
# 1.1x / 0.85x / 0.73x. Break-even lies between 0.1 and 0.2 for both.
DENSITY_THRESHOLD = 0.1


def applies(layer: nn.Module, x: Tensor) -> bool:
    """True when ``layer(x)`` is a plain float32 CPU ``nn.Conv2d`` (no hooks, stride 1, dilation
    1, one group, zero padding) on a contiguous or channels-last ``x``, outside autocast,
    ``torch.compile``, ``torch.func`` transforms and forward-mode AD: what
    :func:`event_conv2d` computes, if ``x`` is binary."""
    from ..steps import has_hooks  # steps imports this module
    from .lif_sequence import applies as kernels_apply

    return (
        type(layer) is nn.Conv2d
        and not has_hooks(layer)
        and layer.stride == (1, 1)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.padding_mode == "zeros"
        and not isinstance(layer.padding, str)
        and x.dim() == 4
        and x.shape[1] == layer.in_channels
        and x.shape[2] + 2 * layer.padding[0] >= layer.kernel_size[0]
        and x.shape[3] + 2 * layer.padding[1] >= layer.kernel_size[1]
        and x.dtype == torch.float32
        and layer.weight.dtype == torch.float32
        and x.device.type == "cpu"
        and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and kernels_apply(x, layer.weight)
    )


def maybe_event_conv(layer: nn.Conv2d, x: Tensor) -> Tensor | None:
    """``layer(x)`` as an event convolution where :func:`applies`, the native kernels are
    built, ``x`` holds only 0s and 1s and at most ``DENSITY_THRESHOLD`` of them are ones; else
    ``None``. The result is channels-last, as a dense convolution's in ``SpikingNet``; a
    channels-last ``x`` is copied to NCHW for the kernel only once it is known to be sparse."""
    if not (applies(layer, x) and sparse_binary(x)):
        return None
    return _EventConv2d.apply(x.contiguous(), layer.weight, layer.bias, layer.padding)


def sparse_binary(x: Tensor) -> bool:
    """True when the native kernels are built and the float32 ``x`` (contiguous in some memory
    order: its storage is read as one block) holds only 0s and 1s, at most
    ``DENSITY_THRESHOLD`` of them ones."""
    lib = native.library()
    if lib is None:
        return False
    ones = lib.count_spikes(x.data_ptr(), x.numel(), native.threads())
    return 0 <= ones <= DENSITY_THRESHOLD * x.numel()


def event_conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, padding: tuple[int, int] = (0, 0)
) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` for a binary ``x``, channels-last; needs
    the native kernels (:func:`torchspike.kernels.native.library`)."""
    if native.library() is None:
        raise RuntimeError("the native kernels are not available (see kernels.native)")
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("x must hold only 0s and 1s")
    return _EventConv2d.apply(x.contiguous(), weight, bias, tuple(padding))


def kernel_shape(x: Tensor, weight: Tensor, padding: tuple[int, int]) -> tuple[int, ...]:
    n, c, h, w = x.shape
    co, _, kh, kw = weight.shape
    return (n, c, h, w, co, kh, kw, *padding)


class _EventConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int]):
        n, c, h, w, co, kh, kw, ph, pw = kernel_shape(x, weight, padding)
        ho, wo = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        q = x.new_empty(n, ho, wo, co)  # NHWC
        wt, b = kernel_operands(weight, bias)
        native.check(native.library().event_conv_forward(
            x.data_ptr(), wt.data_ptr(), native.ptr(b), q.data_ptr(),
            *kernel_shape(x, weight, padding), native.threads(),
        ))  # fmt: skip
        ctx.save_for_backward(x, weight, bias)
        ctx.padding = padding
        return q.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight, _ = ctx.saved_tensors
        return *conv_backward(x, weight, gy, ctx.padding, ctx.needs_input_grad[:3]), None


def kernel_operands(weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The weight as the kernels read it, [C, kh, kw, C_out] contiguous, and the bias."""
    wt = weight.detach().permute(1, 2, 3, 0).contiguous()
    return wt, None if bias is None else bias.detach().contiguous()


def conv_backward(
    x: Tensor, weight: Tensor, gy: Tensor, padding: tuple[int, int], needs: tuple[bool, ...]
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The gradients of input, weight and bias (where ``needs`` says) of the event
    convolution from that of its output ``gy``; from differentiable ops under grad mode (a
    double backward) or without the native kernels."""
    need_x, need_w, need_b = needs
    lib = native.library()
    if torch.is_grad_enabled() or lib is None:
        gx = nn.grad.conv2d_input(x.shape, weight, gy, padding=padding) if need_x else None
        gw = nn.grad.conv2d_weight(x, weight.shape, gy, padding=padding) if need_w else None
        gb = gy.sum((0, 2, 3)) if need_b else None
        return gx, gw, gb
    gy = gy.contiguous(memory_format=torch.channels_last)
    gx = gw = gb = None
    if need_x:
        gx = input_grad(x.shape, weight, gy, padding)
    if need_w or need_b:
        gwt, gb, scratch = grad_buffers(gy, weight, need_b)
        native.check(lib.event_conv_weight_grad(
            x.data_ptr(), gy.data_ptr(), gwt.data_ptr(), native.ptr(gb), scratch.data_ptr(),
            *kernel_shape(x, weight, padding), native.threads(),
        ))  # fmt: skip
        gw = gwt.permute(3, 0, 1, 2).contiguous() if need_w else None
    return gx, gw, gb


def input_grad(shape: torch.Size, weight: Tensor, gy: Tensor, padding: tuple[int, int]) -> Tensor:
    """The input gradient, dense as F.conv2d's (only the input's part of its backward)."""
    return nn.grad.conv2d_input(shape, weight, gy, padding=padding)


def grad_buffers(like: Tensor, weight: Tensor, need_b: bool):
    """The kernels' weight gradient [C, kh, kw, C_out], bias gradient (or None) and scratch."""
    co, c, kh, kw = weight.shape
    gwt = like.new_empty(c, kh, kw, co)
    gb = like.new_empty(co) if need_b else None
    return gwt, gb, like.new_empty(native.threads() * (gwt.numel() + co))

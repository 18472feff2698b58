"""Channels-last sequences: a neuron's elementwise kernel run in the memory order it is given.

A convolution on channels-last input returns channels-last output, and so do BatchNorm and
the 2x2 max pooling after it; folded over time it reaches a neuron as ``[T, B, C, H, W]``
whose memory is ``[T, B, H, W, C]``. Run in NCHW order, the neuron would read it strided and
return NCHW spikes that the next convolution converts back. An elementwise recursion does not
care in which order its neurons lie, so the neuron runs on the contiguous ``[T, B, H, W, C]``
view (its per-neuron parameters permuted alike) and its outputs are permuted back: the same
values, in the layout the next convolution wants.
"""

from __future__ import annotations

import torch
from torch import Tensor


def channels_last_steps(xs: Tensor, *params: Tensor) -> bool:
    """True for ``xs`` [T, B, C, H, W] with C > 1 whose steps are channels-last (and not also
    contiguous), one after the other or one step repeated (a static input, time stride 0),
    when each of ``params`` has at most the 3 dimensions of [C, H, W]."""
    if xs.dim() != 5 or xs.shape[2] == 1 or any(p.dim() > 3 for p in params):
        return False
    step = xs[0]
    return (
        not step.is_contiguous()
        and step.is_contiguous(memory_format=torch.channels_last)
        and (xs.stride(0) == 0 or xs.movedim(2, -1).is_contiguous())
    )


def to_nhwc(t: Tensor) -> Tensor:
    """The view of ``t`` [..., C, H, W] as [..., H, W, C]; a per-neuron parameter of fewer
    dimensions gets leading ones first (a scalar stays as it is)."""
    if t.dim() == 0:
        return t
    if t.dim() < 3:
        t = t.reshape((1,) * (3 - t.dim()) + tuple(t.shape))
    return t.movedim(-3, -1)


def from_nhwc(t: Tensor) -> Tensor:
    """The inverse of :func:`to_nhwc` for a tensor of at least 3 dimensions."""
    return t.movedim(-1, -3)

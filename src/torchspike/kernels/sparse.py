"""Linear layers on sparse binary spikes: sums of weight columns instead of dense GEMMs.

For spikes ``x`` in {0, 1}, ``y = x W^T + b`` is the sum of the columns of ``W`` at the active
inputs, and the weight gradient ``dW^T = x^T dy`` sums the rows of ``dy`` at the samples where
each input fired: both are ``embedding_bag`` sums whose cost grows with the spike count. The
input gradient (needed for hidden layers) stays a dense ``dy W``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .folded_linear import input_grad
from .workspace import Workspace, empty

# Where the sparse product pays (bench/sparsity.py, bench/RESULTS_sparsity.md: 3,200 x 700 spikes,
# 2-core CPU): finding the ones costs about as much as a GEMM with ~250 outputs, so narrower
# layers stay dense; above that the break-even density grows with the width N, by ~0.045 per
# doubling (train / inference: 0.047 / 0.035 at N = 256, 0.14 / 0.12 at 1024, 0.21 / 0.23 at
# 4096). The threshold sits a little below the lower of the two, and is not extrapolated past
# the widest layer measured.
MIN_OUT_FEATURES = 256
_DENSITY_AT_MIN, _DENSITY_PER_DOUBLING, _DENSITY_MAX = 0.03, 0.04, 0.19


def density_threshold(out_features: int) -> float:
    """The largest fraction of ones at which a Linear with ``out_features`` outputs is faster
    as a sum of weight columns than as a dense GEMM (0 below ``MIN_OUT_FEATURES``)."""
    if out_features < MIN_OUT_FEATURES:
        return 0.0
    doublings = math.log2(out_features / MIN_OUT_FEATURES)
    return min(_DENSITY_AT_MIN + _DENSITY_PER_DOUBLING * doublings, _DENSITY_MAX)


_CHUNK = 128  # output columns per gather: keeps the gathered rows in L2 cache (128 measured
# fastest on config b for both products; 256 doubled the weight gradient's time)


def _offsets(counts: Tensor) -> Tensor:
    offsets = torch.zeros_like(counts)
    torch.cumsum(counts[:-1], 0, out=offsets[1:])
    return offsets


def _bag_sum(
    index: Tensor,
    offsets: Tensor,
    table: Tensor,
    bias: Tensor | None = None,
    *,
    column_sums: bool = False,
    shape: tuple[int, ...] | None = None,
    transposed: bool = False,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``out[b] = sum(table[index[offsets[b]:offsets[b + 1]]]) (+ bias)``, in column chunks of
    the table; with ``column_sums`` also the column sums of ``table``, read from each chunk while
    it is in cache. ``shape`` makes ``out`` with that shape (not a view), a reshape of [B, N],
    in a buffer of ``workspace`` if given; ``transposed`` returns ``out.t()``, contiguous."""
    rows, width = len(offsets), table.shape[1]
    if transposed:
        out = table.new_empty(width, rows)
    else:
        out = empty(workspace, shape or (rows, width), table.dtype, table.device)
    flat = out.view(width, rows) if transposed else out.view(rows, width)
    sums = table.new_empty(width) if column_sums else None
    # one buffer for every chunk's columns, made before the first bag: each bag's result then
    # takes the block the previous one freed (a new chunk copy per step would sit in that block,
    # and every bag would grow the heap by its own size: 8 x 1.6 MiB on config b)
    n = table.shape[0]
    chunks = table.new_empty(n * min(_CHUNK, width))
    for j in range(0, width, _CHUNK):
        cols = min(_CHUNK, width - j)
        part = chunks[: n * cols].view(n, cols).copy_(table[:, j : j + cols])
        if sums is not None:
            torch.sum(part, 0, out=sums[j : j + cols])
        bag = F.embedding_bag(index, part, offsets, mode="sum")
        into = flat[j : j + cols].t() if transposed else flat[:, j : j + cols]
        if bias is None:
            into.copy_(bag)
        else:  # the bias added in the copy into place, not in another pass
            torch.add(bag, bias[j : j + cols], out=into)
        del bag  # freed before the next bag is made, which can then take its block
    return out, sums


class _SparseBinaryLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rows, cols, weight, bias, shape, workspace: Workspace | None):
        offsets = _offsets(torch.bincount(rows, minlength=x.shape[0]))
        y, _ = _bag_sum(cols, offsets, weight.t(), bias, shape=shape, workspace=workspace)
        ctx.save_for_backward(rows, cols, weight)
        ctx.workspace = workspace
        ctx.has_bias, ctx.in_features = bias is not None, x.shape[1]
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        rows, cols, weight = ctx.saved_tensors
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        gy = gy.reshape(-1, weight.shape[0])
        gx = input_grad(gy, weight, ctx.workspace) if need_x else None
        need_b = need_b and ctx.has_bias
        gw = gb = None
        if need_w:  # dW^T[k] = sum of dy[m] over the samples m where input k fired
            order = torch.argsort(cols.to(torch.int32), stable=True)  # int32 sorts 2x faster
            offsets = _offsets(torch.bincount(cols, minlength=ctx.in_features))
            # in the weight's own layout: autograd keeps it as the .grad without a copy
            gw, gb = _bag_sum(rows[order], offsets, gy, column_sums=need_b, transposed=True)
        elif need_b:
            gb = gy.sum(0)
        return gx, None, None, gw, gb, None, None


def _ones(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Row and column of every nonzero of a 2-D ``x``, and its value.

    One ``nonzero`` over the flat bool mask (a 1-byte scan is faster than the float one), then
    the flat index split into row and column."""
    flat = x.reshape(-1)
    index = flat.bool().nonzero().squeeze(1)
    return index.div(x.shape[1], rounding_mode="floor"), index.remainder(x.shape[1]), flat[index]


def sparse_binary_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear`` for a 2-D ``x`` of 0s and 1s, computed from the positions of its ones."""
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D [M, in_features], got shape {tuple(x.shape)}")
    rows, cols, values = _ones(x)
    if not bool((values == 1).all()):
        raise ValueError("x must hold only 0s and 1s")
    return _SparseBinaryLinear.apply(x, rows, cols, weight, bias, None, None)


def maybe_sparse_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    shape: tuple[int, ...] | None = None,
    *,
    workspace: Workspace | None = None,
) -> Tensor | None:
    """The sparse product if ``x`` [M, K] is binary and sparse enough for the layer's width
    (:func:`density_threshold`); ``None`` when the dense GEMM is the faster choice. ``shape``
    (a reshape of [M, N], such as [T, B, N]) gives the result that shape, as a tensor of its
    own rather than a view; ``workspace`` supplies its buffer and the input gradient's."""
    most = density_threshold(weight.shape[0]) * x.numel()
    if (
        most == 0
        or not x.is_floating_point()
        or x.dim() != 2
        or torch.compiler.is_compiling()
        # for 0/1 inputs the sum is the count of ones, at a sixth of count_nonzero's cost;
        # other inputs may pass this test, and then fail the check of the values below
        or x.sum() > most
    ):
        return None
    rows, cols, values = _ones(x)
    if len(values) > most or not bool((values == 1).all()):
        return None
    return _SparseBinaryLinear.apply(x, rows, cols, weight, bias, shape, workspace)

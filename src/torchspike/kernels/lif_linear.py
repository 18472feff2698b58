"""A LIF layer and the Linear after it as one autograd node: ``y[t] = z[t] W^T + b``.

The membrane ``U`` comes from the same LIF recursion as
:func:`torchspike.kernels.lif_sequence.lif_sequence` and is the only ``[T, B, N]`` buffer kept. The
spikes are not stored: ``z = U > v_th`` is formed again, ``_ROWS`` rows at a time in one small
buffer, for the product with ``W`` in forward and for the weight gradient ``dW = dy^T z`` in
backward. Apart, the two layers would also hold the whole spike sequence and the whole spike
gradient ``dL/dz = dL/dy W``; here backward forms ``dL/dz`` block by block too and multiplies it at
once by the surrogate slope in the membrane's own buffer, then the usual adjoint over time runs
(:func:`torchspike.kernels.lif_sequence.lif_adjoint`). Under the zero reset the adjoint reads the
spikes, so they are kept. A backward with ``create_graph=True`` runs as the two layers apart
would record it (the spikes formed by the spike function from the membrane), so a double
backward goes through the node.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..surrogate import Surrogate
from .folded_linear import linear_into, weight_grad_accumulator
from .lif_sequence import (
    _lif_forward,
    _refuse_transforms,
    can_overwrite,
    lif_adjoint,
    lif_adjoint_graph,
    membrane_grad,
    refuse_spent_input,
    saved_membrane,
)
from .workspace import Workspace, empty

_ROWS = 512  # rows (time steps x batch) per block: of 256-2048, fastest on bench/peers.py a and b


def _blocks(steps: int, batch: int) -> tuple[int, range]:
    per = max(1, _ROWS // batch)  # time steps per block
    return per, range(0, steps, per)


class _LIFLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xs, v0, beta, v_th, weight, bias, reset, spike_fn: Surrogate, over, ws):
        keep = reset == "zero"
        zs, vs = _lif_forward(
            xs,
            v0,
            beta,
            v_th,
            reset,
            keep_membrane=True,
            keep_spikes=keep,
            into_input=over,
            workspace=ws,
        )
        steps, batch, n_in = vs.shape
        y = empty(ws, (steps, batch, weight.shape[0]), vs.dtype, vs.device)
        y_rows = y.view(steps * batch, -1)
        per, starts = _blocks(steps, batch)
        block = None if keep else empty(ws, (min(per, steps), batch, n_in), vs.dtype, vs.device)
        for t0 in starts:
            t1 = min(t0 + per, steps)
            z = zs[t0:t1] if keep else torch.gt(vs[t0:t1], v_th, out=block[: t1 - t0])
            linear_into(z.view(-1, n_in), weight, bias, y_rows[t0 * batch : t1 * batch])
        ctx.save_for_backward(vs, zs if keep else None, v0, beta, v_th, weight)
        ctx.reset, ctx.spike_fn, ctx.has_bias, ctx.workspace = reset, spike_fn, bias is not None, ws
        ctx.set_materialize_grads(False)
        ctx.double = False  # set once a backward has run with create_graph=True
        if over:  # the input now holds the membrane: an output of this node, not to be used
            ctx.mark_dirty(xs)
            return y, vs[-1].clone(), xs
        return y, vs[-1].clone(), vs  # the membrane, hidden by lif_linear (as in lif_sequence)

    @staticmethod
    def backward(ctx, g_y, g_v, g_seq=None):
        if torch.is_grad_enabled():  # create_graph=True: a backward that can be differentiated
            return _backward_graph(ctx, g_y, g_v, g_seq)
        if not ctx.double:
            refuse_spent_input(g_seq)
        vs, zs, v0, beta, v_th, weight = saved_membrane(ctx)
        need_x, need_v0, need_beta, need_th, need_w, need_b = ctx.needs_input_grad[:6]
        g_w = g_b = None
        if g_y is None:  # no gradient reaches the Linear's output: no spike term
            g = torch.zeros_like(vs)
        else:
            gy = g_y.reshape(-1, weight.shape[0])
            if need_b and ctx.has_bias:
                g_b = gy.sum(0)
            # else the membrane is read afterwards
            ctx.reused = not (need_beta or need_th or ctx.double)
            g, g_w = _backward_blocks(vs, zs, v_th, gy, weight, need_w, ctx)
        needs = (need_x, need_v0, need_beta, need_th)
        g_mem, full = g_v, False
        if g_seq is not None:  # a double backward reached the hidden membrane output
            g_mem, full = membrane_grad(g_v, g_seq, False, vs), True
        grads = lif_adjoint(g, vs, zs, v0, beta, v_th, ctx.reset, g_mem, full, needs)
        return *grads, g_w, g_b, None, None, None, None


def _backward_graph(ctx, g_y: Tensor | None, g_v: Tensor | None, g_seq: Tensor | None):
    """The backward in differentiable operations of the node's membrane output (for
    ``create_graph=True``), as the two layers apart would record it: the spikes formed again
    by the spike function from the membrane, so that a second backward meets its surrogate."""
    ctx.double = True
    vs, _, v0, beta, v_th, weight = saved_membrane(ctx)
    need_x, need_v0, need_beta, need_th, need_w, need_b = ctx.needs_input_grad[:6]
    g_w = g_b = None
    g = torch.zeros_like(vs)
    if g_y is not None:
        n_in = vs.shape[-1]
        gy = g_y.reshape(-1, weight.shape[0])
        if need_b and ctx.has_bias:
            g_b = gy.sum(0)
        if need_w:
            g_w = gy.t() @ ctx.spike_fn(vs - v_th).reshape(-1, n_in)
        g = ctx.spike_fn.derivative(vs - v_th) * (gy @ weight).view(vs.shape)
    g_mem = membrane_grad(g_v, g_seq, False, vs)
    needs = (need_x, need_v0, need_beta, need_th)
    grads = lif_adjoint_graph(g, vs, v0, beta, v_th, ctx.reset, g_mem, needs)
    return *grads, g_w, g_b, None, None, None, None


def _backward_blocks(
    vs: Tensor, zs: Tensor | None, v_th: Tensor, gy: Tensor, weight: Tensor, need_w: bool, ctx
) -> tuple[Tensor, Tensor | None]:
    """Block by block over time: ``dW += dy^T z`` with ``z`` formed from the membrane, then
    ``g = (dL/dy W) * dz/dU`` (in the membrane's buffer where ``ctx.reused``)."""
    steps, batch, n_in = vs.shape
    g = vs if ctx.reused else torch.empty_like(vs)
    g_w = weight_grad_accumulator(gy, weight) if need_w else None
    per, starts = _blocks(steps, batch)
    block = empty(ctx.workspace, (min(per, steps), batch, n_in), vs.dtype, vs.device)
    for t0 in starts:
        t1 = min(t0 + per, steps)
        rows = gy[t0 * batch : t1 * batch]
        here = block[: t1 - t0]
        if g_w is not None:
            z = zs[t0:t1] if zs is not None else torch.gt(vs[t0:t1], v_th, out=here)
            g_w.addmm_(rows.t().to(g_w.dtype), z.reshape(-1, n_in).to(g_w.dtype))
        torch.sub(vs[t0:t1], v_th, out=g[t0:t1])
        torch.mm(rows, weight, out=here.view(-1, n_in))
        ctx.spike_fn.backward_(g[t0:t1], here)
    return g, (g_w.to(weight.dtype) if g_w is not None else None)


def lif_linear(
    xs: Tensor,
    v0: Tensor,
    beta: Tensor,
    v_th: Tensor,
    reset: str,
    spike_fn: Surrogate,
    weight: Tensor,
    bias: Tensor | None,
    *,
    overwrite_input: bool = False,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """``(F.linear(z, weight, bias), U[T-1])`` for the LIF spikes ``z`` of ``xs`` ``[T, B, N]``
    (the arguments of :func:`~torchspike.kernels.lif_sequence.lif_sequence` with
    ``membrane=False``), in one autograd node. ``overwrite_input`` keeps the membrane in ``xs``
    where that is safe (as in ``lif_sequence``); ``workspace`` supplies the buffers."""
    if xs.dim() != 3:
        raise ValueError(f"xs must be [T, B, N] for a Linear to follow, got {tuple(xs.shape)}")
    _refuse_transforms("lif_linear", xs, v0, beta, v_th, weight)
    over = overwrite_input and can_overwrite(xs, v0)
    out = _LIFLinear.apply(xs, v0, beta, v_th, weight, bias, reset, spike_fn, over, workspace)
    return out[0], out[1]

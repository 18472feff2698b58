"""A LIF layer and the Linear after it as one autograd node: ``y[t] = z[t] W^T + b``.

The spikes ``z`` come from the same LIF recursion as :func:`torchspike.sequence.lif_sequence`.
Apart, the Linear's backward hands the LIF a whole ``[T, B, N]`` spike gradient
``dL/dz = dL/dy W``, one more buffer of that size at the step's peak. Together, backward forms
``dL/dz`` a block of ``_ROWS`` rows at a time in a small buffer and multiplies it at once by the
surrogate slope, in the membrane's own buffer; then the usual adjoint over time runs
(:func:`torchspike.sequence.lif_adjoint`). The weight gradient is ``dy^T z`` over all rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .folded_linear import _weight_grad_from_bytes
from .sequence import (
    _lif_forward,
    can_overwrite,
    lif_adjoint,
    refuse_spent_input,
    saved_membrane,
)
from .surrogate import Surrogate
from .workspace import Workspace, empty

_ROWS = 1024  # rows (time steps x batch) of dL/dz formed at a time in backward


class _LIFLinear(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, xs, v0, beta, v_th, weight, bias, reset, spike_fn: Surrogate, over, as_bytes, ws
    ):
        zs, vs = _lif_forward(
            xs, v0, beta, v_th, reset, keep_membrane=True, into_input=over, workspace=ws
        )
        steps, batch, n_in = zs.shape
        y = empty(ws, (steps, batch, weight.shape[0]), zs.dtype, zs.device)
        flat = zs.view(steps * batch, n_in)
        if bias is None:
            torch.mm(flat, weight.t(), out=y.view(steps * batch, -1))
        else:
            torch.addmm(bias, flat, weight.t(), out=y.view(steps * batch, -1))
        ctx.as_bytes = as_bytes and reset != "zero"  # the zero reset's adjoint reads float z
        if ctx.as_bytes:
            zs = torch.ne(zs, 0, out=empty(ws, zs.shape, torch.bool, zs.device)).view(torch.uint8)
        ctx.save_for_backward(vs, zs, v0, beta, v_th, weight)
        ctx.reset, ctx.spike_fn, ctx.has_bias, ctx.workspace = reset, spike_fn, bias is not None, ws
        ctx.set_materialize_grads(False)
        if over:  # the input now holds the membrane: an output of this node, not to be used
            ctx.mark_dirty(xs)
            return y, vs[-1].clone(), xs
        return y, vs[-1].clone()

    @staticmethod
    def backward(ctx, g_y, g_v, g_overwritten=None):
        refuse_spent_input(g_overwritten)
        vs, zs, v0, beta, v_th, weight = saved_membrane(ctx)
        need_x, need_v0, need_beta, need_th, need_w, need_b = ctx.needs_input_grad[:6]
        steps, batch, n_in = vs.shape
        g_w = g_b = None
        if g_y is None:  # no gradient reaches the Linear's output: no spike term
            g = torch.zeros_like(vs)
        else:
            gy = g_y.reshape(steps * batch, weight.shape[0])
            if need_w and ctx.as_bytes:
                g_w = _weight_grad_from_bytes(gy, zs.view(steps * batch, n_in), weight)
            elif need_w:
                g_w = gy.t() @ zs.view(steps * batch, n_in)
            if need_b and ctx.has_bias:
                g_b = gy.sum(0)
            ctx.reused = not (need_beta or need_th)  # else the membrane is read afterwards
            g = _spike_term(vs, v_th, gy, weight, ctx.spike_fn, ctx.reused, ctx.workspace)
        zs_float = zs if ctx.reset == "zero" else None
        needs = (need_x, need_v0, need_beta, need_th)
        grads = lif_adjoint(g, vs, zs_float, v0, beta, v_th, ctx.reset, g_v, False, needs)
        return *grads, g_w, g_b, None, None, None, None, None


def _spike_term(
    vs: Tensor,
    v_th: Tensor,
    gy: Tensor,
    weight: Tensor,
    spike_fn: Surrogate,
    in_place: bool,
    workspace: Workspace | None,
) -> Tensor:
    """``(dL/dy W) * dz/dU`` over ``[T, B, N]``, ``_ROWS`` rows of ``dL/dy W`` at a time; in the
    membrane's buffer if ``in_place``."""
    steps, batch, n_in = vs.shape
    g = vs.sub_(v_th) if in_place else torch.sub(vs, v_th)
    per = max(1, _ROWS // batch)  # time steps per block
    block = empty(workspace, (min(per, steps) * batch, n_in), vs.dtype, vs.device)
    for t0 in range(0, steps, per):
        t1 = min(t0 + per, steps)
        rows = block[: (t1 - t0) * batch]
        torch.mm(gy[t0 * batch : t1 * batch], weight, out=rows)
        spike_fn.backward_(g[t0:t1], rows.view(t1 - t0, batch, n_in))
    return g


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
    spikes_as_bytes: bool = False,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """``(F.linear(z, weight, bias), U[T-1])`` for the LIF spikes ``z`` of ``xs`` ``[T, B, N]``
    (the arguments of :func:`~torchspike.sequence.lif_sequence` with ``membrane=False``), in one
    autograd node. ``overwrite_input`` keeps the membrane in ``xs`` where that is safe (as in
    ``lif_sequence``); ``spikes_as_bytes`` saves ``z`` as uint8 for the weight gradient."""
    if xs.dim() != 3:
        raise ValueError(f"xs must be [T, B, N] for a Linear to follow, got {tuple(xs.shape)}")
    over = overwrite_input and can_overwrite(xs, v0)
    out = _LIFLinear.apply(
        xs, v0, beta, v_th, weight, bias, reset, spike_fn, over, spikes_as_bytes, workspace
    )
    return out[0], out[1]

"""Running layers over time: the step-by-step reference, time folding and the fused LIF kernel.

The reference path loops a neuron's step function under autograd (T nodes per op). The fused
kernel runs the same LIF recursion in one autograd node with a hand-written backward over time;
it saves only the membrane sequence, and the tests pin it to the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .surrogate import Surrogate

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]

RESETS = ("subtract", "zero", "none")


def run_steps(step: StepFn, xs: Tensor, state: Any) -> tuple[Tensor, Any]:
    """Reference execution: ``y[t], state = step(x[t], state)`` for each t, stacked."""
    ys = []
    for x in xs.unbind(0):  # unbind, not xs[t]: indexing makes backward O(T^2)
        y, state = step(x, state)
        ys.append(y)
    return torch.stack(ys), state


def is_static(xs: Tensor) -> bool:
    """True when ``xs`` is one input repeated over time (an ``expand`` with time stride 0)."""
    return xs.dim() >= 1 and xs.shape[0] > 1 and xs.stride(0) == 0


def fold_time(layer: nn.Module, xs: Tensor) -> Tensor:
    """Apply a stateless layer to all time steps at once, as ``[T * B, ...]``.

    A static input (see :func:`is_static`) goes through the layer once and is expanded again,
    so a Linear or Conv in front of the first neuron costs one step, not T.
    """
    steps = xs.shape[0]
    if is_static(xs):
        y = layer(xs[0])
        return y.unsqueeze(0).expand(steps, *y.shape)
    y = layer(xs.reshape(steps * xs.shape[1], *xs.shape[2:]))
    return y.reshape(steps, xs.shape[1], *y.shape[1:])


class _LIFSequence(torch.autograd.Function):
    """U[t] = beta U[t-1] + x[t] - reset term; z[t] = H(U[t] - v_th); see ``neurons.lif_step``."""

    @staticmethod
    def forward(ctx, xs, v0, beta, v_th, reset: str, spike_fn: Surrogate):
        vs = torch.empty(xs.shape, dtype=xs.dtype, device=xs.device)
        v = v0
        fired = v0 > v_th
        for t, x in enumerate(xs.unbind(0)):
            vt = vs[t]
            torch.mul(v, beta, out=vt)
            vt.add_(x)
            if reset == "subtract":
                vt.sub_(fired * v_th)
            elif reset == "zero":
                vt.masked_fill_(fired, 0)
            fired = vt > v_th
            v = vt
        ctx.reset, ctx.spike_fn = reset, spike_fn
        ctx.save_for_backward(vs, v0, beta, v_th)
        return (vs > v_th).to(xs.dtype), vs

    @staticmethod
    def backward(ctx, g_spikes, g_vs):
        vs, v0, beta, v_th = ctx.saved_tensors
        reset = ctx.reset
        need_x, need_v0, need_beta, need_th = ctx.needs_input_grad[:4]
        g_direct = g_spikes * ctx.spike_fn.derivative(vs - v_th)  # dL/dz * dz/dU
        g_th = -g_direct.sum_to_size(v_th.shape) if need_th else None
        g = g_direct.add_(g_vs)
        fired = vs > v_th  # fired[t] is the reset R[t + 1]
        if reset == "zero":
            keep = (~fired).to(vs.dtype)
            for t in range(vs.shape[0] - 2, -1, -1):
                g[t].addcmul_(g[t + 1] * beta, keep[t])
        else:
            for t in range(vs.shape[0] - 2, -1, -1):
                g[t].addcmul_(g[t + 1], beta)
        # g is now dL/dU[t]; map it to the inputs of step t
        reset_in = torch.cat([(v0 > v_th).unsqueeze(0), fired[:-1]])  # R[t]
        if reset == "zero":
            g = g * (~reset_in).to(g.dtype)
        g_x = g if need_x else None
        g_v0 = (g[0] * beta) if need_v0 else None
        g_beta = None
        if need_beta:
            v_prev = torch.cat([v0.unsqueeze(0), vs[:-1]])
            g_beta = (g * v_prev).sum_to_size(beta.shape)
        if need_th and reset == "subtract":
            g_th = g_th - (g * reset_in.to(g.dtype)).sum_to_size(v_th.shape)
        return g_x, g_v0, g_beta, g_th, None, None


def lif_sequence(
    xs: Tensor, v0: Tensor, beta: Tensor, v_th: Tensor, reset: str, spike_fn: Surrogate
) -> tuple[Tensor, Tensor]:
    """Fused LIF over ``[T, B, ...]``: returns ``(spikes, membrane)``; one autograd node.

    The membrane sequence is ``U[t]`` before each step's own reset (the state to carry on).
    """
    return _LIFSequence.apply(xs, v0, beta, v_th, reset, spike_fn)

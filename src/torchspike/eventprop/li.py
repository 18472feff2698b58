"""EventProp for a non-spiking leaky-integrator (LI) readout: the CubaLIF layer without threshold.

Per step ``k``: ``i' = alpha i + sum_e W[:, j_e] A(delta_e)``,
``v' = beta v + kappa i + sum_e W[:, j_e] K(delta_e)`` (see :mod:`.lif`). The readout reduces the
voltages ``v_k`` (at the step ends ``t_k = (k + 1) dt``) over time:

    max:      max_k v_k                                  (Wunderlich & Pehle's MNIST readout)
    sum:      1/T sum_k v_k dt                           (Nowotny et al. "sum")
    sum_exp:  1/T sum_k exp(-t_k / T) v_k dt             (Nowotny et al. "sum_weigh_exp")
    trace:    v_k for every k, ``[T, B, C]``             (any loss; memory grows with T)

In the backward pass the readout's gradient enters the adjoint ``lambda_v`` as a source term.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .kernel import InputEvents, Kernel
from .spikes import Spikes

READOUTS = ("max", "sum", "sum_exp", "trace")


def li_readout(spikes: Spikes, weight: Tensor, kernel: Kernel, readout: str) -> Tensor:
    """Readout ``[B, C]`` (``[T, B, C]`` for ``trace``) of LI neurons driven by ``spikes``."""
    return _LI.apply(
        spikes.times,
        spikes.step,
        spikes.batch,
        spikes.unit,
        weight,
        kernel,
        readout,
        spikes.steps,
        spikes.batch_size,
    )


def _time_weight(readout: str, k: int, steps: int) -> float:
    """Weight of ``v_k`` in the ``sum`` and ``sum_exp`` readouts."""
    if readout == "sum":
        return 1 / steps
    return math.exp(-(k + 1) / steps) / steps


class _LI(torch.autograd.Function):
    @staticmethod
    def forward(ctx, times, step, batch, unit, weight, kernel: Kernel, readout, steps, n_batch):
        w_t = weight.t().contiguous()
        inputs = InputEvents(w_t, times, step, batch, unit, kernel, steps, n_batch)
        i = weight.new_zeros(n_batch, weight.shape[0])
        v = torch.zeros_like(i)
        if readout == "max":
            out = torch.full_like(i, -math.inf)
            arg = torch.zeros(i.shape, dtype=torch.long, device=i.device)
        elif readout == "trace":
            out = i.new_empty(steps, *i.shape)
        else:
            out = torch.zeros_like(i)
        for k in range(steps):
            i, v = inputs.advance(k, i, v)
            if readout == "max":
                higher = v > out
                out = torch.where(higher, v, out)
                arg.masked_fill_(higher, k)
            elif readout == "trace":
                out[k] = v
            else:
                out += _time_weight(readout, k, steps) * v
        ctx.kernel, ctx.readout, ctx.steps, ctx.n_batch = kernel, readout, steps, n_batch
        saved = (arg,) if readout == "max" else ()
        ctx.save_for_backward(times, step, batch, unit, weight, *saved)
        return out

    @staticmethod
    def backward(ctx, g_out):
        times, step, batch, unit, weight, *saved = ctx.saved_tensors
        kernel, readout, steps = ctx.kernel, ctx.readout, ctx.steps
        alpha, beta, kappa = kernel.alpha, kernel.beta, kernel.kappa
        need_times, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[4]
        w_t = weight.t()
        inputs = InputEvents(w_t, times, step, batch, unit, kernel, steps, ctx.n_batch)
        grad_w_t = torch.zeros_like(w_t) if need_w else None
        grad_times = torch.zeros_like(times) if need_times else None
        lam_i = weight.new_zeros(ctx.n_batch, weight.shape[0])
        lam_v = torch.zeros_like(lam_i)
        for k in range(steps - 1, -1, -1):
            if readout == "max":
                lam_v = lam_v + torch.where(saved[0] == k, g_out, 0.0)
            elif readout == "trace":
                lam_v = lam_v + g_out[k]
            else:
                lam_v = lam_v + _time_weight(readout, k, steps) * g_out
            inputs.adjoint(k, lam_i, lam_v, grad_w_t, grad_times)
            lam_i = alpha * lam_i + kappa * lam_v
            lam_v = beta * lam_v
        grad_w = grad_w_t.t() if need_w else None
        return grad_times, None, None, None, grad_w, None, None, None, None

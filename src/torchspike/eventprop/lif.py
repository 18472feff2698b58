"""EventProp for a layer of CubaLIF neurons: forward simulation, backward adjoint in reverse time.

Per step ``k`` (the interval ``[k dt, (k + 1) dt)``), from the state ``(i, v)`` after step
``k - 1``:

    i~ = alpha i + sum_e W[:, j_e] A(delta_e),    u = beta v + kappa i + sum_e W[:, j_e] K(delta_e)
    z = u > v_th,   t* = (k + (v_th - v) / (u - v)) dt          (linear interpolation)
    i' = i~ + z W_rec A(delta*),    v' = u (1 - z) + z W_rec K(delta*)

over the input events ``e`` of step ``k`` (presynaptic unit ``j_e``, time ``s_e``,
``delta_e = (k + 1) dt - s_e``) and ``delta* = (k + 1) dt - t*``. With every input at a step start
this is :class:`~torchspike.neurons.CubaLIF` exactly. The backward pass runs the adjoint
``(lambda_i, lambda_v)`` from ``k = T - 1`` down to 0; it jumps at this layer's spikes (through
``t*``) and reads the weight gradients off at the input spikes. It keeps the spikes and two
voltages per spike, nothing of size ``T``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .kernel import InputEvents, Kernel, project, project_backward
from .spikes import Spikes, step_bounds


def lif_layer(
    spikes: Spikes,
    weight: Tensor,
    w_rec: Tensor | None,
    kernel: Kernel,
    v_th: float,
) -> Spikes:
    """Output spikes of CubaLIF neurons driven by ``spikes`` through ``weight`` ``[N, N_in]`` (and
    ``w_rec`` ``[N, N]`` if recurrent). The output ``times`` carry EventProp gradients."""
    times, step, batch, unit = _LIF.apply(
        spikes.times,
        spikes.step,
        spikes.batch,
        spikes.unit,
        weight,
        w_rec,
        kernel,
        float(v_th),
        spikes.steps,
        spikes.batch_size,
    )
    return Spikes(
        times, step, batch, unit, spikes.batch_size, weight.shape[0], spikes.steps, spikes.dt
    )


class _LIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, times, step, batch, unit, weight, w_rec, kernel: Kernel, v_th, steps, n_batch):
        dt = kernel.dt
        n = weight.shape[0]
        w_t = weight.t().contiguous()
        inputs = InputEvents(w_t, times, step, batch, unit, kernel, steps, n_batch)
        wr_t = None if w_rec is None else w_rec.t().contiguous()
        i = weight.new_zeros(n_batch, n)
        v = weight.new_zeros(n_batch, n)
        out: list[tuple[Tensor, ...]] = []
        for k in range(steps):
            i_next, u = inputs.advance(k, i, v)
            z = u > v_th
            v_next = u
            bz, nz = z.nonzero(as_tuple=True)  # one pass (and one sync) finds the spikes
            if len(bz):
                frac, dt_du, dt_dv = _crossing(v[bz, nz], u[bz, nz], v_th, dt)
                v_next = u.masked_fill(z, 0.0)
                if wr_t is not None:
                    a_r, k_r, _, _ = kernel(dt * (1 - frac))
                    di, dv = project(wr_t, bz, nz, a_r, k_r, n_batch)
                    i_next += di
                    v_next += dv
                out.append((torch.full_like(bz, k), bz, nz, frac, dt_du, dt_dv))
            i, v = i_next, v_next
        if out:
            o_step, o_b, o_n, frac, dt_du, dt_dv = (torch.cat(c) for c in zip(*out, strict=True))
        else:
            o_step = o_b = o_n = step.new_zeros(0)
            frac = dt_du = dt_dv = weight.new_zeros(0)
        t_out = (o_step + frac) * dt
        ctx.kernel, ctx.steps, ctx.n_batch = kernel, steps, n_batch
        ctx.recurrent = w_rec is not None
        rec = (w_rec,) if w_rec is not None else ()
        ctx.save_for_backward(
            times, step, batch, unit, weight, o_step, o_b, o_n, frac, dt_du, dt_dv, *rec
        )
        ctx.mark_non_differentiable(o_step, o_b, o_n)
        return t_out, o_step, o_b, o_n

    @staticmethod
    def backward(ctx, g_out, *_):
        times, step, batch, unit, weight, o_step, o_b, o_n, frac, dt_du, dt_dv, *rec = (
            ctx.saved_tensors
        )
        kernel, steps = ctx.kernel, ctx.steps
        dt, alpha, beta, kappa = kernel.dt, kernel.alpha, kernel.beta, kernel.kappa
        need_times, need_w, need_rec = (ctx.needs_input_grad[j] for j in (0, 4, 5))
        w_t = weight.t()
        wr_t = rec[0].t() if rec else None
        inputs = InputEvents(w_t, times, step, batch, unit, kernel, steps, ctx.n_batch)
        coef_rec = kernel(dt * (1 - frac)) if rec else None
        g_out = torch.zeros_like(frac) if g_out is None else g_out
        grad_w_t = torch.zeros_like(w_t) if need_w else None
        grad_rec_t = torch.zeros_like(wr_t) if need_rec and rec else None
        grad_times = torch.zeros_like(times) if need_times else None
        out_bounds = step_bounds(o_step, steps)
        lam_i = weight.new_zeros(ctx.n_batch, weight.shape[0])
        lam_v = torch.zeros_like(lam_i)
        for k in range(steps - 1, -1, -1):
            o0, o1 = out_bounds[k], out_bounds[k + 1]
            lam_u = lam_v  # adjoint of u, the voltage before the reset
            if o1 > o0:
                bz, nz = o_b[o0:o1], o_n[o0:o1]
                g_t = g_out[o0:o1]
                if wr_t is not None:
                    coefs = tuple(c[o0:o1] for c in coef_rec)
                    g_t = g_t - project_backward(
                        wr_t, bz, nz, coefs, lam_i, lam_v, grad_rec_t, need_delta=True
                    )
                lam_u = lam_v.clone()
                lam_u[bz, nz] = g_t * dt_du[o0:o1]
                g_v_prev = g_t * dt_dv[o0:o1]
            inputs.adjoint(k, lam_i, lam_u, grad_w_t, grad_times)
            lam_i = alpha * lam_i + kappa * lam_u
            lam_v = beta * lam_u
            if o1 > o0:
                lam_v.index_put_((bz, nz), g_v_prev, accumulate=True)
        grad_w = grad_w_t.t() if need_w else None
        grad_rec = grad_rec_t.t() if grad_rec_t is not None else None
        return grad_times, None, None, None, grad_w, grad_rec, None, None, None, None


def _crossing(v_prev: Tensor, u: Tensor, v_th: float, dt: float) -> tuple[Tensor, Tensor, Tensor]:
    """Fraction of the step at which the line from ``v_prev`` to ``u`` crosses ``v_th`` (0 unless
    ``v_prev < v_th``), and the derivatives of the spike time ``t* = (k + frac) dt`` in ``u`` and
    in ``v_prev`` (0 where the fraction is 0): all that backward needs of a spike."""
    ok = v_prev < v_th
    denom = torch.where(ok, u - v_prev, torch.ones_like(u))
    zero = torch.zeros_like(u)
    frac = torch.where(ok, (v_th - v_prev) / denom, zero)
    dt_du = torch.where(ok, -dt * frac / denom, zero)
    dt_dv = torch.where(ok, -dt * (1 - frac) / denom, zero)
    return frac, dt_du, dt_dv

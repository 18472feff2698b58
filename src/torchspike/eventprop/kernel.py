"""Sub-step CubaLIF response and the sparse input projection shared by the EventProp layers.

A unit current jump ``delta`` seconds before the end of a step leaves, at the end of that step,
current ``A(delta) = exp(-delta / tau_syn)`` and membrane ``K(delta)``, the exact CubaLIF response.
Both come from :func:`~torchspike.neurons.cuba_coefficients` (``A(dt) = alpha``, ``K(dt) = kappa``),
so the grid step and the sub-step offsets share one definition of the maths.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..neurons.cuba import cuba_coefficients
from .spikes import step_bounds


class Kernel:
    """``(alpha, beta, kappa)`` of one step of ``dt`` and the sub-step response ``A``, ``K``;
    ``tau_mem``, ``tau_syn`` and ``dt`` are > 0, in one unit (see
    :func:`~torchspike.neurons.cuba_coefficients`)."""

    def __init__(self, tau_mem: float, tau_syn: float, dt: float):
        self.alpha, self.beta, self.kappa = cuba_coefficients(tau_mem, tau_syn, dt)
        self.tau_mem, self.tau_syn, self.dt = float(tau_mem), float(tau_syn), float(dt)
        self.equal = math.isclose(tau_syn, tau_mem, rel_tol=1e-9)

    def __repr__(self) -> str:
        return f"Kernel(tau_mem={self.tau_mem:g}, tau_syn={self.tau_syn:g}, dt={self.dt:g})"

    def __call__(self, delta: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(A, K, dA/ddelta, dK/ddelta)`` at offsets ``delta`` in ``[0, dt]``."""
        r = delta / self.dt
        log_a, log_b = math.log(self.alpha), math.log(self.beta)
        a = torch.exp(r * log_a)
        b = torch.exp(r * log_b)
        da = a * (log_a / self.dt)
        if self.equal:  # K = r kappa beta^(r-1) = (delta / tau) exp(-delta / tau)
            k = r * b * (self.kappa / self.beta)
            dk = b * (self.kappa / self.beta) * (1 + r * log_b) / self.dt
        else:  # K = c (A - B) with c = kappa / (alpha - beta) = tau_syn / (tau_syn - tau_mem)
            c = self.kappa / (self.alpha - self.beta)
            k = c * (a - b)
            dk = c * (a * log_a - b * log_b) / self.dt
        return a, k, da, dk


def offset(times: Tensor, step: Tensor, dt: float) -> Tensor:
    """``delta = (k + 1) dt - t``: how long before the end of its step ``k`` each event comes."""
    return (step + 1).to(times.dtype) * dt - times


def dense_is_cheaper(events: int, batch: int, n_in: int) -> bool:
    """Scatter into a dense ``[B, N_in]`` matrix and matmul once the events fill 1/64 of it: on CPU
    ``index_add_`` of gathered rows loses to a dense matmul well before the matrix fills up."""
    return 64 * events >= batch * n_in


def project(
    w_t: Tensor, batch: Tensor, unit: Tensor, a: Tensor, k: Tensor, n_batch: int
) -> tuple[Tensor, Tensor]:
    """Current and membrane jumps ``[B, N]`` of events ``(batch, unit)`` with coefficients
    ``a``, ``k``: ``di[b] = sum_e w_t[unit_e] a_e`` over the events of sample ``b``
    (``w_t`` is ``[N_in, N]``)."""
    n_in, n = w_t.shape
    if dense_is_cheaper(len(unit), n_batch, n_in):
        coef = w_t.new_zeros(2, n_batch, n_in)
        coef[0].index_put_((batch, unit), a, accumulate=True)
        coef[1].index_put_((batch, unit), k, accumulate=True)
        out = coef @ w_t
        return out[0], out[1]
    rows = w_t[unit]
    di = w_t.new_zeros(n_batch, n).index_add_(0, batch, rows * a[:, None])
    dv = w_t.new_zeros(n_batch, n).index_add_(0, batch, rows * k[:, None])
    return di, dv


def project_backward(
    w_t: Tensor,
    batch: Tensor,
    unit: Tensor,
    coefs: tuple[Tensor, Tensor, Tensor, Tensor],
    lam_i: Tensor,
    lam_v: Tensor,
    grad_w_t: Tensor | None,
    need_delta: bool,
) -> Tensor | None:
    """Adjoint of :func:`project`: adds ``dL/dw_t`` into ``grad_w_t`` and returns ``dL/ddelta``
    per event (``None`` unless ``need_delta``), given the adjoints ``lam_i``, ``lam_v`` ``[B, N]``
    of the jumps."""
    a, k, da, dk = coefs
    n_in = w_t.shape[0]
    if dense_is_cheaper(len(unit), lam_i.shape[0], n_in):
        if grad_w_t is not None:
            coef = lam_i.new_zeros(2, lam_i.shape[0], n_in)
            coef[0].index_put_((batch, unit), a, accumulate=True)
            coef[1].index_put_((batch, unit), k, accumulate=True)
            grad_w_t.add_(coef[0].t() @ lam_i).add_(coef[1].t() @ lam_v)
        if not need_delta:
            return None
        w = w_t.t()
        return da * (lam_i @ w)[batch, unit] + dk * (lam_v @ w)[batch, unit]
    li, lv = lam_i[batch], lam_v[batch]
    if grad_w_t is not None:
        grad_w_t.index_add_(0, unit, li * a[:, None] + lv * k[:, None])
    if not need_delta:
        return None
    rows = w_t[unit]
    return da * (li * rows).sum(1) + dk * (lv * rows).sum(1)


class InputEvents:
    """A layer's input events ``(times, step, batch, unit)`` grouped by step, with their sub-step
    coefficients: the current and membrane jumps they cause (forward) and the adjoint of those
    jumps (backward), shared by the LIF and LI layers."""

    def __init__(
        self,
        w_t: Tensor,
        times: Tensor,
        step: Tensor,
        batch: Tensor,
        unit: Tensor,
        kernel: Kernel,
        steps: int,
        n_batch: int,
    ):
        self.w_t, self.batch, self.unit, self.n_batch = w_t, batch, unit, n_batch
        self.kernel = kernel
        self.coefs = kernel(offset(times, step, kernel.dt))
        self.bounds = step_bounds(step, steps)

    def advance(self, k: int, i: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """One grid step of the CubaLIF dynamics with step ``k``'s input jumps: the new current
        and the membrane before any reset (new tensors)."""
        kernel = self.kernel
        v = kernel.beta * v + kernel.kappa * i
        i = kernel.alpha * i
        jump = self.jump(k)
        if jump is not None:
            i += jump[0]
            v += jump[1]
        return i, v

    def jump(self, k: int) -> tuple[Tensor, Tensor] | None:
        """``(di, dv)`` ``[B, N]`` of the events in step ``k``; ``None`` if there are none."""
        s0, s1 = self.bounds[k], self.bounds[k + 1]
        if s1 == s0:
            return None
        a, kk = self.coefs[0][s0:s1], self.coefs[1][s0:s1]
        return project(self.w_t, self.batch[s0:s1], self.unit[s0:s1], a, kk, self.n_batch)

    def adjoint(
        self,
        k: int,
        lam_i: Tensor,
        lam_v: Tensor,
        grad_w_t: Tensor | None,
        grad_times: Tensor | None,
    ) -> None:
        """Backward of :meth:`jump` at step ``k`` given the adjoints of the jumps: adds into
        ``grad_w_t`` and writes the events' rows of ``grad_times`` (either may be ``None``)."""
        s0, s1 = self.bounds[k], self.bounds[k + 1]
        if s1 == s0:
            return
        coefs = tuple(c[s0:s1] for c in self.coefs)
        need_delta = grad_times is not None
        batch, unit = self.batch[s0:s1], self.unit[s0:s1]
        g_delta = project_backward(self.w_t, batch, unit, coefs, lam_i, lam_v, grad_w_t, need_delta)
        if grad_times is not None:
            grad_times[s0:s1] = -g_delta  # delta = (k + 1) dt - t

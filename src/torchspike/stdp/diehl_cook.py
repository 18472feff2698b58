"""The Diehl & Cook (2015) network: Poisson inputs -> excitatory LIF <-> inhibitory LIF.

Conductance-based neurons (mV, ms), one equation for both layers with their own constants:

    tau dv/dt = (v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v),   dg/dt = -g / tau_g

with Euler steps for ``v`` and exact decays ``g *= exp(-dt / tau_g)``.

An excitatory neuron fires when ``v > v_th_e + theta``; it resets to ``v_reset``, is held for
``t_ref`` and cannot fire for ``t_lock``; in learning each spike adds ``theta_plus`` to
``theta``. Input spikes add their weight to ``g_e`` of the excitatory layer, an excitatory spike
adds ``w_ei`` to ``g_e`` of its inhibitory partner, and an inhibitory spike adds ``w_ie`` to
``g_i`` of every other excitatory neuron. The ``"current"`` variant (BindsNET's) adds the same
quantities straight to ``v`` (inhibition subtracts) and decays ``v`` exactly.

Learning is the pre-and-post rule of :class:`torchspike.stdp.STDP` with nearest-spike traces
and the slow post trace (``rule="triplet"``, Diehl & Cook's code), or the paper's power-law
rule (``rule="power_law"``: at a post spike ``w += nu_post * (x_pre - x_tar) * (w_max - w)^mu``
with an all-to-all pre trace ``x_pre``), clamped to ``[0, w_max]``; in both a pre spike
depresses by ``nu_pre`` times the post trace. A batch simulates independent presentations
with their own state, and ``theta`` decays by the time the batch's images shown one by one would
take. With ``batch_weights="shared"`` the weights and ``theta`` are shared: the weight updates of
all samples are summed at every step and the weights are renormalised every ``steps // batch``
steps (as often as the images shown one by one would be). With ``"private"`` each sample learns
in its own copy of the weights and thresholds, exactly as if it were shown alone from the batch's
starting point (no renormalisation within the presentation, as in Diehl & Cook's code); the
batch then adds the sum of the samples' weight and ``theta`` changes and renormalises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _checks as check
from .events import Events
from .params import DiehlCookParams
from .rules import potentiation_room

REFERENCE_INPUTS = 784


class _Constants(NamedTuple):
    """Per-population constants, ``[2, 1, 1]`` against the state ``[excitatory | inhibitory,
    batch, neuron]``."""

    v_rest: Tensor
    v_reset: Tensor
    e_exc: Tensor
    e_inh: Tensor
    k: Tensor  # dt / tau (conductance) or exp(-dt / tau) (current)
    n_ref: Tensor  # steps the membrane is held after a spike
    n_lock: Tensor  # steps before the neuron can fire again


def _constants(p: DiehlCookParams, device: torch.device, dtype: torch.dtype) -> _Constants:
    def col(e: float, i: float) -> Tensor:
        return torch.tensor([e, i], device=device, dtype=dtype).view(2, 1, 1)

    if p.synapse == "conductance":
        k = col(p.dt / p.tau_e, p.dt / p.tau_i)
    else:
        k = col(math.exp(-p.dt / p.tau_e), math.exp(-p.dt / p.tau_i))
    return _Constants(
        col(p.v_rest_e, p.v_rest_i),
        col(p.v_reset_e, p.v_reset_i),
        col(p.e_exc_e, p.e_exc_i),
        col(p.e_inh_e, p.e_inh_i),
        k,
        col(round(p.t_ref_e / p.dt), round(p.t_ref_i / p.dt)),
        col(round(p.t_lock_e / p.dt), round(p.t_lock_i / p.dt)),
    )


def _g_decay(dt: float, tau: float, rule: str) -> float:
    """A conductance's factor per step: exact, or Brian 1's forward Euler step."""
    return 1.0 - dt / tau if rule == "euler" else math.exp(-dt / tau)


def _one_spike(fired: Tensor, over: Tensor) -> Tensor:
    """Keep, per sample, only the excitatory neuron furthest past its threshold."""
    e = fired[0]
    best = torch.where(e, over[0], -math.inf).argmax(1, keepdim=True)
    keep = torch.zeros_like(e).scatter_(1, best, True).logical_and_(e)
    return torch.stack([keep, fired[1]])


def _pre_trace(
    samples: Tensor, *, x_pre: Tensor | None, last_pre: Tensor, t: int, c_pre: float
) -> Tensor:
    """The pre trace of ``samples`` at step ``t``: the all-to-all ``x_pre`` if kept, else the
    nearest-spike ``exp(-(t - last pre spike) * dt / tau_pre)``, computed for those rows only."""
    if x_pre is not None:
        return x_pre[samples]
    return torch.exp((last_pre[samples] - t) * c_pre)


def _normalize_(w: Tensor, dim: int, norm: float) -> None:
    """Scale ``w`` in place so that its sums over ``dim`` equal ``norm`` (an all-zero line
    stays zero)."""
    w.mul_(norm / w.sum(dim, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny))


class DiehlCook(nn.Module):
    """The network of the module docstring with ``weight [n_neurons, n_inputs]`` (the plastic
    input -> excitatory weights, one receptive field per row) and ``theta [n_neurons]``.

    The weight parameters are for MNIST's 784 inputs. With other input sizes the weights count in
    units of ``784 / n_inputs``: ``norm`` stays, and ``w_init``, ``w_max``, ``nu_pre`` and
    ``nu_post`` are multiplied by ``784 / n_inputs``, so the rates, the input drive per neuron and
    the relative plasticity stay the paper's.

    Args:
        n_inputs: input units (784 for MNIST), > 0.
        n_neurons: excitatory (and inhibitory) neurons, > 0.
        params: a :class:`DiehlCookParams` (units there); default Diehl & Cook's code.
        generator: the random generator of the initial weights.
    """

    def __init__(
        self,
        n_inputs: int,
        n_neurons: int = 100,
        params: DiehlCookParams | None = None,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        check.positive_int(n_inputs, "n_inputs")
        check.positive_int(n_neurons, "n_neurons")
        self.params = DiehlCookParams() if params is None else params
        self.unit = REFERENCE_INPUTS / n_inputs
        w = torch.rand(n_neurons, n_inputs, generator=generator) + 0.01
        w *= self.params.w_init * self.unit
        self.register_buffer("weight", w)
        self.register_buffer("theta", torch.full((n_neurons,), float(self.params.theta_init)))

    @property
    def n_neurons(self) -> int:
        return self.weight.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.weight.shape[1]

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, n_neurons={self.n_neurons}, {self.params.synapse}"

    @torch.no_grad()
    def normalize_(self) -> None:
        """Scale each neuron's input weights to sum to ``params.norm``."""
        _normalize_(self.weight, 1, self.params.norm)

    def rates(self, x: Tensor, intensity: Tensor | float) -> Tensor:
        """Input rates in Hz: ``x [B, ...]`` in [0, 1] times ``rate_scale * intensity``
        (``intensity`` a number or one per sample)."""
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.n_inputs:
            raise ValueError(
                f"x must have {self.n_inputs} inputs per sample, got shape {tuple(x.shape)}"
            )
        scale = (
            torch.as_tensor(intensity, dtype=flat.dtype, device=flat.device)
            * self.params.rate_scale
        )
        return flat * (scale.reshape(-1, 1) if scale.dim() else scale)

    @torch.no_grad()
    def present(
        self, events: Events, batch: int, *, learn: bool, record: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Simulate one presentation of ``batch`` samples from a fresh state.

        Returns the excitatory spike counts ``[batch, n_neurons]`` and, with ``record``, also the
        excitatory spikes ``[T, batch, n_neurons]``. With ``learn`` the weights are updated by STDP
        and kept normalised, and ``theta`` adapts.
        """
        p, n = self.params, self.n_neurons
        if learn:
            self.normalize_()
        dtype, device = self.weight.dtype, self.weight.device
        c = _constants(p, device, dtype)
        steps, off = len(events.offsets) - 1, events.offsets
        w = self.weight.t().contiguous()  # [n_inputs, n]: rows gathered per input event
        v = c.v_rest.expand(2, batch, n).clone()  # [excitatory | inhibitory, batch, neuron]
        ge, gi = torch.zeros_like(v), torch.zeros_like(v)
        ge_e, ge_i, gi_e = ge[0], ge[1], gi[0]
        since = torch.full_like(v, 1e9)  # steps since the last spike
        th = torch.stack([p.v_th_e + self.theta, torch.full_like(self.theta, p.v_th_i)])[:, None]
        private = learn and p.batch_weights == "private"
        if private:  # each sample's own weights [batch * n_inputs, n] and thresholds
            wf = w.expand(batch, *w.shape).reshape(-1, n)
            th = th.expand(2, batch, n).clone()
        counts = torch.zeros(batch, n, dtype=dtype, device=device)
        conductance = p.synapse == "conductance"
        d_ge, d_gi = _g_decay(p.dt, p.tau_ge, p.g_decay), _g_decay(p.dt, p.tau_gi, p.g_decay)
        if learn:
            d1, c_pre = math.exp(-p.dt / p.tau_post), p.dt / p.tau_pre
            post1 = torch.zeros_like(counts)
            post2 = None if p.tau_post2 is None else torch.zeros_like(counts)  # slow LTP trace
            d2 = 1.0 if post2 is None else math.exp(-p.dt / p.tau_post2)
            last_pre = torch.full((batch, self.n_inputs), -math.inf, dtype=dtype, device=device)
            # power_law: the all-to-all pre trace x_pre, decayed per step, + 1 per input spike
            x_pre = torch.zeros_like(last_pre) if p.rule == "power_law" else None
            d_pre = math.exp(-p.dt / p.tau_pre)
        zs = [] if record else None
        renorm = max(1, steps // batch)  # as often as `batch` images shown one by one would
        for t in range(steps):
            if learn and not private and t and t % renorm == 0:
                _normalize_(w, 0, p.norm)
            # charge; a neuron within t_ref of its spike keeps its membrane
            free = since >= c.n_ref
            if conductance:
                dv = torch.addcmul(c.v_rest, gi, c.e_inh).addcmul_(ge, c.e_exc)
                dv.addcmul_(v, torch.add(ge, gi).add_(1.0), value=-1.0).mul_(c.k).mul_(free)
                v.add_(dv)
                ge.mul_(d_ge)
                gi.mul_(d_gi)
            else:
                v.sub_(c.v_rest).mul_(c.k).add_(c.v_rest).addcmul_(ge.sub_(gi), free)
                ge.zero_()
                gi.zero_()
            since += 1
            if learn:
                post1.mul_(d1)
                if post2 is not None:
                    post2.mul_(d2)
                if x_pre is not None:
                    x_pre.mul_(d_pre)
            # fire and reset
            fired = (v > th).logical_and_(since > c.n_lock)
            z = _one_spike(fired, v - th) if p.one_spike else fired
            if zs is not None:
                zs.append(z[0].to(dtype))
            if fired.any():
                v = torch.where(fired, c.v_reset, v)
                since.masked_fill_(fired, 0)
                zf = z.to(dtype)
                ze, zi = zf[0], zf[1]
                counts.add_(ze)
                ge_i.add_(ze, alpha=p.w_ei)
                gi_e.add_(zi.sum(1, keepdim=True) - zi, alpha=p.w_ie)
                rows = ze.any(1).nonzero().squeeze(1) if learn else ()
                if len(rows):
                    pre = partial(_pre_trace, x_pre=x_pre, last_pre=last_pre, t=t, c_pre=c_pre)
                    if private:
                        self._potentiate_own(wf, ze, pre, post2)
                        th[0].add_(fired[0].to(dtype), alpha=p.theta_plus)
                    else:
                        self._potentiate(w, ze, rows, pre, post2)
                    post1.masked_fill_(z[0], 1.0)
                    if post2 is not None:
                        post2.masked_fill_(z[0], 1.0)
                    self.theta.add_(fired[0].sum(0), alpha=p.theta_plus)
                    if not private:
                        th[0, 0] = self.theta + p.v_th_e
            # deliver this step's input spikes; depress their synapses by the post trace
            lo, hi = off[t], off[t + 1]
            if hi > lo:
                b, i = events.sample[lo:hi], events.input[lo:hi]
                if private:
                    own = b * self.n_inputs + i
                    ge_e.index_add_(0, b, wf[own])
                    wf.index_add_(0, own, post1[b], alpha=-p.nu_pre * self.unit)
                else:
                    ge_e.index_add_(0, b, w[i])
                    if learn:
                        w.index_add_(0, i, post1[b], alpha=-p.nu_pre * self.unit)
                if learn:
                    last_pre[b, i] = t
                    if x_pre is not None:
                        x_pre.index_put_((b, i), torch.ones_like(b, dtype=dtype), accumulate=True)
        if learn:
            if private:  # w + the sum of every sample's change
                w = wf.view(batch, *w.shape).sum(0).sub_(w, alpha=batch - 1)
            self.weight.copy_(w.t().clamp_(0.0, p.w_max * self.unit))
            self.normalize_()
            self.theta.mul_(math.exp(-batch * (p.t_present + p.t_rest) / p.tau_theta))
        if zs is not None:
            return counts, torch.stack(zs)
        return counts

    def _room(self, w: Tensor) -> Tensor:
        """The power-law rule's weight dependence ``(w_max - w)^mu``, ``w`` in units of 784 /
        n_inputs (:func:`~torchspike.stdp.rules.potentiation_room`)."""
        return potentiation_room(w / self.unit, self.params.w_max, self.params.mu)

    def _potentiate_own(self, wf, ze, pre: Callable[[Tensor], Tensor], post2) -> None:
        """LTP of each spiking neuron's weights in its own sample's copy ``wf``, clamped;
        ``pre(samples)`` is the pre trace of those samples."""
        p, n = self.params, self.n_neurons
        b, j = ze.nonzero(as_tuple=True)
        gain = torch.full_like(b, p.nu_post * self.unit, dtype=wf.dtype)
        if post2 is not None:
            gain = gain * post2[b, j]
        cols = wf.view(-1, self.n_inputs, n)[b, :, j]  # [spikes, n_inputs]
        x = pre(b) if p.rule == "triplet" else (pre(b) - p.x_tar).mul_(self._room(cols))
        cols.addcmul_(x, gain[:, None]).clamp_(0.0, p.w_max * self.unit)
        wf.view(-1, self.n_inputs, n)[b, :, j] = cols

    def _potentiate(self, w, ze, rows, pre: Callable[[Tensor], Tensor], post2) -> None:
        """LTP on post spikes: ``w += nu_post * x (x) (z * post2)`` (``triplet``, ``x`` the pre
        trace ``pre(rows)``) or ``w += nu_post * (x - x_tar) (x) z * (w_max - w)^mu``
        (``power_law``, on the columns of the neurons that fired), clamped."""
        p = self.params
        ltp = ze[rows] if post2 is None else ze[rows] * post2[rows]
        if p.rule == "triplet":
            w.addmm_(pre(rows).t(), ltp, alpha=p.nu_post * self.unit)
        else:
            fired = ltp.any(0).nonzero().squeeze(1)
            dw = (pre(rows) - p.x_tar).t().mm(ltp[:, fired])
            cols = w[:, fired]
            w[:, fired] = cols.addcmul_(dw, self._room(cols), value=p.nu_post * self.unit)
        w.clamp_(0.0, p.w_max * self.unit)

"""Pair-based STDP for ``nn.Linear`` and ``nn.Conv2d`` weights, written as ``-dw`` into ``.grad``.

At each step, with pre trace ``x``, post traces ``y`` (and a slow ``y2``) and spikes ``s``:

    dw = nu_post * f_+(w) * y2 * s_post (x) (x - x_tar)  -  nu_pre * f_-(w) * y (x) s_pre

(``(x)`` is the outer product summed over the batch; for a convolution, over positions too).
Potentiation on a post spike reads ``x`` before this step's pre spikes; depression on a pre spike
reads ``y`` after this step's post spikes, since an input arriving now can only drive the neuron
from the next step on. ``y2`` is 1 without ``tau_post2``; with it, it is read before this step's
post spikes (Diehl & Cook's triplet-like ``post2before``). Bounds: ``"hard"`` has
``f_+ = f_- = 1`` and clamps to ``[w_min, w_max]`` (:meth:`STDP.clamp_`); ``"soft"`` has
``f_+ = (w_max - w)^mu`` and ``f_- = (w - w_min)^mu`` (``mu = 1``: multiplicative soft bounds;
``mu < 1``: Guetig et al.'s weight dependence). ``x_tar`` (0 by default) is the pre trace at
which a post spike leaves the weight unchanged: Diehl & Cook's power-law rule is
``bound="soft", mu=0.2, x_tar=0.4, trace="add", nu_pre=0``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _checks as check
from .traces import MODES, add_spikes, decay, trace_step

BOUNDS = ("hard", "soft")


def potentiation_room(w: Tensor, w_max: float, mu: float) -> Tensor:
    """The soft bound of potentiation, ``f_+(w) = (w_max - w)^mu`` (0 from ``w_max`` on)."""
    return (w_max - w).clamp_min(0) ** mu


class STDPState(NamedTuple):
    pre: Tensor  # x: pre trace, shaped like the layer input
    post: Tensor  # y: post trace, shaped like the layer output
    post2: Tensor  # y2: slow post trace (unused, zeros, without tau_post2)


def correlate(post: Tensor, pre: Tensor, layer: nn.Module) -> Tensor:
    """``sum_batch post (x) pre`` shaped like ``layer.weight``: the weight gradient of
    ``sum(layer(pre) * post)`` (bias aside)."""
    if isinstance(layer, nn.Linear):
        post2d = post.reshape(-1, post.shape[-1])
        return post2d.t() @ pre.reshape(-1, pre.shape[-1])
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1 or isinstance(layer.padding, str):
            raise ValueError(
                f"layer must be a Conv2d with groups=1 and numeric padding, got {layer!r}"
            )
        cols = F.unfold(pre, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
        out = torch.einsum("bol,bkl->ok", post.flatten(2), cols)
        return out.reshape(layer.weight.shape)
    raise ValueError(f"layer must be an nn.Linear or nn.Conv2d, got {type(layer).__name__}")


class STDP:
    """Pair-based STDP for one layer (equation in the module docstring); times in one unit.

    ``step(pre_spikes, post_spikes, state)`` returns ``(dw, state)`` and adds ``-dw`` to
    ``layer.weight.grad``, so ``torch.optim.SGD(layer.parameters(), lr=1.0).step()`` applies
    ``w += dw`` (any optimiser works on it); call :meth:`clamp_` after the optimiser step.

    Args:
        layer: the ``nn.Linear`` or ``nn.Conv2d`` (groups 1, numeric padding) whose weight learns.
        nu_pre: learning rate of the depression at pre spikes, >= 0.
        nu_post: learning rate of the potentiation at post spikes, >= 0.
        tau_pre: time constant of the pre trace, > 0 (the unit of ``dt``, ms by convention).
        tau_post: time constant of the post trace, > 0.
        tau_post2: time constant of the slow post trace (Diehl & Cook's 40), or ``None``.
        dt: the step, > 0.
        w_min: lower weight bound.
        w_max: upper weight bound, > ``w_min``.
        bound: ``"hard"`` (additive, clipped) or ``"soft"`` (weight-dependent, exponent ``mu``).
        mu: exponent of the soft bound, > 0 (1 is BindsNET's weight-dependent rule).
        trace: ``"set"`` (a spike sets the trace to 1: nearest-spike) or ``"add"`` (all-to-all).
        x_tar: the pre trace at which a post spike leaves ``w`` unchanged (below it, depresses).
    """

    def __init__(
        self,
        layer: nn.Linear | nn.Conv2d,
        *,
        nu_pre: float = 1e-4,
        nu_post: float = 1e-2,
        tau_pre: float = 20.0,
        tau_post: float = 20.0,
        tau_post2: float | None = None,
        dt: float = 1.0,
        w_min: float = 0.0,
        w_max: float = 1.0,
        bound: str = "hard",
        mu: float = 1.0,
        trace: str = "set",
        x_tar: float = 0.0,
    ):
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            raise ValueError(f"layer must be an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        check.non_negative(nu_pre, "nu_pre")
        check.non_negative(nu_post, "nu_post")
        if not w_min < w_max:
            raise ValueError(f"need w_min < w_max, got w_min={w_min!r}, w_max={w_max!r}")
        self.layer = layer
        self.nu_pre, self.nu_post = float(nu_pre), float(nu_post)
        self.d_pre, self.d_post = decay(tau_pre, dt), decay(tau_post, dt)
        self.d_post2 = None if tau_post2 is None else decay(tau_post2, dt)
        self.w_min, self.w_max = float(w_min), float(w_max)
        self.bound = check.choice(bound, BOUNDS, "bound")
        self.mu = float(check.positive(mu, "mu"))
        self.trace = check.choice(trace, MODES, "trace")
        self.x_tar = float(check.non_negative(x_tar, "x_tar"))

    def initial_state(self, pre: Tensor, post: Tensor) -> STDPState:
        return STDPState(torch.zeros_like(pre), torch.zeros_like(post), torch.zeros_like(post))

    @torch.no_grad()
    def step(
        self, pre: Tensor, post: Tensor, state: STDPState | None = None
    ) -> tuple[Tensor, STDPState]:
        """One step: decay the traces, compute ``dw``, add ``-dw`` to ``.grad``, update traces.

        ``pre`` is shaped like the layer input ``[B, ...]`` and ``post`` like its output.
        """
        state = self.initial_state(pre, post) if state is None else state
        x = state.pre * self.d_pre  # decayed once, used for LTP and then for the new trace
        y2 = None if self.d_post2 is None else state.post2 * self.d_post2
        ltp_post = post if y2 is None else post * y2
        y = trace_step(state.post, post, self.d_post, self.trace)
        w = self.layer.weight.detach()
        ltp = correlate(ltp_post, x - self.x_tar if self.x_tar else x, self.layer)
        ltd = correlate(y, pre, self.layer)
        if self.bound == "soft":
            ltp = ltp * potentiation_room(w, self.w_max, self.mu)
            ltd = ltd * (w - self.w_min).clamp_min(0) ** self.mu
        dw = self.nu_post * ltp - self.nu_pre * ltd
        self.accumulate(dw)
        x = add_spikes(x, pre, self.trace)
        y2 = state.post2 if y2 is None else add_spikes(y2, post, self.trace)
        return dw, STDPState(x, y, y2)

    def run(
        self, pres: Tensor, posts: Tensor, state: STDPState | None = None
    ) -> tuple[Tensor, STDPState]:
        """:meth:`step` over sequences ``[T, B, ...]``; returns the summed ``dw`` and the state."""
        if pres.shape[0] != posts.shape[0]:
            raise ValueError(
                f"pres and posts must have the same number of steps, got {pres.shape[0]} "
                f"and {posts.shape[0]}"
            )
        total = torch.zeros_like(self.layer.weight, requires_grad=False)
        for pre, post in zip(pres.unbind(0), posts.unbind(0), strict=True):
            dw, state = self.step(pre, post, state)
            total += dw
        return total, state

    def accumulate(self, dw: Tensor) -> None:
        """Add ``-dw`` to ``layer.weight.grad`` (creating it)."""
        weight = self.layer.weight
        if weight.grad is None:
            weight.grad = -dw.detach().clone()
        else:
            weight.grad.sub_(dw.detach())

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clamp the weight to ``[w_min, w_max]``."""
        self.layer.weight.clamp_(self.w_min, self.w_max)

"""Parameters of the Diehl & Cook (2015) network (mV, ms, Hz) and of BindsNET's current variant."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .. import _checks as check

SYNAPSES = ("conductance", "current")
G_DECAYS = ("exact", "euler")
BATCH_WEIGHTS = ("shared", "private")
RULES = ("triplet", "power_law")
_POSITIVE = ("dt", "t_present", "rate_scale", "intensity", "norm", "w_max", "mu")
_NON_NEGATIVE = ("t_rest", "t_ref_e", "t_lock_e", "t_ref_i", "t_lock_i", "theta_init", "w_init")
_NON_NEGATIVE += ("theta_plus", "nu_pre", "nu_post", "min_spikes", "max_retries", "x_tar")


@dataclass(frozen=True)
class DiehlCookParams:
    """Defaults: Diehl & Cook's published code (``Diehl&Cook_spiking_MNIST.py``), but for two.

    ``v_th_e`` is their -52 mV minus the 20 mV ``offset``, with ``theta`` starting at 20 mV, so
    the first threshold is -52 mV and ``theta`` decays towards 0. Two exceptions, whose code
    values cost accuracy here (``docs/stdp.md``): ``t_ref_e`` = 5 ms held at reset and
    ``t_lock_e`` = 50 ms before an excitatory neuron can fire again, as the Brian 2 ports run it
    (their code's string reset gets no membrane clamp in Brian 1: spikes are only dropped for
    4.75 ms, i.e. ``t_ref_e=0, t_lock_e=4.5``; its ``timer`` grows 100 ms per ms, so its own 5 ms
    condition adds nothing), and
    ``g_decay`` = ``"exact"`` (Brian 1 takes forward Euler steps, ``g *= 1 - dt / tau``: 21% less
    excitation per input spike, 12% less inhibition).

    Units: times (``dt``, ``t_*``, ``tau_*``) in ms, voltages (``v_*``, ``e_*``, ``theta_*``) in
    mV, ``rate_scale`` in Hz per unit of intensity. Choices: ``synapse`` ``"conductance"`` or
    ``"current"`` (:meth:`current` gives BindsNET's settings), ``g_decay`` ``"exact"`` or
    ``"euler"``, ``batch_weights`` ``"shared"`` or ``"private"``, ``rule`` ``"triplet"`` (the
    code's: at a post spike ``w += nu_post * x_pre * post2``, ``x_pre`` a nearest-spike trace) or
    ``"power_law"`` (the paper's: ``w += nu_post * (x_pre - x_tar) * (w_max - w) ** mu``,
    ``x_pre`` an all-to-all trace, no slow post trace: needs ``tau_post2=None``); in both, a pre
    spike depresses by ``nu_pre * post1``.
    """

    synapse: str = "conductance"
    dt: float = 0.5
    t_present: float = 350.0
    t_rest: float = 150.0  # not simulated: the state is reset; it only enters theta's decay
    rate_scale: float = 255.0 / 8.0  # Hz for a white pixel per unit of intensity
    intensity: float = 2.0  # first intensity; +1 per retry while the layer fires < min_spikes
    min_spikes: int = 5
    max_retries: int = 20
    # excitatory layer
    v_rest_e: float = -65.0
    v_reset_e: float = -65.0
    v_th_e: float = -72.0
    theta_init: float = 20.0
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    tau_e: float = 100.0
    t_ref_e: float = 5.0
    t_lock_e: float = 50.0
    one_spike: bool = False  # per sample and step, only the neuron furthest past threshold fires
    e_exc_e: float = 0.0
    e_inh_e: float = -100.0
    # inhibitory layer
    v_rest_i: float = -60.0
    v_reset_i: float = -45.0
    v_th_i: float = -40.0
    tau_i: float = 10.0
    t_ref_i: float = 2.0
    t_lock_i: float = 2.0
    e_exc_i: float = 0.0
    e_inh_i: float = -85.0
    # synapses: conductance time constants, fixed weights e -> i (one-to-one), i -> e (others)
    tau_ge: float = 1.0
    tau_gi: float = 2.0
    g_decay: str = "exact"  # g *= exp(-dt / tau); "euler": g *= 1 - dt / tau (needs dt <= tau)
    w_ei: float = 10.4
    w_ie: float = 17.0
    # plastic input -> e weights
    w_init: float = 0.3  # w = w_init * (U(0, 1) + 0.01)
    w_max: float = 1.0
    norm: float = 78.0  # each neuron's input weights sum to this before each presentation
    batch_weights: str = "shared"  # or "private": see DiehlCook
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    tau_pre: float = 20.0
    tau_post: float = 20.0
    tau_post2: float | None = 40.0
    rule: str = "triplet"
    x_tar: float = 0.4  # power_law: the pre trace at a post spike that leaves w unchanged
    mu: float = 0.2  # power_law: the exponent of the weight dependence

    def __post_init__(self) -> None:
        check.choice(self.synapse, SYNAPSES, "synapse")
        check.choice(self.g_decay, G_DECAYS, "g_decay")
        check.choice(self.batch_weights, BATCH_WEIGHTS, "batch_weights")
        check.choice(self.rule, RULES, "rule")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NON_NEGATIVE:
                check.non_negative(value, f.name)
            if (f.name.startswith("tau") or f.name in _POSITIVE) and value is not None:
                check.positive(value, f.name)
        if self.rule == "power_law" and self.tau_post2 is not None:
            raise ValueError(
                f"rule='power_law' has no slow post trace: set tau_post2=None, "
                f"got tau_post2={self.tau_post2!r}"
            )
        if self.g_decay == "euler" and self.dt > min(self.tau_ge, self.tau_gi):
            raise ValueError(f"g_decay='euler' needs dt <= tau_ge and tau_gi, got dt={self.dt!r}")
        if self.t_present < self.dt:
            raise ValueError(f"t_present must be >= dt, got {self.t_present!r} < {self.dt!r}")

    @classmethod
    def current(cls, **overrides: Any) -> DiehlCookParams:
        """BindsNET's ``DiehlAndCook2015`` as its MNIST example runs it: voltage jumps instead of
        conductances, dt 1 ms, 250 ms at up to 128 Hz, no retries, inhibition 120 mV, one spike
        per step (BindsNET picks it at random; here the neuron furthest past threshold; the
        others reset silently but raise ``theta``), pair STDP without the slow post trace."""
        base = cls(
            synapse="current",
            dt=1.0,
            t_present=250.0,
            t_rest=0.0,
            rate_scale=64.0,
            min_spikes=0,
            v_reset_e=-60.0,
            v_th_e=-52.0,
            theta_init=0.0,
            t_lock_e=5.0,
            w_ei=22.5,
            w_ie=120.0,
            one_spike=True,
            norm=78.4,
            tau_post2=None,
        )
        return replace(base, **overrides)

    @property
    def steps(self) -> int:
        return round(self.t_present / self.dt)

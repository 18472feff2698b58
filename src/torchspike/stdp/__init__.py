"""Spike-timing-dependent plasticity: traces, pair-based rules and the Diehl & Cook network."""

from .assign import Assignment, assign, vote_all, vote_proportion
from .config import STDPConfig
from .diehl_cook import DiehlCook
from .events import Events, poisson_events, spike_events
from .params import DiehlCookParams
from .rules import STDP, STDPState, correlate
from .state import load_state, save_state
from .traces import decay, trace_step
from .train import FitResult, evaluate, fit

__all__ = [
    "STDP",
    "Assignment",
    "DiehlCook",
    "DiehlCookParams",
    "Events",
    "FitResult",
    "STDPConfig",
    "STDPState",
    "assign",
    "correlate",
    "decay",
    "evaluate",
    "fit",
    "load_state",
    "poisson_events",
    "save_state",
    "spike_events",
    "trace_step",
    "vote_all",
    "vote_proportion",
]

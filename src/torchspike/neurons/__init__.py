"""Spiking neurons: each an ``nn.Module`` with ``forward(xs, state=None) -> (outputs, state)``."""

from .alif import ALIF, ALIFState
from .base import Neuron, step_by_step
from .cuba import CubaLIF, CubaLIFState, cuba_coefficients, cuba_lif_step
from .feedback import Feedback
from .lif import IF, LI, LIF, LIFState, lif_step
from .recurrent import RecurrentLIF, RecurrentLIFState

__all__ = [
    "ALIF",
    "ALIFState",
    "CubaLIF",
    "CubaLIFState",
    "Feedback",
    "IF",
    "LI",
    "LIF",
    "LIFState",
    "Neuron",
    "RecurrentLIF",
    "RecurrentLIFState",
    "cuba_coefficients",
    "cuba_lif_step",
    "lif_step",
    "step_by_step",
]

"""torchspike: spiking neural networks in PyTorch.

Surrogate-gradient BPTT with fused sequence kernels, exact gradients (EventProp) and STDP.
"""

from . import decode, encode, loss, surrogate
from ._version import __version__
from .net import SpikingNet
from .neurons import (
    ALIF,
    IF,
    LI,
    LIF,
    ALIFState,
    CubaLIF,
    CubaLIFState,
    LIFState,
    Neuron,
    RecurrentLIF,
    RecurrentLIFState,
)
from .steps import run_steps


def load_run(path):
    """The trained model (eval mode, CPU) and the configuration of the run directory ``path``:
    ``model, config = torchspike.load_run("runs/tutorial5")``."""
    from .app.load import load_run as load

    return load(path)


__all__ = [
    "ALIF",
    "ALIFState",
    "CubaLIF",
    "CubaLIFState",
    "IF",
    "LI",
    "LIF",
    "LIFState",
    "Neuron",
    "RecurrentLIF",
    "RecurrentLIFState",
    "SpikingNet",
    "__version__",
    "decode",
    "load_run",
    "encode",
    "loss",
    "run_steps",
    "surrogate",
]

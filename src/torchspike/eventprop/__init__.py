"""Exact gradients for current-based LIF networks with EventProp (Wunderlich & Pehle 2021).

The forward pass simulates CubaLIF layers exactly over steps of ``dt`` with spike times
interpolated inside a step; the backward pass integrates the adjoint of that discrete model in
reverse time, jumping at the recorded spikes. Memory grows with the number of spikes, not with T.
"""

from .kernel import Kernel
from .layers import LIFLayer, LIReadout
from .li import li_readout
from .lif import lif_layer
from .losses import (
    LOSSES,
    SilentOutputError,
    check_outputs_fired,
    first_spike_loss,
    predict,
    silent_samples,
    voltage_ce,
)
from .spikes import Spikes, first_spike_times, from_events, from_times
from .train import Config, build_model, evaluate, fit

__all__ = [
    "LOSSES",
    "Config",
    "Kernel",
    "LIFLayer",
    "LIReadout",
    "SilentOutputError",
    "Spikes",
    "build_model",
    "check_outputs_fired",
    "evaluate",
    "first_spike_loss",
    "first_spike_times",
    "fit",
    "from_events",
    "from_times",
    "li_readout",
    "lif_layer",
    "predict",
    "silent_samples",
    "voltage_ce",
]

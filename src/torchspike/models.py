"""Ready-made networks for the CLI: fully connected and convolutional SNNs."""

from __future__ import annotations

import math

from torch import nn

from .net import SpikingNet
from .neurons import IF, LI, LIF, Neuron
from .surrogate import Surrogate


def neuron(kind: str, beta: float, spike_fn: Surrogate, *, output: str = "spikes") -> Neuron:
    """A hidden or output neuron by name: ``lif``, ``if`` (rectified IF) or ``li`` (read-out)."""
    if kind == "lif":
        return LIF(beta, spike_fn=spike_fn, output=output)
    if kind == "if":
        if output == "membrane":
            raise ValueError("neuron 'if' has no membrane read-out; use --readout li or lif")
        return IF(rectify=True, spike_fn=spike_fn)
    if kind == "li":
        return LI(beta)
    raise ValueError(f"neuron must be one of ('lif', 'if', 'li'), got {kind!r}")


def fully_connected(
    in_shape: tuple[int, ...],
    hidden: list[int],
    classes: int,
    *,
    hidden_neuron: str,
    readout: str,
    beta: float,
    spike_fn: Surrogate,
    readout_membrane: bool,
) -> SpikingNet:
    """``Flatten -> [Linear -> neuron] * len(hidden) -> Linear -> read-out``."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(in_shape)
    for size in hidden:
        layers += [nn.Linear(width, size), neuron(hidden_neuron, beta, spike_fn)]
        width = size
    output = "membrane" if readout_membrane else "spikes"
    layers += [nn.Linear(width, classes), neuron(readout, beta, spike_fn, output=output)]
    return SpikingNet(layers)


def convolutional(
    in_shape: tuple[int, ...],
    channels: list[int],
    hidden: list[int],
    classes: int,
    *,
    beta: float,
    spike_fn: Surrogate,
    readout: str,
    readout_membrane: bool,
    dropout: float = 0.0,
) -> SpikingNet:
    """``[Conv3x3 -> BatchNorm -> LIF -> MaxPool2] * len(channels) -> FC layers -> read-out``."""
    if len(in_shape) != 3:
        raise ValueError(f"--arch conv needs image input [C, H, W], got shape {in_shape}")
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for out in channels:
        layers += [
            nn.Conv2d(c, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            LIF(beta, spike_fn=spike_fn),
            nn.MaxPool2d(2),
        ]
        c, h, w = out, h // 2, w // 2
    layers.append(nn.Flatten())
    width = c * h * w
    for size in hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(width, size), LIF(beta, spike_fn=spike_fn)]
        width = size
    output = "membrane" if readout_membrane else "spikes"
    layers += [nn.Linear(width, classes), neuron(readout, beta, spike_fn, output=output)]
    return SpikingNet(layers)

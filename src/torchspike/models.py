"""Ready-made networks for the CLI: fully connected, convolutional and SEW-ResNet SNNs."""

from __future__ import annotations

import math

from torch import Tensor, nn

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


CONNECTS = ("add", "and", "iand")


class SEWBlock(nn.Module):
    """Spike-element-wise residual block (Fang et al. 2021): ``g(SN(BN(conv(SN(BN(conv(x)))))), x)``
    with ``g`` = ``add`` (``z + x``), ``and`` (``z * x``) or ``iand`` (``(1 - z) * x``).

    ``forward`` takes one time step ``[B, C, H, W]``; ``SpikingNet`` runs it over time (folded:
    the convolutions once on all steps, the LIFs as fused sequences)."""

    def __init__(
        self,
        channels: int,
        *,
        beta: float,
        spike_fn: Surrogate | str = "atan",
        connect: str = "add",
        reset: str = "subtract",
    ):
        super().__init__()
        if connect not in CONNECTS:
            raise ValueError(f"connect must be one of {CONNECTS}, got {connect!r}")
        self.connect = connect
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.lif1 = LIF(beta, spike_fn=spike_fn, reset=reset)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.lif2 = LIF(beta, spike_fn=spike_fn, reset=reset)

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"

    def forward(self, x: Tensor) -> Tensor:
        z, _ = self.lif1(self.bn1(self.conv1(x)))
        z, _ = self.lif2(self.bn2(self.conv2(z)))
        if self.connect == "add":
            return z + x
        if self.connect == "and":
            return z * x
        return (1 - z) * x


def sew_resnet(
    in_shape: tuple[int, ...],
    channels: list[int],
    blocks: int,
    classes: int,
    *,
    beta: float,
    spike_fn: Surrogate | str = "atan",
    readout: str = "lif",
    readout_membrane: bool = False,
    connect: str = "add",
) -> SpikingNet:
    """A small SEW-ResNet: ``Conv3x3 -> BN -> LIF``, then per entry of ``channels`` a
    downsampling ``Conv3x3 (stride 2 after the first) -> BN -> LIF`` and ``blocks``
    :class:`SEWBlock` s, then ``AdaptiveAvgPool2d(1) -> Flatten -> Linear -> read-out``."""
    if len(in_shape) != 3:
        raise ValueError(f"--arch sew_resnet needs image input [C, H, W], got shape {in_shape}")
    if not channels or isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
        raise ValueError(f"need channels and blocks >= 0, got {channels!r} and {blocks!r}")
    c = in_shape[0]
    layers: list[nn.Module] = []
    for i, out in enumerate(channels):
        layers += [
            nn.Conv2d(c, out, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
            nn.BatchNorm2d(out),
            LIF(beta, spike_fn=spike_fn),
        ]
        layers += [
            SEWBlock(out, beta=beta, spike_fn=spike_fn, connect=connect) for _ in range(blocks)
        ]
        c = out
    output = "membrane" if readout_membrane else "spikes"
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, classes),
        neuron(readout, beta, spike_fn, output=output),
    ]
    return SpikingNet(layers)

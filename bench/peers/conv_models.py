"""The convolutional benchmark networks (configs n and v of `bench/peers.py`) in every library.

  n  event input, T=50, B=32, [2, 34, 34] Bernoulli(0.02) input spikes:
     Conv(2,12,5)-MaxPool2-LIF-Conv(12,32,5)-MaxPool2-LIF-Flatten-Linear(800,10)-LIF
  v  static image, T=4, B=32, [3, 32, 32] uniform [0, 1):
     Conv(3,64,3,p1)-BN-LIF-Conv(64,128,3,p1)-BN-LIF-MaxPool2-Conv(128,128,3,p1)-BN-LIF-MaxPool2-
     Flatten-Linear(8192,10)-LIF
One training step = forward over T, cross-entropy on the output spike counts (sum over T),
backward, Adam(lr=5e-4); configs n-infer / v-infer: the forward under no_grad; n-b1 / v-b1:
inference of one sample (batch-1 latency). Every LIF: beta 0.95, threshold 1, subtract reset,
ATan surrogate (alpha 2).
How each library runs it:
  torchspike    `SpikingNet` of the layers and `LIF(0.95)`: each stateless layer once on all
                T*B rows (a static image through the first Conv and BN once), fused LIF kernel
  snntorch      `snn.Leaky(beta=0.95)`, tutorial-style loop over time, every layer per step
  spikingjelly  `layer.*` with step_mode="m" (folds T*B itself) and `LIFNode(tau=20.,
                decay_input=False, v_reset=None, detach_reset=True, ATan())`, torch backend; a
                static image repeated to [T, B, ...] as in SpikingJelly's examples
  floor         the same stateless layers on all T*B rows at once, forward and backward, no
                neuron, no loss, no optimiser (forward only for inference); floor_cl the same
                with the input in channels-last memory (what torchspike's folded Conv2d uses)
BatchNorm in training: torchspike and SpikingJelly normalise over all T*B rows of a step
(time folded into the batch), snnTorch over the B rows of each step (and updates its running
statistics T times per batch): they differ by design, so the equivalence check runs in eval mode.
Norse is left out of n and v (LIFBox charges 0.05 x, so every weight would need x20; its LIF
would not be compared spike for spike anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BETA, LR = 0.95, 5e-4
PEERS = ("snntorch", "spikingjelly")
LIF = "lif"  # marks a neuron in a layer list


@dataclass(frozen=True)
class ConvConfig:
    in_shape: tuple[int, int, int]
    steps: int
    batch: int
    static: bool
    density: float  # input spike probability (event input)
    train: bool
    arch: str


CONV_CONFIGS = {
    "n": ConvConfig((2, 34, 34), 50, 32, static=False, density=0.02, train=True, arch="n"),
    "v": ConvConfig((3, 32, 32), 4, 32, static=True, density=0.0, train=True, arch="v"),
    "n-infer": ConvConfig((2, 34, 34), 50, 32, static=False, density=0.02, train=False, arch="n"),
    "v-infer": ConvConfig((3, 32, 32), 4, 32, static=True, density=0.0, train=False, arch="v"),
    "n-b1": ConvConfig((2, 34, 34), 50, 1, static=False, density=0.02, train=False, arch="n"),
    "v-b1": ConvConfig((3, 32, 32), 4, 1, static=True, density=0.0, train=False, arch="v"),
}


def layers(arch: str, module: Callable[[str], type] = lambda name: getattr(nn, name)) -> list:
    """The layer list of ``arch``, neurons marked ``LIF``; ``module(name)`` gives each class."""
    conv, pool, bn = module("Conv2d"), module("MaxPool2d"), module("BatchNorm2d")
    flat, linear = module("Flatten"), module("Linear")
    if arch == "n":
        return [conv(2, 12, 5), pool(2), LIF, conv(12, 32, 5), pool(2), LIF, flat(),
                linear(800, 10), LIF]  # fmt: skip
    if arch == "v":
        return [conv(3, 64, 3, padding=1), bn(64), LIF, conv(64, 128, 3, padding=1), bn(128),
                LIF, pool(2), conv(128, 128, 3, padding=1), bn(128), LIF, pool(2), flat(),
                linear(8192, 10), LIF]  # fmt: skip
    raise ValueError(f"no conv architecture {arch!r}")


def make_batch(cfg: ConvConfig, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A static image [B, C, H, W] or input spikes [T, B, C, H, W], and targets [B]."""
    gen = torch.Generator().manual_seed(seed)
    if cfg.static:
        x = torch.rand(cfg.batch, *cfg.in_shape, generator=gen)
    else:
        x = (torch.rand(cfg.steps, cfg.batch, *cfg.in_shape, generator=gen) < cfg.density).float()
    return x, torch.randint(10, (cfg.batch,), generator=gen)


def weighted(net: nn.Module) -> list[nn.Module]:
    """The modules with parameters (Conv, BatchNorm, Linear) in network order."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
    return [m for m in net.modules() if isinstance(m, kinds)]


def neurons_of(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


class TorchspikeConv(nn.Module):
    def __init__(self, cfg: ConvConfig) -> None:
        import torchspike as ts

        super().__init__()
        self.cfg, self._direct = cfg, ts.encode.direct
        self.net = ts.SpikingNet([ts.LIF(BETA) if m is LIF else m for m in layers(cfg.arch)])
        self.neurons = neurons_of(self.net, ts.LIF)

    def forward(self, x: Tensor) -> Tensor:
        xs = self._direct(x, self.cfg.steps) if self.cfg.static else x
        return self.net(xs)[0]

    def watch(self, rec: list[list[Tensor]]) -> list:
        return [n.register_forward_hook(_hook(rec, i, 0)) for i, n in enumerate(self.neurons)]


class SnnTorchConv(nn.Module):
    def __init__(self, cfg: ConvConfig) -> None:
        import snntorch as snn

        super().__init__()
        self.cfg = cfg
        seq = [snn.Leaky(beta=BETA) if m is LIF else m for m in layers(cfg.arch)]
        self.seq = nn.ModuleList(seq)
        self.neurons = neurons_of(self.seq, snn.Leaky)

    def forward(self, x: Tensor) -> Tensor:
        mems = {id(n): n.init_leaky() for n in self.neurons}
        outs = []
        for x_t in [x] * self.cfg.steps if self.cfg.static else x.unbind(0):
            h = x_t
            for m in self.seq:
                if id(m) in mems:
                    h, mems[id(m)] = m(h, mems[id(m)])
                else:
                    h = m(h)
            outs.append(h)
        return torch.stack(outs)

    def watch(self, rec: list[list[Tensor]]) -> list:
        return [n.register_forward_hook(_hook(rec, i, 0)) for i, n in enumerate(self.neurons)]


class SpikingJellyConv(nn.Module):
    def __init__(self, cfg: ConvConfig) -> None:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        super().__init__()
        self.cfg, self._reset = cfg, functional.reset_net

        def lif() -> nn.Module:
            return neuron.LIFNode(
                tau=20.0,
                decay_input=False,
                v_reset=None,
                detach_reset=True,
                surrogate_function=surrogate.ATan(),
                step_mode="m",
            )

        def module(name: str) -> Callable:
            return lambda *a, **k: getattr(layer, name)(*a, **k, step_mode="m")

        self.seq = nn.Sequential(*[lif() if m is LIF else m for m in layers(cfg.arch, module)])
        self.neurons = neurons_of(self.seq, neuron.LIFNode)

    def forward(self, x: Tensor) -> Tensor:
        self._reset(self.seq)
        xs = x.unsqueeze(0).repeat(self.cfg.steps, *[1] * x.dim()) if self.cfg.static else x
        return self.seq(xs)

    def watch(self, rec: list[list[Tensor]]) -> list:
        return [n.register_forward_hook(_hook(rec, i, None)) for i, n in enumerate(self.neurons)]


class FloorConv(nn.Module):
    """The stateless layers on all T*B rows at once (a static image repeated T times, once)."""

    def __init__(self, cfg: ConvConfig, channels_last: bool = False) -> None:
        super().__init__()
        self.cfg, self.channels_last = cfg, channels_last
        self.seq = nn.Sequential(*[m for m in layers(cfg.arch) if m is not LIF])
        self._rows: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self._rows is None or self._rows[0] is not x:
            rows = x.repeat(self.cfg.steps, 1, 1, 1) if self.cfg.static else x.flatten(0, 1)
            if self.channels_last:
                rows = rows.contiguous(memory_format=torch.channels_last)
            self._rows = (x, rows)
        return self.seq(self._rows[1])


def _hook(rec: list[list[Tensor]], i: int, item: int | None) -> Callable:
    def hook(module: nn.Module, inputs: tuple, output) -> None:
        out = output if item is None else output[item]
        while len(rec) <= i:
            rec.append([])
        rec[i].append(out.detach().clone())

    return hook


NETS = {"torchspike": TorchspikeConv, "snntorch": SnnTorchConv, "spikingjelly": SpikingJellyConv}


def build(peer: str, cfg: ConvConfig, **options: bool) -> tuple[nn.Module, Callable, Callable]:
    """``(net, train_step, infer)`` for ``peer`` on ``cfg`` (``options``: torchspike flags,
    accepted and ignored here)."""
    if peer in ("floor", "floor_cl"):
        net = FloorConv(cfg, channels_last=peer == "floor_cl")

        def floor_step(batch: tuple[Tensor, Tensor]) -> float:
            for p in net.parameters():
                p.grad = None
            y = net(batch[0])
            y.backward(torch.ones_like(y))
            return 0.0

        @torch.no_grad()
        def floor_infer(batch: tuple[Tensor, Tensor]) -> Tensor:
            return net(batch[0])

        return net, floor_step, floor_infer
    net = NETS[peer](cfg)
    fused = {"fused": True} if peer == "torchspike" else {}
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, **fused)

    def train_step(batch: tuple[Tensor, Tensor]) -> float:
        x, y = batch
        loss = F.cross_entropy(net(x).sum(0), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    @torch.no_grad()
    def infer(batch: tuple[Tensor, Tensor]) -> Tensor:
        return net(batch[0])

    return net, train_step, infer

"""The benchmark networks built the idiomatic way in snnTorch, SpikingJelly and Norse (CPU).

Every peer gets the same two-layer network `Linear -> LIF -> Linear -> LIF`, decay 0.95 per step,
loss = sum over steps of cross-entropy on the output membrane, Adam(lr=5e-4):
  a  784-1000-10, T=25,  B=128, static image fed through fc1 at every step (snnTorch tutorial 5)
  b  700-1024-20, T=100, B=32,  Bernoulli(0.05) input spikes [T, B, 700]
  c  inference of a under torch.no_grad()
How each peer runs it:
  snntorch      tutorial-5 loop, `snn.Leaky(beta=0.95)`, init_hidden=False, `fc1(x)` every step
  spikingjelly  `LIFNode(tau=20., decay_input=False, v_reset=None, detach_reset=True, ATan)`,
                multi-step mode 'm' (torch backend: the only one on CPU), whole [T, B, ...] per
                layer; a static image is repeated to [T, B, 784] as in SpikingJelly's examples;
                the output membrane is `v_seq` (store_v_seq=True on the last layer)
  norse         `LIFBoxCell(LIFBoxParameters(tau_mem_inv=50.))`, dt 1e-3, looped over time by hand
                (LIFBox has no sequence module; the loop iterates with unbind, so no xs[t] pitfall);
                Linear weights and biases x20 at init, since Norse charges 0.05 x, not x
                (without it the hidden layer is silent: rate 2e-4 in a, 0 in b)
Two more contenders share the interface (`build` returns `(net, train_step, infer)`):
  torchspike    `torchspike_models.py` (main venv only)
  floor         the dense GEMM floor: both Linear layers on all T*B rows at once, forward and
                backward (no neuron, no loss, no optimiser); forward only for c
Every spiking net has `linears()` (fc1, fc2) with `scale` (weights are fc * scale, to copy one set
of weights into every library) and `watch(rec)`, which hooks its neurons to append the hidden
spikes, output spikes and output membrane (`readout`: before or after the reset) to `rec`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PEERS = ("snntorch", "spikingjelly", "norse")
CONTENDERS = ("torchspike", *PEERS, "floor")
BETA = 0.95  # snnTorch beta; SpikingJelly tau = 20 and Norse tau_mem_inv = 50 give the same decay
LR = 5e-4


@dataclass(frozen=True)
class Config:
    n_in: int
    n_hidden: int
    n_out: int
    steps: int
    batch: int
    static: bool
    train: bool


CONFIGS = {
    "a": Config(784, 1000, 10, steps=25, batch=128, static=True, train=True),
    "b": Config(700, 1024, 20, steps=100, batch=32, static=False, train=True),
    "c": Config(784, 1000, 10, steps=25, batch=128, static=True, train=False),
}


def make_batch(cfg: Config, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Inputs ([B, n_in] image or [T, B, n_in] spikes) and integer targets [B]."""
    gen = torch.Generator().manual_seed(seed)
    if cfg.static:
        x = torch.rand(cfg.batch, cfg.n_in, generator=gen)
    else:
        x = (torch.rand(cfg.steps, cfg.batch, cfg.n_in, generator=gen) < 0.05).float()
    return x, torch.randint(cfg.n_out, (cfg.batch,), generator=gen)


def _steps(x: Tensor, cfg: Config) -> Iterable[Tensor]:
    return [x] * cfg.steps if cfg.static else x.unbind(0)


def _membrane_loss(mems: Iterable[Tensor], y: Tensor) -> Tensor:
    return sum(F.cross_entropy(m, y) for m in mems)


def record(rec: dict[str, list[Tensor]], **tensors: Tensor) -> None:
    """Append detached copies of ``tensors`` to ``rec[name]`` (for the equivalence check)."""
    for name, t in tensors.items():
        rec.setdefault(name, []).append(t.detach().clone())


class SnnTorchNet(nn.Module):
    """snnTorch tutorial 5: Leaky neurons, membrane passed in and out, one loop over time."""

    scale = 1.0
    readout = "pre-reset"

    def __init__(self, cfg: Config) -> None:
        import snntorch as snn

        super().__init__()
        self.cfg = cfg
        self.fc1 = nn.Linear(cfg.n_in, cfg.n_hidden)
        self.lif1 = snn.Leaky(beta=BETA)
        self.fc2 = nn.Linear(cfg.n_hidden, cfg.n_out)
        self.lif2 = snn.Leaky(beta=BETA)

    def forward(self, x: Tensor) -> list[Tensor]:
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        mem2_rec = []
        for x_t in _steps(x, self.cfg):
            spk1, mem1 = self.lif1(self.fc1(x_t), mem1)
            _, mem2 = self.lif2(self.fc2(spk1), mem2)
            mem2_rec.append(mem2)
        return mem2_rec

    def linears(self) -> tuple[nn.Linear, nn.Linear]:
        return self.fc1, self.fc2

    def watch(self, rec: dict[str, list[Tensor]]) -> list:
        return [
            self.lif1.register_forward_hook(lambda m, i, o: record(rec, hidden=o[0])),
            self.lif2.register_forward_hook(lambda m, i, o: record(rec, out=o[0], v=o[1])),
        ]


class SpikingJellyNet(nn.Module):
    """SpikingJelly multi-step: each layer runs once over the whole [T, B, ...] sequence."""

    scale = 1.0
    readout = "post-reset"

    def __init__(self, cfg: Config) -> None:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        super().__init__()
        self.cfg = cfg
        self._reset_net = functional.reset_net

        def lif(store_v_seq: bool = False) -> nn.Module:
            return neuron.LIFNode(
                tau=20.0,
                decay_input=False,
                v_reset=None,
                detach_reset=True,
                surrogate_function=surrogate.ATan(),
                step_mode="m",
                store_v_seq=store_v_seq,
            )

        self.net = nn.Sequential(
            layer.Linear(cfg.n_in, cfg.n_hidden, step_mode="m"),
            lif(),
            layer.Linear(cfg.n_hidden, cfg.n_out, step_mode="m"),
            lif(store_v_seq=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        self._reset_net(self.net)
        x_seq = x.unsqueeze(0).repeat(self.cfg.steps, 1, 1) if self.cfg.static else x
        self.net(x_seq)
        return self.net[-1].v_seq

    def linears(self) -> tuple[nn.Linear, nn.Linear]:
        return self.net[0], self.net[2]

    def watch(self, rec: dict[str, list[Tensor]]) -> list:
        return [
            self.net[1].register_forward_hook(lambda m, i, o: record(rec, hidden=o)),
            self.net[3].register_forward_hook(lambda m, i, o: record(rec, out=o, v=m.v_seq)),
        ]


class NorseNet(nn.Module):
    """Norse LIFBoxCell (v += dt * tau_mem_inv * (x - v), reset to 0), state tuples looped."""

    scale = 20.0
    readout = "post-reset"

    def __init__(self, cfg: Config) -> None:
        import norse.torch as norse

        super().__init__()
        self.cfg = cfg
        p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(50.0))
        self.fc1 = nn.Linear(cfg.n_in, cfg.n_hidden)
        self.lif1 = norse.LIFBoxCell(p, dt=1e-3)
        self.fc2 = nn.Linear(cfg.n_hidden, cfg.n_out)
        self.lif2 = norse.LIFBoxCell(p, dt=1e-3)
        with torch.no_grad():  # v' = 0.95 v + 0.05 x: x20 weights give the others' activity
            for fc in (self.fc1, self.fc2):
                fc.weight.mul_(20.0)
                fc.bias.mul_(20.0)

    def forward(self, x: Tensor) -> list[Tensor]:
        s1 = s2 = None
        mems = []
        for x_t in _steps(x, self.cfg):
            z1, s1 = self.lif1(self.fc1(x_t), s1)
            _, s2 = self.lif2(self.fc2(z1), s2)
            mems.append(s2.v)
        return mems

    def linears(self) -> tuple[nn.Linear, nn.Linear]:
        return self.fc1, self.fc2

    def watch(self, rec: dict[str, list[Tensor]]) -> list:
        return [
            self.lif1.register_forward_hook(lambda m, i, o: record(rec, hidden=o[0])),
            self.lif2.register_forward_hook(lambda m, i, o: record(rec, out=o[0], v=o[1].v)),
        ]


class FloorNet(nn.Module):
    """The dense GEMM floor: fc2(fc1(x)) on all T*B rows at once, no neuron."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.fc1 = nn.Linear(cfg.n_in, cfg.n_hidden)
        self.fc2 = nn.Linear(cfg.n_hidden, cfg.n_out)
        self._rows: tuple[Tensor, Tensor] | None = None

    def rows(self, x: Tensor) -> Tensor:
        """``x`` as [T*B, n_in]; a static image is repeated T times once and cached."""
        if not self.cfg.static:
            return x.reshape(-1, self.cfg.n_in)
        if self._rows is None or self._rows[0] is not x:
            self._rows = (x, x.repeat(self.cfg.steps, 1))
        return self._rows[1]

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(self.rows(x)))


def _build_floor(cfg: Config) -> tuple[nn.Module, Callable, Callable]:
    net = FloorNet(cfg)
    grad_out = torch.ones(cfg.steps * cfg.batch, cfg.n_out)

    def train_step(batch: tuple[Tensor, Tensor]) -> float:
        for p in net.parameters():
            p.grad = None
        net(batch[0]).backward(grad_out)
        return 0.0

    @torch.no_grad()
    def infer(batch: tuple[Tensor, Tensor]) -> Tensor:
        return net(batch[0])

    return net, train_step, infer


NETS = {"snntorch": SnnTorchNet, "spikingjelly": SpikingJellyNet, "norse": NorseNet}


def build(peer: str, cfg: Config, **options: bool) -> tuple[nn.Module, Callable, Callable]:
    """`(net, train_step, infer)`: a fresh network for `peer` and closures over it and Adam
    (`options`: torchspike's `compile` and `compact_spikes`)."""
    if peer == "torchspike":
        from torchspike_models import build as build_torchspike  # needs the main venv

        return build_torchspike(cfg, **options)
    if peer == "floor":
        return _build_floor(cfg)
    net = NETS[peer](cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)

    def train_step(batch: tuple[Tensor, Tensor]) -> float:
        x, y = batch
        loss = _membrane_loss(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    @torch.no_grad()
    def infer(batch: tuple[Tensor, Tensor]) -> Tensor | list[Tensor]:
        return net(batch[0])

    return net, train_step, infer

"""The benchmark networks of `peer_models.py` in torchspike (main venv only).

    SpikingNet(Linear, LIF(0.95), Linear, LIF(0.95, output="membrane"))

a static image enters as `encode.direct(x, T)` (a stride-0 view: fc1 runs once on [B, 784]);
spikes in b enter as [T, B, 700] (fc1 then sums weight columns, `torchspike.kernels.sparse`). The
loss is `loss.ce_membrane_sum` (= the peers' sum over steps of cross-entropy on the output
membrane) and the optimiser `Adam(fused=True)`, as in `torchspike train`.
"""

from collections.abc import Callable

import torch
from peer_models import BETA, LR, Config, record
from torch import Tensor, nn

import torchspike as ts


class TorchspikeNet(nn.Module):
    """The two-layer LIF network of every config, returning the output membrane [T, B, n_out]."""

    scale = 1.0
    readout = "pre-reset"

    def __init__(self, cfg: Config, compile: bool = False, compact_spikes: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = ts.SpikingNet(
            nn.Linear(cfg.n_in, cfg.n_hidden),
            ts.LIF(BETA, compile=compile),
            nn.Linear(cfg.n_hidden, cfg.n_out),
            ts.LIF(BETA, output="membrane", compile=compile),
            compact_spikes=compact_spikes,
        )

    def forward(self, x: Tensor) -> Tensor:
        xs = ts.encode.direct(x, self.cfg.steps) if self.cfg.static else x
        return self.net(xs)[0]

    def linears(self) -> tuple[nn.Linear, nn.Linear]:
        return self.net.layers[0], self.net.layers[2]

    def watch(self, rec: dict[str, list[Tensor]]) -> list:
        def out_hook(m: nn.Module, i: tuple, o: tuple) -> None:
            record(rec, v=o[0], out=(o[0] > m.v_th).to(o[0].dtype))

        return [
            self.net.layers[1].register_forward_hook(lambda m, i, o: record(rec, hidden=o[0])),
            self.net.layers[3].register_forward_hook(out_hook),
        ]


def build(
    cfg: Config, compile: bool = False, compact_spikes: bool = False
) -> tuple[nn.Module, Callable, Callable]:
    """`(net, train_step, infer)` for torchspike, like `peer_models.build`."""
    net = TorchspikeNet(cfg, compile, compact_spikes)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, fused=True)

    def train_step(batch: tuple[Tensor, Tensor]) -> float:
        x, y = batch
        loss = ts.loss.ce_membrane_sum(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    @torch.no_grad()
    def infer(batch: tuple[Tensor, Tensor]) -> Tensor:
        return net(batch[0])

    return net, train_step, infer

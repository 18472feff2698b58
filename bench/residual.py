"""A residual conv SNN block, torchspike against SpikingJelly's SEW-ResNet block, same maths.

    flock /tmp/torchspike-heavy.lock .venv-peers/bin/python bench/residual.py

The block is SEW-ResNet's BasicBlock with the ADD connection,
``x + LIF(BN(conv(LIF(BN(conv(x))))))`` with 3x3 convolutions without bias, on input spikes
``[T, B, C, H, W]``. torchspike runs
``SpikingNet(models.SEWBlock(...))``, a module with its own ``forward`` (the folded path: the
convolutions once on all steps, the LIFs as fused sequences). SpikingJelly runs the same block
built as its ``model.sew_resnet.BasicBlock`` builds it (``layer.Conv2d``, ``layer.BatchNorm2d``,
``neuron.LIFNode``, multi-step mode; that module imports torchvision, so it is written out here).
The neurons are made the same: SpikingJelly's ``LIFNode(tau=1/(1-beta), decay_input=False,
v_reset=0, detach_reset=True, ATan())`` is torchspike's ``LIF(beta, reset="zero")`` (hard reset
to 0, detached; docs in PEERS.md), apart from ``>=`` against ``>`` at the threshold.

Both run in one process (the peer venv, with torchspike's ``src`` on the path), taking turns
(torchspike, SpikingJelly, then SpikingJelly, torchspike, ...) so drifts in machine speed hit
both. A check first copies one set of weights into both and compares outputs and gradients.
Reported: median [min, max] ms per training step (forward, loss, backward) and per inference
step (forward without gradients). Without SpikingJelly, torchspike alone is timed and the
report says so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import torchspike as ts  # noqa: E402
from torchspike.models import SEWBlock  # noqa: E402


def torchspike_block(channels: int, beta: float) -> nn.Module:
    return ts.SpikingNet(SEWBlock(channels, beta=beta, reset="zero"))


def spikingjelly_block(channels: int, beta: float) -> nn.Module | None:
    try:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
    except ImportError:
        return None

    class BasicBlock(nn.Module):  # model.sew_resnet.BasicBlock, stride 1, no downsample, ADD
        def __init__(self):
            super().__init__()
            lif = dict(tau=1 / (1 - beta), decay_input=False, v_reset=0.0, detach_reset=True)
            self.conv1 = layer.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = layer.BatchNorm2d(channels)
            self.sn1 = neuron.LIFNode(surrogate_function=surrogate.ATan(), **lif)
            self.conv2 = layer.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = layer.BatchNorm2d(channels)
            self.sn2 = neuron.LIFNode(surrogate_function=surrogate.ATan(), **lif)

        def forward(self, x):
            out = self.sn1(self.bn1(self.conv1(x)))
            out = self.sn2(self.bn2(self.conv2(out)))
            return x + out

    class Run(nn.Module):  # SpikingJelly's usage: multi-step mode, reset_net after each run
        def __init__(self):
            super().__init__()
            self.block = BasicBlock()
            functional.set_step_mode(self.block, "m")

        def forward(self, xs):
            try:
                return self.block(xs)
            finally:
                functional.reset_net(self.block)

    return Run()


def copy_weights(ts_net: nn.Module, sj_net: nn.Module) -> None:
    block = ts_net.layers[0]
    with torch.no_grad():
        for ours, theirs in ((block.conv1, sj_net.block.conv1), (block.conv2, sj_net.block.conv2)):
            theirs.weight.copy_(ours.weight)
        for ours, theirs in ((block.bn1, sj_net.block.bn1), (block.bn2, sj_net.block.bn2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)


def run(net: nn.Module, xs: torch.Tensor, readout: torch.Tensor, train: bool):
    if not train:
        with torch.no_grad():
            ys = net(xs)
            return ys[0] if isinstance(ys, tuple) else ys
    net.zero_grad(set_to_none=True)
    ys = net(xs)
    ys = ys[0] if isinstance(ys, tuple) else ys
    (ys * readout).sum().backward()
    return ys


def check(ts_net, sj_net, xs, readout) -> str:
    copy_weights(ts_net, sj_net)
    a, b = run(ts_net, xs, readout, True), run(sj_net, xs, readout, True)
    grads = [
        (p.grad, q.grad) for p, q in zip(ts_net.parameters(), sj_net.parameters(), strict=True)
    ]
    spikes = (a != b).float().mean().item()
    rel = max(((g - h).abs().max() / h.abs().max().clamp_min(1e-12)).item() for g, h in grads)
    return (
        f"outputs differ at {spikes:.2e} of entries; largest relative gradient difference {rel:.1e}"
    )


def timed(net, xs, readout, train: bool, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        run(net, xs, readout, train)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run(net, xs, readout, train)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="time steps T")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--size", type=int, default=16, help="height = width")
    parser.add_argument("--beta", type=float, default=0.9)
    parser.add_argument("--rate", type=float, default=0.3, help="input spike probability")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--per-turn", type=int, default=2, help="timed steps per turn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    shape = (args.steps, args.batch, args.channels, args.size, args.size)
    xs = (torch.rand(shape) < args.rate).float()
    readout = torch.randn(shape[2:])
    nets = {"torchspike": torchspike_block(args.channels, args.beta)}
    sj = spikingjelly_block(args.channels, args.beta)
    print(
        f"block: SEW ADD, C={args.channels}, {args.size}x{args.size}, T={args.steps}, "
        f"B={args.batch}, {args.threads} thread(s), torch {torch.__version__}"
    )
    print("torchspike path:", nets["torchspike"].explain().split(None, 2)[2])
    if sj is None:
        print("SpikingJelly: not importable here (run with .venv-peers/bin/python): not measured")
    else:
        nets["spikingjelly"] = sj
        print("check:", check(nets["torchspike"], sj, xs, readout))
    for train in (True, False):
        times: dict[str, list[float]] = {name: [] for name in nets}
        order = list(nets)
        for _ in range(args.repeats):
            for name in order:
                times[name] += timed(nets[name], xs, readout, train, 1, args.per_turn)
            order.reverse()
        what = "train step (forward, loss, backward)" if train else "inference step"
        print(f"\n{what}, ms: median [min, max] over {args.repeats * args.per_turn} steps")
        for name, ms in times.items():
            print(f"  {name:<13} {statistics.median(ms):8.2f}  [{min(ms):.2f}, {max(ms):.2f}]")
        if len(times) == 2:
            ratio = statistics.median(times["spikingjelly"]) / statistics.median(
                times["torchspike"]
            )
            print(f"  torchspike is {ratio:.2f}x as fast as SpikingJelly")


if __name__ == "__main__":
    main()

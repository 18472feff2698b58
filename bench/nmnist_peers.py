"""N-MNIST conv SNN (recipe nmnist-conv): time per training epoch, torchspike vs snnTorch.

    .venv/bin/python bench/nmnist_peers.py [--threads 1] [--repeats 3]

The network is the recipe's, built by ``BPTT().build`` (``models.convolutional``):
[Conv3x3 (no bias) -> BatchNorm2d -> LIF(0.95) -> MaxPool2] x (16, 32 channels) -> Flatten ->
Dropout(0.2) -> Linear(2048, 128) -> LIF -> Linear(128, 10) -> LIF (membrane read-out), ATan
surrogate, loss = sum over the 8 steps of cross-entropy on the output membrane, Adam lr 2e-3.
snnTorch gets the same layers with ``snn.Leaky(beta=0.95, spike_grad=surrogate.atan())``, membrane
passed in and out (tutorial 5's loop, every layer run once per time step). Its Leaky with the
default subtract reset is torchspike's ``LIF(reset="subtract")`` exactly (reset one step late,
strict threshold, detached reset: bench/peers/SEMANTICS.md), and its ``mem`` is the pre-reset
membrane, as torchspike's ``output="membrane"``.

1. Frames: the 1,000 training recordings of /work/shared/data/n-mnist-small, ``to_frames(bins=8,
   duration=300_000)``, made once into [8, 1000, 2, 34, 34] float32 (``--frames``, in /tmp);
   not timed.
2. Equivalence (peer venv, torchspike imported from src): torchspike's initial weights copied
   into the snnTorch network, both in eval mode (no dropout, BatchNorm on its running stats), the
   epoch's first batch: max |difference| of the output membrane, spike counts per layer, loss
   and gradients; then again after 10 batches of torchspike training (weights and running stats
   copied).
   In training mode the two differ by design: torchspike folds time into the batch, so its
   BatchNorm takes statistics over T*B frames; snnTorch's per-step loop takes them over B, per
   step (and updates the running stats T times per batch).
3. Timing: each epoch runs in a fresh child process (torchspike in this venv, snnTorch in the
   peer venv), libraries interleaved torchspike, snnTorch, torchspike, ... ``--repeats`` times,
   under ``flock /tmp/torchspike-heavy.lock``. A child builds the network (seed 0; snnTorch
   gets torchspike's initial weights), warms up on a deep copy (2 batches, discarded), then
   trains one epoch: 32 batches (31 of 32 and one of 8, shuffled by a seeded generator, as the
   training loop does), each timed from forward to ``optimizer.step()``.
4. Writes bench/RESULTS_nmnist_peers.md: command, machine, threads, load, per-batch medians,
   epoch times, snnTorch / torchspike, and the equivalence check.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import cpu_jiffies, loadavg, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/n-mnist-small")
FRAMES = Path("/tmp/torchspike_nmnist_frames_8x300ms.pt")
LOCK = "/tmp/torchspike-heavy.lock"
RESULTS = ROOT / "bench" / "RESULTS_nmnist_peers.md"
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
LIBRARIES = ("torchspike", "snntorch")
STEPS, DURATION, BATCH, LR, BETA = 8, 300_000, 32, 2e-3, 0.95
WARMUP = 2
CHECK_TRAIN = 10
CHECK_HEADER = (
    "| weights | max abs membrane diff | max abs membrane | loss torchspike / snnTorch "
    "| max rel grad diff | hidden spike rates |\n|---|---|---|---|---|---|"
)


# ---------------------------------------------------------------------------------------------
# The two networks
# ---------------------------------------------------------------------------------------------


def torchspike_net(seed: int) -> nn.Module:
    """The recipe's network, built as ``torchspike train --recipe nmnist-conv`` builds it."""
    from torchspike.app import config, recipes
    from torchspike.app.methods.bptt import BPTT

    torch.manual_seed(seed)
    cfg = config.from_dict(recipes.get("nmnist-conv").settings, "recipe nmnist-conv")
    return BPTT().build(cfg, (2, 34, 34), 10)


class SnnTorchConv(nn.Module):
    """The same layers in snnTorch: Leaky neurons, membranes passed in and out, a loop over time."""

    def __init__(self) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        spike_grad = surrogate.atan()
        self.conv1 = nn.Conv2d(2, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.lif1 = snn.Leaky(beta=BETA, spike_grad=spike_grad)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.lif2 = snn.Leaky(beta=BETA, spike_grad=spike_grad)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.2)
        self.fc1 = nn.Linear(32 * 8 * 8, 128)
        self.lif3 = snn.Leaky(beta=BETA, spike_grad=spike_grad)
        self.fc2 = nn.Linear(128, 10)
        self.lif4 = snn.Leaky(beta=BETA, spike_grad=spike_grad)

    def forward(self, xs: Tensor) -> Tensor:
        """``xs`` [T, B, 2, 34, 34] -> output membrane [T, B, 10]."""
        mem1, mem2, mem3, mem4 = (lif.init_leaky() for lif in self.neurons())
        mems = []
        for x in xs.unbind(0):
            spk1, mem1 = self.lif1(self.bn1(self.conv1(x)), mem1)
            spk2, mem2 = self.lif2(self.bn2(self.conv2(self.pool(spk1))), mem2)
            spk3, mem3 = self.lif3(self.fc1(self.drop(self.pool(spk2).flatten(1))), mem3)
            _, mem4 = self.lif4(self.fc2(spk3), mem4)
            mems.append(mem4)
        return torch.stack(mems)

    def neurons(self) -> tuple[nn.Module, ...]:
        return self.lif1, self.lif2, self.lif3, self.lif4


def weighted(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d | nn.Linear)]


def snntorch_net(seed: int) -> SnnTorchConv:
    """The snnTorch network holding torchspike's initial weights for ``seed``."""
    net = SnnTorchConv()
    pairs = list(zip(weighted(torchspike_net(seed)), weighted(net), strict=True))
    for src, dst in pairs:
        assert type(src) is type(dst), (src, dst)
        dst.load_state_dict(src.state_dict())
    return net


def membrane(lib: str, net: nn.Module, xs: Tensor) -> Tensor:
    return net(xs)[0] if lib == "torchspike" else net(xs)


def membrane_loss(v: Tensor, y: Tensor) -> Tensor:
    """``sum_t CE(v[t], y)`` (torchspike.loss.ce_membrane_sum; snnTorch tutorial 5's loss)."""
    return sum(F.cross_entropy(v_t, y) for v_t in v.unbind(0))


def build(lib: str, seed: int) -> nn.Module:
    return torchspike_net(seed) if lib == "torchspike" else snntorch_net(seed)


def loss_fn(lib: str):
    if lib == "torchspike":
        from torchspike.loss import ce_membrane_sum

        return ce_membrane_sum
    return membrane_loss


# ---------------------------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------------------------


def load_frames(path: Path) -> tuple[Tensor, Tensor]:
    saved = torch.load(path)
    return saved["frames"], saved["labels"]


def order(n: int, seed: int) -> tuple[Tensor, ...]:
    """The epoch's batches of indices, shuffled as the training loop shuffles them."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).split(BATCH)


def compare(ts: nn.Module, sn: SnnTorchConv, xs: Tensor, y: Tensor) -> dict:
    """Output membrane, loss and gradients of both networks on ``xs`` in eval mode."""
    counts: list[float] = []
    hooks = [
        lif.register_forward_hook(lambda m, i, o: counts.append(float(o[0].detach().sum())))
        for lif in sn.neurons()
    ]
    out = {}
    for name, net in (("torchspike", ts), ("snntorch", sn)):
        net.eval()
        net.zero_grad(set_to_none=True)
        v = membrane(name, net, xs)
        loss = loss_fn(name)(v, y)
        loss.backward()
        grads = [p.grad for m in weighted(net) for p in m.parameters()]
        out[name] = (v.detach(), loss.item(), grads)
    for hook in hooks:
        hook.remove()
    (v_ts, loss_ts, g_ts), (v_sn, loss_sn, g_sn) = out["torchspike"], out["snntorch"]
    grad_rel = max(
        float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
        for a, b in zip(g_ts, g_sn, strict=True)
    )
    return {
        "max_abs_membrane_diff": float((v_ts - v_sn).abs().max()),
        "max_abs_membrane": float(v_sn.abs().max()),
        "loss": [loss_ts, loss_sn],
        "max_rel_grad_diff": grad_rel,
        "spikes_per_layer": [sum(counts[k::4]) for k in range(3)],  # the hidden layers
    }


def check(frames: Tensor, labels: Tensor, seed: int) -> dict:
    """``compare`` on the epoch's first batch with torchspike's initial weights, then again after
    torchspike trained on the next ``CHECK_TRAIN`` batches (weights and BatchNorm running stats
    copied into snnTorch). Runs in the peer venv."""
    batches = [(frames[:, idx].contiguous(), labels[idx]) for idx in order(len(labels), seed)]
    ts, sn = torchspike_net(seed), snntorch_net(seed)
    result = {"initial": compare(ts, sn, *batches[0])}
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(ts.parameters(), lr=LR)
    ts.train()
    for xs, y in batches[1 : 1 + CHECK_TRAIN]:
        optimizer.zero_grad(set_to_none=True)
        loss_fn("torchspike")(membrane("torchspike", ts, xs), y).backward()
        optimizer.step()
    for src, dst in zip(weighted(ts), weighted(sn), strict=True):
        dst.load_state_dict(src.state_dict())
    result["trained"] = compare(ts, sn, *batches[0])
    result["neurons_x_steps_x_batch"] = [
        n * STEPS * BATCH for n in (16 * 34 * 34, 32 * 17 * 17, 128)
    ]
    return result


def epoch(lib: str, frames: Tensor, labels: Tensor, seed: int) -> dict:
    """One training epoch, each batch timed from forward to ``optimizer.step()``."""
    net = build(lib, seed)
    data = [(frames[:, idx].contiguous(), labels[idx]) for idx in order(len(labels), seed)]
    loss = loss_fn(lib)

    def train(net: nn.Module, batches: list[tuple[Tensor, Tensor]]) -> tuple[list[float], float]:
        net.train()
        optimizer = torch.optim.Adam(net.parameters(), lr=LR)
        times, total = [], 0.0
        for xs, y in batches:
            start = time.perf_counter()
            value = loss(membrane(lib, net, xs), y)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
            total += value.item()
        return times, total / len(batches)

    torch.manual_seed(seed + 1)
    train(copy.deepcopy(net), data[:WARMUP])
    torch.manual_seed(seed + 2)  # the dropout masks
    times, mean_loss = train(net, data)
    return {
        "lib": lib,
        "batch_ms": [round(1e3 * t, 3) for t in times],
        "median_ms": statistics.median(times) * 1e3,
        "epoch_s": sum(times),
        "mean_loss": mean_loss,
        "threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------


def make_frames(path: Path) -> None:
    """The training recordings' frames [8, 1000, 2, 34, 34] and labels [1000], saved to ``path``."""
    from torchspike.data import events as ev

    train = ev.load("n-mnist", "train", DATA)
    frames, labels = [], []
    for batch, y in ev.batches(train, 100):
        frames.append(ev.to_frames(batch, bins=STEPS, duration=DURATION))
        labels.append(y)
    saved = {"frames": torch.cat(frames, 1).contiguous(), "labels": torch.cat(labels)}
    torch.save(saved, path)


def child(lib: str, mode: str, args: argparse.Namespace) -> dict:
    """Run this script as ``--child`` in ``lib``'s venv (the peer venv sees torchspike via src)."""
    python = sys.executable if lib == "torchspike" else str(args.peer_python)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")} if lib == "snntorch" else os.environ
    cmd = [python, __file__, "--child", mode, "--lib", lib, "--frames", str(args.frames)]
    cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(
    args: argparse.Namespace, eq: dict, runs: list[dict], load: tuple[str, str, float]
) -> str:
    by = {lib: [r for r in runs if r["lib"] == lib] for lib in LIBRARIES}
    med = {
        lib: (
            statistics.median(r["median_ms"] for r in rs),
            statistics.median(r["epoch_s"] for r in rs),
        )
        for lib, rs in by.items()
    }
    rows = []
    for lib, (ms, s) in med.items():
        epochs = ", ".join(f"{r['epoch_s']:.2f}" for r in by[lib])
        losses = ", ".join(f"{r['mean_loss']:.3f}" for r in by[lib])
        rows.append(f"| {lib} | {ms:.1f} | {s:.2f} | {epochs} | {losses} |")
    per_run = {lib: ", ".join(f"{r['median_ms']:.1f}" for r in rs) for lib, rs in by.items()}
    ratio_ms = med["snntorch"][0] / med["torchspike"][0]
    ratio_s = med["snntorch"][1] / med["torchspike"][1]
    command = " ".join(["python", "bench/nmnist_peers.py", *sys.argv[1:]])
    total = eq["neurons_x_steps_x_batch"]
    checks = []
    for when, c in (("initial weights", eq["initial"]), ("after 10 batches", eq["trained"])):
        rates = ", ".join(f"{s / n:.4f}" for s, n in zip(c["spikes_per_layer"], total, strict=True))
        checks.append(
            f"| {when} | {c['max_abs_membrane_diff']:.1e} | {c['max_abs_membrane']:.2f} "
            f"| {c['loss'][0]:.6f} / {c['loss'][1]:.6f} | {c['max_rel_grad_diff']:.1e} "
            f"| {rates} |"
        )
    return f"""# N-MNIST conv SNN: one training epoch, torchspike vs snnTorch

```sh
.venv/bin/{command}
```
(frames and the equivalence check untimed; the timed part under
`flock {LOCK}`, which other work on the machine need not hold)

- machine: {machine()}
- threads: {args.threads} per process (`torch.set_num_threads`), one process at a time
- load average before / after the timed part: {load[0]} / {load[1]}; all CPUs busy
  {load[2]:.0%} of the timed part (this benchmark alone can fill {args.threads} of them)

Recipe `nmnist-conv` network ({STEPS} frames of {DURATION / STEPS / 1000:.1f} ms, conv 16-32 +
FC 128, Dropout 0.2, Adam lr {LR}), the 1,000 training recordings of the N-MNIST subset as
precomputed frames [8, 1000, 2, 34, 34], batch {BATCH} (31 batches of 32 and one of 8, shuffled
with seed {args.seed}). Each epoch is a fresh process (2 warm-up batches on a discarded copy), the
libraries interleaved torchspike, snnTorch, ... {args.repeats} times. A batch is timed from the
forward pass to `optimizer.step()`; epoch = the sum of its 32 batch times.

| library | median ms / batch | epoch s (median) | epoch s, each run | mean loss, each run |
|---|---|---|---|---|
{chr(10).join(rows)}

**snnTorch / torchspike: {ratio_ms:.2f}x per batch (median), {ratio_s:.2f}x per epoch.**

Per-batch medians of each run (ms): torchspike {per_run["torchspike"]}, snnTorch
{per_run["snntorch"]}.

With the load above, other processes shared the cores: absolute times are slower than on an idle
machine, and the interleaving spreads that over both libraries (the ratio is the figure to read).

## Equivalence (eval mode, the epoch's first batch of 32, the same weights in both)

torchspike's initial weights (seed {args.seed}) copied into the snnTorch network; then again after
torchspike trained on the next 10 batches (weights and BatchNorm running stats copied), when all
layers spike. Membrane = the output layer's pre-reset membrane over all 8 steps; gradients = of
every weight, bias and BatchNorm affine parameter, relative to the largest |gradient| of that
tensor; spike rate = spikes / (neurons x steps x batch) of the hidden layers conv1, conv2, fc1.

{CHECK_HEADER}
{chr(10).join(checks)}

The two agree to float rounding (folded [T*B] convolutions and Linear vs per-step ones): the
neurons are the same recursion (snnTorch's Leaky, subtract reset = torchspike's LIF).

The networks differ in training mode only in BatchNorm: torchspike folds time into the batch
(statistics over T*B = {STEPS * BATCH} frames, running stats updated once per batch), snnTorch's
per-step loop normalises each step over its {BATCH} frames (running stats updated {STEPS} times).
The training losses therefore differ slightly; the arithmetic per batch is the same.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=Path, default=FRAMES)
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    parser.add_argument("--child", choices=("check", "epoch"), help=argparse.SUPPRESS)
    parser.add_argument("--lib", choices=LIBRARIES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.child:
        frames, labels = load_frames(args.frames)
        if args.child == "check":
            print(json.dumps(check(frames, labels, args.seed)))
        else:
            print(json.dumps(epoch(args.lib, frames, labels, args.seed)))
        return

    if not args.frames.exists():
        make_frames(args.frames)
    eq = child("snntorch", "check", args)
    print(json.dumps(eq), flush=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before, (total0, busy0) = loadavg(), cpu_jiffies()
        runs = []
        for r in range(args.repeats):
            for lib in LIBRARIES:
                runs.append(child(lib, "epoch", args))
                last = runs[-1]
                print(f"{r} {lib}: {last['median_ms']:.1f} ms/batch, {last['epoch_s']:.2f} s")
        total1, busy1 = cpu_jiffies()
        load = (before, loadavg(), (busy1 - busy0) / max(total1 - total0, 1))
    RESULTS.write_text(report(args, eq, runs, load))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # When the fast paths apply, and how to check
#
# A `SpikingNet` does not run its layers one time step at a time when it can avoid it. This
# tutorial lists what it does instead, how to see which path each layer takes
# (`net.explain()`), what makes a layer fall back to the plain path, how to check a fast path
# against a plain step-by-step reference, and how to time the difference.
#
# - **small** (default): small layers, a few timed repetitions (timings on a shared machine are
#   rough);
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the network and batch of snnTorch's
#   tutorial 5 (784-1000-10, T=25, B=128), the benchmark's configuration *a*.

# %%
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

import torchspike as ts
from torchspike.data import load

FULL = os.environ.get("TORCHSPIKE_TUTORIAL") == "full" or "--full" in sys.argv
DATA = os.environ.get("TORCHSPIKE_DATA", "../shared/data")  # MNIST (full mode only)
RUNS = Path(os.environ.get("TORCHSPIKE_RUNS", "runs"))  # recipe run directories (full mode)
SAVE = os.environ.get("TORCHSPIKE_TUTORIAL_SAVE")  # a folder: figures are also written there
torch.manual_seed(0)
torch.set_num_threads(1)
plt.rcParams["figure.constrained_layout.use"] = True


def show(fig, name):
    """Show a figure inline (and write it to $TORCHSPIKE_TUTORIAL_SAVE when set)."""
    if SAVE:
        Path(SAVE).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(SAVE) / f"{name}.png", dpi=110, bbox_inches="tight")
    plt.show()


def recipe_run(recipe, folder=None, *flags, data=None):
    """The run directory ``RUNS/folder`` of ``recipe``, trained by the CLI if it is missing."""
    path = RUNS / (folder or recipe)
    if not (path / "model.safetensors").exists():
        cmd = ["train", "--recipe", recipe, "--data-dir", data or DATA, "--out", str(path)]
        subprocess.run(
            [sys.executable, "-m", "torchspike", *cmd, "--overwrite", *flags], check=True
        )
    return path


print("mode:", "full" if FULL else "small")

# %% [markdown]
# ## The paths, and `explain`
#
# - **Stateless layers** (Linear, Conv, pooling, normalisation, dropout, Flatten) run once on
#   all time steps, with time folded into the batch (`[T*B, ...]`). A static input
#   (`ts.encode.direct`, a stride-0 view) is computed once, not T times.
# - **A LIF layer** runs its whole sequence in one fused autograd node with a hand-written
#   backward through time.
# - **A LIF followed by a Linear** runs as one node that keeps only the membrane for backward
#   (the spikes are formed again from it).
# - **A Linear fed sparse spikes** sums the weight columns of the inputs that fired instead of a
#   dense product, where that is faster (below a density measured per layer width).
# - **Buffers** of shape `[T, B, N]` are reused from one call to the next (`workspace=True`).
#
# `net.explain()` lists each layer's path:

# %%
net = ts.SpikingNet(
    nn.Flatten(),
    nn.Linear(64, 256),
    ts.LIF(0.95),
    nn.Linear(256, 10),
    ts.LIF(0.95, output="membrane"),
)
print(net.explain())

# %% [markdown]
# ## What falls back, and why
#
# Each of these is computed correctly, by a slower path; `explain` shows it:

# %%
variants = {
    "rectified IF (a clamp the fused kernel has no form for)": ts.IF(rectify=True),
    "ALIF (an adaptive threshold: its own step function)": ts.ALIF(0.95, rho=0.99),
    "LIF(reuse_membrane=False) (allows retain_graph=True)": ts.LIF(0.95, reuse_membrane=False),
    "LIF(output='membrane') before a Linear": ts.LIF(0.95, output="membrane"),
}
for what, neuron in variants.items():
    print(f"--- {what}")
    print(ts.SpikingNet(nn.Linear(64, 256), neuron, nn.Linear(256, 10)).explain())

# %% [markdown]
# A module with neurons inside its own `forward` is *folded* (run once on `[T*B, ...]`) only
# when `torch.fx` shows that every operation acts on each sample alone; otherwise it runs per
# step, and `explain` names the reason (see the tutorial on wrapping a conv net).
#
# ## Checking a fast path against the plain reference
#
# The reference is the definition: each layer applied step by step, each neuron through its
# `step` function. Outputs and gradients of the fast network must agree with it to float32
# rounding. (The test suite pins every fast path this way.)

# %%
fc1, lif1, fc2, lif2 = net.layers[1], net.layers[2], net.layers[3], net.layers[4]


def plain(xs):
    """The reference: one step at a time, through each neuron's step function."""
    s1 = s2 = None
    out = []
    for x in xs:
        h = fc1(x.flatten(1))
        s1 = lif1.initial_state(h) if s1 is None else s1
        z, s1 = lif1.step(h, s1)
        h = fc2(z)
        s2 = lif2.initial_state(h) if s2 is None else s2
        v, s2 = lif2.step(h, s2)
        out.append(v)
    return torch.stack(out)


x, y = load("digits", "train")
xs = ts.encode.direct(x[:32], steps=25)
fast_v, _ = net(xs)
plain_v = plain(xs)
grads = []
for v in (fast_v, plain_v):
    grads.append(torch.autograd.grad(ts.loss.ce_membrane_sum(v, y[:32]), list(net.parameters())))
print("max |output difference|:", (fast_v - plain_v).abs().max().item())
for (name, _), g_fast, g_plain in zip(net.named_parameters(), *grads, strict=True):
    rel = ((g_fast - g_plain).abs().max() / g_plain.abs().max()).item()
    print(f"gradient of {name:16s} max relative difference {rel:.1e}")

# %% [markdown]
# The same check for a path you are unsure of: build the network twice, once as it is and
# once with the feature that forces the plain path (for instance `path="per-step"` for a
# module), and compare.
#
# ## Timing
#
# A training step (forward, loss, backward) of the fast network against the plain reference
# on the same weights. Time on your own machine; here the figures come from a shared CPU.


# %%
def timed(fn, repeats):
    fn()  # warm up: first calls allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]  # median, ms


if FULL:  # snnTorch tutorial 5's network and batch (bench/peers.py, configuration a)
    n_in, n_hidden, steps, batch, repeats = 784, 1000, 25, 128, 10
else:
    n_in, n_hidden, steps, batch, repeats = 64, 256, 25, 64, 5
torch.manual_seed(0)
net = ts.SpikingNet(
    nn.Linear(n_in, n_hidden),
    ts.LIF(0.95),
    nn.Linear(n_hidden, 10),
    ts.LIF(0.95, output="membrane"),
)
fc1, lif1, fc2, lif2 = net.layers
xs = ts.encode.direct(torch.rand(batch, n_in), steps)
target = torch.randint(0, 10, (batch,))


def step(run):
    def go():
        net.zero_grad()
        ts.loss.ce_membrane_sum(run(xs), target).backward()

    return go


results = {
    "SpikingNet (fast paths)": timed(step(lambda xs: net(xs)[0]), repeats),
    "plain step-by-step reference": timed(step(plain), repeats),
}
with torch.no_grad():
    results["SpikingNet, inference"] = timed(lambda: net(xs), repeats)
for name, ms in results.items():
    print(f"{name:30s} {ms:8.1f} ms")
fig, ax = plt.subplots(figsize=(7, 2.2))
ax.barh(list(results)[::-1], list(results.values())[::-1])
ax.set(xlabel="ms per step (median)", title=f"{n_in}-{n_hidden}-10, T={steps}, B={batch}, 1 thread")
show(fig, "timing")

# %% [markdown]
# ## Sparse input spikes
#
# A Linear fed spikes sums the columns of the inputs that fired. That pays only when few fire
# and the layer is wide; `SpikingNet` decides per call from the measured density. Inference time
# of a 700-input layer over T=25 steps of Bernoulli spikes, as the density grows (the dense
# product's time does not depend on it):

# %%
n_in, n_out = 700, 1024 if FULL else 512
layer_net = ts.SpikingNet(nn.Linear(n_in, n_out), ts.LIF(0.95))
dense = nn.Linear(n_in, n_out)
densities = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
sparse_ms, dense_ms = [], []
with torch.no_grad():
    for p in densities:
        spikes = (torch.rand(25, 32, n_in) < p).float()
        sparse_ms.append(timed(lambda s=spikes: layer_net(s), repeats))
        dense_ms.append(timed(lambda s=spikes: layer_net.layers[1](dense(s)), repeats))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(densities, sparse_ms, "o-", label="SpikingNet (sparse where it pays)")
ax.plot(densities, dense_ms, "s-", label="dense Linear, then the LIF")
ax.set(xscale="log", xlabel="input density (spikes per input per step)", ylabel="ms (median)")
ax.set_title(f"{n_in}-{n_out} layer, T=25, B=32, inference")
ax.legend(fontsize=7)
show(fig, "sparse")

# %% [markdown]
# ## More
#
# - `bench/peers.py` times the same network in torchspike, snnTorch, SpikingJelly and Norse after
#   checking that they compute the same spikes; `bench/sparsity.py` measures where the sparse
#   product pays; `bench/scaling.py` how the cost grows with T, B and N. Their results and
#   commands are in the performance guide (`docs/perf.md`).
# - `torch.set_num_threads` matters on small CPUs: one thread per process is often fastest
#   when several jobs share the machine.

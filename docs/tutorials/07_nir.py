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
# # NIR: exchanging networks with other libraries
#
# NIR, the Neuromorphic Intermediate Representation, describes a spiking network as a graph of
# layers and neuron equations in continuous time, stored in an HDF5 `.nir` file; snnTorch,
# Norse, Lava, Rockpool and several neuromorphic chips read and write it. This tutorial exports a
# torchspike network, reads it back, shows what is exact and what is an approximation, and
# exchanges networks with snnTorch and Norse.
#
# The torchspike parts run here (they need the `nir` package: `pip install "torchspike[nir]"`).
# The snnTorch and Norse parts need those libraries; they are shown with the output they printed
# when run in the peers' environment (`docs/tutorials/full/nir_peers.py`).
#
# - **small** (default): networks trained for a few epochs on the 8x8 digits;
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): also the `tutorial5` run
#   (`$TORCHSPIKE_RUNS/tutorial5`) exported, re-imported and scored on the MNIST test set.

# %%
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import nir
import numpy as np
import torch
from torch import nn

import torchspike as ts
import torchspike.nir as tn
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
# ## Time in NIR
#
# NIR neurons are ODEs, such as `tau dv/dt = (v_leak - v) + r I` for a LIF; torchspike's neurons
# are discrete. torchspike reads a NIR neuron with forward Euler over steps of `dt` (the
# convention of snnTorch and Norse too) and records `dt` in the graph's metadata. A decay
# `beta` per step is then `tau = dt / (1 - beta)`, and with `r = tau / dt` one Euler step is
# `v = beta v + x` again. `tn.NIRLIF` is a neuron that runs exactly NIR's semantics (a hard
# reset to `v_reset` in the step of the spike); a network built from it exports exactly.
#
# We train such a network on the digits: hidden `NIRLIF` neurons, and an `LI` read-out
# (`NIRLIF` without a threshold).

# %%
dt, beta = 1e-3, 0.9
tau = dt / (1 - beta)


def nir_net():
    return ts.SpikingNet(
        nn.Flatten(),
        nn.Linear(64, 64),
        tn.NIRLIF(dt=dt, tau=tau, r=tau / dt, v_th=1.0),
        nn.Linear(64, 10),
        tn.NIRLIF(dt=dt, tau=tau, r=tau / dt),  # no v_th: a leaky integrator, NIR's LI
    )


def lif_net():
    return ts.SpikingNet(
        nn.Flatten(),
        nn.Linear(64, 64),
        ts.LIF(beta),
        nn.Linear(64, 10),
        ts.LIF(beta, output="membrane"),
    )


def train(net, x, y, epochs=6, steps=20):
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            v, _ = net(ts.encode.direct(x[idx], steps))
            loss = ts.loss.ce_membrane_sum(v, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def accuracy(net, x, y, steps=20, batch=1000):
    with torch.no_grad():
        pred = torch.cat(
            [
                net(ts.encode.direct(x[i : i + batch], steps))[0].sum(0).argmax(1)
                for i in range(0, len(x), batch)
            ]
        )
    return (pred == y).float().mean().item()


x_train, y_train = load("digits", "train")
x_test, y_test = load("digits", "test")
exact = train(nir_net(), x_train, y_train)
print(f"NIRLIF network: test accuracy {accuracy(exact, x_test, y_test):.3f}")

# %% [markdown]
# ## Export, write, read, load
#
# `tn.export(model, input_shape, dt=...)` returns a `nir.NIRGraph`; `nir.write` and `nir.read`
# store it; `tn.load(graph_or_path)` builds a torchspike network from it (a `SpikingNet` for a
# chain of layers).

# %%
folder = Path(tempfile.mkdtemp())
graph = tn.export(exact, input_shape=(1, 8, 8), dt=dt)
for name, node in graph.nodes.items():
    print(f"{name:7s} {type(node).__name__:8s}", {
        k: tuple(v.shape) for k, v in vars(node).items() if hasattr(v, "shape") and v.ndim
    })  # fmt: skip
print("edges:", graph.edges)
print("metadata:", dict(graph.metadata))
nir.write(folder / "digits.nir", graph)
loaded = tn.load(folder / "digits.nir")
print(loaded)

# %% [markdown]
# The re-imported network computes the same spikes and read-out voltages:

# %%
xs = ts.encode.direct(x_test, 20)
with torch.no_grad():
    a, _ = exact(xs)
    b, _ = loaded(xs)
print("max |difference| of the read-out voltages:", (a - b).abs().max().item())
acc_a, acc_b = accuracy(exact, x_test, y_test), accuracy(loaded, x_test, y_test)
print(f"test accuracy: original {acc_a:.3f}, re-imported {acc_b:.3f}")

# %% [markdown]
# ## What is an approximation
#
# torchspike's own `LIF` subtracts `v_th` one step after a spike and its `reset="zero"` drops the
# input of the step after a spike; NIR's LIF resets to `v_reset` at once. Such a network can
# still be exported, but the result is an approximation: `export` says so with a `tn.NIRWarning`
# naming each layer and the reason, tags the graph (`metadata["torchspike_inexact"]`), and
# refuses with `strict=True`.

# %%
approx = train(lif_net(), x_train, y_train)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    graph = tn.export(approx, input_shape=(1, 8, 8), dt=dt)
for w in caught:
    print(f"{w.category.__name__}: {w.message}")
try:
    tn.export(approx, input_shape=(1, 8, 8), dt=dt, strict=True)
except ValueError as err:
    print("strict=True: ValueError:", str(err)[:120], "...")

# %% [markdown]
# How much does it change? The same weights, run with NIR's semantics:

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", tn.NIRWarning)
    reloaded = tn.load(tn.export(approx, input_shape=(1, 8, 8), dt=dt))
results = {
    "digits: LIF network": accuracy(approx, x_test, y_test),
    "digits: its NIR re-import": accuracy(reloaded, x_test, y_test),
    "digits: NIRLIF network": accuracy(exact, x_test, y_test),
    "digits: its NIR re-import ": accuracy(loaded, x_test, y_test),
}

# %% [markdown]
# In full mode the same comparison on the `tutorial5` run, exported from its run directory
# with `tn.export_run` (what `torchspike export RUN --format nir FILE` calls) and scored on the
# MNIST test set:

# %%
if FULL:
    model, config = ts.load_run(recipe_run("tutorial5"))
    x_mnist, y_mnist = load("mnist", "test", DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.NIRWarning)
        tn.export_run(RUNS / "tutorial5", folder / "tutorial5.nir")
    mnist_loaded = tn.load(folder / "tutorial5.nir")
    results["tutorial5 run (MNIST)"] = accuracy(model, x_mnist, y_mnist, config.steps)
    results["its NIR re-import (MNIST)"] = accuracy(mnist_loaded, x_mnist, y_mnist, config.steps)

for name, acc in results.items():
    print(f"{name:28s} {acc:.4f}")
fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(results)))
ax.barh(list(results)[::-1], [100 * v for v in list(results.values())[::-1]], color="C0")
for i, v in enumerate(list(results.values())[::-1]):
    ax.text(100 * v + 0.3, i, f"{v:.1%}", va="center", fontsize=8)
ax.set(xlabel="test accuracy (%)", xlim=(0, 110), title="before and after a NIR round trip")
show(fig, "round_trip")

# %% [markdown]
# For a network that must transfer exactly, train it with `tn.NIRLIF` (or `tn.NIRCubaLIF`, or
# `ts.CubaLIF`, whose export is exact) from the start.
#
# ## A graph written by someone else
#
# A graph from another tool is loaded the same way. NIR files do not always record the time
# step, and no producer's step can be assumed: the NIR paper's Norse LIF graph was made at
# `1e-4`, its Sinabs CNN at `1` (IF neurons, one step per time bin). `tn.load` takes the
# graph's recorded dt, infers it only where several time constants agree on it (with a
# warning), and otherwise refuses and asks for `tn.load(graph, dt=...)`; the producers' own
# conventions are in the table of [docs/nir.md](../nir.md), "Loading a graph from another tool".
# Here a graph written by hand with `nir`'s own classes, as another library would:

# %%
rng = np.random.default_rng(0)
by_hand = nir.NIRGraph(
    nodes={
        "input": nir.Input(input_type=np.array([4])),
        "fc": nir.Affine(weight=rng.normal(0.5, 0.3, (3, 4)), bias=np.zeros(3)),
        "lif": nir.LIF(
            tau=np.full(3, 10e-3),
            r=np.full(3, 10.0),
            v_leak=np.zeros(3),
            v_threshold=np.ones(3),
            v_reset=np.zeros(3),
        ),  # fmt: skip
        "output": nir.Output(output_type=np.array([3])),
    },
    edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
)
net = tn.load(by_hand, dt=1e-3)
print(net)
spikes, _ = net(torch.full((30, 1, 4), 0.3))
print("spike counts over 30 steps:", spikes.sum(0).tolist())

# %% [markdown]
# ## With snnTorch and Norse (recorded output)
#
# The following ran in the peers' environment (the command and the script are in
# `docs/tutorials/full/nir_peers.py`, its output in `nir_peers.out`). It exports snnTorch
# networks of `Leaky` neurons (per-neuron `beta`) with both of snnTorch's resets, loads them in
# torchspike and compares the output spikes over 60 steps of random input; then it exports a
# torchspike `NIRLIF` network and imports it in snnTorch (written with `dt = 1e-4`, the step
# snnTorch assumes) and in Norse (with `r = 1`, since Norse ignores `r`).
#
# ```python
# # snnTorch -> torchspike
# net = nn.Sequential(nn.Linear(10, 16), snn.Leaky(beta=torch.full((16,), 0.9), init_hidden=True,
#                     reset_mechanism="zero"), nn.Linear(16, 4), snn.Leaky(..., output=True))
# graph = snntorch.export_nir.export_to_nir(net, torch.randn(1, 10), ignore_dims=[0])
# nir.write("from_snntorch.nir", graph)
# ours = tn.load("from_snntorch.nir", dt=1e-4)      # snnTorch's step
# # torchspike -> snnTorch / Norse
# graph = tn.export(ts.SpikingNet(nn.Linear(10, 16), tn.NIRLIF(dt=1e-4, tau=1e-3, r=10.0,
#                   v_th=1.0)), dt=1e-4)
# theirs = snntorch.import_nir.import_from_nir(graph)
# ```
#
# ```text
# snntorch 1.0.0, norse 1.1.0, nir 1.0.8
# loaded from snnTorch: SpikingNet, neurons NIRLIF(LIF, dt=0.0001)
# snnTorch Leaky(reset_mechanism='zero') -> torchspike:
#     identical (155 vs 155 output spikes)
# loaded from snnTorch: SpikingNet, neurons NIRLIF(LIF, dt=0.0001)
# snnTorch Leaky(reset_mechanism='subtract') -> torchspike:
#     9.38% of outputs differ (159 vs 155 output spikes)
# torchspike NIRLIF (dt 1e-4, r = tau/dt) -> snnTorch:
#     identical (196 vs 196 output spikes)
# torchspike NIRLIF (dt 1e-3, r = 1) -> Norse:
#     identical (196 vs 196 output spikes)
# ```
#
# snnTorch's `reset_mechanism="subtract"` is not what its graph says: NIR's LIF resets to
# `v_reset`, which torchspike runs (and an independent NumPy simulation of the graph agrees
# with torchspike); snnTorch itself subtracts. Where a peer differs from its own graph, the peer
# departs from it. The full table of directions and semantic gaps (reset
# timing, `dt`, `r`, Norse's exported time constants) is `bench/RESULTS_nir.md`, and the NIR
# guide (`docs/nir.md`) lists every node and what is exact.

# %%
shutil.rmtree(folder)

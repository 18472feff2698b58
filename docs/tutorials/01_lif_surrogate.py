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
# # LIF neurons and surrogate gradients
#
# This tutorial follows snnTorch's tutorial 5: a leaky integrate-and-fire (LIF) neuron, the
# surrogate gradient that lets backpropagation pass through its spikes, and a two-layer network
# trained by backpropagation through time (BPTT) with the membrane cross-entropy loss.
#
# It runs in two modes:
#
# - **small** (the default, what CI runs): the 8x8 digits shipped with torchspike, a 64-128-10
#   network, a few epochs, well under a minute on one thread;
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the recipe `tutorial5` (784-1000-10 on
#   MNIST, 25 steps, one epoch). It reads the run directory `$TORCHSPIKE_RUNS/tutorial5`
#   (made by `torchspike train --recipe tutorial5 --data-dir DATA --out RUNS/tutorial5`; the
#   tutorial trains it that way if it is missing) and MNIST from `$TORCHSPIKE_DATA`.
#
# Every tensor of a sequence is **time-first**, `[T, B, ...]`, and a neuron's state is passed
# in and returned, never hidden inside the module.

# %%
import os
import subprocess
import sys
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
# ## One LIF neuron
#
# `ts.LIF(beta, v_th)` updates its membrane `U` at each step `t` as
#
# ```text
# U[t] = beta U[t-1] + x[t] - v_th R[t]      R[t] = H(U[t-1] - v_th)    (reset by subtraction)
# z[t] = H(U[t] - v_th)                                                    (the spike)
# ```
#
# with `H` the Heaviside step. `beta` is the decay per step; `ts.LIF(tau=..., dt=...)` sets it
# to `exp(-dt/tau)` instead. The module returns its spikes, or its membrane with
# `output="membrane"`, and the final state:

# %%
T = 60
xs = torch.zeros(T, 1, 1)  # [T, B=1, N=1]
xs[10:] = 0.3  # a step current from step 10

lif = ts.LIF(beta=0.8, v_th=1.0)
spikes, state = lif(xs)
v, _ = ts.LIF(beta=0.8, v_th=1.0, output="membrane")(xs)
print("spikes at steps", spikes[:, 0, 0].nonzero().flatten().tolist())
print("final state:", state)

# %% [markdown]
# The membrane rises towards `0.3 / (1 - 0.8) = 1.5`, crosses `v_th = 1` and loses `v_th` one
# step after each spike. `reset="zero"` (snnTorch's `reset_mechanism="zero"`) sets it to 0
# instead:

# %%
v_zero, _ = ts.LIF(beta=0.8, v_th=1.0, reset="zero", output="membrane")(xs)
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(v[:, 0, 0], label='reset="subtract"')
ax.plot(v_zero[:, 0, 0], label='reset="zero"')
ax.plot(xs[:, 0, 0], "k:", label="input x")
ax.axhline(1.0, color="gray", ls="--", lw=1, label="v_th")
for t in spikes[:, 0, 0].nonzero().flatten():
    ax.axvline(int(t), color="C0", alpha=0.2)
ax.set(xlabel="time step", ylabel="membrane U", title="one LIF neuron (shaded: spikes)")
ax.legend(fontsize=8)
show(fig, "lif_membrane")

# %% [markdown]
# A sequence can be continued across calls by passing the state back: the two halves below
# give the same spikes as one call.

# %%
first, s = lif(xs[:30])
second, _ = lif(xs[30:], s)
assert torch.equal(torch.cat([first, second]), spikes)

# %% [markdown]
# ## Surrogate gradients
#
# The derivative of `H` is zero everywhere except at 0, so no gradient would reach the weights.
# A surrogate keeps the exact step in the forward pass and uses a smooth derivative in the
# backward pass. `ts.surrogate` has `atan` (snnTorch's default), `fast_sigmoid` (SuperSpike),
# `sigmoid`, `triangle` and `straight_through`; each is a callable that a neuron takes as
# `spike_fn=`. Autograd shows the two faces:

# %%
u = torch.linspace(-2, 2, 401, requires_grad=True)
fig, (ax_f, ax_b) = plt.subplots(1, 2, figsize=(9, 3))
for name, fn in [
    ("atan(2)", ts.surrogate.atan(2.0)),
    ("fast_sigmoid(5)", ts.surrogate.fast_sigmoid(5.0)),
    ("sigmoid(5)", ts.surrogate.sigmoid(5.0)),
    ("triangle(1)", ts.surrogate.triangle(1.0)),
]:
    (grad,) = torch.autograd.grad(fn(u).sum(), u)
    ax_b.plot(u.detach(), grad, label=name)
ax_f.plot(u.detach(), ts.surrogate.atan()(u).detach(), "k")
ax_f.set(xlabel="U - v_th", ylabel="z", title="forward: Heaviside")
ax_b.set(xlabel="U - v_th", ylabel="dz/dU", title="backward: surrogate derivative")
ax_b.legend(fontsize=8)
show(fig, "surrogates")

# %% [markdown]
# ## A network trained by BPTT
#
# `ts.SpikingNet` runs ordinary torch layers and neurons over time: the Linear layers run once
# on all steps, each LIF over its whole sequence in one fused autograd node. The output layer
# returns its membrane, and `ts.loss.ce_membrane_sum` applies cross-entropy to it at every step
# and sums over time (snnTorch tutorial 5's loss). The image is fed unchanged at every step
# (`ts.encode.direct`).

# %%
model, config = ts.load_run(recipe_run("tutorial5")) if FULL else (None, None)
print(model if FULL else "(the recipe's trained run is read in full mode)")

# %% [markdown]
# The recipe's network is `784-1000-10` with `beta=0.95`. Here we train the same
# architecture, scaled to the 8x8 digits (in full mode the trained run replaces it below):

# %%
steps = 25


def make_net(n_in, n_hidden, beta=0.95):
    return ts.SpikingNet(
        nn.Flatten(),
        nn.Linear(n_in, n_hidden),
        ts.LIF(beta=beta),
        nn.Linear(n_hidden, 10),
        ts.LIF(beta=beta, output="membrane"),
    )


def accuracy(net, x, y, batch=1000):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            v, _ = net(ts.encode.direct(x[i : i + batch], steps=steps))
            correct += (v.sum(0).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


x_train, y_train = load("digits", "train")
x_test, y_test = load("digits", "test")
net = make_net(64, 128)
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
losses = []
for epoch in range(5):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 64):
        idx = perm[i : i + 64]
        v, _ = net(ts.encode.direct(x_train[idx], steps=steps))
        loss = ts.loss.ce_membrane_sum(v, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(
        f"epoch {epoch}: loss {losses[-1]:.3f}, test accuracy {accuracy(net, x_test, y_test):.3f}"
    )

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(losses)
ax.set(xlabel="batch", ylabel="loss", title="training loss (digits)")
show(fig, "loss_digits")

# %% [markdown]
# ## Recording spikes and membranes, with gradients
#
# snnTorch's tutorial 5 appends each step's spikes and membrane to lists, and a loss may use
# either. Here `net.trace(xs, grad=True)` runs the network step by step and returns every
# neuron layer's records (`"out"`: its output, `"v"`: its membrane) inside the autograd graph;
# its output equals `net(xs)[0]`. For example, a penalty on the hidden layer's firing rate next
# to the loss on the output membrane:

# %%
xs = ts.encode.direct(x_train[:64], steps)
ys, records = net.trace(xs, grad=True)
print("trace output equals forward:", torch.allclose(ys, net(xs)[0], atol=1e-5))
rate = records["2"]["out"].mean()  # hidden spikes per neuron and step
loss = ts.loss.ce_membrane_sum(ys, y_train[:64]) + 10.0 * rate
net.zero_grad()
loss.backward()
print(f"hidden rate {rate.item():.3f}; |dloss/dW1| = {net.layers[1].weight.grad.norm():.3f}")

# %% [markdown]
# ## Looking inside: spikes and membranes
#
# `net.trace(xs)` runs without gradients and records every neuron layer's output and state
# over time (`records[name]["out"]`, `records[name]["v"]`, `name` being the layer's index).
# In full mode the trained `tutorial5` run is the network looked at, on MNIST test images.

# %%
if model is not None:
    net, steps = model, config.steps
    x_test, y_test = load("mnist", "test", DATA)
    print(f"tutorial5 run: test accuracy {accuracy(net, x_test, y_test):.4f}")

samples = 4
ys, records = net.trace(ts.encode.direct(x_test[:samples], steps=steps))
hidden, out = records["2"], records["4"]
shown = min(hidden["out"].shape[-1], 100)  # a wide layer's raster would be a solid block
fig, axes = plt.subplots(2, samples, figsize=(3 * samples, 5), sharex=True, layout="constrained")
for s in range(samples):
    t, n = hidden["out"][:, s, :shown].nonzero(as_tuple=True)
    axes[0][s].scatter(t, n, s=2, c="k")
    axes[0][s].set(title=f"hidden spikes, label {int(y_test[s])}", ylabel=f"neuron (first {shown})")
    for c in range(10):
        axes[1][s].plot(out["v"][:, s, c], lw=2.5 if c == y_test[s] else 0.8, label=str(c))
    axes[1][s].set(xlabel="time step", ylabel="output membrane")
axes[1][-1].legend(fontsize=6, ncol=2, title="class (thick: label)", title_fontsize=6)
show(fig, "raster_membrane")

# %% [markdown]
# The thick line is the label's output neuron: its membrane grows fastest, and the decision is
# the class whose membrane summed over time is largest.
#
# ## A confusion matrix

# %%
with torch.no_grad():
    pred = torch.cat(
        [
            net(ts.encode.direct(x_test[i : i + 1000], steps=steps))[0].sum(0).argmax(1)
            for i in range(0, len(x_test), 1000)
        ]
    )
matrix = torch.zeros(10, 10, dtype=torch.long)
matrix.index_put_((y_test, pred), torch.ones_like(pred), accumulate=True)
acc = (pred == y_test).float().mean().item()
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(matrix, cmap="Blues")
for i in range(10):
    for j in range(10):
        ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7)
ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true")
ax.set_title(f"confusion matrix, accuracy {acc:.2%}")
show(fig, "confusion")

# %% [markdown]
# ## From the command line
#
# The full-size run is the recipe `tutorial5`:
#
# ```sh
# torchspike train --recipe tutorial5 --data-dir ../shared/data --out runs/tutorial5
# torchspike eval runs/tutorial5
# torchspike plot runs/tutorial5
# ```
#
# and `model, config = torchspike.load_run("runs/tutorial5")` reads it back, as above.

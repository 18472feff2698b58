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
# # IF neurons with rate coding
#
# The recipe `surrgd-if`: integrate-and-fire (IF) neurons that never leak, images presented as
# random spike trains whose rate is the pixel's brightness, and the fast-sigmoid surrogate
# derivative of SuperSpike, which the surrogate-gradient (SurrGD) tutorials of Zenke's SpyTorch
# use (they train leaky, current-based neurons; here the neuron is the simplest one).
#
# - **small** (default): the 8x8 digits, a 64-128-10 network, a few epochs (seconds);
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the recipe `surrgd-if` (784-1000-10 on
#   MNIST, 25 steps, five epochs, 98.07% in the recorded run), read from
#   `$TORCHSPIKE_RUNS/surrgd-if` (trained by `torchspike train --recipe surrgd-if` if missing),
#   with MNIST from `$TORCHSPIKE_DATA`.

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
# ## Rate coding
#
# `ts.encode.rate(x, steps)` turns intensities in [0, 1] into Bernoulli spikes: at each step a
# pixel fires with probability equal to its value (times an optional `gain`). The result is
# time-first, `[T, B, ...]`, and a new draw is made at each call, so every epoch sees new
# spike trains. A `torch.Generator` makes a draw reproducible.

# %%
x_train, y_train = load("digits", "train")
x_test, y_test = load("digits", "test")
gen = torch.Generator().manual_seed(0)
spikes = ts.encode.rate(x_train[:1], steps=100, generator=gen)  # [100, 1, 1, 8, 8]
print("input", tuple(x_train[:1].shape), "-> spikes", tuple(spikes.shape))

fig, (ax_img, ax_raster, ax_rate) = plt.subplots(1, 3, figsize=(11, 3))
ax_img.imshow(x_train[0, 0], cmap="gray")
ax_img.set(title=f"digit {int(y_train[0])}", xticks=[], yticks=[])
t, n = spikes[:, 0].flatten(1).nonzero(as_tuple=True)
ax_raster.scatter(t, n, s=1, c="k")
ax_raster.set(xlabel="time step", ylabel="pixel", title="rate-coded input")
ax_rate.plot(x_train[0].flatten(), spikes[:, 0].flatten(1).mean(0), "o", ms=3)
ax_rate.plot([0, 1], [0, 1], "k:", lw=1)
ax_rate.set(xlabel="pixel value", ylabel="spikes per step", title="rate = intensity")
show(fig, "rate_code")

# %% [markdown]
# ## The IF neuron
#
# `ts.IF()` is a LIF with `beta = 1`: it integrates its input without leak. With
# `rectify=True` (the tutorial's variant) the membrane cannot go below 0 and resets to 0 after
# a spike: `U[t] = max(0, U[t-1] (1 - R[t]) + x[t])`. Fed a current that is positive, then
# negative, then positive again, the plain IF remembers its negative excursion, the rectified
# one does not:

# %%
xs = torch.cat(
    [torch.full((20, 1, 1), 0.15), torch.full((20, 1, 1), -0.2), torch.full((30, 1, 1), 0.15)]
)
for rectify in (False, True):
    neuron = ts.IF(v_th=1.0, rectify=rectify)
    z, _ = neuron(xs)
    print(f"rectify={rectify}: spikes at", z[:, 0, 0].nonzero().flatten().tolist())

fig, ax = plt.subplots(figsize=(7, 3))
for rectify in (False, True):
    net = ts.SpikingNet(ts.IF(v_th=1.0, rectify=rectify))
    _, records = net.trace(xs)
    ax.plot(records["0"]["v"][:, 0, 0], label=f"IF(rectify={rectify})")
ax.plot(xs[:, 0, 0], "k:", label="input")
ax.axhline(1.0, color="gray", ls="--", lw=1, label="v_th")
ax.set(xlabel="time step", ylabel="membrane (before reset)", title="IF neurons")
ax.legend(fontsize=8)
show(fig, "if_membrane")

# %% [markdown]
# `net.trace` records each neuron layer's state at every step; `v` is the membrane that the
# threshold is compared with, before that step's reset.
#
# ## Training with the fast-sigmoid surrogate
#
# The hidden IF layer uses `ts.surrogate.fast_sigmoid(25)`, whose derivative is
# `1 / (1 + 25 |U - v_th|)^2` (SuperSpike's); the output layer is a non-spiking leaky read-out
# (`LIF(output="membrane")`) whose membrane, summed over time, is the class score.

# %%
steps = 25


def make_net(n_in, n_hidden):
    return ts.SpikingNet(
        nn.Flatten(),
        nn.Linear(n_in, n_hidden),
        ts.IF(rectify=True, spike_fn=ts.surrogate.fast_sigmoid(25.0)),
        nn.Linear(n_hidden, 10),
        ts.LIF(beta=0.95, output="membrane"),
    )


def accuracy(net, x, y, steps, batch=1000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            v, _ = net(ts.encode.rate(x[i : i + batch], steps, generator=gen))
            correct += (v.sum(0).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


net = make_net(64, 128)
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
for epoch in range(6):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 64):
        idx = perm[i : i + 64]
        v, _ = net(ts.encode.rate(x_train[idx], steps))
        loss = ts.loss.ce_membrane_sum(v, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = accuracy(net, x_test, y_test, steps)
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {acc:.3f}")

# %% [markdown]
# ## More steps, less noise
#
# A rate code is noisy: a pixel of value 0.3 fires 7.5 times on average in 25 steps, give or
# take 2.3. Evaluating the trained network with longer spike trains averages the noise away;
# shorter ones cost accuracy. In full mode the recipe's trained MNIST network is measured
# the same way.

# %%
if FULL:
    net, config = ts.load_run(recipe_run("surrgd-if"))
    x_test, y_test = load("mnist", "test", DATA)
    print(net)
    acc = accuracy(net, x_test, y_test, config.steps)
    print(f"surrgd-if run: test accuracy at {config.steps} steps {acc:.4f}")

lengths = [2, 5, 10, 25, 50, 100]
accs = [accuracy(net, x_test, y_test, t) for t in lengths]
for t, a in zip(lengths, accs, strict=True):
    print(f"T={t:3d}: {a:.4f}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(lengths, accs, "o-")
ax.axvline(steps, color="gray", ls="--", lw=1, label=f"trained with T={steps}")
ax.set(xlabel="time steps at test", ylabel="test accuracy", title="accuracy against code length")
ax.legend(fontsize=8)
show(fig, "accuracy_vs_steps")

# %% [markdown]
# ## Hidden activity
#
# A raster of the first 100 hidden neurons (titled with the whole layer's mean rate) and the
# output membranes for a few test samples:

# %%
samples = 4
gen = torch.Generator().manual_seed(1)
_, records = net.trace(ts.encode.rate(x_test[:samples], steps, generator=gen))
hidden, out = records["2"]["out"], records["4"]["v"]
shown = min(hidden.shape[-1], 100)
fig, axes = plt.subplots(2, samples, figsize=(3 * samples, 5), sharex=True)
for s in range(samples):
    t, n = hidden[:, s, :shown].nonzero(as_tuple=True)
    axes[0][s].scatter(t, n, s=2, c="k")
    rate = hidden[:, s].mean().item()
    axes[0][s].set(
        title=f"label {int(y_test[s])}: {rate:.3f} spikes/neuron/step",
        ylabel=f"hidden (first {shown})",
    )
    for c in range(10):
        axes[1][s].plot(out[:, s, c], lw=2.5 if c == y_test[s] else 0.8, label=str(c))
    axes[1][s].set(xlabel="time step", ylabel="output membrane")
axes[1][-1].legend(fontsize=6, ncol=2, title="class (thick: label)", title_fontsize=6)
show(fig, "raster_membrane")

# %% [markdown]
# ## From the command line
#
# ```sh
# torchspike recipes surrgd-if          # every setting of the recipe
# torchspike train --recipe surrgd-if --data-dir ../shared/data --out runs/surrgd-if
# torchspike plot runs/surrgd-if
# ```

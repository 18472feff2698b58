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
# # Wrapping a convolutional network with `SpikingNet`
#
# The spikingtorch tutorial writes a convolutional spiking network as an ordinary PyTorch module
# for **one time step** and lets the library run it over time. torchspike does the same with
# `ts.SpikingNet`: any `nn.Module` whose `forward` calls torchspike neurons, or a plain list of
# layers and neurons.
#
# - **small** (default): the 8x8 digits, a small conv net, a few epochs;
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the recipe `conv-mnist` (two conv
#   blocks of 32 and 64 channels, FC 256, T=4, 99.34% in the recorded run) read from
#   `$TORCHSPIKE_RUNS/conv-mnist`, evaluated on the MNIST test set from `$TORCHSPIKE_DATA`.

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
# ## A module written for one step
#
# `forward` receives one step, `[B, C, H, W]`, and calls each neuron as `z, _ = self.lif(h)`.
# The network supplies each neuron's state and keeps it for the next step: nothing is stored in
# the module, and there is nothing to reset between batches.
#
# Coming from spikingtorch: there `forward` also takes an `init` flag that the library passes
# to each spiking layer to reset its memory, and `SpikingNet(net, (n_out,))` needs the output
# shape. Here `forward` takes the step's input only, the network opens fresh state for every
# call (pass `state` back to continue a sequence), and the output shape comes from the module.
# spikingtorch's `PoissonEncoder(nsteps, scale)` draws the Bernoulli spikes of
# `ts.encode.rate(x, nsteps, gain=scale)` (it concatenates the steps along dimension 1; here they
# form a new first dimension), and its `SumDecoder(nsteps, scale)` is
# `scale * (ts.decode.spike_count(z) - nsteps / 2)`.


# %%
class ConvSNN(nn.Module):
    def __init__(self, beta=0.9):
        super().__init__()
        self.conv1, self.lif1 = nn.Conv2d(1, 8, 3, padding=1), ts.LIF(beta)
        self.conv2, self.lif2 = nn.Conv2d(8, 16, 3, padding=1), ts.LIF(beta)
        self.fc, self.out = nn.Linear(16 * 4 * 4, 10), ts.LIF(beta, output="membrane")

    def forward(self, x):  # one step: x is [B, 1, 8, 8]
        z, _ = self.lif1(self.conv1(x))
        z, _ = self.lif2(nn.functional.max_pool2d(self.conv2(z), 2))
        v, _ = self.out(self.fc(z.flatten(1)))
        return v


net = ts.SpikingNet(ConvSNN())
xs = ts.encode.direct(torch.rand(3, 1, 8, 8), steps=6)  # [T=6, B=3, 1, 8, 8]
v, state = net(xs)
print("output", tuple(v.shape), "| state entries:", net.neuron_names())
print(net.explain())

# %% [markdown]
# `net.explain()` says how each layer runs. Here the module is **folded**: every operation in
# `forward` acts on each sample alone, so `forward` runs once on all steps stacked into the
# batch (`[T*B, ...]`), and each neuron unstacks its input to `[T, B, ...]` and runs its fused
# kernel over the whole sequence. The network decides this by tracing `forward` with
# `torch.fx`; anything it cannot prove per-sample (data-dependent control flow, an unknown
# layer, a reduction over the batch) takes the **per-step** path, which calls `forward` once
# per time step. Both compute the same function, which we can check, gradients included:

# %%
per_step = ts.SpikingNet(net.layers[0], path="per-step")  # the same module, forced per step
xs = ts.encode.direct(torch.rand(4, 1, 8, 8), steps=6)
v_fold, _ = net(xs)
v_step, _ = per_step(xs)
g_fold = torch.autograd.grad(v_fold.square().sum(), net.parameters())
g_step = torch.autograd.grad(v_step.square().sum(), per_step.parameters())
print("max |output difference|:", (v_fold - v_step).abs().max().item())
diffs = [(a - b).abs().max().item() for a, b in zip(g_fold, g_step, strict=True)]
print("max |gradient difference|:", max(diffs))

# %% [markdown]
# A module with data-dependent control flow is run step by step, and `explain` says why:


# %%
class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(64, 10), ts.LIF(0.9)

    def forward(self, x):
        h = self.fc(x.flatten(1))
        if h.mean() > 0:  # depends on the data: must see one step at a time
            h = 2 * h
        z, _ = self.lif(h)
        return z


print(ts.SpikingNet(Gated()).explain())

# %% [markdown]
# ## The same network as a list of layers
#
# Without a custom `forward`, a list of layers and neurons does the same. Stateless layers
# (convolutions, pooling, batch normalisation, dropout) run once on all steps; each neuron runs
# over its sequence. This is the form of the `conv-mnist` recipe's network
# (`torchspike.models.convolutional`).


# %%
def conv_net(beta=0.9):
    return ts.SpikingNet(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        ts.LIF(beta),
        nn.Conv2d(8, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        ts.LIF(beta),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
        ts.LIF(beta, output="membrane"),
    )


print(conv_net().explain())

# %% [markdown]
# ## Training on the digits
#
# Both networks train the same way; we train the module version with the membrane
# cross-entropy loss, 6 steps of direct input.

# %%
x_train, y_train = load("digits", "train")
x_test, y_test = load("digits", "test")
steps = 6


def accuracy(net, x, y, steps, batch=500):
    net.eval()
    with torch.no_grad():
        pred = torch.cat(
            [
                net(ts.encode.direct(x[i : i + batch], steps))[0].sum(0).argmax(1)
                for i in range(0, len(x), batch)
            ]
        )
    net.train()
    return pred, (pred == y).float().mean().item()


net = ts.SpikingNet(ConvSNN())
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
for epoch in range(4):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 64):
        idx = perm[i : i + 64]
        v, _ = net(ts.encode.direct(x_train[idx], steps))
        loss = ts.loss.ce_membrane_sum(v, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = accuracy(net, x_test, y_test, steps)[1]
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {acc:.3f}")

# %% [markdown]
# ## Looking at the spiking feature maps
#
# `net.trace` records the neurons inside a module too (named `"0.lif1"`, ... after the layer
# index and the attribute). The first conv layer's spikes, channel by channel, over the steps
# of one test image (in full mode: the `conv-mnist` run on an MNIST test image):

# %%
if FULL:
    net, config = ts.load_run(recipe_run("conv-mnist"))
    steps = config.steps
    x_test, y_test = load("mnist", "test", DATA)
    print(net)

_, records = net.trace(ts.encode.direct(x_test[:1], steps))
name = next(iter(records))  # the first neuron layer
maps = records[name]["out"][:, 0]  # [T, C, H, W]
channels = min(maps.shape[1], 8)
fig, axes = plt.subplots(steps, channels + 1, figsize=(1.4 * (channels + 1), 1.4 * steps))
for t in range(steps):
    axes[t][0].imshow(x_test[0, 0], cmap="gray")
    axes[t][0].set_ylabel(f"step {t}")
    for c in range(channels):
        axes[t][c + 1].imshow(maps[t, c], cmap="gray_r", vmin=0, vmax=1)
        if t == 0:
            axes[t][c + 1].set_title(f"ch {c}", fontsize=8)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
fig.suptitle(f"layer {name}: spikes of the first {channels} channels (label {int(y_test[0])})")
show(fig, "feature_spikes")

# %% [markdown]
# ## Test accuracy and confusion matrix

# %%
pred, acc = accuracy(net, x_test, y_test, steps)
print(f"test accuracy {acc:.4f} on {len(y_test)} images")
matrix = torch.zeros(10, 10, dtype=torch.long)
matrix.index_put_((y_test, pred), torch.ones_like(pred), accumulate=True)
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
# ```sh
# torchspike train --recipe conv-mnist --data-dir ../shared/data --out runs/conv-mnist
# torchspike eval runs/conv-mnist
# ```
#
# More on modules with neurons inside (residual blocks, branches, recurrent loops through
# `Feedback`): the guide *Any PyTorch module, run over time* (`docs/modules.md`).

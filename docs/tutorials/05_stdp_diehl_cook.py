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
# # Unsupervised learning with STDP: Diehl & Cook's network
#
# Spike-timing-dependent plasticity (STDP) changes a synapse by the timing of the spikes on its
# two sides, with no labels and no gradient. Diehl & Cook (2015) showed that a single layer of
# excitatory neurons with STDP, adaptive thresholds and lateral inhibition learns digit
# prototypes from MNIST, each neuron's weights becoming its *receptive field*. This tutorial
# applies an STDP rule to an ordinary layer, then trains the Diehl & Cook network.
#
# - **small** (default): the rule on a few synapses, then 36 neurons on the 8x8 digits;
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the recipes `diehl-cook-100` (seed 0,
#   83.40% recorded) and `diehl-cook-400` (89.51% recorded) read back from
#   `$TORCHSPIKE_RUNS/diehl-cook-100-s0` and `$TORCHSPIKE_RUNS/diehl-cook-400` (trained by
#   `torchspike train --recipe ...` when missing: 14-35 minutes each).

# %%
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from torchspike import stdp
from torchspike.data import load
from torchspike.stdp import plot as stdp_plot

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
# ## An STDP rule on an ordinary layer
#
# `stdp.STDP(layer, ...)` works on any `nn.Linear` or `nn.Conv2d`. At each step it decays a
# trace of the input spikes (`x`, time constant `tau_pre`) and one of the output spikes (`y`,
# `tau_post`), and changes the weights by
#
# ```text
# dw = nu_post * s_post (x) x  -  nu_pre * y (x) s_pre
# ```
#
# an output spike potentiates the synapses whose input fired shortly before it; an input spike
# depresses the synapses of outputs that fired shortly before it. `step` writes `-dw` into
# `layer.weight.grad`, so any torch optimiser applies it (`SGD(lr=1)` gives `w += dw`).
#
# The classic STDP window: one output neuron fires at step 60, each of 81 inputs fires once,
# input `k` at `60 - dt_k` with `dt_k` from -40 to 40 steps. The change of each synapse is a
# function of `dt_k`:

# %%
shifts = torch.arange(-40, 41)
T = 121
pres = torch.zeros(T, 1, len(shifts))
pres[60 - shifts, 0, torch.arange(len(shifts))] = 1.0
posts = torch.zeros(T, 1, 1)
posts[60, 0, 0] = 1.0

fig, ax = plt.subplots(figsize=(6, 3.5))
for tau_pre, tau_post in [(20.0, 20.0), (10.0, 30.0)]:
    layer = nn.Linear(len(shifts), 1, bias=False)
    rule = stdp.STDP(layer, nu_pre=1e-2, nu_post=1e-2, tau_pre=tau_pre, tau_post=tau_post)
    dw, _ = rule.run(pres, posts)  # summed over the steps; layer.weight.grad holds -dw
    ax.plot(shifts, dw[0], "o-", ms=3, label=f"tau_pre={tau_pre:g}, tau_post={tau_post:g}")
ax.axhline(0, color="gray", lw=0.8)
ax.axvline(0, color="gray", lw=0.8)
ax.set(xlabel="t_post - t_pre (steps)", ylabel="dw", title="STDP window (nu_pre = nu_post)")
ax.legend(fontsize=8)
show(fig, "stdp_window")

# %% [markdown]
# An input that fires in the same step as the output cannot have caused it (it drives the
# neuron from the next step on), so that pairing depresses. Other options: `trace="add"`
# (all-to-all pairing instead of nearest-spike), `tau_post2` (Diehl & Cook's slow post trace),
# `bound="soft"` (weight-dependent updates) and `w_min`/`w_max` with `rule.clamp_()` after the
# optimiser step.
#
# ## The Diehl & Cook network
#
# Poisson inputs (one per pixel, rate proportional to brightness) drive `N` excitatory
# conductance-based LIF neurons through plastic weights; each excitatory neuron excites one
# inhibitory neuron, which inhibits all the other excitatory neurons (winner-take-all).
# Each spike raises the neuron's threshold a little (`theta`), so no neuron wins every image,
# and each neuron's weights are normalised to a fixed sum before an image. After training,
# every neuron is given the class it fired most for, and a test image is classified by the
# mean response of each class's neurons.
#
# `stdp.fit(config, train, test)` runs all of it; `STDPConfig` holds the run's settings and
# `params` overrides the model's (`DiehlCookParams`: the published code's values). On the
# digits, 36 neurons, one epoch:

# %%
x_train, y_train = load("digits", "train")
x_test, y_test = load("digits", "test")
config = stdp.STDPConfig(n_neurons=36, batch_size=64, update_interval=400, seed=0)
result = stdp.fit(config, (x_train, y_train), (x_test, y_test))
metrics = result.metrics
print(f"trained on {int(metrics['train_presentations'])} presentations "
      f"in {metrics['train_time_s']:.0f} s")  # fmt: skip
print(f"test accuracy: {metrics['test_accuracy_all']:.3f} (all-neuron vote), "
      f"{metrics['test_accuracy_proportion']:.3f} (proportion-weighted vote)")  # fmt: skip
runs = {"digits, 36 neurons": (result.state, metrics)}

# %% [markdown]
# In full mode the recipes' trained states are read back with `stdp.load_state` (STDP runs
# have no torch model, so `torchspike.load_run` does not apply; the weights, thresholds and
# class assignments are in `model.safetensors`), with the metrics their runs recorded.

# %%
if FULL:
    for recipe, folder in [("diehl-cook-100", "diehl-cook-100-s0"), ("diehl-cook-400", None)]:
        path = recipe_run(recipe, folder, *(["--seed", "0"] if folder else []))
        state, run_config = stdp.load_state(path / "model.safetensors")
        metrics = json.loads((path / "metrics.json").read_text())
        runs[f"{recipe}, MNIST"] = (state, metrics)
        print(f"{recipe}: {run_config.n_neurons} neurons, test accuracy "
              f"{metrics['test_accuracy_all']:.4f} (all-neuron vote), "
              f"{metrics['test_accuracy_proportion']:.4f} (proportion-weighted)")  # fmt: skip

# %% [markdown]
# ## Receptive fields
#
# Each neuron's input weights, drawn as an image, show the prototype it has learnt, and its
# assigned class (`torchspike.stdp.plot` draws both on the caller's axes):

# %%
for name, (state, metrics) in runs.items():
    shape = tuple(int(s) for s in state["input_shape"].tolist())
    size = 4 + len(state["theta"]) // 60
    fig, (ax_f, ax_a) = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    stdp_plot.receptive_fields(state["weight"], shape, ax_f)
    stdp_plot.assignments(state["assignment"], ax=ax_a)
    ax_f.set_title(f"{name}: receptive fields")
    ax_a.set_title(f"class assignments (test accuracy {metrics['test_accuracy_all']:.1%})")
    show(fig, "fields_" + name.split(",")[0].replace(" ", "_"))

# %% [markdown]
# ## Accuracy during training
#
# While learning, the network records its accuracy on each window of `update_interval`
# training images under the class assignment of the window before (the first window has none).

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, (state, _) in runs.items():
    h = state["history"]  # [windows, 4]: images seen, accuracy all / proportion, spikes
    if len(h) > 1:
        ax.plot(h[1:, 0], 100 * h[1:, 1], "o-", label=name)
ax.set(xlabel="training images", ylabel="accuracy on the window (%)", xscale="log")
ax.set_title("accuracy over training (all-neuron vote)")
ax.legend(fontsize=8)
show(fig, "accuracy")

# %% [markdown]
# ## From the command line
#
# ```sh
# torchspike train --recipe diehl-cook-100 --data-dir ../shared/data --out runs/diehl-cook-100
# torchspike train --recipe diehl-cook-400 --data-dir ../shared/data --out runs/diehl-cook-400
# torchspike plot runs/diehl-cook-100     # receptive fields, class assignments, accuracy
# ```
#
# How this implementation compares with the paper and Diehl's code, point by point, and what
# batching the images changes: the STDP guide (`docs/stdp.md`).

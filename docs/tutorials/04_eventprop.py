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
# # EventProp: exact gradients, from one layer to deep and recurrent networks
#
# EventProp (Wunderlich & Pehle 2021) computes the exact gradient of a spiking network's loss
# from the spike times alone: the forward pass records the spikes, the backward pass runs the
# adjoint dynamics backwards in time and jumps at the recorded spikes. No surrogate is
# involved, and memory grows with the number of spikes, not with the number of time steps.
# `torchspike.eventprop` implements it for current-based LIF (CubaLIF) layers; this tutorial
# follows the path of pytorch-eventprop (one layer on MNIST), then goes deeper and recurrent,
# and checks every gradient against finite differences on the way.
#
# - **small** (default): the checks, the digits with one layer, and Yin-Yang on a subset;
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the recipes `eventprop-seed` (784-10 on
#   MNIST, 88.33% recorded) and `eventprop-yinyang` (5-200-3, seed 0, 97.70% recorded), read
#   from `$TORCHSPIKE_RUNS/eventprop-seed` and `$TORCHSPIKE_RUNS/eventprop-yinyang-s0`.

# %%
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

import torchspike as ts
from torchspike import eventprop as ep
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
# ## One layer
#
# Spikes travel between EventProp layers as lists of events, `ep.Spikes`: each spike has a
# continuous time, the step that contains it, its sample and its neuron. `ep.from_times` makes
# one input spike per entry of a `[B, N]` tensor of times (`inf`: no spike); here a latency code,
# bright inputs first. `ep.LIFLayer(n_in, n_out)` is a layer of CubaLIF neurons
# (`tau_syn dI/dt = -I + W s(t)`, `tau_mem dV/dt = -V + I`, spike and reset to 0 at `v_th`),
# simulated exactly over steps of `dt`, with each output spike time interpolated inside its step.

# %%
dt, steps = 1e-3, 30
times = 2e-3 + ts.encode.latency_times(torch.rand(1, 20), 15e-3)  # [B=1, 20 inputs]
spikes_in = ep.from_times(times, steps=steps, dt=dt)
layer = ep.LIFLayer(20, 5, init_mean=0.6, init_std=0.3)
spikes_out = layer(spikes_in)
print(layer)
print("input spikes:", len(spikes_in.times), "| output spikes:", len(spikes_out.times))
print(
    "output (neuron, time ms):",
    [
        (int(u), round(1e3 * float(t), 3))
        for u, t in zip(spikes_out.unit, spikes_out.times.detach(), strict=True)
    ],
)

# %% [markdown]
# The same neurons without a threshold, `ep.LIReadout(..., readout="trace")`, return the
# voltage at every step, which shows what the spiking layer integrates:

# %%
readout = ep.LIReadout(20, 5, readout="trace")
with torch.no_grad():
    readout.weight.copy_(layer.weight)
    v = readout(spikes_in)  # [T, B, 5]
fig, (ax_in, ax_v) = plt.subplots(1, 2, figsize=(10, 3))
ax_in.scatter(1e3 * spikes_in.times.detach(), spikes_in.unit, s=8, c="k")
ax_in.set(xlabel="time (ms)", ylabel="input neuron", title="input spikes (latency code)")
for n in range(5):
    (line,) = ax_v.plot(1e3 * dt * torch.arange(1, steps + 1), v[:, 0, n].detach(), label=f"{n}")
    first = spikes_out.times[spikes_out.unit == n].detach()
    ax_v.plot(1e3 * first, [layer.v_th] * len(first), "v", color=line.get_color())
ax_v.axhline(layer.v_th, color="gray", ls="--", lw=1)
ax_v.set(xlabel="time (ms)", ylabel="V without threshold", title="voltages; marks: spike times")
ax_v.legend(fontsize=7, title="neuron", title_fontsize=7)
show(fig, "one_layer")

# %% [markdown]
# ## The gradient is exact: a sweep
#
# Take the first-spike loss of pytorch-eventprop (`ep.first_spike_loss`: cross-entropy over
# negative first-spike times, plus a term that pulls the correct neuron earlier), and move one
# weight. The loss is smooth between the points where a hidden or output spike appears or
# disappears (there its slope jumps), and the EventProp gradient is its exact slope: the
# finite-difference slope of the sweep lies on it everywhere except at those points.

# %%
torch.set_default_dtype(torch.float64)  # the checks below work in float64
torch.manual_seed(3)
times = 2e-3 + torch.rand(2, 8) * 15e-3
target = torch.tensor([0, 2])
layer = ep.LIFLayer(8, 3, init_mean=1.2, init_std=0.6)


def loss_of(model, times):
    out = model(ep.from_times(times, steps=steps, dt=dt))
    return ep.first_spike_loss(out, target, tau_syn=5e-3, xi=0.4, alpha=0.01, beta=2.0)


w = layer.weight
base = w[0, 1].item()
grid = base + torch.linspace(-0.6, 0.6, 241)
loss_values, grads = [], []
for value in grid:
    with torch.no_grad():
        w[0, 1] = value
    layer.zero_grad()
    loss = loss_of(layer, times)
    loss.backward()
    loss_values.append(loss.item())
    grads.append(w.grad[0, 1].item())
with torch.no_grad():
    w[0, 1] = base
fd_slope = torch.gradient(torch.tensor(loss_values), spacing=(grid,))[0]
fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(10, 3))
ax_l.plot(grid, loss_values)
ax_l.set(xlabel="weight W[0, 1]", ylabel="loss", title="loss along one weight")
ax_g.plot(grid, fd_slope, lw=3, alpha=0.4, label="slope of the sweep (finite differences)")
ax_g.plot(grid, grads, "k", lw=1, label="EventProp gradient")
ax_g.set(xlabel="weight W[0, 1]", ylabel="dloss / dW[0, 1]", title="gradient along the sweep")
ax_g.legend(fontsize=7)
show(fig, "sweep")

# %% [markdown]
# ## A finite-difference check
#
# A systematic check perturbs each parameter by `+-eps` and compares the central difference with
# the gradient. It is valid only where no spike appears, disappears or changes step within the
# perturbation, so the check compares the spike pattern too and skips entries where it changes.


# %%
def pattern(model, times):
    """Every layer's spikes (step, sample, neuron) and, for a max read-out, each maximum's step."""
    x, out = ep.from_times(times, steps=steps, dt=dt), []
    for layer in model:
        if isinstance(layer, ep.LIReadout) and layer.readout == "max":
            out.append(ep.li_readout(x, layer.weight, layer.kernel, "trace").argmax(0).tolist())
        x = layer(x)
        if isinstance(x, ep.Spikes):
            out.append((x.step.tolist(), x.batch.tolist(), x.unit.tolist()))
    return out


def fd_check(model, times, loss_fn, eps=1e-6, per_tensor=6):
    """Largest relative error between EventProp and central differences, and entries checked."""
    times = times.clone().requires_grad_(True)
    model.zero_grad()
    loss_fn(model, times).backward()
    ref = pattern(model, times)
    worst, checked = 0.0, 0
    for p in [*model.parameters(), times]:
        flat, grad = p.detach().view(-1), p.grad.view(-1)
        for i in torch.randperm(p.numel())[:per_tensor].tolist():
            old, values = flat[i].item(), []
            for sign in (1, -1):
                flat[i] = old + sign * eps
                with torch.no_grad():
                    same = pattern(model, times) == ref
                    values.append(loss_fn(model, times).item() if same else None)
            flat[i] = old
            if None in values:
                continue  # a spike moved to another step: the loss jumps there
            fd = (values[0] - values[1]) / (2 * eps)
            worst = max(worst, abs(fd - grad[i].item()) / max(abs(fd), 1e-8))
            checked += 1
    return worst, checked


one = nn.Sequential(layer)
worst, checked = fd_check(one, times, loss_of)
print(f"one layer: max relative error {worst:.1e} over {checked} entries")

# %% [markdown]
# The check covers the input spike times too (`times` is the last tensor checked): EventProp
# also returns `dL/dt_in`, which is what lets a layer send its error to the layer below.
#
# ## Deeper, and recurrent
#
# Layers chain with `nn.Sequential`. A hidden `LIFLayer(..., recurrent=True)` adds a recurrent
# weight matrix `w_rec`; its spikes reach the other neurons of its layer from the next step's
# threshold test on. An `LIReadout` with `readout="max"` (the maximum voltage over time) and
# `ep.voltage_ce` is Wunderlich & Pehle's MNIST loss.


# %%
def voltage_loss(model, times):
    return ep.voltage_ce(model(ep.from_times(times, steps=steps, dt=dt)), target)


torch.manual_seed(0)
deep = nn.Sequential(
    ep.LIFLayer(8, 12, init_mean=1.5, init_std=0.8),
    ep.LIFLayer(12, 10, init_mean=1.2, init_std=0.8),
    ep.LIFLayer(10, 3, init_mean=1.5, init_std=0.8),
)
recurrent = nn.Sequential(
    ep.LIFLayer(8, 12, recurrent=True, init_mean=1.5, init_std=0.8, rec_std=0.5),
    ep.LIReadout(12, 3, readout="max"),
)
for name, model, fn in [
    ("3 spiking layers, first-spike loss", deep, loss_of),
    ("recurrent hidden layer, max-voltage loss", recurrent, voltage_loss),
]:
    worst, checked = fd_check(model, times, fn)
    spikes_per_layer = [len(p[0]) for p in pattern(model, times) if isinstance(p, tuple)]
    print(
        f"{name}: max relative error {worst:.1e} over {checked} entries;"
        f" spikes per layer {spikes_per_layer}"
    )
torch.set_default_dtype(torch.float32)

# %% [markdown]
# The errors are those of float64 rounding and of the difference quotient: the gradients are
# the exact derivatives of the discrete model that the forward pass computes (see the
# EventProp guide, `docs/eventprop.md`, for the equations and what "exact" covers). The test
# suite (`tests/test_eventprop.py`) runs the same check on every loss.
#
# ## Training one layer: the pytorch-eventprop setting
#
# pytorch-eventprop trains a single 784-10 layer on MNIST: each pixel spikes once, early for
# ink (`binary_t_min`) and late for background (`binary_t_max`), and the class is the output
# neuron that fires first. `ep.fit(config, train, val)` runs the application's training loop on
# tensors. On the 8x8 digits:

# %%
x_train, y_train = load("digits", "train")
x_val, y_val = load("digits", "validation")
x_test, y_test = load("digits", "test")
seed_config = dict(
    encoding="binary-time", hidden=0, loss="ttfs", duration=40e-3, binary_t_min=10e-3,
    binary_t_max=20e-3, init=[[0.3, 0.1]], lr=1e-2, rescue_silent=0.1, epochs=8, batch_size=32,
)  # fmt: skip
model, history = ep.fit(seed_config, (x_train, y_train), (x_val, y_val), log=None)
print(model)
print(f"digits, one layer: test accuracy {ep.evaluate(model, x_test, y_test, seed_config):.3f}")


def curves(history, title):
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(9, 3))
    epochs = [h["epoch"] for h in history]
    ax_l.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_l.set(xlabel="epoch", ylabel="training loss", title=title)
    ax_a.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    ax_a.plot(epochs, [h["validation_accuracy"] for h in history], "s-", label="validation")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title=title)
    ax_a.legend(fontsize=8)
    return fig


if FULL:  # the recipe's run on MNIST, read back
    model, config = ts.load_run(recipe_run("eventprop-seed"))
    options = config.library()  # the run's settings as an ep.Config
    x_test, y_test = load("mnist", "test", DATA)
    print(f"eventprop-seed run: test accuracy {ep.evaluate(model, x_test, y_test, options):.4f}")
    history = json.loads((RUNS / "eventprop-seed" / "metrics.json").read_text())["epochs"]
    seed_config = options
show(curves(history, "one layer, first-spike loss"), "seed_curves")

# %% [markdown]
# The output spike times of a few test samples: the label's neuron (thick) fires first.

# %%
with torch.no_grad():
    first = ep.first_spike_times(
        model(ep.train.encode(x_test[:200], ep.Config.from_dict(seed_config)))
    )
fig, ax = plt.subplots(figsize=(8, 3))
for c in range(10):
    ax.scatter(torch.arange(12), 1e3 * first[:12, c], s=[60 if y == c else 10 for y in y_test[:12]],
               label=str(c))  # fmt: skip
ax.set(
    xlabel="test sample", ylabel="first spike (ms)", title="output first-spike times (big: label)"
)
ax.legend(fontsize=6, ncol=5)
show(fig, "first_spikes")

# %% [markdown]
# ## A hidden layer on Yin-Yang
#
# The Yin-Yang data set (generated, three classes in the plane) is the EventProp paper's
# benchmark: each point `(x, y)` becomes four latency-coded inputs `(x, y, 1-x, 1-y)` plus a bias
# spike, a hidden layer of 200 CubaLIF neurons, and a spiking output trained with the
# first-spike loss. The settings are the recipe's (`torchspike recipes eventprop-yinyang`); the
# small mode trains on 1,500 points for a few epochs.

# %%
yy_config = dict(
    encoding="latency", hidden=200, loss="ttfs", dt=0.5e-3, duration=30e-3, latency_start=1e-3,
    latency_end=29e-3, bias_spike=True, init=[[1.5, 0.78], [0.93, 0.1]], xi=0.1, alpha=3e-3,
    beta=1.28, lr=5e-3, lr_decay=0.95, epochs=4, batch_size=32, keep_best=True,
)  # fmt: skip
x_train, y_train = load("yinyang", "train")
x_val, y_val = load("yinyang", "validation")
x_test, y_test = load("yinyang", "test")
if FULL:
    model, config = ts.load_run(
        recipe_run("eventprop-yinyang", "eventprop-yinyang-s0", "--seed", "0")
    )
    yy_config = config.library()
    history = json.loads((RUNS / "eventprop-yinyang-s0" / "metrics.json").read_text())["epochs"]
else:
    model, history = ep.fit(yy_config, (x_train[:1500], y_train[:1500]), (x_val, y_val), log=None)
acc = ep.evaluate(model, x_test, y_test, yy_config)
print(f"Yin-Yang: test accuracy {acc:.4f}")
show(curves(history, "Yin-Yang, 5-200-3"), "yinyang_curves")

# %%
with torch.no_grad():
    out = model(ep.train.encode(x_test, ep.Config.from_dict(yy_config)))
    pred = ep.predict(out, "ttfs")
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, labels, title in [
    (axes[0], y_test, "true class"),
    (axes[1], pred, f"prediction ({acc:.1%})"),
]:
    ax.scatter(x_test[:, 0], x_test[:, 1], c=labels, cmap="viridis", s=6)
    ax.set(xlabel="x", ylabel="y", title=title, aspect="equal")
wrong = pred != y_test
axes[1].scatter(x_test[wrong, 0], x_test[wrong, 1], marker="x", c="red", s=15, label="wrong")
axes[1].legend(fontsize=7, loc="upper right")
show(fig, "yinyang")

# %% [markdown]
# ## From the command line
#
# ```sh
# torchspike train --recipe eventprop-seed --data-dir ../shared/data --out runs/eventprop-seed
# torchspike train --recipe eventprop-yinyang --seed 0 --out runs/eventprop-yinyang-s0
# torchspike train --recipe eventprop-mnist --data-dir ../shared/data   # 784-350-10, max voltage
# ```
#
# A recurrent hidden layer from the command line: `--recurrent` (with any EventProp recipe);
# settings without a flag go in a `--config` TOML file.

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
# # Training on several processes
#
# `torchrun` starts one process per worker; `torchspike train` joins the process group it
# describes (gloo on the CPU, nccl on GPUs) and wraps the model in `DistributedDataParallel`.
# The batch size stays the *global* batch: each of the W workers takes every W-th row of it
# and each worker's loss is weighted by its share, so one step of W workers is the step of one
# process on the same batch. This tutorial checks that claim by training the same recipe both
# ways and comparing the weights.
#
# - **small** (default): the `digits` recipe for 2 epochs, two gloo processes on the CPU;
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the same with the recipe's 15 epochs.
#
# The commands run here through `subprocess`, as you would type them in a shell.

# %%
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

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
# ## One process, then two
#
# ```sh
# torchspike train --recipe digits --out runs/one
# torchrun --standalone --nproc_per_node=2 -m torchspike train --recipe digits --out runs/two
# ```
#
# Under `torchrun`, `--out` is required (every worker must write to the same folder, and only
# rank 0 writes). `--threads 1` keeps each process on one core.

# %%
folder = Path(tempfile.mkdtemp())
epochs = "15" if FULL else "2"
common = ["train", "--recipe", "digits", "--epochs", epochs, "--threads", "1"]
single = [sys.executable, "-m", "torchspike", *common, "--out", str(folder / "one")]
torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
double = [*torchrun, "-m", "torchspike", *common, "--out", str(folder / "two")]
wall = {}
for name, cmd in (("one process", single), ("two processes", double)):
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall[name] = time.perf_counter() - start
    print("$", " ".join(["python", *cmd[1:]]))
    print(done.stdout[-600:] or done.stderr[-600:])
    done.check_returncode()

# %% [markdown]
# ## The same model?
#
# Both runs read back with `ts.load_run`. After a step or two their weights agree to float32
# rounding: the two workers sum their gradients in another order than one process does. Over
# many steps such rounding differences grow, as between any two summation orders in a spiking
# network (a membrane that sits a rounding error from the threshold spikes in one run and not
# in the other): after the recipe's 15 epochs (full mode) the weights differ by a few 1e-3,
# and the test accuracies by a fraction of a point.

# %%
one, config = ts.load_run(folder / "one")
two, _ = ts.load_run(folder / "two")
for (name, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items(), strict=True):
    if a.is_floating_point():
        diff, size = (a - b).abs().max().item(), a.abs().max().item()
        print(f"{name:18s} max |difference| {diff:.2e} (max |w| {size:.2f})")

x, y = load("digits", "test")
accuracies = {}
with torch.no_grad():
    for name, model in (("one process", one), ("two processes", two)):
        v, _ = model(ts.encode.direct(x, config.steps))
        accuracies[name] = (v.sum(0).argmax(1) == y).float().mean().item()
print("test accuracy:", {k: round(v, 4) for k, v in accuracies.items()})

# %% [markdown]
# The learning curves, from each run's `metrics.json`, lie on top of each other:

# %%
fig, ax = plt.subplots(figsize=(6, 3))
for name, marker in (("one", "o-"), ("two", "x--")):
    history = json.loads((folder / name / "metrics.json").read_text())["epochs"]
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], marker, label=f"{name} process(es)")
ax.set(xlabel="epoch", ylabel="training loss", title="digits recipe: 1 vs 2 workers")
ax.legend(fontsize=8)
show(fig, "one_vs_two")
print(
    {k: f"{v:.1f} s" for k, v in wall.items()},
    "(two processes pay for starting twice on a small task)",
)

# %% [markdown]
# ## Several machines, GPUs
#
# On two machines with 4 workers each (run the same command on both, with the first
# machine's address), on GPUs:
#
# ```sh
# torchrun --nnodes=2 --nproc_per_node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST0:29500 \
#     --rdzv-id=myrun -m torchspike train --recipe fc-mnist --device cuda --out runs/fc8
# ```
#
# What differs from one process: `--encoding rate` draws its random spikes per worker (another
# random stream than one process), and batch normalisation normalises each worker's rows. A
# batch with fewer rows than workers still works (a worker without rows takes part with a
# zero-weight row). `--resume` continues a distributed run the same way.

# %%
shutil.rmtree(folder)

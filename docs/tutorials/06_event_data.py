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
# # Event data: N-MNIST, frames for BPTT and exact times for EventProp
#
# An event camera reports, for each pixel, the moments its brightness changes: a list of events
# `(t, x, y, polarity)` with microsecond times instead of frames. N-MNIST (Orchard et al. 2015)
# recorded the MNIST digits with such a camera moving in three saccades. This tutorial reads
# N-MNIST files, bins their events into frames for a convolutional network trained by BPTT, and
# feeds every event at its exact time to an EventProp network.
#
# - **small** (default): a few synthetic recordings, written in N-MNIST's exact file format
#   into a temporary folder from the 8x8 digits (no download, no real data);
# - **full** (`TORCHSPIKE_TUTORIAL=full` or `--full`): the real 1,100-recording subset in
#   `$TORCHSPIKE_DATA/n-mnist-small` and the recipes `nmnist-conv` (seed 0, 94% recorded) and
#   `nmnist-eventprop` read back from `$TORCHSPIKE_RUNS/nmnist-conv-s0` and
#   `$TORCHSPIKE_RUNS/nmnist-eventprop-sum`.

# %%
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

import torchspike as ts
from torchspike import eventprop as ep
from torchspike.data import events as ev
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
# ## The file format, and a few synthetic recordings
#
# An N-MNIST file `Train/<label>/<id>.bin` is a list of 5-byte events with no header: x (8
# bits), y (8 bits), then polarity (1 bit, 1 = ON) and a 23-bit timestamp in microseconds,
# big-endian. The sensor is 34 x 34 pixels.
#
# For the small mode we make recordings of our own in that format: each 8x8 digit, scaled up to
# 28 x 28 on the 34 x 34 sensor, moves along three saccades (a triangle) over 300 ms; a pixel
# emits an ON event when the image at it brightens by more than a threshold since its last
# event, and OFF when it darkens, at a random time within the 10 ms frame. (The camera does the
# same, continuously.)


# %%
def write_nmnist(path, t, x, y, p):
    """Events (integer arrays, t in microseconds) as an N-MNIST .bin file."""
    t = t.long()
    raw = torch.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], dim=1).to(
        torch.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.numpy().tobytes())


def saccade_events(image, gen, frames=30, frame_us=10_000, threshold=0.15):
    """Events of a 28x28 image moving along a triangle of 3 saccades over the 34x34 sensor."""
    sensor = torch.zeros(frames + 1, 34, 34)
    path = [(0, 0), (3, 3), (6, 0), (0, 0)]  # three straight saccades, in pixels
    for k in range(frames + 1):
        seg, frac = divmod(3 * k / frames, 1.0)
        (x0, y0), (x1, y1) = path[int(seg)], path[min(int(seg) + 1, 3)]
        dx, dy = round(x0 + frac * (x1 - x0)), round(y0 + frac * (y1 - y0))
        sensor[k, dy : dy + 28, dx : dx + 28] = image
    ref = sensor[0].clone()  # the brightness at each pixel's last event
    ts_, xs_, ys_, ps_ = [], [], [], []
    for k in range(1, frames + 1):
        change = sensor[k] - ref
        for polarity, mask in ((1, change > threshold), (0, change < -threshold)):
            yy, xx = mask.nonzero(as_tuple=True)
            t = (k - 1) * frame_us + torch.randint(0, frame_us, (len(xx),), generator=gen)
            ts_.append(t), xs_.append(xx), ys_.append(yy), ps_.append(torch.full_like(xx, polarity))
        fired = change.abs() > threshold
        ref[fired] = sensor[k][fired]
    t, x, y, p = (torch.cat(a) for a in (ts_, xs_, ys_, ps_))
    order = torch.argsort(t)
    return t[order], x[order], y[order], p[order]


def synthetic_nmnist(root, per_class_train=20, per_class_test=5):
    gen = torch.Generator().manual_seed(0)
    images, labels = load("digits", "train+validation")
    images = nn.functional.interpolate(images, size=(28, 28), mode="bilinear")
    for split, per_class, offset in (
        ("Train", per_class_train, 0),
        ("Test", per_class_test, per_class_train),
    ):
        for label in range(10):
            picks = (labels == label).nonzero().flatten()[offset : offset + per_class]
            for n, i in enumerate(picks.tolist()):
                events = saccade_events(images[i, 0], gen)
                write_nmnist(Path(root) / split / str(label) / f"{n + 1:05d}.bin", *events)
    return Path(root)


if FULL:
    root = Path(DATA) / "n-mnist-small"
else:
    import tempfile

    root = synthetic_nmnist(Path(tempfile.mkdtemp()) / "n-mnist")
print("data:", root)

# %% [markdown]
# ## Reading events
#
# `ev.load("n-mnist", split, folder)` reads a split lazily (a file is parsed the first time it
# is asked for); a sample is `(Events, label)`, with the events in integer tensors `t` (us),
# `x`, `y`, `p`. `ev.plot_events` draws a recording as frames (ON red, OFF blue).

# %%
train = ev.load("n-mnist", "train", root)
test = ev.load("n-mnist", "test", root)
events, label = train[0]
print(train)
print(f"sample 0: label {label}, {len(events)} events over {events.duration / 1000:.0f} ms")
print(
    "first events (t us, x, y, p):",
    torch.stack([events.t, events.x, events.y, events.p], 1)[:4].tolist(),
)
fig, ax = plt.subplots(figsize=(11, 2))
ev.plot_events(events, ax, bins=8, label=label)
show(fig, "events")

# %% [markdown]
# ## Frames for a convolutional network (BPTT)
#
# `ev.batches(dataset, batch_size)` yields `(EventBatch, labels)`: the events of a mini-batch
# in flat tensors, never a dense array of the data set. `ev.to_frames(batch, bins=8,
# duration=300_000)` counts each batch's events in 8 bins of 37.5 ms: `[T, B, 2, 34, 34]`, the
# time-first input of a `SpikingNet`. The network is the `nmnist-conv` recipe's, smaller.

# %%
steps, duration = 8, 300_000
net = ts.SpikingNet(
    nn.Conv2d(2, 8, 5, stride=2, bias=False),
    nn.BatchNorm2d(8),
    ts.LIF(0.95),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(8 * 7 * 7, 10),
    ts.LIF(0.95, output="membrane"),
)


def frame_accuracy(net, dataset):
    net.eval()
    correct = 0
    with torch.no_grad():
        for batch, labels in ev.batches(dataset, 100):
            v, _ = net(ev.to_frames(batch, bins=steps, duration=duration))
            correct += (v.sum(0).argmax(1) == labels).sum().item()
    net.train()
    return correct / len(dataset)


opt = torch.optim.Adam(net.parameters(), lr=5e-3)
gen = torch.Generator().manual_seed(0)
for epoch in range(4):
    for batch, labels in ev.batches(train, 20, shuffle=True, generator=gen):
        v, _ = net(ev.to_frames(batch, bins=steps, duration=duration))
        loss = ts.loss.ce_membrane_sum(v, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {frame_accuracy(net, test):.3f}")

if FULL:  # the recipe's network, trained on the real recordings
    net, config = ts.load_run(
        recipe_run("nmnist-conv", "nmnist-conv-s0", "--seed", "0", data=str(root))
    )
    print(net)
    print(
        f"nmnist-conv run: test accuracy {frame_accuracy(net, test):.3f} on {len(test)} recordings"
    )

# %% [markdown]
# The first layer's spikes for one test recording, step by step:

# %%
events, label = test[0]
frames = ev.to_frames(ev.batch([events]), bins=steps, duration=duration)
_, records = net.trace(frames)
first = next(iter(records))
fig, axes = plt.subplots(3, steps, figsize=(1.5 * steps, 4.6))
for t in range(steps):
    axes[0][t].imshow(frames[t, 0, 1] - frames[t, 0, 0], cmap="bwr_r", vmin=-2, vmax=2)
    axes[0][t].set_title(
        f"{t * duration // steps // 1000}-{(t + 1) * duration // steps // 1000} ms", fontsize=7
    )
    for row, c in ((1, 0), (2, 1)):
        axes[row][t].imshow(records[first]["out"][t, 0, c], cmap="gray_r", vmin=0, vmax=1)
axes[0][0].set_ylabel("events")
axes[1][0].set_ylabel("channel 0")
axes[2][0].set_ylabel("channel 1")
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
fig.suptitle(f"a test recording (label {label}): its frames and the first layer's spikes")
show(fig, "frames_spikes")

# %% [markdown]
# ## Exact event times for EventProp
#
# Binning loses the timing inside a bin. EventProp takes each event as an input spike at its
# own time: `ev.to_spike_times(batch, dt=1e-3, steps=100)` gives `ep.Spikes` over the
# `2 x 34 x 34 = 2312` input units (numbered as the flattened frame), here for the first
# saccade (100 ms; later events are dropped). The network is the `nmnist-eventprop` recipe's,
# smaller: a hidden layer of CubaLIF neurons and a leaky read-out whose voltage summed over time
# is the class score (`readout="sum"`: the error reaches every step, where the maximum of a
# long recording sees only one). The weights start with mean zero: with the default init
# (tuned for MNIST's 784 latency spikes) every hidden neuron would fire at every step on a few
# thousand events, and with too narrow an init none fires and nothing learns. Aim for some tens
# of hidden spikes per recording: the recipe's std is 0.1 on the camera's recordings; our
# synthetic ones have fewer events and take 0.3.

# %%
dt, ep_steps = 1e-3, 100
torch.manual_seed(0)
ep_net = nn.Sequential(
    ep.LIFLayer(2312, 100, init_mean=0.0, init_std=0.3),
    ep.LIReadout(100, 10, readout="sum", init_mean=0.0, init_std=0.3),
)
batch, _ = next(ev.batches(train, 20))
with torch.no_grad():
    spikes = ev.to_spike_times(batch, dt=dt, steps=ep_steps)
    hidden = ep_net[0](spikes)
n_in, n_hidden = len(spikes.times) / 20, len(hidden.times) / 20
print(f"per recording: {n_in:.0f} input events, {n_hidden:.0f} hidden spikes")


def event_accuracy(model, dataset):
    correct = 0
    with torch.no_grad():
        for batch, labels in ev.batches(dataset, 100):
            out = model(ev.to_spike_times(batch, dt=dt, steps=ep_steps))
            correct += (out.argmax(1) == labels).sum().item()
    return correct / len(dataset)


opt = torch.optim.Adam(ep_net.parameters(), lr=2e-2)
for epoch in range(3):
    for batch, labels in ev.batches(train, 20, shuffle=True, generator=gen):
        loss = ep.voltage_ce(ep_net(ev.to_spike_times(batch, dt=dt, steps=ep_steps)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(
        f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {event_accuracy(ep_net, test):.3f}"
    )

if FULL:
    path = recipe_run("nmnist-eventprop", "nmnist-eventprop-sum", data=str(root))
    ep_net, config = ts.load_run(path)
    dt, ep_steps = config.dt, config.library().steps  # the run's own time step and window
    print(ep_net)
    print(f"nmnist-eventprop run: test accuracy {event_accuracy(ep_net, test):.3f}")

# %% [markdown]
# The read-out voltages of a few test recordings over time (`LIReadout(readout="trace")` with
# the trained weights): the class is the neuron whose voltage has the largest sum over time; the
# label's neuron is drawn thick.

# %%
head = ep_net[-1]
trace = ep.LIReadout(head.in_features, head.out_features, readout="trace", dt=head.kernel.dt)
trace.kernel = head.kernel
trace.weight = head.weight
picks = torch.linspace(0, len(test) - 1, 4).long().tolist()  # the test set is sorted by label
batch, labels = ev.collate([test[i] for i in picks])
with torch.no_grad():
    hidden = ep_net[:-1](ev.to_spike_times(batch, dt=dt, steps=ep_steps))
    v, pred = trace(hidden), head(hidden).argmax(1)
fig, axes = plt.subplots(1, 4, figsize=(13, 3), sharey=True)
for s, ax in enumerate(axes):
    for c in range(10):
        ax.plot(
            1e3 * dt * torch.arange(len(v)),
            v[:, s, c],
            lw=2.5 if c == labels[s] else 0.8,
            label=str(c),
        )
    ax.set(
        xlabel="time (ms)",
        title=f"label {int(labels[s])}, predicted {int(pred[s])}",
    )
axes[0].set_ylabel("read-out voltage")
axes[-1].legend(fontsize=6, ncol=2)
show(fig, "readout_voltages")

# %% [markdown]
# ## From the command line
#
# ```sh
# torchspike train --recipe nmnist-conv --data-dir ../shared/data/n-mnist-small
# torchspike train --recipe nmnist-eventprop --data-dir ../shared/data/n-mnist-small
# torchspike plot RUN    # also events.png: a test recording and its prediction
# ```
#
# SHD/SSC (audio, `shd_train.h5`...) and DVS Gesture load the same way
# (`ev.load("shd", "train", folder)`); augmentations (`ev.random_shift`, `ev.time_jitter`,
# `ev.drop_events`, ...) take a `torch.Generator`; tonic data sets come in through
# `ev.from_tonic`. See the event-data guide (`docs/events.md`).

# %%
if not FULL:  # the synthetic recordings are not needed any more
    shutil.rmtree(root.parent)

"""Pictures of one sample's events: a raster (time x unit) or a strip of frames."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .container import EventBatch, Events, batch
from .transforms import to_frames, units


def _title(label: str | int | None, prediction: str | int | None) -> str:
    parts = []
    if label is not None:
        parts.append(f"label {label}")
    if prediction is not None:
        parts.append(f"predicted {prediction}")
    return ", ".join(parts)


def plot_events(
    events: Events,
    ax=None,
    *,
    kind: str = "strip",
    bins: int = 8,
    label: str | int | None = None,
    prediction: str | int | None = None,
    path: str | os.PathLike | None = None,
):
    """Draw ``events`` on ``ax`` (a matplotlib Axes) or, with ``path``, into a new PNG there.

    ``kind="strip"``: ``bins`` frames side by side, ON events red and OFF events blue (audio:
    a channel x bin image). ``kind="raster"``: one dot per event, time (ms) against the flat
    unit (audio: the channel). Returns the Axes.
    """
    if kind not in ("strip", "raster"):
        raise ValueError(f"kind must be 'strip' or 'raster', got {kind!r}")
    if (ax is None) == (path is None):
        raise ValueError("give exactly one of ax (draw there) or path (write a PNG)")
    if path is not None:
        from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

        fig = Figure(figsize=(max(4.0, 1.2 * bins), 2.2) if kind == "strip" else (6, 4))
        ax = fig.add_subplot()
    sensor = events.sensor
    if kind == "raster":
        u = units(_one(events))
        colour = ["tab:blue", "tab:red"]
        c = [colour[int(p) % 2] for p in events.p] if sensor.polarities > 1 else "k"
        ax.scatter(events.t.double().numpy() / 1e3, u.numpy(), s=1, c=c, linewidths=0)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("channel" if sensor.is_audio else "unit (p, y, x)")
    else:
        frames = to_frames(events, bins=bins)[:, 0]
        if sensor.is_audio:
            ax.imshow(
                frames.T.numpy(),
                aspect="auto",
                origin="lower",
                cmap="Greys",
                interpolation="nearest",
            )
            ax.set_xlabel("time bin")
            ax.set_ylabel("channel")
        else:
            off = frames[:, 0]
            on = frames[:, 1] if sensor.polarities > 1 else torch.zeros_like(off)
            scale = float(torch.stack([on, off]).max().clamp(min=1))
            on, off = on / scale, off / scale  # white; ON events red, OFF events blue
            rgb = torch.stack([1 - off, 1 - on - off, 1 - on], dim=-1).clamp(0, 1)
            strip = torch.cat(list(rgb), dim=1)  # [H, bins * W, 3]
            ax.imshow(strip.numpy(), interpolation="nearest")
            for k in range(1, bins):
                ax.axvline(k * sensor.width - 0.5, color="0.5", lw=0.5)
            ax.set_xticks(
                [(k + 0.5) * sensor.width for k in range(bins)], [str(k) for k in range(bins)]
            )
            ax.set_yticks([])
            ax.set_xlabel("time bin")
    title = _title(label, prediction)
    if title:
        ax.set_title(title)
    if path is not None:
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=120)
    return ax


def _one(events: Events) -> EventBatch:
    return batch([events])

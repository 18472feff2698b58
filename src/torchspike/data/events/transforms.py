"""Events to network input: frames ``[T, B, ...]``, binary spikes, or exact spike times.

Time bins: with ``bin_width`` (us), bin ``k`` holds ``k * bin_width <= t < (k + 1) * bin_width``
and ``T = ceil(duration / bin_width)``; with ``bins``, ``T = bins`` and each bin is
``duration / bins`` wide, or, without ``duration``, each sample's own span from its first to its
last event is cut into ``bins`` equal bins (``k = floor((t - t_first) * bins / (t_last - t_first
+ 1))``). ``duration`` defaults to the batch's last event + 1 us; later events are dropped.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...eventprop.spikes import Spikes, from_events
from .container import EventBatch, Events, batch


def _as_batch(events: EventBatch | Events) -> EventBatch:
    return batch([events]) if isinstance(events, Events) else events


def units(events: EventBatch) -> Tensor:
    """Flat input unit of each event: ``(p * H + y) * W + x`` (the channel for audio)."""
    w, h, _ = events.sensor
    return (events.p.long() * h + events.y.long()) * w + events.x.long()


def time_bins(
    events: EventBatch | Events,
    *,
    bins: int | None = None,
    bin_width: float | None = None,
    duration: float | None = None,
) -> tuple[Tensor, int]:
    """Bin index of each event (``-1``: outside the window) and the number of bins ``T``."""
    events = _as_batch(events)
    if (bins is None) == (bin_width is None):
        raise ValueError("give exactly one of bins (a number of time bins) or bin_width (us)")
    if bins is not None and (not isinstance(bins, int) or bins < 1):
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if bin_width is not None and not bin_width > 0:
        raise ValueError(f"bin_width must be > 0 us, got {bin_width!r}")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be > 0 us, got {duration!r}")
    t = events.t
    if duration is None and bins is not None:
        b = events.batch_size
        big = torch.iinfo(torch.int64).max
        first = torch.full((b,), big, dtype=torch.int64, device=t.device)
        first = first.scatter_reduce(0, events.sample, t, "amin")
        last = torch.zeros(b, dtype=torch.int64, device=t.device)
        last = last.scatter_reduce(0, events.sample, t, "amax")
        t0 = first[events.sample]
        span = (last - first + 1)[events.sample]
        return torch.div((t - t0) * bins, span, rounding_mode="floor"), bins
    if duration is None:
        duration = int(t.max()) + 1 if len(t) else 1
    if bins is not None:
        steps, k = bins, torch.floor(t.double() * bins / duration).long()
    else:
        steps, k = math.ceil(duration / bin_width), torch.floor(t.double() / bin_width).long()
    k[(t >= duration) | (k >= steps)] = -1
    return k, steps


def to_frames(
    events: EventBatch | Events,
    *,
    bins: int | None = None,
    bin_width: float | None = None,
    duration: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Event counts per time bin and unit: ``[T, B, P, H, W]`` (camera) or ``[T, B, C]`` (audio)."""
    events = _as_batch(events)
    k, steps = time_bins(events, bins=bins, bin_width=bin_width, duration=duration)
    n_units = events.sensor.units
    flat = (k * events.batch_size + events.sample) * n_units + units(events)
    if len(k) and int(k.min()) < 0:
        flat = flat[k >= 0]
    frames = torch.zeros(steps * events.batch_size * n_units, dtype=dtype, device=flat.device)
    frames.index_add_(0, flat, torch.ones(len(flat), dtype=dtype, device=flat.device))
    return frames.view(steps, events.batch_size, *events.sensor.shape)


def to_spikes(
    events: EventBatch | Events,
    *,
    bins: int | None = None,
    bin_width: float | None = None,
    duration: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Binary spikes for the sparse input path: 1 where a bin holds any event, else 0."""
    frames = to_frames(events, bins=bins, bin_width=bin_width, duration=duration, dtype=dtype)
    return (frames > 0).to(dtype)


def to_spike_times(
    events: EventBatch | Events,
    *,
    dt: float,
    steps: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Spikes:
    """Exact input spikes for EventProp: each event keeps its own time ``t * 1e-6`` seconds.

    ``dt`` is the integration step in seconds; ``steps`` defaults to enough to hold the batch's
    last event. Events at or after ``steps * dt`` are dropped. Units are numbered as in
    :func:`units`, i.e. as the flattened frame.
    """
    events = _as_batch(events)
    times = events.t.double() * 1e-6
    if steps is None:
        steps = max(1, math.floor(float(times.max()) / dt) + 1) if len(times) else 1
    return from_events(
        times.to(dtype),
        events.sample,
        units(events),
        batch_size=events.batch_size,
        units=events.sensor.units,
        steps=steps,
        dt=dt,
    )

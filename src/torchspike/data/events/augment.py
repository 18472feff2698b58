"""Augmentations and reductions of one sample's events (``Events -> Events``).

Random ones take a ``torch.Generator`` for reproducibility; all keep times sorted and every
event on the sensor (events pushed off it are dropped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .container import Events, Sensor


def compose(*transforms: Callable[[Events], Events]) -> Callable[[Events], Events]:
    """Apply ``transforms`` left to right."""

    def apply(events: Events) -> Events:
        for f in transforms:
            events = f(events)
        return events

    return apply


def denoise(events: Events, *, window: float) -> Events:
    """Keep an event only if one of its 8 neighbouring pixels (any polarity) had an event in the
    ``window`` us up to and including its time: isolated events are sensor noise."""
    if not len(events):
        return events
    w, h, _ = events.sensor
    t, x, y = events.t, events.x.long(), events.y.long()
    pixel = y * w + x
    span = int(t.max()) + 1
    key = pixel * span + t
    key_sorted, _ = torch.sort(key)
    keep = torch.zeros(len(t), dtype=torch.bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx == dy == 0:
                continue
            nx, ny = x + dx, y + dy
            inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
            q = (ny * w + nx) * span + t
            j = torch.searchsorted(key_sorted, q, right=True) - 1
            found = key_sorted[j.clamp(min=0)]
            near = (j >= 0) & (torch.div(found, span, rounding_mode="floor") == ny * w + nx)
            keep |= inside & near & (t - found % span <= window)
    return events.select(keep)


def downsample(events: Events, *, spatial: int = 1, temporal: int = 1) -> Events:
    """Pixels ``(x, y) -> (x // spatial, y // spatial)`` on a ``ceil(W / spatial)`` sensor, and
    times rounded down to a multiple of ``temporal`` us."""
    for name, f in (("spatial", spatial), ("temporal", temporal)):
        if not isinstance(f, int) or f < 1:
            raise ValueError(f"{name} must be a positive int, got {f!r}")
    w, h, n_p = events.sensor
    sensor = Sensor(
        math.ceil(w / spatial), h if events.sensor.is_audio else math.ceil(h / spatial), n_p
    )
    return Events(
        events.t // temporal * temporal,
        events.x // spatial,
        events.y // spatial,
        events.p,
        sensor,
    )


def crop(events: Events, *, x0: int, y0: int, width: int, height: int) -> Events:
    """The events inside the window at ``(x0, y0)`` of ``width x height`` pixels, moved to its
    origin, on a sensor of that size."""
    x, y = events.x, events.y
    keep = (x >= x0) & (x < x0 + width) & (y >= y0) & (y < y0 + height)
    ev = events.select(keep)
    sensor = Sensor(width, height, events.sensor.polarities)
    return Events(ev.t, ev.x - x0, ev.y - y0, ev.p, sensor)


def random_crop(
    events: Events, size: Sequence[int], *, generator: torch.Generator | None = None
) -> Events:
    """:func:`crop` to ``size = (width, height)`` at a uniformly random position."""
    width, height = size
    w, h, _ = events.sensor
    if not (0 < width <= w and 0 < height <= h):
        raise ValueError(f"crop size {tuple(size)} must fit the sensor {(w, h)}")
    x0 = int(torch.randint(w - width + 1, (1,), generator=generator))
    y0 = int(torch.randint(h - height + 1, (1,), generator=generator))
    return crop(events, x0=x0, y0=y0, width=width, height=height)


def shift(events: Events, *, dx: int, dy: int) -> Events:
    """Move every event by ``(dx, dy)`` pixels; events that leave the sensor are dropped."""
    w, h, _ = events.sensor
    x, y = events.x + dx, events.y + dy
    keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    return Events(events.t[keep], x[keep], y[keep], events.p[keep], events.sensor)


def random_shift(
    events: Events, max_shift: int, *, generator: torch.Generator | None = None
) -> Events:
    """:func:`shift` by ``dx, dy`` drawn uniformly from ``[-max_shift, max_shift]``."""
    d = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return shift(events, dx=d[0], dy=0 if events.sensor.is_audio else d[1])


def time_jitter(events: Events, std: float, *, generator: torch.Generator | None = None) -> Events:
    """Add Gaussian noise of ``std`` us to each time (rounded, clipped at 0, then re-sorted)."""
    noise = torch.randn(len(events), generator=generator, dtype=torch.float64) * std
    t = torch.round(events.t.double() + noise).clamp_(min=0).long()
    return _sorted(events, t)


def time_scale(events: Events, factor: float) -> Events:
    """Times multiplied by ``factor`` (> 0), rounded to whole microseconds."""
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")
    return events.replace(t=torch.round(events.t.double() * factor).long())


def random_time_scale(
    events: Events, low: float, high: float, *, generator: torch.Generator | None = None
) -> Events:
    """:func:`time_scale` by a factor drawn uniformly from ``[low, high]``."""
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return time_scale(events, low + (high - low) * u)


def drop_events(events: Events, p: float, *, generator: torch.Generator | None = None) -> Events:
    """Drop each event independently with probability ``p``."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    return events.select(torch.rand(len(events), generator=generator) >= p)


def _sorted(events: Events, t: torch.Tensor) -> Events:
    order = torch.argsort(t, stable=True)
    return Events(t[order], events.x[order], events.y[order], events.p[order], events.sensor)

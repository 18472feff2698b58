"""Events as data: one sample's events, a batch of samples, and the checks every reader runs.

A sample is four 1-d tensors of equal length, sorted by time: ``t`` (int64, microseconds from
the sample's start), ``x``, ``y`` (int16, pixel) and ``p`` (int8, polarity), over a ``Sensor``
of ``width x height`` pixels and ``polarities`` polarities. Audio (SHD, SSC) uses the same
container with ``x`` the channel and ``height = polarities = 1``. A batch concatenates its
samples' events and adds ``sample``, the index of each event's sample: memory stays proportional
to the number of events, never to ``T x H x W``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class EventFileError(ValueError):
    """A data file that cannot be read as events (truncated, corrupt, out of range): the message
    is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)


class Sensor(NamedTuple):
    """Sensor size: ``width`` pixels (or audio channels), ``height`` and ``polarities``."""

    width: int
    height: int = 1
    polarities: int = 1

    @property
    def is_audio(self) -> bool:
        return self.height == 1 and self.polarities == 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one frame: ``(channels,)`` for audio, else ``(polarities, height, width)``."""
        return (self.width,) if self.is_audio else (self.polarities, self.height, self.width)

    @property
    def units(self) -> int:
        """Number of input units, ``prod(shape)``: unit ``(p * height + y) * width + x``."""
        return self.width * self.height * self.polarities


@dataclass(frozen=True, eq=False)
class Events:
    """One sample: ``t`` (int64, us), ``x``, ``y`` (int16), ``p`` (int8), ``[E]``, time-sorted,
    on ``sensor`` (a :class:`Sensor`)."""

    t: Tensor
    x: Tensor
    y: Tensor
    p: Tensor
    sensor: Sensor

    @property
    def channel(self) -> Tensor:
        """The audio channel (an alias of ``x``)."""
        return self.x

    @property
    def duration(self) -> int:
        """Time of the last event + 1 us (0 when empty)."""
        return int(self.t[-1]) + 1 if len(self.t) else 0

    def __len__(self) -> int:
        return len(self.t)

    def replace(self, **changes) -> Events:
        """A copy with some fields replaced (unchecked)."""
        return dataclasses.replace(self, **changes)

    def select(self, keep: Tensor) -> Events:
        """The events where ``keep`` (a bool mask or sorted indices) holds."""
        return Events(self.t[keep], self.x[keep], self.y[keep], self.p[keep], self.sensor)

    def nbytes(self) -> int:
        return sum(a.element_size() * a.numel() for a in (self.t, self.x, self.y, self.p))


def make_events(
    t: np.ndarray | Tensor,
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor | None,
    p: np.ndarray | Tensor | None,
    sensor: Sensor | Sequence[int],
    *,
    source: str | os.PathLike = "<events>",
) -> Events:
    """Events in the container's dtypes, checked (``source`` names the file in errors)."""
    sensor = Sensor(*sensor)
    t = torch.as_tensor(np.asarray(t)).to(torch.int64)
    n = len(t)
    x = torch.as_tensor(np.asarray(x))
    y = torch.zeros(n, dtype=torch.int16) if y is None else torch.as_tensor(np.asarray(y))
    p = torch.zeros(n, dtype=torch.int8) if p is None else torch.as_tensor(np.asarray(p))
    for name, a in (("x", x), ("y", y), ("p", p)):
        if a.shape != t.shape:
            raise EventFileError(source, f"{name} has {tuple(a.shape)} entries, t has {n}")
    events = Events(t, x, y, p, sensor)
    check(events, source)
    return Events(t, x.to(torch.int16), y.to(torch.int16), p.to(torch.int8), sensor)


def check(events: Events, source: str | os.PathLike = "<events>") -> Events:
    """Raise :class:`EventFileError` for events outside the sensor, negative or unsorted times."""
    if not len(events):
        return events
    w, h, n_p = events.sensor
    for name, a, size in (("x", events.x, w), ("y", events.y, h), ("polarity", events.p, n_p)):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= size:
            what = "channel" if name == "x" and events.sensor.is_audio else name
            raise EventFileError(
                source,
                f"{what} must lie in [0, {size}) for sensor {tuple(events.sensor)}, "
                f"got [{lo}, {hi}]",
            )
    t = events.t
    if int(t.min()) < 0:
        raise EventFileError(source, f"negative time {int(t.min())} us")
    back = torch.nonzero(t[1:] < t[:-1])
    if len(back):
        i = int(back[0])
        raise EventFileError(
            source,
            f"times are not sorted: event {i + 1} at {int(t[i + 1])} us follows {int(t[i])} us",
        )
    return events


@dataclass(frozen=True, eq=False)
class EventBatch:
    """Samples' events concatenated: ``sample`` ``[E]`` (int64) says which of the ``batch_size``
    samples each is from; all on one ``sensor``."""

    t: Tensor
    x: Tensor
    y: Tensor
    p: Tensor
    sample: Tensor
    batch_size: int
    sensor: Sensor

    def __len__(self) -> int:
        return len(self.t)

    def to(self, device: torch.device | str) -> EventBatch:
        moved = {k: getattr(self, k).to(device) for k in ("t", "x", "y", "p", "sample")}
        return dataclasses.replace(self, **moved)


def batch(samples: Sequence[Events]) -> EventBatch:
    """Concatenate samples (all on one sensor) into an :class:`EventBatch`."""
    if not samples:
        raise ValueError("batch needs at least one sample")
    sensor = samples[0].sensor
    for s in samples:
        if s.sensor != sensor:
            raise ValueError(f"samples come from different sensors: {sensor} and {s.sensor}")
    sizes = torch.tensor([len(s) for s in samples])
    sample = torch.repeat_interleave(torch.arange(len(samples)), sizes)
    cat = [torch.cat([getattr(s, k) for s in samples]) for k in "txyp"]
    return EventBatch(*cat, sample, len(samples), sensor)


def unbatch(events: EventBatch) -> list[Events]:
    """The samples of a batch, in order (inverse of :func:`batch`)."""
    counts = torch.bincount(events.sample, minlength=events.batch_size).tolist()
    parts = [torch.split(getattr(events, k), counts) for k in "txyp"]
    return [Events(*(part[i] for part in parts), events.sensor) for i in range(events.batch_size)]


def collate(items: Sequence[tuple[Events, int]]) -> tuple[EventBatch, Tensor]:
    """``collate_fn`` for a ``torch.utils.data.DataLoader`` over an event dataset."""
    return batch([e for e, _ in items]), torch.tensor([int(label) for _, label in items])

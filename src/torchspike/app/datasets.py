"""The data sets the application trains on: static sets (tensors) and event sets (read lazily,
batched as events, turned into network input by the method), behind one interface.

A source has ``len()``, ``labels`` ``[N]`` and ``take(rows) -> (inputs, labels)``: a tensor
``[B, ...]`` for a static set, a :class:`torchspike.data.events.EventBatch` for an event set.
"""

from __future__ import annotations

import os
from typing import Any

from torch import Tensor

from .. import data
from ..data import events as ev

STATIC = data.DATASETS
EVENTS = ev.DATASETS
ALL = (*STATIC, *EVENTS)
_EVENT_CLASSES = {"n-mnist": 10, "shd": 20, "ssc": 35, "dvs-gesture": 11}


def is_events(name: str) -> bool:
    return name in EVENTS


def input_shape(name: str) -> tuple[int, ...]:
    """One sample's shape as the network sees it (an event set: its sensor's frame)."""
    return tuple(ev.sensor(name).shape) if is_events(name) else data.input_shape(name)


def num_classes(name: str) -> int:
    return _EVENT_CLASSES[name] if is_events(name) else data.num_classes(name)


class Tensors:
    """A static split: ``x`` ``[N, ...]`` in [0, 1] and labels ``y`` ``[N]``."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.labels = x, y

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[rows], self.labels[rows]


class EventSource:
    """An event split: samples are read (and kept in memory) the first time they are taken."""

    def __init__(self, dataset: ev.EventDataset) -> None:
        self.dataset, self.labels = dataset, dataset.labels

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: Tensor) -> tuple[ev.EventBatch, Tensor]:
        return ev.batch([self.dataset.events(int(i)) for i in rows]), self.labels[rows]


Source = Tensors | EventSource


def load(name: str, split: str, data_dir: str | os.PathLike | None) -> Source | None:
    """``split`` of data set ``name``; an event set without that split gives None."""
    if not is_events(name):
        return Tensors(*data.load(name, split, data_dir))
    if data_dir is None:
        raise ValueError(f"--data-dir is needed for the event data set {name!r}")
    wanted = {"validation": ("validation", "valid")}.get(split, (split,))
    for s in wanted:
        if s in ev.splits(name):
            return EventSource(ev.load(name, s, data_dir))
    return None


def as_source(pair: Any) -> Source:
    """A source from a ``(x, y)`` pair (or a source, unchanged)."""
    if isinstance(pair, Tensors | EventSource):
        return pair
    x, y = pair
    return Tensors(x, y)

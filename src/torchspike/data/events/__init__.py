"""Event data: readers (N-MNIST, SHD/SSC, DVS Gesture), batching, transforms, augmentations.

``load(name, split, data_dir) -> EventDataset`` of ``(Events, label)`` samples, read lazily;
``collate`` / ``batches`` make an ``EventBatch`` of a mini-batch, and ``to_frames``,
``to_spikes`` or ``to_spike_times`` turn it into network input::

    from torchspike.data import events as ev

    train = ev.load("n-mnist", "train", "data/n-mnist")
    for batch, labels in ev.batches(train, 64, shuffle=True):
        xs = ev.to_frames(batch, bin_width=10_000, duration=300_000)  # [30, 64, 2, 34, 34]
        spikes = ev.to_spike_times(batch, dt=1e-3, steps=300)           # EventProp input

Data folders (``data_dir``):

- ``n-mnist``: the unpacked ``Train.zip`` and ``Test.zip``: ``Train/<label>/<id>.bin``,
  ``Test/<label>/<id>.bin``; splits ``train``, ``test``.
- ``shd``: ``shd_train.h5``, ``shd_test.h5``; ``ssc``: ``ssc_train.h5``, ``ssc_valid.h5``,
  ``ssc_test.h5`` (unzipped from https://zenkelab.org/datasets/; needs h5py).
- ``dvs-gesture``: the unpacked ``DvsGesture.tar.gz``: ``userNN_<lighting>.aedat``, their
  ``_labels.csv`` and ``trials_to_train.txt`` / ``trials_to_test.txt``; splits ``train``, ``test``.

One's own data: ``EventDataset(labels, read, sensor=..., classes=...)`` with ``read(i)``
returning :func:`make_events` of sample ``i``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from . import augment, gesture, heidelberg, nmnist
from .augment import (
    compose,
    crop,
    denoise,
    downsample,
    drop_events,
    random_crop,
    random_shift,
    random_time_scale,
    shift,
    time_jitter,
    time_scale,
)
from .container import (
    EventBatch,
    EventFileError,
    Events,
    Sensor,
    batch,
    check,
    collate,
    make_events,
    unbatch,
)
from .dataset import EventDataset, batches
from .interop import TonicDataset, events_from_structured, from_tonic, to_structured
from .plot import plot_events
from .transforms import time_bins, to_frames, to_spike_times, to_spikes, units

__all__ = [
    "DATASETS",
    "EventBatch",
    "EventDataset",
    "EventFileError",
    "Events",
    "Sensor",
    "TonicDataset",
    "augment",
    "batch",
    "batches",
    "check",
    "collate",
    "compose",
    "crop",
    "denoise",
    "downsample",
    "drop_events",
    "events_from_structured",
    "from_tonic",
    "gesture",
    "heidelberg",
    "load",
    "make_events",
    "nmnist",
    "plot_events",
    "random_crop",
    "random_shift",
    "random_time_scale",
    "sensor",
    "shift",
    "splits",
    "time_bins",
    "time_jitter",
    "time_scale",
    "to_frames",
    "to_spike_times",
    "to_spikes",
    "to_structured",
    "unbatch",
    "units",
]

DATASETS = ("n-mnist", "shd", "ssc", "dvs-gesture")
_SENSORS = {
    "n-mnist": nmnist.SENSOR,
    "shd": heidelberg.SENSOR,
    "ssc": heidelberg.SENSOR,
    "dvs-gesture": gesture.SENSOR,
}
_SPLITS = {
    "n-mnist": tuple(nmnist.SPLIT_FOLDERS),
    "shd": heidelberg.SPLITS["shd"],
    "ssc": heidelberg.SPLITS["ssc"],
    "dvs-gesture": tuple(gesture.SPLIT_LISTS),
}


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"event data set must be one of {list(DATASETS)}, got {name!r}")


def sensor(name: str) -> Sensor:
    """The sensor of data set ``name`` (known before any file is read)."""
    _check_name(name)
    return _SENSORS[name]


def splits(name: str) -> tuple[str, ...]:
    """The published splits of data set ``name``."""
    _check_name(name)
    return _SPLITS[name]


def load(
    name: str,
    split: str,
    data_dir: str | os.PathLike,
    *,
    transform: Callable[[Events], Events] | None = None,
    cache: bool = True,
) -> EventDataset:
    """Data set ``name`` (one of :data:`DATASETS`), ``split``, from the files under ``data_dir``.

    Labels are read at once, events when a sample is first asked for; with ``cache`` they stay
    in memory after that. ``transform`` (``Events -> Events``) runs on every access.
    """
    _check_name(name)
    kwargs = {"transform": transform, "cache": cache}
    if name == "n-mnist":
        return nmnist.dataset(data_dir, split, **kwargs)
    if name == "dvs-gesture":
        return gesture.dataset(data_dir, split, **kwargs)
    return heidelberg.dataset(data_dir, name, split, **kwargs)

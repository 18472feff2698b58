"""N-MNIST (Orchard et al. 2015): ``Train|Test/<label>/<id>.bin``, 5-byte events, no header.

Each event is 40 bits, big-endian: x (8 bits), y (8 bits), polarity (1 bit, 1 = ON) and a
23-bit timestamp in microseconds. An event with ``y == 240`` is not an event but a timestamp
overflow marker: every later timestamp gains ``2**13`` us. Sensor: 34 x 34 pixels, 2 polarities.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from .container import EventFileError, Events, Sensor, make_events
from .dataset import EventDataset

SENSOR = Sensor(34, 34, 2)
CLASSES = [str(d) for d in range(10)]
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
_OVERFLOW_Y = 240
_OVERFLOW_STEP = 1 << 13


def read(path: str | os.PathLike) -> Events:
    """Events of one N-MNIST ``.bin`` file, checked (errors name the file)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 5:
        raise EventFileError(
            path,
            f"{raw.size} bytes is not a whole number of 5-byte N-MNIST events "
            "(truncated or not an N-MNIST file)",
        )
    raw = raw.reshape(-1, 5)
    x, y = raw[:, 0], raw[:, 1]
    t = (
        (raw[:, 2].astype(np.int64) & 0x7F) << 16
        | raw[:, 3].astype(np.int64) << 8
        | raw[:, 4].astype(np.int64)
    )
    overflow = y == _OVERFLOW_Y
    if overflow.any():
        t = t + np.cumsum(overflow) * _OVERFLOW_STEP
        keep = ~overflow
        raw, x, y, t = raw[keep], x[keep], y[keep], t[keep]
    p = raw[:, 2] >> 7
    return make_events(t, x, y, p, SENSOR, source=path)


def files(root: str | os.PathLike, split: str) -> tuple[list[Path], list[int]]:
    """The ``.bin`` files of a split and their labels (from the folder names), in sorted order."""
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"N-MNIST split must be one of {list(SPLIT_FOLDERS)}, got {split!r}")
    folder = Path(root) / SPLIT_FOLDERS[split]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no N-MNIST {split} folder; data_dir must hold Train/<label>/<id>.bin "
            "and Test/<label>/<id>.bin (the layout of the published Train.zip and Test.zip)"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label in range(10):
        sub = folder / str(label)
        if sub.is_dir():
            found = sorted(sub.glob("*.bin"))
            paths += found
            labels += [label] * len(found)
    if not paths:
        raise FileNotFoundError(f"{folder}: no <label>/<id>.bin files")
    return paths, labels


def dataset(root: str | os.PathLike, split: str, **kwargs) -> EventDataset:
    """The N-MNIST ``split`` (``train`` or ``test``) under ``root``, read lazily."""
    paths, labels = files(root, split)
    return EventDataset(
        labels,
        partial(_read_one, paths),
        sensor=SENSOR,
        classes=CLASSES,
        name=f"n-mnist {split}",
        **kwargs,
    )


def _read_one(paths: list[Path], i: int) -> Events:
    return read(paths[i])

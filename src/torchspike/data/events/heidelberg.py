"""SHD and SSC (Cramer et al. 2020): one HDF5 file per split, 700 cochlea channels.

Published layout: ``spikes/times`` (one variable-length float16 array per sample, seconds),
``spikes/units`` (variable-length uint16, the channel of each spike), ``labels`` (uint16) and
``extra/`` (``keys``: the class names, ``speaker``, ...). Files: ``shd_train.h5``,
``shd_test.h5``; ``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5``. h5py is needed
(``pip install h5py``) and imported only here. Times become whole microseconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .container import EventFileError, Events, Sensor, make_events
from .dataset import EventDataset

SENSOR = Sensor(700)
SPLITS = {"shd": ("train", "test"), "ssc": ("train", "valid", "test")}
NUM_CLASSES = {"shd": 20, "ssc": 35}


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is in the dev extra
        raise ImportError("reading SHD/SSC needs h5py: pip install h5py") from e
    return h5py


class _File:
    """An HDF5 file opened on first use in each process (handles do not survive a fork)."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None
        self._pid = -1

    def __getstate__(self) -> dict:
        return {"path": self.path, "_handle": None, "_pid": -1}

    def get(self):
        if self._handle is None or self._pid != os.getpid():
            self._handle = _open(self.path)
            self._pid = os.getpid()
        return self._handle

    def __call__(self, i: int) -> Events:
        f = self.get()
        try:
            times = np.asarray(f["spikes/times"][i], dtype=np.float64)
            units = np.asarray(f["spikes/units"][i])
        except (OSError, KeyError, ValueError) as e:
            raise EventFileError(self.path, f"cannot read sample {i}: {e}") from None
        if len(times) != len(units):
            raise EventFileError(
                self.path, f"sample {i} has {len(times)} spike times but {len(units)} units"
            )
        if not np.isfinite(times).all():
            raise EventFileError(self.path, f"sample {i} has a non-finite spike time")
        t = np.rint(times * 1e6)
        return make_events(
            t, units.astype(np.int64), None, None, SENSOR, source=f"{self.path} (sample {i})"
        )


def _open(path: Path):
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise EventFileError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {e}"
        ) from None
    for name in ("spikes/times", "spikes/units", "labels"):
        if name not in f:
            raise EventFileError(
                path,
                f"no dataset {name!r}; SHD/SSC files hold spikes/times, spikes/units and labels",
            )
    n = (len(f["spikes/times"]), len(f["spikes/units"]), len(f["labels"]))
    if len(set(n)) != 1:
        raise EventFileError(
            path, f"spikes/times, spikes/units and labels have {n[0]}, {n[1]} and {n[2]} entries"
        )
    return f


def file_path(root: str | os.PathLike, name: str, split: str) -> Path:
    """``<root>/<name>_<split>.h5`` (``validation`` is SSC's ``valid``)."""
    if name not in SPLITS:
        raise ValueError(f"name must be one of {list(SPLITS)}, got {name!r}")
    split = "valid" if split == "validation" else split
    if split not in SPLITS[name]:
        raise ValueError(f"{name} split must be one of {list(SPLITS[name])}, got {split!r}")
    path = Path(root) / f"{name}_{split}.h5"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; download {name}_{split}.h5.zip from "
            "https://zenkelab.org/datasets/ and unzip it into data_dir"
        )
    return path


def read_file(path: str | os.PathLike, *, name: str = "shd", **kwargs) -> EventDataset:
    """The samples of one SHD/SSC HDF5 file, read lazily (labels and class names up front)."""
    path = Path(path)
    reader = _File(path)
    f = reader.get()
    labels = np.asarray(f["labels"][()], dtype=np.int64)
    n_classes = NUM_CLASSES.get(name, int(labels.max(initial=-1)) + 1)
    classes = [str(c) for c in range(n_classes)]
    if "extra/keys" in f:
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]]
        if len(keys) == n_classes:
            classes = keys
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise EventFileError(
            path, f"labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]"
        )
    return EventDataset(
        labels, reader, sensor=SENSOR, classes=classes, name=f"{name} {path.stem}", **kwargs
    )


def dataset(root: str | os.PathLike, name: str, split: str, **kwargs) -> EventDataset:
    """SHD (``train``, ``test``) or SSC (``train``, ``valid``, ``test``) under ``root``."""
    return read_file(file_path(root, name, split), name=name, **kwargs)

"""Data sets as tensors: ``load(name, split) -> (x, y)``.

``x`` is float32 in [0, 1], ``[N, 1, H, W]`` for images or ``[N, 4]`` for Yin-Yang; ``y`` is int64.
Splits are ``train``, ``validation`` (held out from the training data), ``test`` and
``train+validation``. For MNIST and Fashion-MNIST the validation split is a fixed stratified
5,000-image (1/12) subset of the 60,000 training images and ``train`` is the other 55,000.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from . import digits, idx, yinyang
from .idx import default_data_dir, download, read_images, read_labels
from .yinyang import generate, yinyang_class

__all__ = [
    "DATASETS",
    "SPLITS",
    "default_data_dir",
    "download",
    "generate",
    "input_shape",
    "load",
    "num_classes",
    "read_images",
    "read_labels",
    "yinyang_class",
]

DATASETS = ("digits", "mnist", "fashion-mnist", "yinyang")
SPLITS = ("train", "validation", "test", "train+validation")
_NUM_CLASSES = {"digits": 10, "mnist": 10, "fashion-mnist": 10, "yinyang": 3}
_INPUT_SHAPE = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "yinyang": (4,),
}
IDX_VALIDATION_FRACTION = 1 / 12  # 5,000 of 60,000


def _check(name: str, split: str | None = None) -> None:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {list(DATASETS)}, got {name!r}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")


def num_classes(name: str) -> int:
    """Number of classes of data set ``name``."""
    _check(name)
    return _NUM_CLASSES[name]


def input_shape(name: str) -> tuple[int, ...]:
    """Shape of one sample of ``name``, without the batch dimension."""
    _check(name)
    return _INPUT_SHAPE[name]


def _idx_holdout(y: np.ndarray, split: str) -> np.ndarray | slice:
    """Indices of ``split`` within an IDX training file (fixed stratified validation subset)."""
    if split == "train+validation":
        return slice(None)
    from sklearn.model_selection import train_test_split

    n_val = round(len(y) * IDX_VALIDATION_FRACTION)
    train, val = train_test_split(np.arange(len(y)), test_size=n_val, stratify=y, random_state=0)
    return np.sort(train if split == "train" else val)


def _arrays(
    name: str, split: str, data_dir: str | os.PathLike | None, dl: bool
) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        x, y = digits.load_split(split)
        return x[:, None], y
    if name == "yinyang":
        parts = ("train", "validation") if split == "train+validation" else (split,)
        xs, ys = zip(*(yinyang.generate(p) for p in parts), strict=True)
        return np.concatenate(xs), np.concatenate(ys)
    data_dir = default_data_dir() if data_dir is None else data_dir
    if split == "test":
        x, y = idx.load_split(name, "test", data_dir, download_missing=dl)
    else:
        x, y = idx.load_split(name, "train", data_dir, download_missing=dl)
        i = _idx_holdout(y, split)
        x, y = x[i], y[i]
    return x[:, None], y


def load(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> tuple[Tensor, Tensor]:
    """Samples ``x`` (float32 in [0, 1]) and labels ``y`` (int64) of ``split`` of data set ``name``.

    Args:
        data_dir: where the IDX files are (``data_dir/mnist/``, ``data_dir/fashion-mnist/`` or
            directly in ``data_dir``), gzip'd or not; default ``$TORCHSPIKE_DATA`` or
            ``~/.cache/torchspike/data``. Each file must hold the published content (md5 of the
            uncompressed data); a file of the other data set or split is named in the ValueError.
        download: fetch missing IDX files (md5-checked) into ``data_dir/<name>/``.
    """
    _check(name, split)
    x, y = _arrays(name, split, data_dir, download)
    xt = torch.from_numpy(x.astype(np.float32))
    if x.dtype == np.uint8:
        xt.div_(255.0)
    return xt, torch.from_numpy(y.astype(np.int64))

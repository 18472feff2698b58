"""scikit-learn's bundled 8x8 digits (1,797 images, offline) with a fixed stratified split."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SPLITS = ("train", "validation", "test", "train+validation")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1  # of what remains after the test split


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=TEST_FRACTION, stratify=y, random_state=0)
    train, val = train_test_split(
        rest, test_size=VALIDATION_FRACTION, stratify=y[rest], random_state=0
    )
    splits = {"train": train, "validation": val, "test": test, "train+validation": rest}
    splits = {k: np.sort(v) for k, v in splits.items()}
    for a in (x, y, *splits.values()):
        a.flags.writeable = False
    return x, y, splits


def indices(split: str) -> np.ndarray:
    """Indices into ``load_digits()`` of ``split`` (sorted, read-only)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return _digits()[2][split]


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``float32 [N, 8, 8]`` in [0, 1] (pixel / 16) and labels ``int64 [N]`` of ``split``."""
    x, y, _ = _digits()
    i = indices(split)
    return x[i], y[i]

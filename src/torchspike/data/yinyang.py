"""The Yin-Yang data set (Kriener, Göltz & Petrovici 2021), generated exactly as the reference.

Points are drawn uniformly in the big circle (radius ``R_BIG`` centred at (0.5, 0.5)) by
rejection sampling from a ``numpy.random.RandomState``, after first drawing the target class so the
three classes (0 yin, 1 yang, 2 dot) are balanced. Each sample is ``[x, y, 1 - x, 1 - y]``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

R_SMALL = 0.1
R_BIG = 0.5
CLASS_NAMES = ("yin", "yang", "dot")
SPLITS = {"train": (42, 5000), "validation": (41, 1000), "test": (40, 1000)}


def _dist(x: float, y: float, cx: float, cy: float) -> float:
    return math.sqrt((x - cx) ** 2 + (y - cy) ** 2)


def yinyang_class(x: float, y: float) -> int:
    """Class of the point (x, y): 0 yin, 1 yang, 2 dot (the reference rule)."""
    d_r = _dist(x, y, 1.5 * R_BIG, R_BIG)
    d_l = _dist(x, y, 0.5 * R_BIG, R_BIG)
    if d_r < R_SMALL or d_l < R_SMALL:
        return 2
    return int(d_r <= R_SMALL or R_SMALL < d_l <= 0.5 * R_BIG or (y > R_BIG and d_r > 0.5 * R_BIG))


def _sample(rng: np.random.RandomState, goal: int) -> tuple[float, float]:
    while True:
        x, y = rng.rand(2) * 2.0 * R_BIG
        if _dist(x, y, R_BIG, R_BIG) > R_BIG:
            continue
        if yinyang_class(x, y) == goal:
            return x, y


@lru_cache(maxsize=len(SPLITS))
def _generate(split: str) -> tuple[np.ndarray, np.ndarray]:
    seed, size = SPLITS[split]
    rng = np.random.RandomState(seed)
    samples = np.empty((size, 4), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        x, y = _sample(rng, goal)
        samples[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    samples.flags.writeable = False
    labels.flags.writeable = False
    return samples, labels


def generate(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``float64 [N, 4]`` and labels ``int64 [N]`` of one split (read-only arrays).

    Bit-identical to the reference ``publication_data``: seeds 42/41/40 and sizes 5000/1000/1000
    for train/validation/test.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return _generate(split)

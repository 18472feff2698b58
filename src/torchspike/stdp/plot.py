"""Figures of a Diehl & Cook run: receptive fields, class assignments, accuracy over training.

Each function draws on the caller's ``Axes`` (or a new figure) and returns it; ``save_figures``
writes all three as PNGs. matplotlib is imported only here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def field_grid(weight: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    """Tile the rows of ``weight [N, prod(input_shape)]`` as images in a near-square grid."""
    h, w = (input_shape[-2], input_shape[-1]) if len(input_shape) >= 2 else (1, input_shape[-1])
    n = weight.shape[0]
    rows, cols = _grid_shape(n)
    tiles = torch.full((rows * cols, h, w), float("nan"))
    tiles[:n] = weight.reshape(n, -1, h, w).mean(1)
    return tiles.reshape(rows, cols, h, w).permute(0, 2, 1, 3).reshape(rows * h, cols * w)


def _grid_shape(n: int) -> tuple[int, int]:
    """``(rows, cols)`` of the near-square grid of ``n`` tiles."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 6))
    return ax


def receptive_fields(weight: Tensor, input_shape: tuple[int, ...], ax: Any = None) -> Any:
    """Each neuron's input weights as an image, in a grid."""
    ax = _axes(ax)
    image = ax.imshow(
        field_grid(weight.detach().cpu().float(), input_shape).numpy(),
        cmap="hot_r",
        interpolation="nearest",
    )
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("receptive fields")
    return ax


def assignments(labels: Tensor, ax: Any = None) -> Any:
    """Each neuron's assigned class on the receptive-field grid (blank: never fired)."""
    ax = _axes(ax)
    rows, cols = _grid_shape(len(labels))
    grid = torch.full((rows, cols), float("nan"))
    for k, label in enumerate(labels.tolist()):
        r, c = divmod(k, cols)
        grid[r, c] = float("nan") if label < 0 else label
        if label >= 0:
            ax.text(c, r, str(label), ha="center", va="center", fontsize=7)
    ax.imshow(grid.numpy(), cmap="tab10", vmin=-0.5, vmax=9.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("class assignments")
    return ax


def accuracy(history: Tensor, ax: Any = None) -> Any:
    """Accuracy of each training window under the previous window's assignment."""
    ax = _axes(ax)
    h = history.detach().cpu().double().numpy()
    if len(h):
        ax.plot(h[:, 0], 100 * h[:, 1], marker="o", label="all-neuron vote")
        ax.plot(h[:, 0], 100 * h[:, 2], marker="s", label="proportion-weighted vote")
        ax.legend()
    ax.set_xlabel("training images")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("accuracy over training")
    ax.grid(alpha=0.3)
    return ax


def save_figures(state: dict[str, Tensor], out_dir: str | Path) -> list[Path]:
    """Write ``receptive_fields.png``, ``assignments.png`` and ``accuracy.png`` for ``state``."""
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(s) for s in state["input_shape"].tolist())
    drawings = {
        "receptive_fields.png": lambda ax: receptive_fields(state["weight"], shape, ax),
        "assignments.png": lambda ax: assignments(state["assignment"], ax=ax),
        "accuracy.png": lambda ax: accuracy(state["history"], ax),
    }
    paths = []
    for name, draw in drawings.items():
        fig = Figure(figsize=(6, 6) if name != "accuracy.png" else (7, 4))
        draw(fig.subplots())
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        paths.append(out / name)
    return paths

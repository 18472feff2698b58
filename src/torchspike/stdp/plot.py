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


def accuracy(
    history: Tensor,
    ax: Any = None,
    *,
    final: dict[str, float] | None = None,
    seen: int | None = None,
) -> Any:
    """Accuracy of each training window under the previous window's assignment (the first
    window has none and is left out), and the ``final`` accuracies (``metrics.json``'s
    labelling and test accuracies) as points after the ``seen`` training images, so that a run
    shorter than two windows still shows its result."""
    ax = _axes(ax)
    h = history.detach().cpu().double()
    scored = h[torch.isfinite(h[:, 1])] if len(h) else h
    if len(scored):
        ax.plot(scored[:, 0], 100 * scored[:, 1], marker="o", label="window, all-neuron vote")
        ax.plot(scored[:, 0], 100 * scored[:, 2], marker="s", label="window, proportion-weighted")
    end = float(seen) if seen is not None else float(h[-1, 0]) if len(h) else 0.0
    shown = []
    for key, label, marker in _FINAL:
        value = (final or {}).get(key)
        if value is not None and math.isfinite(value):
            shown.append((label, marker, 100 * value))
    for label, marker, value in shown:
        ax.plot([end], [value], marker=marker, ls="", ms=9, label=f"{label}: {value:.1f}%")
    if not len(scored):
        ax.text(
            0.5,
            0.05,
            "no training window scored: each window of update_interval images is scored\n"
            "with the previous window's assignment, so a run needs two of them",
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=8,
            color="0.35",
        )
    if len(scored) or shown:
        ax.legend(fontsize=8)
    ax.set_ylim(0, 100)
    if end > 0:
        ax.set_xlim(0, 1.05 * end)
    ax.set_xlabel("training images")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("accuracy over training")
    ax.grid(alpha=0.3)
    return ax


_FINAL = (  # metrics.json keys drawn at the end of the accuracy plot
    ("label_accuracy_all", "labelling pass, all-neuron vote", "^"),
    ("test_accuracy_all", "test, all-neuron vote", "*"),
    ("test_accuracy_proportion", "test, proportion-weighted", "P"),
)


def save_figures(
    state: dict[str, Tensor], out_dir: str | Path, *, metrics: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``receptive_fields.png``, ``assignments.png`` and ``accuracy.png`` for ``state``
    (with the final accuracies of ``metrics``, a run's ``metrics.json``, where given)."""
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(s) for s in state["input_shape"].tolist())
    seen = int(state["seen"]) if "seen" in state else None
    drawings = {
        "receptive_fields.png": lambda ax: receptive_fields(state["weight"], shape, ax),
        "assignments.png": lambda ax: assignments(state["assignment"], ax=ax),
        "accuracy.png": lambda ax: accuracy(state["history"], ax, final=metrics, seen=seen),
    }
    paths = []
    for name, draw in drawings.items():
        fig = Figure(figsize=(6, 6) if name != "accuracy.png" else (7, 4))
        draw(fig.subplots())
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        paths.append(out / name)
    return paths

"""Evaluate a saved run: accuracy and confusion matrix."""

from __future__ import annotations

import os

import torch

from . import datasets
from .load import open_trained
from .loop import predict


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """``m[i, j]``: how many samples of class ``i`` were predicted as ``j``."""
    return torch.bincount(target * classes + pred, minlength=classes * classes).reshape(
        classes, classes
    )


def format_confusion(matrix: torch.Tensor) -> str:
    width = max(5, len(str(int(matrix.max()))) + 1)
    head = "true\\pred" + "".join(f"{j:>{width}}" for j in range(matrix.shape[1]))
    rows = [f"{i:>9}" + "".join(f"{int(v):>{width}}" for v in row) for i, row in enumerate(matrix)]
    return "\n".join([head, *rows])


def check_dataset(name: str, trained_on: str) -> None:
    shape, trained = datasets.input_shape(name), datasets.input_shape(trained_on)
    if shape != trained:
        raise ValueError(
            f"--dataset {name}: its input shape {shape} differs from {trained_on}'s {trained}, "
            f"which the run was trained on"
        )


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    echo: bool = True,
) -> tuple[float, torch.Tensor]:
    _, cfg, method, model = open_trained(run_dir)
    name = dataset or cfg.dataset
    check_dataset(name, cfg.dataset)
    source = datasets.load(name, split, data_dir or cfg.data_dir)
    if source is None:
        raise ValueError(f"--split {split}: data set {name!r} has no such split")
    y = source.labels
    pred = predict(method, model, source, cfg)
    acc = (pred == y).float().mean().item()
    matrix = confusion_matrix(pred, y, datasets.num_classes(name))
    if echo:
        print(f"{name} {split} accuracy: {acc:.4f} ({int((pred == y).sum())}/{len(y)})")
        print(format_confusion(matrix))
    return acc, matrix

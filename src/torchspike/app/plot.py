"""Figures of a run: curves, spike rasters, membrane traces, confusion matrix (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def raster(spikes: Tensor, ax, *, dt: float = 1.0, **scatter_kwargs):
    """Draw ``[T, N]`` spikes on the caller's ``Axes``: one dot per spike."""
    t, n = spikes.nonzero(as_tuple=True)
    ax.scatter((t * dt).numpy(), n.numpy(), s=scatter_kwargs.pop("s", 2), c="k", **scatter_kwargs)
    ax.set_xlim(-0.5 * dt, spikes.shape[0] * dt)
    ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
    ax.set_xlabel("time step" if dt == 1.0 else "time")
    ax.set_ylabel("neuron")
    return ax


def curves(history: list[dict], path: Path) -> Path:
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="loss")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["validation_accuracy"] for h in history], "s-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.legend()
    return _save(fig, path)


def rasters(records: dict[str, dict[str, Tensor]], samples: int, path: Path) -> Path:
    plt = _pyplot()
    layers = [name for name in records if records[name]["out"].dim() >= 3]
    fig, axes = plt.subplots(
        len(layers), samples, figsize=(3 * samples, 2.5 * len(layers)), squeeze=False
    )
    for row, name in enumerate(layers):
        out = records[name]["out"]
        for col in range(samples):
            ax = axes[row][col]
            raster((out[:, col].reshape(out.shape[0], -1) > 0).float(), ax)
            ax.set_title(f"layer {name}, sample {col}", fontsize=8)
    return _save(fig, path)


def membrane(
    v: Tensor, spikes: Tensor | None, v_th: float | None, labels: Tensor, path: Path
) -> Path:
    """Output membrane traces ``[T, B, C]`` per sample, with threshold and spike marks."""
    plt = _pyplot()
    samples = v.shape[1]
    fig, axes = plt.subplots(1, samples, figsize=(4 * samples, 3.5), squeeze=False)
    for col in range(samples):
        ax = axes[0][col]
        for c in range(v.shape[2]):
            (line,) = ax.plot(v[:, col, c].numpy(), lw=2 if c == labels[col] else 0.8, label=str(c))
            if spikes is not None:
                t = spikes[:, col, c].nonzero().flatten()
                ax.plot(t.numpy(), v[t, col, c].numpy(), "x", color=line.get_color())
        if v_th is not None:
            ax.axhline(v_th, color="k", ls="--", lw=1, label="v_th")
        ax.set(title=f"sample {col} (label {int(labels[col])})", xlabel="time step", ylabel="v")
    axes[0][-1].legend(fontsize=6, ncol=2)
    return _save(fig, path)


def confusion(matrix: Tensor, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(matrix.numpy(), cmap="Blues")
    for i, row in enumerate(matrix.tolist()):
        for j, value in enumerate(row):
            ax.text(j, i, value, ha="center", va="center", fontsize=6)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    fig.colorbar(im)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    from ..files import atomic_write

    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    _pyplot().close(fig)
    return path


MAX_SAMPLES = 16


def plot_run(run_dir: str | Path, *, out: str | Path | None = None, samples: int = 4) -> list[Path]:
    """Write ``curves.png``, ``raster.png``, ``membrane.png``, ``confusion.png`` and, for event
    data, ``events.png`` (a test sample's event frames, its label and the prediction)."""
    from .. import files
    from . import datasets
    from .evaluate import evaluate_run
    from .load import open_trained

    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"--samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    run, cfg, method, model = open_trained(run_dir)
    out = Path(out) if out is not None else run.path
    written = []
    if (run / "metrics.json").exists():
        history = files.load_json(run / "metrics.json").get("epochs", [])
        if history:
            written.append(curves(history, out / "curves.png"))
    test = datasets.load(cfg.dataset, "test", cfg.data_dir)
    x, y = test.take(torch.arange(min(samples, len(test))))
    torch.manual_seed(cfg.seed)
    records = method.trace(model, x, cfg)
    written.append(rasters(records, len(y), out / "raster.png"))
    last = records[list(records)[-1]]
    if "v" in last:  # output membrane traces, when the output layer has a membrane
        v, v_th = last["v"], method.threshold(model)
        spikes = None if last["out"] is v or v_th is None else v > v_th
        written.append(membrane(v, spikes, v_th, y, out / "membrane.png"))
    if isinstance(test, datasets.EventSource):  # the first test sample's events and prediction
        from ..data.events import plot_events

        with torch.no_grad():
            pred = int(method.scores(model, x, cfg).argmax(1)[0])
        path = out / "events.png"
        plot_events(test.dataset.events(0), path=path, label=int(y[0]), prediction=pred)
        written.append(path)
    _, matrix = evaluate_run(run.path, echo=False)
    written.append(confusion(matrix, out / "confusion.png"))
    return written

"""Figures of a run: curves, spike rasters, membrane traces, confusion matrix (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_ROWS = 200  # neurons drawn one per row; a wider layer is drawn as a density raster


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


def density(rows: Tensor, ax, *, ylabel: str, per: int = 1, dt: float = 1.0):
    """Draw ``[T, G]`` fractions in [0, 1] (of a group of ``per`` neighbouring neurons or
    channels spiking at each step) as an image on the caller's ``Axes``, darker for more."""
    steps, groups = rows.shape
    image = ax.imshow(
        rows.T.numpy(),
        aspect="auto",
        origin="lower",
        cmap="Greys",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(-0.5 * dt, (steps - 0.5) * dt, -0.5, groups * per - 0.5),
    )
    ax.set_xlabel("time step" if dt == 1.0 else "time")
    ax.set_ylabel(ylabel)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return image


def view(out: Tensor) -> tuple[Tensor, str, int]:
    """What a raster shows of one sample's spikes ``[T, ...]``: ``(spikes [T, N], "neuron", 0)``
    for up to ``MAX_ROWS`` neurons, else ``(fractions [T, G], y label, per)``: the fraction of
    each channel's positions of a conv layer ``[T, C, ...]``, or of each group of ``per``
    neighbouring neurons (or channels) of a wider layer, that spiked at each step."""
    steps = out.shape[0]
    if out.dim() >= 3:  # [T, C, H, W] (or [T, C, L]): the fraction of each channel's positions
        positions = math.prod(out.shape[2:])
        rows = out.reshape(steps, out.shape[1], -1).float().mean(2)
        unit, of = "channel", f"; fraction of its {positions} positions"
    else:
        rows, unit, of = out.reshape(steps, -1).float(), "neuron", ""
    n = rows.shape[1]
    if n <= MAX_ROWS:
        return (rows, "neuron", 0) if not of else (rows, f"{unit}{of}", 1)
    per = math.ceil(n / MAX_ROWS)
    groups = math.ceil(n / per)
    padded = F.pad(rows, (0, groups * per - n), value=math.nan)
    rows = torch.nanmean(padded.reshape(steps, groups, per), 2)
    return rows, f"{unit} ({per} per row{of})", per


def curves(history: list[dict], path: Path) -> Path:
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="loss")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["validation_accuracy"] for h in history], "s-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.legend()
    return _save(fig, path)


def layer_labels(names: list[str], kinds: dict[str, str] | None = None) -> dict[str, str]:
    """``"hidden 1 (LIF, layer 2)"`` ... ``"output (LIF, layer 4)"`` for the recorded layers
    ``names`` in order (the last is the output); ``kinds`` gives each layer's module type."""
    kinds = kinds or {}
    labels = {}
    for k, name in enumerate(names):
        number = f" {k + 1}" if len(names) > 2 else ""
        role = "output" if k == len(names) - 1 else f"hidden{number}"
        where = ", ".join(s for s in (kinds.get(name), f"layer {name}") if s)
        labels[name] = f"{role} ({where})"
    return labels


def is_spikes(x: Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def rasters(
    records: dict[str, dict[str, Tensor]],
    samples: int,
    path: Path,
    *,
    labels: dict[str, str] | None = None,
    classes: Tensor | None = None,
) -> Path:
    """Spikes of each spiking layer (rows) for each sample (columns): one dot per spike, or a
    density raster for conv layers (per channel) and layers wider than ``MAX_ROWS``."""
    plt = _pyplot()
    layers = [n for n, r in records.items() if "out" in r and r["out"].dim() >= 3]
    layers = [n for n in layers if is_spikes(records[n]["out"])]  # a membrane output is not
    labels = labels or layer_labels(layers)
    fig, axes = plt.subplots(
        max(len(layers), 1),
        samples,
        figsize=(3.2 * samples + 1, 2.8 * max(len(layers), 1)),
        squeeze=False,
        layout="constrained",
    )
    for row, name in enumerate(layers):
        out, image = records[name]["out"], None
        for col in range(samples):
            ax = axes[row][col]
            rows, ylabel, per = view(out[:, col])
            if not per:
                raster(rows, ax)
                if rows.shape[1] <= 20:
                    ax.set_yticks(range(rows.shape[1]))
            else:
                image = density(rows, ax, ylabel=ylabel, per=per)
            sample = f"sample {col}"
            if classes is not None:
                sample += f" (class {int(classes[col])})"
            ax.set_title(f"{labels.get(name, name)}\n{sample}", fontsize=8)
        if image is not None:
            fig.colorbar(image, ax=list(axes[row]), label="fraction spiking", fraction=0.02)
    if not layers:
        axes[0][0].text(0.5, 0.5, "no spiking layer recorded", ha="center", va="center")
    return _save(fig, path)


def membrane(
    v: Tensor,
    spikes: Tensor | None,
    v_th: float | None,
    labels: Tensor,
    path: Path,
    *,
    title: str = "output membrane",
    dt: float | None = None,
) -> Path:
    """Output membrane traces ``[T, B, C]`` per sample, with threshold and spike marks; a
    legend in every panel (``dt``: seconds per step, for a time axis in ms)."""
    from matplotlib.lines import Line2D

    plt = _pyplot()
    samples, classes = v.shape[1], v.shape[2]
    fig, axes = plt.subplots(
        1, samples, figsize=(4 * samples, 4.4), squeeze=False, layout="constrained"
    )
    time = torch.arange(v.shape[0], dtype=torch.float64)
    time = (time + 1) * dt * 1e3 if dt is not None else time
    for col in range(samples):
        ax, label = axes[0][col], int(labels[col])
        handles = []
        for c in range(classes):
            mine = c == label
            (line,) = ax.plot(
                time.numpy(), v[:, col, c].numpy(), lw=2.2 if mine else 0.8, zorder=3 if mine else 2
            )
            line.set_label(f"{c} (class)" if mine else str(c))
            handles.append(line)
            if spikes is not None:
                t = spikes[:, col, c].nonzero().flatten()
                ax.plot(time[t].numpy(), v[t, col, c].numpy(), "x", color=line.get_color())
        if spikes is not None:
            handles.append(Line2D([], [], marker="x", ls="", color="k", label="x: spike"))
        if v_th is not None:
            handles.append(ax.axhline(v_th, color="k", ls="--", lw=1, label="v_th"))
        ax.set_xlim(0, float(time[-1]))
        ax.set(
            title=f"sample {col} (class {label})",
            xlabel="time (ms)" if dt is not None else "time step",
            ylabel="v",
        )
        ax.legend(
            handles=handles,
            title="output neuron",
            title_fontsize=7,
            fontsize=7,
            ncol=min(6, len(handles)),
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18),
            frameon=False,
        )
    notes = ["thick: the neuron of the sample's class"]
    if spikes is not None:
        notes.append("x: a spike (v reached v_th)")
    fig.suptitle(f"{title}; {', '.join(notes)}", fontsize=10)
    return _save(fig, path)


def confusion(matrix: Tensor, path: Path, *, title: str = "confusion matrix") -> Path:
    """``matrix[i, j]``: samples of class ``i`` predicted as ``j``; every class ticked, the
    counts readable, the accuracy in the title."""
    plt = _pyplot()
    n = matrix.shape[0]
    side = max(4.5, 0.45 * n + 1.5)
    fig, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    size = max(5.0, min(10.0, 110 / n))
    dark = float(matrix.max()) / 2
    for i, row in enumerate(matrix.tolist()):
        for j, value in enumerate(row):
            color = "white" if value > dark else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=size, color=color)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.tick_params(labelsize=max(6.0, min(10.0, 140 / n)))
    total, right = int(matrix.sum()), int(matrix.diagonal().sum())
    accuracy = f"accuracy {100 * right / total:.2f}% ({right}/{total})" if total else "no samples"
    ax.set(xlabel="predicted class", ylabel="true class", title=f"{title}: {accuracy}")
    fig.colorbar(image, ax=ax, label="samples", shrink=0.8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    from ..files import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    _pyplot().close(fig)
    return path


MAX_SAMPLES = 16


CURVES = ("epoch", "train_loss", "train_accuracy", "validation_accuracy")


def _history(path: Path) -> list[dict]:
    """The epochs of ``metrics.json``, each with the numbers that :func:`curves` draws."""
    from .. import files

    history = files.load_json(path).get("epochs", [])
    ok = isinstance(history, list) and all(
        isinstance(h, dict)
        and all(k in h for k in CURVES)
        and all(isinstance(h[k], int | float | None) for k in CURVES)
        for h in history
    )
    if not ok:
        raise files.RunFileError(
            f'{path}: "epochs" must be a list of records with {", ".join(CURVES)}: fix it, '
            f"or delete it (the figures other than curves.png do not need it)"
        )
    return history


def plot_run(run_dir: str | Path, *, out: str | Path | None = None, samples: int = 4) -> list[Path]:
    """Write ``curves.png``, ``raster.png``, ``membrane.png``, ``confusion.png`` and, for event
    data, ``events.png`` (a test sample's event frames, its label and the prediction)."""
    from . import datasets
    from .evaluate import evaluate_run
    from .load import open_trained

    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"--samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    run, cfg, method, model = open_trained(run_dir)
    out = Path(out) if out is not None else run.path
    written = []
    if (run / "metrics.json").exists():
        history = _history(run / "metrics.json")
        if history:
            written.append(curves(history, out / "curves.png"))
    test = datasets.load(cfg.dataset, "test", cfg.data_dir)
    x, y = test.take(torch.arange(min(samples, len(test))))
    torch.manual_seed(cfg.seed)
    records = method.trace(model, x, cfg)
    labels = layer_labels(list(records), _kinds(model, records))
    name, v_th = list(records)[-1], method.threshold(model)
    last, shown = records[name], dict(records)
    spikes = last.get("out")
    if spikes is not None and not is_spikes(spikes):  # an output that returns its membrane
        spikes = None if v_th is None or "v" not in last else (last["v"] > v_th).float()
        if spikes is not None:  # drawn as the spikes its threshold marks
            shown[name] = {"out": spikes}
            labels[name] += ": v > v_th"
    written.append(rasters(shown, len(y), out / "raster.png", labels=labels, classes=y))
    if "v" in last:  # output membrane traces, when the output layer has a membrane
        v = last["v"]
        title = f"output membrane: {labels[name].removesuffix(': v > v_th')}"
        dt = None
        if cfg.method == "eventprop":
            title = "EventProp read-out voltage"
            if cfg.loss == "ttfs":
                title += " (free membrane, drawn up to each neuron's first spike)"
            else:
                title += f" (scored by the {cfg.loss} loss's read-out)"
            dt = cfg.dt
        written.append(membrane(v, spikes, v_th, y, out / "membrane.png", title=title, dt=dt))
    if isinstance(test, datasets.EventSource):  # the first test sample's events and prediction
        from ..data.events import plot_events

        with torch.no_grad():
            pred = int(method.scores(model, x, cfg).argmax(1)[0])
        path = out / "events.png"
        plot_events(test.dataset.events(0), path=path, label=int(y[0]), prediction=pred)
        written.append(path)
    _, matrix = evaluate_run(run.path, echo=False)
    written.append(confusion(matrix, out / "confusion.png", title=f"{cfg.dataset} test"))
    return written


def _kinds(model, records: dict) -> dict[str, str]:
    """The module type of each recorded layer (``"LIF"``, ``"LIFLayer"``), where it is found."""
    root = getattr(model, "layers", model)
    kinds = {}
    for name in records:
        try:
            kinds[name] = type(root.get_submodule(name)).__name__
        except AttributeError:
            pass
    return kinds

"""``--method stdp``: the Diehl & Cook network trained by :func:`torchspike.stdp.fit`, in the
same run directory, progress, Ctrl-C, checkpoint and resume as the gradient loop.

``model.safetensors`` and the resumable ``checkpoint.safetensors`` hold the full STDP state
(weights, thresholds, assignment, accuracy history) with the library config in the metadata.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ... import data, files
from ..config import STDPConfig
from ..progress import Interrupted, PhaseProgress, StopOnSigint
from ..rundir import FORMAT, METRICS, WEIGHTS, RunDir, RunError, peak_memory_mib

CHECKPOINT_EVERY = 5000  # training images between checkpoints (Ctrl-C stops at the next)


def save(path: Path, state: dict[str, torch.Tensor], library_config) -> None:
    meta = {
        "method": "stdp",
        "format": str(FORMAT),
        "config": json.dumps(library_config.to_dict()),
    }
    files.save_weights(path, state, meta)


def load(path: Path) -> tuple[dict[str, torch.Tensor], Any]:
    """``(state, library config)`` of an STDP state file."""
    from ...stdp import STDPConfig as Library

    meta = files.load_weights_metadata(path)
    if meta.get("method") != "stdp" or "config" not in meta:
        raise files.RunFileError(f"{path} is not an STDP state written by torchspike")
    return files.load_weights(path), Library.from_dict(json.loads(meta["config"]))


def fit_run(
    cfg: STDPConfig, run: RunDir, splits, *, resume: bool, threads: int, log=print
) -> dict[str, Any]:
    """Train unsupervised, assign classes from training data, test; write the run directory."""
    from ...stdp import fit

    config = cfg.library(threads=max(threads, 1), checkpoint_every=CHECKPOINT_EVERY)
    state = None
    checkpoint = run.checkpoint("stdp")
    if resume:
        if not checkpoint.exists():
            raise RunError(f"--resume: no checkpoint in {run.path} ({checkpoint.name})")
        state, _ = load(checkpoint)
        log(f"resuming from {checkpoint} (epoch {int(state['epoch'])})")
    train, test = splits  # train+validation and test
    progress = PhaseProgress(log)
    t0 = time.perf_counter()
    with StopOnSigint() as stop:

        def on_checkpoint(s: dict[str, torch.Tensor]) -> None:
            save(checkpoint, s, config)
            if stop.requested:
                raise KeyboardInterrupt

        try:
            result = fit(
                config, train, test, state=state, on_progress=progress, on_checkpoint=on_checkpoint
            )
        except KeyboardInterrupt:
            log(f"interrupted: checkpoint saved in {checkpoint}; continue with --resume")
            raise Interrupted from None
        finally:
            progress.close()
    save(run / WEIGHTS, result.state, config)
    windows = result.state["history"].tolist()  # rows: images seen, acc all, acc proportion, ..
    metrics = {
        **result.metrics,
        "test_accuracy": result.metrics["test_accuracy_all"],
        "windows": [
            {"images": r[0], "accuracy_all": r[1], "accuracy_proportion": r[2]} for r in windows
        ],
        "epochs": [],
        "wall_seconds": time.perf_counter() - t0,
        "peak_memory_mib": peak_memory_mib(),
    }
    files.save_json(run / METRICS, metrics)
    log(
        f"test accuracy {metrics['test_accuracy']:.4f} (mean response of each class's neurons; "
        f"proportion-weighted {metrics['test_accuracy_proportion']:.4f})  "
        f"({metrics['wall_seconds']:.1f} s)  -> {run.path}"
    )
    return metrics


def predict(state: dict[str, torch.Tensor], config, x: torch.Tensor):
    """Predicted classes ``(all-neuron vote, proportion-weighted vote)`` of the frozen network
    for images ``x``, drawn with the generator that :func:`torchspike.stdp.evaluate` uses."""
    from ...stdp import vote_all, vote_proportion
    from ...stdp.state import assignment_of, model_from_state
    from ...stdp.train import run_counts

    model = model_from_state(state, config)
    generator = torch.Generator().manual_seed(config.seed + 7)
    flat = x.reshape(len(x), -1).float()
    counts = run_counts(
        model, flat, batch_size=config.eval_batch_size, generator=generator, phase="test"
    )
    assignment = assignment_of(state)
    return vote_all(counts, assignment), vote_proportion(counts, assignment)


def evaluate_run(
    run: RunDir, cfg: STDPConfig, *, dataset: str, split: str, data_dir, echo: bool = True
) -> tuple[float, torch.Tensor]:
    """Accuracy of both read-outs and the confusion matrix of the all-neuron vote (the run's
    test accuracy)."""
    from ..evaluate import confusion_matrix, format_confusion

    state, config = load(run / WEIGHTS)
    x, y = data.load(dataset, split, data_dir)
    pred_all, pred_proportion = predict(state, config, x)
    acc_all = (pred_all == y).double().mean().item()
    acc_proportion = (pred_proportion == y).double().mean().item()
    matrix = confusion_matrix(pred_all, y, state["rates"].shape[1])
    if echo:
        print(
            f"{dataset} {split} accuracy: {acc_all:.4f} (mean response of each class's neurons, "
            f"{int((pred_all == y).sum())}/{len(y)}), {acc_proportion:.4f} (proportion-weighted)"
        )
        print("confusion matrix of the mean-response read-out:")
        print(format_confusion(matrix))
    return acc_all, matrix


def plot_run(run: RunDir, out: Path) -> list[Path]:
    """The receptive fields, class assignments, accuracy (over training windows, and the final
    labelling and test accuracy) and the test confusion matrix."""
    from ...stdp.plot import save_figures
    from ..plot import confusion

    state, _ = load(run / WEIGHTS)
    metrics = files.load_json(run / METRICS) if (run / METRICS).exists() else {}
    paths = save_figures(state, out, metrics=metrics)
    cfg = run.config()
    _, matrix = evaluate_run(
        run, cfg, dataset=cfg.dataset, split="test", data_dir=cfg.data_dir, echo=False
    )
    title = f"{cfg.dataset} test, mean-response read-out"
    return [*paths, confusion(matrix, out / "confusion.png", title=title)]

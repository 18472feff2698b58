"""Export a trained run to NIR."""

from __future__ import annotations

import io
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .. import files
from . import datasets
from .load import open_trained


def export_run(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    dt: float = 1e-3,
    strict: bool = False,
) -> Any:
    """Write the trained model of a run directory to ``out_path`` (``.nir``); returns the graph."""
    import importlib.util

    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"--dt must be a finite time step > 0 (seconds), got {dt!r}")
    out = Path(out_path).absolute()
    if out.is_dir():
        raise ValueError(f"output {out_path} is a folder: name a file, e.g. model.nir")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"output {out_path}: {parent} is a file, not a folder")
    if importlib.util.find_spec("nir") is None:
        raise ValueError("export --format nir needs the nir extra: pip install 'torchspike[nir]'")
    import nir

    from ..nir import export

    _, cfg, _, model = open_trained(run_dir)
    if cfg.method != "bptt":  # EventProp's event-driven layers have no NIR counterpart here
        raise ValueError(
            f"run {run_dir} was trained with {cfg.method}: export --format nir takes bptt runs only"
        )
    try:  # an output folder that cannot be written is refused before the export's warnings
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as err:
        raise ValueError(f"output {out_path}: cannot write there ({err.strerror})") from None
    import numpy as np

    with warnings.catch_warnings(record=True) as caught, np.errstate(over="ignore"):
        warnings.simplefilter("always")  # said after the check below, which may refuse the dt
        graph = export(model, datasets.input_shape(cfg.dataset), dt=dt, strict=strict)
    for key, node in graph.nodes.items():  # tau = dt / (1 - beta), r = 1 / (1 - beta) or 1 / dt
        for name in ("tau", "r"):
            if not np.isfinite(getattr(node, name, 0.0)).all():
                raise ValueError(
                    f"--dt {dt!r} makes node {key}'s {name} overflow: give the time step in "
                    f"seconds, e.g. 1e-3"
                )
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    meta = {"dataset": cfg.dataset, "method": cfg.method}
    meta.update({k: getattr(cfg, k) for k in ("steps", "encoding") if hasattr(cfg, k)})
    graph.metadata.update(meta)
    data = io.BytesIO()
    nir.write(data, graph)
    files.atomic_write(out, lambda f: f.write(data.getvalue()))
    return graph

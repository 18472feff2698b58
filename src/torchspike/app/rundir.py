"""A run directory: ``config.json`` (the resolved configuration and where it came from),
``metrics.json``, ``model.safetensors`` and a resumable checkpoint, all written atomically.

A new run refuses a non-empty folder unless ``overwrite``; a resumed run continues the folder
it is given, whatever ``config.json`` says. Paths are stored absolute.
"""

from __future__ import annotations

import datetime
import os
import resource
import subprocess
from pathlib import Path
from typing import Any

from .. import __version__, files
from .config import ConfigError, RunConfig, from_dict, to_dict

CONFIG, METRICS, WEIGHTS = "config.json", "metrics.json", "model.safetensors"
CHECKPOINT = {
    "bptt": "checkpoint.pt",
    "eventprop": "checkpoint.pt",
    "stdp": "checkpoint.safetensors",
}
FORMAT = 2  # config.json and checkpoint layout; torchspike 0.1 wrote none
RUN_FILES = (CONFIG, METRICS, WEIGHTS, "checkpoint.pt", "checkpoint.safetensors")
FIGURES = ("curves.png", "raster.png", "membrane.png", "confusion.png", "weights.png")


class RunError(ValueError):
    """A run directory that cannot be used as asked; the message says what to do."""


def default_out(dataset: str, method: str) -> Path:
    """``runs/<dataset>-<method>-<date>-<time>``, made unique with a counter and created here,
    so that two runs started in the same second, even in two processes, get two folders."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{dataset}-{method}-{stamp}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def _check_folder(path: Path, flag: str = "--out") -> None:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise RunError(f"{flag} {path}: {parent} is a file, not a folder")


class RunDir:
    """The folder of one run."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).absolute()

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def create(cls, path: str | os.PathLike, *, overwrite: bool) -> RunDir:
        """A folder for a new run: refused if it holds files, unless ``overwrite``, which
        deletes the run files and figures in it (nothing else)."""
        run = cls(path)
        _check_folder(run.path)
        if run.path.exists() and any(run.path.iterdir()):
            if not overwrite:
                raise RunError(
                    f"--out {path} is not empty: pass --overwrite to replace the run in it, "
                    f"--resume to continue it, or choose another --out"
                )
            for name in (*RUN_FILES, *FIGURES):
                (run.path / name).unlink(missing_ok=True)
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunError(f"--out {path}: cannot create the folder ({err.strerror})") from None
        files.clean_stale_temporaries(run.path)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike, flag: str = "run") -> RunDir:
        """An existing run directory."""
        run = cls(path)
        _check_folder(run.path, flag)
        if not (run.path / CONFIG).exists():
            raise RunError(f"{flag} {path}: no {CONFIG} there; is it a torchspike run directory?")
        for name in RUN_FILES:
            if (run.path / name).exists() and not (run.path / name).is_file():
                raise RunError(f"{flag} {path}: {run.path / name} is not a file")
        files.clean_stale_temporaries(run.path)
        return run

    # --- config.json -------------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """``config.json`` as written (format 2), or a 0.1 record converted to it."""
        record = files.load_json(self / CONFIG)
        if "format" not in record:
            return _legacy_record(record, self / CONFIG)
        if record.get("format") != FORMAT:
            raise files.RunFileError(
                f"{self / CONFIG} has format {record.get('format')!r}; this torchspike "
                f"({__version__}) reads format {FORMAT}"
            )
        if not isinstance(record.get("config"), dict):
            raise files.RunFileError(
                f'{self / CONFIG}: "config" must be a table of settings, got '
                f"{type(record.get('config')).__name__}: fix it, or start again with --overwrite"
            )
        if not isinstance(record.get("resumes", []), list):
            raise files.RunFileError(
                f'{self / CONFIG}: "resumes" must be a list, got '
                f"{type(record['resumes']).__name__}: fix it, or start again with --overwrite"
            )
        return record

    def config(self) -> RunConfig:
        return config_of(self.record(), self / CONFIG)

    def write_record(self, record: dict[str, Any]) -> None:
        files.save_json(self / CONFIG, record)

    def checkpoint(self, method: str) -> Path:
        return self / CHECKPOINT[method]


def config_of(record: dict[str, Any], path: Path) -> RunConfig:
    try:
        return from_dict(record["config"], str(path))
    except ConfigError as err:
        raise files.RunFileError(str(err)) from None


def new_record(cfg: RunConfig, run: RunDir, *, recipe, config_file, overrides, threads) -> dict:
    """What ``config.json`` holds: the resolved configuration and its provenance."""
    return {
        "format": FORMAT,
        "torchspike": __version__,
        "recipe": recipe,
        "config_file": config_file,
        "overrides": overrides,
        "config": to_dict(cfg),
        "out": str(run.path),
        "provenance": provenance(threads),
        "resumes": [],
    }


def provenance(threads: int) -> dict[str, Any]:
    import platform

    import torch

    return {
        "commit": _commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads or torch.get_num_threads(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
        cwd=here.parent,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


_LEGACY_COMMON = ("dataset", "data_dir", "epochs", "batch_size", "seed", "device")
_LEGACY_TRAINED = ("lr", "weight_decay", "schedule", "keep_best")
_LEGACY_BPTT = ("arch", "hidden", "channels", "neuron", "readout", "loss", "steps", "beta")
_LEGACY_BPTT += ("encoding", "surrogate", "dropout")


def _legacy_record(old: dict[str, Any], path: Path) -> dict[str, Any]:
    """A torchspike 0.1 ``config.json`` (a flat Config with ``extra``) as a format-2 record, so
    its model loads for eval, plot and export; such runs cannot be resumed."""
    method = old.get("method", "bptt")
    extra = old.get("extra", {}) if isinstance(old.get("extra"), dict) else {}
    cfg: dict[str, Any] = {"method": method}
    cfg.update({k: old[k] for k in _LEGACY_COMMON if k in old})
    if method == "bptt":
        cfg.update({k: old[k] for k in (*_LEGACY_TRAINED, *_LEGACY_BPTT) if k in old})
        if cfg.get("arch") == "conv":
            cfg.pop("neuron", None)
        else:
            cfg.pop("channels", None)
            cfg.pop("dropout", None)
    elif method == "eventprop":
        cfg.update(
            {k: old[k] for k in (*_LEGACY_TRAINED, "hidden", "loss", "encoding") if k in old}
        )
        for key in ("tau_mem", "tau_syn", "dt", "duration", "recurrent", "bias_spike"):
            if key in extra:
                cfg[key] = extra[key]
        if extra.get("rescue_silent"):
            cfg["rescue_silent"] = extra["rescue_silent"]
    elif method == "stdp":
        cfg.update({k: extra[k] for k in ("n_neurons", "label_images", "synapse") if k in extra})
    else:
        raise files.RunFileError(f"{path}: unknown method {method!r}")
    return {
        "format": FORMAT,
        "torchspike": old.get("version", "0.1"),
        "legacy": True,
        "recipe": None,
        "config_file": None,
        "overrides": {},
        "config": cfg,
        "out": old.get("out"),
        "provenance": {},
        "resumes": [],
    }

"""``torchspike train | recipes | eval | plot | export``: the command-line application.

Every mistake of the user's ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import typing
from pathlib import Path
from typing import Any

from .. import files
from .._version import __version__
from .config import CLASSES, ConfigError, all_fields, methods_with

RUNTIME = ("recipe", "config", "out", "resume", "overwrite", "threads", "release_memory")
RESUME_MAY_CHANGE = ("epochs", "device", "data_dir")
SINGLE_THREADED = ("eventprop", "stdp")  # --threads 0 means 1 for these

TRAIN_EPILOG = """\
Settings are resolved in this order: a method's defaults (in [brackets] above) < the recipe
(--recipe NAME, or else the recipe that is the default of --method and --dataset, e.g.
eventprop on yinyang is eventprop-yinyang; `torchspike recipes` lists them) or --config FILE <
the flags given. Every setting, including those without a flag, can be set in a TOML file
([settings] table); `torchspike recipes NAME` shows one resolved. A flag that the chosen method
or architecture does not use is refused.
"""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit status 2, and which takes each flag only by
    its full name (``--epoch`` is refused, not read as ``--epochs``)."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _defaults_text(name: str) -> str:
    values = {}
    for method, cls in CLASSES.items():
        f = {g.name: g for g in dataclasses.fields(cls)}.get(name)
        if f is None:
            continue
        d = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(d, bool):
            d = str(d).lower()
        elif isinstance(d, list):
            d = " ".join(map(str, d)) or "none"
        values[method] = f"{d:g}" if isinstance(d, float) else str(d)
    if len(set(values.values())) == 1:
        return f"[{next(iter(values.values()))}]"
    return "[" + "; ".join(f"{m} {v}" for m, v in values.items()) + "]"


def _add_setting(group, name: str, f: dataclasses.Field) -> None:
    hint = typing.get_type_hints(CLASSES[methods_with(name)[0]])[name]
    args = typing.get_args(hint)
    if type(None) in args:
        hint = next(a for a in args if a is not type(None))
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS}
    used_by = methods_with(name)
    scope = "" if len(used_by) == len(CLASSES) else f" ({', '.join(used_by)})"
    help_text = f"{f.metadata['help']}{scope} {_defaults_text(name)}"
    if hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(hint) is list:
        kwargs.update(nargs="+", type=int, metavar="N")
    else:
        kwargs["type"] = hint
        choices: list = []
        for cls in CLASSES.values():  # a setting's choices may differ between methods
            g = {h.name: h for h in dataclasses.fields(cls)}.get(name)
            for c in g.metadata.get("choices", ()) if g else ():
                choices += [] if c in choices else [c]
        if choices:
            kwargs["choices"] = choices
            kwargs["metavar"] = "{" + ",".join(map(str, choices)) + "}"
    group.add_argument(_flag(name), help=help_text.replace("%", "%%"), **kwargs)


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a network and write a run directory",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = p.add_argument_group("the run")
    run.add_argument("--recipe", default=None, help="start from this shipped recipe")
    run.add_argument("--config", default=None, metavar="FILE", help="start from a TOML file")
    run.add_argument(
        "--out", default=None, help="run directory [runs/<dataset>-<method>-<date>-<time>]"
    )
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument(
        "--overwrite", action="store_true", help="replace the run files in a non-empty --out"
    )
    run.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op CPU threads [0: the method's choice: 1 for eventprop and stdp, whose "
        "per-step operations are too small to gain from more; torch's default for bptt]",
    )
    run.add_argument(
        "--release-memory",
        action="store_true",
        help="let malloc return freed blocks to the OS (glibc's default); by default they are "
        "kept for the next step, which saves re-faulting them",
    )
    settings = p.add_argument_group("settings")
    for name, f in all_fields().items():
        if f.metadata.get("flag", True):
            _add_setting(settings, name, f)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (argparse leaves the others out)."""
    return {k: v for k, v in vars(args).items() if k not in (*RUNTIME, "command")}


def _check_flags(cfg, given: dict[str, Any]) -> None:
    """Refuse flags that the chosen method or architecture does not use."""
    for name in given:
        if name not in {f.name for f in dataclasses.fields(cfg)}:
            raise ConfigError(f"{_flag(name)} does nothing with --method {cfg.method}")
        why = cfg.uses(name)
        if why:
            raise ConfigError(f"{_flag(name)} {why}")


def _as_flag_error(err: ConfigError, given: dict[str, Any]) -> ConfigError:
    """Name the flag when the bad setting was given as one."""
    message = str(err).split(": ", 1)[-1]
    name = message.split(" ", 1)[0].split("[", 1)[0]
    if name in given:
        return ConfigError(f"{_flag(name)}{message[len(name) :]}")
    return err


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from . import recipes
    from .distributed import is_main_process
    from .rundir import RunDir, default_out, new_record

    _check_threads(args.threads)
    given = _given(args)
    if args.resume:
        return _resume(args, given)
    if args.recipe is None and args.config is None:
        _refuse_unknown(given)
    try:
        resolved = recipes.resolve(recipe=args.recipe, config_file=args.config, overrides=given)
    except ConfigError as err:
        raise _as_flag_error(err, given) from None
    cfg = resolved.config
    _check_flags(cfg, given)
    if cfg.data_dir is not None:
        cfg.data_dir = str(Path(cfg.data_dir).absolute())
    splits = _load_data(cfg, given)  # a bad data folder is refused before the run folder is made
    built = _build(cfg)  # so is a model too large to build
    main = is_main_process()
    if args.out is None and not main:
        raise ConfigError("--out is required under torchrun: every worker must use one folder")
    out = Path(args.out) if args.out else default_out(cfg.dataset, cfg.method)
    run = RunDir.create(out, overwrite=args.overwrite) if main else RunDir(out)
    _setup(args, cfg.method)
    record = new_record(
        cfg,
        run,
        recipe=resolved.recipe,
        config_file=resolved.config_file,
        overrides=given,
        threads=torch.get_num_threads(),
    )
    if main:
        extra = f" with {_show(given)}" if given else ""
        print(f"torchspike train: {resolved.origin()}{extra} -> {run.path}")
        for note in [*resolved.notes, *_data_dir_note(cfg.dataset, cfg.data_dir)]:
            print(f"torchspike train: note: {note}")
        run.write_record(record)
    return _train(cfg, run, record, splits, built, resume=False, threads=args.threads)


def _data_dir_note(dataset: str, data_dir: str | None) -> list[str]:
    """A data folder given for a data set that reads none is said to be unread (not refused:
    recipes' commands pass one folder to every data set)."""
    from .config import data_dir_unused

    why = data_dir_unused(dataset) if data_dir is not None else None
    return [f"--data-dir {why}: it is not read"] if why else []


def _check_threads(threads: int) -> None:
    """0 (the method's choice) up to the CPUs this process may run on."""
    if threads < 0:
        raise ConfigError(f"--threads must be an integer >= 0, got {threads}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if threads > (cpus or 1):
        raise ConfigError(
            f"--threads must be at most the {cpus or 1} CPUs this process may use, got {threads}"
        )


def _refuse_unknown(given: dict[str, Any]) -> None:
    method = given.get("method", "bptt")
    for name in given:
        if method not in methods_with(name):
            raise ConfigError(f"{_flag(name)} does nothing with --method {method}")


def _resume(args: argparse.Namespace, given: dict[str, Any]) -> int:
    from .distributed import is_main_process
    from .rundir import RunDir, provenance

    if args.out is None:
        raise ConfigError("--resume needs --out: the run directory to continue")
    if args.recipe or args.config or args.overwrite:
        raise ConfigError("--resume continues the run in --out: drop --recipe/--config/--overwrite")
    run = RunDir.open(args.out, "--out")
    record = run.record()
    if record.get("legacy"):
        raise ConfigError(
            f"--resume: {run.path} was written by torchspike {record['torchspike']}, whose runs "
            f"this version ({__version__}) cannot continue; eval, plot and export still work"
        )
    cfg = run.config()
    changes = {}
    for name, value in given.items():
        if name not in {f.name for f in dataclasses.fields(cfg)}:
            raise ConfigError(f"{_flag(name)} does nothing with --method {cfg.method}")
        old = getattr(cfg, name)
        if name == "data_dir" and value is not None:  # stored absolute: compare it so
            value = str(Path(value).absolute())
        if value == old:
            continue
        if name not in RESUME_MAY_CHANGE:
            raise ConfigError(
                f"{_flag(name)} cannot change when resuming (the run has {old!r}): only "
                f"{', '.join(map(_flag, RESUME_MAY_CHANGE))} may; start a new run for the rest"
            )
        changes[name] = (old, value)
    from .config import from_dict, to_dict

    values = {**to_dict(cfg), **{k: v for k, (_, v) in changes.items()}}
    try:
        cfg = from_dict(values, "the flags given")
    except ConfigError as err:
        raise _as_flag_error(err, given) from None
    done = _epochs_done(run, cfg.method)
    if done is not None and done >= cfg.epochs:
        raise ConfigError(
            f"--resume: {run.path} has finished its {done} epochs; pass --epochs N (> {done}) "
            f"to extend it"
        )
    for name, (old, new) in changes.items():
        note = ""
        if name == "epochs" and getattr(cfg, "schedule", "none") in ("cosine",):
            note = f" (the cosine schedule now spans {new} epochs from epoch 1)"
        print(f"torchspike train: resume: {name} {old!r} -> {new!r}{note}")
    for note in _data_dir_note(cfg.dataset, changes.get("data_dir", (None, None))[1]):
        print(f"torchspike train: note: {note}")
    splits = _load_data(cfg, given)
    built = _build(cfg)
    _setup(args, cfg.method)
    record["config"] = to_dict(cfg)
    record["out"] = str(run.path)  # where the run is now (it may have been copied or moved)
    record.setdefault("resumes", []).append(
        {"changes": {k: list(v) for k, v in changes.items()}, **provenance(args.threads)}
    )
    if is_main_process():
        run.write_record(record)
        print(f"torchspike train: resuming {run.path}")
    return _train(cfg, run, record, splits, built, resume=True, threads=args.threads)


def _epochs_done(run, method: str) -> int | None:
    from .rundir import CHECKPOINT

    path = run.checkpoint(method)
    if not path.exists():
        raise ConfigError(f"--resume: no checkpoint in {run.path} ({CHECKPOINT[method]})")
    if method == "stdp":
        from .methods.stdp import load

        state, _ = load(path)
        return int(state["epoch"]) if int(state["position"]) == 0 else None
    position = files.load_checkpoint(path).get("position", {})
    return position.get("epoch") if position.get("batch", 0) == 0 else None


def _setup(args: argparse.Namespace, method: str) -> None:
    import torch

    threads = args.threads or (1 if method in SINGLE_THREADED else 0)
    if threads:
        torch.set_num_threads(threads)
    if not args.release_memory:
        from ..kernels.allocator import retain_freed_memory

        retain_freed_memory()


def _load_data(cfg, given: dict[str, Any]) -> Any:
    """The splits a run trains and tests on (STDP: train+validation and test)."""
    from .. import data
    from .rundir import _check_folder

    if cfg.data_dir is not None:
        _check_folder(Path(cfg.data_dir), "--data-dir")
    if cfg.method == "stdp":
        splits = tuple(
            data.load(cfg.dataset, s, cfg.data_dir) for s in ("train+validation", "test")
        )
        n = len(splits[0][1])
        if cfg.label_images > n:
            if "label_images" in given:
                raise ConfigError(
                    f"--label-images must be at most the {n} training images of {cfg.dataset}, "
                    f"got {cfg.label_images}"
                )
            print(  # a recipe's count means "all of them"
                f"torchspike train: note: the recipe's label_images {cfg.label_images} is more "
                f"than the {n} training images of {cfg.dataset}: all {n} label the classes"
            )
    else:
        from .loop import check_splits, load_splits

        splits = load_splits(cfg)
        check_splits(cfg, splits)
        n = len(splits.train)
    if cfg.batch_size > n:
        raise ConfigError(
            f"--batch-size must be at most the {n} training samples of {cfg.dataset}, "
            f"got {cfg.batch_size}"
        )
    return splits


def _build(cfg) -> Any:
    """The method and the freshly initialised model of a gradient run (None for STDP)."""
    import torch

    if cfg.method == "stdp":
        return None
    from .load import build

    torch.manual_seed(cfg.seed)
    try:
        with _parameter_budget(cfg):
            return build(cfg)
    except (RuntimeError, MemoryError) as err:  # the allocator's "can't allocate memory"
        sizes = _model_sizes(cfg, ("hidden", "channels"))
        raise ConfigError(
            f"the model ({sizes}) could not be built: {str(err).splitlines()[0]}"
        ) from None


def _model_sizes(cfg, keys: tuple[str, ...]) -> str:
    """The size flags of a model as a message names them: ``--hidden [8], --channels [...]``."""
    return ", ".join(f"{_flag(k)} {getattr(cfg, k)}" for k in keys if hasattr(cfg, k))


# bytes per parameter in training: the float32 weight, its gradient and Adam's two moments
TRAINING_BYTES_PER_PARAMETER = 16


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@contextlib.contextmanager
def _parameter_budget(cfg):
    """Stop building a model once its parameters, in training, would not fit in this machine's
    memory: a model of many small layers would otherwise fill the memory piece by piece (one
    layer too large for it fails at its allocation, which ``_build`` reports)."""
    from torch.nn.modules.module import register_module_parameter_registration_hook

    have, count = _memory_bytes(), 0

    def counted(module, name, param):
        nonlocal count
        count += param.numel() if param is not None else 0
        if count * TRAINING_BYTES_PER_PARAMETER > have:
            sizes = _model_sizes(cfg, ("hidden", "channels", "blocks"))
            raise ConfigError(
                f"the model ({sizes}) has more than {count:,} parameters: over "
                f"{count * TRAINING_BYTES_PER_PARAMETER / 2**30:,.1f} GiB to train (weights, "
                f"gradients, Adam's moments), more than this machine's {have / 2**30:,.1f} GiB"
            )

    handle = register_module_parameter_registration_hook(counted)
    try:
        yield
    finally:
        handle.remove()


def _train(cfg, run, record: dict[str, Any], splits, built, *, resume: bool, threads: int) -> int:
    from .progress import Interrupted

    try:
        if cfg.method == "stdp":
            from .methods.stdp import fit_run

            metrics = fit_run(cfg, run, splits, resume=resume, threads=threads)
        else:
            from .loop import fit

            method, model = built
            metrics = fit(cfg, method, model, splits, run=run, resume=resume)
    except Interrupted:
        return 130
    record["result"] = {
        k: metrics[k] for k in ("test_accuracy", "wall_seconds", "peak_memory_mib") if k in metrics
    }
    if "best_epoch" in metrics:
        record["result"]["best_epoch"] = metrics["best_epoch"]
    from .distributed import is_main_process

    if is_main_process():
        run.write_record(record)
    return 0


def _show(given: dict[str, Any]) -> str:
    return " ".join(
        f"{_flag(k)} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in given.items()
    )


def cmd_recipes(args: argparse.Namespace) -> int:
    from . import recipes
    from .config import to_dict

    if args.name is None:
        for name in recipes.names():
            r = recipes.get(name)
            print(f"{name:<20} {r.header.get('title', '')}")
            print(f"{'':<20} target {r.header.get('target', '?')}, {r.header.get('wall_time', '')}")
        return 0
    if args.name not in recipes.names():
        known = ", ".join(recipes.names())
        raise ConfigError(f"no recipe {args.name!r}; known: {known}")
    r = recipes.get(args.name)
    cfg = recipes.resolve(recipe=args.name).config
    for key in ("title", "reproduces", "source", "readout", "target", "wall_time"):
        if key in r.header:
            print(f"# {key}: {r.header[key]}")
    if r.defaults_for:
        print(
            "# default for: " + ", ".join(f"--method {m} --dataset {d}" for m, d in r.defaults_for)
        )
    print("[settings]")
    for key, value in to_dict(cfg).items():
        print(f"{key} = {_toml(value)}")
    return 0


def _toml(value: Any, *, inline: bool = False) -> str:
    """``value`` as TOML, which has no null: None is ``"none"`` (so a config file reads it back
    as None), marked unset by a comment unless ``inline`` in a table."""
    import json

    if value is None:
        return '"none"' if inline else '"none"  # (unset)'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        items = (f"{k} = {_toml(v, inline=True)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return json.dumps(value)


def cmd_eval(args: argparse.Namespace) -> int:
    from .rundir import RunDir

    run = RunDir.open(args.run)
    cfg = run.config()
    if args.data_dir is not None:
        from .rundir import _check_folder

        _check_folder(Path(args.data_dir).absolute(), "--data-dir")
        for note in _data_dir_note(args.dataset or cfg.dataset, args.data_dir):
            print(f"torchspike eval: note: {note}")
    if cfg.method == "stdp":
        from .evaluate import check_dataset

        _check_finished(run)
        from .methods.stdp import evaluate_run

        name = args.dataset or cfg.dataset
        check_dataset(name, cfg.dataset)
        evaluate_run(
            run, cfg, dataset=name, split=args.split, data_dir=args.data_dir or cfg.data_dir
        )
        return 0
    from .evaluate import evaluate_run

    evaluate_run(run.path, dataset=args.dataset, split=args.split, data_dir=args.data_dir)
    return 0


def _check_finished(run) -> None:
    """An STDP run has weights once it has finished (an interrupted one: its checkpoint only)."""
    from .rundir import WEIGHTS, RunError

    if not (run / WEIGHTS).exists():
        raise RunError(
            f"run {run.path}: no {WEIGHTS}: not trained to the end yet; finish it with "
            f"torchspike train --resume --out {run.path}"
        )


def cmd_plot(args: argparse.Namespace) -> int:
    from .rundir import RunDir, _check_folder

    if args.out is not None:  # a file in the way is named before any figure is drawn
        _check_folder(Path(args.out).absolute(), "--out")
    run = RunDir.open(args.run)
    if args.out is not None:
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"--out {args.out}: cannot create the folder ({err.strerror})"
            ) from None
    if run.config().method == "stdp":
        from .methods.stdp import plot_run as plot_stdp

        _check_finished(run)
        if args.samples is not None:
            raise ConfigError(
                "--samples does nothing with an STDP run (its figures show no samples)"
            )
        paths = plot_stdp(run, Path(args.out) if args.out else run.path)
    else:
        from .plot import plot_run

        samples = 4 if args.samples is None else args.samples
        paths = plot_run(run.path, out=args.out, samples=samples)
    for path in paths:
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    export_run(args.run, args.output, dt=args.dt, strict=args.strict)
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import datasets

    parser = _Parser(prog="torchspike", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"torchspike {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_parser(sub)
    p = sub.add_parser("recipes", help="list the shipped recipes, or show one resolved")
    p.add_argument("name", nargs="?", default=None)
    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a run")
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--dataset",
        default=None,
        choices=list(datasets.ALL),
        help="another dataset with the same input shape",
    )
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--data-dir", default=None)
    p = sub.add_parser("plot", help="write PNG figures of a run")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", default=None, help="folder for the PNGs [the run directory]")
    p.add_argument(
        "--samples", type=int, default=None, help="test samples in rasters and traces [4]"
    )
    p = sub.add_parser("export", help="export a trained run to another format")
    p.add_argument("run", help="run directory")
    p.add_argument("--format", default="nir", choices=["nir"])
    p.add_argument("output", help="output file, e.g. model.nir")
    p.add_argument(
        "--dt", type=float, default=1e-3, help="time step recorded in the graph (s) [1e-3]"
    )
    p.add_argument("--strict", action="store_true", help="refuse where the export is inexact")
    return parser


PATH_ARGUMENTS = ("out", "data_dir", "config", "recipe", "run", "output")


def _refuse_empty_paths(args: argparse.Namespace) -> None:
    """An empty path would silently mean the default or the current folder: refuse it."""
    for name in PATH_ARGUMENTS:
        if getattr(args, name, None) == "":
            shown = name if name in ("run", "output") else _flag(name)
            raise ConfigError(f"{shown} is empty: give a path")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {
        "train": cmd_train,
        "recipes": cmd_recipes,
        "eval": cmd_eval,
        "plot": cmd_plot,
        "export": cmd_export,
    }
    from ..eventprop.losses import SilentOutputError

    try:
        _refuse_empty_paths(args)
        return commands[args.command](args)
    except SilentOutputError as err:
        print(f"torchspike {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (`torchspike recipes | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except (
        ValueError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    ) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"torchspike {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"torchspike {args.command}: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, MemoryError) as err:
        if not _out_of_memory(err):
            raise
        print(
            f"torchspike {args.command}: error: out of memory ({str(err).splitlines()[0]}): "
            f"reduce --batch-size, --steps or the model's size",
            file=sys.stderr,
        )
        return 2


def _out_of_memory(err: BaseException) -> bool:
    """A failed allocation (CPU or CUDA), which the sizes the user chose cause."""
    text = str(err)
    return isinstance(err, MemoryError) or any(
        s in text for s in ("can't allocate memory", "CUDA out of memory", "out of memory")
    )


if __name__ == "__main__":
    sys.exit(main())

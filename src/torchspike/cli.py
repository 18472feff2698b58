"""``torchspike train | eval | plot``: the command-line application."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import _checks as check
from . import data, surrogate
from ._version import __version__
from .config import Config
from .methods import EVENTPROP_LOSSES, METHODS


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network and write a run directory")
    d = Config()
    p.add_argument("--method", default=d.method, choices=list(METHODS))
    p.add_argument("--dataset", default=d.dataset, choices=list(data.DATASETS))
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (mnist/, ...)")
    p.add_argument("--arch", default=d.arch, choices=["fc", "conv"])
    p.add_argument(
        "--hidden", type=int, nargs="*", default=None, help="hidden sizes (eventprop: 0 = none)"
    )
    p.add_argument("--channels", type=int, nargs="*", default=d.channels, help="conv channels")
    p.add_argument("--neuron", default=d.neuron, choices=["lif", "if"], help="hidden neurons")
    p.add_argument("--readout", default=d.readout, choices=["lif", "li"])
    p.add_argument(
        "--loss",
        default=None,
        choices=["ce-membrane", "ce-count", "mse-count", *EVENTPROP_LOSSES],
        help="bptt: ce-membrane (default), ce-count, mse-count; "
        "eventprop: max-voltage (default), ttfs, sum, sum-exp",
    )
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--beta", type=float, default=d.beta)
    p.add_argument("--encoding", default=None, choices=["direct", "rate", "latency", "binary-time"])
    p.add_argument("--surrogate", default=d.surrogate, choices=list(surrogate.NAMES))
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--epochs", type=int, default=None, help=f"default {d.epochs} (stdp 1)")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {d.batch_size} (stdp 64)")
    p.add_argument("--lr", type=float, default=None, help=f"default {d.lr:g} (eventprop 5e-3)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", default=d.schedule, choices=["none", "cosine"])
    p.add_argument(
        "--keep-best",
        action="store_true",
        help="test and save the weights of the epoch with the best validation accuracy "
        "(bptt, eventprop)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op CPU threads (0: torch's default); 1 is faster for small networks on a "
        "busy machine",
    )
    p.add_argument(
        "--release-memory",
        action="store_true",
        help="let malloc return freed blocks to the OS (glibc's default); by default they are "
        "kept for the next step, which saves re-faulting them (torchspike.allocator)",
    )
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<method>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    ep = p.add_argument_group("eventprop (times in seconds)")
    ep.add_argument("--tau-mem", type=float, default=20e-3)
    ep.add_argument("--tau-syn", type=float, default=5e-3)
    ep.add_argument("--dt", type=float, default=1e-3)
    ep.add_argument("--duration", type=float, default=20e-3, help="simulated time per sample")
    ep.add_argument("--recurrent", action="store_true", help="recurrent hidden layers")
    ep.add_argument("--bias-spike", action="store_true", help="add an always-on input spike")
    ep.add_argument(
        "--rescue-silent",
        type=float,
        default=0.0,
        help="ttfs: raise the weights of silent output neurons by this after each step",
    )
    st = p.add_argument_group("stdp")
    st.add_argument("--n-neurons", type=int, default=100, help="excitatory neurons")
    st.add_argument(
        "--label-images", type=int, default=0, help="frozen labelling pass (0: last window)"
    )
    st.add_argument("--synapse", default="conductance", choices=["conductance", "current"])


# per-method defaults of the options whose meaning depends on the method (bptt: Config's own)
DEFAULTS = {
    "bptt": {},
    "eventprop": {"loss": "max-voltage", "encoding": "latency", "hidden": [350], "lr": 5e-3},
    # one pass as in Diehl & Cook; 64 images at once: the measured speed/accuracy point of
    # bench/RESULTS_stdp.md
    "stdp": {
        "loss": "none",
        "encoding": "rate",
        "hidden": [],
        "lr": 0.0,
        "batch_size": 64,
        "epochs": 1,
    },
}


def _config(args: argparse.Namespace) -> Config:
    values = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)
    }
    values["out"] = args.out or f"runs/{args.dataset}-{args.method}"
    base = Config()
    for key, value in values.items():
        if value is None:  # an option left to the method: its default, else Config's
            values[key] = DEFAULTS[args.method].get(key, getattr(base, key))
    if args.method == "eventprop":
        values["hidden"] = [h for h in values["hidden"] if h != 0]
        values["extra"] = {
            "tau_mem": args.tau_mem,
            "tau_syn": args.tau_syn,
            "dt": args.dt,
            "duration": args.duration,
            "recurrent": args.recurrent,
            "bias_spike": args.bias_spike,
            "rescue_silent": args.rescue_silent,
        }
    if args.method == "stdp":
        values["extra"] = {
            "n_neurons": args.n_neurons,
            "label_images": args.label_images,
            "synapse": args.synapse,
        }
    cfg = Config(**values)
    if args.resume and Path(cfg.out, "config.json").exists():
        from . import checkpoint

        saved = Config.from_dict(checkpoint.load_json(Path(cfg.out, "config.json")))
        saved.epochs, saved.device = cfg.epochs, cfg.device  # the only settings a resume may change
        return saved
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from .train import Interrupted, fit

    cfg = _config(args)
    check.non_negative_int(args.threads, "threads")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.release_memory:
        from .allocator import retain_freed_memory

        retain_freed_memory()
    if cfg.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device {cfg.device!r} asked for, but CUDA is not available")
    try:
        if cfg.method == "stdp":
            from .stdp_app import fit_run

            fit_run(cfg, resume=args.resume)
        else:
            fit(cfg, resume=args.resume)
    except Interrupted:
        return 130
    return 0


def _method_of(run: str) -> str:
    from . import checkpoint

    path = Path(run, "config.json")
    if not path.exists():
        raise FileNotFoundError(f"no config.json in {run}: is it a torchspike run directory?")
    return checkpoint.load_json(path).get("method", "bptt")


def cmd_eval(args: argparse.Namespace) -> int:
    if _method_of(args.run) == "stdp":
        from .stdp_app import evaluate_run as evaluate_stdp

        evaluate_stdp(args.run, dataset=args.dataset, split=args.split, data_dir=args.data_dir)
        return 0
    from .evaluate import evaluate_run

    evaluate_run(args.run, dataset=args.dataset, split=args.split, data_dir=args.data_dir)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    if _method_of(args.run) == "stdp":
        from .stdp_app import plot_run as plot_stdp

        paths = plot_stdp(args.run, Path(args.out or args.run))
    else:
        from .plot import plot_run

        paths = plot_run(args.run, out=args.out, samples=args.samples)
    for path in paths:
        print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("nir") is None:
        raise ValueError("export --format nir needs the nir extra: pip install 'torchspike[nir]'")
    from .nir import export_run

    export_run(args.run, args.output, dt=args.dt, strict=args.strict)
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchspike", description=__doc__)
    parser.add_argument("--version", action="version", version=f"torchspike {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a run")
    p.add_argument("run", help="run directory")
    p.add_argument("--dataset", default=None, help="another dataset with the same input shape")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--data-dir", default=None)
    p = sub.add_parser("plot", help="write PNG figures of a run")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", default=None, help="folder for the PNGs (default: the run directory)")
    p.add_argument("--samples", type=int, default=4, help="test samples in rasters and traces")
    p = sub.add_parser("export", help="export a trained run to another format")
    p.add_argument("run", help="run directory")
    p.add_argument("--format", default="nir", choices=["nir"])
    p.add_argument("output", help="output file, e.g. model.nir")
    p.add_argument("--dt", type=float, default=1e-3, help="time step recorded in the graph (s)")
    p.add_argument("--strict", action="store_true", help="refuse where the export is inexact")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "eval": cmd_eval, "plot": cmd_plot, "export": cmd_export}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"torchspike {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

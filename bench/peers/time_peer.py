"""Time one contender on one benchmark config; print one JSON line.

    .venv-peers/bin/python bench/peers/time_peer.py --peer snntorch --config a \
        --repeats 10 --warmup 3 --threads 2

Contenders: snntorch, spikingjelly, norse (peer venv), torchspike (main venv), floor (either).
ms per step: a/b one training step (forward over T, loss, backward, Adam step), c one inference.
RSS in MiB: the process's peak resident set (VmHWM; ru_maxrss would carry the parent's peak
over exec) after imports, model and data creation (baseline) and at the end (peak).
`--steps/--batch/--hidden` override the config's T, B and hidden width (bench/scaling.py);
`--compile` builds torchspike's LIF layers with `compile=True`, `--compact-spikes` its
SpikingNet with `compact_spikes=True`.

Other modes (used by bench/peers.py):
  --serve            build, then answer stdin lines `run K` with the K step times and `quit`
                     with the RSS figures; replies are JSON lines starting with `@@ `
  --check IN --dump OUT
                     copy the weights and batch in IN (torch.save of fc1.weight, fc1.bias,
                     fc2.weight, fc2.bias, x, y) into the network, run one train step (or one
                     inference for c) and save hidden/output spikes, output membrane, loss and
                     weight gradients to OUT
  --profile N        torch.profiler over N steps after warm-up: top ops by self CPU time
"""

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import conv_models  # noqa: E402
from peer_models import CONFIGS, CONTENDERS, build, make_batch  # noqa: E402

REPLY = "@@ "


def max_rss_mib() -> float:
    """Peak RSS of this process so far, in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reply(obj: dict) -> None:
    print(REPLY + json.dumps(obj), flush=True)


def minor_faults() -> int:
    """Page faults of this process so far that were served without I/O (first touches)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(step, batch, n: int) -> tuple[list[float], list[int]]:
    """ms and minor page faults of each of ``n`` steps."""
    times, faults = [], []
    for _ in range(n):
        faults0, start = minor_faults(), time.perf_counter()
        step(batch)
        times.append((time.perf_counter() - start) * 1e3)
        faults.append(minor_faults() - faults0)
    return times, faults


def serve(step, batch, info: dict) -> None:
    """Answer `run K` / `quit` lines from the parent, so several processes can be interleaved."""
    reply({"ready": True})
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "run":
            ms, faults = timed(step, batch, int(cmd[1]))
            reply({"ms": ms, "faults": faults})
        elif cmd and cmd[0] == "quit":
            reply({**info, "peak_rss_mib": round(max_rss_mib(), 1)})
            return


def _sequence(parts: list[torch.Tensor]) -> torch.Tensor:
    """One [T, B, N] tensor from the hook records: one whole sequence or T single steps."""
    return parts[0] if len(parts) == 1 and parts[0].dim() == 3 else torch.stack(parts)


def check(net, train_step, infer, cfg, path_in: str, path_out: str) -> None:
    """Run the timed closure once on given weights and inputs and dump what it computed."""
    data = torch.load(path_in, weights_only=True)
    with torch.no_grad():
        for name, fc in zip(("fc1", "fc2"), net.linears(), strict=True):
            fc.weight.copy_(data[f"{name}.weight"] * net.scale)
            fc.bias.copy_(data[f"{name}.bias"] * net.scale)
    rec: dict[str, list[torch.Tensor]] = {}
    handles = net.watch(rec)
    batch = (data["x"], data["y"])
    loss = train_step(batch) if cfg.train else None
    if not cfg.train:
        infer(batch)
    for h in handles:
        h.remove()
    dump = {name: _sequence(parts) for name, parts in rec.items()}
    dump["loss"] = loss
    dump["readout"] = net.readout
    dump["scale"] = net.scale
    if cfg.train:
        dump["grads"] = {
            f"{name}.{p}": getattr(fc, p).grad * net.scale
            for name, fc in zip(("fc1", "fc2"), net.linears(), strict=True)
            for p in ("weight", "bias")
        }
    torch.save(dump, path_out)


def profile(step, batch, n: int, rows: int = 25) -> None:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            step(batch)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=(*CONTENDERS, "floor_cl"), required=True)
    configs = sorted([*CONFIGS, *conv_models.CONV_CONFIGS])
    parser.add_argument("--config", choices=configs, required=True)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, help="override T")
    parser.add_argument("--batch", type=int, help="override B")
    parser.add_argument("--hidden", type=int, help="override the hidden width N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--density", type=float, help="conv configs: override the input density")
    parser.add_argument(
        "--compile", action="store_true", help="torchspike: LIF(..., compile=True) (inductor)"
    )
    parser.add_argument(
        "--compact-spikes", action="store_true", help="torchspike: SpikingNet(compact_spikes=True)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true")
    mode.add_argument("--check", metavar="IN")
    mode.add_argument("--profile", type=int, metavar="N")
    parser.add_argument("--dump", metavar="OUT", help="with --check: where to save the results")
    args = parser.parse_args()
    if args.check and not args.dump:
        parser.error("--check needs --dump")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.config in conv_models.CONV_CONFIGS:
        return conv_main(args)
    overrides = {"steps": args.steps, "batch": args.batch, "n_hidden": args.hidden}
    cfg = dataclasses.replace(
        CONFIGS[args.config], **{k: v for k, v in overrides.items() if v is not None}
    )
    if (args.compile or args.compact_spikes) and args.peer != "torchspike":
        parser.error("--compile and --compact-spikes apply to torchspike only")
    options = {"compile": args.compile, "compact_spikes": args.compact_spikes}
    net, train_step, infer = build(args.peer, cfg, **options)
    if args.check:
        check(net, train_step, infer, cfg, args.check, args.dump)
        return
    step = train_step if cfg.train else infer
    batch = make_batch(cfg, args.seed)
    baseline = max_rss_mib()
    info = {
        "peer": args.peer,
        "config": args.config,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "hidden": cfg.n_hidden,
        "threads": args.threads,
        "baseline_rss_mib": round(baseline, 1),
        "torch": torch.__version__,
    }
    if args.serve:
        serve(step, batch, info)
        return
    timed(step, batch, args.warmup)
    if args.profile:
        profile(step, batch, args.profile)
        return
    times, faults = timed(step, batch, args.repeats)
    result = {
        **info,
        "median_ms": round(statistics.median(times), 2),
        "median_faults": statistics.median(faults),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "peak_rss_mib": round(max_rss_mib(), 1),
    }
    print(json.dumps(result))


def conv_main(args: argparse.Namespace) -> None:
    """Configs n and v (and their inference variants): `conv_models.py`."""
    overrides = {"steps": args.steps, "batch": args.batch}
    cfg = dataclasses.replace(
        conv_models.CONV_CONFIGS[args.config], **{k: v for k, v in overrides.items() if v}
    )
    if args.density is not None:
        cfg = dataclasses.replace(cfg, density=args.density)
    net, train_step, infer = conv_models.build(args.peer, cfg)
    if args.check:
        from conv_equivalence import dump

        dump(net, train_step, infer, cfg, args.check, args.dump)
        return
    step = train_step if cfg.train else infer
    batch = conv_models.make_batch(cfg, args.seed)
    baseline = max_rss_mib()
    info = {
        "peer": args.peer,
        "config": args.config,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "density": cfg.density,
        "threads": args.threads,
        "baseline_rss_mib": round(baseline, 1),
        "torch": torch.__version__,
    }
    if args.serve:
        serve(step, batch, info)
        return
    timed(step, batch, args.warmup)
    if args.profile:
        profile(step, batch, args.profile)
        return
    times, _ = timed(step, batch, args.repeats)
    ms = {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2)}
    print(json.dumps({**info, **ms, "peak_rss_mib": round(max_rss_mib(), 1)}))


if __name__ == "__main__":
    main()

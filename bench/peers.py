"""Benchmark torchspike against snnTorch, SpikingJelly and Norse on the same networks.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/peers.py --repeats 20

Configs (bench/peers/peer_models.py): a = 784-1000-10 LIF, T=25, B=128, static image, train step
(forward, loss, backward, Adam); b = 700-1024-20, T=100, B=32, Bernoulli(0.05) input spikes,
train step; c = inference of a. Contenders: torchspike (this venv), the peers (the peer venv,
`--peer-python`; a peer that does not import is skipped with a note) and the dense GEMM floor.

1. Equivalence: one set of weights and inputs is copied into every network, which runs its timed
   step once and dumps hidden spikes, output spikes, output membrane, loss and gradients. Each
   dump is compared with a plain-torch recursion of its library's neuron (below), torchspike
   with snnTorch spike for spike, and SpikingJelly / Norse with torchspike up to each hidden
   neuron's first spike (their resets differ; the models agree until then). Spike trains may part
   only where a membrane is within `TIE` of the threshold (float rounding); a timing run whose
   check fails is reported as failed, not compared.
2. Timing: every contender is one process (`time_peer.py --serve`); after warm-up the parent
   gives each a turn, A B C .. then .. C B A, `--repeats` rounds, so drifts in machine speed hit
   all alike. A turn is `--turn-warmup` untimed steps, then `--steps-per-round` timed ones: the
   first step after another process ran pays for cold caches, memory faulted in afresh and a CPU
   woken from idle (in two quiet runs, torchspike's 3 ms inference step took 9.3 ms as the first
   of a turn; the peers' 25-140 ms steps moved by 2-12%). Reported: median, min, max ms per
   step, minor page faults per step, peak RSS above the process baseline (after imports, model
   and data), and torchspike's time / peer's.
3. Writes bench/RESULTS_perf.md (tables, targets, command, machine, load) and bench/out/peers.json;
   `--profile` adds bench/out/profile_<config>.txt (torch.profiler on the torchspike child).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "bench" / "peers"
sys.path.insert(0, str(PEER_DIR))
from conv_equivalence import conv_check_table, run_conv_checks  # noqa: E402
from conv_models import CONV_CONFIGS  # noqa: E402
from equivalence import TIE, check_table, run_checks, time_peer  # noqa: E402
from machine_info import cpu_jiffies, loadavg, machine  # noqa: E402
from peer_models import PEERS  # noqa: E402

PEER_MODULES = {"snntorch": "snntorch", "spikingjelly": "spikingjelly", "norse": "norse.torch"}
TARGETS = {"a": 5.0, "b": 2.0, "c": 4.0, "n": 3.0, "v": 1.2}  # x faster than the fastest peer
DESCRIBE = {
    "a": "a: train 784-1000-10, T=25, B=128, static",
    "b": "b: train 700-1024-20, T=100, B=32, p=0.05",
    "c": "c: inference of a",
    "n": "n: train conv 2-12-32 (5x5, pool 2) + FC 800-10, T=50, B=32, events p=0.02",
    "v": "v: train conv 64-128-128 (3x3, BN) + FC 8192-10, T=4, B=32, static",
    "n-infer": "n-infer: inference of n",
    "v-infer": "v-infer: inference of v",
    "n-b1": "n-b1: inference of n, batch 1",
    "v-b1": "v-b1: inference of v, batch 1",
}
CONV_PEERS = ("snntorch", "spikingjelly")  # Norse is left out of the conv configs (conv_models)
FLOORS = {"floor": "floor (dense, T*B rows)", "floor_cl": "floor, channels-last input"}


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


class Child:
    """One contender's `time_peer.py --serve` process."""

    def __init__(
        self, name: str, python: list[str], cfg: str, threads: int, seed: int, extra=()
    ) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile(mode="w+")
        flags = ("--threads", str(threads), "--seed", str(seed), "--serve", *extra)
        cmd = time_peer(python, name, cfg, *flags)
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
        )

    def read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError(f"{self.name}: no reply in {timeout:.0f} s")
            line = self.proc.stdout.readline()
            if not line:
                self.stderr.seek(0)
                tail = self.stderr.read().strip().splitlines()[-3:]
                raise RuntimeError(f"{self.name} exited: {' | '.join(tail)}")
            if line.startswith("@@ "):
                return json.loads(line[3:])

    def ask(self, command: str, timeout: float) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def time_config(cfg: str, contenders: dict[str, list[str]], args: argparse.Namespace) -> dict:
    """Interleaved timing of all contenders on one config; a contender that fails is noted."""
    children, results = {}, {}
    try:
        for name, python in contenders.items():
            extra = ()
            if name == "torchspike":
                extra = ("--compile",) * args.compile + ("--compact-spikes",) * args.compact_spikes
            children[name] = Child(name, python, cfg, args.threads, args.seed, extra)
        for name, child in list(children.items()):
            try:
                child.read(timeout=600)
                child.ask(f"run {args.warmup}", timeout=600)
            except (TimeoutError, RuntimeError) as err:
                results[name] = {"error": str(err)}
                children.pop(name).close()
        times: dict[str, list[float]] = {name: [] for name in children}
        faults: dict[str, list[int]] = {name: [] for name in children}
        for r in range(args.repeats):
            order = list(children) if r % 2 == 0 else list(reversed(children))
            for name in order:
                if name in results:
                    continue
                try:
                    n = args.turn_warmup + args.steps_per_round
                    got = children[name].ask(f"run {n}", 600)
                    times[name] += got["ms"][args.turn_warmup :]
                    faults[name] += got["faults"][args.turn_warmup :]
                except (TimeoutError, RuntimeError) as err:
                    results[name] = {"error": str(err)}
                time.sleep(args.gap)
        for name, child in children.items():
            if name in results:
                continue
            info = child.ask("quit", timeout=60)
            ms = times[name]
            results[name] = {
                "median_ms": statistics.median(ms),
                "min_ms": min(ms),
                "max_ms": max(ms),
                "samples": len(ms),
                "median_faults": statistics.median(faults[name]),
                "baseline_rss_mib": info["baseline_rss_mib"],
                "peak_rss_mib": info["peak_rss_mib"],
                "rss_above_baseline_mib": info["peak_rss_mib"] - info["baseline_rss_mib"],
            }
    finally:
        for child in children.values():
            child.close()
    return results


def profile_torchspike(cfg: str, threads: int, out: Path) -> None:
    flags = ("--threads", str(threads), "--profile", "10")
    cmd = time_peer([sys.executable], "torchspike", cfg, *flags)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out.write_text(proc.stdout)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def verdicts(timing: dict) -> list[str]:
    """One line per target of the issue, met or not."""
    lines = []
    for cfg, need in TARGETS.items():
        res = timing.get(cfg, {})
        ts = res.get("torchspike", {})
        peers = {p: r for p, r in res.items() if p in PEERS and "median_ms" in r}
        if "median_ms" not in ts or not peers:
            lines.append(f"- {cfg}: not measured")
            continue
        fastest = min(peers, key=lambda p: peers[p]["median_ms"])
        speedup = peers[fastest]["median_ms"] / ts["median_ms"]
        met = "met" if speedup >= need else "**missed**"
        lines.append(
            f"- {cfg}: {speedup:.1f}x faster than the fastest peer ({fastest}), "
            f"target >= {need:g}x: {met}"
        )
        for key in ("floor", "floor_cl"):
            floor = res.get(key, {})
            if cfg in ("b", "n") and "median_ms" in floor:
                met = "met" if ts["median_ms"] < floor["median_ms"] else "**missed**"
                lines.append(
                    f"- {cfg}: {ts['median_ms']:.1f} ms vs the {FLOORS[key]} "
                    f"{floor['median_ms']:.1f} ms, target faster than the floor: {met}"
                )
        if cfg in ("a", "b", "n", "v"):
            low = min(peers, key=lambda p: peers[p]["rss_above_baseline_mib"])
            mem, peer_mem = ts["rss_above_baseline_mib"], peers[low]["rss_above_baseline_mib"]
            met = "met" if mem <= peer_mem / 2 else "**missed**"
            lines.append(
                f"- {cfg}: peak RSS above baseline {mem:.0f} MiB vs the lowest peer's "
                f"{peer_mem:.0f} MiB ({low}), target <= half: {met}"
            )
    return lines


def timing_table(timing: dict) -> list[str]:
    rows = [
        "| config | contender | median ms | min ms | max ms | peak RSS MiB (above baseline) "
        "| page faults / step | torchspike / contender time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cfg, res in timing.items():
        ts = res.get("torchspike", {}).get("median_ms")
        for i, (name, r) in enumerate(res.items()):
            label = DESCRIBE[cfg] if i == 0 else ""
            shown = FLOORS.get(name, name)
            if "median_ms" not in r:
                rows.append(f"| {label} | {shown} | failed: {r.get('error', '?')} | | | | | |")
                continue
            ratio = f"{ts / r['median_ms']:.3f}" if ts and name != "torchspike" else ""
            mem = f"{r['peak_rss_mib']:.0f} (+{r['rss_above_baseline_mib']:.0f})"
            rows.append(
                f"| {label} | {shown} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | "
                f"{r['max_ms']:.2f} | {mem} | {r['median_faults']:.0f} | {ratio} |"
            )
    return rows


def cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat), while this runner idles."""
    try:
        total0, busy0 = cpu_jiffies()
        time.sleep(seconds)
        total1, busy1 = cpu_jiffies()
    except OSError:
        return float("nan")
    return (busy1 - busy0) / max(total1 - total0, 1)


def write_report(
    path: Path,
    args: argparse.Namespace,
    checks: dict,
    timing: dict,
    notes: list[str],
    loads: tuple[str, str],
    busy: dict[str, float],
) -> None:
    lines = [
        "# torchspike vs snnTorch, SpikingJelly, Norse (written by `bench/peers.py`)",
        "",
        "```sh",
        f"flock /tmp/torchspike-heavy.lock .venv/bin/python bench/peers.py {args.cmdline}",
        "```",
        "",
        f"Machine: {machine()}; {args.threads} threads per process; "
        f"{args.warmup} warm-up steps, then {args.repeats} interleaved rounds: per turn "
        f"{args.turn_warmup} untimed and {args.steps_per_round} timed step(s); "
        f"child environment: {' '.join(args.child_env) or 'unchanged'}; "
        f"torchspike's LIF layers {'compiled (compile=True)' if args.compile else 'eager'}"
        f"{', compact_spikes=True' if args.compact_spikes else ''}; "
        f"load average before / after: {loads[0]} / {loads[1]}; "
        "CPU busy (other processes) just before each config's timing: "
        + ", ".join(f"{c} {b:.0%}" for c, b in busy.items())
        + ".",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "ms per step: a and b one training step (forward over all T steps, loss, backward, "
        "Adam), c one inference (no_grad). RSS: the peak resident set (VmHWM), and above "
        "baseline: minus the same after imports, model and data. Page faults: the median "
        "number of minor faults in a timed step (memory the process touches for the first "
        "time: about 3,200 for a [T, B, N] buffer of config a or b that the allocator gave "
        "back to the system and takes again). The last column is the issue's ratio (below 1: "
        "torchspike is faster).",
        "",
        *timing_table(timing),
        "",
        "## Targets",
        "",
        *verdicts(timing),
        "",
    ]
    conv_checks = {c: r for c, r in checks.items() if c in CONV_CONFIGS}
    checks = {c: r for c, r in checks.items() if c not in CONV_CONFIGS}
    if conv_checks:
        lines += [
            "## Equivalence check of the conv configs (before timing)",
            "",
            "torchspike's initial weights (Conv and Linear weights and biases times the gain; "
            "for v, BatchNorm running statistics from one torchspike forward in training "
            "mode), one batch, every network in eval mode (BatchNorm on running statistics: "
            "in training torchspike and SpikingJelly normalise over the T*B rows of the "
            "folded batch, snnTorch over the B rows of each step; torchspike trains on the "
            "T*B statistics), one timed step each. Per LIF layer: neurons whose spike train "
            "parts from the library's own recursion (plain torch, `conv_equivalence.oracle`), "
            f"unexplained unless the membrane is within {TIE:g} of the threshold or the "
            "layer's input had already parted in that batch row. snnTorch is compared with "
            "torchspike spike for spike, with loss and gradients; SpikingJelly (another "
            "reset) up to each first-layer neuron's first spike.",
            "",
            *conv_check_table(conv_checks),
            "",
        ]
    if checks:
        lines += [
            "## Equivalence check (before timing)",
            "",
            "Same weights and inputs in every network (Norse's x20, as in its benchmark net), "
            "one timed step each. *Own recursion*: the library's neuron written out in plain "
            "torch (`lif_oracle`); a neuron counts as *parted* where its spike train first "
            f"differs, *unexplained* unless the membrane there is within {TIE:g} of the "
            "threshold (float rounding) or its input already differed. torchspike and snnTorch "
            "are the same model and are compared spike for spike, with loss and weight "
            "gradients. SpikingJelly (reset in the same step, so the subtracted threshold "
            "decays; `>=`) and Norse (reset to 0 in the same step) are different models: they "
            "agree with torchspike up to each hidden neuron's first spike, which is compared.",
            "",
            *check_table(checks),
            "",
        ]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path.write_text("\n".join(lines))


# ---------------------------------------------------------------------------------------------


def find_contenders(args: argparse.Namespace, notes: list[str]) -> dict[str, list[str]]:
    """Contender -> python command; peers that do not import in the peer venv are skipped."""
    contenders = {"torchspike": [sys.executable]}
    peer_python = Path(args.peer_python)
    for peer in args.peers:
        if not peer_python.exists():
            notes.append(f"{peer} skipped: no peer venv at {peer_python} (see docs/perf.md)")
            continue
        probe = subprocess.run(
            [str(peer_python), "-c", f"import {PEER_MODULES[peer]}"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            err = (probe.stderr.strip().splitlines() or ["?"])[-1]
            notes.append(f"{peer} skipped: `import {PEER_MODULES[peer]}` failed ({err})")
            continue
        contenders[peer] = [str(peer_python)]
    if args.floor:
        contenders["floor"] = [sys.executable]
        contenders["floor_cl"] = [sys.executable]
    return contenders


def for_config(cfg: str, contenders: dict[str, list[str]]) -> dict[str, list[str]]:
    """The contenders of one config: no Norse and no channels-last floor outside n and v."""
    if cfg in CONV_CONFIGS:
        return {n: py for n, py in contenders.items() if n not in PEERS or n in CONV_PEERS}
    return {n: py for n, py in contenders.items() if n != "floor_cl"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = [*TARGETS, *[c for c in CONV_CONFIGS if c not in TARGETS]]
    parser.add_argument("--configs", nargs="+", default=every, choices=every)
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--peer-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--repeats", type=int, default=20, help="interleaved rounds")
    parser.add_argument("--steps-per-round", type=int, default=2, help="timed steps per turn")
    parser.add_argument(
        "--turn-warmup", type=int, default=1, help="untimed steps at the start of each turn"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between two turns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-floor", dest="floor", action="store_false")
    parser.add_argument(
        "--compile", action="store_true", help="time torchspike with LIF(..., compile=True)"
    )
    parser.add_argument(
        "--compact-spikes", action="store_true", help="time SpikingNet(compact_spikes=True)"
    )
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--check-only", action="store_true", help="no timing, no report file")
    parser.add_argument(
        "--check-gains",
        nargs="+",
        default=["1x1", "3x10"],
        metavar="G1xG2",
        help="check at the initial fc1/fc2 weights times these gains",
    )
    parser.add_argument(
        "--conv-gains",
        nargs="+",
        default=["1", "2"],
        metavar="G",
        help="n and v: check at torchspike's initial Conv/Linear weights times these gains",
    )
    parser.add_argument("--profile", action="store_true", help="profile torchspike per config")
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_perf.md"))
    parser.add_argument(
        "--child-env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="environment for every child alike, e.g. MALLOC_MMAP_MAX_=0 (glibc tuning)",
    )
    args = parser.parse_args()
    args.cmdline = shlex.join(sys.argv[1:])
    os.environ.update(kv.split("=", 1) for kv in args.child_env)  # inherited by every child

    notes: list[str] = []
    contenders = find_contenders(args, notes)
    load_before = loadavg()
    checks = {}
    if not args.skip_check:
        fc = [c for c in args.configs if c not in CONV_CONFIGS]
        fc_contenders = for_config(fc[0], contenders) if fc else {}  # no channels-last floor
        checks = run_checks(fc, fc_contenders, args.seed, args.check_gains) if fc else {}
        for cfg in args.configs:
            if cfg in ("n", "v"):  # the inference variants run the same networks
                run = for_config(cfg, contenders)
                checks[cfg] = run_conv_checks(cfg, run, args.seed, args.conv_gains)
    failed = {
        (cfg, name)
        for cfg, by_weights in checks.items()
        for res in by_weights.values()
        for name, r in res.items()
        if not r["ok"]
    }
    for cfg, name in sorted(failed):
        notes.append(f"{cfg}/{name}: equivalence check failed; its timing is not reported")
    if args.check_only:
        fc = {c: r for c, r in checks.items() if c not in CONV_CONFIGS}
        conv = {c: r for c, r in checks.items() if c in CONV_CONFIGS}
        print("\n".join(check_table(fc) + conv_check_table(conv) + notes))
        return int(bool(failed))
    timing, busy_before = {}, {}
    for cfg in args.configs:
        base = cfg.split("-")[0]
        run = {
            n: py
            for n, py in for_config(cfg, contenders).items()
            if (cfg, n) not in failed and (base, n) not in failed
        }
        busy = cpu_busy()
        print(
            f"timing config {cfg} (CPU busy before: {busy:.0%}): {', '.join(run)}",
            file=sys.stderr,
            flush=True,
        )
        timing[cfg] = time_config(cfg, run, args)
        busy_before[cfg] = busy
        if busy > 0.1:
            notes.append(
                f"{cfg}: other processes kept {busy:.0%} of the CPUs busy just before "
                "its timing: treat its figures with care"
            )
    load_after = loadavg()
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        for cfg in args.configs:
            profile_torchspike(cfg, args.threads, out_dir / f"profile_{cfg}.txt")
    (out_dir / "peers.json").write_text(
        json.dumps(
            {
                "checks": checks,
                "timing": timing,
                "notes": notes,
                "load": [load_before, load_after],
                "cpu_busy_before_timing": busy_before,
                "command": args.cmdline,
            },
            indent=1,
        )
    )
    write_report(
        Path(args.out), args, checks, timing, notes, (load_before, load_after), busy_before
    )
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
   step, peak RSS above the process baseline (after imports, model and data), and torchspike's
   time / peer's.
3. Writes bench/RESULTS_perf.md (tables, targets, command, machine, load) and bench/out/peers.json;
   `--profile` adds bench/out/profile_<config>.txt (torch.profiler on the torchspike child).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "bench" / "peers"
sys.path.insert(0, str(PEER_DIR))
from peer_models import BETA, CONFIGS, PEERS, Config, make_batch  # noqa: E402

TIME_PEER = PEER_DIR / "time_peer.py"
PEER_MODULES = {"snntorch": "snntorch", "spikingjelly": "spikingjelly", "norse": "norse.torch"}
TIE = 1e-4  # spike trains may first differ only where |membrane - threshold| <= TIE
TARGETS = {"a": 5.0, "b": 2.0, "c": 4.0}  # x faster than the fastest peer
DESCRIBE = {
    "a": "a: train 784-1000-10, T=25, B=128, static",
    "b": "b: train 700-1024-20, T=100, B=32, p=0.05",
    "c": "c: inference of a",
}


def time_peer(python: list[str], peer: str, cfg: str, *args: str) -> list[str]:
    """The command line of one `time_peer.py` child."""
    return [*python, str(TIME_PEER), "--peer", peer, "--config", cfg, *args]


# ---------------------------------------------------------------------------------------------
# Equivalence check
# ---------------------------------------------------------------------------------------------


def lif_oracle(model: str, xs: Tensor, v_th: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes, charged, readout)`` of ``model``'s neuron over currents ``xs`` [T, B, N].

    ``charged`` is the membrane compared with the threshold; ``readout`` the one the library
    returns (snnTorch/torchspike: before the reset, SpikingJelly/Norse: after it).
    torchspike, snntorch  U = beta U + x - v_th z[t-1];  z = U > v_th         (reset one step late)
    spikingjelly          H = V - V / 20 + x;  z = H >= v_th;  V = H - v_th z  (same step)
    norse                 v' = v + 0.05 (x - v);  z = v' > v_th;  v = v' (1 - z)  (x is 20 I)
    """
    beta = torch.tensor(BETA)
    v = torch.zeros_like(xs[0])
    z = torch.zeros_like(v)
    spikes, charged, readout = [], [], []
    for x in xs.unbind(0):
        if model in ("torchspike", "snntorch"):
            h = v = beta * v + x - z * v_th
            z = (h > v_th).to(x.dtype)
        elif model == "spikingjelly":
            h = v - v / 20.0 + x
            z = (h >= v_th).to(x.dtype)
            v = h - z * v_th
        elif model == "norse":
            h = v + torch.tensor(1e-3) * torch.tensor(50.0) * (x - v)
            z = (h > v_th).to(x.dtype)
            v = (1 - z) * h
        else:
            raise ValueError(f"no oracle for {model!r}")
        spikes.append(z)
        charged.append(h)
        readout.append(v)
    return torch.stack(spikes), torch.stack(charged), torch.stack(readout)


def net_oracle(model: str, cfg: Config, data: dict[str, Tensor], scale: float) -> dict:
    """The two-layer network of ``model`` on ``data``'s weights and batch, in plain torch."""
    x = data["x"]
    xs = x.expand(cfg.steps, *x.shape) if cfg.static else x
    i1 = F.linear(xs, data["fc1.weight"] * scale, data["fc1.bias"] * scale)
    z1, h1, _ = lif_oracle(model, i1)
    i2 = F.linear(z1, data["fc2.weight"] * scale, data["fc2.bias"] * scale)
    z2, h2, v2 = lif_oracle(model, i2)
    loss = sum(F.cross_entropy(v, data["y"]).item() for v in v2.unbind(0))
    return {"hidden": z1, "hidden_h": h1, "out": z2, "out_h": h2, "v": v2, "loss": loss}


def first_true(mask: Tensor) -> Tensor:
    """Index of the first True along dim 0 (``len`` where there is none)."""
    steps = torch.arange(mask.shape[0], 0, -1).view(-1, *[1] * (mask.dim() - 1))
    first = mask.shape[0] - (mask.to(torch.int64) * steps).amax(0)
    return torch.where(mask.any(0), first, torch.full_like(first, mask.shape[0]))


def divergence(a: Tensor, b: Tensor, charged: Tensor, start: Tensor | None = None) -> dict:
    """Where spike trains ``a`` and ``b`` [T, B, N] part, and whether each parting is a tie.

    A neuron's trains may part at a step where ``charged`` is within ``TIE`` of the threshold,
    or (``start`` [B]) from the step on which its layer's input parted in that batch row.
    """
    diff = a != b
    first = first_true(diff)
    parted = first < a.shape[0]
    h_at = charged.gather(0, first.clamp(max=a.shape[0] - 1).unsqueeze(0)).squeeze(0)
    excused = (h_at - 1.0).abs() <= TIE
    if start is not None:
        excused |= first >= start.unsqueeze(-1)
    return {
        "neurons": a[0].numel(),
        "parted": int(parted.sum()),
        "unexplained": int((parted & ~excused).sum()),
        "spikes_differ": int(diff.sum()),
        "row_start": first.amin(-1),  # [B]: the first step a row's layer output parted
    }


def first_spike_divergence(a: Tensor, b: Tensor, charged: Tensor) -> dict:
    """Compare the first hidden spike of every neuron: up to it, all the resets agree."""
    fa, fb = first_true(a > 0), first_true(b > 0)
    parted = fa != fb
    at = torch.minimum(fa, fb).clamp(max=a.shape[0] - 1)
    h_at = charged.gather(0, at.unsqueeze(0)).squeeze(0)
    return {
        "neurons": int(fa.numel()),
        "parted": int(parted.sum()),
        "unexplained": int((parted & ((h_at - 1.0).abs() > TIE)).sum()),
        "silent": int((fa == a.shape[0]).sum()),
    }


def compare_spikes(
    dump: dict, ref: dict, hidden_charged: Tensor, out_charged: Tensor
) -> tuple[dict, Tensor]:
    """Hidden and output spikes of ``dump`` against ``ref`` (an output neuron is excused from
    the step its row's hidden spikes parted); also the [B] mask of rows whose spikes all agree."""
    hidden = divergence(dump["hidden"], ref["hidden"], hidden_charged)
    hidden_start = hidden.pop("row_start")
    out = divergence(dump["out"], ref["out"], out_charged, start=hidden_start)
    same_rows = (hidden_start == dump["hidden"].shape[0]) & (
        out.pop("row_start") == dump["out"].shape[0]
    )
    return {"hidden": hidden, "out": out}, same_rows


def _max_diff(a: Tensor, b: Tensor, rows: Tensor) -> float:
    """Largest |a - b| / max(1, |b|) over the batch rows ``rows`` of [T, B, N] tensors."""
    if not bool(rows.any()):
        return 0.0
    a, b = a[:, rows], b[:, rows]
    return float((a - b).abs().amax() / b.abs().amax().clamp_min(1.0))


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_contender(name: str, dump: dict, ts: dict | None, oracles: dict) -> dict:
    """One contender's dump against its own model's oracle, and against torchspike's dump."""
    oracle = oracles[name]
    row: dict = {"readout": dump["readout"]}
    row["oracle"], same = compare_spikes(dump, oracle, oracle["hidden_h"], oracle["out_h"])
    row["readout_diff_oracle"] = _max_diff(dump["v"], oracle["v"], same)
    row["hidden_rate"] = float(dump["hidden"].mean())
    row["out_rate"] = float(dump["out"].mean())
    ok = all(v["unexplained"] == 0 for v in row["oracle"].values())
    ok &= row["readout_diff_oracle"] < 1e-4
    if dump["loss"] is not None:
        row["loss"] = dump["loss"]
        row["loss_rel_oracle"] = abs(dump["loss"] - oracle["loss"]) / abs(oracle["loss"])
        if bool(same.all()):
            ok &= row["loss_rel_oracle"] < 1e-5
    if ts is None or name == "torchspike":
        row["ok"] = bool(ok)
        return row
    ts_oracle = oracles["torchspike"]
    if name == "snntorch":  # the same model: spike for spike, membrane, loss and gradients
        row["vs_torchspike"], same = compare_spikes(
            dump, ts, ts_oracle["hidden_h"], ts_oracle["out_h"]
        )
        ok &= all(v["unexplained"] == 0 for v in row["vs_torchspike"].values())
        row["membrane_diff"] = _max_diff(dump["v"], ts["v"], same)
        ok &= row["membrane_diff"] < 1e-4
        if dump["loss"] is not None:
            row["loss_rel_torchspike"] = abs(dump["loss"] - ts["loss"]) / abs(ts["loss"])
            row["grad_rel_torchspike"] = max(
                _rel(ts["grads"][k], dump["grads"][k]) for k in dump["grads"]
            )
            if bool(same.all()):
                ok &= row["loss_rel_torchspike"] < 1e-5 and row["grad_rel_torchspike"] < 1e-4
    else:  # different resets: the same model up to each hidden neuron's first spike
        row["first_spike_vs_torchspike"] = first_spike_divergence(
            dump["hidden"], ts["hidden"], ts_oracle["hidden_h"]
        )
        ok &= row["first_spike_vs_torchspike"]["unexplained"] == 0
        row["hidden_spikes_differ_from_torchspike"] = float(
            (dump["hidden"] != ts["hidden"]).float().mean()
        )
    row["ok"] = bool(ok)
    return row


def check_weights(
    cfg_name: str, contenders: dict[str, list[str]], data: dict[str, Tensor], tmp: Path
) -> dict:
    """Run every spiking contender once on ``data`` and check what each computed."""
    cfg = CONFIGS[cfg_name]
    path_in = tmp / "in.pt"
    torch.save(data, path_in)
    dumps, rows = {}, {}
    for name, python in contenders.items():
        if name == "floor":
            continue
        path_out = tmp / f"{name}.pt"
        flags = ("--threads", "1", "--check", str(path_in), "--dump", str(path_out))
        cmd = time_peer(python, name, cfg_name, *flags)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows[name] = {"ok": False, "note": f"check run failed: {err}"}
            continue
        dumps[name] = torch.load(path_out, weights_only=True)
    oracles = {name: net_oracle(name, cfg, data, dump["scale"]) for name, dump in dumps.items()}
    oracles.setdefault("torchspike", net_oracle("torchspike", cfg, data, 1.0))
    ts = dumps.get("torchspike")
    for name, dump in dumps.items():
        rows[name] = check_contender(name, dump, ts, oracles)
    return rows


def run_checks(
    configs: list[str], contenders: dict[str, list[str]], seed: int, gains: list[str]
) -> dict:
    """``{config: {weights: {contender: row}}}`` for the initial weights times each gain.

    A gain ``G1xG2`` multiplies the initial fc1 / fc2 weights and biases: 1x1 is the benchmark's
    operating point, where b's output layer is nearly silent; larger gains make it spike.
    """
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg_name in configs:
            cfg = CONFIGS[cfg_name]
            results[cfg_name] = {}
            for gain in gains:
                g1, g2 = (float(g) for g in gain.split("x"))
                torch.manual_seed(seed)
                fc1 = nn.Linear(cfg.n_in, cfg.n_hidden)
                fc2 = nn.Linear(cfg.n_hidden, cfg.n_out)
                data = {
                    f"{n}.{p}": getattr(fc, p).detach() * g
                    for n, fc, g in (("fc1", fc1, g1), ("fc2", fc2, g2))
                    for p in ("weight", "bias")
                }
                data["x"], data["y"] = make_batch(cfg, seed + 1)
                label = f"fc1 x{g1:g}, fc2 x{g2:g}"
                results[cfg_name][label] = check_weights(cfg_name, contenders, data, Path(tmp))
    return results


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


class Child:
    """One contender's `time_peer.py --serve` process."""

    def __init__(self, name: str, python: list[str], cfg: str, threads: int, seed: int):
        self.name = name
        self.stderr = tempfile.TemporaryFile(mode="w+")
        flags = ("--threads", str(threads), "--seed", str(seed), "--serve")
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
            children[name] = Child(name, python, cfg, args.threads, args.seed)
        for name, child in list(children.items()):
            try:
                child.read(timeout=600)
                child.ask(f"run {args.warmup}", timeout=600)
            except (TimeoutError, RuntimeError) as err:
                results[name] = {"error": str(err)}
                children.pop(name).close()
        times: dict[str, list[float]] = {name: [] for name in children}
        for r in range(args.repeats):
            order = list(children) if r % 2 == 0 else list(reversed(children))
            for name in order:
                if name in results:
                    continue
                try:
                    n = args.turn_warmup + args.steps_per_round
                    times[name] += children[name].ask(f"run {n}", 600)["ms"][args.turn_warmup :]
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
        floor = res.get("floor", {})
        if cfg == "b" and "median_ms" in floor:
            met = "met" if ts["median_ms"] < floor["median_ms"] else "**missed**"
            lines.append(
                f"- b: {ts['median_ms']:.1f} ms vs the dense GEMM floor "
                f"{floor['median_ms']:.1f} ms, target faster than the floor: {met}"
            )
        if cfg in ("a", "b"):
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
        "| torchspike / contender time |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for cfg, res in timing.items():
        ts = res.get("torchspike", {}).get("median_ms")
        for i, (name, r) in enumerate(res.items()):
            label = DESCRIBE[cfg] if i == 0 else ""
            shown = "floor (dense GEMM, T*B rows)" if name == "floor" else name
            if "median_ms" not in r:
                rows.append(f"| {label} | {shown} | failed: {r.get('error', '?')} | | | | |")
                continue
            ratio = f"{ts / r['median_ms']:.3f}" if ts and name != "torchspike" else ""
            mem = f"{r['peak_rss_mib']:.0f} (+{r['rss_above_baseline_mib']:.0f})"
            rows.append(
                f"| {label} | {shown} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | "
                f"{r['max_ms']:.2f} | {mem} | {ratio} |"
            )
    return rows


def check_table(checks: dict) -> list[str]:
    rows = [
        "| config | weights | contender | hidden / output spike rate | vs own recursion: "
        "neurons parted, hidden / output (unexplained) | vs torchspike | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for cfg, by_weights in checks.items():
        for j, (weights, res) in enumerate(by_weights.items()):
            for i, (name, r) in enumerate(res.items()):
                label = (cfg if i == j == 0 else "", weights if i == 0 else "")
                if "note" in r:
                    rows.append(f"| {label[0]} | {label[1]} | {name} | | {r['note']} | | **no** |")
                    continue
                o = r["oracle"]
                own = (
                    f"{o['hidden']['parted']} ({o['hidden']['unexplained']}) of "
                    f"{o['hidden']['neurons']} / {o['out']['parted']} "
                    f"({o['out']['unexplained']}) of {o['out']['neurons']}; readout "
                    f"rel diff {r['readout_diff_oracle']:.0e}"
                )
                rows.append(
                    f"| {label[0]} | {label[1]} | {name} | {r['hidden_rate']:.3f} / "
                    f"{r['out_rate']:.3f} | {own} | {_vs_torchspike(r)} | "
                    f"{'yes' if r['ok'] else '**no**'} |"
                )
    return rows


def _vs_torchspike(r: dict) -> str:
    if "vs_torchspike" in r:
        v = r["vs_torchspike"]
        text = (
            f"spikes differing: {v['hidden']['spikes_differ']} hidden, "
            f"{v['out']['spikes_differ']} output; membrane rel diff "
            f"{r['membrane_diff']:.0e}"
        )
        if "loss_rel_torchspike" in r:
            text += (
                f"; loss rel diff {r['loss_rel_torchspike']:.0e}, "
                f"weight grads rel diff {r['grad_rel_torchspike']:.0e}"
            )
        return text
    if "first_spike_vs_torchspike" in r:
        f = r["first_spike_vs_torchspike"]
        return (
            f"first hidden spike at another step: {f['parted']} ({f['unexplained']} "
            f"unexplained) of {f['neurons']}; later, "
            f"{100 * r['hidden_spikes_differ_from_torchspike']:.2f}% of hidden entries differ"
        )
    return "(reference)"


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python {python}"


def cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat), while this runner idles."""

    def sample() -> tuple[int, int]:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return float("nan")
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


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
        f"load average before / after: {loads[0]} / {loads[1]}; "
        "CPU busy (other processes) just before each config's timing: "
        + ", ".join(f"{c} {b:.0%}" for c, b in busy.items())
        + ".",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "ms per step: a and b one training step (forward over all T steps, loss, backward, "
        "Adam), c one inference (no_grad). RSS: the peak resident set (VmHWM), and above "
        "baseline: minus the same after imports, model and data. The last column is the "
        "issue's ratio (below 1: torchspike is faster).",
        "",
        *timing_table(timing),
        "",
        "## Targets",
        "",
        *verdicts(timing),
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
    return contenders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(TARGETS), choices=list(TARGETS))
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
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--check-only", action="store_true", help="no timing, no report file")
    parser.add_argument(
        "--check-gains",
        nargs="+",
        default=["1x1", "3x10"],
        metavar="G1xG2",
        help="check at the initial fc1/fc2 weights times these gains",
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
        checks = run_checks(args.configs, contenders, args.seed, args.check_gains)
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
        print("\n".join(check_table(checks) + notes))
        return int(bool(failed))
    timing, busy_before = {}, {}
    for cfg in args.configs:
        run = {n: py for n, py in contenders.items() if (cfg, n) not in failed}
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

"""Where the sparse binary Linear (torchspike.kernels.sparse) beats the dense F.linear, by density.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/sparsity.py

Input x: [M, K] = [3200, 700] Bernoulli(p) 0/1 floats (T=100 x B=32 rows, 700 inputs: config b
of bench/peers.py); weight [N, K] (requires grad), bias [N]; CPU, float32. Two modes: train =
forward and backward of the weight and bias gradients only (x needs no gradient, as for an
input layer; `y.backward(g)` with a fixed random g), infer = forward under no_grad. The sparse
side is `sparse_binary_linear(x, w, b)`, which finds the ones itself: the end-to-end cost.

Per (N, p, mode): outputs and gradients are checked against the dense ones (fails loudly), then
3 warm-up calls each, then `--rounds` rounds of one dense and one sparse call, the order swapped
every round; each call timed alone with time.perf_counter (timed again, up to `--retries`
times, while other processes use over 10% of the CPUs). Reported: median and min ms, sparse /
dense median ratio, what `maybe_sparse_linear` dispatches to on that x, and per (N, mode) the
break-even density (linear interpolation where the ratio crosses 1). A second sweep over narrow
layers (`--small-n` at `--small-p`) checks MIN_OUT_FEATURES. Writes bench/RESULTS_sparsity.md.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from machine_info import cpu_jiffies, loadavg, machine  # noqa: E402

from torchspike.kernels import sparse  # noqa: E402

M, K = 3200, 700
TOL = 1e-3  # max abs difference over the dense result's max abs value
BUSY = 0.1  # others' share of the CPUs above which a point is flagged as disturbed


def setup(n: int, p: float, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((M, K), p), generator=gen)
    w = (torch.randn(n, K, generator=gen) / K**0.5).requires_grad_()
    b = torch.randn(n, generator=gen).requires_grad_()
    g = torch.randn(M, n, generator=gen)
    return x, w, b, g


def call(fn, mode: str, x, w, b, g) -> torch.Tensor:
    if mode == "infer":
        with torch.no_grad():
            return fn(x, w, b)
    w.grad = b.grad = None
    y = fn(x, w, b)
    y.backward(g)
    return y


def check(label: str, mode: str, x, w, b, g) -> None:
    """Sparse output (and weight / bias gradients in train) against the dense ones."""
    got = [call(sparse.sparse_binary_linear, mode, x, w, b, g).detach()]
    got += [w.grad, b.grad] if mode == "train" else []
    want = [call(F.linear, mode, x, w, b, g).detach()]
    want += [w.grad, b.grad] if mode == "train" else []
    for name, a, e in zip(["y", "dW", "db"], got, want, strict=False):
        err = (a - e).abs().max().item() / max(e.abs().max().item(), 1e-12)
        if not err < TOL:
            raise AssertionError(f"{label}: sparse {name} differs from dense by {err:.2e} (rel)")


def time_point(n: int, p: float, mode: str, rounds: int, seed: int, retries: int) -> dict:
    x, w, b, g = setup(n, p, seed)
    check(f"N={n} p={p} {mode}", mode, x, w, b, g)
    fns = {"dense": F.linear, "sparse": sparse.sparse_binary_linear}
    for fn in fns.values():
        for _ in range(3):
            call(fn, mode, x, w, b, g)
    for attempt in range(retries + 1):
        ms = {k: [] for k in fns}
        cpu0 = cpu_sample()
        for r in range(rounds):
            for k in list(fns)[:: 1 if r % 2 == 0 else -1]:
                w.grad = b.grad = None  # freed outside the timed call
                t0 = time.perf_counter()
                call(fns[k], mode, x, w, b, g)
                ms[k].append((time.perf_counter() - t0) * 1e3)
        others = others_busy(cpu0, cpu_sample())
        if others <= BUSY:
            break
        if attempt < retries:
            print(f"N={n} p={p:g} {mode}: others used {others:.0%} of the CPUs, timing again")
            time.sleep(5)
    with torch.no_grad():
        picked = sparse.maybe_sparse_linear(x, w, b) is not None
    row = {"N": n, "p": p, "mode": mode, "active": x.mean().item(), "dispatch": picked}
    row["others"] = others
    for k, v in ms.items():
        row[k], row[k + "_min"] = statistics.median(v), min(v)
    row["ratio"] = row["sparse"] / row["dense"]
    print(
        f"N={n:5d} p={p:<6g} {mode:5s} dense {row['dense']:8.2f} ms  sparse {row['sparse']:8.2f}"
        f" ms  ratio {row['ratio']:.3f}  dispatch {'sparse' if picked else 'dense'}"
        f"  others {others:.0%}",
        flush=True,
    )
    return row


def cpu_sample() -> tuple[int, int, int]:
    """Jiffies: all CPUs' total and busy time (/proc/stat), and this process's (utime + stime)."""
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return *cpu_jiffies(), int(own[11]) + int(own[12])


def others_busy(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Fraction of all CPUs busy with other processes between two samples."""
    total, busy, own = (y - x for x, y in zip(a, b, strict=True))
    return max(busy - own, 0) / max(total, 1)


def break_even(rows: list[dict]) -> str:
    """Density where sparse / dense first crosses 1 (linear between measured densities), the
    dispatcher's threshold for that width, and what that makes of it."""
    pts = sorted((r["p"], r["ratio"]) for r in rows)
    th = sparse.density_threshold(rows[0]["N"])
    if pts[0][1] >= 1:
        return f"< {pts[0][0]:g} (sparse never faster) | {th:.3f} | too high |"
    for (p0, r0), (p1, r1) in zip(pts, pts[1:], strict=False):
        if r0 < 1 <= r1:
            p = p0 + (1 - r0) * (p1 - p0) / (r1 - r0)
            break
    else:
        return f"> {pts[-1][0]:g} (sparse always faster) | {th:.3f} | conservative |"
    if p < th:
        return f"{p:.3f} | {th:.3f} | too high: sparse picked at {p:.3f}-{th:.3f}, where slower |"
    return f"{p:.3f} | {th:.3f} | conservative: dense kept at {th:.3f}-{p:.3f} |"


def source_state() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "src/torchspike/kernels/sparse.py")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        ", src/torchspike/kernels/sparse.py modified in the working tree" if dirty else ""
    )


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| N | p | active | mode | dense ms (min) | sparse ms (min) | sparse / dense | dispatch "
        "| others' CPU |",
        "|---:|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['N']} | {r['p']:g} | {r['active']:.4f} | {r['mode']} "
            f"| {r['dense']:.2f} ({r['dense_min']:.2f}) "
            f"| {r['sparse']:.2f} ({r['sparse_min']:.2f}) "
            f"| {r['ratio']:.3f} | {'sparse' if r['dispatch'] else 'dense'} | {r['others']:.0%} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--densities",
        type=float,
        nargs="+",
        default=[0.005, 0.01, 0.02, 0.05, 0.08, 0.10, 0.12, 0.15, 0.2, 0.3],
    )
    parser.add_argument("--n-out", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--small-n", type=int, nargs="*", default=[64, 128, 256])
    parser.add_argument("--small-p", type=float, default=0.05)
    modes = ["train", "infer"]
    parser.add_argument("--modes", nargs="+", default=modes, choices=modes)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--retries", type=int, default=2, help="re-timings of a busy point")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_sparsity.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    load_before, start = loadavg(), time.perf_counter()
    main_rows = [
        time_point(n, p, mode, args.rounds, args.seed, args.retries)
        for n in args.n_out
        for mode in args.modes
        for p in args.densities
    ]
    small_rows = [
        time_point(n, args.small_p, mode, args.rounds, args.seed, args.retries)
        for n in args.small_n
        for mode in args.modes
    ]
    minutes = (time.perf_counter() - start) / 60
    cmdline = shlex.join(sys.argv[1:])

    even = []
    for n in args.n_out:
        for mode in args.modes:
            points = [r for r in main_rows if r["N"] == n and r["mode"] == mode]
            even.append(f"| {n} | {mode} | {break_even(points)}")
    lines = [
        "# Sparse binary Linear vs dense F.linear (written by `bench/sparsity.py`)",
        "",
        "```sh",
        f"flock /tmp/torchspike-heavy.lock .venv/bin/python bench/sparsity.py {cmdline}".rstrip(),
        "```",
        "",
        f"Machine: {machine()}; {args.threads} threads; {source_state()}; "
        f"x [{M}, {K}] Bernoulli(p), float32; 3 warm-up calls, then {args.rounds} rounds of one "
        f"dense and one sparse call (order swapped every round); seed {args.seed}; "
        f"took {minutes:.1f} min; load average before / after: {load_before} / {loadavg()}. "
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "train: forward + backward of the weight and bias gradients (x needs no gradient); "
        "infer: forward under no_grad. Sparse: `sparse_binary_linear(x, w, b)`, finding the ones "
        "included. ms: median per call (min). active: measured fraction of ones. others' CPU: "
        "share of all CPUs busy with other processes during the point's timed rounds "
        "(contention). dispatch: what "
        "`maybe_sparse_linear` picks on that x (`density_threshold(N)`, 0 below "
        f"MIN_OUT_FEATURES = {sparse.MIN_OUT_FEATURES}). Outputs and gradients were checked "
        f"against the dense ones at every point (max abs difference < {TOL:g} of the max).",
        "",
        "## Break-even density (sparse / dense = 1, interpolated)",
        "",
        "| N | mode | break-even p | density_threshold(N) | so the threshold is |",
        "|---:|---|---|---:|---|",
        *even,
        "",
        "## By density",
        "",
        *table(main_rows),
        "",
    ]
    if small_rows:
        lines += [f"## Narrow layers at p = {args.small_p:g}", "", *table(small_rows), ""]
    busy = [r for r in main_rows + small_rows if r["others"] > BUSY]
    if busy:
        lines += [
            f"**Disturbed**: {len(busy)} point(s) ran while other processes used more than "
            f"{BUSY:.0%} of the CPUs (others' CPU column); their times are not clean.",
            "",
        ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

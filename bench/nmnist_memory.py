"""Peak memory of one N-MNIST training step: EventProp (recipe nmnist-eventprop) vs surrogate BPTT.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/nmnist_memory.py

The network and data of recipe ``nmnist-eventprop``: the first 32 training recordings of
N-MNIST (``/work/shared/data/n-mnist-small``), 2312 inputs -> 200 CubaLIF (tau_mem 20 ms,
tau_syn 5 ms, dt 1 ms) -> 10 non-spiking read-out neurons, cross-entropy on the read-out
voltage scored as the recipe's ``loss`` says (``sum``: its mean over time; ``max-voltage``: its
maximum), over the recipe's ``duration / dt`` steps (100: the first saccade). EventProp is built by
``torchspike.app.load.build`` from the recipe and fed the events at their exact times
(``to_spike_times``); BPTT runs the same weights with an atan surrogate on 1 ms binary frames
(``to_spikes``: a spike where a bin holds any event), its read-out a CubaLIF that never fires
(the synaptic + membrane filter of EventProp's ``LIReadout``; ``torchspike.LI`` is a single
exponential, so it is not used). Each method runs in a fresh process; after a warm-up step on
2 recordings and 10 steps, the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``)
once the inputs are built, and memory is the growth of the peak resident set size over one
training step (forward + backward). Input construction is outside the measured step. Each
method runs ``--repeats`` times (fresh processes); the table gives the median growth and range.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

DATA = "/work/shared/data/n-mnist-small"
BATCH, DT = 32, 1e-3


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _reset_peak() -> float:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); the RSS to measure growth from."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_mb("VmRSS")
    except OSError:  # no reset: growth over the high-water mark so far
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    try:
        return _status_mb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(n: int):
    from torchspike.app import recipes
    from torchspike.app.load import build
    from torchspike.data import events as ev

    cfg = recipes.resolve(recipe="nmnist-eventprop").config
    torch.manual_seed(cfg.seed)
    method, model = build(cfg)
    ds = ev.load("n-mnist", "train", DATA)
    samples = [ds[i] for i in range(n)]
    events = ev.batch([s[0] for s in samples])
    labels = torch.tensor([int(s[1]) for s in samples])
    return cfg, model, events, labels


def eventprop_step(n: int, steps: int) -> dict:
    from torchspike.data import events as ev
    from torchspike.eventprop import train as ep

    cfg, model, events, labels = _setup(n)
    spikes = ev.to_spike_times(events, dt=DT, steps=steps)
    base = _reset_peak()
    start = time.perf_counter()
    hidden = model[0](spikes)
    loss = ep.loss_fn(model[1](hidden), labels, cfg.library())
    loss.backward()
    return dict(
        seconds=time.perf_counter() - start,
        base=base,
        loss=float(loss.detach()),
        input_spikes=len(spikes.times),
        hidden_spikes=len(hidden.times),
    )


def bptt_step(n: int, steps: int) -> dict:
    import torchspike as ts
    from torchspike.data import events as ev
    from torchspike.neurons import CubaLIFState, cuba_lif_step
    from torchspike.steps import run_steps

    cfg, model, events, labels = _setup(n)
    frames = ev.to_spikes(events, bins=steps, duration=round(steps * DT * 1e6))
    xs = frames.reshape(steps, n, -1)  # [T, B, 2312]
    fc1, fc2 = nn.Linear(xs.shape[-1], 200, bias=False), nn.Linear(200, 10, bias=False)
    with torch.no_grad():  # the EventProp model's initial weights: the same network
        fc1.weight.copy_(model[0].weight)
        fc2.weight.copy_(model[1].weight)
    hidden = ts.CubaLIF(tau_mem=cfg.tau_mem, tau_syn=cfg.tau_syn, dt=DT, spike_fn="atan")
    alpha, beta, kappa = float(hidden.alpha), float(hidden.beta), float(hidden.kappa)

    def li_step(x, state):  # the read-out: a CubaLIF that never fires, emitting its voltage
        _, state = cuba_lif_step(
            x, state, alpha=alpha, beta=beta, kappa=kappa, v_th=float("inf"),
            spike_fn=hidden.spike_fn,
        )  # fmt: skip
        return state.v, state

    base = _reset_peak()
    start = time.perf_counter()
    zs, _ = hidden(fc1(xs))
    cur = fc2(zs)
    vs, _ = run_steps(
        li_step, cur, CubaLIFState(torch.zeros_like(cur[0]), torch.zeros_like(cur[0]))
    )
    scores = vs.mean(0) if cfg.loss == "sum" else vs.amax(0)  # as the EventProp read-out
    loss = F.cross_entropy(scores, labels)
    loss.backward()
    return dict(
        seconds=time.perf_counter() - start,
        base=base,
        loss=float(loss.detach()),
        input_spikes=int(xs.sum()),
        hidden_spikes=int(zs.detach().sum()),
    )


def child(method: str, threads: int) -> None:
    torch.set_num_threads(threads)
    run = eventprop_step if method == "eventprop" else bptt_step
    from torchspike.app import recipes

    cfg = recipes.resolve(recipe="nmnist-eventprop").config
    if cfg.loss not in ("sum", "max-voltage"):
        raise SystemExit(f"the BPTT side has no read-out for loss {cfg.loss!r}")
    run(2, 10)  # warm up: one-time allocations are not part of the step
    r = run(BATCH, round(cfg.duration / cfg.dt))
    r["growth_mb"] = round(_peak_mb() - r.pop("base"), 1)
    print(json.dumps(dict(method=method, **r)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("eventprop", "bptt"))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads)
        return
    rows, growth = {}, {}
    for method in ("eventprop", "bptt"):
        cmd = [sys.executable, __file__, "--threads", str(args.threads), "--child", method]
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        growth[method] = statistics.median(r["growth_mb"] for r in runs)
        rows[method] = dict(
            runs[0],
            lo=min(r["growth_mb"] for r in runs),
            hi=max(r["growth_mb"] for r in runs),
            seconds=statistics.median(r["seconds"] for r in runs),
        )
    lines = [
        f"median of {args.repeats} fresh processes per method, {args.threads} threads",
        "",
        "| method | peak-RSS growth per step (MiB), median [min, max] | step time (s) | loss | "
        "input spikes | hidden spikes |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in rows.items():
        lines.append(
            f"| {m} | {growth[m]} [{r['lo']}, {r['hi']}] | {r['seconds']:.2f} | "
            f"{r['loss']:.4f} | {r['input_spikes']} | {r['hidden_spikes']} |"
        )
    ratio = growth["bptt"] / max(growth["eventprop"], 1e-9)
    lines.append("")
    lines.append(f"BPTT / EventProp memory (medians): {ratio:.2f}x")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

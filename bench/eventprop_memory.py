"""Peak memory of one training step against the number of steps T: EventProp vs surrogate BPTT.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/eventprop_memory.py --scenario burst
    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/eventprop_memory.py --scenario rate

The same network for both: 100 inputs -> 128 CubaLIF (tau_mem 20 ms, tau_syn 5 ms, dt 1 ms)
-> 10 leaky integrators, cross-entropy on the time-averaged readout voltage ("sum" loss), batch 32.
``burst``: every input fires 5 times in the first 50 ms, so the spikes are the same for every T;
``rate``: 20 Hz inputs over the whole window, so the spikes grow with T. Each (method, T) runs in
a fresh process; after a warm-up step at T = 10, memory is the growth of the peak resident set
size over one step (forward + backward).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

N_IN, N_HID, N_OUT, BATCH, DT = 100, 128, 10, 32, 1e-3
BURST_SPIKES, BURST_S, RATE_HZ = 5, 50e-3, 20.0
W1_MEAN = {"burst": 0.05, "rate": 0.15}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(steps: int, scenario: str) -> tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``burst``: 5 spikes per input in the first 50 ms, the same for every T; ``rate``: 20 Hz
    over the whole window, so the spike count grows with T. Spikes fall on step starts, where
    the EventProp forward pass equals ``torchspike.CubaLIF``: both methods run one network."""
    g = torch.Generator().manual_seed(0)
    if scenario == "burst":
        per_input, window = BURST_SPIKES, BURST_S
    else:
        per_input, window = max(1, round(RATE_HZ * steps * DT)), steps * DT
    step = torch.randint(0, round(window / DT), (BATCH * N_IN * per_input,), generator=g)
    batch = torch.arange(BATCH).repeat_interleave(N_IN * per_input)
    unit = torch.arange(N_IN).repeat_interleave(per_input).repeat(BATCH)
    w1 = torch.randn(N_HID, N_IN, generator=g) * 0.1 + W1_MEAN[scenario]
    w2 = torch.randn(N_OUT, N_HID, generator=g) * 0.3
    return (step, batch, unit), w1, w2, torch.randint(0, N_OUT, (BATCH,), generator=g)


def eventprop_step(steps: int, scenario: str) -> dict:
    from torchspike import eventprop as ep

    (step, batch, unit), w1, w2, y = _inputs(steps, scenario)
    times = (step.double() * DT).float()
    hidden = ep.LIFLayer(N_IN, N_HID, dt=DT)
    readout = ep.LIReadout(N_HID, N_OUT, readout="sum", dt=DT)
    with torch.no_grad():
        hidden.weight.copy_(w1)
        readout.weight.copy_(w2)
    spikes = ep.from_events(times, batch, unit, batch_size=BATCH, units=N_IN, steps=steps, dt=DT)
    base = _rss_mb()
    start = time.perf_counter()
    h = hidden(spikes)
    loss = F.cross_entropy(readout(h), y)
    loss.backward()
    return dict(
        seconds=time.perf_counter() - start,
        base=base,
        hidden_spikes=len(h.times),
        input_spikes=len(spikes.times),
    )


def bptt_step(steps: int, scenario: str) -> dict:
    import torchspike as ts
    from torchspike.neurons import CubaLIFState, cuba_lif_step
    from torchspike.steps import run_steps

    (step, batch, unit), w1, w2, y = _inputs(steps, scenario)
    w1.requires_grad_(True)
    w2.requires_grad_(True)
    keep = step < steps
    step, batch, unit = step[keep], batch[keep], unit[keep]
    xs = torch.zeros(steps, BATCH, N_IN)
    xs.index_put_((step, batch, unit), torch.ones(len(step)), accumulate=True)
    hidden = ts.CubaLIF(20e-3, 5e-3, DT, spike_fn="atan")
    alpha, beta, kappa = (float(hidden.alpha), float(hidden.beta), float(hidden.kappa))
    base = _rss_mb()
    start = time.perf_counter()
    zs, _ = hidden(xs @ w1.t())

    def li_step(x, state):  # the readout: CubaLIF that never fires, emitting its voltage
        _, state = cuba_lif_step(
            x,
            state,
            alpha=alpha,
            beta=beta,
            kappa=kappa,
            v_th=float("inf"),
            spike_fn=hidden.spike_fn,
        )
        return state.v, state

    cur = zs @ w2.t()
    vs, _ = run_steps(
        li_step, cur, CubaLIFState(torch.zeros_like(cur[0]), torch.zeros_like(cur[0]))
    )
    loss = F.cross_entropy(vs.mean(0), y)
    loss.backward()
    return dict(
        seconds=time.perf_counter() - start,
        base=base,
        hidden_spikes=int(zs.detach().sum()),
        input_spikes=len(step),
    )


def child(method: str, steps: int, scenario: str, threads: int) -> None:
    torch.set_num_threads(threads)
    run = eventprop_step if method == "eventprop" else bptt_step
    run(10, scenario)  # warm up: one-time allocations are not part of the growth with T
    result = run(steps, scenario)
    peak = _rss_mb()
    print(
        json.dumps(
            dict(
                method=method,
                T=steps,
                peak_mb=round(peak - result["base"], 1),
                seconds=round(result["seconds"], 2),
                input_spikes=result["input_spikes"],
                hidden_spikes=result["hidden_spikes"],
            )
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scenario", choices=("burst", "rate"), default="burst")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "T"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.scenario, args.threads)
        return
    print(f"scenario {args.scenario}")
    print("| T | method | peak memory growth (MB) | step time (s) | input spikes | hidden spikes |")
    print("|---|---|---|---|---|---|")
    for steps in args.steps:
        for method in ("eventprop", "bptt"):
            cmd = [sys.executable, __file__, "--threads", str(args.threads)]
            cmd += ["--scenario", args.scenario, "--child", method, str(steps)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {steps} | {method} | {r['peak_mb']} | {r['seconds']} | "
                f"{r['input_spikes']} | {r['hidden_spikes']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

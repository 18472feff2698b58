"""Reference LIF traces from snnTorch, SpikingJelly and Norse, written to reference_traces.json.

Run with the peer venv: `.venv-peers/bin/python bench/peers/reference_traces.py`.
Each peer is also re-derived from the recursion in SEMANTICS.md (`*_oracle` below) and asserted
equal, so the JSON and the written semantics cannot drift apart.
"""

import json
import math
from collections.abc import Callable
from pathlib import Path

import norse.torch as norse
import snntorch as snn
import torch
from norse.torch.functional.reset import reset_subtract, reset_value
from spikingjelly.activation_based import functional, neuron, surrogate

T, B, N = 8, 2, 3
BETA, ALPHA_SYN = 0.9, 0.8
THRESHOLDS = (1.0, 0.5)
OUT = Path(__file__).with_name("reference_traces.json")


def make_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Input current [T, B, N] with per-neuron gains 0.3/0.6/1.2, and loss weights [T, B, N]."""
    torch.manual_seed(0)
    xs = torch.rand(T, B, N) * torch.tensor([0.3, 0.6, 1.2])
    weights = torch.randn(T, B, N)
    return xs, weights


class _Spike(torch.autograd.Function):
    """Heaviside forward (strict or >=), given surrogate derivative backward."""

    @staticmethod
    def forward(ctx, u, strict, grad_fn):
        ctx.save_for_backward(u)
        ctx.grad_fn = grad_fn
        return (u > 0).float() if strict else (u >= 0).float()

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * ctx.grad_fn(u), None, None


def atan_grad(u: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    return alpha / 2 / (1 + (math.pi / 2 * alpha * u) ** 2)


def superspike_grad(u: torch.Tensor) -> torch.Tensor:
    return 1 / (u.abs() + 1) ** 2


def snntorch_leaky_oracle(xs, thr, reset):
    u = torch.zeros_like(xs[0])
    spikes, mems = [], []
    for x in xs:
        r = (u > thr).float()  # previous step's spike, detached
        u = BETA * u + x - r * thr if reset == "subtract" else BETA * ((1 - r) * u) + x
        spikes.append(_Spike.apply(u - thr, True, atan_grad))
        mems.append(u)
    return torch.stack(spikes), torch.stack(mems)


def snntorch_synaptic_oracle(xs, thr, reset):
    i = torch.zeros_like(xs[0])
    u = torch.zeros_like(xs[0])
    spikes, mems = [], []
    for x in xs:
        r = (u > thr).float()
        i = ALPHA_SYN * i + x
        u = BETA * u + i
        u = u - r * thr if reset == "subtract" else u * (1 - r)  # zero: the new input is lost too
        spikes.append(_Spike.apply(u - thr, True, atan_grad))
        mems.append(u)
    return torch.stack(spikes), torch.stack(mems)


def spikingjelly_oracle(xs, thr, v_reset, tau):
    v = torch.zeros_like(xs[0])
    spikes, mems = [], []
    for x in xs:
        h = v - v / tau + x
        s = _Spike.apply(h - thr, False, atan_grad)
        v = h - s.detach() * thr if v_reset is None else s.detach() * v_reset + (1 - s.detach()) * h
        spikes.append(s)
        mems.append(v)
    return torch.stack(spikes), torch.stack(mems)


def norse_oracle(xs, thr, reset, tau_mem_inv, dt=1e-3):
    v = torch.zeros_like(xs[0])
    spikes, mems = [], []
    for x in xs:
        v = v + dt * tau_mem_inv * (x - v)
        z = _Spike.apply(v - thr, True, superspike_grad)
        v = (1 - z) * v if reset == "zero" else (1 - z) * v + z * (v - thr)
        spikes.append(z)
        mems.append(v)
    return torch.stack(spikes), torch.stack(mems)


def run_snntorch_leaky(xs, thr, reset):
    lif = snn.Leaky(beta=BETA, threshold=thr, reset_mechanism=reset)
    mem = lif.init_leaky()
    spikes, mems = [], []
    for x in xs.unbind(0):
        spk, mem = lif(x, mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def run_snntorch_synaptic(xs, thr, reset):
    lif = snn.Synaptic(alpha=ALPHA_SYN, beta=BETA, threshold=thr, reset_mechanism=reset)
    syn, mem = lif.init_synaptic()
    spikes, mems = [], []
    for x in xs.unbind(0):
        spk, syn, mem = lif(x, syn, mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def run_spikingjelly(xs, thr, v_reset, tau):
    lif = neuron.LIFNode(
        tau=tau,
        decay_input=False,
        v_threshold=thr,
        v_reset=v_reset,
        detach_reset=True,
        surrogate_function=surrogate.ATan(),
        step_mode="m",
        store_v_seq=True,
    )
    functional.reset_net(lif)
    spikes = lif(xs)
    return spikes, lif.v_seq


def run_norse(xs, thr, reset, tau_mem_inv):
    p = norse.LIFBoxParameters(
        tau_mem_inv=torch.as_tensor(tau_mem_inv),
        v_th=torch.as_tensor(thr),
        reset_method=reset_value if reset == "zero" else reset_subtract,
    )
    cell = norse.LIFBoxCell(p)
    state, spikes, mems = None, [], []
    for x in xs.unbind(0):
        z, state = cell(x, state)
        spikes.append(z)
        mems.append(state.v)
    return torch.stack(spikes), torch.stack(mems)


def trace(run, oracle, xs, weights, *, scale=1.0, **kw):
    """Run the peer and the oracle on `xs * scale`; return lists and check they agree."""
    out = {}
    for name, fn in (("peer", run), ("oracle", oracle)):
        x = xs.clone().requires_grad_(True)
        spikes, mems = fn(x * scale, **kw)
        (spikes * weights).sum().backward()
        out[name] = (spikes.detach(), mems.detach(), x.grad)
    for a, b, what in zip(out["peer"], out["oracle"], ("spikes", "mem", "grad"), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{run.__name__} {kw}: {what}")
    spikes, mems, grad = out["peer"]
    return {"spikes": spikes.tolist(), "mem": mems.tolist(), "grad_input": grad.tolist()}


def peer_settings(thr: float, reset: str) -> list[tuple[str, str, dict, Callable, Callable, dict]]:
    """(peer, model, library settings, run, oracle, extra kwargs) for one threshold and reset."""
    atan = "atan(alpha=2.0)"
    sj_reset = None if reset == "subtract" else 0.0
    # Norse charges v += dt * tau_mem_inv * (x - v): input_scale 10 makes it v' = 0.9 v + I.
    norse_reset = "reset_subtract" if reset == "subtract" else "reset_value"
    return [
        (
            "snntorch",
            "Leaky",
            {"beta": BETA, "threshold": thr, "reset_mechanism": reset, "spike_grad": atan},
            run_snntorch_leaky,
            snntorch_leaky_oracle,
            {"reset": reset},
        ),
        (
            "snntorch",
            "Synaptic",
            {"alpha": ALPHA_SYN, "beta": BETA, "threshold": thr, "reset_mechanism": reset},
            run_snntorch_synaptic,
            snntorch_synaptic_oracle,
            {"reset": reset},
        ),
        (
            "spikingjelly",
            "LIFNode",
            {
                "tau": 10.0,
                "decay_input": False,
                "v_threshold": thr,
                "v_reset": sj_reset,
                "detach_reset": True,
                "surrogate_function": "ATan(alpha=2.0)",
                "step_mode": "m",
            },
            run_spikingjelly,
            spikingjelly_oracle,
            {"v_reset": sj_reset, "tau": 10.0},
        ),
        (
            "norse",
            "LIFBoxCell",
            {
                "dt": 1e-3,
                "tau_mem_inv": 100.0,
                "v_th": thr,
                "reset_method": norse_reset,
                "method": "super",
                "input_scale": 10.0,
            },
            run_norse,
            norse_oracle,
            {"reset": reset, "tau_mem_inv": 100.0, "scale": 10.0},
        ),
    ]


def main() -> None:
    xs, weights = make_inputs()
    entries = []
    for thr in THRESHOLDS:
        for reset in ("subtract", "zero"):
            for peer, model, settings, run, oracle, kw in peer_settings(thr, reset):
                traces = trace(run, oracle, xs, weights, thr=thr, **kw)
                entries.append(
                    {
                        "peer": peer,
                        "model": model,
                        "threshold": thr,
                        "reset": reset,
                        "settings": settings,
                        **traces,
                    }
                )
    doc = {
        "description": "LIF traces per peer; spikes, mem and grad_input are [T][B][N]; "
        "mem is the membrane each library returns (snnTorch: before the delayed reset; "
        "SpikingJelly v_seq and Norse state.v: after reset); loss = (spikes * loss_weights).sum(); "
        "grad_input = dloss/dinput (input before input_scale).",
        "torch_seed": 0,
        "shape": {"T": T, "B": B, "N": N},
        "input": xs.tolist(),
        "loss_weights": weights.tolist(),
        "entries": entries,
    }
    OUT.write_text(json.dumps(doc))
    print(f"wrote {OUT}: {len(entries)} traces, each equal to its SEMANTICS.md oracle")
    for e in entries:
        spikes = torch.tensor(e["spikes"]).sum((0, 1)).int().tolist()
        grad = torch.tensor(e["grad_input"]).abs().sum()
        print(
            f"{e['peer']:12s} {e['model']:10s} thr={e['threshold']} {e['reset']:8s} "
            f"spikes per neuron={spikes} sum|grad|={grad:.4f}"
        )


if __name__ == "__main__":
    main()

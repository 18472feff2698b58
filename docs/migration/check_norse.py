"""The Norse guide's side-by-side code, run against Norse 1.1 (peers' venv, not CI).

    PYTHONPATH=src .venv-peers/bin/python docs/migration/check_norse.py

Prints the largest difference between each Norse construct and its torchspike spelling.
"""

from functools import partial

import norse.torch as norse
import torch

import torchspike as ts
from torchspike.neurons import CubaLIFState, cuba_lif_step

torch.manual_seed(0)
T, B, N = 100, 8, 32
DT = 1e-3
xs = torch.rand(T, B, N) * 3.0


def norse_cell(cell, xs):
    """Norse's cell looped over time, as its tutorials do; (spikes, input gradient)."""
    xs = xs.clone().requires_grad_()
    state, out = None, []
    for x in xs:
        z, state = cell(x, state)
        out.append(z)
    zs = torch.stack(out)
    zs.sum().backward()
    return zs.detach(), xs.grad


# LIFBoxCell (no synaptic current): Euler, v <- v + dt * tau_mem_inv * (x - v), reset to 0.
# torchspike: LIF(beta = 1 - dt * tau_mem_inv, reset="zero") fed dt * tau_mem_inv * x
p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(50.0), alpha=torch.tensor(100.0))
zn, gn = norse_cell(norse.LIFBoxCell(p, dt=DT), xs)
c = DT * 50.0
a = xs.clone().requires_grad_()
lif = ts.LIF(beta=1 - c, reset="zero", spike_fn=ts.surrogate.fast_sigmoid(1.0))
zt, _ = lif(c * a)
zt.sum().backward()
print(
    f"LIFBoxCell(tau_mem_inv=50, dt=1e-3) vs LIF(beta=0.95, reset='zero') on 0.05 x: spikes "
    f"differ at {int((zn != zt).sum())} of {zt.numel()} ({int(zt.sum())} spikes); input grad "
    f"max |diff| {float((gn - a.grad).abs().max()):.2f} (Norse's reset is not detached)"
)
wrong = ts.LIF(tau=1 / 50.0, dt=DT, reset="zero")(c * xs)[0]
print(
    f"... vs LIF(tau=0.02, dt=1e-3) (beta exp(-0.05) = 0.9512, not 0.95): spikes differ at "
    f"{int((zn != wrong).sum())} of {zt.numel()}"
)

# norse.LIF (sequence module, current-based, Euler) vs cuba_lif_step with Euler coefficients
pn = norse.LIFParameters()  # tau_syn_inv 200, tau_mem_inv 100, v_th 1, reset to 0
zs_norse, _ = norse.LIF(pn, dt=DT)(xs)
euler = dict(alpha=1 - DT * 200.0, beta=1 - DT * 100.0, kappa=DT * 100.0)
step = partial(cuba_lif_step, **euler, v_th=1.0, spike_fn=ts.surrogate.fast_sigmoid(1.0))
zeros = torch.zeros_like(xs[0])
zs_ours, _ = ts.run_steps(step, xs, CubaLIFState(zeros, zeros))
print(
    f"norse.LIF() vs cuba_lif_step with Euler coefficients: spikes differ at "
    f"{int((zs_norse != zs_ours).sum())} of {zs_ours.numel()} ({int(zs_ours.sum())} spikes)"
)
zs_exact, _ = ts.CubaLIF(tau_mem=1 / 100.0, tau_syn=1 / 200.0, dt=DT)(xs)
print(
    f"norse.LIF() vs CubaLIF(tau_mem=0.01, tau_syn=0.005, dt=1e-3) (exact integration): "
    f"{int(zs_norse.sum())} vs {int(zs_exact.sum())} spikes"
)

# PoissonEncoder(seq_length, f_max, dt) vs encode.poisson(rates_hz, steps, dt): same law
img = torch.rand(4000)
norse_rate = norse.PoissonEncoder(200, f_max=100.0, dt=DT)(img).mean(0)
ours_rate = ts.encode.poisson(img * 100.0, 200, DT).mean(0)
print(
    f"PoissonEncoder(200, f_max=100) vs encode.poisson(100 * x, 200, 1e-3): mean spikes per "
    f"step {float(norse_rate.mean()):.4f} vs {float(ours_rate.mean()):.4f} (expected "
    f"{float(img.mean() * 100 * DT):.4f})"
)

# SuperSpike (method "super"): Norse 1.1's backward is 1 / (|x| + 1)^2 whatever alpha is, so
# fast_sigmoid(1.0)
x = torch.linspace(-2, 2, 401)
a = x.clone().requires_grad_()
norse.functional.threshold.threshold(a, "super", torch.tensor(100.0)).sum().backward()
b = x.clone().requires_grad_()
ts.surrogate.fast_sigmoid(1.0)(b).sum().backward()
print(
    "surrogate 'super' (alpha=100) vs fast_sigmoid(1.0): derivative max |diff| "
    f"{float((a.grad - b.grad).abs().max()):.1e}"
)

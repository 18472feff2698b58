"""The SpikingJelly guide's side-by-side code, run against SpikingJelly 2.0 (peers' venv, not CI).

    PYTHONPATH=src .venv-peers/bin/python docs/migration/check_spikingjelly.py

Prints the largest difference between each SpikingJelly construct and its torchspike spelling.
"""

import math

import torch
from spikingjelly.activation_based import functional, neuron, surrogate

import torchspike as ts

torch.manual_seed(0)
T, B, N = 50, 8, 32
xs = torch.rand(T, B, N) * 1.5
TAU = 2.0


def jelly(node, xs):
    """Multi-step run; returns (spikes, v after reset, input gradient)."""
    xs = xs.clone().requires_grad_()
    node.step_mode = "m"
    node.store_v_seq = True
    functional.reset_net(node)
    spikes = node(xs)
    spikes.sum().backward()
    return spikes.detach(), node.v_seq.detach(), xs.grad


def ours(lif, xs, scale=1.0):
    """(spikes, membrane after its own spike's reset, gradient) for the input ``scale * xs``."""
    xs = xs.clone().requires_grad_()
    z, _ = lif(scale * xs)
    z.sum().backward()
    v, _ = ts.LIF(beta=lif.beta.item(), v_th=lif.v_th.item(), reset=lif.reset, output="membrane")(
        scale * xs.detach()
    )
    after = v * (1 - z.detach()) if lif.reset == "zero" else v - z.detach() * lif.v_th
    return z.detach(), after, xs.grad


def report(name, a, b):
    za, va, ga = a
    zb, vb, gb = b
    print(
        f"{name}: spikes differ at {int((za != zb).sum())} of {za.numel()}, "
        f"v max |diff| {float((va - vb).abs().max()):.1e}, "
        f"input grad max |diff| {float((ga - gb).abs().max()):.1e}"
    )


# LIFNode's defaults (decay_input=True, hard reset to 0), with ATan and a detached reset:
# H = (1 - 1/tau) V + X / tau  ->  LIF(beta=1 - 1/tau, reset="zero") fed X / tau
node = neuron.LIFNode(tau=TAU, surrogate_function=surrogate.ATan(), detach_reset=True)
lif = ts.LIF(beta=1 - 1 / TAU, reset="zero", spike_fn="atan")
report(
    "LIFNode(tau=2, hard reset) vs LIF(beta=0.5, reset='zero') on x/2",
    jelly(node, xs),
    ours(lif, xs, 1 / TAU),
)
# the trap: tau passed through as a time constant with dt = 1
wrong = ts.LIF(tau=TAU, dt=1.0, reset="zero")
report(
    f"LIFNode(tau=2) vs LIF(tau=2.0, dt=1.0) (beta {math.exp(-1 / TAU):.4f}, not 0.5)",
    jelly(node, xs),
    ours(wrong, xs, 1 / TAU),
)
# IFNode with a soft reset (v_reset=None) is IF(reset="subtract")
node = neuron.IFNode(v_reset=None, surrogate_function=surrogate.ATan(), detach_reset=True)
report("IFNode(v_reset=None) vs IF()", jelly(node, xs / 2), ours(ts.IF(), xs / 2))
# a soft-reset LIF: SpikingJelly subtracts v_th before the next decay, torchspike after it
node = neuron.LIFNode(
    tau=TAU, decay_input=False, v_reset=None, surrogate_function=surrogate.ATan(), detach_reset=True
)
lif = ts.LIF(beta=1 - 1 / TAU, reset="subtract")
a, b = jelly(node, xs / 2), ours(lif, xs / 2)
print(
    "LIFNode(tau=2, decay_input=False, v_reset=None) vs LIF(beta=0.5): "
    f"spikes differ at {int((a[0] != b[0]).sum())} of {a[0].numel()} "
    f"(SpikingJelly {int(a[0].sum())} spikes, torchspike {int(b[0].sum())})"
)

# surrogates
x = torch.linspace(-2, 2, 401)
for name, theirs, mine in [
    ("ATan(alpha=2)", surrogate.ATan(alpha=2.0), ts.surrogate.atan(2.0)),
    ("Sigmoid(alpha=4)", surrogate.Sigmoid(alpha=4.0), ts.surrogate.sigmoid(4.0)),
]:
    a = x.clone().requires_grad_()
    theirs(a).sum().backward()
    b = x.clone().requires_grad_()
    mine(b).sum().backward()
    print(f"surrogate {name}: derivative max |diff| {float((a.grad - b.grad).abs().max()):.1e}")

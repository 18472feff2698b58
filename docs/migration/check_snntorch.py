"""The snnTorch guide's side-by-side code, run against snnTorch 1.0 (peers' venv, not CI).

    PYTHONPATH=src .venv-peers/bin/python docs/migration/check_snntorch.py

Prints the largest difference between each snnTorch construct and its torchspike spelling.
"""

import snntorch as snn
import snntorch.functional as SF
import torch
from snntorch import surrogate

import torchspike as ts

torch.manual_seed(0)
T, B, N = 50, 8, 32
xs = torch.rand(T, B, N) * 0.6


def snntorch_leaky(xs, **kw):
    lif = snn.Leaky(beta=0.9, threshold=0.5, spike_grad=surrogate.atan(alpha=2.0), **kw)
    mem = lif.init_leaky()
    spk_rec, mem_rec = [], []
    for x in xs:  # time-first: one step per iteration
        spk, mem = lif(x, mem)
        spk_rec.append(spk)
        mem_rec.append(mem)
    return torch.stack(spk_rec), torch.stack(mem_rec)


for reset in ("subtract", "zero", "none"):
    a = xs.clone().requires_grad_()
    spk, mem = snntorch_leaky(a, reset_mechanism=reset)
    b = xs.clone().requires_grad_()
    lif = ts.LIF(beta=0.9, v_th=0.5, reset=reset, spike_fn="atan")
    z, state = lif(b)
    v, _ = ts.LIF(beta=0.9, v_th=0.5, reset=reset, output="membrane")(xs)
    spk.sum().backward()
    z.sum().backward()
    print(
        f"Leaky(reset_mechanism={reset!r}) vs LIF(reset={reset!r}): "
        f"spikes differ at {int((spk != z).sum())} of {z.numel()}, "
        f"membrane max |diff| {float((mem - v).abs().max().detach()):.1e}, "
        f"input grad max |diff| {float((a.grad - b.grad).abs().max()):.1e}, "
        f"spikes {int(z.sum())}"
    )

# RLeaky(linear_features=N) vs RecurrentLIF(N): the same recurrent weights (RecurrentLIF's
# recurrent Linear has no bias; snnTorch's has one, zeroed here)
rl = snn.RLeaky(beta=0.9, linear_features=N, threshold=0.5)
ours = ts.RecurrentLIF(N, beta=0.9, v_th=0.5)
with torch.no_grad():
    ours.recurrent.weight.copy_(rl.recurrent.weight)
    rl.recurrent.bias.zero_()
spk, mem = rl.init_rleaky()
rec = []
for x in xs:
    spk, mem = rl(x, spk, mem)
    rec.append(spk)
z, _ = ours(xs)
diff = int((torch.stack(rec) != z).sum())
print(f"RLeaky(linear_features={N}) vs RecurrentLIF({N}): spikes differ at {diff} of {z.numel()}")

# losses: snnTorch's functional losses against torchspike.loss
spikes = (torch.rand(T, B, 10) < 0.3).float()
y = torch.randint(0, 10, (B,))
pairs = {
    "SF.ce_count_loss() vs loss.ce_count": (
        SF.ce_count_loss()(spikes, y),
        ts.loss.ce_count(spikes, y),
    ),
    "SF.mse_count_loss(0.8, 0.2) vs loss.mse_count": (
        SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)(spikes, y),
        ts.loss.mse_count(spikes, y, correct_rate=0.8, incorrect_rate=0.2),
    ),
}
mem = torch.randn(T, B, 10)
tutorial5 = sum(torch.nn.functional.cross_entropy(mem[t], y) for t in range(T))
pairs["tutorial 5's sum_t CE(mem[t], y) vs loss.ce_membrane_sum"] = (
    tutorial5,
    ts.loss.ce_membrane_sum(mem, y),
)
for name, (theirs, mine) in pairs.items():
    print(f"{name}: {float(theirs):.6f} vs {float(mine):.6f}")

# surrogates: the same derivative at the same points
x = torch.linspace(-2, 2, 401)
for name, theirs, mine in [
    ("atan(alpha=2)", surrogate.atan(alpha=2.0), ts.surrogate.atan(2.0)),
    ("fast_sigmoid(slope=25)", surrogate.fast_sigmoid(slope=25), ts.surrogate.fast_sigmoid(25)),
    ("sigmoid(slope=25)", surrogate.sigmoid(slope=25), ts.surrogate.sigmoid(25)),
    (
        "straight_through_estimator()",
        surrogate.straight_through_estimator(),
        ts.surrogate.straight_through(),
    ),
]:
    a = x.clone().requires_grad_()
    theirs(a).sum().backward()
    b = x.clone().requires_grad_()
    mine(b).sum().backward()
    print(f"surrogate {name}: derivative max |diff| {float((a.grad - b.grad).abs().max()):.1e}")

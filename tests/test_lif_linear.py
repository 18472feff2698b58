"""The fused LIF + Linear node against the two layers run one after the other."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchspike as ts
from torchspike.kernels import lif_linear as ll
from torchspike.kernels.lif_linear import lif_linear
from torchspike.kernels.lif_sequence import lif_sequence


def _case(reset: str, learn: bool, bias: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = (torch.randn(13, 5, 7, generator=g, dtype=torch.float64) * 0.8 + 0.35).requires_grad_()
    v0 = (torch.rand(5, 7, generator=g, dtype=torch.float64) * 1.2).requires_grad_()
    beta = torch.full((7,), 0.85, dtype=torch.float64).requires_grad_(learn)
    v_th = torch.tensor(1.0, dtype=torch.float64).requires_grad_(learn)
    w = torch.randn(3, 7, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_() if bias else None
    gy = torch.randn(13, 5, 3, generator=g, dtype=torch.float64)
    gv = torch.randn(5, 7, generator=g, dtype=torch.float64)
    return xs, v0, beta, v_th, w, b, gy, gv


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_fused_equals_lif_then_linear(reset, learn, bias, monkeypatch):
    """Same outputs and the same gradients for every input, with blocks of 2 steps (the last one
    shorter) in backward; the reference is lif_sequence followed by F.linear."""
    monkeypatch.setattr(ll, "_ROWS", 10)  # 2 steps of batch 5 per block
    xs, v0, beta, v_th, w, b, gy, gv = _case(reset, learn, bias)
    spike_fn = ts.surrogate.atan()
    inputs = [t for t in (xs, v0, beta, v_th, w, b) if t is not None and t.requires_grad]
    y, v = lif_linear(xs, v0, beta, v_th, reset, spike_fn, w, b)
    got = torch.autograd.grad([y, v], inputs, [gy, gv])
    z, v_ref = lif_sequence(xs, v0, beta, v_th, reset, spike_fn, membrane=False)
    y_ref = F.linear(z, w, b)
    want = torch.autograd.grad([y_ref, v_ref], inputs, [gy, gv])
    assert 0.1 < z.mean() < 0.9
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(v, v_ref, rtol=0, atol=0)
    for a, r in zip(got, want, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_gradient_of_the_state_alone_and_spent_input():
    """No gradient into the Linear's output: only the state's flows; a spent input raises."""
    xs, v0, beta, v_th, w, b, _, gv = _case("subtract", False, True)
    spike_fn = ts.surrogate.fast_sigmoid()
    _, v = lif_linear(xs, v0, beta, v_th, "subtract", spike_fn, w, b)
    got = torch.autograd.grad(v, [xs, v0], gv)
    _, v_ref = lif_sequence(xs, v0, beta, v_th, "subtract", spike_fn, membrane=False)
    for a, r in zip(got, torch.autograd.grad(v_ref, [xs, v0], gv), strict=True):
        torch.testing.assert_close(a, r)
    temp = xs * 1.0
    y, _ = lif_linear(temp, v0, beta, v_th, "subtract", spike_fn, w, b, overwrite_input=True)
    with pytest.raises(RuntimeError, match="overwrite_input=True was used after"):
        (y.sum() + temp.sum()).backward()
    with pytest.raises(ValueError, match=r"xs must be \[T, B, N\]"):
        lif_linear(xs[0], v0, beta, v_th, "subtract", spike_fn, w, b)


def test_spiking_net_fuses_only_plain_pairs():
    """SpikingNet uses the fused node for LIF -> Linear (one autograd node instead of two)
    and not where a hook, the membrane output or an IF's clamp needs the layers apart; the
    results match the layers called one by one."""
    torch.manual_seed(2)

    def nodes(net, xs):
        out, _ = net(xs)
        names, todo = set(), [out.grad_fn]
        while todo:
            fn = todo.pop()
            if fn is not None and fn.name() not in names:
                names.add(fn.name())
                todo.extend(f for f, _ in fn.next_functions)
        return out, names

    xs = torch.rand(9, 4, 6) * 1.5
    for neuron, fused in [
        (ts.LIF(0.9), True),
        (ts.IF(), True),
        (ts.IF(rectify=True), False),
        (ts.LIF(0.9, output="membrane"), False),
        (ts.LIF(0.9, reuse_membrane=False), False),
    ]:
        net = ts.SpikingNet(nn.Linear(6, 20), neuron, nn.Linear(20, 3), ts.LI(0.8))
        out, names = nodes(net, xs)
        assert ("_LIFLinearBackward" in names) == fused, (neuron, names)
        ref = xs
        for layer in net.layers:
            ref = layer(ref)[0] if isinstance(layer, ts.Neuron) else layer(ref)
        torch.testing.assert_close(out, ref)
    net = ts.SpikingNet(nn.Linear(6, 20), ts.LIF(0.9), nn.Linear(20, 3), ts.LI(0.8))
    net.layers[1].register_forward_hook(lambda m, i, o: None)
    assert "_LIFLinearBackward" not in nodes(net, xs)[1]
    with torch.no_grad():  # inference needs no fused backward: the plain kernels run
        assert torch.equal(net(xs)[0], ts.SpikingNet(*net.layers, workspace=False)(xs)[0])


def test_subclasses_and_old_style_neurons_keep_their_own_code():
    """A LIF subclass with its own forward is called as a module (not fused); a neuron whose
    forward takes none of SpikingNet's options still runs."""

    class Silent(ts.LIF):
        def forward(self, xs, state=None):
            ys, state = super().forward(xs, state)
            return ys * 0, state

    class OldStyle(ts.LI):
        def forward(self, xs, state=None):
            return super().forward(xs, state)

    torch.manual_seed(3)
    xs = (torch.rand(9, 4, 6) * 1.5).requires_grad_()
    for neuron in (Silent(0.9), OldStyle(0.9)):
        net = ts.SpikingNet(nn.Linear(6, 20), neuron, nn.Linear(20, 3), ts.LI(0.8))
        out, _ = net(xs)
        ref = xs
        for layer in net.layers:
            ref = layer(ref)[0] if isinstance(layer, ts.Neuron) else layer(ref)
        torch.testing.assert_close(out, ref)
        out.sum().backward()

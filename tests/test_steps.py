"""Layers run over time: a static input computed once, time folded into the batch."""

import pytest
import torch
from torch import nn

import torchspike as ts
import torchspike.steps
from torchspike.kernels import sparse
from torchspike.steps import fold_time, is_static


def test_static_input_is_computed_once():
    calls = []

    class Counting(nn.Linear):
        def forward(self, x):
            calls.append(x.shape)
            return super().forward(x)

    net = ts.SpikingNet(Counting(8, 6), ts.LIF(beta=0.9), nn.Linear(6, 3), ts.LIF(beta=0.9))
    x = torch.rand(4, 8)
    ys, _ = net(ts.encode.direct(x, 25))
    assert calls == [(4, 8)]
    calls.clear()
    ys_materialised, _ = net(ts.encode.direct(x, 25).contiguous())
    assert calls == [(100, 8)]
    torch.testing.assert_close(ys, ys_materialised)


def test_static_input_gradients_equal_materialised():
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Linear(8, 6), ts.LIF(beta=0.9), nn.Linear(6, 3), ts.LI(beta=0.9))
    x = torch.rand(4, 8) * 3
    y = torch.tensor([0, 1, 2, 1])
    grads = []
    for xs in (ts.encode.direct(x, 10), ts.encode.direct(x, 10).contiguous()):
        net.zero_grad()
        v, _ = net(xs)
        ts.loss.ce_membrane_sum(v, y).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_is_static_and_fold_time_shapes():
    assert is_static(torch.zeros(3).expand(5, 3))
    assert not is_static(torch.zeros(5, 3))
    y = fold_time(nn.Conv2d(1, 2, 3), torch.rand(4, 2, 1, 8, 8))
    assert y.shape == (4, 2, 2, 6, 6)


def test_spiking_net_spends_only_its_own_temporaries():
    """SpikingNet lets a LIF keep its membrane in the sparse input layer's output (new, seen by
    nobody), but not in a tensor a hook sees."""
    torch.manual_seed(5)
    fc, lif = nn.Linear(50, 300), ts.LIF(0.9)
    net = ts.SpikingNet(fc, lif)
    xs = (torch.rand(20, 4, 50) < 0.02).float()
    made = []

    def record(*args, **kwargs):
        y = sparse.maybe_sparse_linear(*args, **kwargs)
        made.append(y)
        return y

    saved = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torchspike.steps, "maybe_sparse_linear", record)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            spikes, _ = net(xs)
    assert made[0] is not None
    assert any(t.data_ptr() == made[0].data_ptr() for t in saved)  # the membrane lives there
    want = fc(xs)
    seen = []
    lif.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    hooked, _ = net(xs)
    torch.testing.assert_close(seen[0], want.detach())  # the hook sees the input current
    assert torch.equal(hooked, spikes)

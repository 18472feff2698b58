"""The Linear over folded time (input kept as bytes or not, buffers from a workspace or not),
against the dense one."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchspike as ts
from torchspike.kernels import folded_linear as fl


@pytest.mark.parametrize("as_bytes", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_folded_linear_equals_dense(bias, as_bytes, monkeypatch):
    monkeypatch.setattr(fl, "_ROWS", 7)  # blocks of 7 rows, the last one shorter
    torch.manual_seed(0)
    x = (torch.rand(60, 40, dtype=torch.float64) < 0.2).double().requires_grad_()
    w = torch.randn(9, 40, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, requires_grad=True) if bias else None
    gy = torch.randn(6, 10, 9, dtype=torch.float64)
    inputs = [x, w] + ([b] if bias else [])
    y = fl.folded_linear(x, w, b, (6, 10, 9), spikes_as_bytes=as_bytes)
    assert y.shape == (6, 10, 9) and not y._is_view()
    want = F.linear(x, w, b).reshape(6, 10, 9)
    torch.testing.assert_close(y, want)
    for got, ref in zip(
        torch.autograd.grad(y, inputs, gy), torch.autograd.grad(want, inputs, gy), strict=True
    ):
        torch.testing.assert_close(got, ref)


def test_folded_linear_rejects_other_shapes():
    with pytest.raises(ValueError, match="2-D"):
        fl.folded_linear(torch.ones(2, 3, 4), torch.randn(5, 4))


@pytest.mark.parametrize(
    "reuse, compact, spikes",
    [
        (True, False, None),
        (True, True, None),
        (False, False, torch.float32),
        (False, True, torch.uint8),
    ],
)
def test_spiking_net_keeps_hidden_spikes_as_bytes(reuse, compact, spikes):
    """A LIF fused with the Linear after it saves no spikes at all (they are read back from the
    membrane); apart (here: a LIF that keeps its membrane), ``compact_spikes`` makes the Linear
    save its input as uint8, not float. The gradients equal the plain layers' either way."""
    torch.manual_seed(1)
    layers = (nn.Linear(6, 40), ts.LIF(0.9, reuse_membrane=reuse), nn.Linear(40, 3), ts.LI(0.9))
    net = ts.SpikingNet(*layers, compact_spikes=compact)
    xs = torch.rand(15, 4, 6) * 2
    y = torch.tensor([0, 1, 2, 1])
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        v, _ = net(xs)
    ts.loss.ce_membrane_sum(v, y).backward()
    big = [t for t in saved if t.numel() == 15 * 4 * 40]
    want = {torch.float32} if spikes is None else {torch.float32, spikes}  # membrane, spikes
    assert {t.dtype for t in big} == want and len(big) == (1 if spikes is None else 2)
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    v_ref = xs
    for layer in net.layers:  # the same layers, called one by one
        v_ref = layer(v_ref)[0] if isinstance(layer, ts.Neuron) else layer(v_ref)
    ts.loss.ce_membrane_sum(v_ref, y).backward()
    torch.testing.assert_close(v, v_ref)
    for g, p in zip(grads, net.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)

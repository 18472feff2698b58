"""The sparse binary Linear against the dense one: values and all three gradients."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchspike as ts
from torchspike.kernels import sparse


@pytest.mark.parametrize("p", [0.0, 0.02, 0.3])
@pytest.mark.parametrize("bias", [True, False])
def test_sparse_linear_equals_dense(p, bias):
    torch.manual_seed(0)
    x = (torch.rand(60, 40, dtype=torch.float64) < p).double().requires_grad_()
    w = torch.randn(300, 40, dtype=torch.float64, requires_grad=True)
    b = torch.randn(300, dtype=torch.float64, requires_grad=True) if bias else None
    gy = torch.randn(60, 300, dtype=torch.float64)
    grads = []
    for fn in (F.linear, sparse.sparse_binary_linear):
        y = fn(x, w, b)
        inputs = [x, w] + ([b] if bias else [])
        grads.append((y, *torch.autograd.grad(y, inputs, gy)))
    for a, c in zip(*grads, strict=True):
        torch.testing.assert_close(a, c)


def _with_ones(rows: int, cols: int, ones: int) -> torch.Tensor:
    x = torch.zeros(rows * cols)
    x[torch.randperm(rows * cols, generator=torch.Generator().manual_seed(0))[:ones]] = 1
    return x.reshape(rows, cols)


def test_density_threshold_grows_with_width():
    """Fitted to bench/RESULTS_sparsity.md: below each measured break-even (0.035 at N = 256,
    0.12 at 1024, 0.21 at 4096), 0 for narrow layers, capped past the widest one measured."""
    th = sparse.density_threshold
    assert th(255) == 0 and th(20) == 0
    assert 0.02 < th(256) < 0.035 and 0.09 < th(1024) < 0.12 and 0.17 < th(4096) < 0.21
    assert th(4096) == th(65536)
    widths = [256, 300, 512, 1000, 2048, 4096]
    assert all(th(a) < th(b) for a, b in zip(widths, widths[1:], strict=False))
    x = _with_ones(100, 30, 300)  # exactly 10% ones
    assert sparse.maybe_sparse_linear(x, torch.randn(1024, 30), None) is not None
    assert sparse.maybe_sparse_linear(x, torch.randn(256, 30), None) is None


def test_dispatch_rules():
    w, b = torch.randn(512, 30), torch.zeros(512)
    spikes = (torch.rand(100, 30) < 0.03).float()
    assert sparse.maybe_sparse_linear(spikes, w, b) is not None
    assert sparse.maybe_sparse_linear((torch.rand(100, 30) < 0.5).float(), w, b) is None  # dense
    assert sparse.maybe_sparse_linear(spikes * 0.5, w, b) is None  # not binary
    assert sparse.maybe_sparse_linear(spikes, w[:10], b[:10]) is None  # too narrow to pay
    # inputs whose sum is small but that are not sparse 0/1 spikes: the sum test lets them pass,
    # the count and value checks send them to the dense GEMM
    assert sparse.maybe_sparse_linear(spikes - spikes.roll(1, 0), w, b) is None  # +1s and -1s
    assert sparse.maybe_sparse_linear(torch.rand(100, 30) - 0.5, w, b) is None  # dense, sum ~0


def test_sparse_binary_linear_rejects_other_inputs():
    w = torch.randn(300, 30)
    with pytest.raises(ValueError, match="only 0s and 1s"):
        sparse.sparse_binary_linear(torch.full((4, 30), 0.5), w)
    with pytest.raises(ValueError, match="2-D"):
        sparse.sparse_binary_linear(torch.ones(2, 4, 30), w)


def test_net_with_sparse_input_matches_dense_layers():
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Linear(50, 300), ts.LIF(0.9), nn.Linear(300, 5), ts.LI(0.9))
    xs = (torch.rand(20, 4, 50) < 0.02).float()
    fc = net.layers[0]
    assert sparse.maybe_sparse_linear(xs.reshape(80, 50), fc.weight, fc.bias) is not None
    v, _ = net(xs)
    ts.loss.ce_membrane_sum(v, torch.tensor([0, 1, 2, 3])).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    v_dense = xs
    for layer in net.layers:  # the same layers, applied densely step by step
        v_dense = layer(v_dense)[0] if isinstance(layer, ts.Neuron) else layer(v_dense)
    ts.loss.ce_membrane_sum(v_dense, torch.tensor([0, 1, 2, 3])).backward()
    torch.testing.assert_close(v, v_dense)
    for g, p in zip(grads, net.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def test_linear_with_forward_hooks_is_called_not_bypassed():
    """The sparse product skips the module call; a Linear with hooks is called as usual."""
    torch.manual_seed(0)
    fc = nn.Linear(50, 300)
    net = ts.SpikingNet(fc, ts.LIF(0.9))
    xs = (torch.rand(20, 4, 50) < 0.02).float()
    assert sparse.maybe_sparse_linear(xs.reshape(80, 50), fc.weight, fc.bias) is not None
    plain, _ = net(xs)
    seen = []
    handle = fc.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    hooked, _ = net(xs)
    handle.remove()
    assert seen == [(80, 300)]
    torch.testing.assert_close(hooked, plain)
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(m))
    try:
        net(xs)
    finally:
        handle.remove()
    assert fc in seen

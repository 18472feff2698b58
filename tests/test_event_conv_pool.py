"""The event convolution fused with the 2x2 max pooling after it (kernels.event_conv_pool)
against F.conv2d + F.max_pool2d and autograd, against the two kernels one after the other, and
where SpikingNet uses it."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchspike as ts
from torchspike.kernels import event_conv, event_conv_pool
from torchspike.kernels.conv_pool import max_pool_2x2
from torchspike.kernels.event_conv import maybe_event_conv
from torchspike.kernels.event_conv_pool import maybe_event_conv_pool
from torchspike.kernels.workspace import Workspace

pytestmark = pytest.mark.usefixtures("native_kernels")


def _events(shape, density, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < density).float()


def _check(x, conv, *, grad_x=True):
    """Values and every gradient: close to F.conv2d + F.max_pool2d's, and equal bit for bit to
    the event convolution followed by the pooling kernel (the input gradient: close)."""
    pool = nn.MaxPool2d(2)
    xs = [x.clone().requires_grad_(grad_x) for _ in range(3)]
    y = maybe_event_conv_pool(conv, pool, xs[0])
    assert y is not None and y.is_contiguous()
    unfused = max_pool_2x2(maybe_event_conv(conv, xs[1]))
    ref = pool(F.conv2d(xs[2], conv.weight, conv.bias, padding=conv.padding))
    assert torch.equal(y, unfused)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    gy = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    params = [p for p in (conv.weight, conv.bias) if p is not None and p.requires_grad]
    grads = [torch.autograd.grad(out, [xi, *params] if grad_x else params, gy) for out, xi in zip(
        (y, unfused, ref), xs, strict=True)]  # fmt: skip
    for k, (g, g_unfused, g_ref) in enumerate(zip(*grads, strict=True)):
        if grad_x and k == 0:  # oneDNN's, in chunks of samples: summed in another order
            torch.testing.assert_close(g, g_unfused, rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(g, g_unfused)
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "shape,out,kernel,padding",
    [
        ((4, 2, 12, 10), 6, 5, 0),  # conv output 8x6
        ((3, 4, 7, 9), 8, 3, 1),  # 7x9: the last row and column dropped
        ((2, 3, 6, 6), 5, (3, 2), (2, 1)),  # 8x7
        ((1, 12, 15, 15), 32, 5, 0),  # config n's conv2 (11x11 -> 5x5), a batch of one
        ((2, 1, 3, 3), 3, 3, 1),  # 3x3, padded
    ],
)
@pytest.mark.parametrize("grad_x", [True, False])
def test_matches_conv2d_and_max_pool2d(shape, out, kernel, padding, grad_x):
    conv = nn.Conv2d(shape[1], out, kernel, padding=padding)
    _check(_events(shape, 0.08), conv, grad_x=grad_x)


@pytest.mark.parametrize("chunk_bytes", [1, 3000])  # one sample, two samples at a time
def test_input_gradient_in_chunks_of_samples(monkeypatch, chunk_bytes):
    monkeypatch.setattr(event_conv_pool, "CHUNK_BYTES", chunk_bytes)
    _check(_events((5, 3, 9, 8), 0.08), nn.Conv2d(3, 4, 3, padding=(0, 1)))


def test_spikes_kept_as_bytes_and_the_input_gradient_from_the_workspace():
    workspace, conv = Workspace(min_bytes=0), nn.Conv2d(3, 4, 3)
    x = _events((4, 3, 9, 9), 0.05).requires_grad_()  # spikes: they need a gradient
    y = maybe_event_conv_pool(conv, nn.MaxPool2d(2), x, workspace)
    assert y.grad_fn.saved_tensors[0].dtype == torch.uint8
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert workspace.nbytes() == gx.untyped_storage().nbytes()  # the one buffer it gave out
    x = _events((4, 3, 9, 9), 0.05)  # input events: kept as they are
    y = maybe_event_conv_pool(conv, nn.MaxPool2d(2), x, workspace)
    assert y.grad_fn.saved_tensors[0] is x


def test_without_bias_and_with_frozen_weights():
    _check(_events((3, 2, 9, 9), 0.05), nn.Conv2d(2, 4, 3, bias=False), grad_x=False)
    _check(_events((3, 2, 9, 9), 0.05), nn.Conv2d(2, 4, 3).requires_grad_(False))


def test_no_events_ties_go_to_the_first_corner():
    """Without events every output is the bias: four equal values per window, whose gradient
    goes to the first in PyTorch's scan order (the top left)."""
    conv = nn.Conv2d(3, 4, 3, padding=1)
    for grad_x in (True, False):
        _check(torch.zeros(2, 3, 7, 6), conv, grad_x=grad_x)
    x = _events((2, 3, 8, 8), 0.02, seed=3)  # a few events among ties
    _check(x, conv, grad_x=False)


def test_all_ones_fall_back_over_the_density_threshold(monkeypatch):
    conv, pool = nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)
    assert maybe_event_conv_pool(conv, pool, torch.ones(2, 3, 6, 6)) is None
    monkeypatch.setattr(event_conv, "DENSITY_THRESHOLD", 1.0)
    _check(torch.ones(2, 3, 6, 6), conv)


def test_only_a_plain_2x2_max_pooling_of_an_event_conv():
    conv, x = nn.Conv2d(2, 4, 3), _events((2, 2, 8, 8), 0.05)
    y = maybe_event_conv_pool(conv, nn.MaxPool2d(2), x)
    spikes_cl = x.contiguous(memory_format=torch.channels_last)  # a neuron's output after BN
    assert torch.equal(maybe_event_conv_pool(conv, nn.MaxPool2d(2), spikes_cl), y)
    hooked = nn.MaxPool2d(2)
    hooked.register_forward_hook(lambda *args: None)
    for pool in (None, nn.MaxPool2d(3), nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(2, 1),
                 nn.AvgPool2d(2), hooked):  # fmt: skip
        assert maybe_event_conv_pool(conv, pool, x) is None
    assert maybe_event_conv_pool(nn.Conv2d(2, 4, 3, stride=2), nn.MaxPool2d(2), x) is None
    assert maybe_event_conv_pool(conv, nn.MaxPool2d(2), x * 0.5) is None  # not binary
    assert maybe_event_conv_pool(nn.Conv2d(2, 4, 7), nn.MaxPool2d(2), x) is not None  # 2x2
    assert maybe_event_conv_pool(nn.Conv2d(2, 4, 8), nn.MaxPool2d(2), x) is None  # 1x1
    with torch.autocast("cpu"):
        assert maybe_event_conv_pool(conv, nn.MaxPool2d(2), x) is None


def test_off_when_native_is_off(monkeypatch):
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "0")
    x = _events((2, 2, 8, 8), 0.05)
    assert maybe_event_conv_pool(nn.Conv2d(2, 4, 3), nn.MaxPool2d(2), x) is None


def test_double_backward():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = _events((2, 2, 7, 7), 0.2).requires_grad_()
    y = event_conv_pool._EventConvPool2d.apply(x, conv.weight, conv.bias, (1, 1), None)
    ref = F.max_pool2d(F.conv2d(x, conv.weight, conv.bias, padding=1), 2)
    gy = torch.randn(ref.shape, requires_grad=True)
    grads = torch.autograd.grad(y, (x, conv.weight), gy, create_graph=True)
    refs = torch.autograd.grad(ref, (x, conv.weight), gy, create_graph=True)
    for g, gref in zip(grads, refs, strict=True):
        torch.testing.assert_close(g, gref, rtol=1e-5, atol=1e-5)
    second = torch.autograd.grad(sum(g.square().sum() for g in grads), (gy, conv.weight))
    second_ref = torch.autograd.grad(sum(g.square().sum() for g in refs), (gy, conv.weight))
    for g, gref in zip(second, second_ref, strict=True):
        torch.testing.assert_close(g, gref, rtol=1e-4, atol=1e-4)


def _net():
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Conv2d(2, 4, 5), nn.MaxPool2d(2), ts.LIF(0.9),
                        nn.Conv2d(4, 6, 3), nn.MaxPool2d(2), ts.LIF(0.9),
                        nn.Flatten(), nn.Linear(24, 3), ts.LIF(0.9))  # fmt: skip
    with torch.no_grad():
        for layer in (net.layers[0], net.layers[3]):
            layer.weight.mul_(4)
    return net


def _run(net, xs):
    net.zero_grad()
    ys, _ = net(xs)
    ys.sum().backward()
    return ys, [p.grad.clone() for p in net.parameters()]


def test_spiking_net_fuses_conv_and_pool_and_keeps_the_unfused_results(monkeypatch):
    """Conv-MaxPool-LIF twice (conv1: 17x17 -> 13x13, odd, -> 6x6): the same spikes and weight
    gradients as the unfused kernels and as the pure-torch path; a hook on a pooling layer
    keeps it unfused."""
    net, xs = _net(), _events((6, 3, 2, 17, 17), 0.05)
    monkeypatch.setattr(event_conv, "DENSITY_THRESHOLD", 1.0)  # the hidden spikes too
    calls = []
    real = event_conv_pool._EventConvPool2d.apply
    monkeypatch.setattr(
        event_conv_pool._EventConvPool2d, "apply", lambda *a: calls.append(1) or real(*a)
    )
    fused = _run(net, xs)
    assert len(calls) == 2 and 0 < fused[0].sum()
    seen = []
    net.layers[4].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    unfused = _run(net, xs)
    assert len(calls) == 3 and len(seen) == 1  # conv2's pooling ran as a layer
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "0")
    dense = _run(net, xs)
    assert torch.equal(fused[0], unfused[0]) and torch.equal(fused[0], dense[0])
    assert "with the 2x2 max pooling after it" in net.explain().splitlines()[0]
    assert "channels-last on the CPU" in net.explain().splitlines()[0]
    for g, g_unfused, g_dense in zip(fused[1], unfused[1], dense[1], strict=True):
        torch.testing.assert_close(g, g_unfused, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(g, g_dense, rtol=1e-4, atol=1e-5)


# forward-mode AD's first use imports torch's jvp decompositions, which script functions
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_not_under_forward_ad_or_torch_func():
    import torch.autograd.forward_ad as fwAD

    conv, pool, x = nn.Conv2d(2, 4, 3), nn.MaxPool2d(2), _events((2, 2, 8, 8), 0.05)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.ones_like(x))
        assert maybe_event_conv_pool(conv, pool, dual) is None
    seen = []
    torch.func.vmap(lambda x: seen.append(maybe_event_conv_pool(conv, pool, x)) or x)(x[None])
    assert seen == [None]

"""The event convolution (kernels.event_conv) against F.conv2d and autograd, and where
SpikingNet uses it."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchspike as ts
from torchspike.kernels import event_conv, event_conv_pool
from torchspike.kernels.event_conv import event_conv2d, maybe_event_conv

pytestmark = pytest.mark.usefixtures("native_kernels")


def _events(shape, density, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < density).float()


def _check(x, conv, *, grad_x=True):
    """Values and the gradients of input, weight and bias against F.conv2d's."""
    x = x.clone().requires_grad_(grad_x)
    y = maybe_event_conv(conv, x)
    assert y is not None and y.is_contiguous(memory_format=torch.channels_last)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    gy = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    inputs = [p for p in (x, conv.weight, conv.bias) if p is not None and p.requires_grad]
    for g, gref in zip(
        torch.autograd.grad(y, inputs, gy), torch.autograd.grad(ref, inputs, gy), strict=True
    ):
        torch.testing.assert_close(g, gref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "shape,out,kernel,padding",
    [
        ((4, 2, 12, 10), 6, 5, 0),
        ((3, 4, 7, 9), 8, 3, 1),
        ((2, 3, 6, 6), 5, (3, 2), (2, 1)),
        ((1, 12, 15, 15), 32, 5, 0),  # a batch of one
        ((2, 1, 3, 3), 3, 5, 1),  # kernel larger than the input, padded
    ],
)
def test_event_conv_matches_conv2d(shape, out, kernel, padding):
    conv = nn.Conv2d(shape[1], out, kernel, padding=padding)
    _check(_events(shape, 0.08), conv)


def test_event_conv_without_bias_and_without_input_gradient():
    conv = nn.Conv2d(2, 4, 3, bias=False)
    _check(_events((3, 2, 9, 9), 0.05), conv, grad_x=False)
    conv = nn.Conv2d(2, 4, 3).requires_grad_(False)  # only the input's gradient
    _check(_events((3, 2, 9, 9), 0.05), conv)


def test_event_conv_of_no_spikes_and_of_all_ones(monkeypatch):
    conv = nn.Conv2d(3, 4, 3, padding=1)
    _check(torch.zeros(2, 3, 6, 6), conv)  # the bias everywhere, gradients from no events
    monkeypatch.setattr(event_conv, "DENSITY_THRESHOLD", 1.0)
    _check(torch.ones(2, 3, 6, 6), conv)


def test_event_conv_only_for_sparse_binary_input_of_a_plain_conv():
    conv = nn.Conv2d(2, 4, 3)
    x = _events((2, 2, 8, 8), 0.05)
    assert maybe_event_conv(conv, x).is_contiguous(memory_format=torch.channels_last)
    assert maybe_event_conv(conv, x * 0.5) is None  # not binary
    assert maybe_event_conv(conv, _events((2, 2, 8, 8), 0.5)) is None
    assert maybe_event_conv(conv, x.double()) is None
    spikes_cl = x.contiguous(memory_format=torch.channels_last)  # a neuron's output after BN
    assert torch.equal(maybe_event_conv(conv, spikes_cl), maybe_event_conv(conv, x))
    assert maybe_event_conv(conv, x.transpose(2, 3)) is None  # neither layout
    for other in (nn.Conv2d(2, 4, 3, stride=2), nn.Conv2d(2, 4, 3, dilation=2),
                  nn.Conv2d(2, 4, 3, groups=2), nn.Conv2d(2, 4, 3, padding="same"),
                  nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect")):  # fmt: skip
        assert maybe_event_conv(other, x) is None
    hooked = nn.Conv2d(2, 4, 3)
    hooked.register_forward_hook(lambda *args: None)
    assert maybe_event_conv(hooked, x) is None
    with torch.autocast("cpu"):
        assert maybe_event_conv(conv, x) is None


def test_event_conv_off_when_native_is_off(monkeypatch):
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "0")
    assert maybe_event_conv(nn.Conv2d(2, 4, 3), _events((2, 2, 8, 8), 0.05)) is None


def test_event_conv_double_backward():
    conv = nn.Conv2d(2, 3, 3, padding=1).double().float()
    x = _events((2, 2, 5, 5), 0.2).requires_grad_()
    y = event_conv2d(x, conv.weight, conv.bias, (1, 1))
    ref = F.conv2d(x, conv.weight, conv.bias, padding=1)
    gy = torch.randn(ref.shape, requires_grad=True)
    grads = torch.autograd.grad(y, (x, conv.weight), gy, create_graph=True)
    refs = torch.autograd.grad(ref, (x, conv.weight), gy, create_graph=True)
    for g, gref in zip(grads, refs, strict=True):
        torch.testing.assert_close(g, gref, rtol=1e-5, atol=1e-5)
    second = torch.autograd.grad(sum(g.square().sum() for g in grads), (gy, conv.weight))
    second_ref = torch.autograd.grad(sum(g.square().sum() for g in refs), (gy, conv.weight))
    for g, gref in zip(second, second_ref, strict=True):
        torch.testing.assert_close(g, gref, rtol=1e-4, atol=1e-4)


def test_event_conv2d_refuses_non_binary_input():
    with pytest.raises(ValueError, match="only 0s and 1s"):
        event_conv2d(torch.full((1, 1, 3, 3), 0.5), torch.ones(1, 1, 2, 2))


def test_spiking_net_runs_event_conv_and_matches_the_dense_path(monkeypatch):
    """Config n's shape in small: event input, Conv-MaxPool-LIF twice; spikes equal and
    gradients close with and without the native kernels."""
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Conv2d(2, 4, 5), nn.MaxPool2d(2), ts.LIF(0.9),
                        nn.Conv2d(4, 6, 3), nn.MaxPool2d(2), ts.LIF(0.9),
                        nn.Flatten(), nn.Linear(24, 3), ts.LIF(0.9))  # fmt: skip
    with torch.no_grad():
        for layer in (net.layers[0], net.layers[3]):
            layer.weight.mul_(4)
    xs = _events((6, 3, 2, 16, 16), 0.05)
    monkeypatch.setattr(event_conv, "DENSITY_THRESHOLD", 1.0)  # the hidden spikes too
    calls = []
    real = event_conv_pool._EventConvPool2d.apply
    monkeypatch.setattr(
        event_conv_pool._EventConvPool2d, "apply", lambda *a: calls.append(1) or real(*a)
    )
    out = {}
    for on in ("1", "0"):
        monkeypatch.setenv("TORCHSPIKE_NATIVE", on)
        net.zero_grad()
        ys, _ = net(xs)
        ys.sum().backward()
        out[on] = ys, [p.grad.clone() for p in net.parameters()]
    assert len(calls) == 2  # both convolutions with their pooling, with the kernels on
    assert 0 < out["1"][0].sum() and torch.equal(out["1"][0], out["0"][0])
    for g, gref in zip(out["1"][1], out["0"][1], strict=True):
        torch.testing.assert_close(g, gref, rtol=1e-4, atol=1e-5)


# forward-mode AD's first use imports torch's jvp decompositions, which script functions
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_event_conv_not_under_forward_ad_or_torch_func():
    import torch.autograd.forward_ad as fwAD

    conv, x = nn.Conv2d(2, 4, 3), _events((2, 2, 8, 8), 0.05)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.ones_like(x))
        assert maybe_event_conv(conv, dual) is None
    seen = []
    torch.func.vmap(lambda x: seen.append(maybe_event_conv(conv, x)) or x)(x[None])
    assert seen == [None]

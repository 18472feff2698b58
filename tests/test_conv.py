"""Convolutional SNNs in SpikingNet: the folded, channels-last path (convolutions, 2x2 max
pooling) against the plain layers."""

import copy

import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike.kernels.conv_pool import is_pool_2x2, max_pool_2x2
from torchspike.steps import channels_last, run_steps


def _net() -> ts.SpikingNet:
    torch.manual_seed(0)
    return ts.SpikingNet(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.MaxPool2d(2),
        ts.LIF(0.9),
        nn.Conv2d(6, 8, 3),
        nn.BatchNorm2d(8),
        ts.LIF(0.9),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 5),
        ts.LIF(0.9),
    )


def _reference(net: ts.SpikingNet, xs: torch.Tensor) -> torch.Tensor:
    """The same layers on one step at a time, in their default (NCHW) layout: every stateless
    layer on [B, ...] of a step, every neuron by its step function over time."""
    for layer in net.layers:
        if isinstance(layer, ts.LIF):
            xs, _ = run_steps(layer.step, xs, layer.initial_state(xs[0]))
        else:
            xs = torch.stack([layer(x.contiguous()) for x in xs.unbind(0)])
    return xs


def test_channels_last_for_every_cpu_convolution_and_nothing_else():
    x = torch.rand(2, 3, 5, 5)
    assert channels_last(nn.Conv2d(3, 4, 3), x).is_contiguous(memory_format=torch.channels_last)
    wide = torch.rand(2, 32, 5, 5)
    assert channels_last(nn.Conv2d(32, 4, 3), wide).is_contiguous(memory_format=torch.channels_last)
    for other in (nn.MaxPool2d(2), nn.BatchNorm2d(3), nn.Conv1d(3, 4, 3), nn.Linear(5, 4)):
        assert channels_last(other, x) is x
    unbatched = torch.rand(3, 5, 5)
    assert channels_last(nn.Conv2d(3, 4, 3), unbatched) is unbatched


def test_spiking_net_keeps_channels_last_from_each_convolution_through_bn_lif_and_pool(
    monkeypatch,
):
    import torchspike.steps as steps

    convs, lifs = [], []
    real = steps.channels_last

    def spy(layer, x):
        out = real(layer, x)
        if isinstance(layer, nn.Conv2d):
            convs.append(x.is_contiguous(memory_format=torch.channels_last))
        return out

    monkeypatch.setattr(steps, "channels_last", spy)
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "0")  # dense convolutions only (no event_conv)
    net = _net()
    for layer in net.layers:
        if isinstance(layer, ts.LIF):
            layer.register_forward_hook(lambda m, args, out: lifs.append(out[0][0]))
    xs = (torch.rand(4, 3, 2, 8, 8) < 0.3).float()
    net(xs)  # Conv-MaxPool-LIF, then Conv-BatchNorm-LIF
    assert convs == [False, True]  # NCHW input events, then the first block's spikes
    cl = [s.dim() == 4 and s.is_contiguous(memory_format=torch.channels_last) for s in lifs]
    assert cl == [True, True, False]  # after the pooling, after BatchNorm; after the Linear


@pytest.mark.parametrize("static", [False, True])
def test_conv_net_matches_the_plain_layers_step_by_step(static):
    """Spikes equal, membranes and gradients equal up to float rounding (the channels-last
    sums run in another order), for spike input and for a static image computed once."""
    net = _net().eval()  # BatchNorm on running statistics: per step and folded agree
    ref_net = copy.deepcopy(net)
    gen = torch.Generator().manual_seed(1)
    if static:
        xs = ts.encode.direct(torch.rand(3, 2, 8, 8, generator=gen) * 2, 6)
    else:
        xs = (torch.rand(6, 3, 2, 8, 8, generator=gen) < 0.3).float()
    with torch.no_grad():  # weights large enough that every layer spikes
        for layer in (net.layers[0], net.layers[3], net.layers[7]):
            layer.weight.mul_(4)
        ref_net.load_state_dict(net.state_dict())
    out, _ = net(xs)
    ref = _reference(ref_net, xs)
    assert torch.equal(out, ref)
    assert 0 < float(out.detach().mean()) < 1
    target = torch.tensor([0, 1, 2])
    ts.loss.ce_count(out, target).backward()
    ts.loss.ce_count(ref, target).backward()
    for p, q in zip(net.parameters(), ref_net.parameters(), strict=True):
        scale = float(q.grad.abs().max())
        assert scale > 0
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-5 * scale)


def test_max_pool_2x2_only_where_it_is_max_pool2d_of_channels_last(monkeypatch):
    """Channels-last always; NCHW float32 only with the native kernels (tests/test_native.py)."""
    x = torch.rand(2, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    assert is_pool_2x2(nn.MaxPool2d(2), x)
    assert is_pool_2x2(nn.MaxPool2d((2, 2), stride=2), x)
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "0")
    assert not is_pool_2x2(nn.MaxPool2d(2), x.contiguous())
    monkeypatch.delenv("TORCHSPIKE_NATIVE")
    assert not is_pool_2x2(nn.MaxPool2d(2), x.contiguous().double())
    assert not is_pool_2x2(nn.MaxPool2d(2), x.transpose(2, 3))  # neither layout
    assert not is_pool_2x2(nn.MaxPool2d(3), x)
    assert not is_pool_2x2(nn.MaxPool2d(2, stride=1), x)
    assert not is_pool_2x2(nn.MaxPool2d(2, padding=1), x)
    assert not is_pool_2x2(nn.MaxPool2d(2, ceil_mode=True), x)
    assert not is_pool_2x2(nn.AvgPool2d(2), x)
    hooked = nn.MaxPool2d(2)
    hooked.register_forward_hook(lambda *args: None)
    assert not is_pool_2x2(hooked, x)


def test_max_pool_2x2_gradcheck_and_double_backward():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)  # distinct values: no ties
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(max_pool_2x2, (x,))
    assert torch.autograd.gradgradcheck(max_pool_2x2, (x,))
    y = max_pool_2x2(x)
    gy = torch.randn_like(y, requires_grad=True)
    (plain,) = torch.autograd.grad(y, x, gy, retain_graph=True)
    (graphed,) = torch.autograd.grad(y, x, gy, create_graph=True)
    assert torch.equal(plain, graphed) and graphed.requires_grad


def test_a_net_ending_in_a_conv_block_returns_contiguous_steps():
    """Inside, the block runs channels-last; its output is handed back as PyTorch's layers hand
    back theirs for NCHW input, so ``view`` works on it."""
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), ts.LIF(0.9))
    xs = torch.rand(3, 2, 2, 6, 6)
    out, _ = net(xs)
    assert out.is_contiguous() and out.view(3, 2, -1).shape == (3, 2, 144)
    assert 0 < float(out.detach().mean()) < 1

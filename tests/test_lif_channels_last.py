"""A LIF fed channels-last steps (a convolution's output folded over time) runs its fused
kernel in that memory order (torchspike.kernels.layout): the same spikes, state and gradients
as in NCHW order, and channels-last outputs."""

import pytest
import torch

import torchspike as ts
from torchspike.kernels import layout

SHAPE = (3, 2, 4, 5, 6)  # [T, B, C, H, W]


def _cl(t: torch.Tensor) -> torch.Tensor:
    """The same values with every step channels-last (memory [T, B, H, W, C])."""
    return t.movedim(2, -1).contiguous().movedim(-1, 2)


def _run(lif, xs, state=None):
    xs = xs.detach().requires_grad_()
    out, end = lif(xs, state)
    loss = (out * torch.linspace(-1, 2, out.numel()).view(out.shape)).sum() + end.v.square().sum()
    params = [p for p in lif.parameters()]
    grads = torch.autograd.grad(loss, [xs, *params])
    return out, end.v, grads


PARAMS = {
    "scalar": {},
    "per neuron": {
        "beta": torch.rand(4, 5, 6) * 0.5 + 0.4,
        "learn_beta": True,
        "v_th": torch.rand(4, 5, 6) + 0.5,
        "learn_v_th": True,
    },  # fmt: skip
    "per row and column": {"beta": torch.rand(5, 6) * 0.5 + 0.4, "learn_beta": True},
    "per column": {"beta": torch.linspace(0.5, 0.9, 6)},
}


@pytest.mark.parametrize("params", list(PARAMS), ids=list(PARAMS))
@pytest.mark.parametrize("output", ["spikes", "membrane"])
def test_lif_on_channels_last_steps_equals_nchw(params, output):
    kwargs = {"beta": 0.9, **PARAMS[params]}
    lif = ts.LIF(**kwargs, output=output)
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(SHAPE, generator=gen) * 1.5
    state = ts.neurons.LIFState(torch.rand(SHAPE[1:], generator=gen))
    assert layout.channels_last_steps(_cl(xs), lif.beta, lif.v_th)
    out, v, grads = _run(lif, _cl(xs), ts.neurons.LIFState(_cl(state.v[None])[0]))
    ref_out, ref_v, ref_grads = _run(lif, xs, state)
    fired = (out > lif.v_th) if output == "membrane" else out
    assert 0 < float(fired.detach().float().mean()) < 1
    assert torch.equal(out, ref_out) and torch.equal(v, ref_v)
    assert out[0].is_contiguous(memory_format=torch.channels_last)
    assert v.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(grads[0], ref_grads[0], rtol=0, atol=0)  # per neuron: exact
    for g, ref in zip(grads[1:], ref_grads[1:], strict=True):  # sums in another order
        torch.testing.assert_close(g, ref, rtol=1e-6, atol=1e-6)


def test_lif_on_a_static_channels_last_input():
    """A static image through Conv and BatchNorm once: time stride 0, channels-last steps."""
    lif = ts.LIF(0.9)
    step = torch.rand(SHAPE[1:]) * 1.5
    xs = _cl(step[None])[0].unsqueeze(0).expand(SHAPE)
    assert xs.stride(0) == 0 and layout.channels_last_steps(xs, lif.beta, lif.v_th)
    out, v, grads = _run(lif, xs)
    ref_out, ref_v, ref_grads = _run(lif, step.unsqueeze(0).expand(SHAPE))
    assert torch.equal(out, ref_out) and torch.equal(v, ref_v)
    torch.testing.assert_close(grads[0], ref_grads[0], rtol=0, atol=0)


def test_channels_last_steps_only_for_channels_last_memory():
    xs = torch.rand(SHAPE)
    scalar = torch.tensor(0.9)
    assert not layout.channels_last_steps(xs, scalar)  # NCHW
    assert not layout.channels_last_steps(_cl(xs).transpose(3, 4), scalar)  # neither
    assert not layout.channels_last_steps(_cl(xs), torch.rand(1, 4, 5, 6))  # 4-d parameter
    one_channel = torch.rand(3, 2, 1, 5, 6)
    assert not layout.channels_last_steps(_cl(one_channel), scalar)  # also contiguous
    assert not layout.channels_last_steps(torch.rand(3, 2, 4), scalar)  # not an image


def test_double_backward_through_a_lif_on_channels_last_steps():
    lif = ts.LIF(0.9)
    xs = torch.rand(SHAPE, generator=torch.Generator().manual_seed(2)) * 1.5
    results = []
    for x in (_cl(xs), xs):
        x = x.detach().requires_grad_()
        out, _ = lif(x)
        (g,) = torch.autograd.grad((out * out.detach().cumsum(0)).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), x)
        results.append((g.detach(), gg))
    assert torch.equal(results[0][0], results[1][0]) and results[1][0].abs().sum() > 0
    assert results[1][1].abs().sum() > 0
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-6, atol=1e-6)

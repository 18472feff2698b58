"""SpikingNet's shortcuts (the sparse product, spikes saved as bytes, a membrane written into
its input) give way wherever they would differ from calling the layers one by one: hooks,
autocast, frozen layers, subclasses, inputs the caller still holds."""

import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike.kernels import folded_linear as fl
from torchspike.kernels.lif_sequence import lif_sequence


def _net(*, bias: bool = True, second: nn.Module | None = None) -> ts.SpikingNet:
    torch.manual_seed(0)
    return ts.SpikingNet(
        nn.Linear(6, 40),
        ts.LIF(0.9),
        nn.Linear(40, 30, bias=bias),
        second if second is not None else ts.LIF(0.9),
        nn.Linear(30, 3),
        ts.LI(0.9),
        compact_spikes=True,  # the shortcut most of these cases would take
    )


def _run(net, xs, layer_by_layer: bool):
    """Output and parameter gradients, through SpikingNet or calling each layer itself."""
    net.zero_grad()
    if layer_by_layer:
        v = xs
        for layer in net.layers:
            v = layer(v)[0] if isinstance(layer, ts.Neuron) else layer(v)
    else:
        v, _ = net(xs)
    params = [p for p in net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(v.float().sum(), params) if params else []
    return v, grads


def _same(net, xs, **close):
    (v, g), (v_ref, g_ref) = (_run(net, xs, flag) for flag in (False, True))
    torch.testing.assert_close(v, v_ref, **close)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, **close)
    return v


XS = torch.rand(15, 4, 6) * 2


def test_frozen_linear_without_bias():
    net = _net(bias=False)
    net.requires_grad_(False)
    _same(net, XS)  # grad mode on, nothing requires grad


def test_autocast_runs_the_layers_as_autocast_would():
    net = _net()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = _same(net, XS)
    assert v.dtype == torch.float32  # neurons run in float32 under autocast (read-out LI too)


# the global hook also fires on the first Linear, whose input needs no gradient: torch warns
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_backward_hooks_are_called_and_see_their_layer():
    net = _net()
    calls = []
    fc2, lif2 = net.layers[2], net.layers[3]
    fc2.register_full_backward_pre_hook(lambda m, go: calls.append("fc2 pre"))
    fc2.register_full_backward_hook(lambda m, gi, go: calls.append("fc2"))
    lif2.register_full_backward_hook(lambda m, gi, go: calls.append("lif2"))
    _same(net, XS)
    assert calls.count("fc2 pre") == 2 and calls.count("fc2") == 2 and calls.count("lif2") == 2
    calls.clear()
    handle = nn.modules.module.register_module_full_backward_hook(
        lambda m, gi, go: calls.append(type(m).__name__)
    )
    try:
        _same(net, XS)
    finally:
        handle.remove()
    assert "Linear" in calls and "LIF" in calls


def test_a_hook_that_changes_spikes_reaches_the_next_layer():
    """The next Linear must not keep the hooked output as bytes (0.5 is not a spike)."""
    net = _net()
    net.layers[1].register_forward_hook(lambda m, i, o: (o[0] * 0.5, o[1]))
    _same(net, XS)


def test_lif_subclass_with_its_own_run():
    class Doubled(ts.LIF):
        def _run(self, xs, state):
            spikes, state = super()._run(xs, state)
            return spikes * 2, state

        def emits_spikes(self):
            return False

    _same(_net(second=Doubled(0.9)), XS)


def test_overwrite_input_is_refused_for_leaves_and_views_and_a_spent_input_raises():
    v0, beta, v_th = torch.zeros(3, 5), torch.tensor(0.9), torch.tensor(1.0)
    args = (v0, beta, v_th, "subtract", ts.surrogate.atan())
    leaf = (torch.rand(10, 3, 5) * 2).requires_grad_()
    kept = leaf.detach().clone()
    spikes, _ = lif_sequence(leaf, *args, membrane=False, overwrite_input=True)
    assert torch.equal(leaf.detach(), kept)  # refused: a leaf that requires grad
    base = leaf * 1.0
    view = base.view(10, 15).view(10, 3, 5)
    lif_sequence(view, *args, membrane=False, overwrite_input=True)
    assert torch.equal(base.detach(), kept)  # refused: a view
    spent = leaf * 1.0
    spikes, v = lif_sequence(spent, *args, membrane=False, overwrite_input=True)
    assert not torch.equal(spent.detach(), kept)  # now the membrane
    with pytest.raises(RuntimeError, match="overwrite_input=True was used after"):
        (spikes.sum() + spent.sum()).backward()


def test_folded_linear_on_bytes_sums_half_precision_gradients_in_float32(monkeypatch):
    monkeypatch.setattr(fl, "_ROWS", 7)  # 29 blocks
    torch.manual_seed(1)
    x = (torch.rand(200, 40) < 0.3).float()
    w = torch.randn(9, 40)
    gy = torch.randn(200, 9)
    exact = (gy.bfloat16().double().t() @ x.double()).float()  # gy as the layer sees it
    wb = w.bfloat16().requires_grad_()
    y = fl.folded_linear(x.bfloat16(), wb, spikes_as_bytes=True)
    (got,) = torch.autograd.grad(y, wb, gy.bfloat16())
    rel = ((got.float() - exact).abs().max() / exact.abs().max()).item()
    assert rel < 2**-8  # one bfloat16 rounding of the sum, not one per block

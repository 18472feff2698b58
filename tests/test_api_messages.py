"""Messages a newcomer meets: input without time, layers SpikingNet cannot run, loss shapes;
and recording spikes and membrane with gradients (``SpikingNet.trace(xs, grad=True)``)."""

import pytest
import torch
from torch import nn

import torchspike as ts


def conv_net() -> ts.SpikingNet:
    return ts.SpikingNet(
        nn.Conv2d(1, 2, 3, padding=1),
        ts.LIF(beta=0.9),
        nn.Flatten(),
        nn.Linear(2 * 6 * 6, 3),
        ts.LIF(beta=0.9),
    )


# ---------------------------------------------------------------- input rank against layer 0


@pytest.mark.parametrize("call", ["forward", "trace"])
def test_conv_net_names_a_batch_without_time(call):
    net = conv_net()
    with pytest.raises(ValueError) as info:
        getattr(net, call)(torch.rand(8, 1, 6, 6))  # [B, C, H, W]: would run as T=8, B=1
    msg = str(info.value)
    assert "xs must be time-first [T, B, C, H, W]" in msg
    assert "layer 0 (Conv2d)" in msg and "got shape (8, 1, 6, 6)" in msg
    assert "torchspike.encode.direct(x, steps)" in msg
    ys, _ = net(torch.rand(4, 8, 1, 6, 6))  # with time first it runs
    assert ys.shape == (4, 8, 3)


@pytest.mark.parametrize(
    "layers, shape, dims, where",
    [
        ([nn.Conv1d(2, 3, 3), ts.LIF(0.9)], (5, 2, 9), "[T, B, C, L]", "layer 0 (Conv1d)"),
        (
            [nn.Dropout(0.1), nn.MaxPool2d(2)],
            (5, 1, 6, 6),
            "[T, B, C, H, W]",
            "layer 1 (MaxPool2d)",
        ),
        ([nn.Conv3d(1, 1, 1)], (2, 1, 1, 4, 4, 4, 1), "[T, B, C, D, H, W]", "layer 0 (Conv3d)"),
        ([nn.Linear(4, 2), ts.LIF(0.9)], (5, 4), "[T, B, ..., features]", "layer 0 (Linear)"),
        ([nn.Sequential(nn.Flatten(), nn.Linear(4, 2))], (5, 4), "[T, B, ..., features]", "0"),
    ],
)
def test_input_rank_checked_against_the_first_layer_that_fixes_one(layers, shape, dims, where):
    with pytest.raises(ValueError) as info:
        ts.SpikingNet(*layers)(torch.rand(shape))
    msg = str(info.value)
    assert f"xs must be time-first {dims}" in msg and where in msg and str(shape) in msg


def test_rank_not_checked_where_no_layer_fixes_it():
    # a neuron first takes any [T, B, ...]; a batch-first [B, T, N] is not detectable by shape
    ys, _ = ts.SpikingNet(ts.LIF(0.9), nn.Linear(4, 2))(torch.rand(3, 2, 4))
    assert ys.shape == (3, 2, 2)


# ---------------------------------------------------------------- layers that return no tensor


def test_lstm_is_named_with_what_to_use_instead():
    with pytest.raises(TypeError) as info:
        ts.SpikingNet(nn.LSTM(4, 4))(torch.rand(3, 2, 4))
    msg = str(info.value)
    assert "layer 0 (LSTM) returned tuple, not a tensor" in msg
    assert "torchspike.RecurrentLIF" in msg
    assert isinstance(info.value.__cause__, AttributeError)  # the original error, kept


class ReturnsDict(nn.Module):
    def forward(self, x):
        return {"y": x}


class Broken(nn.Module):
    def forward(self, x):
        return x.no_such_method()


def test_any_layer_returning_a_non_tensor_is_named():
    net = ts.SpikingNet(nn.Linear(4, 4), ts.LIF(0.9), ReturnsDict())
    with pytest.raises(TypeError, match=r"layer 2 \(ReturnsDict\) returned dict, not a tensor"):
        net(torch.rand(3, 2, 4))
    with pytest.raises(TypeError, match=r"layer 2 \(ReturnsDict\) returned dict"):
        net.trace(torch.rand(3, 2, 4))


def test_an_error_inside_a_layer_is_not_renamed():
    with pytest.raises(AttributeError, match="no_such_method"):
        ts.SpikingNet(nn.Linear(4, 4), Broken())(torch.rand(3, 2, 4))


# ---------------------------------------------------------------- losses


def test_loss_reports_batch_sizes_not_time_times_batch():
    v, y = torch.rand(5, 8, 10), torch.randint(0, 10, (7,))
    with pytest.raises(ValueError) as info:
        ts.loss.ce_membrane_sum(v, y)
    msg = str(info.value)
    assert "target has 7 class indices" in msg and "batch size B = 8" in msg
    assert "(5, 8, 10)" in msg and "40" not in msg and "35" not in msg


@pytest.mark.parametrize("fn", [ts.loss.ce_membrane_sum, ts.loss.ce_count, ts.loss.mse_count])
def test_one_hot_target_gets_a_clear_message(fn):
    y = torch.randint(0, 10, (8,))
    for target in (nn.functional.one_hot(y, 10), nn.functional.one_hot(y, 10).float()):
        with pytest.raises(ValueError, match=r"target must be class indices \[B\].*argmax\(1\)"):
            fn(torch.rand(5, 8, 10), target)
    with pytest.raises(ValueError, match=r"target must be class indices \[B\].*float32"):
        fn(torch.rand(5, 8, 10), y.float())


@pytest.mark.parametrize("fn", [ts.loss.ce_membrane_sum, ts.loss.ce_count, ts.loss.mse_count])
def test_counts_instead_of_outputs_over_time(fn):
    with pytest.raises(ValueError) as info:
        fn(torch.rand(8, 10), torch.randint(0, 10, (8,)))  # [B, C] counts
    msg = str(info.value)
    assert "must be [T, B, C], got shape (8, 10)" in msg
    assert "sums over time itself" in msg


def test_first_spike_ce_shapes():
    times = torch.rand(8, 3)
    with pytest.raises(ValueError, match=r"times must be \[B, C\], got shape \(2, 8, 3\)"):
        ts.loss.first_spike_ce(times.expand(2, 8, 3), torch.zeros(8, dtype=torch.long), tau_syn=1)
    with pytest.raises(ValueError, match="batch size B = 8"):
        ts.loss.first_spike_ce(times, torch.zeros(5, dtype=torch.long), tau_syn=1.0)


def test_losses_still_match_their_formulas():
    torch.manual_seed(0)
    v, y = torch.randn(5, 8, 10), torch.randint(0, 10, (8,))
    expected = sum(nn.functional.cross_entropy(v[t], y) for t in range(5))
    torch.testing.assert_close(ts.loss.ce_membrane_sum(v, y), expected)
    s = (torch.rand(5, 8, 10) > 0.5).float()
    torch.testing.assert_close(ts.loss.ce_count(s, y), nn.functional.cross_entropy(s.sum(0), y))


# ---------------------------------------------------------------- trace with gradients


def mlp() -> ts.SpikingNet:
    torch.manual_seed(0)
    return ts.SpikingNet(
        nn.Linear(3, 6), ts.LIF(beta=0.8), nn.Linear(6, 2), ts.LIF(0.9, output="membrane")
    ).double()


def test_trace_without_grad_records_nothing_for_backward():
    net = mlp()
    ys, records = net.trace(torch.rand(7, 4, 3, dtype=torch.float64))
    assert not ys.requires_grad and not records["1"]["v"].requires_grad


def test_trace_with_grad_equals_forward_outputs_and_gradients():
    net, xs = mlp(), 2 * torch.rand(7, 4, 3, dtype=torch.float64)
    ys, records = net.trace(xs, grad=True)
    ref, _ = net(xs)
    torch.testing.assert_close(ys, ref, rtol=0, atol=1e-12)
    assert records["1"]["out"].requires_grad and records["1"]["v"].requires_grad
    params = list(net.parameters())
    g_trace = torch.autograd.grad((ys * ys.detach().sign()).sum(), params)
    g_ref = torch.autograd.grad((ref * ref.detach().sign()).sum(), params)
    for a, b in zip(g_trace, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_trace_gradient_of_hidden_spikes_and_membrane_against_the_recursion():
    """A loss on layer 1's membrane and spikes: its gradient equals autograd through the
    closed-form LIF recursion written out by hand (README: subtract reset, ATan surrogate)."""
    net, xs = mlp(), 2 * torch.rand(7, 4, 3, dtype=torch.float64)
    _, records = net.trace(xs, grad=True)
    w = torch.randn(7, 4, 6, dtype=torch.float64)
    loss = (records["1"]["v"] * w).sum() + 0.5 * records["1"]["out"].sum()
    lin, lif = net.layers[0], net.layers[1]
    grads = torch.autograd.grad(loss, [lin.weight, lin.bias])

    beta, v_th = float(torch.tensor(0.8)), 1.0  # the float32 value the layer stores
    u = torch.zeros(4, 6, dtype=torch.float64)
    ref_loss = 0.0
    for t in range(7):
        fired = (u > v_th).double()  # R[t] = H(U[t-1] - v_th), detached
        u = beta * u + nn.functional.linear(xs[t], lin.weight, lin.bias) - v_th * fired
        z = lif.spike_fn(u - v_th)
        ref_loss = ref_loss + (u * w[t]).sum() + 0.5 * z.sum()
    ref = torch.autograd.grad(ref_loss, [lin.weight, lin.bias])
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert float(grads[0].abs().sum()) > 0


# ---------------------------------------------------------------- one step without a state


@pytest.mark.parametrize(
    "neuron",
    [
        ts.LIF(0.9),
        ts.IF(rectify=True),
        ts.LI(0.9),
        ts.CubaLIF(),
        ts.ALIF(0.9, rho=0.9),
        ts.RecurrentLIF(5, beta=0.9),
    ],
    ids=lambda n: type(n).__name__,
)
def test_step_without_a_state_starts_from_the_initial_state(neuron):
    x = 3 * torch.rand(2, 5)
    y0, s0 = neuron.step(x, neuron.initial_state(x))
    for y, s in (neuron.step(x, None), neuron.step(x)):
        assert torch.equal(y, y0)
        assert all(torch.equal(a, b) for a, b in zip(s, s0, strict=True))


class Residual(nn.Module):
    """A module with a neuron inside its forward (traced step by step)."""

    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(4, 4), ts.LIF(beta=0.7)

    def forward(self, x):
        return x + self.lif(self.fc(x))[0]


def test_trace_with_grad_through_a_module_with_neurons_inside():
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Linear(3, 4), Residual(), nn.Linear(4, 2), ts.LI(0.9)).double()
    xs = 2 * torch.rand(6, 3, 3, dtype=torch.float64)
    ys, records = net.trace(xs, grad=True)
    ref, _ = net(xs)
    torch.testing.assert_close(ys, ref, rtol=0, atol=1e-12)
    assert set(records) == {"1.lif", "3"}
    params = list(net.parameters())
    g_trace = torch.autograd.grad(ys.square().sum(), params)
    g_ref = torch.autograd.grad(ref.square().sum(), params)
    for a, b in zip(g_trace, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    _, records = net.trace(xs, grad=True)  # a new graph: each is backpropagated once
    inner = torch.autograd.grad(records["1.lif"]["v"].sum(), net.layers[1].fc.weight)[0]
    assert float(inner.abs().sum()) > 0

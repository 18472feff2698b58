"""EventProp against its oracles: finite differences of the same loss, the CubaLIF recursion on
the grid, and the closed-form solution of the CubaLIF ODE between spikes."""

import math

import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike import eventprop as ep
from torchspike.data import load
from torchspike.eventprop import train as ep_train

TAU_MEM, TAU_SYN, DT = 20e-3, 5e-3, 1e-3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The loops here are over small tensors: extra threads only cost (badly on a busy host)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _c(tau_mem=TAU_MEM, tau_syn=TAU_SYN):
    return tau_syn / (tau_syn - tau_mem)


def _closed_form_v(t, times, weights, tau_mem=TAU_MEM, tau_syn=TAU_SYN):
    """V(t) of a CubaLIF neuron with no spike: sum of w c (e^(-s/tau_syn) - e^(-s/tau_mem))."""
    v = 0.0
    for s, w in zip(times, weights, strict=True):
        if s < t:
            d = t - s
            if math.isclose(tau_mem, tau_syn):
                v += w * d / tau_mem * math.exp(-d / tau_mem)
            else:
                v += w * _c(tau_mem, tau_syn) * (math.exp(-d / tau_syn) - math.exp(-d / tau_mem))
    return v


# --- kernel and forward -------------------------------------------------------------------


@pytest.mark.parametrize("tau_syn", [TAU_SYN, TAU_MEM])
def test_kernel_ends_in_cuba_coefficients_and_has_exact_derivatives(tau_syn):
    kernel = ep.Kernel(TAU_MEM, tau_syn, DT)
    alpha, beta, kappa = ts.neurons.cuba_coefficients(TAU_MEM, tau_syn, DT)
    a, k, da, dk = kernel(torch.tensor([DT, 0.0, 0.37e-3], dtype=torch.float64))
    assert a[0].item() == pytest.approx(alpha, rel=1e-12)
    assert k[0].item() == pytest.approx(kappa, rel=1e-12)
    assert (a[1].item(), k[1].item()) == (1.0, 0.0)
    assert k[2].item() == pytest.approx(_closed_form_v(0.37e-3, [0.0], [1.0], TAU_MEM, tau_syn))
    eps = 1e-9
    delta = torch.tensor([0.37e-3], dtype=torch.float64)
    hi, lo = kernel(delta + eps), kernel(delta - eps)
    assert da.tolist()[2] == pytest.approx(((hi[0] - lo[0]) / (2 * eps)).item(), rel=1e-6)
    assert dk.tolist()[2] == pytest.approx(((hi[1] - lo[1]) / (2 * eps)).item(), rel=1e-6)


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # CubaLIF keeps its coefficients in the default dtype
    yield
    torch.set_default_dtype(old)


def test_forward_on_grid_equals_cuba_lif(float64):
    torch.manual_seed(0)
    batch, n_in, n, steps = 4, 6, 5, 30
    step = torch.randint(0, 20, (batch, n_in)).double()
    spikes = ep.from_times(step * DT, steps=steps, dt=DT)
    layer = ep.LIFLayer(n_in, n, init_mean=1.5, init_std=1.0).double()
    out = layer(spikes)
    dense = torch.zeros(steps, batch, n_in, dtype=torch.float64)
    dense[step.long(), torch.arange(batch)[:, None], torch.arange(n_in)] = 1.0
    neuron = ts.CubaLIF(TAU_MEM, TAU_SYN, DT).double()
    ref, _ = neuron(dense @ layer.weight.detach().t())
    got = torch.zeros_like(ref)
    got[out.step, out.batch, out.unit] = 1.0
    assert len(out.times) > 10
    assert torch.equal(got, ref)
    readout = ep.LIReadout(n_in, n, readout="trace").double()
    trace = readout(spikes).detach()
    quiet = ts.CubaLIF(TAU_MEM, TAU_SYN, DT, v_th=1e9).double()
    _, records = ts.SpikingNet(quiet).trace(dense @ readout.weight.detach().t())
    torch.testing.assert_close(trace, records["0"]["v"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tau_syn", [TAU_SYN, TAU_MEM])
def test_forward_equals_closed_form_between_spikes(tau_syn):
    times = [0.3e-3, 2.7e-3, 5.05e-3, 11.9e-3]
    weights = [2.0, -1.0, 3.0, 4.0]
    spikes = ep.from_times(torch.tensor([times], dtype=torch.float64), steps=25, dt=DT)
    w = torch.tensor([weights], dtype=torch.float64)
    li = ep.LIReadout(4, 1, readout="trace", tau_syn=tau_syn).double()
    lif = ep.LIFLayer(4, 1, tau_syn=tau_syn, v_th=0.2).double()
    with torch.no_grad():
        li.weight.copy_(w)
        lif.weight.copy_(w)
        trace = li(spikes)[:, 0, 0]
        out = lif(spikes)
    expected = [_closed_form_v((k + 1) * DT, times, weights, TAU_MEM, tau_syn) for k in range(25)]
    assert trace.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-14)
    # the first spike lies on the line between the closed-form voltages at the grid points
    k = next(k for k, v in enumerate(expected) if v > 0.2)
    v0 = expected[k - 1] if k else 0.0
    t_star = (k + (0.2 - v0) / (expected[k] - v0)) * DT
    assert out.times[0].item() == pytest.approx(t_star, rel=1e-12)
    assert out.step[0].item() == k


# --- gradients against finite differences -------------------------------------------------


def _net(head: str, recurrent: bool, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = [ep.LIFLayer(7, 6, init_mean=2.0, init_std=1.0)]
    layers.append(ep.LIFLayer(6, 5, recurrent=recurrent, init_mean=1.5, init_std=1.0, rec_std=0.8))
    if head == "ttfs":
        layers.append(ep.LIFLayer(5, 3, init_mean=2.0, init_std=1.0))
    else:
        layers.append(ep.LIReadout(5, 3, readout=head, init_mean=0.5, init_std=1.0))
    return nn.Sequential(*layers).double()


def _run(model, times, target):
    """Loss and the discrete pattern it is smooth on: every spike's (layer, step, sample, unit)
    and, for a max readout, the step of each maximum."""
    x = ep.from_times(times, steps=30, dt=DT)
    pattern = []
    for layer in model:
        if isinstance(layer, ep.LIReadout) and layer.readout == "max":
            trace = ep.li_readout(x, layer.weight, layer.kernel, "trace")
            pattern.append(trace.argmax(0).tolist())
        x = layer(x)
        if isinstance(x, ep.Spikes):
            pattern.append((x.step.tolist(), x.batch.tolist(), x.unit.tolist()))
    if isinstance(x, ep.Spikes):
        return ep.first_spike_loss(
            x, target, tau_syn=TAU_SYN, xi=0.5, alpha=0.01, beta=2.0
        ), pattern
    if x.dim() == 3:  # trace: any differentiable function of the voltages
        return (x**2).mean() + x[-1].sum(), pattern
    return ep.voltage_ce(x, target), pattern


def _check_gradients(model, times, target, per_tensor: int = 6):
    times = times.clone().requires_grad_(True)
    loss, pattern = _run(model, times, target)
    loss.backward()
    params = [*model.parameters(), times]
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for p in params:
        eps = 1e-7 if p is times else 1e-5
        picks = torch.randperm(p.numel(), generator=gen)[:per_tensor].tolist()
        for idx in picks:
            flat = p.detach().view(-1)
            old = flat[idx].item()
            values = []
            for step in (-2, -1, 1, 2):
                flat[idx] = old + step * eps
                with torch.no_grad():
                    value, pat = _run(model, times, target)
                values.append(value.item() if pat == pattern else None)
            flat[idx] = old
            if None in values:
                continue  # a spike appears, disappears or changes step within +-2 eps
            fd = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * eps)
            grad = p.grad.view(-1)[idx].item()
            roundoff = 100 * torch.finfo(torch.float64).eps * max(1.0, abs(loss.item())) / eps
            assert abs(grad - fd) <= 1e-4 * max(abs(fd), abs(grad)) + roundoff, (p.shape, idx)
            checked += 1
    assert checked >= len(params) * per_tensor * 0.8
    return pattern


@pytest.mark.parametrize("head", ["ttfs", "max", "sum", "sum_exp", "trace"])
def test_gradients_equal_finite_differences(head):
    """Three layers, the middle one recurrent; every loss; weights and input times."""
    torch.manual_seed(1)
    times = torch.rand(3, 7, dtype=torch.float64) * 18e-3
    model = _net(head, recurrent=True)
    pattern = _check_gradients(model, times, torch.tensor([0, 1, 2]))
    spiking = [p for p in pattern if isinstance(p, tuple)]
    assert all(len(p[0]) >= 10 for p in spiking[:2])  # the hidden layers are active


def test_feed_forward_gradients_equal_finite_differences():
    torch.manual_seed(2)
    times = torch.rand(3, 7, dtype=torch.float64) * 18e-3
    model = _net("max", recurrent=False, seed=2)
    _check_gradients(model, times, torch.tensor([2, 0, 1]))
    single = nn.Sequential(ep.LIFLayer(7, 3, init_mean=1.5, init_std=1.0)).double()
    _check_gradients(single, times, torch.tensor([2, 0, 1]))


def test_recurrent_gradients_with_several_spikes_per_step_and_neuron():
    torch.manual_seed(3)
    model = nn.Sequential(
        ep.LIFLayer(4, 6, recurrent=True, init_mean=3.0, init_std=1.0, rec_std=1.5),
        ep.LIReadout(6, 2, readout="sum"),
    ).double()
    times = torch.rand(2, 4, dtype=torch.float64) * 10e-3
    pattern = _check_gradients(model, times, torch.tensor([0, 1]), per_tensor=8)
    steps, batch, unit = pattern[0]
    per_neuron = torch.bincount(torch.tensor(batch) * 6 + torch.tensor(unit))
    assert per_neuron.max() >= 3


def test_first_spike_times_take_the_first_spike_and_the_window_end_when_silent():
    times = torch.tensor([0.5e-3, 3.2e-3, 7.5e-3], dtype=torch.float64, requires_grad=True)
    spikes = ep.from_events(
        times,
        torch.tensor([0, 0, 1]),
        torch.tensor([1, 1, 0]),
        batch_size=2,
        units=2,
        steps=10,
        dt=DT,
    )
    first = ep.first_spike_times(spikes)
    assert first.tolist() == [[10e-3, 0.5e-3], [7.5e-3, 10e-3]]
    first.sum().backward()
    assert times.grad.tolist() == [1.0, 0.0, 1.0]


# --- memory -------------------------------------------------------------------------------


def _saved_numel(steps: int) -> int:
    torch.manual_seed(0)
    layer = ep.LIFLayer(20, 30, recurrent=True, init_mean=0.5, init_std=0.3)
    spikes = ep.from_times(torch.rand(8, 20) * 10e-3, steps=steps, dt=DT)
    out = layer(spikes)
    return sum(t.numel() for t in out.times.grad_fn.saved_tensors), len(out.times)


def test_backward_keeps_only_per_spike_state_not_the_time_history():
    short, n_short = _saved_numel(100)
    long, n_long = _saved_numel(2000)
    assert n_short == n_long > 0  # activity dies out well before the window ends
    assert short == long


# --- the training entry point -------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "init"), [("ttfs", [(0.6, 0.3), (0.5, 0.3)]), ("sum", [(0.6, 0.3), (0.0, 0.3)])]
)
def test_fit_learns_digits_and_round_trips_state_dict(loss, init):
    x, y = load("digits", "train")
    x, y = x[:300], y[:300]
    config = {
        "encoding": "latency",
        "hidden": 20,
        "loss": loss,
        "epochs": 3,
        "batch_size": 30,
        "lr": 3e-2,
        "init": init,
        "keep_best": True,
    }
    model, history = ep_train.fit(config, (x, y), (x, y), log=None)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    best = max(h["validation_accuracy"] for h in history)
    assert best > 0.5
    clone = ep_train.build_model(config, 64, 10)
    clone.load_state_dict(model.state_dict())
    assert ep_train.evaluate(clone, x, y, config) == pytest.approx(best, abs=1e-6)


def test_rescue_silent_raises_the_weights_of_silent_outputs():
    x = torch.rand(8, 64)
    config = {
        "hidden": 0,
        "loss": "ttfs",
        "epochs": 1,
        "batch_size": 8,
        "lr": 1e-9,
        "init": [(0.0, 0.0)],
        "rescue_silent": 0.05,
    }
    model, _ = ep_train.fit(config, (x, torch.arange(8) % 2), log=None, n_classes=2)
    torch.testing.assert_close(model[0].weight, torch.full((2, 64), 0.05), atol=1e-6, rtol=0)


def test_silent_outputs_give_no_gradient_and_fail_loudly():
    """Sample 1 has no input spike, so its outputs stay silent; when every sample is silent the
    first-spike loss leaves the weights without gradient, and ``check_outputs_fired`` says so."""
    layer = ep.LIFLayer(4, 3, init_mean=2.0, init_std=0.0)
    times = torch.tensor([[1e-3] * 4, [math.inf] * 4])
    out = layer(ep.from_times(times, steps=20, dt=DT))
    assert ep.silent_samples(out).tolist() == [False, True]
    first = ep.first_spike_times(out)
    assert ep.silent_samples(first, out.duration).tolist() == [False, True]
    with pytest.raises(ValueError, match="needs duration"):
        ep.silent_samples(first)

    out = layer(ep.from_times(times[1:], steps=20, dt=DT))
    ep.first_spike_loss(out, torch.tensor([0]), tau_syn=TAU_SYN).backward()
    assert ep.silent_samples(out).all() and not layer.weight.grad.any()

    ep.check_outputs_fired(1, 2, epoch=1)
    ep.check_outputs_fired(0, 0, epoch=1)
    message = (
        "every output neuron stayed silent for every sample in epoch 3, so the first-spike loss "
        "has no gradient; raise the initial weights \\(init\\), add bias_spike, or enable "
        "rescue_silent"
    )
    with pytest.raises(ep.SilentOutputError, match=message):
        ep.check_outputs_fired(2, 2, epoch=3)


def test_config_accepts_cli_spellings():
    config = ep_train.Config.from_dict({"loss": "sum_exp", "encoding": "binary_time", "hidden": 0})
    assert (config.loss, config.encoding, config.hidden) == ("sum-exp", "binary-time", ())


def test_build_model_shapes():
    model = ep_train.build_model(
        {"hidden": [8, 4], "recurrent": True, "loss": "sum", "encoding": "binary-time"}, 10, 3
    )
    assert [type(m).__name__ for m in model] == ["LIFLayer", "LIFLayer", "LIReadout"]
    assert model[1].w_rec.shape == (4, 4) and model[2].readout == "sum"
    assert isinstance(ep_train.build_model({"hidden": 0, "loss": "ttfs"}, 10, 3)[0], ep.LIFLayer)


# --- errors -------------------------------------------------------------------------------


def test_bad_input_raises_value_error_naming_it():
    layer = ep.LIFLayer(3, 2)
    with pytest.raises(ValueError, match="times must be a \\[B, N\\]"):
        ep.from_times(torch.zeros(3), steps=5, dt=DT)
    with pytest.raises(ValueError, match="times must be >= 0"):
        ep.from_times(-torch.ones(1, 3), steps=5, dt=DT)
    with pytest.raises(ValueError, match="steps"):
        ep.from_times(torch.zeros(1, 3), steps=0, dt=DT)
    with pytest.raises(ValueError, match="unit indices must lie in \\[0, 2\\)"):
        ep.from_events(
            torch.zeros(2),
            torch.zeros(2, dtype=torch.long),
            torch.tensor([0, 2]),
            batch_size=1,
            units=2,
            steps=5,
            dt=DT,
        )
    with pytest.raises(ValueError, match="in_features=3"):
        layer(ep.from_times(torch.zeros(1, 4), steps=5, dt=DT))
    with pytest.raises(ValueError, match="dt"):
        layer(ep.from_times(torch.zeros(1, 3), steps=5, dt=0.5e-3))
    with pytest.raises(ValueError, match="readout"):
        ep.LIReadout(3, 2, readout="mean")
    with pytest.raises(ValueError, match="tau_syn"):
        ep.LIFLayer(3, 2, tau_syn=-1.0)
    with pytest.raises(ValueError, match="unknown eventprop options \\['hiden'\\]"):
        ep_train.Config.from_dict({"hiden": 3})
    with pytest.raises(ValueError, match="loss"):
        ep_train.Config.from_dict({"loss": "mse"})
    with pytest.raises(ValueError, match="init"):
        ep_train.Config.from_dict({"hidden": 5, "init": [(1.0, 0.5)]})

"""Neuron maths against hand-computed traces of the recursions in the docstrings."""

import math

import pytest
import torch

import torchspike as ts

# x = [0.6, 0.6, 0.6, 0.0, 1.2], beta = 0.9, v_th = 1 (snnTorch Leaky recursion, by hand)
X5 = [0.6, 0.6, 0.6, 0.0, 1.2]


def _seq(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype).reshape(-1, 1, 1)


def _flat(t):
    return [round(v, 6) for v in t.flatten().tolist()]  # parameters are stored as float32


def _membrane(neuron, xs):
    _, records = ts.SpikingNet(neuron).trace(xs)
    return records["0"]["v"]


def test_lif_subtract_hand_trace():
    lif = ts.LIF(beta=0.9).double()
    spikes, state = lif(_seq(X5))
    # U: 0.6, 1.14 (fire), 0.9*1.14+0.6-1 = 0.626, 0.5634, 0.50706+1.2 = 1.70706 (fire)
    assert _flat(spikes) == [0, 1, 0, 0, 1]
    assert _flat(_membrane(lif, _seq(X5))) == [0.6, 1.14, 0.626, 0.5634, 1.70706]
    assert _flat(state.v) == [1.70706]


def test_lif_zero_reset_hand_trace():
    lif = ts.LIF(beta=0.9, reset="zero").double()
    spikes, _ = lif(_seq(X5))
    # U: 0.6, 1.14 (fire), 0.9 * 1.14 * 0 + 0.6 = 0.6, 0.54, 0.486 + 1.2 = 1.686 (fire):
    # snnTorch 1.0 zeroes the old membrane and keeps the new input
    assert _flat(spikes) == [0, 1, 0, 0, 1]
    assert _flat(_membrane(lif, _seq(X5))) == [0.6, 1.14, 0.6, 0.54, 1.686]


def test_lif_no_reset_hand_trace():
    lif = ts.LIF(beta=0.5, reset="none").double()
    spikes, _ = lif(_seq([1.5, 0.0, 0.0]))
    assert _flat(_membrane(lif, _seq([1.5, 0.0, 0.0]))) == [1.5, 0.75, 0.375]
    assert _flat(spikes) == [1, 0, 0]


def test_threshold_is_strict():
    spikes, _ = ts.LIF(beta=1.0, v_th=0.5)(_seq([0.5, 0.0, 1e-3], torch.float32))
    assert _flat(spikes) == [0, 0, 1]  # U = 0.5 is not > 0.5; 0.501 is


def _snntorch_input_grad(xs, w, beta, v_th, reset, alpha=2.0):
    """dL/dx for L = sum(w * z), by the snnTorch recursion written out with Python floats."""
    u, fired_prev, us, resets = 0.0, 0.0, [], []
    for x in xs:
        if reset == "subtract":
            u = beta * u + x - fired_prev * v_th
        else:
            u = beta * u * (1 - fired_prev) + x
        resets.append(fired_prev)
        us.append(u)
        fired_prev = float(u > v_th)
    grads, g_next = [0.0] * len(xs), 0.0
    for t in reversed(range(len(xs))):
        sg = alpha / 2 / (1 + (math.pi / 2 * alpha * (us[t] - v_th)) ** 2)
        g_u = w[t] * sg + g_next
        grads[t] = g_u
        g_next = g_u * beta * (1.0 if reset == "subtract" else 1 - resets[t])
    return grads


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("v_th", [1.0, 0.5])
def test_lif_input_gradient_matches_snntorch_recursion(reset, v_th):
    xs = [0.6, 0.7, -0.2, 0.9, 0.4, 1.3, 0.1, 0.8]
    w = [0.3, -1.1, 0.5, 2.0, -0.4, 0.7, 1.5, -0.9]
    x = _seq(xs).requires_grad_()
    spikes, _ = ts.LIF(beta=0.8, v_th=v_th, reset=reset).double()(x)
    (spikes.flatten() * torch.tensor(w, dtype=torch.float64)).sum().backward()
    want = _snntorch_input_grad(xs, w, 0.8, v_th, reset)
    torch.testing.assert_close(
        x.grad.flatten(), torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=1e-7
    )


def test_lif_from_tau_and_dt():
    lif = ts.LIF(tau=20e-3, dt=1e-3)
    assert lif.beta.item() == pytest.approx(math.exp(-1 / 20))


def test_if_equals_lif_with_beta_one():
    xs = torch.rand(12, 3, 4)
    a, _ = ts.IF(v_th=0.7)(xs)
    b, _ = ts.LIF(beta=1.0, v_th=0.7)(xs)
    assert torch.equal(a, b)


def test_if_rectify_hand_trace():
    neuron = ts.IF(v_th=1.0, rectify=True).double()
    xs = _seq([-0.5, 0.6, 0.6, 0.3, -2.0, 0.4])
    spikes, _ = neuron(xs)
    # U: max(0,-0.5)=0, 0.6, 1.2 (fire), reset: 0 + 0.3 = 0.3, max(0, 0.3-2)=0, 0.4
    assert _flat(_membrane(neuron, xs)) == [0.0, 0.6, 1.2, 0.3, 0.0, 0.4]
    assert _flat(spikes) == [0, 0, 1, 0, 0, 0]


def test_li_returns_membrane():
    v, state = ts.LI(beta=0.5).double()(_seq([1.0, 0.0, 2.0]))
    assert _flat(v) == [1.0, 0.5, 2.25]
    assert _flat(state.v) == [2.25]


def _cuba_ode(weights, times, t_end, tau_mem, tau_syn):
    """Closed form of tau_syn di/dt = -i (jumps w at times), tau_mem dv/dt = -v + i, no spikes."""
    v = 0.0
    for w, s in zip(weights, times, strict=True):
        if s <= t_end:
            d = t_end - s
            v += (
                w
                * tau_syn
                / (tau_syn - tau_mem)
                * (math.exp(-d / tau_syn) - math.exp(-d / tau_mem))
            )
    return v


def test_cuba_lif_matches_closed_form_between_spikes():
    tau_mem, tau_syn, dt = 20e-3, 5e-3, 1e-3
    neuron = ts.CubaLIF(tau_mem, tau_syn, dt, v_th=100.0).double()  # high threshold: no spikes
    xs = torch.zeros(30, 1, 1, dtype=torch.float64)
    xs[0], xs[4], xs[11] = 2.0, -0.5, 1.25  # input spikes arrive at the start of steps 0, 4, 11
    v = _membrane(neuron, xs).flatten()
    for t in range(30):
        want = _cuba_ode([2.0, -0.5, 1.25], [0.0, 4 * dt, 11 * dt], (t + 1) * dt, tau_mem, tau_syn)
        assert v[t].item() == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_cuba_lif_resets_to_zero():
    neuron = ts.CubaLIF(20e-3, 5e-3, 1e-3, v_th=0.05).double()
    xs = torch.zeros(6, 1, 1, dtype=torch.float64)
    xs[0] = 2.0
    spikes, _ = neuron(xs)
    _, records = ts.SpikingNet(neuron).trace(xs)
    v, i = records["0"]["v"].flatten(), records["0"]["i"].flatten()
    first = int(spikes.flatten().nonzero()[0])
    # after the spike the membrane restarts from 0 and is driven by the current only
    assert v[first + 1].item() == pytest.approx(neuron.kappa.item() * i[first].item())


def test_alif_threshold_jumps_and_decays():
    neuron = ts.ALIF(beta=1.0, v_th=1.0, jump=0.5, rho=0.5).double()
    xs = _seq([1.5, 0.0, 0.0, 1.0])
    spikes, _ = neuron(xs)
    _, records = ts.SpikingNet(neuron).trace(xs)
    # U: 1.5 (fire at th 1); a: 0 -> 0.5 -> 0.25 -> 0.125; U: 1.5-1=0.5, 0.5, 1.5 > 1.125 fires
    assert _flat(records["0"]["a"]) == [0.0, 0.5, 0.25, 0.125]
    assert _flat(records["0"]["v"]) == [1.5, 0.5, 0.5, 1.5]
    assert _flat(spikes) == [1, 0, 0, 1]


def test_recurrent_lif_equals_manual_loop():
    torch.manual_seed(0)
    layer = ts.RecurrentLIF(4, beta=0.9).double()
    xs = torch.rand(10, 2, 4, dtype=torch.float64)
    spikes, _ = layer(xs)
    v, z, outs = torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64), []
    for x in xs:
        fired = (v > 1).double()
        v = 0.9 * v + x + z @ layer.recurrent.weight.T - fired
        z = (v > 1).double()
        outs.append(z)
    assert torch.equal(spikes, torch.stack(outs))
    assert spikes.sum() > 0


@pytest.mark.parametrize(
    "neuron",
    [
        ts.LIF(beta=0.9),
        ts.IF(rectify=True),
        ts.CubaLIF(),
        ts.ALIF(beta=0.9, rho=0.9),
        ts.LI(beta=0.8),
        ts.RecurrentLIF(5, beta=0.9),
    ],
    ids=type,
)
def test_continuing_a_sequence_equals_one_call(neuron):
    xs = torch.rand(20, 3, 5) * 1.5
    whole, state_whole = neuron(xs)
    first, state = neuron(xs[:7])
    second, state = neuron(xs[7:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    for a, b in zip(state, state_whole, strict=True):
        torch.testing.assert_close(a, b)
    smaller, _ = neuron(xs[:, :2])  # the batch size may change between calls
    torch.testing.assert_close(smaller, whole[:, :2])


def test_per_neuron_parameters_and_trailing_shapes():
    lif = ts.LIF(beta=torch.tensor([0.5, 0.9, 1.0]), v_th=torch.tensor([1.0, 2.0, 0.5]))
    spikes, _ = lif(torch.ones(4, 2, 3))
    assert spikes[:, 0].tolist() == [[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 0, 1]]
    spikes, _ = ts.LIF(beta=0.9)(torch.ones(3, 2, 4, 5, 6))  # any trailing shape
    assert spikes.shape == (3, 2, 4, 5, 6)


def test_state_dict_round_trip_and_to():
    a = ts.LIF(beta=torch.full((3,), 0.7), learn_beta=True, learn_v_th=True)
    with torch.no_grad():
        a.beta.mul_(0.5)
    b = ts.LIF(beta=torch.full((3,), 0.1), learn_beta=True, learn_v_th=True)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.beta, a.beta)
    assert {n for n, _ in a.named_parameters()} == {"beta", "v_th"}
    assert ts.CubaLIF().double().alpha.dtype == torch.float64
    assert set(ts.CubaLIF().state_dict()) == {"alpha", "beta", "kappa", "v_th"}


def test_learned_parameters_receive_gradients():
    lif = ts.LIF(beta=0.9, learn_beta=True, learn_v_th=True)
    spikes, _ = lif(torch.rand(10, 4, 3) * 2)
    spikes.sum().backward()
    assert lif.beta.grad is not None and lif.beta.grad.abs() > 0
    assert lif.v_th.grad is not None and lif.v_th.grad.abs() > 0


def _snntorch_reference():
    import json
    from pathlib import Path

    path = Path(__file__).parent / "data" / "snntorch_leaky_reference.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("index", range(4))
def test_lif_reproduces_recorded_snntorch_leaky(index):
    """Spikes, membrane and input gradient recorded from snnTorch 1.0 itself (no dependency)."""
    ref = _snntorch_reference()
    entry = ref["entries"][index]
    xs = torch.tensor(ref["input"], dtype=torch.float32).requires_grad_()
    w = torch.tensor(ref["loss_weights"], dtype=torch.float32)
    lif = ts.LIF(beta=entry["settings"]["beta"], v_th=entry["threshold"], reset=entry["reset"])
    spikes, _ = lif(xs)
    (spikes * w).sum().backward()
    assert spikes.tolist() == entry["spikes"]
    assert spikes.sum() > 2
    torch.testing.assert_close(_membrane(lif, xs.detach()), torch.tensor(entry["mem"]))
    torch.testing.assert_close(xs.grad, torch.tensor(entry["grad_input"]))

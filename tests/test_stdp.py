"""STDP: traces, rules against hand-computed and brute-force pairings, the Diehl & Cook network,
label assignment and the read-outs, and the training entry point on the 8x8 digits."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from torchspike.stdp import (
    STDP,
    Assignment,
    DiehlCook,
    DiehlCookParams,
    STDPConfig,
    assign,
    correlate,
    decay,
    evaluate,
    fit,
    load_state,
    poisson_events,
    save_state,
    spike_events,
    trace_step,
    vote_all,
    vote_proportion,
)
from torchspike.stdp.loop import present_all


def train_of(times: list[int], steps: int) -> torch.Tensor:
    s = torch.zeros(steps)
    s[times] = 1.0
    return s


# ---------------------------------------------------------------- traces


@pytest.mark.parametrize("mode", ["set", "add"])
def test_trace_matches_closed_form(mode: str) -> None:
    d = decay(20.0, 1.0)
    spikes = train_of([2, 5, 6], 12)
    x, xs = torch.zeros(()), []
    for s in spikes:
        x = trace_step(x, s, d, mode)
        xs.append(x.item())
    for t, value in enumerate(xs):
        past = [tk for tk in (2, 5, 6) if tk <= t]
        if mode == "add":
            expected = sum(d ** (t - tk) for tk in past)
        else:
            expected = d ** (t - past[-1]) if past else 0.0
        assert value == pytest.approx(expected, rel=1e-6)


def test_decay_rejects_bad_tau() -> None:
    with pytest.raises(ValueError, match="tau"):
        decay(0.0, 1.0)


# ---------------------------------------------------------------- rules


def single_synapse(w: float = 0.5, **kwargs) -> tuple[nn.Linear, STDP]:
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(w)
    return layer, STDP(layer, **kwargs)


def test_pair_rule_by_hand() -> None:
    """pre at 2, post at 5 and 8, pre at 10; tau 10, dt 1, nearest-spike traces."""
    nu_pre, nu_post, steps = 1e-3, 1e-2, 12
    layer, rule = single_synapse(nu_pre=nu_pre, nu_post=nu_post, tau_pre=10.0, tau_post=10.0)
    pre, post = train_of([2, 10], steps), train_of([5, 8], steps)
    dw, _ = rule.run(pre.view(steps, 1, 1), post.view(steps, 1, 1))
    ltp = nu_post * (math.exp(-3 / 10) + math.exp(-6 / 10))  # x_pre at the two post spikes
    ltd = nu_pre * math.exp(-2 / 10)  # y_post (last post at 8) at the pre spike at 10
    assert dw.item() == pytest.approx(ltp - ltd, rel=1e-5)
    assert layer.weight.grad.item() == pytest.approx(-(ltp - ltd), rel=1e-5)


def test_diehl_cook_triplet_term_by_hand() -> None:
    """With tau_post2 the LTP of a post spike is scaled by the slow trace before that spike."""
    steps = 12
    _, rule = single_synapse(nu_pre=0.0, nu_post=1.0, tau_pre=20.0, tau_post2=40.0)
    dw, _ = rule.run(
        train_of([1, 6], steps).view(steps, 1, 1), train_of([4, 9], steps).view(steps, 1, 1)
    )
    # first post (t=4): post2 is 0 -> nothing; second (t=9): x_pre = e^{-3/20}, post2 = e^{-5/40}
    assert dw.item() == pytest.approx(math.exp(-3 / 20) * math.exp(-5 / 40), rel=1e-5)


def test_power_law_rule_by_hand() -> None:
    """x_tar and the all-to-all trace: pre at 1 and 3, post at 4 and 7 (tau 10, dt 1); at each
    post spike ``dw = nu_post * (x_pre - x_tar) * (w_max - w)^mu``, ``w`` updated in between."""
    steps, nu_post, mu, x_tar = 9, 0.1, 0.2, 0.4
    _, rule = single_synapse(
        w=0.5,
        nu_pre=0.0,
        nu_post=nu_post,
        tau_pre=10.0,
        bound="soft",
        mu=mu,
        x_tar=x_tar,
        trace="add",
    )
    pre, post = train_of([1, 3], steps), train_of([4, 7], steps)
    dw, _ = rule.run(pre.view(steps, 1, 1), post.view(steps, 1, 1))
    # run() sums each step's dw without applying it, so both spikes meet w = 0.5
    x4 = math.exp(-3 / 10) + math.exp(-1 / 10)
    x7 = math.exp(-6 / 10) + math.exp(-4 / 10)
    expected = nu_post * ((x4 - x_tar) + (x7 - x_tar)) * 0.5**mu
    assert dw.item() == pytest.approx(expected, rel=1e-5)
    _, alone = single_synapse(w=0.5, nu_pre=0.0, nu_post=1.0, tau_pre=10.0, x_tar=x_tar)
    late, _ = alone.run(train_of([0], 30).view(30, 1, 1), train_of([29], 30).view(30, 1, 1))
    assert late.item() == pytest.approx(math.exp(-29 / 10) - x_tar, rel=1e-5)  # depresses


def test_simultaneous_spikes_count_as_pre_after_post() -> None:
    _, rule = single_synapse(nu_pre=1.0, nu_post=1.0)
    one = torch.ones(1, 1, 1)
    dw, _ = rule.run(one, one)
    assert dw.item() == pytest.approx(-1.0)


def brute_force(pre, post, w, *, nu_pre, nu_post, tau_pre, tau_post, tau_post2, mode):
    """dw from explicit spike-pair loops (the rule's definition, no traces)."""
    steps, n_in = pre.shape
    n_out = post.shape[1]
    dw = torch.zeros(n_out, n_in, dtype=torch.float64)

    def trace(train, t, tau, inclusive):
        times = [k for k in range(steps) if train[k] and (k <= t if inclusive else k < t)]
        if not times:
            return 0.0
        if mode == "set":
            return math.exp(-(t - times[-1]) / tau)
        return sum(math.exp(-(t - k) / tau) for k in times)

    for j in range(n_out):
        for i in range(n_in):
            for t in range(steps):
                if post[t, j]:
                    slow = trace(post[:, j], t, tau_post2, False) if tau_post2 else 1.0
                    dw[j, i] += nu_post * trace(pre[:, i], t, tau_pre, False) * slow
                if pre[t, i]:
                    dw[j, i] -= nu_pre * trace(post[:, j], t, tau_post, True)
    return dw


@pytest.mark.parametrize("mode,tau_post2", [("set", 40.0), ("add", None)])
def test_rule_matches_brute_force_pairs(mode: str, tau_post2: float | None) -> None:
    g = torch.Generator().manual_seed(1)
    steps, n_in, n_out = 30, 3, 2
    pre = (torch.rand(steps, n_in, generator=g) < 0.2).double()
    post = (torch.rand(steps, n_out, generator=g) < 0.2).double()
    kw = dict(nu_pre=1e-3, nu_post=1e-2, tau_pre=7.0, tau_post=5.0, tau_post2=tau_post2)
    layer = nn.Linear(n_in, n_out, bias=False).double()
    rule = STDP(layer, **kw, trace=mode)
    dw, _ = rule.run(pre.unsqueeze(1), post.unsqueeze(1))
    expected = brute_force(pre, post, layer.weight, **kw, mode=mode)
    torch.testing.assert_close(dw, expected)


def test_soft_bounds_scale_ltp_and_ltd() -> None:
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(20, 1, 4, generator=g) < 0.3).float()
    post = (torch.rand(20, 1, 3, generator=g) < 0.3).float()
    w = torch.rand(3, 4, generator=g)
    parts = []
    for nu_pre, nu_post in ((0.0, 1.0), (1.0, 0.0)):
        layer = nn.Linear(4, 3, bias=False)
        layer.weight.data.copy_(w)
        hard, _ = STDP(layer, nu_pre=nu_pre, nu_post=nu_post).run(pre, post)
        soft, _ = STDP(layer, nu_pre=nu_pre, nu_post=nu_post, bound="soft", mu=0.5).run(pre, post)
        parts.append((hard, soft))
    (ltp_hard, ltp_soft), (ltd_hard, ltd_soft) = parts
    torch.testing.assert_close(ltp_soft, ltp_hard * (1 - w) ** 0.5)
    torch.testing.assert_close(ltd_soft, ltd_hard * w**0.5)


def test_grad_drives_an_optimiser_and_clamp() -> None:
    layer, rule = single_synapse(w=0.999, nu_pre=0.0, nu_post=1.0, tau_pre=10.0)
    pre, post = train_of([0], 3).view(3, 1, 1), train_of([2], 3).view(3, 1, 1)
    dw, _ = rule.run(pre, post)
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    opt.step()
    assert layer.weight.item() == pytest.approx(0.999 + dw.item())
    rule.clamp_()
    assert layer.weight.item() == 1.0


@pytest.mark.parametrize(
    "layer,pre_shape",
    [
        (nn.Linear(5, 3), (4, 5)),
        (nn.Linear(5, 3), (2, 4, 5)),
        (nn.Conv2d(2, 3, 3, stride=2, padding=1), (4, 2, 7, 7)),
        (nn.Conv2d(2, 3, (2, 3), dilation=2), (2, 2, 8, 9)),
    ],
)
def test_correlate_is_the_weight_gradient(layer: nn.Module, pre_shape: tuple[int, ...]) -> None:
    """sum_b post (x) pre equals d/dW sum(layer(pre) * post): the autograd oracle."""
    g = torch.Generator().manual_seed(3)
    pre = torch.rand(pre_shape, generator=g)
    post = torch.rand(layer(pre).shape, generator=g)
    (expected,) = torch.autograd.grad((layer(pre) * post).sum(), layer.weight)
    torch.testing.assert_close(correlate(post, pre, layer), expected)


def test_conv_rule_runs_and_writes_grad() -> None:
    conv = nn.Conv2d(1, 2, 3)
    rule = STDP(conv, trace="add")
    pre = (torch.rand(5, 2, 1, 6, 6) < 0.3).float()
    post = (torch.rand(5, 2, 2, 4, 4) < 0.3).float()
    dw, _ = rule.run(pre, post)
    assert dw.shape == conv.weight.shape
    torch.testing.assert_close(conv.weight.grad, -dw)


def test_rule_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="layer"):
        STDP(nn.Conv1d(1, 1, 3))
    with pytest.raises(ValueError, match="bound"):
        STDP(nn.Linear(2, 2), bound="sticky")
    with pytest.raises(ValueError, match="w_min"):
        STDP(nn.Linear(2, 2), w_min=1.0, w_max=1.0)
    with pytest.raises(ValueError, match="nu_pre"):
        STDP(nn.Linear(2, 2), nu_pre=-1.0)
    with pytest.raises(ValueError, match="x_tar"):
        STDP(nn.Linear(2, 2), x_tar=-0.1)


# ---------------------------------------------------------------- the network


def small_net(n_inputs=20, n_neurons=6, **overrides) -> DiehlCook:
    params = replace(DiehlCookParams(), t_present=60.0, **overrides)
    return DiehlCook(n_inputs, n_neurons, params, generator=torch.Generator().manual_seed(0))


def test_normalisation_sets_the_column_sum() -> None:
    net = DiehlCook(784, 10, generator=torch.Generator().manual_seed(0))
    net.normalize_()
    torch.testing.assert_close(net.weight.sum(1), torch.full((10,), 78.0))
    small = DiehlCook(64, 10)  # the sum stays; weights count in units of 784 / 64
    small.normalize_()
    torch.testing.assert_close(small.weight.sum(1), torch.full((10,), 78.0))


def driven(net: DiehlCook, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rates = torch.full((batch, net.n_inputs), 60.0)
    return poisson_events(rates, net.params.steps, net.params.dt, generator=g)


def test_adaptive_threshold_grows_per_spike_and_is_frozen_at_test() -> None:
    net = small_net()
    theta0 = net.theta.clone()
    counts = net.present(driven(net, 3), 3, learn=True)
    assert counts.sum() > 0
    p = net.params
    keep = math.exp(-3 * (p.t_present + p.t_rest) / p.tau_theta)
    torch.testing.assert_close(net.theta, (theta0 + p.theta_plus * counts.sum(0)) * keep)
    theta, weight = net.theta.clone(), net.weight.clone()
    net.present(driven(net, 3, seed=1), 3, learn=False)
    assert torch.equal(net.theta, theta) and torch.equal(net.weight, weight)


def test_higher_threshold_fires_less() -> None:
    low = small_net()
    high = small_net()
    high.theta.add_(10.0)
    assert (
        low.present(driven(low, 4), 4, learn=False).sum()
        > high.present(driven(high, 4), 4, learn=False).sum()
    )


def replay_rules(params: DiehlCookParams, net: DiehlCook, layer: nn.Linear) -> list[STDP]:
    """The network's learning as :class:`STDP` rules on ``layer`` (weights in units of
    ``net.unit``), whose per-step changes add up: one for ``triplet``; for ``power_law`` its
    potentiation (soft bound, all-to-all trace, ``x_tar``) and the pre-spike depression."""
    common = {"tau_pre": params.tau_pre, "tau_post": params.tau_post, "dt": params.dt}
    if params.rule == "triplet":
        return [
            STDP(
                layer,
                nu_pre=params.nu_pre * net.unit,
                nu_post=params.nu_post * net.unit,
                tau_post2=params.tau_post2,
                **common,
            )
        ]
    ltp = STDP(
        layer,
        nu_pre=0.0,
        nu_post=params.nu_post * net.unit ** (1 - params.mu),  # (w_max - w)^mu in units of 1
        w_max=params.w_max * net.unit,
        bound="soft",
        mu=params.mu,
        x_tar=params.x_tar,
        trace="add",
        **common,
    )
    return [ltp, STDP(layer, nu_pre=params.nu_pre * net.unit, nu_post=0.0, **common)]


POWER_LAW = {"rule": "power_law", "tau_post2": None, "nu_pre": 2e-3}


@pytest.mark.parametrize(
    "synapse, rule",
    [("conductance", "triplet"), ("current", "triplet"), ("conductance", "power_law")],
)
def test_network_learning_equals_the_rule_on_its_spikes(synapse: str, rule: str) -> None:
    """The sparse kernel's weights equal STDP replayed on its recorded spike trains, with the
    renormalisation every steps / batch steps and at the end."""
    base = DiehlCookParams() if synapse == "conductance" else DiehlCookParams.current()
    params = replace(base, t_present=80.0, norm=200.0, **(POWER_LAW if rule == "power_law" else {}))
    net = DiehlCook(20, 5, params, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(4)
    batch = 3
    pre = (torch.rand(params.steps, batch, 20, generator=g) < 0.08).float()
    if rule == "power_law":  # no weight near 0: the rule depresses silent inputs at post spikes
        net.weight.copy_(torch.rand(5, 20, generator=torch.Generator().manual_seed(0)) + 0.5)
    net.normalize_()
    w0 = net.weight.clone()
    _, post = net.present(spike_events(pre), batch, learn=True, record=True)
    assert post.sum() > 2
    layer = nn.Linear(20, 5, bias=False)
    layer.weight.data.copy_(w0)
    rules = replay_rules(params, net, layer)
    states, w = [None] * len(rules), layer.weight.data
    for t in range(params.steps):
        if t and t % (params.steps // batch) == 0:
            w.mul_(params.norm / w.sum(1, keepdim=True))
        changes = []
        for k, rule in enumerate(rules):  # every rule sees the weights before this step
            dw, states[k] = rule.step(pre[t], post[t], states[k])
            changes.append(dw)
        w.add_(sum(changes))
        assert 0 < w.min() and w.max() < params.w_max * net.unit  # no clipping to compare
    w.mul_(params.norm / w.sum(1, keepdim=True))
    torch.testing.assert_close(net.weight, w, atol=1e-5, rtol=1e-4)


def peak_after_one_input(p: DiehlCookParams, w: float, steps: int) -> float:
    """The excitatory membrane's highest value after one input spike of weight ``w`` at step 0,
    by the recursion of the module docstring (Euler membrane, ``g`` decayed per ``g_decay``)."""
    d = math.exp(-p.dt / p.tau_ge) if p.g_decay == "exact" else 1.0 - p.dt / p.tau_ge
    v, g, peak = p.v_rest_e, 0.0, p.v_rest_e
    for t in range(steps):
        v += p.dt / p.tau_e * ((p.v_rest_e - v) + g * (p.e_exc_e - v))
        g *= d
        g += w if t == 0 else 0.0
        peak = max(peak, v)
    return peak


@pytest.mark.parametrize("g_decay", ["exact", "euler"])
def test_one_input_spike_drives_the_membrane_as_the_recursion(g_decay: str) -> None:
    """A neuron whose threshold lies just under the hand-computed peak fires; just over, not."""
    steps = 40
    p = replace(DiehlCookParams(), t_present=steps * 0.5, theta_init=0.0, g_decay=g_decay)
    peak = peak_after_one_input(p, 5.0, steps)
    assert peak > p.v_rest_e + 1.0
    pre = torch.zeros(steps, 1, 1)
    pre[0] = 1.0
    for shift, fires in ((-1e-3, 1), (1e-3, 0)):
        net = DiehlCook(1, 1, replace(p, v_th_e=peak + shift))
        net.weight.fill_(5.0)
        assert net.present(spike_events(pre), 1, learn=False).item() == fires


def test_frozen_samples_do_not_interact() -> None:
    """Without learning a batch is its samples run one by one: eval_batch_size is only speed."""
    net = small_net(theta_init=0.0)
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(net.params.steps, 4, net.n_inputs, generator=g) < 0.1).float()
    together = net.present(spike_events(pre), 4, learn=False)
    alone = [net.present(spike_events(pre[:, i : i + 1]), 1, learn=False) for i in range(4)]
    assert together.sum() > 4
    assert torch.equal(together, torch.cat(alone))


@pytest.mark.parametrize("rule", ["triplet", "power_law"])
def test_private_batch_is_its_samples_learning_alone_summed(rule: str) -> None:
    """With private weights each sample runs exactly as if shown alone (batch 1) from the
    batch's weights and thresholds, and the batch applies the sum of their STDP changes."""
    params = replace(DiehlCookParams(), t_present=80.0, norm=200.0, theta_init=0.0)
    if rule == "power_law":
        params = replace(params, **POWER_LAW)
    g = torch.Generator().manual_seed(4)
    batch = 3
    pre = (torch.rand(params.steps, batch, 20, generator=g) < 0.08).float()

    def net_of(**overrides) -> DiehlCook:
        net = DiehlCook(20, 5, replace(params, **overrides), generator=torch.Generator())
        net.weight.copy_(torch.rand(5, 20, generator=torch.Generator().manual_seed(0)) + 0.5)
        net.normalize_()
        return net

    net = net_of(batch_weights="private")
    w0, theta0 = net.weight.clone(), net.theta.clone()
    counts, post = net.present(spike_events(pre), batch, learn=True, record=True)
    dw = torch.zeros_like(w0)
    for k in range(batch):
        alone = net_of()
        c, z = alone.present(spike_events(pre[:, k : k + 1]), 1, learn=True, record=True)
        assert torch.equal(z[:, 0], post[:, k]) and torch.equal(c[0], counts[k])
        layer = nn.Linear(20, 5, bias=False)
        layer.weight.data.copy_(w0)
        rules, states, w = replay_rules(params, net, layer), [None, None], layer.weight.data
        for t in range(params.steps):  # the sample's weights drift within its presentation
            changes = []
            for r, stdp in enumerate(rules):
                change, states[r] = stdp.step(pre[t, k : k + 1], post[t, k : k + 1], states[r])
                changes.append(change)
            w.add_(sum(changes))
        dw += w - w0
    assert post.sum() > 5 and bool((post.sum((0, 2)) > 0).all())
    w = w0 + dw
    assert 0 < w.min() and w.max() < params.w_max * net.unit  # no clipping to compare
    torch.testing.assert_close(net.weight, w * (params.norm / w.sum(1, keepdim=True)))
    keep = math.exp(-batch * (params.t_present + params.t_rest) / params.tau_theta)
    torch.testing.assert_close(net.theta, (theta0 + params.theta_plus * counts.sum(0)) * keep)


def test_one_spike_lets_one_neuron_per_sample_fire_per_step() -> None:
    net = small_net(one_spike=True, n_neurons=10, theta_init=0.0, v_th_e=-60.0)
    counts, spikes = net.present(driven(net, 4), 4, learn=False, record=True)
    assert counts.sum() > 10 and spikes.sum(-1).max() == 1
    free = small_net(n_neurons=10, theta_init=0.0, v_th_e=-60.0)
    _, spikes = free.present(driven(free, 4), 4, learn=False, record=True)
    assert spikes.sum(-1).max() > 1


def test_quiet_images_are_retried_with_more_intensity() -> None:
    net = small_net(min_spikes=10**6, max_retries=3)
    x = torch.rand(5, net.n_inputs)
    done = list(present_all(net, x, torch.arange(5), learn=False, batch_size=4))
    finished = torch.cat([d.index for d in done])
    assert sorted(finished.tolist()) == list(range(5))
    assert sum(d.presented for d in done) == 5 * 4  # first try + 3 retries each


def test_events_follow_the_rates() -> None:
    g = torch.Generator().manual_seed(5)
    rates = torch.tensor([[0.0, 100.0], [50.0, 0.0]])
    ev = poisson_events(rates, 2000, 0.5, generator=g)  # 1 s: expect 100 and 50 spikes
    counts = torch.zeros(2, 2)
    counts.index_put_((ev.sample, ev.input), torch.ones(len(ev.sample)), accumulate=True)
    assert counts[0, 0] == 0 and counts[1, 1] == 0
    assert 70 < counts[0, 1] < 130 and 30 < counts[1, 0] < 75
    steps = torch.tensor(ev.offsets).diff()  # events per step: the spikes spread over the window
    assert len(steps) == 2000 and bool((steps >= 0).all())
    assert 0.35 < steps[:1000].sum() / len(ev.sample) < 0.65
    with pytest.raises(ValueError, match="rates_hz"):
        poisson_events(-rates, 10, 0.5)


def test_params_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="tau_e"):
        DiehlCookParams(tau_e=0.0)
    with pytest.raises(ValueError, match="synapse"):
        DiehlCookParams(synapse="chemical")
    with pytest.raises(ValueError, match="rule"):
        DiehlCookParams(rule="pair")
    with pytest.raises(ValueError, match="tau_post2=None, got tau_post2=40.0"):
        DiehlCookParams(rule="power_law")
    with pytest.raises(ValueError, match="mu"):
        DiehlCookParams(rule="power_law", tau_post2=None, mu=0.0)
    with pytest.raises(ValueError, match="x_tar"):
        DiehlCookParams(x_tar=-1.0)
    with pytest.raises(ValueError, match="inputs per sample"):
        small_net().rates(torch.rand(2, 7), 2.0)


# ---------------------------------------------------------------- assignment and read-outs


def test_assignment_and_both_votes_on_a_toy_problem() -> None:
    # samples of classes 0, 0, 1; neuron 3 never fires
    counts = torch.tensor([[4.0, 2.0, 1.0, 0.0], [6.0, 2.0, 1.0, 0.0], [0.0, 1.0, 6.0, 0.0]])
    a = assign(counts, torch.tensor([0, 0, 1]), n_classes=3)
    # class rates: n0 [5, 0, 0], n1 [2, 1, 0], n2 [1, 6, 0], n3 [0, 0, 0]
    assert a.labels.tolist() == [0, 0, 1, -1]
    torch.testing.assert_close(a.rates[1], torch.tensor([2.0, 1.0, 0.0]))
    torch.testing.assert_close(a.proportions[1], torch.tensor([2 / 3, 1 / 3, 0.0]))
    torch.testing.assert_close(a.proportions[2], torch.tensor([1 / 7, 6 / 7, 0.0]))
    torch.testing.assert_close(a.proportions[3], torch.zeros(3))
    # all-neuron vote: class 0 = (0 + 3) / 2 = 1.5 < class 1 = 2 / 1; proportions: class 0 =
    # (0 + 3 * 2/3) / 2 = 1.0 < class 1 = 2 * 6/7; the silent neuron's 5 spikes count for none
    sample = torch.tensor([[0.0, 3.0, 2.0, 5.0]])
    assert vote_all(sample, a).tolist() == [1]
    assert vote_proportion(sample, a).tolist() == [1]
    # class 0 = 4 / 2 = 2 > 1.5 and 4 * 2/3 / 2 = 1.33 > 1.5 * 6/7 = 1.29
    assert vote_all(torch.tensor([[0.0, 4.0, 1.5, 0.0]]), a).tolist() == [0]
    assert vote_proportion(torch.tensor([[0.0, 4.0, 1.5, 0.0]]), a).tolist() == [0]
    # a class no neuron is assigned to never wins
    assert vote_all(torch.zeros(1, 4), a).tolist() == [0]


def test_proportion_vote_differs_from_all_vote() -> None:
    a = Assignment(torch.tensor([0, 1]), torch.tensor([[0.5, 0.5], [0.0, 1.0]]), torch.ones(2, 2))
    counts = torch.tensor([[3.0, 2.0]])
    assert vote_all(counts, a).tolist() == [0]
    assert vote_proportion(counts, a).tolist() == [1]  # 3 * 0.5 < 2 * 1


def test_assign_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        assign(torch.ones(3, 2), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="labels"):
        assign(torch.ones(2, 2), torch.tensor([0, 5]), 2)


# ---------------------------------------------------------------- training entry point


@pytest.fixture(scope="module")
def digits():
    from torchspike.data import load

    x, y = load("digits", "train")
    xt, yt = load("digits", "test")
    return (x[:384], y[:384]), (xt[:96], yt[:96])


def tiny_config(**kw) -> STDPConfig:
    base = dict(
        n_neurons=20,
        batch_size=32,
        update_interval=64,
        checkpoint_every=64,
        params={"t_present": 100.0},
    )
    return STDPConfig(**{**base, **kw})


def test_fit_on_digits_end_to_end(digits, tmp_path) -> None:
    """The 8x8 digits set the input size; 50 neurons learn well above chance (0.1)."""
    train, test = digits
    config = STDPConfig(n_neurons=50, update_interval=128, params={"t_present": 200.0})
    seen = []
    result = fit(config, train, test, on_progress=seen.append)
    m = result.metrics
    assert {"train", "test"} <= {info["phase"] for info in seen}
    assert result.state["weight"].shape == (50, 64)
    assert len(result.state["history"]) == 3  # windows at 128, 256, 384 images
    assert (result.state["assignment"] >= 0).sum() > 25
    assert m["test_accuracy_all"] > 0.4 and m["test_accuracy_proportion"] > 0.4
    save_state(tmp_path / "stdp.safetensors", result.state, config)
    state, loaded = load_state(tmp_path / "stdp.safetensors")
    assert loaded == config
    again = evaluate(state, loaded, test)
    assert again["test_accuracy_all"] == m["test_accuracy_all"]


def test_resume_from_a_checkpoint_reproduces_the_run(digits) -> None:
    train = digits[0][0][:192], digits[0][1][:192]
    checkpoints = []
    full = fit(tiny_config(), train, on_checkpoint=checkpoints.append)
    middle = checkpoints[1]  # after 128 images, mid-epoch
    assert 0 < int(middle["position"]) < len(train[0]) and int(middle["epoch"]) == 0
    resumed = fit(tiny_config(), train, state=middle)
    for key in ("weight", "theta", "assignment", "history"):
        torch.testing.assert_close(resumed.state[key], full.state[key], equal_nan=True)


def test_resume_rejects_a_state_of_another_shape(digits) -> None:
    (x, y), _ = digits
    state = fit(tiny_config(), (x[:32], y[:32])).state
    with pytest.raises(ValueError, match="n_neurons"):
        fit(tiny_config(n_neurons=21), (x[:32], y[:32]), state=state)


def test_frozen_labelling_pass(digits) -> None:
    (x, y), test = digits
    phases = []
    m = fit(
        tiny_config(label_images=96),
        (x[:192], y[:192]),
        test,
        on_progress=lambda p: phases.append((p["phase"], p["total"])),
    ).metrics
    assert m["label_images"] == 96 and ("label", 96) in phases
    assert 0.1 < m["label_accuracy_proportion"] <= 1.0  # chance is 0.1


def test_state_keys_are_those_of_a_new_state() -> None:
    from torchspike.stdp.state import KEYS, new_state

    assert set(new_state(tiny_config(), (8, 8), 10)) == set(KEYS)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        STDPConfig(batch_size=0)
    with pytest.raises(ValueError, match="eval_batch_size"):
        STDPConfig(eval_batch_size=0)
    with pytest.raises(ValueError, match="unknown keys"):
        STDPConfig(params={"tau_x": 1.0})
    with pytest.raises(ValueError, match="dt"):
        STDPConfig(params={"dt": -1.0})
    with pytest.raises(ValueError, match="g_decay"):
        STDPConfig(params={"g_decay": "rk4"})
    with pytest.raises(ValueError, match="euler"):
        STDPConfig(params={"g_decay": "euler", "dt": 1.5})
    with pytest.raises(ValueError, match="train x"):
        fit(STDPConfig(), (torch.full((4, 3), 2.0), torch.zeros(4, dtype=torch.long)))


def test_save_figures_writes_the_three_plots(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from torchspike.stdp.plot import field_grid, save_figures
    from torchspike.stdp.state import new_state

    state = new_state(tiny_config(n_neurons=5), (1, 8, 8), 10)
    state["history"] = torch.tensor([[64.0, 0.5, 0.6, 9.0], [128.0, 0.6, 0.7, 8.0]])
    state["assignment"] = torch.tensor([0, 1, -1, 3, 9])
    grid = field_grid(state["weight"], (1, 8, 8))
    assert grid.shape == (2 * 8, 3 * 8)  # 5 fields on a 3-column grid
    torch.testing.assert_close(grid[8:16, 0:8], state["weight"][3].view(8, 8))
    torch.testing.assert_close(grid[0:8, 16:24], state["weight"][2].view(8, 8))
    assert bool(grid[8:16, 16:24].isnan().all())  # the sixth place of the grid stays blank
    paths = save_figures(state, tmp_path)
    assert [p.name for p in paths] == ["receptive_fields.png", "assignments.png", "accuracy.png"]
    assert all(p.stat().st_size > 1000 for p in paths)

"""NIR export and load: the Euler recursions by hand, exact round trips, refusals and warnings."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike import files

nir = pytest.importorskip("nir")
tn = pytest.importorskip("torchspike.nir")

DT = 1e-3


def _seq(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype).reshape(-1, 1, 1)


def _flat(t):
    return [round(v, 9) for v in t.flatten().tolist()]


def _euler_lif(xs, *, tau, r, v_leak, v_th, v_reset, dt=DT):
    """NIR LIF under forward Euler, written out with Python floats: (spikes, post-reset v)."""
    v, zs, vs = v_leak, [], []
    for x in xs:
        v = v + dt / tau * (v_leak - v + r * x)
        z = 1.0 if v > v_th else 0.0
        v = v_reset if z else v
        zs.append(z)
        vs.append(v)
    return zs, vs


def _states(neuron, xs):
    _, records = ts.SpikingNet(neuron).trace(xs)
    return records["0"]


def _random_params(shape, low, high, generator):
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


# ------------------------------------------------------------------------ the neuron maths


def test_nir_lif_matches_euler_by_hand():
    xs = [0.6, 0.9, 0.9, 0.0, 1.5, 0.2, 0.7]
    params = dict(tau=4e-3, r=2.0, v_leak=0.1, v_th=0.5, v_reset=-0.2)
    lif = tn.NIRLIF(dt=DT, **params).double()
    rec = _states(lif, _seq(xs))
    zs, vs = _euler_lif(xs, **params)
    assert _flat(rec["out"]) == zs and sum(zs) >= 2
    assert _flat(rec["v"]) == [round(v, 9) for v in vs]


def test_nir_lif_starts_at_rest_and_keeps_the_input_after_a_spike():
    lif = tn.NIRLIF(dt=DT, tau=DT, r=1.0, v_leak=0.0, v_th=1.0).double()  # v[t] = x[t] exactly
    rec = _states(lif, _seq([2.0, 0.7, 0.0]))
    # the step after a spike sees its own input (torchspike's LIF(reset='zero') would give 0)
    assert _flat(rec["out"]) == [1, 0, 0] and _flat(rec["v"]) == [0.0, 0.7, 0.0]
    leaky = tn.NIRLIF(dt=DT, tau=2e-3, v_leak=-0.4).double()
    assert _flat(_states(leaky, _seq([0.0]))["v"]) == [-0.4]  # rest is v_leak


def test_nir_if_li_and_i_recursions():
    xs = [0.5, 0.5, 0.5, 0.1]
    nif = tn.NIRLIF(dt=DT, r=400.0, v_th=0.5, v_reset=0.1).double()  # v += 0.4 x
    assert nif.kind == "IF"
    rec = _states(nif, _seq(xs))
    # v: 0.2, 0.4, 0.6 > 0.5 -> fire, reset 0.1, 0.14
    assert _flat(rec["out"]) == [0, 0, 1, 0] and _flat(rec["v"]) == [0.2, 0.4, 0.1, 0.14]
    li = tn.NIRLIF(dt=DT, tau=4e-3, r=3.0, v_leak=0.2).double()
    assert li.kind == "LI"
    expected, v = [], 0.2
    for x in xs:
        v = v + 0.25 * (0.2 - v + 3.0 * x)
        expected.append(round(v, 9))
    ys, _ = li(_seq(xs))
    assert _flat(ys) == expected  # LI outputs its membrane
    integrator = tn.NIRLIF(dt=DT, r=1000.0).double()
    assert integrator.kind == "I" and _flat(integrator(_seq(xs))[0]) == [0.5, 1.0, 1.5, 1.6]


def test_threshold_is_strict():
    lif = tn.NIRLIF(dt=DT, r=1000.0, v_th=0.5)
    spikes, _ = lif(_seq([0.5, 0.0, 1e-3], torch.float32))
    assert _flat(spikes) == [0, 0, 1]


def test_nir_cuba_lif_matches_euler_by_hand():
    xs = [1.0, 0.0, 2.0, 0.5, 0.0, 0.0, 3.0]
    p = dict(tau_syn=2e-3, tau_mem=4e-3, r=1.5, v_leak=0.05, w_in=2.0, v_th=0.4, v_reset=-0.1)
    cuba = tn.NIRCubaLIF(dt=DT, **p).double()
    rec = _states(cuba, _seq(xs))
    i, v, zs, vs, cs = 0.0, p["v_leak"], [], [], []
    for x in xs:
        i = i + DT / p["tau_syn"] * (p["w_in"] * x - i)  # the new current drives v this step
        v = v + DT / p["tau_mem"] * (p["v_leak"] - v + p["r"] * i)
        z = 1.0 if v > p["v_th"] else 0.0
        v = p["v_reset"] if z else v
        zs, vs, cs = zs + [z], vs + [round(v, 9)], cs + [round(i, 9)]
    assert _flat(rec["out"]) == zs and sum(zs) >= 2
    assert _flat(rec["v"]) == vs and _flat(rec["i"]) == cs
    cuba_li = tn.NIRCubaLIF(dt=DT, tau_syn=2e-3, tau_mem=4e-3)
    assert cuba_li.kind == "CubaLI"


def test_surrogate_gradient_flows_and_reset_is_detached():
    lif = tn.NIRLIF(dt=DT, tau=5e-3, r=5.0, v_th=0.5)
    xs = torch.full((6, 2, 3), 0.4, dtype=torch.float64, requires_grad=True)
    spikes, _ = lif(xs)
    (grad,) = torch.autograd.grad(spikes.sum(), xs)
    assert spikes.sum() > 0 and grad.abs().sum() > 0
    # by hand: Euler step, ATan spike, and a reset that replaces v (no gradient through it),
    # against the same recursion with a reset v (1 - z) + v_reset z that passes the gradient
    k, atan = DT / 5e-3, ts.surrogate.atan()

    def run(detached):
        v, out = torch.zeros(2, 3, dtype=torch.float64), []
        for x in xs.unbind(0):
            v = (1 - k) * v + k * 5.0 * x
            z = atan(v - 0.5)
            v = torch.where(z.detach() > 0, torch.zeros_like(v), v) if detached else v * (1 - z)
            out.append(z)
        return torch.autograd.grad(torch.stack(out).sum(), xs)[0]

    torch.testing.assert_close(grad, run(detached=True))
    assert not torch.allclose(grad, run(detached=False))


def test_euler_overshoot_and_bad_parameters():
    with pytest.warns(tn.NIRWarning, match="forward Euler overshoots"):
        tn.NIRLIF(dt=1e-3, tau=1e-5, v_th=1.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        tn.NIRLIF(dt=DT, tau=-1.0)
    with pytest.raises(ValueError, match="dt must be"):
        tn.NIRLIF(dt=0.0, tau=1.0)
    with pytest.raises(ValueError, match="v_leak needs a leak"):
        tn.NIRLIF(dt=DT, v_leak=0.3, v_th=1.0)


# --------------------------------------------------------------------------- round trips


def _nir_network(generator):
    """Every supported layer with per-neuron random parameters, in NIR semantics."""

    def rand(shape, low, high):
        return _random_params(shape, low, high, generator)

    c, h = 3, 6
    conv_shape, pooled = (c, h, h), (c, h // 2, h // 2)
    n = c * 3 * 3
    return ts.SpikingNet(
        nn.Conv2d(2, c, 3, padding=1),
        tn.NIRLIF(
            dt=DT,
            tau=rand(conv_shape, 2e-3, 2e-2),
            r=rand(conv_shape, 1, 10),
            v_leak=rand(conv_shape, -0.1, 0.1),
            v_th=rand(conv_shape, 0.2, 1),
            v_reset=rand(conv_shape, -0.2, 0.1),
        ),
        nn.AvgPool2d(2),
        tn.NIRLIF(dt=DT, r=rand(pooled, 100, 900), v_th=0.3, v_reset=0.0),  # IF
        nn.Flatten(),
        nn.Linear(n, 8),
        tn.NIRCubaLIF(
            dt=DT,
            tau_syn=rand(8, 2e-3, 8e-3),
            tau_mem=rand(8, 5e-3, 2e-2),
            r=rand(8, 1, 4),
            v_leak=0.0,
            w_in=rand(8, 1, 3),
            v_th=0.25,
            v_reset=0.0,
        ),
        nn.Linear(8, 4, bias=False),
        tn.NIRLIF(dt=DT, tau=rand(4, 5e-3, 3e-2), r=rand(4, 1, 5), v_leak=0.0),  # LI
    )


def test_round_trip_through_a_file_gives_identical_outputs(tmp_path):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = _nir_network(g)
    graph = tn.export(net, (2, 6, 6))
    nir.write(tmp_path / "net.nir", graph)
    loaded = tn.load(nir.read(tmp_path / "net.nir"))
    assert isinstance(loaded, ts.SpikingNet)
    xs = 2 * torch.rand(30, 5, 2, 6, 6, generator=g)
    with torch.no_grad():
        _, want = net.trace(xs)
        _, got = loaded.trace(xs)
    for name in ("1", "3", "6"):  # every spiking layer fires, and fires identically
        assert want[name]["out"].sum() > 0, name
        assert torch.equal(want[name]["out"], got[name]["out"]), name
    assert torch.equal(want["8"]["out"], got["8"]["out"])
    assert tn.load(tmp_path / "net.nir").layers[1].dt == DT  # a path loads too


def test_parameters_are_per_neuron_and_dt_is_recorded(tmp_path):
    net = ts.SpikingNet(nn.Conv2d(1, 2, 3), tn.NIRLIF(dt=2e-3, tau=0.01, v_th=0.5))
    graph = tn.export(net, (1, 5, 5), dt=2e-3)
    assert graph.metadata["dt"] == 2e-3 and graph.metadata["discretization"] == "forward-euler"
    lif = graph.nodes["1"]
    for field in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
        assert getattr(lif, field).shape == (2, 3, 3), field
    nir.write(tmp_path / "g.nir", graph)
    back = nir.read(tmp_path / "g.nir")
    assert float(back.metadata["dt"]) == 2e-3
    assert tn.load(back).layers[1].dt == 2e-3
    with pytest.warns(tn.NIRWarning, match="never spike: '1'"):  # an explicit dt wins, and
        assert tn.load(back, dt=1e-4).layers[1].dt == 1e-4  # 20x too small leaves it silent


def test_cuba_lif_and_li_export_exactly():
    torch.manual_seed(1)
    net = ts.SpikingNet(
        nn.Linear(5, 7),
        ts.CubaLIF(tau_mem=1e-2, tau_syn=4e-3, dt=DT, v_th=0.2),
        nn.Linear(7, 3),
        ts.LI(0.9),
    )
    loaded = tn.load(tn.export(net, dt=1e-4))  # any dt: the Euler taus absorb it
    xs = 2 * torch.rand(40, 8, 5)
    with torch.no_grad():
        _, want = net.trace(xs)
        _, got = loaded.trace(xs)
    assert want["1"]["out"].mean() > 0.05
    assert torch.equal(want["1"]["out"], got["1"]["out"])
    torch.testing.assert_close(want["3"]["out"], got["3"]["out"], rtol=1e-6, atol=1e-6)


def test_lif_membrane_without_reset_is_an_exact_li_and_beta_one_an_integrator():
    graph = tn.export(ts.SpikingNet(nn.Linear(2, 2), ts.LIF(0.8, reset="none", output="membrane")))
    node = graph.nodes["1"]
    assert isinstance(node, nir.LI)
    np.testing.assert_allclose(node.tau, DT / 0.2)
    np.testing.assert_allclose(node.r, 5.0)
    graph = tn.export(ts.SpikingNet(nn.Linear(2, 2), ts.LI(1.0)))
    assert isinstance(graph.nodes["1"], nir.I)


@pytest.mark.parametrize(
    ("neuron", "reason"),
    [
        (ts.LIF(0.9), "reset='subtract'"),
        (ts.LIF(0.9, reset="zero"), "drops the input of the step after a spike"),
        (ts.LIF(0.9, output="membrane"), "membrane read-out resets"),
        (ts.IF(rectify=True), "rectify=True"),
    ],
)
def test_inexact_neurons_warn_or_refuse(neuron, reason):
    net = ts.SpikingNet(nn.Linear(3, 3), neuron)
    with pytest.warns(tn.NIRWarning, match=reason):
        graph = tn.export(net)
    assert reason.split()[0] in graph.nodes["1"].metadata["torchspike_inexact"]
    with pytest.raises(ValueError, match="cannot represent these neurons exactly"):
        tn.export(net, strict=True)


def test_torchspike_lif_maps_beta_with_euler():
    with pytest.warns(tn.NIRWarning):
        graph = tn.export(ts.SpikingNet(nn.Linear(2, 2), ts.LIF(0.95, v_th=0.7)), dt=1e-4)
    node = graph.nodes["1"]
    assert isinstance(node, nir.LIF)
    np.testing.assert_allclose(1 - 1e-4 / node.tau, 0.95, rtol=1e-7)  # beta = 1 - dt / tau
    np.testing.assert_allclose(node.r * 1e-4 / node.tau, 1.0, rtol=1e-7)  # input gain 1
    assert (node.v_threshold == np.float32(0.7)).all() and (node.v_reset == 0).all()


def test_batchnorm_folds_and_max_pool_after_spikes_is_exact():
    torch.manual_seed(2)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    net = ts.SpikingNet(
        nn.Conv2d(1, 3, 3, padding=1, bias=False),
        bn,
        tn.NIRLIF(dt=DT, tau=5e-3, r=20.0, v_th=0.2),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(27, 4),
    ).eval()
    graph = tn.export(net, (1, 6, 6))
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds == "Input Conv2d LIF SumPool2d Threshold Flatten Affine Output".split()
    loaded = tn.load(graph)
    xs = torch.rand(20, 4, 1, 6, 6)
    with torch.no_grad():
        _, want = net.trace(xs)
        _, got = loaded.trace(xs)
        assert want["2"]["out"].mean() > 0.1
        assert torch.equal(want["2"]["out"], got["1"]["out"])  # BatchNorm folded in
        torch.testing.assert_close(net(xs)[0], loaded(xs)[0], rtol=1e-5, atol=1e-5)


def test_refusals():
    with pytest.raises(ValueError, match="MaxPool2d is exported only right after spiking"):
        tn.export(ts.SpikingNet(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)), (1, 6, 6))
    with pytest.raises(ValueError, match="ReLU has no NIR node"):
        tn.export(ts.SpikingNet(nn.Linear(2, 2), nn.ReLU()))
    with pytest.raises(ValueError, match="ALIF has no NIR equivalent"):
        tn.export(ts.SpikingNet(nn.Linear(2, 2), ts.ALIF(0.9, rho=0.9)))
    with pytest.raises(ValueError, match="RecurrentLIF has no NIR equivalent"):
        tn.export(ts.SpikingNet(nn.Linear(2, 2), ts.RecurrentLIF(2, 0.9)))
    with pytest.raises(ValueError, match="input_shape is needed"):
        tn.export(ts.SpikingNet(nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="beta = 1 .* for some neurons only"):
        tn.export(ts.SpikingNet(nn.Linear(2, 2), ts.LI(torch.tensor([1.0, 0.5]))))


def test_load_needs_a_dt_when_the_graph_has_none():
    graph = nir.NIRGraph.from_list(
        nir.Affine(np.eye(2, dtype=np.float32), np.zeros(2, dtype=np.float32)),
        nir.LIF(
            tau=np.full(2, 1e-3),
            r=np.full(2, 10.0),
            v_leak=np.zeros(2),
            v_threshold=np.ones(2),
            v_reset=np.zeros(2),
        ),
    )
    with pytest.raises(ValueError, match="records no dt"):
        tn.load(graph)
    net = tn.load(graph, dt=1e-4)  # snnTorch's convention: beta = 0.9, input gain 1
    spikes, _ = net(torch.tensor([[[0.6, 0.0]], [[0.6, 0.0]], [[0.6, 0.0]]]))
    assert _flat(spikes[:, 0, 0]) == [0, 1, 0]  # 0.6, 1.14 > 1 -> fire, reset, 0.6


def test_flatten_dims_shift_by_the_batch_dimension():
    net = ts.SpikingNet(nn.Flatten(2), nn.Flatten())
    graph = tn.export(net, (2, 3, 4))
    assert (graph.nodes["0"].start_dim, graph.nodes["1"].start_dim) == (1, 0)
    loaded = tn.load(graph)
    assert [layer.start_dim for layer in loaded.layers] == [2, 1]
    with pytest.raises(ValueError, match="Flatten over the batch"):
        tn.export(ts.SpikingNet(nn.Flatten(0)), (2,))


def test_a_recurrent_graph_loads_as_a_graph_net():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    w_rec = rng.normal(size=(3, 3)).astype(np.float32)
    lif = nir.LIF(
        tau=np.full(3, 0.01),
        r=np.full(3, 10.0),
        v_leak=np.zeros(3),
        v_threshold=np.ones(3),
        v_reset=np.zeros(3),
    )
    nodes = {"input": nir.Input(np.array([4])), "affine": nir.Affine(w, b), "lif": lif}
    nodes.update(rec=nir.Linear(w_rec), output=nir.Output(np.array([3])))
    edges = [("input", "affine"), ("affine", "lif"), ("lif", "rec"), ("rec", "lif")]
    graph = nir.NIRGraph(nodes, [*edges, ("lif", "output")], metadata={"dt": DT})
    net = tn.load(graph)
    assert isinstance(net, tn.NIRGraphNet)
    xs = torch.randn(30, 5, 4, generator=torch.Generator().manual_seed(0))
    ys, _ = net(xs)
    # reference: the recurrent edge carries the previous step's spikes
    v, z, want = torch.zeros(5, 3), torch.zeros(5, 3), []
    for x in xs:
        v = 0.9 * v + 1.0 * (
            x @ torch.from_numpy(w).T + torch.from_numpy(b) + z @ torch.from_numpy(w_rec).T
        )
        z = (v > 1).float()
        v = torch.where(z > 0, 0.0, v)
        want.append(z)
    want = torch.stack(want)
    assert want.sum() > 0
    assert torch.equal(ys, want)
    assert torch.equal(net(xs)[0], ys)  # a fresh state for each call


def test_export_run_writes_a_nir_file(tmp_path):
    from torchspike.app.config import BPTTConfig
    from torchspike.app.load import build
    from torchspike.app.rundir import RunDir, new_record

    cfg = BPTTConfig(dataset="digits", hidden=[16], steps=4, readout="li")
    run = RunDir.create(tmp_path / "run", overwrite=False)
    run.write_record(new_record(cfg, run, recipe=None, config_file=None, overrides={}, threads=1))
    _, model = build(cfg)
    files.save_weights(run / "model.safetensors", model.state_dict())
    with pytest.warns(tn.NIRWarning, match="reset='subtract'"):
        tn.export_run(run.path, tmp_path / "model.nir")
    graph = nir.read(tmp_path / "model.nir")
    assert int(graph.metadata["steps"]) == 4 and float(graph.metadata["dt"]) == DT
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {
        "input": "Input",
        "0": "Flatten",
        "1": "Affine",
        "2": "LIF",
        "3": "Affine",
        "4": "LI",
        "output": "Output",
    }
    assert tuple(graph.nodes["input"].input_type["input"]) == (1, 8, 8)


def test_state_dict_round_trip_of_nir_neurons():
    lif = tn.NIRLIF(dt=DT, tau=torch.full((3,), 0.01), v_th=0.5)
    state = lif.state_dict()
    assert state["tau"].dtype == torch.float64
    assert set(state) == {"tau", "r", "v_leak", "v_th", "v_reset"}
    other = tn.NIRLIF(dt=DT, tau=torch.ones(3), v_th=0.1)
    other.load_state_dict(state)
    assert torch.equal(other.tau, lif.tau) and torch.equal(other.v_th, lif.v_th)


def test_scalar_parameters_and_torch_tensors_load_per_layer():
    """Norse writes 0-d torch tensors and no per-neuron shapes; they broadcast on load."""
    lif = nir.LIF(
        tau=torch.tensor(2e-3),
        r=torch.tensor(2.0),
        v_leak=torch.tensor(0.0),
        v_threshold=torch.tensor(0.5),
        v_reset=torch.tensor(0.0),
    )
    affine = nir.Affine(np.eye(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    nodes = {"input": nir.Input(np.array([3])), "affine": affine, "lif": lif}
    nodes["output"] = nir.Output(np.array([3]))
    edges = [("input", "affine"), ("affine", "lif"), ("lif", "output")]
    net = tn.load(nir.NIRGraph(nodes, edges, type_check=False), dt=DT)
    spikes, _ = net(torch.tensor([[[0.6, 0.4, 1.2]]]).expand(4, 2, 3).contiguous())
    # v = 0.5 v + x: 0.6 fires at once, 0.4 after two steps (0.4, 0.6), 1.2 every step
    assert spikes[:, 0].tolist() == [[1, 0, 1], [1, 1, 1], [1, 0, 1], [1, 1, 1]]
    graph = tn.export(net)
    assert graph.nodes["1"].tau.shape == (3,)  # and export writes them per neuron


def test_importing_torchspike_nir_does_not_import_nir():
    code = "import sys, torchspike.nir; assert not {'nir', 'nirtorch', 'h5py'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "node_type, params, kind",
    [
        ("LIF", {"tau": 5e-3, "r": 2.0, "v_leak": 0.1, "v_threshold": 0.5, "v_reset": 0.2}, "LIF"),
        ("LI", {"tau": 5e-3, "r": 2.0, "v_leak": 0.1}, "LI"),
        ("IF", {"r": 2.0, "v_threshold": 0.5, "v_reset": 0.2}, "IF"),
        ("I", {"r": 2.0}, "I"),
        (
            "CubaLIF",
            {
                "tau_syn": 2e-3,
                "tau_mem": 5e-3,
                "r": 2.0,
                "v_leak": 0.1,
                "w_in": 1.5,
                "v_threshold": 0.5,
                "v_reset": 0.2,
            },
            "CubaLIF",
        ),  # fmt: skip
        (
            "CubaLI",
            {"tau_syn": 2e-3, "tau_mem": 5e-3, "r": 2.0, "v_leak": 0.1, "w_in": 1.5},
            "CubaLI",
        ),
    ],
)
def test_each_nir_neuron_node_loads_with_its_parameters(node_type, params, kind):
    import nir

    from torchspike.nir._export import _neuron
    from torchspike.nir._nodes import module as node_module

    node = getattr(nir, node_type)(**{k: np.full(3, v) for k, v in params.items()})
    module = node_module("n", node, DT, ts.surrogate.atan())
    assert module.kind == kind and module.dt == DT
    for name, value in params.items():
        buffer = getattr(module, "v_th" if name == "v_threshold" else name)
        assert buffer.tolist() == [value] * 3, name
    exported, reason = _neuron(module, (3,), DT)  # and back: the same node
    assert type(exported).__name__ == node_type and reason is None
    for name, value in params.items():
        assert getattr(exported, name).tolist() == [value] * 3, name

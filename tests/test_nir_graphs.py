"""NIR graphs beyond a chain: subgraphs from files, invalid graphs refused at once, nir's type
check skipped on request, the first step of a cycle, dt inferred or probed, off-spec nodes."""

import time
import warnings

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
pytest.importorskip("h5py")
tn = pytest.importorskip("torchspike.nir")

DT = 1e-3
RNG = np.random.default_rng(0)
W_IN = RNG.normal(0.4, 0.5, (3, 4)).astype(np.float32)
W_REC = RNG.normal(0.0, 0.6, (3, 3)).astype(np.float32)
B_REC = RNG.normal(0.3, 0.2, 3).astype(np.float32)
W_OUT = RNG.normal(0.0, 0.8, (2, 3)).astype(np.float32)


def _lif(n=3, tau=0.01, r=10.0):
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, r),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
    )


def _io(n_in=4, n_out=2):
    return nir.Input(input_type=np.array([n_in])), nir.Output(output_type=np.array([n_out]))


def _flat_graph():
    inp, out = _io()
    nodes = {"input": inp, "fc1": nir.Linear(W_IN), "lif": _lif()}
    nodes.update(rec=nir.Affine(W_REC, B_REC), fc2=nir.Linear(W_OUT), output=out)
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "fc2")]
    edges.append(("fc2", "output"))
    return nir.NIRGraph(nodes, edges, metadata={"dt": DT})


def _two_level_graph():
    """The flat graph with the recurrent Affine two subgraphs deep: block{lif, inner{rec}}."""
    inner = nir.NIRGraph(
        {
            "input": nir.Input(input_type=np.array([3])),
            "rec": nir.Affine(W_REC, B_REC),
            "output": nir.Output(output_type=np.array([3])),
        },
        [("input", "rec"), ("rec", "output")],
    )
    block = nir.NIRGraph(
        {
            "input": nir.Input(input_type=np.array([3])),
            "lif": _lif(),
            "inner": inner,
            "output": nir.Output(output_type=np.array([3])),
        },
        [("input", "lif"), ("lif", "inner"), ("inner", "lif"), ("lif", "output")],
    )
    inp, out = _io()
    nodes = {"input": inp, "fc1": nir.Linear(W_IN), "block": block}
    nodes.update(fc2=nir.Linear(W_OUT), output=out)
    edges = [("input", "fc1"), ("fc1", "block"), ("block", "fc2"), ("fc2", "output")]
    return nir.NIRGraph(nodes, edges, metadata={"dt": DT}, type_check=False)


def _xs(steps=40, batch=5, seed=0):
    return torch.rand(steps, batch, 4, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- subgraphs


def test_a_two_level_subgraph_read_from_a_file_runs_as_its_flat_equivalent(tmp_path):
    nir.write(tmp_path / "nested.nir", _two_level_graph())
    nested = tn.load(tmp_path / "nested.nir")  # nir.read sorts the nodes by name
    flat = tn.load(_flat_graph())
    assert isinstance(nested, tn.NIRGraphNet) and "block.inner.rec" in nested.order
    xs = _xs()
    with torch.no_grad():
        ys_nested, rec_nested = nested.trace(xs, ["block.lif"])
        ys_flat, rec_flat = flat.trace(xs, ["lif"])
    assert rec_flat["lif"].sum() > 10 and ys_flat.abs().sum() > 0
    assert torch.equal(rec_nested["block.lif"], rec_flat["lif"])
    assert torch.equal(ys_nested, ys_flat)
    assert torch.equal(nested(xs)[0], ys_flat)  # forward as trace


def test_edges_may_name_a_subgraphs_input_or_output_node():
    graph = _two_level_graph()
    graph.edges = [("input", "fc1"), ("fc1", "block.input"), ("block.output", "fc2")]
    graph.edges.append(("fc2", "output"))
    with torch.no_grad():
        assert torch.equal(tn.load(graph)(_xs())[0], tn.load(_flat_graph())(_xs())[0])


# ------------------------------------------------------------------------- invalid graphs


def _broken(edges, **nodes):
    inp, out = _io(4, 3)
    base = {"input": inp, "fc": nir.Linear(W_IN), "lif": _lif(), "output": out}
    base.update(nodes)
    return nir.NIRGraph(base, edges, metadata={"dt": DT}, type_check=False)


CHAIN = [("input", "fc"), ("fc", "lif"), ("lif", "output")]


@pytest.mark.parametrize(
    "edges, nodes, message",
    [
        (CHAIN + [("lif", "rec")], {}, r"edge \('lif', 'rec'\): its dest node 'rec' does not"),
        (CHAIN + [("ghost", "lif")], {}, r"edge \('ghost', 'lif'\): its source node 'ghost'"),
        (CHAIN + [("fc", "lif")], {}, r"edge \('fc', 'lif'\) is listed twice"),
        (CHAIN + [("lif", "input")], {}, r"edge \('lif', 'input'\) leads into the Input"),
        (CHAIN + [("output", "fc")], {}, r"edge \('output', 'fc'\) leaves the Output"),
        (CHAIN + [("x", "lif")], {"x": nir.Linear(W_REC)}, r"\['x'\] have no incoming edge"),
        (
            CHAIN + [("lif", "a"), ("a", "b"), ("b", "a"), ("b", "lif")],
            {"a": nir.Linear(W_REC), "b": nir.Linear(W_REC)},
            r"nodes \['a', 'b'\] form a cycle without a neuron",
        ),
        ([("input", "fc", "x")] + CHAIN[1:], {}, "an edge is a pair of node names"),
        (
            CHAIN[:1] + [("fc", "d"), ("d", "lif")] + CHAIN[2:],
            {"d": nir.Delay(np.ones(3))},
            "node 'd': NIR Delay is not supported",
        ),
    ],
)
def test_an_invalid_graph_is_refused_at_once_naming_the_edge_or_node(edges, nodes, message):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        tn.load(_broken(edges, **nodes))
    assert time.perf_counter() - start < 5  # refused before anything runs (nirtorch hung)


def test_a_graph_without_input_or_with_two_is_refused():
    graph = nir.NIRGraph({"fc": nir.Linear(W_IN), "lif": _lif()}, [("fc", "lif")], type_check=False)
    with pytest.raises(ValueError, match="no Input node"):
        tn.load(graph, dt=DT)
    graph = _broken(CHAIN + [("in2", "fc")], in2=nir.Input(np.array([4])))
    with pytest.raises(ValueError, match=r"one Input and one Output, got inputs \['input', 'in2'"):
        tn.load(graph)


def test_a_subgraphs_inner_edge_is_named_with_its_subgraph(tmp_path):
    graph = _two_level_graph()
    graph.nodes["block"].nodes["inner"].edges[0] = ("input", "recc")
    with pytest.raises(ValueError, match=r"edge \('input', 'recc'\) in subgraph 'block.inner'"):
        tn.load(graph)


def test_a_subgraph_written_flat_with_dotted_names_reads_with_a_warning():
    """Early NIR exports stored a subgraph's nodes as 'sub.input', 'sub.lif', ... and edges
    that name 'sub' itself (the paper's early Braille graphs)."""
    inp, out = _io()
    nodes = {"input": inp, "fc1": nir.Linear(W_IN), "fc2": nir.Linear(W_OUT), "output": out}
    nodes.update({"block.input": nir.Input(np.array([3])), "block.lif": _lif()})
    nodes.update({"block.rec": nir.Affine(W_REC, B_REC), "block.output": nir.Output(np.array([3]))})
    edges = [("input", "fc1"), ("fc1", "block"), ("block", "fc2"), ("fc2", "output")]
    edges += [("block.input", "block.lif"), ("block.lif", "block.rec")]
    edges += [("block.rec", "block.lif"), ("block.lif", "block.output")]
    graph = nir.NIRGraph(nodes, edges, metadata={"dt": DT}, type_check=False)
    with pytest.warns(
        tn.NIRWarning,
        match=r"read as subgraphs written flat .*'block' as \['block.input', 'block.output'\]",
    ):
        net = tn.load(graph)
    with torch.no_grad():
        assert torch.equal(net(_xs())[0], tn.load(_flat_graph())(_xs())[0])


def test_a_loop_that_drives_itself_runs_without_the_input():
    """NIRTorch's feedback_graph.nir: Input -> Output, and a LIF <-> Affine loop whose bias
    drives it, read out into the Output; no path leads from the Input into the loop."""
    inp, out = _io(3, 3)
    nodes = {"input": inp, "lif": _lif(), "rec": nir.Affine(W_REC, B_REC + 0.5), "output": out}
    nodes["probe"] = nir.Linear(np.eye(3, dtype=np.float32))
    edges = [("input", "output"), ("lif", "rec"), ("rec", "lif"), ("lif", "probe")]
    net = tn.load(nir.NIRGraph(nodes, edges + [("probe", "output")], metadata={"dt": DT}))
    assert net.order.index("probe") < net.order.index("output")
    xs = torch.zeros(30, 2, 3)
    with torch.no_grad():
        ys, records = net.trace(xs, ["lif"])
    assert records["lif"].sum() > 0 and torch.equal(ys, records["lif"])


# ------------------------------------------------------------------------ nir's type check


def test_load_from_a_path_can_skip_nirs_type_check(tmp_path):
    graph = _flat_graph()
    graph.nodes["output"] = nir.Output(output_type=np.array([1, 1, 1]))  # as Rockpool wrote
    nir.write(tmp_path / "g.nir", graph)
    with pytest.raises(ValueError, match=r"type check refuses .* load\(path, type_check=False\)"):
        tn.load(tmp_path / "g.nir")
    net = tn.load(tmp_path / "g.nir", type_check=False)
    with torch.no_grad():
        assert torch.equal(net(_xs())[0], tn.load(_flat_graph())(_xs())[0])


def test_a_file_that_is_not_hdf5_is_refused(tmp_path):
    (tmp_path / "x.nir").write_bytes(b"PK\x03\x04 a torch.save archive")
    with pytest.raises(ValueError, match="is not a NIR file"):
        tn.load(tmp_path / "x.nir")


# ------------------------------------------------------------------ a cycle's first step


@pytest.mark.parametrize("delay_init", ["rest", "zero"])
def test_a_cycles_first_step_brings_the_resting_output_or_zero(delay_init):
    net = tn.load(_flat_graph(), delay_init=delay_init).double()
    xs = _xs(steps=25, batch=3).double()
    w_in, w_rec = torch.from_numpy(W_IN).double(), torch.from_numpy(W_REC).double()
    b_rec = torch.from_numpy(B_REC).double()
    v, z, zs = torch.zeros(3, 3, dtype=torch.float64), None, []
    for x in xs:  # Euler, dt/tau = 0.1, r = 10: v <- 0.9 v + input
        rec = (0 if delay_init == "zero" else b_rec) if z is None else z @ w_rec.T + b_rec
        v = 0.9 * v + (x @ w_in.T + rec)
        z = (v > 1).double()
        v = torch.where(z > 0, 0.0, v)
        zs.append(z)
    with torch.no_grad():
        _, records = net.trace(xs, ["lif"])
    assert torch.stack(zs).sum() > 10
    assert torch.equal(records["lif"], torch.stack(zs))


def test_the_two_first_steps_differ_by_the_bias_only():
    x = torch.zeros(5, 4)  # no input: the membrane holds what the cycle brought
    _, rest, _ = tn.load(_flat_graph()).step(x, None)
    _, zero, _ = tn.load(_flat_graph(), delay_init="zero").step(x, None)
    assert torch.equal(rest.neurons["lif"].v, 1.0 * torch.from_numpy(B_REC).expand(5, 3))
    assert torch.equal(zero.neurons["lif"].v, torch.zeros(5, 3))  # dt r / tau = 1
    with pytest.raises(ValueError, match="delay_init must be one of"):
        tn.load(_flat_graph(), delay_init="bias")


# ------------------------------------------------------------------------------------- dt


def _two_layers(tau1, r1, tau2, r2, n=3):
    inp, out = _io(4, n)
    nodes = {"input": inp, "fc1": nir.Linear(W_IN), "lif1": _lif(3, tau1, r1)}
    nodes.update(fc2=nir.Linear(np.eye(3, dtype=np.float32)), lif2=_lif(3, tau2, r2), output=out)
    names = list(nodes)
    return nir.NIRGraph(nodes, list(zip(names[:-1], names[1:], strict=True)))


def test_dt_is_inferred_when_two_time_constants_agree_on_tau_over_r():
    graph = _two_layers(0.01, 100.0, 0.004, 40.0)  # snnTorch-style r = tau / dt, dt = 1e-4
    with pytest.warns(tn.NIRWarning, match=r"dt = 0.0001 is inferred .* 2 different time"):
        net = tn.load(graph, probe=False)
    assert net.layers[1].dt == 1e-4


@pytest.mark.parametrize(
    "taus, reason",
    [
        ((0.01, 100.0, 0.01, 100.0), "one time constant alone cannot tell"),
        ((0.01, 1.0, 0.004, 1.0), "they disagree"),  # Norse-style r = 1
    ],
)
def test_dt_is_not_guessed_from_thin_evidence(taus, reason):
    with pytest.raises(ValueError, match=f"records no dt.*{reason}"):
        tn.load(_two_layers(*taus))


def test_a_recorded_or_given_dt_wins_over_inference():
    graph = _two_layers(0.01, 100.0, 0.004, 40.0)
    graph.metadata = {"dt": 2e-4}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tn.load(graph, probe=False).layers[1].dt == 2e-4
        assert tn.load(graph, dt=5e-5, probe=False).layers[1].dt == 5e-5
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        tn.load(graph, dt=-1.0)


def _if_chain(r=1.0, weight=1.0):
    inp, out = _io(4, 3)
    if_node = nir.IF(r=np.full(3, r), v_threshold=np.ones(3), v_reset=np.zeros(3))
    nodes = {"input": inp, "fc": nir.Linear(np.full((3, 4), weight, np.float32)), "if": if_node}
    nodes["output"] = out
    return nir.NIRGraph(nodes, CHAIN[:1] + [("fc", "if"), ("if", "output")])


def test_the_probe_warns_of_silent_and_saturated_layers():
    with pytest.warns(tn.NIRWarning, match=r"dt = 0.001 \(given\).* never spike: 'if'"):
        tn.load(_if_chain(), dt=1e-3)  # IF with r = 1 adds dt x: no tau to warn about
    with pytest.warns(tn.NIRWarning, match=r"spike almost every step: 'if' \(9\d% of steps\)"):
        tn.load(_if_chain(weight=100.0), dt=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tn.load(_if_chain(weight=0.3), dt=1.0)  # a few input spikes per output spike
        tn.load(_if_chain(), dt=1e-3, probe=False)
        graph = _if_chain()
        graph.metadata = {"dt": 1e-3}
        tn.load(graph)  # a recorded dt is not probed


# ------------------------------------------------------------------------ off-spec nodes


def _conv_flatten(start_dim, n_in=32):
    nodes = {
        "input": nir.Input(input_type=np.array([2, 4, 4])),
        "conv": nir.Conv2d(
            input_shape=(4, 4),
            weight=np.ones((2, 2, 1, 1), np.float32),
            stride=1,
            padding=0,
            dilation=1,
            groups=1,
            bias=np.zeros(2, np.float32),
        ),
        "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=start_dim),
        "fc": nir.Linear(np.ones((3, n_in), np.float32)),
        "output": nir.Output(output_type=np.array([3])),
    }
    names = list(nodes)
    edges = list(zip(names[:-1], names[1:], strict=True))
    return nir.NIRGraph(nodes, edges, metadata={"dt": DT}, type_check=False)


def test_a_torch_style_flatten_is_read_with_a_warning_or_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tn.load(_conv_flatten(0)).layers[1].start_dim == 1
    with pytest.warns(tn.NIRWarning, match=r"node 'flat': Flatten\(start_dim=1.*torch's"):
        net = tn.load(_conv_flatten(1))
    assert net.layers[1].start_dim == 1
    assert net(torch.ones(2, 5, 2, 4, 4))[0].shape == (2, 5, 3)
    with pytest.raises(ValueError, match=r"node 'flat'.*no reading of the dims fits"):
        tn.load(_conv_flatten(1, n_in=7))


def test_a_batch_dimension_in_the_inputs_type_is_read_with_a_warning():
    graph = _conv_flatten(0)
    graph.nodes["input"] = nir.Input(input_type=np.array([1, 2, 4, 4]))
    with pytest.warns(tn.NIRWarning, match=r"Input's type \[1, 2, 4, 4\] does not fit"):
        tn.load(graph)


def test_a_shape_error_is_raised_at_load_naming_the_node():
    graph = _conv_flatten(0)
    graph.nodes["conv"].weight = np.ones((2, 3, 1, 1), np.float32)  # 3 channels in, 2 come
    with pytest.raises(ValueError, match=r"node 'conv' \(Conv2d\) rejects its input of shape"):
        tn.load(graph)


# ------------------------------------------------------------------- running a graph net


def test_a_graph_net_continues_from_its_state_and_trains():
    net = tn.load(_flat_graph())
    xs = _xs(steps=30)
    with torch.no_grad():
        whole, _ = net(xs)
        first, state = net(xs[:12])
        second, _ = net(xs[12:], state)
    assert torch.equal(torch.cat([first, second]), whole)
    ys, _ = net(xs)
    ys.square().sum().backward()  # surrogate gradients through the cycle
    grads = {k: p.grad for k, p in net.named_parameters()}
    assert set(grads) == {
        "nodes.fc1.weight",
        "nodes.rec.weight",
        "nodes.rec.bias",
        "nodes.fc2.weight",
    }
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())
    with pytest.raises(ValueError, match=r"no nodes named \['nope'\]"):
        net.trace(xs, ["nope"])

"""The NIR paper's published graphs (tests/data/nir, see its README): each loads and runs as its
reference trace says, or is refused with a message that says why."""

import functools
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")
tn = pytest.importorskip("torchspike.nir")

DATA = Path(__file__).parent / "data" / "nir"
LIF_SPIKES = [460, 510, 710, 760]  # the exact simulation's spike steps


def _lif_trace(name: str) -> np.ndarray:
    """``[1000, 3]``: input spikes, membrane, output spikes."""
    return np.loadtxt(DATA / f"lif_{name}.csv", delimiter=",")


def _steps(spikes) -> list[int]:
    return np.nonzero(np.asarray(spikes).ravel())[0].tolist()


def _run_lif(path, **kwargs):
    net = tn.load(path, probe=False, **kwargs).double()
    xs = torch.from_numpy(_lif_trace("exact")[:, 0]).reshape(-1, 1, 1)
    with torch.no_grad():
        _, records = net.trace(xs)
    return records["1"]


# ------------------------------------------------------------------------------------- LIF


def test_the_paper_lif_graph_asks_for_its_dt_and_names_the_conventions():
    with pytest.raises(ValueError, match="records no dt") as err:
        tn.load(DATA / "lif_norse.nir")
    message = str(err.value)
    assert "one time constant alone cannot tell" in message  # tau / r = 2.5e-3 is no evidence
    assert "Norse" in message and "1e-4" in message and "docs/nir.md" in message


def test_the_paper_lif_graph_spikes_with_every_reference_at_its_dt():
    rec = _run_lif(DATA / "lif_norse.nir", dt=1e-4)
    assert _steps(rec["out"]) == LIF_SPIKES
    for name in ("exact", "norse", "snntorch", "nengo", "spinnaker2"):
        assert _steps(_lif_trace(name)[:, 2]) == LIF_SPIKES, name
    v = rec["v"].ravel().numpy()
    # Norse runs the same Euler step (in float32); the exact solution differs by Euler's error
    np.testing.assert_allclose(v, _lif_trace("norse")[:, 1], atol=1e-6)
    assert 0.005 < np.abs(v - _lif_trace("exact")[:, 1]).max() < 0.007


def test_the_peers_that_differ_on_the_lif_graph_differ_by_their_discretization():
    """Rockpool (and Sinabs) decay by exp(-dt/tau) but add the input as Euler does; Lava (and
    Spyx) spike one step later. Both reproduced here from torchspike's Euler trace."""
    rec = _run_lif(DATA / "lif_norse.nir", dt=1e-4)
    lava = _lif_trace("lava_cpu_float")
    assert _steps(lava[:, 2]) == [s + 1 for s in LIF_SPIKES]
    np.testing.assert_allclose(lava[1:, 1], rec["v"].ravel().numpy()[:-1], atol=1e-6)
    rockpool = _lif_trace("rockpool")
    xs, v, spikes = _lif_trace("exact")[:, 0], 0.0, []
    for x in xs:  # v <- exp(-dt/tau) v + dt/tau x, threshold 0.1, reset to 0
        v = np.exp(-0.04) * v + 0.04 * x
        spikes.append(v > 0.1)
        v = 0.0 if v > 0.1 else v
    assert _steps(spikes) == _steps(rockpool[:, 2]) == [450, 500, 710, 760]


def test_at_a_tenfold_dt_the_lif_graph_fires_at_every_input_spike():
    rec = _run_lif(DATA / "lif_norse.nir", dt=1e-3)  # the old hint for Norse graphs
    assert _steps(rec["out"]) == _steps(_lif_trace("exact")[:, 0])  # 34 spikes, not 4


def test_rockpools_reexport_needs_type_check_off_and_runs_its_own_parameters():
    with pytest.raises(ValueError, match=r"type check refuses .*type_check=False"):
        tn.load(DATA / "lif_rockpool.nir", dt=1e-4)
    rec = _run_lif(DATA / "lif_rockpool.nir", dt=1e-4, type_check=False)
    # Rockpool wrote weight 0.04 and r = 24.02: each input spike adds 0.0384, not 0.04
    assert _steps(rec["out"]) == [460, 520, 720, 780]


# ------------------------------------------------------------------------------------- CNN


def _cnn_input(steps=20, batch=2):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(steps, batch, 2, 34, 34, generator=g) < 0.3).float()


def test_the_sinabs_cnn_is_silent_at_a_physical_dt_and_warns_so():
    with pytest.raises(ValueError, match="records no dt.*Sinabs.*dt = 1"):
        tn.load(DATA / "cnn_sinabs.nir")
    for dt in (1e-3, 1e-4):
        with pytest.warns(tn.NIRWarning, match="never spike: '1', '3', '6', '10', '12'"):
            tn.load(DATA / "cnn_sinabs.nir", dt=dt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = tn.load(DATA / "cnn_sinabs.nir", dt=1.0)  # IF, r = 1: v += x, Sinabs's step
    with torch.no_grad():
        _, records = net.trace(_cnn_input())
    assert all(records[k]["out"].sum() > 0 for k in ("1", "3", "6", "10", "12"))


def test_an_older_cnn_export_with_a_torch_style_flatten_reads_with_a_warning():
    path = DATA / "scnn_mnist_8271249.nir"
    with pytest.raises(ValueError, match=r"type check refuses .*8.output: \[\[ 8 16\]\]"):
        tn.load(path, dt=1.0)
    with pytest.warns(tn.NIRWarning, match=r"node '8': Flatten\(start_dim=1.*torch's numbering"):
        old = tn.load(path, dt=1.0, type_check=False, probe=False)
    new = tn.load(DATA / "cnn_sinabs.nir", dt=1.0, probe=False)  # same weights, NIR numbering
    assert old.layers[8].start_dim == new.layers[8].start_dim == 1
    xs = _cnn_input()
    with torch.no_grad():
        assert torch.equal(old(xs)[0], new(xs)[0])


# --------------------------------------------------------------------------------- Braille


@functools.cache
def _braille_input() -> torch.Tensor:
    """``[256, 1, 12]``: the test sample, read from the figure's one-bit image (see README)."""
    spec = importlib.util.spec_from_file_location("braille_input", DATA / "braille_input.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return torch.tensor(module.read(), dtype=torch.float32).unsqueeze(1)


def _hidden(net, xs=None) -> np.ndarray:
    with torch.no_grad():
        _, records = net.trace(_braille_input() if xs is None else xs, ["lif1.lif"])
    return records["lif1.lif"][:, 0].numpy()


def test_the_braille_input_reads_from_the_figure():
    xs = _braille_input()
    assert xs.shape == (256, 1, 12) and int(xs.sum()) == 539


def test_the_braille_graphs_infer_their_dt_with_a_warning():
    with pytest.warns(tn.NIRWarning, match=r"dt = 0.0001 is inferred .* 3 different time"):
        net = tn.load(DATA / "braille_noDelay_bias_zero.nir", probe=False)
    assert net.module("lif1.lif").dt == 1e-4


@pytest.mark.parametrize("model", ["noDelay_bias_zero", "noDelay_noBias_subtract"])
def test_braille_hidden_layer_matches_norse_with_zero_delay_init(model):
    net = tn.load(DATA / f"braille_{model}.nir", dt=1e-4, delay_init="zero", probe=False)
    norse = np.load(DATA / f"norse_activity_{model}.npy")
    assert np.array_equal(_hidden(net), norse)


def test_braille_with_bias_matches_snntorch_with_rest_delay_init():
    """The recurrent Affine gives its bias at the first step (W 0 + b), as in snnTorch."""
    net = tn.load(DATA / "braille_noDelay_bias_zero.nir", dt=1e-4, probe=False)  # "rest"
    hidden = _hidden(net)
    assert np.array_equal(hidden, np.load(DATA / "snntorch_activity_noDelay_bias_zero.npy"))
    norse = np.load(DATA / "norse_activity_noDelay_bias_zero.npy")
    assert (hidden.sum(), norse.sum()) == (119, 118)
    assert _steps((hidden != norse).any(1))[0] == 2  # the missing bias shows from step 2


def test_braille_without_bias_cannot_match_snntorchs_subtractive_reset():
    """snnTorch trained it with reset by subtraction, which NIR cannot express (the graph
    records v_reset = 0): NIR's reading, torchspike's and Norse's, gives 103 spikes, not 118."""
    net = tn.load(DATA / "braille_noDelay_noBias_subtract.nir", dt=1e-4, probe=False)
    hidden = _hidden(net)
    snntorch = np.load(DATA / "snntorch_activity_noDelay_noBias_subtract.npy")
    assert (hidden.sum(), snntorch.sum()) == (103, 118)
    assert np.array_equal(hidden, np.load(DATA / "norse_activity_noDelay_noBias_subtract.npy"))


def _repaired(path: Path):
    """The subgraph file with its inner edges' ``lif`` renamed to the node's name, ``lif1``."""
    from nir.serialization import hdf2dict

    def build(data):
        if data["type"] != "NIRGraph":
            return nir.dict2NIRNode(data)
        nodes = {k: build(v) for k, v in data["nodes"].items()}
        edges = [tuple("lif1" if e == "lif" else e for e in _names(edge)) for edge in data["edges"]]
        return nir.NIRGraph(nodes, edges, metadata={}, type_check=False)

    with h5py.File(path, "r") as f:
        data = hdf2dict(f["node"])
    assert all("lif" not in _names(edge) for edge in data["edges"])  # only inner edges are off
    return build(data)


def _names(edge) -> list[str]:
    return [e.decode() if isinstance(e, bytes) else str(e) for e in edge]


@pytest.mark.parametrize("model", ["noDelay_bias_zero", "noDelay_noBias_subtract"])
def test_braille_subgraph_files_are_refused_naming_the_edge_then_run_like_the_flat_ones(model):
    path = DATA / f"braille_{model}_subgraph.nir"
    with pytest.raises(ValueError, match=r"Edge \('input', 'lif'\) references destination"):
        tn.load(path, dt=1e-4)  # nir's own check
    with pytest.raises(ValueError, match=r"edge \('input', 'lif'\) in subgraph 'lif1': its dest"):
        tn.load(path, dt=1e-4, type_check=False)  # torchspike's
    nested = tn.load(_repaired(path), dt=1e-4, probe=False)
    flat = tn.load(DATA / f"braille_{model}.nir", dt=1e-4, probe=False)
    xs = _braille_input()
    with torch.no_grad():
        ys_nested, nested_rec = nested.trace(xs, ["lif1.lif1"])
        ys_flat, flat_rec = flat.trace(xs, ["lif1.lif"])
    assert torch.equal(ys_nested, ys_flat) and ys_flat.sum() > 0
    assert torch.equal(nested_rec["lif1.lif1"], flat_rec["lif1.lif"])

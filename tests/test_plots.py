"""The run figures, checked through their matplotlib objects: layer names, density rasters for
wide and conv layers, legends in every membrane panel, every class ticked and the accuracy in
the confusion matrix's title, STDP's accuracy plot on a run shorter than two windows."""

import math

import pytest
import torch

pytest.importorskip("matplotlib")

from torchspike.app import plot  # noqa: E402


@pytest.fixture
def figures(monkeypatch, tmp_path):
    """Keep each figure the plot functions save (and write it, as they do)."""
    kept = []

    def save(fig, path):
        fig.savefig(tmp_path / "figure.png")
        kept.append(fig)
        return path

    monkeypatch.setattr(plot, "_save", save)
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


def spikes(*shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def test_view_keeps_narrow_layers_and_averages_wide_and_conv_ones():
    out = spikes(4, 10)
    rows, ylabel, per = plot.view(out)
    assert per == 0 and ylabel == "neuron" and torch.equal(rows, out)
    wide = spikes(4, 450)  # 3 per row, 150 rows
    rows, ylabel, per = plot.view(wide)
    assert per == 3 and rows.shape == (4, 150) and ylabel == "neuron (3 per row)"
    torch.testing.assert_close(rows[:, 7], wide[:, 21:24].mean(1))
    odd = spikes(4, 401)  # 3 per row: the last row holds the two neurons left
    rows, _, per = plot.view(odd)
    assert per == 3 and rows.shape == (4, 134)
    torch.testing.assert_close(rows[:, -1], odd[:, 399:].mean(1))
    conv = spikes(4, 5, 3, 3)
    rows, ylabel, per = plot.view(conv)
    assert per == 1 and rows.shape == (4, 5) and ylabel == "channel; fraction of its 9 positions"
    torch.testing.assert_close(rows[:, 2], conv[:, 2].reshape(4, -1).mean(1))


def test_layer_labels_name_hidden_and_output():
    assert plot.layer_labels(["2", "4"], {"2": "LIF", "4": "LIF"}) == {
        "2": "hidden (LIF, layer 2)",
        "4": "output (LIF, layer 4)",
    }
    assert list(plot.layer_labels(["1", "3", "5"]).values()) == [
        "hidden 1 (layer 1)",
        "hidden 2 (layer 3)",
        "output (layer 5)",
    ]


def test_rasters(figures, tmp_path):
    records = {
        "1": {"out": spikes(6, 2, 4, 5, 5)},  # conv: per channel
        "3": {"out": spikes(6, 2, 1000)},  # wide: density
        "5": {"out": spikes(6, 2, 10)},  # narrow: dots
        "6": {"out": torch.randn(6, 2, 10), "v": torch.randn(6, 2, 10)},  # membrane: not drawn
    }
    labels = plot.layer_labels(list(records), {n: "LIF" for n in records})
    plot.rasters(records, 2, tmp_path / "r.png", labels=labels, classes=torch.tensor([3, 7]))
    (fig,) = figures
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 6  # three spiking layers x two samples
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "hidden 1 (LIF, layer 1)\nsample 0 (class 3)"
    assert titles[3] == "hidden 2 (LIF, layer 3)\nsample 1 (class 7)"
    assert titles[5].startswith("hidden 3 (LIF, layer 5)")
    conv, wide, narrow = axes[0], axes[2], axes[4]
    assert conv.images and conv.get_ylabel().startswith("channel")
    assert wide.images and wide.get_ylabel() == "neuron (5 per row)"
    assert wide.images[0].get_array().shape == (200, 6)
    assert not narrow.images and narrow.collections  # dots
    assert [int(t) for t in narrow.get_yticks()] == list(range(10))


def test_membrane_has_a_legend_in_every_panel(figures, tmp_path):
    v = torch.randn(8, 3, 4)
    plot.membrane(v, v > 0.5, 0.5, torch.tensor([0, 2, 3]), tmp_path / "m.png")
    (fig,) = figures
    assert len(fig.axes) == 3
    for ax, label in zip(fig.axes, [0, 2, 3], strict=True):
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"{label} (class)" in texts and "x: spike" in texts and "v_th" in texts
    assert "x: a spike" in fig._suptitle.get_text()


def test_membrane_without_spikes_or_threshold_in_ms(figures, tmp_path):
    v = torch.randn(8, 2, 3)
    v[5:, 0, 1] = math.nan  # drawn up to a first spike
    plot.membrane(v, None, None, torch.tensor([1, 0]), tmp_path / "m.png", dt=1e-3, title="t")
    (fig,) = figures
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "x: spike" not in texts and "v_th" not in texts
    assert ax.get_xlabel() == "time (ms)" and ax.get_xlim() == pytest.approx((0, 8.0))


def test_confusion_ticks_every_class_and_titles_the_accuracy(figures, tmp_path):
    matrix = torch.diag(torch.full((20,), 5))
    matrix[3, 4] = 10  # 100 right out of 110
    plot.confusion(matrix, tmp_path / "c.png", title="shd test")
    (fig,) = figures
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(20)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(i) for i in range(20)]
    assert ax.get_title() == "shd test: accuracy 90.91% (100/110)"
    cells = [t for t in ax.texts]
    assert len(cells) == 400 and min(t.get_fontsize() for t in cells) >= 5
    assert {t.get_color() for t in cells if t.get_text() == "10"} == {"white"}  # dark cell


def test_stdp_accuracy_on_a_run_shorter_than_two_windows():
    from matplotlib.figure import Figure

    from torchspike.stdp.plot import accuracy

    final = {"label_accuracy_all": 0.6, "test_accuracy_all": 0.55, "test_accuracy_proportion": 0.6}
    ax = Figure().add_subplot()
    accuracy(torch.zeros(0, 4, dtype=torch.float64), ax, final=final, seen=1437)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        "labelling pass, all-neuron vote: 60.0%",
        "test, all-neuron vote: 55.0%",
        "test, proportion-weighted: 60.0%",
    ]
    assert [line.get_xdata()[0] for line in ax.lines] == [1437] * 3
    assert any("no training window scored" in t.get_text() for t in ax.texts)
    ax = Figure().add_subplot()  # the first window (no assignment yet, NaN) is left out
    history = torch.tensor([[100, math.nan, math.nan, 5], [200, 0.5, 0.6, 5], [300, 0.7, 0.7, 5]])
    accuracy(history.double(), ax)
    assert list(ax.lines[0].get_xdata()) == [200, 300]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([50, 70])
    assert not ax.texts


def test_stdp_eval_prints_the_confusion_matrix_of_its_accuracy(monkeypatch, capsys, tmp_path):
    """``torchspike eval`` of an STDP run: both read-outs' accuracies as the library computes
    them, and the confusion matrix of the all-neuron vote."""
    from torchspike.app.methods import stdp as app_stdp
    from torchspike.stdp import STDPConfig, evaluate
    from torchspike.stdp.state import new_state

    config = STDPConfig(n_neurons=6, eval_batch_size=16, params={"t_present": 50.0})
    state = new_state(config, (1, 4, 4), 3)
    state["weight"] = 3 * torch.rand(6, 16, generator=torch.Generator().manual_seed(1))
    state["assignment"] = torch.tensor([0, 1, 2, 0, 1, 2])
    state["proportions"] = torch.rand(6, 3)
    x = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    y = torch.arange(12) % 3
    monkeypatch.setattr(app_stdp, "load", lambda path: (state, config))
    monkeypatch.setattr(app_stdp.data, "load", lambda *args: (x, y))
    acc, matrix = app_stdp.evaluate_run(tmp_path, None, dataset="d", split="test", data_dir=None)
    expected = evaluate(state, config, (x, y))
    assert acc == pytest.approx(expected["test_accuracy_all"])
    assert matrix.shape == (3, 3) and int(matrix.sum()) == 12
    assert int(matrix.diagonal().sum()) == round(acc * 12)
    out = capsys.readouterr().out
    assert f"d test accuracy: {acc:.4f} (mean response" in out
    assert f"{expected['test_accuracy_proportion']:.4f} (proportion-weighted)" in out
    assert "confusion matrix of the mean-response read-out:" in out
    assert "true\\pred" in out and len(out.strip().splitlines()) == 2 + 1 + 3

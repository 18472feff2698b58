"""The application end to end on the embedded digits: train, eval, plot, export, interrupt,
resume, keep-best, the three methods."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from torchspike import files
from torchspike.app import cli, loop
from torchspike.app.config import BPTTConfig, EventPropConfig
from torchspike.app.load import build
from torchspike.app.progress import Interrupted
from torchspike.app.rundir import RunDir

SMALL = ["--dataset", "digits", "--hidden", "32", "--steps", "6", "--batch-size", "64"]


def _weights(run):
    return files.load_weights(run / "model.safetensors")


def _quiet(_):
    pass


def _fit(cfg, out, **kwargs):
    torch.manual_seed(cfg.seed)
    method, model = build(cfg)
    run = RunDir.create(out, overwrite=False) if not kwargs.get("resume") else RunDir(out)
    return loop.fit(cfg, method, model, loop.load_splits(cfg), run=run, log=_quiet, **kwargs)


def test_train_eval_plot(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, "--epochs", "2", "--out", str(run)]) == 0
    record = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert record["recipe"] == "digits" and record["overrides"]["hidden"] == [32]
    assert record["config"]["hidden"] == [32] and record["config"]["epochs"] == 2
    assert record["out"] == str(run.absolute()) and record["torchspike"]
    assert record["provenance"]["torch"] == torch.__version__
    assert record["result"]["test_accuracy"] == metrics["test_accuracy"]
    assert record["result"]["peak_memory_mib"] > 0
    assert len(metrics["epochs"]) == 2 and 0.5 < metrics["test_accuracy"] <= 1
    assert {"train_loss", "train_accuracy", "validation_accuracy", "lr"} <= set(
        metrics["epochs"][0]
    )
    capsys.readouterr()
    assert cli.main(["eval", str(run)]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy: {metrics['test_accuracy']:.4f}" in printed
    assert "true\\pred" in printed
    assert cli.main(["plot", str(run)]) == 0
    for name in ("curves", "raster", "membrane", "confusion"):
        png = run / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_interrupt_then_resume_equals_uninterrupted(tmp_path):
    cfg = BPTTConfig(dataset="digits", hidden=[32], steps=6, batch_size=64, epochs=3)
    cfg.encoding, cfg.schedule = "rate", "cosine"  # random input spikes: the RNG state matters
    _fit(cfg, tmp_path / "whole")

    def interrupt(epoch, batch):
        if (epoch, batch) == (1, 7):
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        _fit(cfg, tmp_path / "parted", on_batch=interrupt)
    assert not (tmp_path / "parted" / "model.safetensors").exists()
    state = files.load_checkpoint(tmp_path / "parted" / "checkpoint.pt")
    assert state["position"]["epoch"] == 1 and state["position"]["batch"] == 8
    _fit(cfg, tmp_path / "parted", resume=True)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "parted")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = [json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("whole", "parted")]
    assert [h["train_loss"] for h in history[0]["epochs"]] == [
        h["train_loss"] for h in history[1]["epochs"]
    ]


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    args = [*SMALL, "--hidden", "1000", "--steps", "50", "--epochs", "50", "--out", str(run)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchspike", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    line = proc.stdout.readline()  # "torchspike train: recipe digits ..."
    assert line.startswith("torchspike train: recipe digits"), line
    line = proc.stdout.readline()  # the first epoch summary: training is under way
    assert line.startswith("epoch 1/50"), line
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "checkpoint saved" in out and "Traceback" not in out
    state = files.load_checkpoint(run / "checkpoint.pt")
    assert state["position"]["epoch"] >= 1


def test_python_dash_m_and_errors(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "torchspike", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("torchspike ")
    done = subprocess.run(
        [sys.executable, "-m", "torchspike", "train", "--steps", "0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--steps must be an integer > 0, got 0" in done.stderr


def test_export_nir(tmp_path):
    nir = pytest.importorskip("nir")
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, "--hidden", "16", "--epochs", "1", "--out", str(run)]) == 0
    out = tmp_path / "model.nir"
    with pytest.warns(UserWarning, match="subtract"):
        assert cli.main(["export", str(run), "--format", "nir", str(out)]) == 0
    graph = nir.read(out)
    assert graph.metadata["dt"] == pytest.approx(1e-3)
    assert cli.main(["export", str(run), str(tmp_path / "strict.nir"), "--strict"]) == 2
    assert not (tmp_path / "strict.nir").exists()


@pytest.mark.parametrize("loss", ["ttfs", "max-voltage"])
def test_eventprop_method_end_to_end(tmp_path, loss):
    run = tmp_path / "ep"
    args = ["train", "--method", "eventprop", "--dataset", "digits", "--hidden", "16"]
    args += ["--loss", loss, "--epochs", "1", "--batch-size", "128", "--out", str(run)]
    if loss == "ttfs":
        args += ["--rescue-silent", "0.1"]
    assert cli.main(args) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["recipe"] == "eventprop-seed"  # eventprop's default recipe on image data
    assert record["config"]["method"] == "eventprop" and record["config"]["tau_syn"] == 5e-3
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert cli.main(["eval", str(run)]) == 0
    assert cli.main(["plot", str(run)]) == 0
    assert (run / "raster.png").exists()
    resume = ["train", "--out", str(run), "--epochs", "2", "--resume"]
    assert cli.main(resume) == 0
    assert len(json.loads((run / "metrics.json").read_text())["epochs"]) == 2


def test_stdp_method_end_to_end(tmp_path, capsys):
    run = tmp_path / "stdp"
    args = ["train", "--method", "stdp", "--dataset", "digits", "--n-neurons", "10"]
    args += ["--synapse", "current", "--out", str(run)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out  # the recipe's 60,000 labelling images: all there are, said
    assert "label_images 60000 is more than the 1437 training images of digits" in out
    record = json.loads((run / "config.json").read_text())
    cfg = record["config"]
    assert record["recipe"] == "diehl-cook-100" and cfg["n_neurons"] == 10
    assert cfg["batch_size"] == 64 and cfg["epochs"] == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.2 < metrics["test_accuracy"] <= 1.0  # chance is 0.1
    capsys.readouterr()
    assert cli.main(["eval", str(run)]) == 0
    assert f"{metrics['test_accuracy']:.4f} (mean response" in capsys.readouterr().out
    assert cli.main(["plot", str(run)]) == 0
    for name in ("receptive_fields", "assignments", "accuracy"):
        assert (run / f"{name}.png").stat().st_size > 3000
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "2", "--out", str(run), "--resume"]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["epochs"] == 2
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("train epoch 2/2: ") for line in lines)  # progress restarts


@pytest.mark.parametrize("flag, retained", [([], True), (["--release-memory"], False)])
def test_train_keeps_freed_memory_unless_asked(monkeypatch, tmp_path, flag, retained):
    import torchspike.kernels.allocator

    calls = []
    monkeypatch.setattr(
        torchspike.kernels.allocator, "retain_freed_memory", lambda: calls.append(1)
    )
    monkeypatch.setattr(cli, "_train", lambda *a, **k: 0)
    assert cli.main(["train", "--out", str(tmp_path / "run"), *flag]) == 0
    assert bool(calls) is retained


def test_keep_best_tests_and_saves_the_best_validation_epoch(tmp_path, monkeypatch):
    real, scores = loop.accuracy, []

    def accuracy(method, model, pair, cfg):  # the next scripted validation score, else real
        return scores.pop(0) if scores else real(method, model, pair, cfg)

    monkeypatch.setattr(loop, "accuracy", accuracy)
    base = dict(dataset="digits", hidden=[32], steps=6, batch_size=64, epochs=5, lr=0.05)
    cfg = BPTTConfig(**base, keep_best=True)
    scores[:] = [0.5, 0.7, 0.6, 0.65, 0.69]  # the best is epoch 2 of 5
    metrics = _fit(cfg, tmp_path / "best")
    val = [h["validation_accuracy"] for h in metrics["epochs"]]
    epoch = metrics["best_epoch"]
    assert val == [0.5, 0.7, 0.6, 0.65, 0.69] and epoch == 2
    assert 0 < metrics["test_accuracy"] <= 1  # the real score of the restored weights
    # the saved weights are those a run stopped after that epoch ends with, bit for bit
    scores[:] = [0.5, 0.7]
    _fit(BPTTConfig(**{**base, "epochs": epoch}), tmp_path / "short")
    a, b = _weights(tmp_path / "best"), _weights(tmp_path / "short")
    assert all(torch.equal(a[k], b[k]) for k in a)

    def interrupt(e, batch):  # an interrupted, resumed run keeps the same epoch
        if (e, batch) == (epoch, 2):  # after the best epoch was recorded
            raise KeyboardInterrupt

    scores[:] = [0.5, 0.7]
    with pytest.raises(Interrupted):
        _fit(cfg, tmp_path / "parted", on_batch=interrupt)
    scores[:] = [0.6, 0.65, 0.69]
    assert _fit(cfg, tmp_path / "parted", resume=True)["best_epoch"] == epoch
    c = _weights(tmp_path / "parted")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_eventprop_rescue_silent_raises_only_silent_outputs():
    from torchspike.app.distributed import Context
    from torchspike.app.methods.eventprop import EventProp

    cfg = EventPropConfig(dataset="digits", hidden=[], loss="ttfs", rescue_silent=0.25)
    method = EventProp()
    model = method.build(cfg, (64,), 3)
    before = model[-1].weight.detach().clone()
    # scores are -first-spike times; a neuron that never fired carries the window end
    scores = -torch.tensor([[5e-3, 20e-3, 8e-3], [6e-3, 7e-3, 8e-3]])
    method.after_step(model, scores, cfg, Context())
    change = model[-1].weight.detach() - before
    torch.testing.assert_close(change[1], torch.full_like(change[1], 0.25))  # silent in sample 0
    assert torch.equal(change[0], torch.zeros_like(change[0]))
    assert torch.equal(change[2], torch.zeros_like(change[2]))


def _nmnist_folder(root, per_class: int):
    """A tiny N-MNIST folder in the published layout: a class's events sit in its own rows."""
    from test_events import write_nmnist

    g = torch.Generator().manual_seed(0)
    for split, n in (("Train", per_class), ("Test", 1)):
        for label in range(10):
            for i in range(n):
                t = torch.sort(torch.randint(0, 290_000, (300,), generator=g)).values.tolist()
                x = torch.randint(0, 34, (300,), generator=g).tolist()
                y = [3 * label + int(v) for v in torch.randint(0, 3, (300,), generator=g)]
                p = torch.randint(0, 2, (300,), generator=g).tolist()
                write_nmnist(root, split, label, f"{i:05d}", list(zip(x, y, p, t, strict=True)))
    return root


@pytest.mark.parametrize(
    "method",
    [
        ["--recipe", "nmnist-conv", "--channels", "4", "8", "--hidden", "16", "--steps", "4"],
        ["--method", "eventprop", "--dataset", "n-mnist", "--hidden", "16", "--duration", "0.3"],
    ],
)
def test_event_data_trains_evaluates_and_plots(tmp_path, capsys, method):
    data_dir = _nmnist_folder(tmp_path / "nmnist", per_class=2)
    run = tmp_path / "run"
    args = ["train", *method, "--data-dir", str(data_dir), "--epochs", "2", "--batch-size", "10"]
    assert cli.main([*args, "--out", str(run)]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["recipe"] in ("nmnist-conv", "nmnist-eventprop")
    text = (run / "metrics.json").read_text()
    assert "NaN" not in text  # no validation split: null, which every JSON reader accepts
    metrics = json.loads(text)
    assert len(metrics["epochs"]) == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert all(e["validation_accuracy"] is None for e in metrics["epochs"])
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "val acc" not in out
    assert cli.main(["eval", str(run)]) == 0
    assert "n-mnist test accuracy" in capsys.readouterr().out
    assert cli.main(["plot", str(run)]) == 0
    for name in ("raster", "events"):
        assert (run / f"{name}.png").stat().st_size > 3000


def test_event_encodings_need_event_data(capsys):
    assert cli.main(["train", "--encoding", "frames"]) == 2
    assert "needs an event data set" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "n-mnist", "--data-dir", ".", "--encoding", "rate"]) == 2
    assert "for the event data set 'n-mnist'" in capsys.readouterr().err


def test_sew_arch_trains_and_its_export_is_refused_clearly(tmp_path, capsys):
    run = tmp_path / "sew"
    args = ["train", "--arch", "sew", "--channels", "4", "8", "--blocks", "1", "--steps", "3"]
    assert cli.main([*args, "--epochs", "1", "--out", str(run)]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["arch"] == "sew" and record["config"]["blocks"] == 1
    model, _ = __import__("torchspike").load_run(run)
    assert any(type(m).__name__ == "SEWBlock" for m in model.modules())
    capsys.readouterr()
    assert cli.main(["export", str(run), str(tmp_path / "sew.nir")]) == 2
    assert "SEWBlock" in capsys.readouterr().err
    assert cli.main(["train", "--arch", "sew", "--hidden", "10", "--out", str(tmp_path / "x")]) == 2
    assert cli.main(["train", "--blocks", "2", "--out", str(tmp_path / "y")]) == 2


def test_keep_best_without_a_validation_split_is_refused(tmp_path, capsys):
    data_dir = _nmnist_folder(tmp_path / "nmnist", per_class=1)
    run = tmp_path / "run"
    argv = ["train", "--recipe", "nmnist-eventprop", "--data-dir", str(data_dir), "--keep-best"]
    assert cli.main([*argv, "--out", str(run)]) == 2
    assert "keep_best needs a validation split" in capsys.readouterr().err
    assert not run.exists()

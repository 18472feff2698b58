"""The application end to end on the embedded digits: train, eval, plot, interrupt, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from torchspike import checkpoint, cli
from torchspike.config import Config
from torchspike.train import Interrupted, fit

SMALL = ["--dataset", "digits", "--hidden", "32", "--steps", "6", "--batch-size", "64"]


def _weights(run):
    return checkpoint.load_weights(run / "model.safetensors")


def test_train_eval_plot(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, "--epochs", "2", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["seed"] == 0 and config["hidden"] == [32] and "version" in config
    assert len(metrics["epochs"]) == 2 and 0.5 < metrics["test_accuracy"] <= 1
    assert {"train_loss", "train_accuracy", "validation_accuracy"} <= set(metrics["epochs"][0])
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
    base = Config(dataset="digits", hidden=[32], steps=6, batch_size=64, epochs=3, encoding="rate")
    whole = Config(**{**base.to_dict(), "out": str(tmp_path / "whole")})
    fit(whole, log=lambda _: None)

    parted = Config(**{**base.to_dict(), "out": str(tmp_path / "parted")})

    def interrupt(epoch, batch):
        if (epoch, batch) == (1, 7):
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        fit(parted, log=lambda _: None, on_batch=interrupt)
    assert not (tmp_path / "parted" / "model.safetensors").exists()
    state = checkpoint.load_checkpoint(tmp_path / "parted" / "checkpoint.pt")
    assert state["position"]["epoch"] == 1 and state["position"]["batch"] == 8
    fit(parted, resume=True, log=lambda _: None)
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
    line = proc.stdout.readline()  # the first epoch summary: training is under way
    assert line.startswith("epoch 1/50"), line
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "checkpoint saved" in out and "Traceback" not in out
    state = checkpoint.load_checkpoint(run / "checkpoint.pt")
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
    assert done.returncode == 2 and "steps must be an integer > 0, got 0" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "torchspike", "eval", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "no config.json" in done.stderr


def test_export_nir(tmp_path):
    nir = pytest.importorskip("nir")
    run = tmp_path / "run"
    base = Config(dataset="digits", hidden=[16], steps=4, epochs=1, out=str(run))
    fit(base, log=lambda _: None)
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
    assert cli.main([*args, "--rescue-silent", "0.1"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "eventprop" and config["extra"]["tau_syn"] == 5e-3
    assert config["extra"]["rescue_silent"] == 0.1
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert cli.main(["eval", str(run)]) == 0
    assert cli.main(["plot", str(run)]) == 0
    assert (run / "raster.png").exists()
    assert cli.main([*args[:-1], str(run), "--epochs", "2", "--resume"]) == 0
    assert len(json.loads((run / "metrics.json").read_text())["epochs"]) == 2


def test_stdp_method_end_to_end(tmp_path, capsys):
    run = tmp_path / "stdp"
    args = ["train", "--method", "stdp", "--dataset", "digits", "--n-neurons", "10"]
    args += ["--synapse", "current", "--out", str(run)]
    assert cli.main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "stdp" and config["extra"]["n_neurons"] == 10
    assert config["batch_size"] == 64 and config["epochs"] == 1  # stdp's defaults
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.2 < metrics["test_accuracy"] <= 1.0  # chance is 0.1
    capsys.readouterr()
    assert cli.main(["eval", str(run)]) == 0
    assert f"{metrics['test_accuracy']:.4f} (proportion vote)" in capsys.readouterr().out
    assert cli.main(["plot", str(run)]) == 0
    for name in ("receptive_fields", "assignments", "accuracy"):
        assert (run / f"{name}.png").stat().st_size > 3000
    capsys.readouterr()
    assert cli.main([*args[:-2], "--epochs", "2", "--out", str(run), "--resume"]) == 0
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("train epoch 2/2: ") for line in lines)  # progress restarts


@pytest.mark.parametrize("flag, retained", [([], True), (["--release-memory"], False)])
def test_train_keeps_freed_memory_unless_asked(monkeypatch, tmp_path, flag, retained):
    import torchspike.allocator
    import torchspike.train

    calls = []
    monkeypatch.setattr(torchspike.allocator, "retain_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(torchspike.train, "fit", lambda cfg, resume: None)
    assert cli.main(["train", "--dataset", "digits", "--out", str(tmp_path), *flag]) == 0
    assert bool(calls) is retained


def test_keep_best_tests_and_saves_the_best_validation_epoch(tmp_path, monkeypatch):
    import torchspike.train

    real, scores = torchspike.train.accuracy, []

    def accuracy(method, model, x, y, cfg):  # the next scripted validation score, else real
        return scores.pop(0) if scores else real(method, model, x, y, cfg)

    monkeypatch.setattr(torchspike.train, "accuracy", accuracy)
    base = Config(dataset="digits", hidden=[32], steps=6, batch_size=64, epochs=5, lr=0.05)
    base.schedule, base.keep_best = "none", True
    best = Config(**{**base.to_dict(), "out": str(tmp_path / "best")})
    scores[:] = [0.5, 0.7, 0.6, 0.65, 0.69]  # the best is epoch 2 of 5
    metrics = fit(best, log=lambda _: None)
    val = [h["validation_accuracy"] for h in metrics["epochs"]]
    epoch = metrics["best_epoch"]
    assert val == [0.5, 0.7, 0.6, 0.65, 0.69] and epoch == 2
    assert 0 < metrics["test_accuracy"] <= 1  # the real score of the restored weights
    # the saved weights are those a run stopped after that epoch ends with, bit for bit
    short = Config(**{**base.to_dict(), "out": str(tmp_path / "short")})
    short.epochs, short.keep_best = epoch, False
    scores[:] = [0.5, 0.7]
    fit(short, log=lambda _: None)
    a, b = _weights(tmp_path / "best"), _weights(tmp_path / "short")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and an interrupted, resumed run keeps the same epoch
    parted = Config(**{**base.to_dict(), "out": str(tmp_path / "parted")})

    def interrupt(e, batch):
        if (e, batch) == (epoch, 2):  # after the best epoch was recorded
            raise KeyboardInterrupt

    scores[:] = [0.5, 0.7]
    with pytest.raises(Interrupted):
        fit(parted, log=lambda _: None, on_batch=interrupt)
    scores[:] = [0.6, 0.65, 0.69]
    assert fit(parted, resume=True, log=lambda _: None)["best_epoch"] == epoch
    c = _weights(tmp_path / "parted")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_eventprop_rescue_silent_raises_only_silent_outputs():
    from torchspike.distributed import Context
    from torchspike.methods import EventProp

    cfg = Config(method="eventprop", dataset="digits", hidden=[], loss="ttfs", encoding="latency")
    cfg.extra = {"duration": 20e-3, "rescue_silent": 0.25}
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
    cfg.loss = "max-voltage"  # only the first-spike loss has silent outputs to rescue
    method.after_step(model, scores, cfg, Context())
    assert torch.equal(model[-1].weight.detach() - before, change)


def test_per_method_defaults():
    parser = cli.build_parser()
    got = {
        m: cli._config(parser.parse_args(["train", "--method", m]))
        for m in ("bptt", "eventprop", "stdp")
    }
    pick = {m: (c.loss, c.encoding, c.hidden, c.lr, c.batch_size, c.epochs) for m, c in got.items()}
    assert pick == {
        "bptt": ("ce-membrane", "direct", [1000], 2e-3, 128, 15),
        "eventprop": ("max-voltage", "latency", [350], 5e-3, 128, 15),
        "stdp": ("none", "rate", [], 0.0, 64, 1),
    }
    given = cli._config(parser.parse_args(["train", "--method", "stdp", "--epochs", "3"]))
    assert given.epochs == 3
    for spelling in ("sum-exp", "sum_exp"):  # the documented spelling and the underscore one
        args = parser.parse_args(["train", "--method", "eventprop", "--loss", spelling])
        assert cli._config(args).loss == spelling

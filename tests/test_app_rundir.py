"""Run directories you can trust (issue #13, item 3): resume continues the folder it is given,
extends a finished run, refuses changed settings; new runs never clobber a folder; paths are
stored absolute; stray temporaries go; files follow the umask; 0.1 runs still load."""

import datetime
import json
import math
import os
import re
import shutil
import types
from pathlib import Path

import pytest
import torch

import torchspike
from torchspike import encode, files
from torchspike.app import cli, rundir
from torchspike.app.config import BPTTConfig
from torchspike.app.load import build

TINY = ["--dataset", "digits", "--hidden", "16", "--steps", "4", "--batch-size", "256"]


def _train(out, *flags: str, epochs: int = 1) -> int:
    argv = ["train", *TINY, "--epochs", str(epochs), "--threads", "1", *flags]
    return cli.main([*argv, "--out", str(out)] if out is not None else argv)


def _resume(out, *flags: str) -> int:
    return cli.main(["train", "--resume", "--out", str(out), "--threads", "1", *flags])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _record(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return files.load_weights(run / "model.safetensors")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 1-epoch run (cosine schedule, from the digits recipe); copy it to change it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert _train(run) == 0
    return run


@pytest.fixture
def copy(finished, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    return out


def test_resume_continues_the_out_given_not_the_one_in_config_json(finished, copy, capsys):
    before = _snapshot(finished)
    assert _record(copy)["out"] == str(finished)
    assert _resume(copy, "--epochs", "2") == 0
    assert f"resuming {copy}" in capsys.readouterr().out
    assert len(_metrics(copy)["epochs"]) == 2
    assert _record(copy)["out"] == str(copy)  # the record says where the run now is
    assert _snapshot(finished) == before


def test_relative_out_resolves_against_the_cwd(finished, tmp_path, monkeypatch):
    shutil.copytree(finished, tmp_path / "rel")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(finished, elsewhere / "rel")
    monkeypatch.chdir(elsewhere)
    before = _snapshot(tmp_path / "rel")
    assert _resume("rel", "--epochs", "2") == 0
    assert len(_metrics(elsewhere / "rel")["epochs"]) == 2
    assert _record(elsewhere / "rel")["out"] == str(elsewhere / "rel")
    assert _snapshot(tmp_path / "rel") == before


def test_extending_a_cosine_run_follows_the_schedule_of_its_new_length(copy, capsys):
    assert _resume(copy, "--epochs", "3") == 0
    out = capsys.readouterr().out
    assert "resume: epochs 1 -> 3 (the cosine schedule now spans 3 epochs" in out
    lr = _record(copy)["config"]["lr"]
    got = [e["lr"] for e in _metrics(copy)["epochs"]]
    want = [lr * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert got == pytest.approx(want, rel=1e-12)
    record = _record(copy)
    assert record["config"]["epochs"] == 3
    assert record["resumes"][-1]["changes"] == {"epochs": [1, 3]}


def test_extended_run_equals_a_run_of_that_length_bit_for_bit(tmp_path):
    flags = ("--schedule", "none", "--encoding", "rate")  # rate: random input, the RNG matters
    assert _train(tmp_path / "whole", *flags, epochs=2) == 0
    assert _train(tmp_path / "extended", *flags, epochs=1) == 0
    assert _resume(tmp_path / "extended", "--epochs", "2") == 0
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "extended")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ma, mb = _metrics(tmp_path / "whole"), _metrics(tmp_path / "extended")
    for key in ("train_loss", "train_accuracy", "validation_accuracy", "lr"):
        assert [e[key] for e in ma["epochs"]] == [e[key] for e in mb["epochs"]], key
    assert ma["test_accuracy"] == mb["test_accuracy"]
    ca = files.load_checkpoint(tmp_path / "whole" / "checkpoint.pt")
    cb = files.load_checkpoint(tmp_path / "extended" / "checkpoint.pt")
    assert torch.equal(ca["rng"], cb["rng"]) and ca["position"] == cb["position"]


def test_a_changed_setting_is_refused_naming_the_flag(copy, capsys):
    before = _snapshot(copy)
    assert _resume(copy, "--epochs", "2", "--lr", "0.01") == 2
    err = _error(capsys)
    assert "--lr cannot change when resuming" in err and "0.002" in err
    assert _snapshot(copy) == before
    assert _resume(copy, "--epochs", "2", "--hidden", "32") == 2
    assert "--hidden cannot change when resuming" in _error(capsys)
    assert _resume(copy, "--epochs", "2", "--lr", "0.002") == 0  # the same value is no change


def test_allowed_changes_are_applied_and_reported(copy, tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    flags = ("--epochs", "2", "--device", "cpu", "--data-dir", "data")
    assert _resume(copy, *flags) == 0
    out = capsys.readouterr().out
    assert "resume: epochs 1 -> 2" in out
    assert f"resume: data_dir None -> '{tmp_path / 'data'}'" in out
    config = _record(copy)["config"]
    assert config["epochs"] == 2 and config["device"] == "cpu"
    assert config["data_dir"] == str(tmp_path / "data")
    assert _resume(copy, "--epochs", "3", "--data-dir", "data") == 0  # the same folder, relative
    assert "data_dir" not in capsys.readouterr().out
    assert _record(copy)["resumes"][-1]["changes"] == {"epochs": [2, 3]}


def test_resume_needs_a_checkpoint(copy, capsys):
    (copy / "checkpoint.pt").unlink()
    assert _resume(copy, "--epochs", "2") == 2
    assert f"--resume: no checkpoint in {copy} (checkpoint.pt)" in _error(capsys)


def test_resume_of_a_finished_run_says_how_to_extend(copy, capsys):
    before = _snapshot(copy)
    assert _resume(copy) == 2
    err = _error(capsys)
    assert "has finished its 1 epochs" in err and "--epochs N (> 1)" in err
    assert _resume(copy, "--epochs", "1") == 2
    assert "--epochs N (> 1)" in _error(capsys)
    assert _snapshot(copy) == before


def test_resume_needs_out(capsys):
    assert cli.main(["train", "--resume", "--epochs", "2"]) == 2
    assert "--resume needs --out" in _error(capsys)


def test_a_new_run_never_clobbers_a_folder(copy, capsys):
    (copy / "notes.txt").write_text("mine")
    (copy / "curves.png").write_bytes(b"old figure")
    before = _snapshot(copy)
    assert _train(copy) == 2
    err = _error(capsys)
    assert f"--out {copy} is not empty" in err and "--overwrite" in err and "--resume" in err
    assert _snapshot(copy) == before
    assert _train(copy, "--overwrite", "--seed", "1") == 0
    assert (copy / "notes.txt").read_text() == "mine"  # not a run file: kept
    assert not (copy / "curves.png").exists()  # the old run's figure: gone
    assert _record(copy)["config"]["seed"] == 1
    assert _record(copy)["out"] == str(copy)


def test_default_out_is_unique_even_within_one_second(tmp_path, monkeypatch, capsys):
    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(rundir, "datetime", types.SimpleNamespace(datetime=Frozen))
    monkeypatch.chdir(tmp_path)
    assert _train(None) == 0
    assert _train(None) == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["digits-bptt-20260102-030405", "digits-bptt-20260102-030405-2"]
    for name in runs:
        record = _record(tmp_path / "runs" / name)
        assert record["out"] == str(tmp_path / "runs" / name)
        assert (tmp_path / "runs" / name / "model.safetensors").exists()
    # the name is taken when it is chosen, so a run starting beside this one cannot share it
    chosen = [rundir.default_out("digits", "bptt") for _ in range(2)]
    assert [p.name for p in chosen] == [f"{runs[0]}-3", f"{runs[0]}-4"]
    assert all(p.is_dir() for p in chosen)


def test_paths_are_stored_absolute(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _train("rel", "--data-dir", "data") == 0
    record = _record(tmp_path / "rel")
    assert record["out"] == str(tmp_path / "rel")
    assert record["config"]["data_dir"] == str(tmp_path / "data")


def test_stray_temporaries_are_removed(copy, capsys):
    strays = [copy / ".checkpoint.pt.abcd1234.tmp", copy / ".config.json.0f0f0f0f.tmp"]
    for stray in strays:
        stray.write_bytes(b"half a file")
    assert cli.main(["eval", str(copy)]) == 0  # opening a run cleans up
    assert not any(stray.exists() for stray in strays)
    strays[0].write_bytes(b"half a file")
    assert _resume(copy, "--epochs", "2") == 0
    assert not strays[0].exists()
    assert not [p.name for p in copy.iterdir() if p.name.endswith(".tmp")]


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert _train(tmp_path / "run") == 0
        assert _resume(tmp_path / "run", "--epochs", "2") == 0
    finally:
        os.umask(old)
    for name in ("config.json", "metrics.json", "model.safetensors", "checkpoint.pt"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o640, name


def _legacy_run(folder: Path) -> Path:
    """A run directory as torchspike 0.1 wrote it: a flat config.json, weights, a checkpoint."""
    folder.mkdir()
    old = {
        "method": "bptt",
        "dataset": "digits",
        "data_dir": None,
        "arch": "fc",
        "hidden": [16],
        "channels": [32, 64],
        "neuron": "lif",
        "readout": "lif",
        "loss": "ce-membrane",
        "steps": 4,
        "beta": 0.9,
        "encoding": "direct",
        "surrogate": "atan",
        "dropout": 0.0,
        "epochs": 1,
        "batch_size": 256,
        "lr": 0.002,
        "weight_decay": 0.0,
        "schedule": "cosine",
        "keep_best": False,
        "seed": 0,
        "device": "cpu",
        "out": "runs/somewhere-else",
        "version": "0.1.0",
        "extra": {},
    }
    (folder / "config.json").write_text(json.dumps(old, indent=2))
    cfg = BPTTConfig(dataset="digits", hidden=[16], steps=4, beta=0.9, epochs=1, batch_size=256)
    torch.manual_seed(3)
    _, model = build(cfg)
    files.save_weights(folder / "model.safetensors", model.state_dict())
    files.save_checkpoint(folder / "checkpoint.pt", {"model": model.state_dict(), "epoch": 1})
    return folder


def test_a_run_of_torchspike_0_1_loads_but_does_not_resume(tmp_path, capsys):
    run = _legacy_run(tmp_path / "old")
    assert cli.main(["eval", str(run)]) == 0
    assert "digits test accuracy: " in capsys.readouterr().out
    model, cfg = torchspike.load_run(run)
    assert cfg.hidden == [16] and cfg.steps == 4 and cfg.schedule == "cosine"
    saved = files.load_weights(run / "model.safetensors")
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    before = _snapshot(run)
    assert _resume(run, "--epochs", "2") == 2
    err = _error(capsys)
    assert "written by torchspike 0.1.0" in err and "eval, plot and export still work" in err
    assert _snapshot(run) == before


def test_load_run_gives_the_accuracy_eval_prints(finished, capsys):
    capsys.readouterr()
    assert cli.main(["eval", str(finished)]) == 0
    printed = capsys.readouterr().out
    correct, total = map(int, re.search(r"\((\d+)/(\d+)\)", printed).groups())
    model, cfg = torchspike.load_run(finished)
    assert cfg.hidden == [16] and not model.training
    x, y = torchspike.data.load("digits", "test")
    with torch.no_grad():
        out, _ = model(encode.direct(x, cfg.steps))
    pred = out.sum(0).argmax(1)
    assert (int((pred == y).sum()), len(y)) == (correct, total)

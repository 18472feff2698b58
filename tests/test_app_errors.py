"""Clear messages (issue #13, item 5): every mistake of the user's exits with status 2 and ONE
line on stderr that names the flag or the file, never a traceback, and writes nothing."""

import gzip
import hashlib
import json
import shutil
import struct

import numpy as np
import pytest

from torchspike import files
from torchspike.app import cli
from torchspike.data import idx

TINY = ["--dataset", "digits", "--hidden", "16", "--steps", "4", "--batch-size", "256"]
TRAIN = ["train", *TINY, "--epochs", "1", "--threads", "1"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size must be an integer > 0, got 0"),
        (["--hidden", "-3"], "--hidden sizes must be integers > 0, got [-3]"),
        (["--arch", "conv", "--channels", "0"], "--channels sizes must be integers > 0, got [0]"),
        (["--device", "mps"], "--device must be cpu, cuda or cuda:N, got 'mps'"),
        (["--device", "gpu"], "--device must be cpu, cuda or cuda:N, got 'gpu'"),
        (["--device", "tpu"], "--device must be cpu, cuda or cuda:N, got 'tpu'"),
        (["--device", "cuda:x"], "--device must be cpu, cuda or cuda:N, got 'cuda:x'"),
        (["--epochs", "0"], "--epochs must be an integer > 0, got 0"),
        (["--epochs", "-2"], "--epochs must be an integer > 0, got -2"),
        (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["--lr", "nan"], "--lr must be a finite number, got nan"),
        (["--beta", "2"], "--beta must be in [0, 1], got 2.0"),
        (["--threads", "-1"], "--threads must be an integer >= 0, got -1"),
        (["--dropout", "0.2", "--arch", "fc"], "--dropout does nothing with arch 'fc'"),
        (["--neuron", "if", "--arch", "conv"], "--neuron does nothing with arch 'conv'"),
        (["--recipe", "nope"], "--recipe: no recipe 'nope'; known: "),
        (["--config", "missing.toml"], "--config: cannot read missing.toml"),
        (["--recipe", "tutorial5", "--method", "eventprop"], "--method eventprop conflicts"),
        (["--hidden"], "argument --hidden: expected at least one argument"),
        (["--batch-size", "1.5"], "argument --batch-size: invalid int value: '1.5'"),
    ],
)
def test_bad_flags(refused, tmp_path, flags, message):
    out = tmp_path / "out"
    err = refused([*TRAIN, "--out", str(out), *flags])
    assert message in err
    assert not out.exists()


def test_a_flag_of_another_method(refused, tmp_path):
    argv = ["train", "--loss", "ttfs", "--method", "stdp", "--out", str(tmp_path / "out")]
    assert "--loss does nothing with --method stdp" in refused(argv)
    assert not (tmp_path / "out").exists()


def test_cuda_without_cuda(refused, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = refused([*TRAIN, "--out", str(tmp_path / "out"), "--device", "cuda"])
    assert "--device 'cuda' asked for, but CUDA is not available here" in err
    assert not (tmp_path / "out").exists()


def test_a_cuda_device_this_machine_lacks(refused, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    err = refused([*TRAIN, "--out", str(tmp_path / "out"), "--device", "cuda:1"])
    assert "--device 'cuda:1' asked for, but this machine has 1 CUDA device (cuda:0 to" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["model.safetensors", "checkpoint.pt"])
@pytest.mark.parametrize("command", ["eval", "plot", "export", "resume"])
def test_a_run_file_that_is_a_folder(refused, run, tmp_path, name, command):
    (run / name).unlink()
    (run / name).mkdir()
    argv = {
        "export": ["export", str(run), str(tmp_path / "m.nir")],
        "resume": ["train", "--resume", "--out", str(run), "--epochs", "2"],
    }.get(command, [command, str(run)])
    assert f"{run / name} is not a file" in refused(argv)


def test_out_under_a_file(refused, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    err = refused([*TRAIN, "--out", str(tmp_path / "file" / "x")])
    assert f"--out {tmp_path / 'file' / 'x'}: {tmp_path / 'file'} is a file, not a folder" in err


@pytest.mark.parametrize(
    "content, name",
    [
        (b"", "settings.toml"),  # an empty file is a valid TOML document: the defaults
        (b"hidden = [16\n", "bad.toml"),
        (b"[settings]\nhiden = [16]\n", "unknown.toml"),
        (b'[settings]\nbeta = "big"\n', "typed.toml"),
        (b"hidden = [16] # caf\xe9\n", "latin1.toml"),
    ],
)
def test_bad_config_files(refused, tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    argv = [*TRAIN, "--config", str(path), "--out", str(tmp_path / "out")]
    if name == "settings.toml":
        assert cli.main(argv) == 0
        return
    err = refused(argv)
    assert str(path) in err
    expected = {
        "bad.toml": "is not valid TOML",
        "unknown.toml": "unknown settings for method 'bptt': ['hiden']",
        "typed.toml": "beta must be a number, got 'big'",
        "latin1.toml": "is not UTF-8 text",
    }
    assert expected[name] in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_checkpoint_on_resume(refused, run, damage):
    path = run / "checkpoint.pt"
    whole = path.read_bytes()
    damaged = {"truncated": whole[: len(whole) // 2], "garbage": b"\x00\xffgarbage" * 50}
    path.write_bytes(damaged.get(damage, b""))
    config = (run / "config.json").read_bytes()
    err = refused(["train", "--resume", "--out", str(run), "--epochs", "2"])
    assert f"{path} is not a readable checkpoint" in err and "--overwrite" in err
    assert (run / "config.json").read_bytes() == config  # nothing recorded for a failed resume


def test_checkpoint_of_another_model_on_resume(refused, run, tmp_path):
    other = tmp_path / "other"
    assert cli.main([*TRAIN, "--hidden", "8", "--out", str(other)]) == 0
    shutil.copy(other / "checkpoint.pt", run / "checkpoint.pt")
    err = refused(["train", "--resume", "--out", str(run), "--epochs", "2"])
    assert f"{run / 'checkpoint.pt'} does not fit the model of {run / 'config.json'}" in err


def test_incomplete_checkpoint_on_resume(refused, run):
    state = files.load_checkpoint(run / "checkpoint.pt")
    del state["rng"], state["history"]
    files.save_checkpoint(run / "checkpoint.pt", state)
    err = refused(["train", "--resume", "--out", str(run), "--epochs", "2"])
    assert f"{run / 'checkpoint.pt'} lacks rng, history: not a checkpoint of a torchspike" in err


@pytest.mark.parametrize("command", ["eval", "plot", "export"])
def test_truncated_weights(refused, run, tmp_path, command):
    path = run / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    argv = [command, str(run)] + ([str(tmp_path / "model.nir")] if command == "export" else [])
    err = refused(argv)
    assert f"{path} is not readable safetensors weights" in err
    assert not (tmp_path / "model.nir").exists() and not (run / "raster.png").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["config"].update(hidden="big"), "config.json: hidden must be a list"),
        (lambda r: r["config"].update(steps="4"), "config.json: steps must be an integer, got '4'"),
        (lambda r: r["config"].update(hidden=[16.0]), "hidden[0] must be an integer, got 16.0"),
        (lambda r: r["config"].update(bogus=1), "config.json: unknown settings"),
        (lambda r: r.update(config="x"), 'config.json: "config" must be a table of settings'),
        (lambda r: r.update(format=3), "config.json has format 3; this torchspike"),
        (lambda r: r["config"].update(method=["bptt"]), "config.json: method must be one of"),
        (lambda r: r.update(resumes="x"), 'config.json: "resumes" must be a list, got str'),
    ],
)
def test_config_json_with_wrong_types(refused, run, edit, message):
    record = json.loads((run / "config.json").read_text())
    edit(record)
    (run / "config.json").write_text(json.dumps(record))
    assert message in refused(["eval", str(run)])


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"format": 2, "config": {', "config.json is not valid JSON (line 1, column 26"),
        (b"", "config.json is not valid JSON"),
        (b"[1, 2]", "config.json holds a JSON list, not an object"),
        (b"\xff\xfe", "config.json is not UTF-8 text"),
    ],
)
def test_config_json_that_is_not_json(refused, run, content, message):
    (run / "config.json").write_bytes(content)
    assert message in refused(["eval", str(run)])
    assert message in refused(["train", "--resume", "--out", str(run), "--epochs", "2"])


def test_plot_samples(refused, run):
    err = refused(["plot", str(run), "--samples", "500"])
    assert "--samples must be between 1 and 16, got 500" in err
    err = refused(["plot", str(run), "--samples", "0"])
    assert "--samples must be between 1 and 16, got 0" in err
    assert not (run / "raster.png").exists()


def test_plot_out_under_a_file(refused, run, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    err = refused(["plot", str(run), "--out", str(tmp_path / "file" / "x")])
    assert f"--out {tmp_path / 'file' / 'x'}: {tmp_path / 'file'} is a file, not a folder" in err


@pytest.mark.parametrize("dt", ["0", "-1", "nan", "inf"])
def test_export_dt(refused, run, tmp_path, dt):
    out = tmp_path / "model.nir"
    err = refused(["export", str(run), str(out), "--dt", dt])
    assert "--dt must be a finite time step > 0 (seconds)" in err
    assert not out.exists()


def test_export_dt_that_overflows_the_time_constants(refused, run, tmp_path):
    pytest.importorskip("nir")
    out = tmp_path / "model.nir"
    err = refused(["export", str(run), str(out), "--dt", "1e308"])
    assert "--dt 1e+308 makes node 2's tau overflow: give the time step in seconds" in err
    if_run = tmp_path / "if"  # IF neurons: r = 1 / dt
    assert cli.main([*TRAIN, "--neuron", "if", "--out", str(if_run)]) == 0
    err = refused(["export", str(if_run), str(out), "--dt", "1e-320"])
    assert "--dt 1e-320 makes node 2's r overflow" in err
    assert not out.exists()


def test_export_output_that_cannot_be_written(refused, run, tmp_path):
    pytest.importorskip("nir")
    (tmp_path / "file").write_text("not a folder")
    err = refused(["export", str(run), str(tmp_path / "file" / "model.nir")])
    assert f"{tmp_path / 'file'} is a file, not a folder" in err
    err = refused(["export", str(run), str(tmp_path)])
    assert f"output {tmp_path} is a folder" in err


def test_eval_of_a_folder_that_is_not_a_run(refused, tmp_path):
    (tmp_path / "empty").mkdir()
    err = refused(["eval", str(tmp_path / "empty")])
    assert f"run {tmp_path / 'empty'}: no config.json there" in err
    err = refused(["eval", str(tmp_path / "missing")])
    assert f"run {tmp_path / 'missing'}" in err
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in refused(["eval", str(tmp_path / "file")])


def _idx_blob(array: np.ndarray, magic: int) -> tuple[bytes, bytes]:
    raw = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    return raw, gzip.compress(raw, mtime=0)


def test_fashion_mnist_files_in_an_mnist_data_dir(refused, tmp_path, monkeypatch):
    table: dict[str, dict[str, idx.Known]] = {name: {} for name in idx.KNOWN}
    monkeypatch.setattr(idx, "KNOWN", table)
    rng = np.random.RandomState(0)
    for name in ("mnist", "fashion-mnist"):  # different random files, each known as its own
        folder = tmp_path / name
        folder.mkdir()
        arrays = (rng.randint(0, 256, (30, 28, 28)), np.arange(30) % 10)
        for file, array, magic in zip(idx.FILES["train"], arrays, (2051, 2049), strict=True):
            raw, blob = _idx_blob(array, magic)
            (folder / file).write_bytes(blob)
            md5 = (hashlib.md5(raw).hexdigest(), hashlib.md5(blob).hexdigest())
            table[name][file] = idx.Known(*md5, array.shape)
    out = tmp_path / "out"
    argv = ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "fashion-mnist")]
    err = refused([*argv, "--out", str(out), "--hidden", "16", "--epochs", "1"])
    assert "is Fashion-MNIST's training images, not MNIST's" in err and "--data-dir" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*TRAIN, "--out", ""], "--out is empty: give a path"),
        ([*TRAIN, "--data-dir", ""], "--data-dir is empty: give a path"),
        (["train", "--config", ""], "--config is empty: give a path"),
        (["train", "--recipe", ""], "--recipe is empty: give a path"),
        (["plot", ""], "run is empty: give a path"),
        (["export", "", "model.nir"], "run is empty: give a path"),
    ],
)
def test_empty_paths_are_refused(refused, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)  # an empty path must not fall back to this folder or runs/
    assert message in refused(argv)
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_run_names_the_learning_rate(refused, tmp_path):
    """A learning rate that blows the weights up ends in one line naming --lr, not in a
    neuron's check of its non-finite input."""
    err = refused([*TRAIN, "--lr", "1e300", "--out", str(tmp_path / "out")])
    assert "training diverged: the weights became non-finite at epoch 1, batch 2" in err
    assert "lower --lr (now 1e+300)" in err


def test_a_non_finite_loss_names_the_learning_rate(refused, tmp_path, monkeypatch):
    from torchspike.app.methods import bptt

    real = bptt.BPTT.loss_and_scores

    def nan_loss(self, *args):
        loss, scores = real(self, *args)
        return loss * float("nan"), scores

    monkeypatch.setattr(bptt.BPTT, "loss_and_scores", nan_loss)
    err = refused([*TRAIN, "--out", str(tmp_path / "out")])
    assert "training diverged: the loss (nan) became non-finite at epoch 1, batch 1" in err


def test_a_model_too_large_for_the_machine_is_refused_while_it_is_built(
    refused, tmp_path, monkeypatch
):
    """Counted as its parameters are registered: a model of many small layers stops before it
    fills the memory (here a machine of 16 KiB: the digits net with 4 x 16 hidden neurons needs
    32 KiB for its 2,026 parameters)."""
    monkeypatch.setattr(cli, "_memory_bytes", lambda: 1 << 14)
    deep = ["--hidden", "16", "16", "16", "16"]
    err = refused([*TRAIN, *deep, "--out", str(tmp_path / "out")])
    assert "the model (--hidden [16, 16, 16, 16], --channels [" in err
    assert "parameters: over" in err and "more than this machine's 0.0 GiB" in err
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(cli, "_memory_bytes", lambda: 1 << 30)  # the same net fits in 1 GiB
    assert (
        cli.main([*TRAIN, "--hidden", "16", "16", "16", "16", "--out", str(tmp_path / "ok")]) == 0
    )

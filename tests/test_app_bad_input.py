"""Bad input found by a held-out sweep of the CLI: each is refused with one line on stderr that
names the setting and its value, exit status 2, no traceback, and no run folder left behind."""

import json
import shutil
from pathlib import Path

import pytest

from torchspike.app import cli
from torchspike.app import load as app_load

TINY = ["--dataset", "digits", "--hidden", "8", "--steps", "4", "--batch-size", "256"]
TRAIN = ["train", *TINY, "--epochs", "1", "--threads", "1"]
EVENTPROP = ["train", "--method", "eventprop", "--dataset", "digits", "--hidden", "8"]
EVENTPROP += ["--epochs", "1", "--threads", "1"]


@pytest.mark.parametrize(
    "base, flags, message",
    [
        (TRAIN, ["--seed", str(2**64 - 1)], "--seed must be an integer of at most 2**63 - 1"),
        (TRAIN, ["--seed", str(10**15)], "--seed must be at most 2**32 - 1 (4294967295), got 10"),
        (
            TRAIN,
            ["--batch-size", str(10**20)],
            "--batch-size must be an integer of at most 2**63 - 1",
        ),
        (TRAIN, ["--hidden", str(10**20)], "--hidden[0] must be an integer of at most 2**63 - 1"),
        (TRAIN, ["--steps", str(10**20)], "--steps must be an integer of at most 2**63 - 1"),
        (
            TRAIN,
            ["--batch-size", "100000"],
            "--batch-size must be at most the 1293 training samples",
        ),
        (TRAIN, ["--threads", "100000"], "--threads must be at most the"),
        (
            TRAIN,
            ["--arch", "conv", "--channels", "2", "2", "2", "2"],
            "--channels [2, 2, 2, 2] makes 4 conv blocks, each halving the image: the 8x8 "
            "images of digits allow at most 3",
        ),
        (TRAIN, ["--device", "cuda:\u0663"], "--device must be cpu, cuda or cuda:N, got 'cuda:"),
        (EVENTPROP, ["--dt", "1e-320"], "--dt 1e-320 makes inf steps of duration 0.04"),
        (EVENTPROP, ["--dt", "1"], "--dt must be at most duration (0.04 s), got 1.0"),
        (EVENTPROP, ["--hidden", "8", "0"], "--hidden sizes must be integers > 0, got [8, 0]"),
        (EVENTPROP, ["--tau-mem", "1e-320"], "--tau-mem 1e-320 is too short for dt 0.001"),
        (
            EVENTPROP,
            ["--binary-t-min", "1"],
            "--binary-t-min must be < binary_t_max (0.02), got 1.0",
        ),
        (
            EVENTPROP,
            ["--duration", "0.015"],
            "binary_t_max must be at most duration (0.015), got 0.02",
        ),
        (
            EVENTPROP,
            ["--encoding", "latency", "--latency-threshold", "2"],
            "--latency-threshold must be in",
        ),
        (
            EVENTPROP,
            ["--encoding", "latency", "--duration", "0.003"],
            "--duration 0.003 leaves the latency",
        ),
    ],
)
def test_bad_flags(refused, tmp_path, base, flags, message):
    out = tmp_path / "out"
    assert message in refused([*base, "--out", str(out), *flags])
    assert not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('method = "eventprop"\nhidden = []\ninit = [[0.1, -0.1]]', "init's std must be >= 0"),
        ('method = "eventprop"\nrecurrent = true\nrec_std = -1.0', "rec_std must be >= 0"),
        ('method = "eventprop"\nencoding = "latency"\nlatency_start = -1.0', "latency_start must"),
        ('method = "stdp"\nparams = {tau_pre = "x"}', "params.tau_pre must be a number, got 'x'"),
        ("[recipe]\ndefaults_for = 3\n[settings]\nhidden = [8]", "defaults_for must be a list"),
        ('method = ["bptt"]', "method must be one of ('bptt', 'eventprop', 'stdp'), got ['bptt']"),
        ('data_dir = ""', "data_dir is empty: give a path, or leave the setting out"),
        (
            "[recipe]\nepochs = 5\n[settings]\nhidden = [8]",
            "unknown keys in [recipe]: ['epochs']; it describes the run (title, ",
        ),
    ],
)
def test_bad_config_files(refused, tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--config", str(path)]
    err = refused([*argv, "--out", str(tmp_path / "out")])
    assert message in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_a_model_too_large_is_refused_before_the_run_folder(refused, tmp_path, monkeypatch):
    def build(cfg):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1")

    monkeypatch.setattr(app_load, "build", build)
    err = refused([*TRAIN, "--out", str(tmp_path / "out")])
    assert "the model (--hidden [8], --channels [32, 64]) could not be built" in err
    assert not (tmp_path / "out").exists()


def test_the_source_is_named_once_without_a_file(refused, tmp_path):
    argv = ["train", "--dataset", "dvs-gesture", "--data-dir", str(tmp_path)]
    err = refused([*argv, "--out", str(tmp_path / "out")])
    assert "error: the flags given: encoding must be one of ['frames', 'spikes']" in err


def test_a_data_dir_that_is_a_file(refused, tmp_path):
    (tmp_path / "file").write_text("x")
    argv = ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "file")]
    err = refused([*argv, "--out", str(tmp_path / "out")])
    assert f"--data-dir {tmp_path / 'file'}: {tmp_path / 'file'} is a file, not a folder" in err


def test_data_dir_of_digits_is_said_to_be_unread(capsys, run, tmp_path):
    note = "note: --data-dir does nothing with dataset 'digits' (its data are bundled with "
    assert cli.main([*TRAIN, "--data-dir", str(tmp_path), "--out", str(tmp_path / "new")]) == 0
    assert note in capsys.readouterr().out
    assert cli.main(["eval", str(run), "--data-dir", str(tmp_path)]) == 0
    assert note in capsys.readouterr().out
    argv = ["train", "--resume", "--out", str(run), "--epochs", "2", "--data-dir", str(tmp_path)]
    assert cli.main([*argv, "--threads", "1"]) == 0
    assert note in capsys.readouterr().out


def test_plot_of_a_damaged_history(refused, run, tmp_path):
    (run / "metrics.json").write_text(json.dumps({"epochs": 3}))
    err = refused(["plot", str(run), "--out", str(tmp_path / "figures")])
    assert f'{run / "metrics.json"}: "epochs" must be a list of records' in err


def test_plot_out_that_cannot_be_created(refused, run):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    err = refused(["plot", str(run), "--out", "/proc/torchspike-figures"])
    assert "--out /proc/torchspike-figures: cannot create the folder" in err


def test_export_of_an_eventprop_run_and_bad_outputs(refused, tmp_path, run):
    pytest.importorskip("nir")
    ep = tmp_path / "ep"
    assert cli.main([*EVENTPROP, "--out", str(ep)]) == 0
    err = refused(["export", str(ep), str(tmp_path / "m.nir")])
    assert "was trained with eventprop: export --format nir takes bptt runs only" in err
    if Path("/proc/self").is_dir():
        err = refused(["export", str(run), "/proc/m.nir"])
        assert "output /proc/m.nir: cannot write there" in err
    nested = tmp_path / "new" / "folder" / "m.nir"  # a missing folder is made, like --out's
    with pytest.warns(Warning):
        assert cli.main(["export", str(run), str(nested)]) == 0
    assert nested.stat().st_size > 0


def test_recipes_names_no_flag(refused):
    err = refused(["recipes", "nope"])
    assert "error: no recipe 'nope'; known: " in err and "--recipe" not in err


@pytest.fixture(scope="module")
def stdp_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("stdp") / "run"
    argv = ["train", "--method", "stdp", "--dataset", "digits", "--n-neurons", "10"]
    assert cli.main([*argv, "--synapse", "current", "--threads", "1", "--out", str(run)]) == 0
    return run


def test_stdp_refusals(refused, stdp_run, tmp_path):
    err = refused(["plot", str(stdp_run), "--samples", "3", "--out", str(tmp_path)])
    assert "--samples does nothing with an STDP run" in err
    interrupted = tmp_path / "interrupted"
    shutil.copytree(stdp_run, interrupted)
    (interrupted / "model.safetensors").unlink()
    err = refused(["eval", str(interrupted)])
    assert f"run {interrupted}: no model.safetensors: not trained to the end yet" in err
    argv = ["train", "--method", "stdp", "--dataset", "digits", "--label-images", "100000"]
    err = refused([*argv, "--out", str(tmp_path / "out")])
    assert "--label-images must be at most the 1437 training images of digits" in err


def test_a_reader_that_leaves_early_gets_no_traceback():
    import subprocess
    import sys

    code = "import sys; from torchspike.app import cli; sys.exit(cli.main(['recipes']))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # as `| head -0` does: every write meets a closed pipe
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait() == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["train", *TINY, "--epoch", "1"], "--epoch"),
        (["train", *TINY, "--thread", "1"], "--thread"),
        (["eval", "some-run", "--split", "test", "--dat", "x"], "--dat"),
    ],
)
def test_abbreviated_flags_are_refused(refused, argv, flag):
    """A flag is taken only by its full name: ``--epoch`` is not read as ``--epochs``."""
    err = refused(argv)
    assert f"unrecognized arguments: {flag}" in err, err

"""Fixtures shared by several test files: the CLI's one-line refusal check and a finished tiny
run, and the skip where the native kernels cannot be built."""

import shutil
import warnings
from pathlib import Path

import pytest

from torchspike.app import cli
from torchspike.kernels import native


@pytest.fixture
def native_kernels() -> None:
    """Skip the test where the native kernels do not build here (no working C compiler; the
    library's warning about it is not the test's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if native.library() is None:
            pytest.skip("no working C compiler")


@pytest.fixture
def refused(capsys):
    """``refused(argv)``: run the CLI; it must exit 2 with one line on stderr, returned."""

    def run(argv: list[str]) -> str:
        capsys.readouterr()
        try:
            rc = cli.main(argv)
        except SystemExit as exit:  # argparse's own errors
            rc = exit.code
        err = capsys.readouterr().err
        assert rc == 2, err
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert "Traceback" not in err, err
        return err

    return run


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """A finished 1-epoch bptt run on the digits (16 hidden LIF, 4 steps); copy it to change it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    argv = ["train", "--dataset", "digits", "--hidden", "16", "--steps", "4"]
    argv += ["--batch-size", "256", "--epochs", "1", "--threads", "1", "--out", str(run)]
    assert cli.main(argv) == 0
    return run


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A copy of the finished run, to damage."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out

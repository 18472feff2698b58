"""Two gloo processes under real torchrun train like one process with the same global batch,
also when a batch has fewer rows than workers."""

import socket
import subprocess
import sys

import pytest
import torch

from torchspike import files

ARGS = ["--dataset", "digits", "--hidden", "32", "--steps", "6", "--schedule", "none"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out, extra, workers):
    cmd = [sys.executable, "-m", "torchspike", "train", *ARGS, *extra, "--out", str(out)]
    if workers > 1:
        cmd[1:3] = [
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={workers}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
            "-m",
            "torchspike",
        ]
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


# 1,293 training digits: batch 64 ends with a 13-row batch, batch 68 with a 1-row batch
@pytest.mark.slow
@pytest.mark.parametrize("batch", ["64", "68"])
def test_two_processes_match_one(tmp_path, batch):
    extra = ["--epochs", "2", "--batch-size", batch]
    one = _train(tmp_path / "one", extra, 1)
    assert one.returncode == 0, one.stderr
    two = _train(tmp_path / "two", extra, 2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("test accuracy") == 1  # only rank 0 logs
    a = files.load_weights(tmp_path / "one" / "model.safetensors")
    b = files.load_weights(tmp_path / "two" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert not torch.equal(a["layers.1.weight"], torch.zeros_like(a["layers.1.weight"]))

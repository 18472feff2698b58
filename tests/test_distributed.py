"""Two gloo processes on the CPU train like one process with the same global batch."""

import socket
import subprocess
import sys

import torch

from torchspike import checkpoint

ARGS = ["--dataset", "digits", "--hidden", "32", "--steps", "6", "--batch-size", "64"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    common = [*ARGS, "--epochs", "2", "--schedule", "none"]
    one = subprocess.run(
        [sys.executable, "-m", "torchspike", "train", *common, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
            "-m",
            "torchspike",
            "train",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("test accuracy") == 1  # only rank 0 logs
    a = checkpoint.load_weights(tmp_path / "one" / "model.safetensors")
    b = checkpoint.load_weights(tmp_path / "two" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert not torch.equal(a["layers.1.weight"], torch.zeros_like(a["layers.1.weight"]))

"""``retain_freed_memory``: freed blocks stay in the process instead of going back to the OS."""

import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import sys
    import torch
    from torchspike.kernels.allocator import retain_freed_memory

    def rss_mib():
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    if sys.argv[1] == "retain":
        assert retain_freed_memory()
    before = rss_mib()
    block = torch.ones(64 << 18)  # 64 MiB, written so that its pages are resident
    del block
    print(rss_mib() - before)
    """
)


def _kept_mib(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's defaults
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env=env
    )
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_block_stays_resident_only_when_retained():
    assert _kept_mib("default") < 16  # glibc unmaps a 64 MiB block when it is freed
    assert _kept_mib("retain") > 60  # kept in the heap for the next step to reuse

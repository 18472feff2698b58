"""What the benchmark reports say about the machine: CPU model, load, CPU time (Linux /proc)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def machine() -> str:
    """CPU model and count, torch and Python versions, in one line."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python {python}"


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, or ``?``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_jiffies() -> tuple[int, int]:
    """All CPUs' total and busy time so far, in jiffies (/proc/stat; idle and iowait not busy)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), sum(fields) - fields[3] - fields[4]

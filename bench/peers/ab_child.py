"""`time_peer.py` with some of torchspike's conv fast paths undone (`bench/conv_ab.py`).

    .venv/bin/python bench/peers/ab_child.py VARIANT [time_peer.py arguments]

VARIANT: ``plain`` (no channels-last Conv2d input, PyTorch's max pooling), ``channels_last``
(PyTorch's max pooling), ``current`` (nothing undone).
"""

import runpy
import sys
from pathlib import Path

from torch import Tensor, nn

import torchspike.steps as steps


def _unchanged(layer: nn.Module, x: Tensor) -> Tensor:
    return x


def _never(layer: nn.Module, x: Tensor) -> bool:
    return False


variant = sys.argv.pop(1)
if variant not in ("plain", "channels_last", "current"):
    raise SystemExit(f"unknown variant {variant!r}")
if variant == "plain":
    steps.channels_last = _unchanged
if variant in ("plain", "channels_last"):
    steps.is_pool_2x2 = _never
script = str(Path(__file__).with_name("time_peer.py"))
if len(sys.argv) > 1 and sys.argv[1].endswith("time_peer.py"):  # as bench/peers.py calls it
    sys.argv.pop(1)
sys.argv[0] = script
runpy.run_path(script, run_name="__main__")

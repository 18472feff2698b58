"""Live memory of one training step of a bench/peers.py config: bytes allocated and not freed.

    .venv/bin/python bench/live_memory.py --config a [--trace]

Unlike the peak RSS that bench/peers.py reports, this does not depend on what glibc keeps: after
every aten op of one step (a TorchDispatchMode, so ops inside autograd's backward count too) it
reads glibc's `mallinfo2` (bytes in use in the heap plus mmapped blocks) and reports the peak
above the level before the step, and the op where it was reached. The step runs after two
warm-up steps, so Adam's state and the weight gradients already exist (~9 MiB, not counted).
torchspike's network holds the buffers of its workspace from one step to the next
(torchspike.kernels.workspace): they are live data of every step, so they are added to its peak.
Linux with glibc only; torchspike's network (bench/peers/torchspike_models.py) by default,
`--peer` for another contender in the peer venv.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from peer_models import CONFIGS, make_batch  # noqa: E402

_FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS.split()]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2


def in_use() -> int:
    """Bytes the process has allocated with malloc and not freed (heap and mmapped blocks)."""
    info = _libc.mallinfo2()
    return info.uordblks + info.hblkhd


class PeakTracker(TorchDispatchMode):
    """Records the bytes in use after every aten op."""

    def __init__(self) -> None:
        super().__init__()
        self.trace: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.trace.append((str(func), in_use()))
        return out


def build(peer: str, cfg, compact_spikes: bool):
    if peer == "torchspike":
        import torchspike_models

        return torchspike_models.build(cfg, compact_spikes=compact_spikes)
    from peer_models import build as build_peer

    return build_peer(peer, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["a", "b"], default="a")
    parser.add_argument("--peer", default="torchspike")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="print the level after every op")
    parser.add_argument("--compact-spikes", action="store_true", help="torchspike, compact spikes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]
    net, train_step, _ = build(args.peer, cfg, args.compact_spikes)
    batch = make_batch(cfg, 0)
    for _ in range(2):
        train_step(batch)
    before = in_use()
    with PeakTracker() as tracker:
        train_step(batch)
    peak_op, peak = max(tracker.trace, key=lambda item: item[1])
    if args.trace:
        for op, level in tracker.trace:
            print(f"{(level - before) / 2**20:8.1f} MiB  {op}")
    workspace = getattr(getattr(net, "net", None), "workspace", None)
    held = workspace.nbytes() if workspace is not None else 0
    print(
        f"{args.peer} config {args.config}: live peak {(peak - before + held) / 2**20:.1f} MiB: "
        f"{held / 2**20:.1f} MiB of buffers held between steps, and "
        f"{(peak - before) / 2**20:.1f} MiB above the level before the step, after {peak_op}"
    )


if __name__ == "__main__":
    main()

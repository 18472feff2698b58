"""Config n's conv + 2x2 max pooling pieces, unfused (event convolution, then the pooling
kernel) vs fused (kernels.event_conv_pool): one training pass each, interleaved, ms medians.

    flock /tmp/torchspike-heavy.lock nice .venv/bin/python bench/event_conv_pool_ab.py \
        --threads 2 --rounds 9
    ... --chunk-mib 1 4 16 1024     # conv2's fused backward for each CHUNK_BYTES instead

conv1: 2->12, 5x5 on 34x34 events at density 0.02 (weight and bias gradients); conv2: 12->32,
5x5 on 15x15 spikes at density 0.026 (and the input gradient), batch T*B = 1600.
"""

import argparse
import statistics
import time

import torch
from torch import nn

from torchspike.kernels import event_conv_pool
from torchspike.kernels.conv_pool import max_pool_2x2
from torchspike.kernels.event_conv import maybe_event_conv
from torchspike.kernels.event_conv_pool import maybe_event_conv_pool

POOL = nn.MaxPool2d(2)
PIECES = {
    "conv1 2->12 + pool, 34x34, density 0.02": (nn.Conv2d(2, 12, 5), (1600, 2, 34, 34), 0.02),
    "conv2 12->32 + pool, 15x15, density 0.026": (nn.Conv2d(12, 32, 5), (1600, 12, 15, 15), 0.026),
}


def one_pass(conv: nn.Conv2d, x: torch.Tensor, fused: bool) -> tuple[float, float]:
    """Forward and backward ms of one training pass."""
    t0 = time.perf_counter()
    if fused:
        y = maybe_event_conv_pool(conv, POOL, x)
    else:
        y = max_pool_2x2(maybe_event_conv(conv, x))
    t1 = time.perf_counter()
    gy = torch.randn(y.shape)
    t2 = time.perf_counter()
    inputs = [conv.weight, conv.bias] + ([x] if x.requires_grad else [])
    torch.autograd.grad(y, inputs, gy)
    return (t1 - t0) * 1e3, (time.perf_counter() - t2) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chunk-mib", type=float, nargs="*", help="sweep conv2's CHUNK_BYTES")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    times: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name, (conv, shape, density) in PIECES.items():
            hidden = shape[1] > 2  # conv2's input is a hidden layer's spikes
            if args.chunk_mib and not hidden:
                continue
            x = (torch.rand(shape) < density).float().requires_grad_(hidden)
            if args.chunk_mib:
                for mib in args.chunk_mib:
                    event_conv_pool.CHUNK_BYTES = int(mib * (1 << 20))
                    times.setdefault(f"{name} | fused, chunks of {mib:g} MiB", []).append(
                        one_pass(conv, x, True)
                    )
                continue
            for fused in (False, True):
                key = f"{name} | {'fused' if fused else 'unfused'}"
                times.setdefault(key, []).append(one_pass(conv, x, fused))
    print("| piece | path | forward ms | backward ms |\n|---|---|---|---|")
    for key, runs in times.items():
        forward = statistics.median(f for f, _ in runs)
        backward = statistics.median(b for _, b in runs)
        print(f"| {key} | {forward:.1f} | {backward:.1f} |")


if __name__ == "__main__":
    main()

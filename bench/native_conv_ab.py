"""Event convolution vs the dense channels-last one, on config n's two layers, by input density.

    flock /tmp/torchspike-heavy.lock nice .venv/bin/python bench/native_conv_ab.py --threads 2

One training pass of each layer (forward, then backward with the weight and bias gradients,
plus the input gradient for conv2), dense and event runs interleaved; medians in ms. The dense
side is what SpikingNet ran before the event path: ``layer(x.contiguous(channels_last))``.
"""

import argparse
import statistics
import time

import torch
from torch import Tensor, nn

from torchspike.kernels import event_conv
from torchspike.kernels.allocator import retain_freed_memory

LAYERS = {  # name: (input shape, conv, input needs a gradient)
    "conv1": ((1600, 2, 34, 34), (2, 12, 5), False),
    "conv2": ((1600, 12, 15, 15), (12, 32, 5), True),
}


def one_pass(conv: nn.Conv2d, x: Tensor, event: bool) -> float:
    x = x.detach().requires_grad_(x.requires_grad)
    start = time.perf_counter()
    if event:
        y = event_conv.maybe_event_conv(conv, x)
        assert y is not None
    else:
        y = conv(x.contiguous(memory_format=torch.channels_last))
    y.backward(torch.ones_like(y))
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--densities", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.3])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    event_conv.DENSITY_THRESHOLD = 1.0  # measure every density
    for name, (shape, (cin, cout, k), grad_x) in LAYERS.items():
        conv = nn.Conv2d(cin, cout, k)
        for density in args.densities:
            x = (torch.rand(shape) < density).float().requires_grad_(grad_x)
            times = {False: [], True: []}
            for _ in range(args.repeats):
                for event in (False, True):
                    times[event].append(one_pass(conv, x, event))
            dense, sparse = (statistics.median(times[e][1:]) for e in (False, True))
            print(f"{name} density {density:.2f}: dense {dense:6.1f} ms, event {sparse:6.1f} ms, "
                  f"{dense / sparse:4.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

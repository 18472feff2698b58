"""Sparse event convolution of binary spikes in plain torch ops: the prototype that did not pay.

    flock /tmp/torchspike-heavy.lock .venv/bin/python bench/conv_sparse_proto.py

For binary x, ``conv2d(x, w)`` is a sum of kernel slices at the active input sites. Forward:
for each of the K*K kernel offsets, ``index_add_`` of ``w[:, c, ky, kx]`` into the output rows
(channels-last) the events reach. Weight gradient: for each offset, the rows of the output
gradient at the events' targets summed per input channel, all offsets in one ``embedding_bag``.
Both are checked against ``F.conv2d`` / ``convolution_backward`` and timed against the dense
(NCHW) oneDNN kernels on n's two convolutions (conv2 also at density 0.1) and one of v's.
Result (bench/RESULTS_perf_conv.md): slower than dense everywhere; ``index_add_`` on a 2-D
tensor loops over the index on the CPU, one small add per event and offset.
"""

import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def bench(f, n=7):
    f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return f"min {ts[0]:.1f} med {ts[len(ts) // 2]:.1f}"


def events(x):
    """Flat (row, y, x) site and channel of every one of ``x`` [M, C, H, W]."""
    channels = x.shape[1]
    idx = x.permute(0, 2, 3, 1).reshape(-1).nonzero().squeeze(1)
    return idx // channels, idx % channels


def sparse_conv_fwd(x, w, pad=0):
    m, _, h, wd = x.shape
    co, _, k, _ = w.shape
    ho, wo = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    s, c = events(x)
    xx = s % wd
    t = s // wd
    yy, r = t % h, t // h
    out = torch.zeros(m * ho * wo, co)
    wt = w.permute(2, 3, 1, 0).contiguous()  # [K, K, C, Co]
    for ky in range(k):
        oy = yy + pad - ky
        for kx in range(k):
            ox = xx + pad - kx
            ok = (oy >= 0) & (oy < ho) & (ox >= 0) & (ox < wo)
            tgt = ((r * ho + oy) * wo + ox)[ok]
            out.index_add_(0, tgt, wt[ky, kx].index_select(0, c[ok]))
    return out.view(m, ho, wo, co).permute(0, 3, 1, 2)


def sparse_conv_wgrad(x, gy, k, pad=0):
    m, c_in, h, wd = x.shape
    co = gy.shape[1]
    ho, wo = gy.shape[2:]
    gcl = gy.permute(0, 2, 3, 1).reshape(-1, co).contiguous()
    idx = x.transpose(0, 1).reshape(-1).nonzero().squeeze(1)  # events grouped by channel
    per_channel = m * h * wd
    c, s = idx // per_channel, idx % per_channel
    xx = s % wd
    t = s // wd
    yy, r = t % h, t // h
    targets, counts = [], []
    for ky in range(k):
        oy = yy + pad - ky
        for kx in range(k):
            ox = xx + pad - kx
            ok = (oy >= 0) & (oy < ho) & (ox >= 0) & (ox < wo)
            targets.append(((r * ho + oy) * wo + ox)[ok])
            counts.append(torch.bincount(c[ok], minlength=c_in))
    index, count = torch.cat(targets), torch.stack(counts).reshape(-1)
    offsets = torch.zeros_like(count)
    torch.cumsum(count[:-1], 0, out=offsets[1:])
    g = F.embedding_bag(index, gcl, offsets, mode="sum")  # [K*K*C, Co]
    return g.view(k, k, c_in, co).permute(3, 2, 0, 1)


def dense_wgrad(gy, x, w, pad):
    mask = [False, True, False]
    stride, dil, outpad = [1, 1], [1, 1], [0, 0]
    return torch.ops.aten.convolution_backward(
        gy, x, w, None, stride, [pad, pad], dil, False, outpad, 1, mask
    )[1]


CASES = [  # (rows M, C_in, H, C_out, K, density, padding)
    (1600, 2, 34, 12, 5, 0.02, 0),
    (1600, 12, 15, 32, 5, 0.03, 0),
    (1600, 12, 15, 32, 5, 0.1, 0),
    (128, 64, 32, 128, 3, 0.15, 1),
]


def run(m, c_in, h, co, k, p, pad):
    x = (torch.rand(m, c_in, h, h) < p).float()
    w = torch.randn(co, c_in, k, k)
    ref = F.conv2d(x, w, padding=pad)
    print(m, c_in, h, co, k, p, "fwd err", (ref - sparse_conv_fwd(x, w, pad)).abs().max().item())
    gy = torch.randn_like(ref)
    gw_ref = dense_wgrad(gy, x, w, pad)
    err = (sparse_conv_wgrad(x, gy, k, pad) - gw_ref).abs().max() / gw_ref.abs().max()
    print(" wgrad rel err", err.item())
    print(
        " dense fwd",
        bench(lambda: F.conv2d(x, w, padding=pad)),
        " sparse fwd",
        bench(lambda: sparse_conv_fwd(x, w, pad)),
    )
    print(
        " dense wgrad",
        bench(lambda: dense_wgrad(gy, x, w, pad)),
        " sparse wgrad",
        bench(lambda: sparse_conv_wgrad(x, gy, k, pad)),
    )


for case in CASES:
    run(*case)

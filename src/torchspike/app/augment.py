"""Random translation of training images (the only augmentation the loop applies).

Image ``b`` of a batch ``[B, C, H, W]`` is moved by its own ``(dy_b, dx_b)``, each drawn
uniformly from ``{-s, ..., s}``; pixels moved in from outside the frame are 0:
``out[b, c, i, j] = x[b, c, i - dy_b, j - dx_b]`` (0 where that index is outside the image).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def generator_for(seed: int, epoch: int, batch: int) -> torch.Generator:
    """The draws of one batch: a function of (seed, epoch, batch), so a resumed run repeats them."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_003 + batch) % 2**63)


def draw_shifts(n: int, shift: int, generator: torch.Generator) -> Tensor:
    """``[n, 2]`` integer offsets ``(dy, dx)``, uniform on ``{-shift, ..., shift}``."""
    return torch.randint(-shift, shift + 1, (n, 2), generator=generator)


def translate(x: Tensor, shifts: Tensor) -> Tensor:
    """``x`` ``[B, C, H, W]`` with image ``b`` moved by ``shifts[b] = (dy, dx)``, zero fill."""
    if x.dim() != 4:
        raise ValueError(f"translate needs images [B, C, H, W], got shape {tuple(x.shape)}")
    if shifts.shape != (x.shape[0], 2):
        raise ValueError(f"shifts must be [{x.shape[0]}, 2], got shape {tuple(shifts.shape)}")
    b, _, h, w = x.shape
    s = int(shifts.abs().max()) if b else 0
    if s == 0:
        return x
    padded = F.pad(x, (s, s, s, s))
    rows = torch.arange(h)[None, :] + s - shifts[:, :1]  # [B, H] rows of the padded image
    cols = torch.arange(w)[None, :] + s - shifts[:, 1:]  # [B, W]
    picked = padded.permute(0, 2, 3, 1)[
        torch.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]
    ]  # [B, H, W, C]
    return picked.permute(0, 3, 1, 2).contiguous()

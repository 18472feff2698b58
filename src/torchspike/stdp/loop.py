"""Presenting a data set in batches, re-presenting images that drew too few spikes.

Diehl & Cook show an image again with the intensity raised by 1 while the excitatory layer fires
fewer than ``min_spikes`` times. Here such an image goes back to the front of the queue with its
new intensity and is simulated in the next batch beside fresh images, so every batch stays full.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from .diehl_cook import DiehlCook
from .events import poisson_events


class Done(NamedTuple):
    index: Tensor  # [k] int64: data indices finished by this presentation
    counts: Tensor  # [k, N]: their excitatory spike counts (from their last presentation)
    presented: int  # samples simulated in this presentation (finished + retried)
    position: int  # how many of ``order`` have entered the queue so far
    pending: Tensor  # [m, 3]: the retry queue (index, intensity, retries) after this batch


def present_all(
    model: DiehlCook,
    x: Tensor,
    order: Tensor,
    *,
    learn: bool,
    batch_size: int,
    generator: torch.Generator | None = None,
    position: int = 0,
    pending: Tensor | None = None,
) -> Iterator[Done]:
    """Present ``x[order]`` (``x`` is ``[M, n_inputs]``) from ``order[position]`` on, retries
    in ``pending`` first; yields what each presentation finished."""
    p = model.params
    queue = torch.zeros(0, 3, dtype=torch.float64) if pending is None else pending.double()
    step = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    while position < len(order) or len(queue):
        fresh = max(0, min(batch_size - len(queue), len(order) - position))
        if fresh > 0:
            new = order[position : position + fresh].double()
            start = torch.stack([new, torch.full_like(new, p.intensity), torch.zeros_like(new)], 1)
            queue = torch.cat([queue, start])
            position += fresh
        slots, queue = queue[:batch_size], queue[batch_size:]
        index = slots[:, 0].long()
        rates = model.rates(x[index], slots[:, 1].to(x.dtype))
        events = poisson_events(rates, p.steps, p.dt, generator=generator)
        counts = model.present(events, len(index), learn=learn)
        retry = (counts.sum(1) < p.min_spikes) & (slots[:, 2] < p.max_retries)
        queue = torch.cat([slots[retry] + step, queue])
        yield Done(index[~retry], counts[~retry], len(index), position, queue.clone())

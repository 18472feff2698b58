"""Decoders: ``[T, B, ...]`` spikes or membrane to one value per neuron, ``[B, ...]``."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def spike_count(spikes: Tensor) -> Tensor:
    """Number of spikes of each neuron over time: ``[T, B, ...] -> [B, ...]``."""
    return spikes.sum(0)


def spike_rate(spikes: Tensor) -> Tensor:
    """Spikes per step of each neuron (mean over time), in [0, 1]: ``[T, B, ...] -> [B, ...]``."""
    return spikes.mean(0)


def first_spike_time(spikes: Tensor, dt: float = 1.0) -> Tensor:
    """Time of the first spike, ``index * dt``; ``inf`` where a neuron never fires."""
    fired = spikes > 0
    steps = torch.arange(spikes.shape[0], device=spikes.device, dtype=spikes.dtype)
    steps = steps.reshape(-1, *([1] * (spikes.dim() - 1)))
    first = torch.where(fired, steps, torch.full_like(spikes, math.inf)).amin(0)
    return first * dt


def max_membrane(v: Tensor) -> Tensor:
    """Largest membrane value of each neuron over time: ``[T, B, ...] -> [B, ...]``."""
    return v.amax(0)

"""Label assignment and the two read-outs of Diehl & Cook (BindsNET's semantics).

From spike counts ``r[s, n]`` of labelled samples, neuron ``n``'s class rates are
``R[n, c] = mean_{s in c} r[s, n]``; it is assigned ``argmax_c R[n, c]`` (-1 if it never fired)
and its proportions are ``P[n, c] = R[n, c] / sum_c R[n, c]``. A sample's score for class ``c`` is
``sum_{n in c} r[s, n] / |c|`` (all-neuron vote) or ``sum_{n in c} r[s, n] P[n, c] / |c|``
(proportion-weighted vote), over the neurons assigned to ``c``; the prediction is the argmax.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _checks as check


class Assignment(NamedTuple):
    labels: Tensor  # [N] int64: each neuron's class, -1 for a neuron that never fired
    proportions: Tensor  # [N, C]: each neuron's share of its response per class
    rates: Tensor  # [N, C]: mean spike count per sample of each class


def _counts(counts: Tensor, name: str = "counts") -> Tensor:
    if not isinstance(counts, Tensor) or counts.dim() != 2:
        raise ValueError(f"{name} must be a [samples, neurons] tensor, got {counts!r:.80}")
    return counts.float()


def assign(counts: Tensor, labels: Tensor, n_classes: int) -> Assignment:
    """Assign each neuron the class it fires most for, on average per sample of that class."""
    r = _counts(counts)
    check.positive_int(n_classes, "n_classes")
    if labels.shape != (r.shape[0],):
        raise ValueError(
            f"labels must have shape ({r.shape[0]},) to match counts, got {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got max {labels.max().item()}")
    onehot = torch.nn.functional.one_hot(labels.long(), n_classes).to(r.dtype)  # [S, C]
    per_class = onehot.sum(0).clamp_min(1)
    rates = (r.t() @ onehot) / per_class  # [N, C]
    total = rates.sum(1, keepdim=True)
    assigned = torch.where(total.squeeze(1) > 0, rates.argmax(1), torch.full_like(total[:, 0], -1))
    proportions = torch.where(total > 0, rates / total.clamp_min(1e-30), torch.zeros_like(rates))
    return Assignment(assigned.long(), proportions, rates)


def _vote(counts: Tensor, labels: Tensor, weights: Tensor, n_classes: int) -> Tensor:
    r = _counts(counts)
    if labels.shape != (r.shape[1],):
        raise ValueError(
            f"assignment labels must have shape ({r.shape[1]},), got {tuple(labels.shape)}"
        )
    member = torch.zeros(r.shape[1], n_classes, dtype=r.dtype, device=r.device)
    ok = labels >= 0
    member[ok.nonzero().squeeze(1), labels[ok]] = 1.0
    size = member.sum(0).clamp_min(1)
    return ((r @ (member * weights)) / size).argmax(1)


def vote_all(counts: Tensor, assignment: Assignment) -> Tensor:
    """Predicted classes ``[samples]`` by the all-neuron vote."""
    n_classes = assignment.rates.shape[1]
    return _vote(counts, assignment.labels, torch.ones_like(assignment.rates), n_classes)


def vote_proportion(counts: Tensor, assignment: Assignment) -> Tensor:
    """Predicted classes ``[samples]`` by the proportion-weighted vote."""
    n_classes = assignment.rates.shape[1]
    return _vote(counts, assignment.labels, assignment.proportions, n_classes)

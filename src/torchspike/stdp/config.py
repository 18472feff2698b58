"""The configuration of a Diehl & Cook training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .. import _checks as check
from .params import SYNAPSES, DiehlCookParams


@dataclass
class STDPConfig:
    """A training run. ``params`` overrides fields of :class:`DiehlCookParams` (e.g. ``dt``).

    ``label_images``: 0 assigns classes from the spikes of the last ``update_interval``
    training images (recorded while learning); ``n > 0`` runs a frozen pass over ``n`` random
    training images for it (Diehl & Cook used all of them). ``eval_batch_size``: images simulated
    at once in the frozen passes (labelling, test), where nothing is shared between them, so it
    changes only the speed and the random draws. ``threads``: intra-op threads while
    simulating (restored afterwards); the per-step ops are too small to gain from more, and on a
    busy machine each parallel region can stall for milliseconds.

    ``synapse``: ``"conductance"`` or ``"current"``; ``update_interval``, ``label_images`` and
    ``checkpoint_every`` count training images (``checkpoint_every=0``: no checkpoints);
    ``n_classes``: ``None`` takes it from the labels.
    """

    n_neurons: int = 100
    synapse: str = "conductance"
    epochs: int = 1
    batch_size: int = 64
    eval_batch_size: int = 1024
    seed: int = 0
    update_interval: int = 10_000
    label_images: int = 0
    checkpoint_every: int = 0
    n_classes: int | None = None
    threads: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = ("n_neurons", "epochs", "batch_size", "eval_batch_size", "update_interval")
        for name in (*positive, "threads"):
            check.positive_int(getattr(self, name), name)
        for name in ("seed", "label_images", "checkpoint_every"):
            check.non_negative_int(getattr(self, name), name)
        check.choice(self.synapse, SYNAPSES, "synapse")
        if self.n_classes is not None:
            check.positive_int(self.n_classes, "n_classes")
        known = {f.name for f in fields(DiehlCookParams)} - {"synapse"}
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(f"params has unknown keys {unknown}; known: {sorted(known)}")
        self.model_params()

    def model_params(self) -> DiehlCookParams:
        base = DiehlCookParams() if self.synapse == "conductance" else DiehlCookParams.current()
        return replace(base, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> STDPConfig:
        return cls(**d)

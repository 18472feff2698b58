"""The training configuration: every setting of a run, saved as ``config.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ._version import __version__


@dataclass
class Config:
    method: str = "bptt"
    dataset: str = "digits"
    data_dir: str | None = None
    arch: str = "fc"
    hidden: list[int] = field(default_factory=lambda: [1000])
    channels: list[int] = field(default_factory=lambda: [32, 64])
    neuron: str = "lif"
    readout: str = "lif"
    loss: str = "ce-membrane"
    steps: int = 25
    beta: float = 0.95
    encoding: str = "direct"
    surrogate: str = "atan"
    dropout: float = 0.0
    epochs: int = 15
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    keep_best: bool = False  # test and save the epoch with the best validation accuracy
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/latest"
    version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"config has unknown keys {sorted(unknown)}")
        return cls(**data)

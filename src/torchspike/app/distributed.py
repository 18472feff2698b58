"""Multi-process data-parallel training under ``torchrun`` (gloo on CPU, nccl on CUDA).

Every rank walks the same shuffled order; rank ``r`` of ``W`` takes rows ``r::W`` of each global
batch (the DistributedSampler split, done per batch), so one optimiser step sees the same
global batch as a single process. DDP averages the gradients of the per-rank mean losses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


def is_main_process() -> bool:
    """Rank 0 under ``torchrun``, or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Context:
        """Join the process group that ``torchrun`` describes in the environment, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device=device)
        cuda = device.startswith("cuda")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), device=device)

    def shard(self, index: Tensor) -> Tensor:
        return index[self.rank :: self.world] if self.world > 1 else index

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world == 1:
            return model
        return nn.parallel.DistributedDataParallel(model)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (train loss, correct and seen counts)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if any rank's flag is set (a Ctrl-C reaches ranks at different
        batches; all must stop at the same one)."""
        return bool(self.sum([float(flag)])[0]) if self.world > 1 else flag

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

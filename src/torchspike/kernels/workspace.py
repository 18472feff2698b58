"""Buffers a network reuses from one training step to the next, instead of asking malloc again.

A step of ``SpikingNet`` needs a few ``[T, B, N]`` buffers (membranes, spikes, the gradient
coming back into a neuron) that die at the end of the step. glibc's malloc serves such blocks
from fresh pages (``mmap``) or from a heap it trims and regrows, so each step page-faults and
zeroes megabytes again, and the heap fragments: peak RSS climbs well above what is alive at once
(docs/perf.md). A :class:`Workspace` keeps each buffer once it is handed out, and gives it out
again only when nothing else refers to its storage (PyTorch's count of the storage's users: any
tensor, view, saved-for-backward copy or Python reference to the storage keeps it taken). So a
step reuses last step's memory as long as the step's shapes stay the same, and the result is
bit for bit what fresh buffers would give.

CPU only (CUDA has its own caching allocator), and only for blocks of ``min_bytes`` or more:
smaller ones are cheap for malloc. At most ``per_size`` free buffers are kept per byte size and
``sizes`` byte sizes at a time (the least recently used size is dropped), so a change of batch
size does not keep the old buffers forever. :meth:`Workspace.clear` hands everything back.
"""

from __future__ import annotations

import sys
from collections import OrderedDict

import torch
from torch import Tensor

_use_count = getattr(torch._C, "_storage_Use_Count", None)  # None: no reuse, plain allocation


def _python_refs_when_held_by_a_list_only() -> int:
    for item in [object()]:  # the list, the loop variable, getrefcount's argument
        return sys.getrefcount(item)
    raise AssertionError


_FREE_REFS = _python_refs_when_held_by_a_list_only()


def _free(storages: list[torch.UntypedStorage], nbytes: int) -> torch.UntypedStorage | None:
    """A storage nothing else refers to: no tensor (the C++ count of its users is the pool's
    Python object alone) and no other Python reference to that object (``t.untyped_storage()``
    hands out the same object)."""
    for storage in storages:
        if (
            sys.getrefcount(storage) == _FREE_REFS
            and _use_count(storage._cdata) == 1
            and storage.nbytes() == nbytes
            and not storage.is_shared()  # another process may still read it
        ):
            return storage
    return None


def _rule_holds() -> bool:
    """The free test on this Python and torch: a storage only the pool refers to is free, one
    with another reference is not; otherwise no buffer is ever reused."""
    if _use_count is None:
        return False
    pool = [torch.empty(8, dtype=torch.uint8).untyped_storage()]
    free = _free(pool, 8) is pool[0]
    held = torch.empty(0, dtype=torch.uint8).set_(pool[0])  # a tensor on it
    taken = _free(pool, 8) is None
    del held
    other = pool[0]  # a second Python reference to the storage object
    still = _free(pool, 8) is None
    del other
    return free and taken and still and _free(pool, 8) is pool[0]


_REUSE = _rule_holds()


class Workspace:
    """A pool of CPU storages, reused for tensors of the same byte size once they are free."""

    def __init__(self, *, min_bytes: int = 1 << 20, per_size: int = 4, sizes: int = 8):
        for name, value in (("min_bytes", min_bytes), ("per_size", per_size), ("sizes", sizes)):
            if not isinstance(value, int) or value < (0 if name == "min_bytes" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.min_bytes, self.per_size, self.sizes = min_bytes, per_size, sizes
        self._pool: OrderedDict[int, list[torch.UntypedStorage]] = OrderedDict()

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """An uninitialised contiguous tensor, like ``torch.empty``, in a reused buffer where
        one of its byte size is free. It is not a view: in-place kernels may treat it as any
        new tensor."""
        device = torch.device(device)
        numel = 1
        for n in shape:
            numel *= n
        nbytes = numel * dtype.itemsize
        if (
            device.type != "cpu"
            or nbytes < max(self.min_bytes, 1)
            or not _REUSE
            or torch.compiler.is_compiling()
        ):
            return torch.empty(shape, dtype=dtype, device=device)
        storages = self._pool.get(nbytes)
        if storages is not None:
            self._pool.move_to_end(nbytes)
            free = _free(storages, nbytes)
            if free is not None:
                return _on(free, shape, dtype)
        new = torch.empty(nbytes, dtype=torch.uint8, device=device).untyped_storage()
        if storages is None:
            storages = self._pool[nbytes] = []
            self._drop_old_sizes()
        if len(storages) < self.per_size:
            storages.append(new)
        return _on(new, shape, dtype)

    def _drop_old_sizes(self) -> None:
        while len(self._pool) > self.sizes:
            self._pool.popitem(last=False)  # buffers still in use live on with their tensors

    def clear(self) -> None:
        """Forget every buffer (those still in use stay valid: their tensors hold them)."""
        self._pool.clear()

    def nbytes(self) -> int:
        """Bytes the workspace holds, free or in use."""
        return sum(s.nbytes() for storages in self._pool.values() for s in storages)

    def __deepcopy__(self, memo: dict) -> Workspace:  # a copied network starts with no buffers
        return Workspace(min_bytes=self.min_bytes, per_size=self.per_size, sizes=self.sizes)

    def __getstate__(self) -> dict:  # pickled (torch.save of a whole model) without buffers
        return {"min_bytes": self.min_bytes, "per_size": self.per_size, "sizes": self.sizes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


def _on(storage: torch.UntypedStorage, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    return torch.empty(0, dtype=dtype, device=storage.device).set_(storage, 0, shape)


def empty(
    workspace: Workspace | None, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> Tensor:
    """``workspace.empty(...)``, or ``torch.empty`` without a workspace."""
    if workspace is None:
        return torch.empty(shape, dtype=dtype, device=device)
    return workspace.empty(shape, dtype, device)

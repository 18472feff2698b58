"""Deprecated: ``torchspike.allocator`` moved to :mod:`torchspike.kernels.allocator`."""

import warnings

from .kernels.allocator import retain_freed_memory

__all__ = ["retain_freed_memory"]

warnings.warn(
    "torchspike.allocator moved to torchspike.kernels.allocator; "
    "import from there, this path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

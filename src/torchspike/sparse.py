"""Deprecated: ``torchspike.sparse`` moved to :mod:`torchspike.kernels.sparse`."""

import warnings

from .kernels.sparse import (
    MIN_OUT_FEATURES,
    density_threshold,
    maybe_sparse_linear,
    sparse_binary_linear,
)

__all__ = ["MIN_OUT_FEATURES", "density_threshold", "maybe_sparse_linear", "sparse_binary_linear"]

warnings.warn(
    "torchspike.sparse moved to torchspike.kernels.sparse; "
    "import from there, this path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

"""Deprecated: ``torchspike.lif_linear`` moved to :mod:`torchspike.kernels.lif_linear`."""

import warnings

from .kernels.lif_linear import lif_linear

__all__ = ["lif_linear"]

warnings.warn(
    "torchspike.lif_linear moved to torchspike.kernels.lif_linear; "
    "import from there, this path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

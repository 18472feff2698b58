"""Deprecated: ``torchspike.workspace`` moved to :mod:`torchspike.kernels.workspace`."""

import warnings

from .kernels.workspace import Workspace, empty

__all__ = ["Workspace", "empty"]

warnings.warn(
    "torchspike.workspace moved to torchspike.kernels.workspace; "
    "import from there, this path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

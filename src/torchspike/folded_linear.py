"""Deprecated: ``torchspike.folded_linear`` moved to :mod:`torchspike.kernels.folded_linear`."""

import warnings

from .kernels.folded_linear import folded_linear, input_grad, linear_into, weight_grad_accumulator

__all__ = ["folded_linear", "input_grad", "linear_into", "weight_grad_accumulator"]

warnings.warn(
    "torchspike.folded_linear moved to torchspike.kernels.folded_linear; "
    "import from there, this path will be removed",
    DeprecationWarning,
    stacklevel=2,
)

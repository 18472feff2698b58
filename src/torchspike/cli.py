"""Deprecated path of the command line: ``torchspike.app.cli``."""

import warnings

from .app.cli import main

warnings.warn("torchspike.cli moved to torchspike.app.cli", DeprecationWarning, stacklevel=2)

__all__ = ["main"]

"""Old module paths of the application (torchspike 0.1), which moved to ``torchspike.app``."""

from __future__ import annotations


def refuse(old: str, new: str) -> None:
    """Raise an ImportError that says where ``old``'s contents went."""
    raise ImportError(
        f"{old} was removed in torchspike 0.2: the application moved to torchspike.app; use {new}"
    )

"""Training methods: each builds, runs and scores one kind of network for the loop."""

from __future__ import annotations

from typing import Any


def method_for(name: str) -> Any:
    """The object that builds, runs and scores models of the gradient method ``name``."""
    if name == "bptt":
        from .bptt import BPTT

        return BPTT()
    if name == "eventprop":
        from .eventprop import EventProp

        return EventProp()
    raise ValueError(f"method must be 'bptt' or 'eventprop' for the gradient loop, got {name!r}")

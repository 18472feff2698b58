"""Removed in torchspike 0.2 (the application moved to ``torchspike.app``)."""

from ._moved import refuse

refuse(__name__, "torchspike.app.plot")

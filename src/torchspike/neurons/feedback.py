"""``Feedback``: a recurrent connection inside a module's ``forward``, one time step late.

``loop.read()`` gives what ``loop.write(x)`` stored at the previous step (zeros at the first),
so a layer can feed its own output, or a later layer's, back into its input:

    def forward(self, x):
        z, _ = self.lif(self.fc(x) + self.rec(self.loop.read()))
        self.loop.write(z)
        return z

The value lives in the network's scope like a neuron's state (``SpikingNet`` returns it with
them). A module with a ``Feedback`` runs step by step: each step needs the previous one's value.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..steps import Scope, current_scope


class Feedback(nn.Module):
    """A one-step delay of a ``[B, *shape]`` signal inside ``forward``: ``read()``, ``write(x)``."""

    def __init__(self, *shape: int):
        super().__init__()
        if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in shape):
            raise ValueError(f"shape must be positive integers, got {shape!r}")
        self.shape = tuple(shape)

    def extra_repr(self) -> str:
        return ", ".join(map(str, self.shape))

    def read(self) -> Tensor:
        """The value written at the previous step, zeros at the first."""
        scope = self._scope("read")
        value = scope.states.get(self)
        if value is None:
            return torch.zeros(scope.batch, *self.shape, dtype=scope.dtype, device=scope.device)
        return value

    def write(self, x: Tensor) -> None:
        """Store ``x`` ``[B, *shape]`` for the next step's ``read()`` (once per step)."""
        scope = self._scope("write")
        if self in scope.pending:
            raise ValueError(f"Feedback {scope.name(self)} was written twice in one time step")
        expected = (scope.batch, *self.shape)
        if not isinstance(x, Tensor) or tuple(x.shape) != expected:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Feedback {scope.name(self)} takes shape {expected}, got {got}")
        scope.pending[self] = x

    def forward(self, x: Tensor) -> Tensor:
        raise TypeError("call loop.read() and loop.write(x) in forward, not loop(x)")

    def _scope(self, what: str) -> Scope:
        scope = current_scope()
        if scope is None or scope.path == "stateless":
            raise ValueError(
                f"Feedback.{what}() works in the forward of a module run by SpikingNet only"
            )
        return scope.feedback(self, what)

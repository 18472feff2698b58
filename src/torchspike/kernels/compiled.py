"""Whole-sequence elementwise pieces of the fused LIF kernel, eager or via ``torch.compile``.

Eager PyTorch makes one pass over memory per operation; ``torch.compile`` (inductor) fuses the
surrogate slope and its product with the incoming gradient into one loop. It is opt-in
(``LIF(..., compile=True)``) because the first call compiles for a few seconds and needs a C++
compiler; if compiling fails, the eager version runs instead, with a warning. Measured on the
2-core CPU the gain is small (the per-step loops dominate), and a compiled per-step charge/fire
update was slower than eager (call overhead per step), so only this piece is compiled.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from ..surrogate import Surrogate


def direct_grad(vs: Tensor, v_th: Tensor, g_spikes: Tensor, spike_fn: Surrogate) -> Tensor:
    """``dL/dz * dz/dU`` over the whole sequence: the surrogate slope times the spike gradient."""
    return spike_fn.derivative(vs - v_th) * g_spikes


_compiled: dict[str, Callable] = {}
_failed: set[str] = set()


def get(name: str, compile: bool) -> Callable:
    """The eager function ``name``, or its compiled version when ``compile`` and it works."""
    eager = {"direct_grad": direct_grad}[name]
    if not compile or name in _failed or torch.compiler.is_compiling():
        return eager
    if name not in _compiled:
        _compiled[name] = torch.compile(eager, dynamic=False)
    compiled = _compiled[name]

    def run(*args):
        if name in _failed:
            return eager(*args)
        try:  # detached: dynamo need not look at autograd metadata inside autograd.Function
            return compiled(*(a.detach() if isinstance(a, torch.Tensor) else a for a in args))
        except Exception as err:  # no C++ compiler, unsupported platform, ...
            _failed.add(name)
            warnings.warn(
                f"torch.compile of the LIF kernel failed, running eagerly ({err!r:.200})",
                RuntimeWarning,
                stacklevel=2,
            )
            return eager(*args)

    return run

"""Keyword names from snnTorch, SpikingJelly and Norse, mapped to torchspike's, in one table.

A neuron constructor given one of them raises a ``TypeError`` that names torchspike's spelling,
or says how torchspike does it where there is no one keyword, instead of Python's bare
"unexpected keyword argument" (every ``Neuron`` subclass's ``__init__`` is checked).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

# peer keyword -> (torchspike keyword or None, whose name it is, note)
PEER_NAMES: dict[str, tuple[str | None, str, str]] = {
    "threshold": ("v_th", "snnTorch", ""),
    "v_threshold": ("v_th", "SpikingJelly", ""),
    "spike_grad": ("spike_fn", "snnTorch", "a surrogate name such as 'atan', or a Surrogate"),
    "surrogate_function": (
        "spike_fn",
        "SpikingJelly",
        "a surrogate name such as 'sigmoid', or a Surrogate",
    ),
    "reset_mechanism": ("reset", "snnTorch", "'subtract', 'zero' or 'none'"),
    "learn_threshold": ("learn_v_th", "snnTorch", ""),
    "learn_beta": ("learn_beta", "snnTorch", ""),
    "linear_features": ("size", "snnTorch (RLeaky)", ""),
    "v_reset": (
        "reset",
        "SpikingJelly",
        "v_reset=None (soft reset) is reset='subtract'; a reset to 0 is reset='zero'",
    ),
    "detach_reset": (
        None,
        "SpikingJelly",
        "torchspike always detaches the reset term (no gradient flows through it)",
    ),
    "decay_input": (
        None,
        "SpikingJelly",
        "torchspike adds the input undecayed, v = beta * v + x (SpikingJelly's "
        "decay_input=False with beta = 1 - 1/tau)",
    ),
    "init_tau": (None, "SpikingJelly", "give beta and learn_beta=True"),
    "step_mode": (
        None,
        "SpikingJelly",
        "torchspike neurons take whole sequences [T, B, ...]; one step is T = 1",
    ),
    "backend": (
        None,
        "SpikingJelly",
        "the fused kernel is picked by itself (SpikingNet.explain() says which runs)",
    ),
    "store_v_seq": (None, "SpikingJelly", "output='membrane' returns the membrane sequence"),
    "init_hidden": (
        None,
        "snnTorch",
        "torchspike neurons keep no hidden state: forward(xs, state) returns the state",
    ),
    "alpha": (
        None,
        "snnTorch (Synaptic)",
        "CubaLIF takes tau_syn and dt (alpha = exp(-dt / tau_syn))",
    ),
    "p": (
        None,
        "Norse",
        "torchspike neurons take their parameters as keywords (beta or tau with dt, v_th, "
        "reset), not a parameters object",
    ),
    "tau_mem_inv": (None, "Norse", "give tau_mem (CubaLIF) or tau with dt (LIF): 1 / tau_mem_inv"),
    "tau_syn_inv": (None, "Norse", "give tau_syn (CubaLIF): 1 / tau_syn_inv"),
    "v_leak": (None, "Norse", "torchspike neurons leak towards 0"),
}


def peer_name_error(cls_name: str, key: str, accepted: set[str]) -> TypeError | None:
    """The ``TypeError`` for keyword ``key`` given to ``cls_name``, which takes ``accepted``;
    ``None`` where ``key`` is not in :data:`PEER_NAMES`."""
    if key not in PEER_NAMES:
        return None
    ours, peer, note = PEER_NAMES[key]
    head = f"{cls_name} got an unexpected keyword {key!r} ({peer}'s name)"
    if ours is None:
        return TypeError(f"{head}: {note}")
    if ours == key:
        return TypeError(f"{head}: torchspike's name is the same, but {cls_name} does not take it")
    if ours not in accepted:
        return TypeError(f"{head}: torchspike calls it {ours}, which {cls_name} does not take")
    return TypeError(f"{head}: torchspike calls it {ours}" + (f" ({note})" if note else ""))


def check_peer_names(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` (a neuron's ``__init__``), raising :func:`peer_name_error` for a peer keyword
    it does not take."""
    params = inspect.signature(init).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return init
    accepted = set(params)

    @functools.wraps(init)
    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in accepted:
                error = peer_name_error(type(self).__name__, key, accepted)
                if error is not None:
                    raise error
        init(self, *args, **kwargs)

    return checked

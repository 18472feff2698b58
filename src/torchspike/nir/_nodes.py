"""One NIR node -> one torchspike module (neurons with NIR's semantics, torch layers otherwise)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import surrogate
from ._modules import NIRLIF, NIRCubaLIF, NIRWarning, Scale, SumPool2d, Threshold

NEURON_TYPES = ("LIF", "LI", "IF", "I", "CubaLIF", "CubaLI")
LAYER_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d", "Flatten", "AvgPool2d", "SumPool2d")
LAYER_TYPES += ("Threshold", "Scale")

# a NIR neuron's parameters are the torchspike module's, by name (NIR's v_threshold is v_th);
# which of them a node has decides the kind (LIF, LI, IF, I, CubaLIF, CubaLI)
_NEURON_FIELDS = ("tau", "tau_syn", "tau_mem", "r", "v_leak", "w_in", "v_threshold", "v_reset")
_RENAME = {"v_threshold": "v_th"}


def is_neuron(node: Any) -> bool:
    return type(node).__name__ in NEURON_TYPES


def supported(node: Any) -> bool:
    return type(node).__name__ in NEURON_TYPES + LAYER_TYPES


def array(value: Any) -> np.ndarray:
    """A numpy array from a node field (Norse stores torch tensors; scalars stay 0-d)."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _param(value: Any) -> Tensor:
    """A float64 tensor; one value repeated over all neurons becomes a scalar."""
    a = array(value).astype(np.float64)
    if a.size == 1:
        return torch.tensor(float(a.flat[0]), dtype=torch.float64)
    return torch.from_numpy(a.copy())


def _ints(value: Any) -> int | tuple[int, ...] | str:
    if isinstance(value, str | bytes):
        return value.decode() if isinstance(value, bytes) else value
    a = array(value)
    return int(a) if a.ndim == 0 else tuple(int(v) for v in a.flat)


def _float32(value: Any) -> Tensor:
    return torch.from_numpy(array(value).astype(np.float32).copy())


def module(name: str, node: Any, dt: float, spike_fn: surrogate.Surrogate, consumers=()):
    """The torchspike module of NIR node ``name`` (``None`` for Input and Output).

    ``consumers`` are the nodes its output feeds (to read an off-spec ``Flatten``)."""
    import nir

    if isinstance(node, nir.Input | nir.Output):
        return None
    if is_neuron(node):
        params = {
            _RENAME.get(field, field): _param(getattr(node, field))
            for field in _NEURON_FIELDS
            if hasattr(node, field)
        }
        cls = NIRCubaLIF if "tau_syn" in params else NIRLIF
        return cls(dt=dt, spike_fn=spike_fn, **params)
    if isinstance(node, nir.Affine | nir.Linear):
        weight = _float32(node.weight)
        if weight.dim() != 2:
            raise ValueError(
                f"node {name!r}: {type(node).__name__} weights must be 2-d, "
                f"got {tuple(weight.shape)}"
            )
        bias = _float32(node.bias) if isinstance(node, nir.Affine) else None
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if bias is not None:
                linear.bias.copy_(bias)
        return linear
    if isinstance(node, nir.Conv1d | nir.Conv2d):
        return _conv(node)
    if isinstance(node, nir.Flatten):
        return _flatten(name, node, consumers)
    if isinstance(node, nir.AvgPool2d):
        return nn.AvgPool2d(**_pool(node))
    if isinstance(node, nir.SumPool2d):
        return SumPool2d(**_pool(node))
    if isinstance(node, nir.Threshold):
        return Threshold(_param(node.threshold), spike_fn)
    if isinstance(node, nir.Scale):
        return Scale(_param(node.scale))
    raise ValueError(
        f"node {name!r}: NIR {type(node).__name__} is not supported by torchspike.nir.load "
        f"(supported: {', '.join(NEURON_TYPES + LAYER_TYPES)})"
    )


def _conv(node: Any) -> nn.Module:
    import nir

    weight, bias = _float32(node.weight), _float32(node.bias)
    conv_cls = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
    groups = int(array(node.groups))
    conv = conv_cls(
        weight.shape[1] * groups,
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=_ints(node.stride),
        padding=_ints(node.padding),
        dilation=_ints(node.dilation),
        groups=groups,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias.expand(weight.shape[0]))
    return conv


def _pool(node: Any) -> dict[str, Any]:
    return {
        "kernel_size": _ints(node.kernel_size),
        "stride": _ints(node.stride),
        "padding": _ints(node.padding),
    }


def _flattened(shape: tuple[int, ...], start: int, end: int) -> tuple[int, ...] | None:
    """One sample's shape after flattening dims ``start..end`` of ``shape``, or ``None``."""
    n = len(shape)
    start, end = start + n if start < 0 else start, end + n if end < 0 else end
    if not 0 <= start <= end < n:
        return None
    return (*shape[:start], int(np.prod(shape[start : end + 1])), *shape[end + 1 :])


def _flatten(name: str, node: Any, consumers) -> nn.Flatten:
    """NIR ``Flatten`` counts one sample's dims (no batch): ``start_dim = 0`` is torch's 1."""
    start, end = int(array(node.start_dim)), int(array(node.end_dim))
    shape = _recorded_shape(node)
    wants = {in_features(c) for c in consumers} - {None}
    if shape is not None and len(wants) == 1:
        start, end = flatten_dims(name, start, end, shape, wants.pop())
    return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)


def flatten_dims(name: str, start: int, end: int, shape: tuple[int, ...], want: int):
    """NIR ``(start_dim, end_dim)`` of a Flatten over one sample of ``shape`` that feeds a layer
    taking ``want`` features.

    Some exporters wrote torch's numbering (``start_dim = 1`` over ``[C, H, W]``, the batch
    counted). Where NIR's numbering does not give ``want`` features and torch's does, the node
    is read torch's way with a ``NIRWarning``; where neither does, it is refused."""
    spec = _flattened(shape, start, end)
    if spec == (want,):
        return start, end
    torch_end = end - 1 if end > 0 else end
    if start > 0 and _flattened(shape, start - 1, torch_end) == (want,):
        warnings.warn(
            f"node {name!r}: Flatten(start_dim={start}, end_dim={end}) over one sample of shape "
            f"{list(shape)} gives {list(spec or [])}, but the next layer takes {want} features: "
            f"read as torch's numbering (batch counted), i.e. NIR start_dim={start - 1}",
            NIRWarning,
            stacklevel=5,
        )
        return start - 1, torch_end
    raise ValueError(
        f"node {name!r}: Flatten(start_dim={start}, end_dim={end}) over one sample of shape "
        f"{list(shape)} gives {list(spec or [])}, and the next layer takes {want} features; "
        "no reading of the dims fits"
    )


def in_features(node: Any) -> int | None:
    """What an ``Affine``/``Linear`` node takes (``None`` for other nodes)."""
    if type(node).__name__ in ("Affine", "Linear"):
        weight = array(node.weight)
        return int(weight.shape[1]) if weight.ndim == 2 else None
    return None


def _recorded_shape(node: Any) -> tuple[int, ...] | None:
    shape = getattr(node, "input_type", None)
    shape = shape.get("input") if isinstance(shape, dict) else None
    if shape is None:
        return None
    shape = tuple(int(v) for v in array(shape).flat)
    return shape if shape and all(v > 0 for v in shape) else None

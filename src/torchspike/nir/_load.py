"""NIR -> torchspike: a graph is read, made flat, checked, then built as a ``SpikingNet`` (a
chain) or a ``NIRGraphNet`` (branches, cycles), and tried on one step of its input shape."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import nn

from .. import surrogate
from ..neurons import Neuron
from . import _dt
from ._graph import PASS, check, flatten, schedule
from ._graphnet import DELAY_INITS, NIRGraphNet, resting_input
from ._modules import NIRWarning
from ._nodes import array, flatten_dims, in_features, module


def load(
    graph: Any,
    *,
    dt: float | None = None,
    spike_fn: str | surrogate.Surrogate = "atan",
    type_check: bool = True,
    delay_init: str = "rest",
    probe: bool = True,
) -> nn.Module:
    """A torchspike module running ``graph`` (a ``nir.NIRGraph`` or a ``.nir`` path) over time.

    Neurons follow NIR's equations under forward Euler with step ``dt`` (see
    ``torchspike.nir.NIRLIF``). ``dt`` defaults to ``graph.metadata["dt"]`` (written by
    ``torchspike.nir.export``); without one it is inferred where two or more time constants
    agree on ``dt = tau / r`` (with a ``NIRWarning``), else it must be given (docs/nir.md lists
    what each exporter assumes). When ``dt`` was not recorded and ``probe`` is true, a random
    input is run and a ``NIRWarning`` names any spiking layer that stays silent or saturates.

    Before anything runs, subgraphs are inlined and every edge, node type and cycle is checked
    (an invalid graph raises ``ValueError`` naming the edge or node), then one step of the
    Input's shape is tried. ``type_check=False`` skips nir's own type check when reading a
    file (graphs some exporters write fail it); torchspike's checks still run, but a shape
    that nir would have caught may only fail at the first step.

    A chain ``Input -> ... -> Output`` loads as a ``SpikingNet``; any other graph as a
    ``NIRGraphNet``, where an edge closing a cycle brings the previous step's output and, at the
    first step, what its source gives at rest (``delay_init="rest"``, e.g. a recurrent
    ``Affine``'s bias) or 0 (``"zero"``). Both take ``xs`` ``[T, B, ...]`` and return
    ``(ys, state)``.
    """
    import nir

    if delay_init not in DELAY_INITS:
        raise ValueError(f"delay_init must be one of {DELAY_INITS}, got {delay_init!r}")
    if isinstance(graph, str | os.PathLike):
        graph = _read(graph, type_check)
    elif not isinstance(graph, nir.NIRGraph):
        graph = nir.NIRGraph.from_list(graph, type_check=type_check)
    nodes, edges = flatten(graph)
    input_name, output_name = check(nodes, edges)
    dt, source = _dt.resolve(graph.metadata, nodes, dt)
    spike_fn = surrogate.get(spike_fn)
    order, back = schedule(nodes, edges, input_name)
    modules = {
        name: None if node is PASS else module(name, node, dt, spike_fn, _fed(name, edges, nodes))
        for name, node in nodes.items()
    }
    shape = _input_shape(nodes, edges, input_name)
    try:
        _one_step(order, edges, back, modules, nodes, input_name, shape)
    except ValueError as err:
        if shape is None or len(shape) < 2 or shape[0] != 1:
            raise
        try:  # a batch dimension of 1 recorded in the Input's type?
            _one_step(order, edges, back, modules, nodes, input_name, shape[1:])
        except ValueError:
            raise err from None
        warnings.warn(
            f"the Input's type {list(shape)} does not fit the first layer, {list(shape[1:])} "
            "does: read as one sample with a batch dimension of 1 recorded",
            NIRWarning,
            stacklevel=2,
        )
        shape = shape[1:]
    if _chain(order, edges, back):
        from ..net import SpikingNet

        names = [k for k in order if modules[k] is not None]
        net = SpikingNet([modules[k] for k in names]) if names else SpikingNet(nn.Identity())
        labels = {str(i): k for i, k in enumerate(names)}
    else:
        net = NIRGraphNet(
            modules, order, edges, back, input_name, output_name, delay_init=delay_init
        )
        labels = {k: k for k in order}
    if probe and source != "metadata":
        _dt.probe(net, shape, dt, source, labels)
    return net


def _read(path: str | os.PathLike, type_check: bool) -> Any:
    import h5py
    import nir

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as err:
        raise ValueError(f"{os.fspath(path)!r} is not a NIR file (HDF5): {err}") from err
    try:
        return nir.read(path) if type_check else _read_unchecked(path)
    except ValueError as err:
        if type_check and "type" in str(err).lower() and "references" not in str(err):
            raise ValueError(
                f"nir's type check refuses {os.fspath(path)!r}: {err}. "
                "load(path, type_check=False) skips it (torchspike still checks the edges and "
                "tries one step of the Input's shape, but a shape nir would have caught may "
                "only fail when the network runs)"
            ) from err
        raise ValueError(f"nir cannot read {os.fspath(path)!r}: {err}") from err
    except (TypeError, KeyError, AssertionError) as err:
        raise ValueError(
            f"nir {nir.__version__} cannot read {os.fspath(path)!r}: {type(err).__name__}: {err}"
        ) from err


def _read_unchecked(path: str | os.PathLike) -> Any:
    """``nir.read`` without any type check: nir 1.0.8 checks subgraphs even when told not to."""
    import h5py
    import nir
    from nir.serialization import hdf2dict

    def build(data: dict) -> Any:
        if data.get("type") in ("Conv1d", "Conv2d") and "input_shape" not in data:
            data = {**data, "input_shape": None}  # files before nir 1.0 had none
        if data.get("type") != "NIRGraph":
            return nir.dict2NIRNode(data)
        nodes = {str(k): build(v) for k, v in data.get("nodes", {}).items()}
        edges = [tuple(str(_text(v)) for v in edge) for edge in data.get("edges", [])]
        return nir.NIRGraph(nodes, edges, metadata=data.get("metadata", {}), type_check=False)

    with h5py.File(path, "r") as f:
        return build(hdf2dict(f["node"]))


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _fed(name: str, edges: list[tuple[str, str]], nodes: dict[str, Any]) -> list[Any]:
    return [nodes[b] for a, b in edges if a == name]


def _chain(order: list[str], edges: list[tuple[str, str]], back: set) -> bool:
    """True if the nodes form one path (each feeds the next in ``order``, nothing else)."""
    path = set(zip(order[:-1], order[1:], strict=True))
    return not back and len(edges) == len(order) - 1 and set(edges) == path


def _input_shape(nodes: dict[str, Any], edges, input_name: str) -> tuple[int, ...] | None:
    """One sample's shape: the Input's type, else what the first layer takes."""
    recorded = nodes[input_name].input_type.get("input")
    if recorded is not None:
        shape = tuple(int(v) for v in array(recorded).flat)
        if shape and all(v > 0 for v in shape):
            return shape
    first = [nodes[b] for a, b in edges if a == input_name]
    if len(first) == 1 and type(first[0]).__name__ in ("Affine", "Linear"):
        return (int(array(first[0].weight).shape[1]),)
    if len(first) == 1 and type(first[0]).__name__ == "Conv2d":
        weight, size = array(first[0].weight), getattr(first[0], "input_shape", None)
        if size is not None and array(size).size == 2:
            groups = int(array(first[0].groups))
            return (weight.shape[1] * groups, *(int(v) for v in array(size).flat))
    return None


@torch.no_grad()
def _one_step(order, edges, back, modules: dict, nodes: dict, start: str, shape):
    """Run one step of zeros of ``shape`` through every node: a shape error is raised now,
    naming its node, and a ``Flatten`` is read against the shape that reaches it."""
    if shape is None:
        return
    outputs = {start: torch.zeros(1, *shape)}
    for name in order:
        if name == start:
            continue
        parts = [outputs[a] for a, b in edges if b == name and (a, b) not in back]
        layer = modules[name]
        if parts:
            x = parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])
        else:
            x = resting_input(name, layer, outputs[start])
        if isinstance(layer, nn.Flatten):
            wants = {in_features(nodes[b]) for a, b in edges if a == name} - {None}
            if len(wants) == 1:
                start, end = (d - 1 if d > 0 else d for d in (layer.start_dim, layer.end_dim))
                start, end = flatten_dims(name, start, end, tuple(x.shape[1:]), wants.pop())
                layer = modules[name] = nn.Flatten(start + 1, end + 1 if end >= 0 else end)
        try:
            if isinstance(layer, Neuron):
                x = layer.step(x, layer.initial_state(x))[0]
            elif layer is not None:
                x = layer(x)
        except RuntimeError as err:
            raise ValueError(
                f"node {name!r} ({type(layer).__name__}) rejects its input of shape "
                f"{list(x.shape[1:])} per sample (the Input is {list(shape)}): {err}"
            ) from err
        outputs[name] = x

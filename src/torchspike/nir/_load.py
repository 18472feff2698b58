"""NIR -> torchspike: a chain of nodes loads as a ``SpikingNet``, other graphs via nirtorch."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import _checks as check
from .. import surrogate
from ..neurons import Neuron
from ..steps import run_steps
from ._modules import NIRLIF, NIRCubaLIF, Scale, SumPool2d, Threshold


def load(
    graph: Any,
    *,
    dt: float | None = None,
    spike_fn: str | surrogate.Surrogate = "atan",
) -> nn.Module:
    """A torchspike module running ``graph`` (a ``nir.NIRGraph`` or a ``.nir`` path) over time.

    Neurons follow NIR's equations under forward Euler with step ``dt`` (see
    ``torchspike.nir.NIRLIF``). ``dt`` defaults to the ``dt`` in ``graph.metadata`` (written by
    ``torchspike.nir.export``); graphs without one need it given (snnTorch exports assume
    ``1e-4``, Norse ``1e-3``). A chain ``Input -> ... -> Output`` loads as a ``SpikingNet``; any
    other graph (branches, recurrence, subgraphs) as a ``NIRGraphNet`` built with nirtorch, where
    an edge closing a cycle carries the previous step's output. Both take ``xs`` ``[T, B, ...]``
    and return ``(ys, state)``.
    """
    import nir

    if isinstance(graph, str | os.PathLike):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.NIRGraph.from_list(graph)
    dt = _resolve_dt(graph, dt)
    spike_fn = surrogate.get(spike_fn)
    chain = _chain(graph)
    if chain is None:
        return _graph_net(graph, dt, spike_fn)
    from ..net import SpikingNet

    modules = [_module(graph.nodes[name], dt, spike_fn) for name in chain]
    modules = [m for m in modules if m is not None]
    return SpikingNet(modules) if modules else SpikingNet(nn.Identity())


def _resolve_dt(graph: Any, dt: float | None) -> float:
    if dt is None:
        dt = graph.metadata.get("dt") if isinstance(graph.metadata, dict) else None
        if dt is None:
            raise ValueError(
                "this graph records no dt: pass load(graph, dt=...), the step its exporter "
                "assumed (snnTorch: 1e-4, Norse: 1e-3)"
            )
    dt = float(np.asarray(dt))
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    return dt


def _chain(graph: Any) -> list[str] | None:
    """The node names from the Input to the Output if the graph is one path, else ``None``."""
    import nir

    nodes, edges = graph.nodes, list(dict.fromkeys((str(a), str(b)) for a, b in graph.edges))
    if any(isinstance(n, nir.NIRGraph) for n in nodes.values()):
        return None
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    successor: dict[str, str] = {}
    for a, b in edges:
        if a in successor:
            return None
        successor[a] = b
    path, seen = [inputs[0]], {inputs[0]}
    while path[-1] in successor:
        nxt = successor[path[-1]]
        if nxt in seen:
            return None
        path.append(nxt)
        seen.add(nxt)
    if path[-1] != outputs[0] or len(path) != len(nodes) or len(edges) != len(nodes) - 1:
        return None
    return path


def _array(value: Any) -> np.ndarray:
    """A numpy array from a node field (Norse stores torch tensors; scalars stay 0-d)."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _param(value: Any) -> Tensor:
    """A float64 tensor; one value repeated over all neurons becomes a scalar."""
    a = _array(value).astype(np.float64)
    if a.size == 1:
        return torch.tensor(float(a.flat[0]), dtype=torch.float64)
    return torch.from_numpy(a.copy())


def _ints(value: Any) -> int | tuple[int, ...] | str:
    if isinstance(value, str | bytes):
        return value.decode() if isinstance(value, bytes) else value
    a = _array(value)
    return int(a) if a.ndim == 0 else tuple(int(v) for v in a.flat)


def _float32(value: Any) -> Tensor:
    return torch.from_numpy(_array(value).astype(np.float32).copy())


# a NIR neuron's parameters are the torchspike module's, by name (NIR's v_threshold is v_th);
# which of them a node has decides the kind (LIF, LI, IF, I, CubaLIF, CubaLI)
_NEURON_FIELDS = ("tau", "tau_syn", "tau_mem", "r", "v_leak", "w_in", "v_threshold", "v_reset")
_RENAME = {"v_threshold": "v_th"}


def _module(node: Any, dt: float, spike_fn: surrogate.Surrogate) -> nn.Module | None:
    """The torchspike module of one NIR node (``None`` for Input and Output)."""
    import nir

    if isinstance(node, nir.Input | nir.Output):
        return None
    if isinstance(node, nir.LIF | nir.LI | nir.IF | nir.I | nir.CubaLIF | nir.CubaLI):
        params = {
            _RENAME.get(name, name): _param(getattr(node, name))
            for name in _NEURON_FIELDS
            if hasattr(node, name)
        }
        cls = NIRCubaLIF if "tau_syn" in params else NIRLIF
        return cls(dt=dt, spike_fn=spike_fn, **params)
    if isinstance(node, nir.Affine | nir.Linear):
        weight = _float32(node.weight)
        if weight.dim() != 2:
            raise ValueError(
                f"{type(node).__name__} weights must be 2-d, got {tuple(weight.shape)}"
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
        start, end = int(_array(node.start_dim)), int(_array(node.end_dim))
        return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
    if isinstance(node, nir.AvgPool2d):
        return nn.AvgPool2d(**_pool(node))
    if isinstance(node, nir.SumPool2d):
        return SumPool2d(**_pool(node))
    if isinstance(node, nir.Threshold):
        return Threshold(_param(node.threshold), spike_fn)
    if isinstance(node, nir.Scale):
        return Scale(_param(node.scale))
    raise ValueError(f"NIR node {type(node).__name__} is not supported by torchspike.nir.load")


def _conv(node: Any) -> nn.Module:
    import nir

    weight, bias = _float32(node.weight), _float32(node.bias)
    conv_cls = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
    groups = int(_array(node.groups))
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


# --------------------------------------------------------------- general graphs via nirtorch


class _StepNeuron(nn.Module):
    """A neuron run one step at a time, the ``forward(x, state) -> (y, state)`` nirtorch wants."""

    def __init__(self, neuron: Neuron):
        super().__init__()
        self.neuron = neuron

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        if state is None:
            state = self.neuron.initial_state(x)
        return self.neuron.step(x, state)


class NIRGraphNet(nn.Module):
    """A NIR graph with branches or cycles, stepped through time by a nirtorch ``GraphModule``.

    ``forward(xs, state=None) -> (ys, state)`` with ``xs`` ``[T, B, ...]``; ``state`` is
    nirtorch's dictionary of per-node states.
    """

    def __init__(self, graph_module: nn.Module):
        super().__init__()
        self.graph = graph_module

    def forward(self, xs: Tensor, state: dict | None = None) -> tuple[Tensor, dict]:
        check.sequence(xs)
        return run_steps(lambda x, s: self.graph(x, s), xs, state)


def _graph_net(graph: Any, dt: float, spike_fn: surrogate.Surrogate) -> NIRGraphNet:
    import nir
    import nirtorch

    def convert(node):
        module = _module(node, dt, spike_fn)
        return _StepNeuron(module) if isinstance(module, Neuron) else module

    types = (nir.LIF, nir.LI, nir.IF, nir.I, nir.CubaLIF, nir.CubaLI, nir.Affine, nir.Linear)
    types += (nir.Conv1d, nir.Conv2d, nir.Flatten, nir.AvgPool2d, nir.SumPool2d)
    types += (nir.Threshold, nir.Scale)
    node_map = dict.fromkeys(types, convert)
    return NIRGraphNet(nirtorch.nir_to_torch(graph, node_map))

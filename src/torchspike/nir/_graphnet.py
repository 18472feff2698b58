"""``NIRGraphNet``: a NIR graph with branches, cycles or subgraphs, run one step at a time."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .. import _checks as check
from ..neurons import Neuron
from ..steps import run_steps

DELAY_INITS = ("rest", "zero")


class NIRGraphState(NamedTuple):
    """A ``NIRGraphNet``'s state between steps, by node name."""

    neurons: dict[str, Any]  # each neuron node's state
    delayed: dict[str, Tensor]  # the previous step's output of each node that closes a cycle


def _key(name: str) -> str:
    return name.replace(".", ":")  # module names cannot hold "."


class NIRGraphNet(nn.Module):
    """A NIR graph run step by step: each node takes the sum of what its edges bring.

    The nodes run in the order of a walk from the Input. An edge that closes a cycle (it
    leads back to a node already run in this step) brings its source's output of the
    *previous* step. At the first step there is none; ``delay_init`` says what it brings:

    - ``"rest"`` (default): what the source gives when every neuron is at rest, e.g. a
      recurrent ``Affine`` gives ``W @ 0 + b = b`` (NIR's edges are instantaneous, so in
      continuous time the bias is there from the start; snnTorch's ``RLeaky``/``RSynaptic``
      do the same);
    - ``"zero"``: 0 (nirtorch's, and hence Norse's, first step).

    ``forward(xs, state=None) -> (ys, state)`` with ``xs`` ``[T, B, ...]``. Built by
    :func:`torchspike.nir.load` for a graph that is not a chain.

    Args:
        modules: each node's module by name (``None`` for a node that passes its input on).
        order: the node names in the order they run within a step.
        edges: ``(source, destination)`` pairs.
        back: the edges that close a cycle (delayed by one step).
        input: the Input node's name.
        output: the Output node's name.
        delay_init: ``"rest"`` or ``"zero"``, as above.
    """

    def __init__(
        self,
        modules: dict[str, nn.Module | None],
        order: list[str],
        edges: list[tuple[str, str]],
        back: set[tuple[str, str]],
        input: str,
        output: str,
        *,
        delay_init: str = "rest",
    ):
        super().__init__()
        if delay_init not in DELAY_INITS:
            raise ValueError(f"delay_init must be one of {DELAY_INITS}, got {delay_init!r}")
        self.delay_init = delay_init
        self.order = list(order)
        self.input_name, self.output_name = input, output
        self.nodes = nn.ModuleDict({_key(k): m for k, m in modules.items() if m is not None})
        self.sources = {k: [a for a, b in edges if b == k and (a, b) not in back] for k in order}
        self.delayed = {k: [a for a, b in edges if b == k and (a, b) in back] for k in order}
        self.tails = sorted({a for a, _ in back})

    def extra_repr(self) -> str:
        cycles = [f"{a} -> {b}" for b, sources in self.delayed.items() for a in sources]
        return f"delay_init={self.delay_init!r}, delayed edges: {cycles or 'none'}"

    def module(self, name: str) -> nn.Module | None:
        """The module of node ``name`` (``None`` for Input, Output and subgraph borders)."""
        return self.nodes[_key(name)] if _key(name) in self.nodes else None

    def forward(self, xs: Tensor, state: NIRGraphState | None = None):
        check.sequence(xs)
        constants = self._constants(xs.dtype)
        return run_steps(lambda x, s: self._step(x, s, constants)[:2], xs, state)

    def trace(self, xs: Tensor, names: list[str] | None = None):
        """``(ys, {name: [T, B, ...]})``: the outputs of ``names`` (default: every neuron)."""
        check.sequence(xs)
        if names is None:
            names = [k for k in self.order if isinstance(self.module(k), Neuron)]
        unknown = [k for k in names if k not in self.sources]
        if unknown:
            raise ValueError(f"no nodes named {unknown}; the nodes are {self.order}")
        state, ys, records = None, [], {k: [] for k in names}
        constants = self._constants(xs.dtype)
        for x in xs.unbind(0):
            y, state, outputs = self._step(x, state, constants)
            ys.append(y)
            for k in names:
                records[k].append(outputs[k])
        return torch.stack(ys), {k: torch.stack(v) for k, v in records.items()}

    def step(self, x: Tensor, state: NIRGraphState | None):
        """One step: ``(y, state, outputs of every node)``."""
        return self._step(x, state, self._constants(x.dtype))

    def _constants(self, dtype: torch.dtype) -> dict[str, tuple]:
        """Each NIR neuron's coefficients, converted once per sequence, not at every step."""
        return {
            name: module._constants(dtype)
            for name, module in ((k, self.module(k)) for k in self.order)
            if hasattr(module, "_constants")
        }

    def _step(self, x: Tensor, state: NIRGraphState | None, constants: dict[str, tuple]):
        if state is None:
            state = NIRGraphState({}, self._initial_delays(x))
        outputs: dict[str, Tensor] = {}
        neurons = {}
        for name in self.order:
            if name == self.input_name:
                outputs[name] = x
                continue
            parts = [outputs[a] for a in self.sources[name]]
            parts += [state.delayed[a] for a in self.delayed[name]]
            inp = parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])
            module = self.module(name)
            if isinstance(module, Neuron):
                previous = state.neurons.get(name)
                if previous is None:
                    previous = module.initial_state(inp)
                if name in constants:
                    step = module._step
                    args = (previous, *constants[name])
                else:
                    step, args = module.step, (previous,)
                outputs[name], neurons[name] = self._run_node(name, step, inp, *args)
            else:
                outputs[name] = inp if module is None else self._run_node(name, module, inp)
        delayed = {a: outputs[a] for a in self.tails}
        return outputs[self.output_name], NIRGraphState(neurons, delayed), outputs

    @staticmethod
    def _run_node(name: str, fn, inp: Tensor, *args):
        try:
            return fn(inp, *args)
        except RuntimeError as err:
            owner = getattr(fn, "__self__", fn)
            raise ValueError(
                f"node {name!r} ({type(owner).__name__}) rejects its input of shape "
                f"{list(inp.shape[1:])} per sample: {err}"
            ) from err

    def _initial_delays(self, x: Tensor) -> dict[str, Tensor]:
        """What each cycle-closing edge brings at the first step (see ``delay_init``)."""
        if not self.tails:
            return {}
        rest: dict[str, Tensor] = {}
        for name in self.order:  # every node at rest: neurons at their initial state
            if name == self.input_name:
                rest[name] = torch.zeros_like(x)
                continue
            module = self.module(name)
            sources = [rest[a] for a in self.sources[name]]
            inp = sum(sources[1:], sources[0]) if sources else resting_input(name, module, x)
            if isinstance(module, Neuron):
                out = module.initial_state(inp).v if getattr(module, "v_th", 1) is None else None
                rest[name] = torch.zeros_like(inp) if out is None else out
            else:
                rest[name] = inp if module is None else self._run_node(name, module, inp)
        if self.delay_init == "zero":
            return {a: torch.zeros_like(rest[a]) for a in self.tails}
        return {a: rest[a] for a in self.tails}


def resting_input(name: str, module: nn.Module | None, like: Tensor) -> Tensor:
    """Zeros of a neuron's size, for a neuron that only a cycle drives (a walk starts there)."""
    shapes = [b.shape for b in module.buffers() if b.dim() > 0] if module is not None else []
    if not isinstance(module, Neuron) or not shapes:
        raise ValueError(
            f"node {name!r} is driven only through a cycle and its parameters give no size: "
            "give them per neuron"
        )
    return torch.zeros(like.shape[0], *torch.broadcast_shapes(*shapes), dtype=like.dtype)

"""``SpikingNet``: ordinary torch layers and torchspike neurons, run over time.

Stateless layers (Linear, Conv, pooling, dropout, normalisation, Flatten) run once on all time
steps by folding time into the batch; a static input (``encode.direct``) goes through the layers
in front of the first neuron once. Neurons run their fused sequence kernels.

A layer may also be any module whose ``forward`` takes one time step ``[B, ...]`` and calls
neurons anywhere in it (nested modules, residual additions, concatenations, branches, a
:class:`~torchspike.neurons.Feedback` loop). Each call opens a scope (a context variable, see
:class:`torchspike.steps.Scope`) that holds every neuron's state for that call only, and runs the
module on one of two paths:

* folded: ``forward`` runs once on all steps as ``[T*B, ...]``; each neuron unfolds its input to
  ``[T, B, ...]`` and runs its sequence kernel. Chosen when ``torch.fx`` can trace ``forward``
  and every operation in it acts on each sample alone (the same result as step by step).
* per-step: ``forward`` runs once per step on ``[B, ...]``; each neuron advances one step.
  Taken for data-dependent control flow (``forward`` cannot be traced), a ``Feedback`` loop,
  the state a neuron returns being used, or any operation not known to act per sample.

``net.explain()`` lists the path of each layer and why (:mod:`torchspike._paths`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from . import _checks as check
from ._paths import PATHS, Plan, explain_layer, plan, stateful
from .kernels.workspace import Workspace
from .neurons import Neuron
from .neurons.base import neuron_precision
from .steps import (
    current_scope,
    fold_conv_pool,
    fold_time_owned,
    has_hooks,
    plain_linear,
    run_module,
    run_steps,
)


class SpikingNet(nn.Module):
    """Run ``layers`` over ``xs`` ``[T, B, ...]``; ``forward(xs, state=None) -> (ys, state)``.

    ``state`` is a tuple with one entry per neuron (and ``Feedback``), in the order of
    :meth:`neuron_names`, nested ones included; ``None`` starts every neuron fresh. Nothing is
    kept between calls: pass the returned state back to continue a sequence.
    A LIF with spike output followed by a plain ``nn.Linear`` runs with it as one autograd node
    that keeps no spikes (:mod:`torchspike.kernels.lif_linear`) when a gradient is needed and
    neither has hooks. Elsewhere ``compact_spikes=True`` makes a Linear right after a spiking
    neuron keep its input for the weight gradient as bytes, not float32
    (:mod:`torchspike.kernels.folded_linear`). ``workspace=True``
    (the default) lets the network reuse its ``[T, B, N]`` buffers (membranes, spikes, the
    gradients into neurons) from one call to the next on the CPU, instead of allocating them
    afresh (:mod:`torchspike.kernels.workspace`): the same results, without the page faults and
    heap growth of new blocks every step, at the price of keeping the last step's buffers until
    the network is deleted or ``workspace.clear()`` is called. ``path`` picks how a layer with
    neurons inside its own ``forward`` runs: ``"auto"`` (folded where that gives the same
    result, else per-step), ``"folded"`` or ``"per-step"`` (see the module docstring).
    :meth:`trace` returns every neuron's outputs and state over time (spikes and membrane),
    with gradients where asked: a layer's return type never depends on a flag.
    The input's rank is checked against the first layer that fixes one (a ``Conv2d`` needs
    ``[T, B, C, H, W]``), so a batch without a time dimension is refused, not run as time.
    """

    def __init__(
        self,
        *layers: nn.Module | Iterable[nn.Module],
        compact_spikes: bool = False,
        workspace: bool = True,
        path: str = "auto",
    ):
        super().__init__()
        self.compact_spikes = bool(compact_spikes)
        self.workspace = Workspace() if workspace else None
        self.path = check.choice(path, PATHS, "path")
        self._plans: dict[tuple[int, int, bool], Plan] = {}
        if len(layers) == 1 and not isinstance(layers[0], nn.Module):
            layers = tuple(layers[0])
        if len(layers) == 1 and isinstance(layers[0], nn.Sequential):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers must hold at least one module, got none")
        self.layers = nn.Sequential(*layers)

    def neuron_names(self) -> list[str]:
        """The names of the entries of ``state``: neuron layers, and the neurons (and
        ``Feedback`` loops) inside other layers, as ``"<layer>.<submodule>"``."""
        return [name for name, _ in self._stateful()]

    def _stateful(self) -> list[tuple[str, nn.Module]]:
        found = []
        for name, layer in self.layers.named_children():
            if isinstance(layer, SpikingNet):
                found += [(f"{name}.{n}", m) for n, m in layer._stateful()]
            else:
                found += stateful(layer, name)
        return found

    def plan(self, index: int) -> Plan:
        """How layer ``index`` runs (a layer with neurons inside: folded or per-step, and why)."""
        layer = self.layers[index]
        key = (index, id(layer), layer.training)
        if key not in self._plans:
            self._plans[key] = plan(layer, self.path)
        return self._plans[key]

    def explain(self) -> str:
        """One line per layer: which path it takes over time and why (a debug listing)."""
        layers = list(self.layers.named_children())
        lines = []
        for i, (name, layer) in enumerate(layers):
            after = layers[i + 1][1] if i + 1 < len(layers) else None
            has_neurons = not isinstance(layer, Neuron | SpikingNet) and stateful(layer, name)
            how = explain_layer(layer, after, self.plan(i) if has_neurons else None)
            lines.append(f"{name:>4}  {type(layer).__name__:<14} {how}")
        return "\n".join(lines)

    def forward(self, xs: Tensor, state: tuple[Any, ...] | None = None) -> tuple[Tensor, tuple]:
        check.sequence(xs)
        _check_rank(self.layers, xs)
        _not_in_a_scope()
        if state is not None and len(state) != len(self._stateful()):
            raise ValueError(
                f"state must have {len(self._stateful())} entries (one per name in "
                f"net.neuron_names()), got {len(state)}"
            )
        states = iter(state) if state is not None else None
        new_state = []
        owned = False  # xs is a layer's output that only this loop refers to
        spikes = False  # xs holds a spiking neuron's 0/1 output
        # torch.func transforms need autograd.Functions with setup_context: the plain layers
        shortcuts = not torch._C._are_functorch_transforms_active()
        workspace = self.workspace if shortcuts else None
        layers, i = list(self.layers.named_children()), 0
        while i < len(layers):
            (name, layer), after = layers[i], layers[i + 1][1] if i + 1 < len(layers) else None
            i += 1
            if not isinstance(layer, Neuron):
                inside = [] if isinstance(layer, SpikingNet) else stateful(layer, name)
                if isinstance(layer, SpikingNet) or inside:
                    xs, s = self._run_layer(i - 1, name, layer, inside, xs, states)
                    new_state += s
                    owned = spikes = False
                    continue
                fused = fold_conv_pool(layer, after, xs, workspace)  # and the pooling after it
                if fused is not None:
                    xs, owned, spikes, i = fused, True, False, i + 1
                    continue
                xs, owned = _plain(name, layer, xs, spikes, workspace)
                spikes = False
                continue
            s = next(states) if states is not None else None
            options = {}  # shortcuts for a neuron called as usual (no hooks, which would see
            # its input; no forward of its own, which may not take them): buffers of the
            # workspace, the membrane kept in xs, a Linear after it fused with it
            if shortcuts and not has_hooks(layer) and type(layer).forward is Neuron.forward:
                options = {"overwrite_input": owned, "workspace": workspace}
                if after is not None and plain_linear(after, xs, dims=3):
                    fused = layer.forward_into_linear(xs, s, after, **options)
                    if fused is not None:
                        (xs, s), owned, spikes, i = fused, True, False, i + 1
                        new_state.append(s)
                        continue
            xs, s = layer(xs, s, **options)
            new_state.append(s)
            # a hook may change the outputs: then they are not known to be spikes
            spiking = self.compact_spikes and layer.emits_spikes()
            owned, spikes = False, spiking and not has_hooks(layer)
        return _contiguous_if_channels_last(xs), tuple(new_state)

    def _run_layer(self, index, name, layer, inside, xs, states, records=None):
        """A nested ``SpikingNet``, or a module with neurons inside, over ``xs``."""
        if isinstance(layer, SpikingNet):
            count = len(layer._stateful())
            given = tuple(next(states) for _ in range(count)) if states is not None else None
            ys, s = layer(xs, given)
            return ys, list(s)
        given = {}
        for _, module in inside:
            s = next(states) if states is not None else None
            if s is not None:
                given[module] = s
        names = {module: qualname for qualname, module in inside}
        path = "per-step" if records is not None else self.plan(index).path
        ys, out = run_module(layer, xs, path, name=name, names=names, states=given, records=records)
        return ys, [out.get(module) for _, module in inside]

    def trace(
        self, xs: Tensor, *, grad: bool = False
    ) -> tuple[Tensor, dict[str, dict[str, Tensor]]]:
        """Run step by step, recording every neuron layer's outputs and state over time.

        Returns ``(ys, records)`` with ``records[name] = {"out": [T, B, ...], field: [T, B, ...]}``
        for each state field (``v``, ``i``, ...), ``name`` being the layer's index in ``layers``
        (``"<index>.<submodule>"`` for a neuron inside a layer's ``forward``). ``ys`` equals
        ``forward(xs)[0]``. With ``grad=True`` the outputs and every record stay in the autograd
        graph (spikes and membrane of each layer, for a loss on either); by default nothing is
        recorded for backward.
        """
        check.sequence(xs)
        _check_rank(self.layers, xs)
        _not_in_a_scope()
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return self._trace(xs)

    def _trace(self, xs: Tensor) -> tuple[Tensor, dict[str, dict[str, Tensor]]]:
        records: dict[str, dict[str, Tensor]] = {}
        for i, (name, layer) in enumerate(self.layers.named_children()):
            if not isinstance(layer, Neuron):
                inside = [] if isinstance(layer, SpikingNet) else stateful(layer, name)
                if isinstance(layer, SpikingNet):
                    xs, inner = layer._trace(xs)
                    records.update({f"{name}.{k}": v for k, v in inner.items()})
                elif inside:
                    steps: dict[nn.Module, list] = {}
                    xs, _ = self._run_layer(i, name, layer, inside, xs, None, records=steps)
                    for qualname, module in inside:
                        if module in steps:
                            outs, states = zip(*steps[module], strict=True)
                            records[qualname] = _record(torch.cat(outs), [*states])
                else:
                    xs = _plain(name, layer, xs)[0]
                continue
            states = []

            def step(x, s, layer=layer, states=states):
                y, s = layer.step(x, s)
                states.append(s)
                return y, s

            with neuron_precision(xs) as xs:  # float32 under autocast, as in forward
                xs, _ = run_steps(step, xs, layer.initial_state(xs[0]))
            records[name] = _record(xs, states)
        return xs, records


def _record(outs: Tensor, states: list) -> dict[str, Tensor]:
    fields = states[0]._fields
    return {"out": outs, **{f: torch.stack([getattr(s, f) for s in states]) for f in fields}}


def _not_in_a_scope() -> None:
    scope = None if torch.compiler.is_compiling() else current_scope()
    if scope is not None:
        raise ValueError(
            f"a SpikingNet was called inside layer {scope.layer} of another one, which hands "
            "its forward one step or folded steps: use the inner network's layers in that "
            "module instead, or make the inner SpikingNet a layer of the outer one"
        )


def _plain(
    name: str, layer: nn.Module, xs: Tensor, spikes: bool = False, workspace=None
) -> tuple[Tensor, bool]:
    """:func:`fold_time_owned`, naming ``layer`` when it does not return one tensor."""
    try:
        return fold_time_owned(layer, xs, spikes, workspace=workspace)
    except (AttributeError, TypeError) as error:
        try:  # only after a failure: what does the layer return for one step?
            with torch.no_grad():
                out = layer(xs[0])
        except Exception:
            raise error from None
        if isinstance(out, Tensor):
            raise
        hint = (
            "; it runs its own loop over time and would read [T*B, ...] as one long sequence: "
            "use torchspike.RecurrentLIF, or run it outside SpikingNet"
            if isinstance(layer, nn.RNNBase)
            else ""
        )
        raise TypeError(
            f"layer {name} ({type(layer).__name__}) returned {type(out).__name__}, not a "
            "tensor: SpikingNet runs each layer on [T*B, ...] (time folded into the batch) and "
            f"needs one tensor back; wrap it in a module whose forward returns one{hint}"
        ) from error


# the input rank [T, B, ...] a layer needs per spatial dimension (1d, 2d, 3d layers)
_NAMED_DIMS = {1: "[T, B, C, L]", 2: "[T, B, C, H, W]", 3: "[T, B, C, D, H, W]"}
_SPATIAL = (
    nn.modules.conv._ConvNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)
_SHAPE_KEEPING = (nn.Identity, nn.Dropout, Neuron)


def _spatial_dims(layer: nn.Module) -> int | None:
    """1, 2 or 3 for torch's spatial layers (Conv2d, MaxPool2d, BatchNorm3d, ...), else None."""
    if not isinstance(layer, _SPATIAL):
        return None
    for cls in type(layer).__mro__:
        if cls.__name__[-2:] in ("1d", "2d", "3d"):
            return int(cls.__name__[-2])
    return None


def _check_rank(layers: nn.Sequential, xs: Tensor) -> None:
    """``xs`` ``[T, B, ...]`` has the rank the first layer that fixes one needs (a Conv2d:
    ``[T, B, C, H, W]``); else a batch without time would run with its batch as time."""
    for name, layer in layers.named_children():
        if isinstance(layer, _SHAPE_KEEPING):
            continue
        if isinstance(layer, nn.Sequential):
            _check_rank(layer, xs)
            return
        wanted, dims = None, None
        d = _spatial_dims(layer)
        if d is not None:
            wanted, dims = (3 + d, 3 + d), _NAMED_DIMS[d]
        elif isinstance(layer, nn.Linear | nn.Flatten):
            wanted, dims = (3, None), "[T, B, ..., features]"
        if wanted is None:
            return
        low, high = wanted
        if xs.dim() < low or (high is not None and xs.dim() > high):
            raise ValueError(
                f"xs must be time-first {dims} for layer {name} ({type(layer).__name__}), got "
                f"shape {tuple(xs.shape)}: put time first (encode a static batch with "
                "torchspike.encode.direct(x, steps), rate or latency; a batch-first [B, T, ...] "
                "tensor goes in as x.transpose(0, 1))"
            )
        return


def _contiguous_if_channels_last(xs: Tensor) -> Tensor:
    """The network's output in the layout PyTorch's layers give for NCHW input: steps that the
    fast path left channels-last (``steps.channels_last``, ``kernels.layout``) made contiguous,
    so that ``view`` works on it as on any layer's output."""
    cl = xs.dim() == 5 and xs.stride(0) != 0 and not xs.is_contiguous()
    return xs.contiguous() if cl and xs.movedim(2, -1).is_contiguous() else xs

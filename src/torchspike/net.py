"""``SpikingNet``: ordinary torch layers and torchspike neurons, run over time.

Stateless layers (Linear, Conv, pooling, dropout, normalisation, Flatten) run once on all time
steps by folding time into the batch; a static input (``encode.direct``) goes through the layers
in front of the first neuron once. Neurons run their fused sequence kernels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from . import _checks as check
from .kernels.workspace import Workspace
from .neurons import Neuron
from .steps import fold_time, fold_time_owned, has_hooks, plain_linear, run_steps


class SpikingNet(nn.Module):
    """Run ``layers`` over ``xs`` ``[T, B, ...]``; ``forward(xs, state=None) -> (ys, state)``.

    ``state`` is a tuple with one entry per neuron layer; ``None`` starts every neuron fresh.
    A LIF with spike output followed by a plain ``nn.Linear`` runs with it as one autograd node
    that keeps no spikes (:mod:`torchspike.kernels.lif_linear`) when a gradient is needed and
    neither has hooks. Elsewhere ``compact_spikes=True`` makes a Linear right after a spiking
    neuron keep its input for the weight gradient as bytes, not float32
    (:mod:`torchspike.kernels.folded_linear`). ``workspace=True``
    (the default) lets the network reuse its ``[T, B, N]`` buffers (membranes, spikes, the
    gradients into neurons) from one call to the next on the CPU, instead of allocating them
    afresh (:mod:`torchspike.kernels.workspace`): the same results, without the page faults and
    heap growth of new blocks every step, at the price of keeping the last step's buffers until
    the network is deleted or ``workspace.clear()`` is called.
    """

    def __init__(
        self,
        *layers: nn.Module | Iterable[nn.Module],
        compact_spikes: bool = False,
        workspace: bool = True,
    ):
        super().__init__()
        self.compact_spikes = bool(compact_spikes)
        self.workspace = Workspace() if workspace else None
        if len(layers) == 1 and not isinstance(layers[0], nn.Module):
            layers = tuple(layers[0])
        if len(layers) == 1 and isinstance(layers[0], nn.Sequential):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers must hold at least one module, got none")
        self.layers = nn.Sequential(*layers)

    def neuron_names(self) -> list[str]:
        return [name for name, layer in self.layers.named_children() if isinstance(layer, Neuron)]

    def forward(self, xs: Tensor, state: tuple[Any, ...] | None = None) -> tuple[Tensor, tuple]:
        check.sequence(xs)
        states = iter(state) if state is not None else None
        new_state = []
        owned = False  # xs is a layer's output that only this loop refers to
        spikes = False  # xs holds a spiking neuron's 0/1 output
        # torch.func transforms need autograd.Functions with setup_context: the plain layers
        shortcuts = not torch._C._are_functorch_transforms_active()
        workspace = self.workspace if shortcuts else None
        layers, i = list(self.layers), 0
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            i += 1
            if not isinstance(layer, Neuron):
                xs, owned = fold_time_owned(layer, xs, spikes, workspace=workspace)
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
        return xs, tuple(new_state)

    @torch.no_grad()
    def trace(self, xs: Tensor) -> tuple[Tensor, dict[str, dict[str, Tensor]]]:
        """Run without gradients, recording every neuron layer's outputs and state over time.

        Returns ``(ys, records)`` with ``records[name] = {"out": [T, B, ...], field: [T, B, ...]}``
        for each state field (``v``, ``i``, ...), ``name`` being the layer's index in ``layers``.
        """
        check.sequence(xs)
        records: dict[str, dict[str, Tensor]] = {}
        for name, layer in self.layers.named_children():
            if not isinstance(layer, Neuron):
                xs = fold_time(layer, xs)
                continue
            states = []

            def step(x, s, layer=layer, states=states):
                y, s = layer.step(x, s)
                states.append(s)
                return y, s

            xs, _ = run_steps(step, xs, layer.initial_state(xs[0]))
            fields = {f: torch.stack([getattr(s, f) for s in states]) for f in states[0]._fields}
            records[name] = {"out": xs, **fields}
        return xs, records

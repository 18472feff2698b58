"""Exact gradients (EventProp): the CubaLIF model, input code and loss of ``--method eventprop``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...data.events import EventBatch, to_spike_times
from ...eventprop import train as ep
from ...eventprop.li import li_readout
from ...eventprop.losses import check_outputs_fired, silent_samples
from ...eventprop.losses import scores as output_scores
from ...eventprop.spikes import Spikes
from ..config import EventPropConfig


def encode(x: Tensor | EventBatch, cfg: EventPropConfig, options, train: bool) -> Spikes:
    """Input spikes: the configured code of ``[B, ...]`` values, or event data at their exact
    times (events after ``duration`` are dropped)."""
    if isinstance(x, EventBatch):
        return to_spike_times(x, dt=cfg.dt, steps=options.steps)
    # input dropout draws from torch's global generator: seeded by the loop, checkpointed
    generator = torch.default_generator if train and options.input_dropout > 0 else None
    return ep.encode(x, options, generator=generator)


class EventProp:
    """Build, run and score an EventProp network (:mod:`torchspike.eventprop`)."""

    def build(self, cfg: EventPropConfig, in_shape: tuple[int, ...], classes: int) -> nn.Module:
        options = cfg.library()
        return ep.build_model(options, ep.n_inputs(in_shape, options), classes)

    def _run(self, model: nn.Module, x: Tensor, cfg: EventPropConfig, train: bool):
        options = cfg.library()
        return model(encode(x, cfg, options, train)), options

    def loss_and_scores(
        self, model: nn.Module, x: Tensor, y: Tensor, cfg: EventPropConfig
    ) -> tuple[Tensor, Tensor]:
        out, options = self._run(model, x, cfg, train=True)
        return ep.loss_fn(out, y, options), output_scores(out, cfg.loss).detach()

    def scores(self, model: nn.Module, x: Tensor, cfg: EventPropConfig) -> Tensor:
        out, _ = self._run(model, x, cfg, train=False)
        return output_scores(out, cfg.loss)

    def silent(self, scores: Tensor, cfg: EventPropConfig) -> Tensor | None:
        """``[B]``: samples for which no output neuron fired (ttfs; scores are -first times)."""
        if cfg.loss != "ttfs":
            return None
        return silent_samples(-scores, cfg.duration)

    def check_epoch(self, epoch: int, tally: dict[str, float], cfg: EventPropConfig) -> None:
        """An epoch in which no output neuron fired for any sample is an error, unless the
        rescue rule (``rescue_silent``) is on to lift the silent neurons' weights."""
        if cfg.loss == "ttfs" and cfg.rescue_silent == 0:
            check_outputs_fired(int(tally["silent"]), int(tally["seen"]), epoch=epoch + 1)

    def after_step(self, model: nn.Module, scores: Tensor, cfg: EventPropConfig, ctx) -> None:
        """``rescue_silent`` with the ttfs loss: raise the input weights of output neurons that
        stayed silent for some sample of the batch on any rank (pytorch-eventprop's rule)."""
        if cfg.loss != "ttfs" or cfg.rescue_silent <= 0:
            return
        silent = ep.silent_outputs(-scores, cfg.duration)
        silent = torch.tensor(ctx.sum(silent.double().tolist()), device=silent.device) > 0
        ep.rescue_silent(model[-1], silent, cfg.rescue_silent)

    def trace(
        self, model: nn.Module, x: Tensor, cfg: EventPropConfig
    ) -> dict[str, dict[str, Tensor]]:
        """Dense ``[T, B, N]`` spike rasters of every spiking layer, and the read-out's voltage
        ``v`` at the step ends: an LI read-out's trace, or (ttfs) the output neurons' membrane
        without threshold, which is theirs up to their first spike (NaN after it)."""
        records: dict[str, dict[str, Tensor]] = {}
        layers = list(model.named_children())
        with torch.no_grad():
            s = encode(x, cfg, cfg.library(), train=False)
            for k, (name, layer) in enumerate(layers):
                given, s = s, layer(s)
                if isinstance(s, Spikes):
                    dense = torch.zeros(s.steps, s.batch_size, s.units)
                    dense[s.step, s.batch, s.unit] = 1.0
                    records[name] = {"out": dense}
                if k == len(layers) - 1:
                    v = li_readout(given, layer.weight, layer.kernel, "trace")
                    if isinstance(s, Spikes):  # ttfs: the free membrane until the first spike
                        fired = records[name]["out"].cumsum(0) - records[name]["out"] > 0
                        v = v.masked_fill(fired, math.nan)
                    records.setdefault(name, {})["v"] = v
        return records

    def threshold(self, model: nn.Module) -> float | None:
        return getattr(list(model.children())[-1], "v_th", None)

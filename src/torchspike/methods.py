"""Training methods for the application: each builds, runs and scores one kind of network.

``bptt`` is surrogate-gradient BPTT (:mod:`torchspike.bptt`); ``eventprop`` wraps
:mod:`torchspike.eventprop` so its networks train in the same loop, with the same progress,
checkpoints, resume and plots. ``stdp`` has its own loop (:mod:`torchspike.stdp_app`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .bptt import BPTT
from .config import Config
from .eventprop.losses import LOSSES

METHODS = ("bptt", "eventprop", "stdp")
EVENTPROP_LOSSES = (*LOSSES, "sum_exp")  # the eventprop losses; "sum_exp" spells "sum-exp" too


class EventProp:
    """Exact-gradient CubaLIF networks; options beyond the common ones live in ``cfg.extra``."""

    def options(self, cfg: Config):
        from .eventprop.train import Config as EPConfig

        return EPConfig.from_dict(
            {
                "encoding": cfg.encoding,
                "hidden": tuple(cfg.hidden),
                "loss": cfg.loss,
                "seed": cfg.seed,
                "lr": cfg.lr,
                "epochs": cfg.epochs,
                "batch_size": cfg.batch_size,
                **cfg.extra,
            }
        )

    def build(self, cfg: Config, in_shape: tuple[int, ...], classes: int) -> nn.Module:
        from .eventprop.train import build_model, n_inputs

        ep = self.options(cfg)
        return build_model(ep, n_inputs(in_shape, ep), classes)

    def _run(self, model: nn.Module, x: Tensor, cfg: Config) -> tuple[Any, Any]:
        from .eventprop.train import encode

        ep = self.options(cfg)
        return model(encode(x, ep)), ep

    def _scores(self, out: Any, ep) -> Tensor:
        from .eventprop.losses import scores

        return scores(out, ep.loss)

    def loss_and_scores(
        self, model: nn.Module, x: Tensor, y: Tensor, cfg: Config
    ) -> tuple[Tensor, Tensor]:
        from .eventprop.train import loss_fn

        out, ep = self._run(model, x, cfg)
        return loss_fn(out, y, ep), self._scores(out, ep).detach()

    def scores(self, model: nn.Module, x: Tensor, cfg: Config) -> Tensor:
        out, ep = self._run(model, x, cfg)
        return self._scores(out, ep)

    def after_step(self, model: nn.Module, scores: Tensor, cfg: Config, ctx) -> None:
        """``--rescue-silent`` with the ttfs loss: raise the weights of output neurons that
        stayed silent for some sample of the batch on any rank (scores are -first-spike times)."""
        from .eventprop.train import rescue_silent, silent_outputs

        ep = self.options(cfg)
        if ep.loss != "ttfs" or ep.rescue_silent <= 0:
            return
        silent = silent_outputs(-scores, ep.duration)
        silent = torch.tensor(ctx.sum(silent.double().tolist()), device=silent.device) > 0
        rescue_silent(model[-1], silent, ep.rescue_silent)

    def trace(self, model: nn.Module, x: Tensor, cfg: Config) -> dict[str, dict[str, Tensor]]:
        """Dense ``[T, B, N]`` spike rasters of every spiking layer (for plots)."""
        from .eventprop.spikes import Spikes
        from .eventprop.train import encode

        ep = self.options(cfg)
        records: dict[str, dict[str, Tensor]] = {}
        with torch.no_grad():
            s = encode(x, ep)
            for name, layer in model.named_children():
                s = layer(s)
                if isinstance(s, Spikes):
                    dense = torch.zeros(s.steps, s.batch_size, s.units)
                    dense[s.step, s.batch, s.unit] = 1.0
                    records[name] = {"out": dense}
                elif s.dim() == 3:  # an LI read-out's voltage trace
                    records[name] = {"out": s, "v": s}
        return records

    def threshold(self, model: nn.Module) -> float | None:
        last = list(model.children())[-1]
        return getattr(last, "v_th", None)


def method_for(name: str) -> Any:
    """The object that builds, runs and scores models of a training method."""
    if name == "bptt":
        return BPTT()
    if name == "eventprop":
        return EventProp()
    raise ValueError(f"method must be one of {METHODS[:2]} for this loop, got {name!r}")

"""Surrogate-gradient BPTT: the model, input code and loss of ``--method bptt``."""

from __future__ import annotations

from torch import Tensor, nn

from ... import encode, loss, models, surrogate
from ...data.events import EventBatch, to_frames, to_spikes
from ..config import BPTTConfig


def encode_input(x: Tensor | EventBatch, cfg: BPTTConfig) -> Tensor:
    """``[B, ...]`` in [0, 1] (or a batch of events) to ``[T, B, ...]`` with the configured code:
    event data become ``steps`` bins of ``event_duration`` microseconds."""
    if isinstance(x, EventBatch):
        code = to_frames if cfg.encoding == "frames" else to_spikes
        return code(x, bins=cfg.steps, duration=cfg.event_duration)
    if cfg.encoding == "direct":
        return encode.direct(x, cfg.steps)
    if cfg.encoding == "rate":
        return encode.rate(x, cfg.steps)
    if cfg.encoding == "latency":
        return encode.latency(x, cfg.steps)
    # binary-time: ink early, background late, in step units
    t_min, t_max = round(0.1 * cfg.steps), round(0.6 * cfg.steps)
    return encode.times_to_spikes(encode.binary_times(x, t_min, t_max), cfg.steps)


class BPTT:
    """Build, run and score a surrogate-gradient network."""

    def build(self, cfg: BPTTConfig, in_shape: tuple[int, ...], classes: int) -> nn.Module:
        common = dict(
            beta=cfg.beta,
            spike_fn=surrogate.get(cfg.surrogate),
            readout=cfg.readout,
            readout_membrane=cfg.loss == "ce-membrane",
        )
        if cfg.arch == "sew":
            return models.sew_resnet(in_shape, cfg.channels, cfg.blocks, classes, **common)
        if cfg.arch == "conv":
            return models.convolutional(
                in_shape, cfg.channels, cfg.hidden, classes, dropout=cfg.dropout, **common
            )
        return models.fully_connected(
            in_shape, cfg.hidden, classes, hidden_neuron=cfg.neuron, **common
        )

    def loss_and_scores(
        self, model: nn.Module, x: Tensor, y: Tensor, cfg: BPTTConfig
    ) -> tuple[Tensor, Tensor]:
        out, _ = model(encode_input(x, cfg))
        if cfg.loss == "ce-membrane":
            return loss.ce_membrane_sum(out, y), out.sum(0)
        if cfg.loss == "ce-count":
            return loss.ce_count(out, y), out.sum(0)
        return loss.mse_count(out, y), out.sum(0)

    def scores(self, model: nn.Module, x: Tensor, cfg: BPTTConfig) -> Tensor:
        out, _ = model(encode_input(x, cfg))
        return out.sum(0)

    def silent(self, scores: Tensor, cfg: BPTTConfig) -> Tensor | None:
        """Samples with no output activity; BPTT's surrogate gradient flows regardless."""
        return None

    def check_epoch(self, epoch: int, tally: dict[str, float], cfg: BPTTConfig) -> None:
        """Nothing to check at the end of an epoch."""

    def after_step(self, model: nn.Module, scores: Tensor, cfg: BPTTConfig, ctx) -> None:
        """Nothing to do after an optimiser step."""

    def trace(self, model: nn.Module, x: Tensor, cfg: BPTTConfig) -> dict[str, dict[str, Tensor]]:
        return model.trace(encode_input(x, cfg))[1]

    def threshold(self, model: nn.Module) -> float | None:
        last = list(model.layers)[-1]
        return float(last.v_th.max()) if hasattr(last, "v_th") else None

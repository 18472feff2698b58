"""Training EventProp networks in Python (``torchspike train --method eventprop`` runs the
same parts, :func:`build_model`, :func:`encode` and :func:`loss_fn`, in the shared loop).

``fit(config, train=(x, y), val=(x, y))`` builds the network with :func:`build_model`, encodes
each batch with :func:`encode` and trains it with Adam; :func:`evaluate` gives the accuracy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .. import _checks as check
from .. import encode as enc
from .layers import LIFLayer, LIReadout
from .losses import LOSSES, READOUT, first_spike_loss, predict, voltage_ce
from .spikes import Spikes, from_times

ENCODINGS = ("latency", "binary-time", "events")  # events: Spikes made from event data


@dataclass
class Config:
    """Options of an EventProp run (times in seconds); ``Config.from_dict`` takes the CLI's dict.

    ``init``: ``(mean, std)`` of each feed-forward weight matrix, input side first (``None``: the
    layers' defaults). Latency code: ``t = t_start + (1 - x) (t_end - t_start)`` for
    ``x > latency_threshold`` (default window ``[2 dt, duration - 2 dt]``). Binary code: ink
    (``x > 0.5``) at ``binary_t_min``, background at ``binary_t_max``. ``bias_spike`` adds one
    input that always fires at the start of the code window.

    Choices: ``encoding`` ``"latency"``, ``"binary-time"`` or ``"events"``; ``loss`` one of
    :data:`LOSSES` (``"ttfs"``, ``"max-voltage"``, ``"sum"``, ``"sum-exp"``); ``optimizer``
    ``"adam"`` or ``"sgd"``. ``hidden``: the hidden layers' sizes (each > 0); ``tau_mem``,
    ``tau_syn``, ``dt``, ``duration``, ``v_th`` and ``lr`` are > 0; ``input_dropout`` in [0, 1);
    ``xi``, ``alpha``, ``beta``: the ``ttfs`` loss's (:func:`torchspike.loss.first_spike_ce`).
    """

    encoding: str = "latency"
    hidden: tuple[int, ...] = (350,)
    recurrent: bool = False
    loss: str = "max-voltage"
    tau_mem: float = 20e-3
    tau_syn: float = 5e-3
    dt: float = 1e-3
    duration: float = 20e-3
    v_th: float = 1.0
    latency_start: float | None = None
    latency_end: float | None = None
    latency_threshold: float = 0.0
    binary_t_min: float = 2e-3
    binary_t_max: float = 12e-3
    bias_spike: bool = False
    init: tuple[tuple[float, float], ...] | None = None
    rec_std: float | None = None
    xi: float = 0.4
    alpha: float = 0.01
    beta: float = 2.0
    rescue_silent: float = 0.0
    keep_best: bool = False
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-3
    lr_decay: float = 0.95
    optimizer: str = "adam"
    input_dropout: float = 0.0
    seed: int = 0

    @classmethod
    def from_dict(cls, options: dict[str, Any] | Config) -> Config:
        if isinstance(options, Config):
            return options
        opts = {k.replace("-", "_"): v for k, v in options.items()}
        for key in ("loss", "encoding"):  # "sum_exp" and "sum-exp" name the same loss
            if isinstance(opts.get(key), str):
                opts[key] = opts[key].replace("_", "-")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(opts) - names)
        if unknown:
            raise ValueError(f"unknown eventprop options {unknown}; known: {sorted(names)}")
        hidden = opts.get("hidden", cls.hidden)
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        opts["hidden"] = tuple(h for h in hidden if h != 0)
        if opts.get("init") is not None:
            opts["init"] = tuple(tuple(pair) for pair in opts["init"])
        return cls(**opts).check()

    def check(self) -> Config:
        check.choice(self.encoding, ENCODINGS, "encoding")
        check.choice(self.loss, LOSSES, "loss")
        check.choice(self.optimizer, ("adam", "sgd"), "optimizer")
        for name in ("tau_mem", "tau_syn", "dt", "duration", "v_th", "lr"):
            check.positive(getattr(self, name), name)
        for h in self.hidden:
            check.positive_int(h, "hidden")
        check.positive_int(self.epochs, "epochs")
        check.positive_int(self.batch_size, "batch_size")
        check.non_negative(self.rescue_silent, "rescue_silent")
        if not 0 <= self.input_dropout < 1:
            raise ValueError(f"input_dropout must be in [0, 1), got {self.input_dropout!r}")
        if self.recurrent and not self.hidden:
            raise ValueError("recurrent=True needs a hidden layer, got hidden=()")
        if self.init is not None and len(self.init) != len(self.hidden) + 1:
            raise ValueError(
                f"init must give (mean, std) for {len(self.hidden) + 1} weight matrices, "
                f"got {len(self.init)}"
            )
        if self.window()[1] > self.duration:
            raise ValueError(f"the input code ends after duration={self.duration!r}")
        return self

    @property
    def steps(self) -> int:
        return max(1, round(self.duration / self.dt))

    def window(self) -> tuple[float, float]:
        """Earliest and latest input spike time of the code."""
        if self.encoding == "binary-time":
            return self.binary_t_min, self.binary_t_max
        start = 2 * self.dt if self.latency_start is None else self.latency_start
        end = self.duration - 2 * self.dt if self.latency_end is None else self.latency_end
        return start, end


def encode(x: Tensor, config: Config, *, generator: torch.Generator | None = None) -> Spikes:
    """Input spikes of a batch ``x`` ``[B, ...]`` in [0, 1]; with a ``generator``, inputs are
    dropped with probability ``config.input_dropout`` (training)."""
    if config.encoding == "events":
        raise ValueError(
            "encoding 'events' takes event data: make the input Spikes with "
            "torchspike.data.events.to_spike_times"
        )
    x = x.flatten(1)
    start, end = config.window()
    if config.encoding == "binary-time":
        times = enc.binary_times(x, config.binary_t_min, config.binary_t_max)
    else:
        times = start + enc.latency_times(x, end - start, threshold=config.latency_threshold)
    if config.bias_spike:
        times = torch.cat([times.new_full((len(x), 1), start), times], 1)
    if generator is not None and config.input_dropout > 0:
        drop = torch.rand(times.shape, generator=generator) < config.input_dropout
        times = times.masked_fill(drop.to(times.device), math.inf)
    return from_times(times, steps=config.steps, dt=config.dt)


def build_model(config: Config | dict, n_in: int, n_classes: int) -> nn.Sequential:
    """``LIFLayer`` per hidden size, then a spiking ``LIFLayer`` (``ttfs``) or an ``LIReadout``."""
    config = Config.from_dict(config)
    common = dict(tau_mem=config.tau_mem, tau_syn=config.tau_syn, dt=config.dt)
    sizes = [n_in, *config.hidden, n_classes]
    init = config.init or ((None, None),) * (len(sizes) - 1)
    layers: list[nn.Module] = []
    pairs = zip(sizes[:-2], sizes[1:-1], strict=True)
    for (n_a, n_b), (mean, std) in zip(pairs, init[:-1], strict=True):
        layers.append(
            LIFLayer(
                n_a,
                n_b,
                recurrent=config.recurrent,
                v_th=config.v_th,
                init_mean=mean,
                init_std=std,
                rec_std=config.rec_std,
                **common,
            )
        )
    mean, std = init[-1]
    if config.loss == "ttfs":
        out = LIFLayer(
            sizes[-2], n_classes, v_th=config.v_th, init_mean=mean, init_std=std, **common
        )
    else:
        out = LIReadout(
            sizes[-2],
            n_classes,
            readout=READOUT[config.loss],
            init_mean=mean,
            init_std=std,
            **common,
        )
    return nn.Sequential(*layers, out)


def n_inputs(sample_shape: tuple[int, ...], config: Config) -> int:
    """Input neurons for samples of ``sample_shape``: one per value, plus the bias spike."""
    return math.prod(sample_shape) + int(config.bias_spike)


def loss_fn(output: Spikes | Tensor, y: Tensor, config: Config) -> Tensor:
    if config.loss == "ttfs":
        return first_spike_loss(
            output, y, tau_syn=config.tau_syn, xi=config.xi, alpha=config.alpha, beta=config.beta
        )
    return voltage_ce(output, y)


@torch.no_grad()
def rescue_silent(layer: nn.Module, silent: Tensor, amount: float) -> None:
    """pytorch-eventprop's rule: raise the input weights of the output neurons in ``silent``
    (``[n_out]`` bool: silent for some sample of the batch) by ``amount``."""
    layer.weight[silent] += amount


def silent_outputs(first_times: Tensor, duration: float) -> Tensor:
    """``[n_out]``: the output neurons that did not fire for some sample (time >= duration)."""
    return (first_times >= duration).any(0)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: Tensor, y: Tensor, config: Config | dict, batch_size: int = 1000
) -> float:
    """Accuracy of ``model`` on ``(x, y)``."""
    config = Config.from_dict(config)
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        out = model(encode(x[i : i + batch_size].to(device), config))
        correct += int((predict(out, config.loss) == y[i : i + batch_size].to(device)).sum())
    return correct / max(1, len(x))


def fit(
    config: Config | dict,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor] | None = None,
    *,
    model: nn.Module | None = None,
    n_classes: int | None = None,
    device: str = "cpu",
    log: Callable[[dict[str, Any]], None] | None = print,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train on ``train`` for ``config.epochs`` in the application's one training loop
    (:func:`torchspike.app.loop.fit`: ``config.optimizer``, ``lr`` decayed by ``lr_decay`` each
    epoch, ``keep_best`` on ``val``, the silent-output rescue). Returns ``(model, history)``,
    one dict per epoch with ``epoch``, ``lr``, ``train_loss``, ``train_accuracy``,
    ``validation_accuracy`` (None without ``val``) and ``seconds``; ``log`` gets each as it ends.
    """
    from ..app.config import EventPropConfig
    from ..app.loop import Splits
    from ..app.loop import fit as loop_fit
    from ..app.methods.eventprop import EventProp

    config = Config.from_dict(config)
    x, y = train
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    options = {f.name: getattr(config, f.name) for f in dataclasses.fields(Config)}
    for old, new in (("xi", "ttfs_xi"), ("alpha", "ttfs_alpha"), ("beta", "ttfs_beta")):
        options[new] = options.pop(old)
    options["hidden"] = list(options["hidden"])
    decay = options.pop("lr_decay")
    options.update(schedule="exponential" if decay != 1 else "none", lr_gamma=decay)
    options["init"] = [list(p) for p in config.init] if config.init is not None else None
    cfg = EventPropConfig(**options, device=str(device))
    cfg.check()
    torch.manual_seed(config.seed)
    if model is None:
        model = build_model(config, n_inputs(x.shape[1:], config), n_classes)
    history: list[dict[str, Any]] = []
    loop_fit(
        cfg,
        EventProp(),
        model,
        Splits(train, val),
        log=lambda _: None,
        on_epoch=lambda record: (history.append(record), log and log(record)),
    )
    return model, history

"""The typed configuration of a run: one dataclass per method, validated in one place.

CLI flags, recipe and config files (TOML) and a run's ``config.json`` are views of these
classes: :func:`from_dict` turns any of them into a checked configuration, naming the source
(a file or ``--flag``) in every error.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from .. import surrogate
from . import datasets

METHODS = ("bptt", "eventprop", "stdp")
EVENT_CODES = {"bptt": ("frames", "spikes"), "eventprop": ("events",)}  # for event data sets
DEVICES = "cpu, cuda or cuda:N"
MAX_SEED = 2**32 - 1
MAX_INT = 2**63 - 1  # torch sizes and seeds are 64-bit
TTFS = ("ttfs_xi", "ttfs_alpha", "ttfs_beta")  # the ttfs loss's parameters
LATENCY_WINDOW = ("latency_start", "latency_end")
NO_DATA_DIR = {"digits": "bundled with scikit-learn", "yinyang": "generated"}  # no files


def setting(default: Any, help: str, *, flag: bool = True, choices: tuple = ()) -> Any:
    """A configuration field: its default, ``--help`` text, whether it has a flag, choices."""
    meta = {"help": help, "flag": flag, "choices": choices}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


class ConfigError(ValueError):
    """A setting with a bad value; the message names it and its source."""


@dataclass(kw_only=True)
class Common:
    """Settings of every method."""

    method: str = setting("bptt", "training method", choices=METHODS)
    dataset: str = setting("digits", "data set", choices=datasets.ALL)
    data_dir: str | None = setting(None, "folder with the IDX files (mnist/, fashion-mnist/)")
    epochs: int = setting(10, "passes over the training data")
    batch_size: int = setting(128, "samples per step (the global batch under torchrun)")
    seed: int = setting(0, "random seed")
    device: str = setting("cpu", f"where to train: {DEVICES}")

    def check(self) -> None:
        _positive_int(self, "epochs", "batch_size")
        if self.data_dir == "":  # it would silently mean the current folder
            raise ConfigError("data_dir is empty: give a path, or leave the setting out")
        encoding = getattr(self, "encoding", None)
        if encoding is not None:
            event_codes = EVENT_CODES.get(self.method, ())
            if datasets.is_events(self.dataset) and encoding not in event_codes:
                raise ConfigError(
                    f"encoding must be one of {list(event_codes)} for the event data set "
                    f"{self.dataset!r}, got {encoding!r}"
                )
            if not datasets.is_events(self.dataset) and encoding in event_codes:
                raise ConfigError(
                    f"encoding {encoding!r} needs an event data set "
                    f"({', '.join(datasets.EVENTS)}), got dataset {self.dataset!r}"
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.seed > MAX_SEED:  # the loop seeds generators with seed * 100_003 + epoch
            raise ConfigError(f"seed must be at most 2**32 - 1 ({MAX_SEED}), got {self.seed!r}")
        check_device(self.device)

    def uses(self, name: str) -> str | None:
        """Why the setting ``name`` does nothing with this configuration, or None if it is used."""
        return None


@dataclass(kw_only=True)
class Gradient(Common):
    """Settings of the gradient methods' optimiser, schedule and model selection."""

    optimizer: str = setting("adam", "optimiser", choices=("adam", "sgd"))
    lr: float = setting(1e-3, "learning rate")
    weight_decay: float = setting(0.0, "L2 weight decay")
    schedule: str = setting(
        "none",
        "learning-rate schedule over the run's epochs: cosine decays to 0 at the last epoch, "
        "step multiplies by --lr-gamma every --lr-step epochs, exponential by --lr-gamma "
        "each epoch",
        choices=("none", "cosine", "step", "exponential"),
    )
    lr_step: int = setting(10, "epochs between decays of the step schedule")
    lr_gamma: float = setting(0.1, "decay factor of the step and exponential schedules")
    clip_value: float = setting(0.0, "clip each gradient value to [-c, c] (0: off)")
    clip_norm: float = setting(0.0, "clip the gradient's total norm (0: off)")
    keep_best: bool = setting(
        False, "test and save the weights of the epoch with the best validation accuracy"
    )
    random_shift: int = setting(
        0, "move each training image by a random 0..N pixels up/down and left/right (0: off)"
    )

    def check(self) -> None:
        super().check()
        _positive(self, "lr")
        _non_negative(self, "weight_decay", "clip_value", "clip_norm")
        _positive_int(self, "lr_step")
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"lr_gamma must be in (0, 1], got {self.lr_gamma!r}")
        if self.random_shift < 0:
            raise ConfigError(f"random_shift must be an integer >= 0, got {self.random_shift!r}")
        if self.random_shift:
            shape = datasets.input_shape(self.dataset)
            if datasets.is_events(self.dataset) or len(shape) != 3:
                raise ConfigError(
                    f"random_shift needs an image data set (digits, mnist, fashion-mnist), "
                    f"got dataset {self.dataset!r}"
                )
            if self.random_shift >= min(shape[1:]):
                raise ConfigError(
                    f"random_shift must be smaller than the image ({shape[1]}x{shape[2]}), "
                    f"got {self.random_shift!r}"
                )

    def uses(self, name: str) -> str | None:
        if name in ("lr_step",) and self.schedule != "step":
            return f"does nothing with schedule {self.schedule!r} (only with step)"
        if name == "lr_gamma" and self.schedule not in ("step", "exponential"):
            return f"does nothing with schedule {self.schedule!r} (only with step or exponential)"
        return super().uses(name)


@dataclass(kw_only=True)
class BPTTConfig(Gradient):
    """Surrogate-gradient BPTT of a fully connected or convolutional LIF network."""

    method: str = setting("bptt", "training method", choices=METHODS)
    arch: str = setting(
        "fc",
        "network: fully connected, convolutional, or a small SEW-ResNet (residual conv)",
        choices=("fc", "conv", "sew"),
    )
    hidden: list[int] = setting([1000], "hidden layer sizes (conv: after the conv blocks)")
    channels: list[int] = setting([32, 64], "conv: channels of each conv block")
    neuron: str = setting("lif", "fc: hidden neuron model", choices=("lif", "if"))
    readout: str = setting("lif", "output neuron model", choices=("lif", "li"))
    loss: str = setting("ce-membrane", "loss", choices=("ce-membrane", "ce-count", "mse-count"))
    steps: int = setting(25, "time steps per sample")
    beta: float = setting(0.95, "membrane decay per step")
    encoding: str = setting(
        "direct",
        "input code (event data: frames of event counts, or spikes where a bin has any)",
        choices=("direct", "rate", "latency", "binary-time", "frames", "spikes"),
    )
    event_duration: float = setting(
        300_000.0, "event data: microseconds of each recording binned into the steps"
    )
    surrogate: str = setting("atan", "surrogate derivative", choices=tuple(surrogate.NAMES))
    dropout: float = setting(0.0, "conv: dropout before each fully connected layer")
    blocks: int = setting(1, "sew: residual blocks after each downsampling conv")

    def check(self) -> None:
        super().check()
        _positive_int(self, "steps")
        _sizes(self, "hidden", allow_empty=True)
        _sizes(self, "channels", allow_empty=False)
        if not 0 <= self.beta <= 1:
            raise ConfigError(f"beta must be in [0, 1], got {self.beta!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.readout == "li" and self.loss != "ce-membrane":
            raise ConfigError(
                f"readout 'li' has no spikes: loss must be 'ce-membrane', got {self.loss!r}"
            )
        _positive(self, "event_duration")
        if self.blocks < 0:
            raise ConfigError(f"blocks must be an integer >= 0, got {self.blocks!r}")
        if self.arch in ("conv", "sew") and len(datasets.input_shape(self.dataset)) != 3:
            raise ConfigError(f"arch 'conv' needs images; dataset {self.dataset!r} is not")
        if self.arch == "conv":  # each conv block halves the image (2x2 max pooling)
            _, h, w = datasets.input_shape(self.dataset)
            if min(h, w) >> len(self.channels) == 0:
                raise ConfigError(
                    f"channels {self.channels!r} makes {len(self.channels)} conv blocks, each "
                    f"halving the image: the {h}x{w} images of {self.dataset} allow at most "
                    f"{min(h, w).bit_length() - 1}"
                )
        for name in ("channels", "dropout", "neuron", "event_duration", "blocks"):
            why = self.uses(name)
            if why and getattr(self, name) != default(type(self), name):
                raise ConfigError(f"{name} {why}")

    def uses(self, name: str) -> str | None:
        if name == "event_duration" and not datasets.is_events(self.dataset):
            return f"does nothing with dataset {self.dataset!r} (only with event data)"
        if name == "channels" and self.arch == "fc":
            return "does nothing with arch 'fc' (only with conv or sew)"
        if name == "dropout" and self.arch != "conv":
            return f"does nothing with arch {self.arch!r} (only with conv)"
        if name == "blocks" and self.arch != "sew":
            return f"does nothing with arch {self.arch!r} (only with sew)"
        if name == "hidden" and self.arch == "sew":
            return "does nothing with arch 'sew' (it pools to the read-out)"
        if name == "neuron" and self.arch != "fc":
            return f"does nothing with arch {self.arch!r} (its hidden neurons are LIF)"
        return super().uses(name)


@dataclass(kw_only=True)
class EventPropConfig(Gradient):
    """Exact gradients (EventProp) of CubaLIF networks; times in seconds.

    Latency code: ``t = t_start + (1 - x) (t_end - t_start)`` for ``x > latency_threshold``
    (window ``[latency_start, latency_end]``, default ``[2 dt, duration - 2 dt]``). Binary code:
    ink (``x > 0.5``) at ``binary_t_min``, background at ``binary_t_max``.
    """

    method: str = setting("eventprop", "training method", choices=METHODS)
    hidden: list[int] = setting([350], "hidden layer sizes (0 or [] in a file: none)")
    recurrent: bool = setting(False, "recurrent hidden layers")
    loss: str = setting(
        "max-voltage",
        "ttfs: first-spike times; max-voltage, sum, sum-exp: an LI read-out's voltage",
        choices=("max-voltage", "ttfs", "sum", "sum-exp"),
    )
    encoding: str = setting(
        "latency",
        "input code (event data: events, each input spike at its event's exact time)",
        choices=("latency", "binary-time", "events"),
    )
    tau_mem: float = setting(20e-3, "membrane time constant (s)")
    tau_syn: float = setting(5e-3, "synaptic time constant (s)")
    dt: float = setting(1e-3, "simulation step (s)")
    duration: float = setting(20e-3, "simulated time per sample (s)")
    v_th: float = setting(1.0, "threshold")
    latency_start: float | None = setting(None, "latency code: earliest spike (s)", flag=False)
    latency_end: float | None = setting(None, "latency code: latest spike (s)", flag=False)
    latency_threshold: float = setting(0.0, "latency code: values at or below send no spike")
    binary_t_min: float = setting(2e-3, "binary code: spike time of ink (s)")
    binary_t_max: float = setting(12e-3, "binary code: spike time of background (s)")
    bias_spike: bool = setting(False, "add an input that always fires at the window start")
    init: list[list[float]] | None = setting(
        None, "[mean, std] of each weight matrix, input side first", flag=False
    )
    rec_std: float | None = setting(None, "std of recurrent weights", flag=False)
    ttfs_xi: float = setting(0.4, "ttfs loss: softmax temperature xi (in tau_syn)", flag=False)
    ttfs_alpha: float = setting(0.01, "ttfs loss: early-spike regulariser alpha", flag=False)
    ttfs_beta: float = setting(2.0, "ttfs loss: regulariser time constant beta", flag=False)
    rescue_silent: float = setting(
        0.0, "ttfs: after each step raise the input weights of silent output neurons by this"
    )
    input_dropout: float = setting(0.0, "drop each input spike with this probability")

    def __post_init__(self) -> None:
        if self.hidden == [0]:  # a hidden size of 0 means no hidden layer
            self.hidden = []

    def check(self) -> None:
        super().check()
        _positive(self, "tau_mem", "tau_syn", "dt", "duration", "v_th", "ttfs_xi", "ttfs_beta")
        _non_negative(self, "ttfs_alpha", "rescue_silent", "binary_t_min", "binary_t_max")
        _sizes(self, "hidden", allow_empty=True)
        if not 0 <= self.input_dropout < 1:
            raise ConfigError(f"input_dropout must be in [0, 1), got {self.input_dropout!r}")
        if self.recurrent and not self.hidden:
            raise ConfigError("recurrent needs a hidden layer, got hidden []")
        if self.init is not None:
            if len(self.init) != len(self.hidden) + 1 or any(len(p) != 2 for p in self.init):
                raise ConfigError(
                    f"init must give [mean, std] for each of the {len(self.hidden) + 1} weight "
                    f"matrices, got {self.init!r}"
                )
            if any(std < 0 for _, std in self.init):
                raise ConfigError(f"init's std must be >= 0, got {self.init!r}")
        if self.rec_std is not None and self.rec_std < 0:
            raise ConfigError(f"rec_std must be >= 0, got {self.rec_std!r}")
        self._check_times()
        try:
            self.library()
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if datasets.is_events(self.dataset) and (self.bias_spike or self.input_dropout):
            raise ConfigError("bias_spike and input_dropout are not available with event data")
        for name in ("rescue_silent", "rec_std", *TTFS, *LATENCY_WINDOW):
            why = self.uses(name)
            if why and getattr(self, name) != default(type(self), name):
                raise ConfigError(f"{name} {why}")

    def _check_times(self) -> None:
        """The step, the time constants and the input code's window against the duration."""
        if self.dt > self.duration:
            raise ConfigError(f"dt must be at most duration ({self.duration!r} s), got {self.dt!r}")
        if not self.duration / self.dt < 2**31:
            raise ConfigError(
                f"dt {self.dt!r} makes {self.duration / self.dt:.3g} steps of duration "
                f"{self.duration!r}: at most 2**31 - 1"
            )
        from ..neurons.cuba import cuba_coefficients

        alpha, beta, kappa = cuba_coefficients(self.tau_mem, self.tau_syn, self.dt)
        for name, decay in (("tau_syn", alpha), ("tau_mem", beta)):
            if decay == 0:
                raise ConfigError(
                    f"{name} {getattr(self, name)!r} is too short for dt {self.dt!r}: "
                    f"exp(-dt / {name}) is 0 in floating point (keep dt / {name} below 700)"
                )
        if not (math.isfinite(kappa) and kappa > 0):
            raise ConfigError(
                f"tau_mem {self.tau_mem!r} and tau_syn {self.tau_syn!r} are too long for dt "
                f"{self.dt!r}: the input of a step moves the membrane by {kappa:g}"
            )
        if self.encoding == "binary-time":
            if not self.binary_t_min < self.binary_t_max:
                raise ConfigError(
                    f"binary_t_min must be < binary_t_max ({self.binary_t_max!r}), "
                    f"got {self.binary_t_min!r}"
                )
            if self.binary_t_max > self.duration:
                raise ConfigError(
                    f"binary_t_max must be at most duration ({self.duration!r}), "
                    f"got {self.binary_t_max!r}"
                )
        if self.encoding == "latency":
            if not 0 <= self.latency_threshold < 1:
                raise ConfigError(
                    f"latency_threshold must be in [0, 1), got {self.latency_threshold!r}"
                )
            start = 2 * self.dt if self.latency_start is None else self.latency_start
            end = self.duration - 2 * self.dt if self.latency_end is None else self.latency_end
            if self.latency_start is not None and not 0 <= start <= self.duration:
                raise ConfigError(f"latency_start must be in [0, duration], got {start!r}")
            if not start < end <= self.duration:
                which = "latency_end" if self.latency_end is not None else "duration"
                raise ConfigError(
                    f"{which} {getattr(self, which)!r} leaves the latency code no window: "
                    f"[{start:g}, {end:g}] s within duration {self.duration!r} (by default "
                    f"[2 dt, duration - 2 dt])"
                )

    def uses(self, name: str) -> str | None:
        if name in ("binary_t_min", "binary_t_max") and self.encoding != "binary-time":
            return f"does nothing with encoding {self.encoding!r} (only binary-time)"
        if name == "latency_threshold" and self.encoding != "latency":
            return f"does nothing with encoding {self.encoding!r} (only latency)"
        if name in ("rescue_silent", *TTFS) and self.loss != "ttfs":
            return f"does nothing with loss {self.loss!r} (only ttfs)"
        if name in LATENCY_WINDOW and self.encoding != "latency":
            return f"does nothing with encoding {self.encoding!r} (only latency)"
        if name == "rec_std" and not self.recurrent:
            return "does nothing without recurrent hidden layers (recurrent = true)"
        return super().uses(name)

    def library(self):
        """The :class:`torchspike.eventprop.train.Config` of the model and its input code."""
        from ..eventprop.train import Config

        return Config.from_dict(
            {
                "encoding": self.encoding,
                "hidden": tuple(self.hidden),
                "recurrent": self.recurrent,
                "loss": self.loss,
                "tau_mem": self.tau_mem,
                "tau_syn": self.tau_syn,
                "dt": self.dt,
                "duration": self.duration,
                "v_th": self.v_th,
                "latency_start": self.latency_start,
                "latency_end": self.latency_end,
                "latency_threshold": self.latency_threshold,
                "binary_t_min": self.binary_t_min,
                "binary_t_max": self.binary_t_max,
                "bias_spike": self.bias_spike,
                "init": self.init,
                "rec_std": self.rec_std,
                "xi": self.ttfs_xi,
                "alpha": self.ttfs_alpha,
                "beta": self.ttfs_beta,
                "input_dropout": self.input_dropout,
                "seed": self.seed,
            }
        )


@dataclass(kw_only=True)
class STDPConfig(Common):
    """Unsupervised STDP: the Diehl & Cook (2015) network, classes assigned from its spikes."""

    method: str = setting("stdp", "training method", choices=METHODS)
    epochs: int = setting(1, "passes over the training images")
    batch_size: int = setting(64, "images presented at once")
    n_neurons: int = setting(100, "excitatory neurons")
    synapse: str = setting(
        "conductance",
        "conductance (the paper) or current synapses",
        choices=("conductance", "current"),
    )
    update_interval: int = setting(10_000, "images between label assignments", flag=False)
    label_images: int = setting(0, "frozen labelling pass over this many images (0: last window)")
    eval_batch_size: int = setting(1024, "images per batch in the frozen labelling and test passes")
    params: dict[str, float | str] = setting(
        {},
        'Diehl & Cook model parameters (torchspike.stdp.DiehlCookParams; "none" for no value)',
        flag=False,
    )

    def check(self) -> None:
        super().check()
        if datasets.is_events(self.dataset):
            raise ConfigError(f"method stdp trains on static images, not {self.dataset!r}")
        _positive_int(self, "n_neurons", "update_interval", "eval_batch_size")
        if self.label_images < 0:
            raise ConfigError(f"label_images must be an integer >= 0, got {self.label_images!r}")
        from ..stdp import DiehlCookParams

        hints = typing.get_type_hints(DiehlCookParams)
        for key, value in self.params.items():
            if key in hints:  # an unknown key is named by the library's check below
                self.params[key] = _coerce(f"params.{key}", value, hints[key], "")
        try:
            self.library(threads=1)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def library(self, *, threads: int, checkpoint_every: int = 0):
        """The :class:`torchspike.stdp.STDPConfig` of this run."""
        from ..stdp import STDPConfig as Library

        return Library(
            n_neurons=self.n_neurons,
            synapse=self.synapse,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            update_interval=self.update_interval,
            label_images=self.label_images,
            eval_batch_size=self.eval_batch_size,
            checkpoint_every=checkpoint_every,
            n_classes=datasets.num_classes(self.dataset),
            threads=threads,
            params=dict(self.params),
        )


CLASSES: dict[str, type[Common]] = {
    "bptt": BPTTConfig,
    "eventprop": EventPropConfig,
    "stdp": STDPConfig,
}
RunConfig = BPTTConfig | EventPropConfig | STDPConfig


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def all_fields() -> dict[str, dataclasses.Field]:
    """Every setting of every method, by name (the first class that has it wins)."""
    out: dict[str, dataclasses.Field] = {}
    for cls in CLASSES.values():
        for name, f in fields_of(cls).items():
            out.setdefault(name, f)
    return out


def methods_with(name: str) -> list[str]:
    return [m for m, cls in CLASSES.items() if name in fields_of(cls)]


def from_dict(values: dict[str, Any], source: str, *, check: bool = True) -> RunConfig:
    """A checked configuration from plain values; ``source`` names where they came from."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a table of settings, got {type(values).__name__}")
    method = values.get("method", "bptt")
    if not isinstance(method, str) or method not in CLASSES:
        raise ConfigError(f"{source}: method must be one of {METHODS}, got {method!r}")
    cls = CLASSES[method]
    known = fields_of(cls)
    unknown = sorted(set(values) - set(known))
    if unknown:
        where = [f"{k} ({', '.join(methods_with(k))})" for k in unknown if methods_with(k)]
        hint = f"; these belong to other methods: {', '.join(where)}" if where else ""
        raise ConfigError(f"{source}: unknown settings for method {method!r}: {unknown}{hint}")
    hints = typing.get_type_hints(cls)
    typed = {k: _coerce(k, v, hints[k], source) for k, v in values.items()}
    for k, v in typed.items():
        choices = known[k].metadata.get("choices")
        if choices and v not in choices:
            raise ConfigError(f"{source}: {k} must be one of {list(choices)}, got {v!r}")
    cfg = cls(**typed)
    if not check:
        return cfg
    try:
        cfg.check()
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def check_device(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``, and CUDA present when asked for."""
    index = device[5:] if device.startswith("cuda:") else ""
    ok = device in ("cpu", "cuda") or (index.isascii() and index.isdigit())
    if not ok:
        raise ConfigError(f"device must be {DEVICES}, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise ConfigError(
                f"device {device!r} asked for, but this machine has {count} CUDA device"
                f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})"
            )


def data_dir_unused(dataset: str) -> str | None:
    """Why a data folder does nothing with ``dataset``, or None if it reads one."""
    if dataset in NO_DATA_DIR:
        return f"does nothing with dataset {dataset!r} (its data are {NO_DATA_DIR[dataset]})"
    return None


def default(cls: type, name: str) -> Any:
    f = fields_of(cls)[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _coerce(name: str, value: Any, hint: Any, source: str) -> Any:
    """``value`` as the type ``hint`` asks for, or a ConfigError naming ``name``."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None or value == "none":  # TOML has no null: "none" stands for it
            return None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)

    def bad(what: str) -> ConfigError:
        where = f"{source}: " if source else ""
        return ConfigError(f"{where}{name} must be {what}, got {value!r}")

    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        if abs(value) > MAX_INT:
            raise bad("an integer of at most 2**63 - 1")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        if not math.isfinite(value):
            raise bad("a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise bad("a list")
        (inner,) = typing.get_args(hint)
        return [_coerce(f"{name}[{i}]", v, inner, source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad("a table")
        return dict(value)
    raise bad(str(hint))


def _positive_int(cfg: Any, *names: str) -> None:
    for name in names:
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"{name} must be an integer > 0, got {getattr(cfg, name)!r}")


def _positive(cfg: Any, *names: str) -> None:
    for name in names:
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"{name} must be > 0, got {getattr(cfg, name)!r}")


def _non_negative(cfg: Any, *names: str) -> None:
    for name in names:
        if not getattr(cfg, name) >= 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)!r}")


def _sizes(cfg: Any, name: str, *, allow_empty: bool) -> None:
    sizes = getattr(cfg, name)
    if not sizes and not allow_empty:
        raise ConfigError(f"{name} needs at least one size, got {sizes!r}")
    for size in sizes:
        if size <= 0:
            raise ConfigError(f"{name} sizes must be integers > 0, got {sizes!r}")

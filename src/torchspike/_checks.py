"""Input validation shared by neurons, encoders and the CLI: clear errors, no silent clamping."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _is_compiling() -> bool:
    return torch.compiler.is_compiling()


def sequence(xs: Tensor, name: str = "xs", *, min_rank: int = 2) -> Tensor:
    """Check a time-first sequence ``[T, B, ...]``: a floating tensor of rank >= ``min_rank``."""
    if not isinstance(xs, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [T, B, ...], got {type(xs)!r}")
    if xs.dim() < min_rank:
        raise ValueError(
            f"{name} must be time-first [T, B, ...] with rank >= {min_rank}, "
            f"got shape {tuple(xs.shape)}"
        )
    if xs.shape[0] == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {tuple(xs.shape)}")
    if not xs.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {xs.dtype}")
    finite(xs, name)
    return xs


def finite(x: Tensor, name: str) -> None:
    """Raise if ``x`` holds a NaN or an infinity (one summing pass when all is well)."""
    if _is_compiling() or not x.is_floating_point() or x.numel() == 0:
        return
    while torch._C._functorch.is_functorch_wrapped_tensor(x):  # torch.func: check the values
        x = torch._C._functorch.get_unwrapped(x)  # underneath (vmap refuses a data-dependent if)
    if x.dim() > 0 and x.shape[0] > 1 and x.stride(0) == 0:
        x = x[0]  # a static input repeated over time: check one copy
    if not bool(torch.isfinite(x.sum())):  # NaN and inf propagate; or a finite overflow
        bad = x[~torch.isfinite(x)]
        if bad.numel():
            raise ValueError(f"{name} must be finite, got a non-finite value ({bad[0].item()})")


def trailing_shape(x: Tensor, expected: tuple[int, ...], name: str, what: str) -> None:
    """Check ``x.shape[-len(expected):] == expected``."""
    got = tuple(x.shape[x.dim() - len(expected) :]) if x.dim() >= len(expected) else tuple(x.shape)
    if got != tuple(expected):
        raise ValueError(
            f"{name} must end with {what} {tuple(expected)}, got shape {tuple(x.shape)}"
        )


def outputs(x: Tensor, name: str, dims: str) -> Tensor:
    """A loss input of rank ``len(dims)``: ``[T, B, C]`` outputs over time, ``[B, C]`` times."""
    rank = dims.count(",") + 1
    if not isinstance(x, Tensor) or x.dim() != rank:
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else repr(type(x))
        hint = ""
        if rank == 3 and isinstance(x, Tensor) and x.dim() == 2:
            hint = " (the loss sums over time itself: pass the outputs over time, not counts)"
        raise ValueError(f"{name} must be {dims}, got {got}{hint}")
    return x


def class_targets(target: Tensor, batch: int, name: str, shape: tuple[int, ...]) -> Tensor:
    """Class indices ``[B]`` for outputs ``name`` of ``shape`` whose batch size is ``batch``."""
    if not isinstance(target, Tensor):
        raise ValueError(f"target must be a tensor of class indices [B], got {type(target)!r}")
    if target.is_floating_point() or target.is_complex() or target.dim() != 1:
        hint = ""
        if target.dim() == 2:
            hint = ": for one-hot or soft targets [B, C], pass the class indices target.argmax(1)"
        raise ValueError(
            f"target must be class indices [B] (an integer tensor), got {target.dtype} of "
            f"shape {tuple(target.shape)}{hint}"
        )
    if target.shape[0] != batch:
        raise ValueError(
            f"target has {target.shape[0]} class indices, but {name} of shape {shape} has "
            f"batch size B = {batch}: one index per sample"
        )
    return target


def positive(value: float | Tensor, name: str) -> float | Tensor:
    """``value > 0`` and finite (a number or a tensor of them)."""
    t = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
        raise ValueError(f"{name} must be finite and > 0, got {_show(value)}")
    return value


def non_negative(value: float | Tensor, name: str) -> float | Tensor:
    """``value >= 0`` and finite (a number or a tensor of them)."""
    t = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()) or not bool((t >= 0).all()):
        raise ValueError(f"{name} must be finite and >= 0, got {_show(value)}")
    return value


def unit_interval(value: float | Tensor, name: str) -> float | Tensor:
    """``0 <= value <= 1``."""
    t = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()) or not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(f"{name} must be in [0, 1], got {_show(value)}")
    return value


def positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be an integer > 0, got {value!r}")
    return value


def non_negative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def choice(value: str, options: tuple[str, ...], name: str) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def decay(tau: float, dt: float, tau_name: str = "tau", dt_name: str = "dt") -> float:
    """``exp(-dt / tau)`` after checking both are > 0."""
    positive(tau, tau_name)
    positive(dt, dt_name)
    return math.exp(-float(dt) / float(tau))


def _show(value: float | Tensor) -> str:
    if isinstance(value, Tensor):
        if value.numel() <= 8:
            return repr(value.tolist())
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value)

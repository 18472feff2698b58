"""Spike functions: a Heaviside step forward, a smooth surrogate derivative backward.

``z = H(x) = 1 if x > 0 else 0`` (strict), and ``dz/dx`` is replaced by ``derivative(x)``, in
backward and in forward-mode AD alike (a tangent ``t`` of ``x`` becomes ``derivative(x) * t``).
The spike function works under a double backward and ``torch.func`` (``grad``, ``vmap``, ``jvp``).

Define your own by subclassing :class:`Surrogate` and implementing ``derivative``::

    class Gaussian(Surrogate):
        def __init__(self, sigma: float = 0.5):
            super().__init__()
            self.sigma = sigma

        def derivative(self, x):
            return torch.exp(-0.5 * (x / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))

Every neuron accepts any ``Surrogate`` as ``spike_fn``; the fused sequence kernels call
``derivative`` directly, so a custom surrogate is as fast as a built-in one. Write
``derivative`` in torch operations: ``torch.func.vmap`` derives the spike function's batching
rule from them, and a double backward differentiates them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class _Heaviside(torch.autograd.Function):
    """``H(x)`` forward; backward and forward-mode derivative both ``surrogate.derivative(x)``.

    Written as PyTorch operations in ``setup_context`` form, so it composes with the rest of
    autograd: a double backward differentiates ``grad * derivative(x)`` (the surrogate's own
    second derivative), ``torch.func.vmap`` derives its batching rule from the operations, and
    forward-mode AD (``torch.func.jvp``, ``torch.autograd.forward_ad``) pushes a tangent ``t``
    to ``derivative(x) * t``: the same surrogate slope as backward, not the true derivative 0.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, surrogate: Surrogate) -> Tensor:
        return (x > 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, Surrogate], output: Tensor) -> None:
        x, surrogate = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor, _: None) -> Tensor:
        (x,) = ctx.saved_tensors
        return x_tangent * ctx.surrogate.derivative(x)


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _scalar(value: float, like: Tensor) -> Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


class Surrogate:
    """Heaviside forward (strict ``x > 0``) with a surrogate derivative backward."""

    def __call__(self, x: Tensor) -> Tensor:
        return _Heaviside.apply(x, self)

    def derivative(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def derivative_(self, x: Tensor) -> Tensor:
        """``derivative(x)`` written into ``x`` (the fused kernels own that buffer)."""
        return x.copy_(self.derivative(x))

    def backward_(self, x: Tensor, grad: Tensor) -> Tensor:
        """``grad * derivative(x)`` written into ``x``: the spike's backward in the fewest
        passes over memory (the fused kernels own ``x``)."""
        return self.derivative_(x).mul_(grad)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class ATan(Surrogate):
    """snnTorch's arctan surrogate: ``alpha/2 / (1 + (pi/2 * alpha * x)^2)``."""

    def __init__(self, alpha: float = 2.0):
        self.alpha = _positive("alpha", alpha)

    def derivative(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    def backward_(self, x: Tensor, grad: Tensor) -> Tensor:
        # grad / (2/alpha + 2/alpha (pi/2 alpha)^2 x^2): two passes instead of six
        c = 2 / self.alpha
        torch.addcmul(_scalar(c, x), x, x, value=c * (math.pi / 2 * self.alpha) ** 2, out=x)
        return torch.div(grad, x, out=x)


class FastSigmoid(Surrogate):
    """SuperSpike / fast sigmoid: ``1 / (1 + slope * |x|)^2``."""

    def __init__(self, slope: float = 25.0):
        self.slope = _positive("slope", slope)

    def derivative(self, x: Tensor) -> Tensor:
        return 1 / (1 + self.slope * x.abs()) ** 2

    def backward_(self, x: Tensor, grad: Tensor) -> Tensor:
        # grad / (1 + slope |x|)^2: four passes instead of six
        torch.add(_scalar(1.0, x), x.abs_(), alpha=self.slope, out=x)
        return torch.div(grad, x.square_(), out=x)


class Sigmoid(Surrogate):
    """Derivative of the logistic function: ``slope * s(slope x) * (1 - s(slope x))``."""

    def __init__(self, slope: float = 5.0):
        self.slope = _positive("slope", slope)

    def derivative(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1 - s)


class Triangle(Surrogate):
    """Triangle of half-width ``width`` and unit area: ``max(0, 1 - |x|/width) / width``."""

    def __init__(self, width: float = 1.0):
        self.width = _positive("width", width)

    def derivative(self, x: Tensor) -> Tensor:
        return (1 - x.abs() / self.width).clamp_min(0) / self.width


class StraightThrough(Surrogate):
    """Straight-through estimator: the derivative is 1 everywhere."""

    def derivative(self, x: Tensor) -> Tensor:
        return torch.ones_like(x)


def atan(alpha: float = 2.0) -> ATan:
    """:class:`ATan` with steepness ``alpha`` > 0 (``spike_fn="atan"`` is ``atan(2.0)``)."""
    return ATan(alpha)


def fast_sigmoid(slope: float = 25.0) -> FastSigmoid:
    """:class:`FastSigmoid` (SuperSpike) with ``slope`` > 0; ``"fast_sigmoid"`` is slope 25."""
    return FastSigmoid(slope)


def sigmoid(slope: float = 5.0) -> Sigmoid:
    """:class:`Sigmoid` with ``slope`` > 0; ``"sigmoid"`` is slope 5 (snnTorch's default is 25)."""
    return Sigmoid(slope)


def triangle(width: float = 1.0) -> Triangle:
    """:class:`Triangle` of half-width ``width`` > 0; ``"triangle"`` is width 1."""
    return Triangle(width)


def straight_through() -> StraightThrough:
    """:class:`StraightThrough`: the derivative is 1 (``"straight_through"``)."""
    return StraightThrough()


_BY_NAME = {
    "atan": ATan,
    "fast_sigmoid": FastSigmoid,
    "sigmoid": Sigmoid,
    "triangle": Triangle,
    "straight_through": StraightThrough,
}
NAMES = tuple(_BY_NAME)


def get(spike_fn: str | Surrogate) -> Surrogate:
    """A surrogate from its name (``"atan"``, ``"fast-sigmoid"``, ...) or the instance itself."""
    if isinstance(spike_fn, Surrogate):
        return spike_fn
    key = spike_fn.replace("-", "_") if isinstance(spike_fn, str) else None
    if key not in _BY_NAME:
        raise ValueError(f"spike_fn must be a Surrogate or one of {NAMES}, got {spike_fn!r}")
    return _BY_NAME[key]()

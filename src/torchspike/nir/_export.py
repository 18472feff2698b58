"""torchspike -> NIR: walk a ``SpikingNet`` layer by layer and write one NIR node per layer."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._version import __version__
from ..neurons import IF, LI, LIF, CubaLIF, Neuron
from ._modules import NIRLIF, NIRCubaLIF, NIRWarning, Scale, SumPool2d, Threshold

DISCRETIZATION = "forward-euler"
_SKIPPED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def export(
    model: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    *,
    dt: float = 1e-3,
    strict: bool = False,
) -> Any:
    """The ``nir.NIRGraph`` of ``model`` (a ``SpikingNet``, an ``nn.Sequential`` or one layer).

    ``input_shape`` is one sample's shape without time and batch (needed unless the first
    layer is a ``Linear``). ``dt`` is recorded in ``graph.metadata`` and sets the time
    constants: a decay ``beta`` per step becomes ``tau = dt / (1 - beta)`` (forward Euler).
    Layers NIR cannot represent raise ``ValueError``; neurons it can only approximate (the
    resets of ``LIF``) raise a ``NIRWarning``, or a ``ValueError`` if ``strict``.
    """
    import nir

    layers = _named_layers(model)
    _no_modules_with_neurons(layers)
    shape = _input_shape(layers, input_shape)
    shapes = _trace_shapes(model, layers, shape)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape))}
    inexact: list[str] = []
    spiking = False  # does the signal hold 0/1 spikes only?
    for name, layer, batchnorm, in_shape, out_shape in _steps(layers, shapes):
        if isinstance(layer, nn.MaxPool2d):
            nodes.update(_max_pool(name, layer, out_shape, spiking))
        elif isinstance(layer, Neuron):
            node, reason = _neuron(layer, in_shape, dt)
            if reason is not None:
                inexact.append(f"layer {name} ({type(layer).__name__}): {reason}")
                node.metadata["torchspike_inexact"] = reason
            nodes[name] = node
            spiking = isinstance(node, nir.LIF | nir.IF | nir.CubaLIF)
        else:
            nodes[name] = _layer(name, layer, in_shape, batchnorm)
            spiking = isinstance(layer, Threshold) or (spiking and isinstance(layer, nn.Flatten))
    nodes["output"] = nir.Output(output_type=np.array(shapes[-1]))
    _report(inexact, strict)
    names = list(nodes)
    metadata = {
        "dt": float(dt),
        "discretization": DISCRETIZATION,
        "source": f"torchspike {__version__}",
    }
    return nir.NIRGraph(
        nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), metadata=metadata
    )


def export_run(
    run_dir: str | Path, out_path: str | Path, *, dt: float = 1e-3, strict: bool = False
) -> Any:
    """Write the trained model of a run directory to ``out_path`` (``.nir``); returns the graph.
    (Reads the run with the application: :func:`torchspike.app.export.export_run`.)"""
    from ..app.export import export_run as export_app_run

    return export_app_run(run_dir, out_path, dt=dt, strict=strict)


def _named_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from ..net import SpikingNet

    if isinstance(model, SpikingNet):
        model = model.layers
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    return [("0", model)]


def _no_modules_with_neurons(layers: list[tuple[str, nn.Module]]) -> None:
    """Refuse a layer that runs neurons in its own ``forward`` (a residual block): its graph
    is not a chain of the layers below, and no export of it is written yet."""
    from .._paths import stateful

    for name, layer in layers:
        inside = [] if isinstance(layer, Neuron) else stateful(layer, name)
        if inside:
            raise ValueError(
                f"layer {name} ({type(layer).__name__}) runs neurons inside its own forward "
                f"({', '.join(n for n, _ in inside)}), e.g. a residual or branching block: NIR "
                "export takes a chain of layers (Linear, Conv, pooling, Flatten, neurons) and "
                "cannot write such a module yet; a sew_resnet model cannot be exported"
            )


def _input_shape(layers, input_shape) -> tuple[int, ...]:
    if input_shape is not None:
        return tuple(int(n) for n in input_shape)
    first = layers[0][1]
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    raise ValueError(
        f"input_shape is needed when the first layer is not a Linear, got {type(first).__name__}"
    )


@torch.no_grad()
def _trace_shapes(model: nn.Module, layers, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """One sample's shape in front of each layer and after the last (run in eval mode)."""
    training = model.training
    model.eval()
    try:
        p = next(iter(model.parameters()), None)
        x = torch.zeros(1, *shape, device=p.device if p is not None else None)
        shapes = [shape]
        for name, layer in layers:
            if not isinstance(layer, Neuron):
                try:
                    x = layer(x)
                except RuntimeError as err:
                    raise ValueError(f"layer {name} rejects input of shape {shape}: {err}") from err
            shapes.append(tuple(x.shape[1:]))
        return shapes
    finally:
        model.train(training)


def _steps(layers, shapes) -> list[tuple[str, nn.Module, nn.Module | None, tuple, tuple]]:
    """``(name, layer, batchnorm folded into it, shape in, shape out)``, without no-op layers."""
    steps, i = [], 0
    while i < len(layers):
        name, layer = layers[i]
        batchnorm = None
        if isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d) and i + 1 < len(layers):
            following = layers[i + 1][1]
            batchnorm = following if isinstance(following, _BATCHNORMS) else None
        end = i + (1 if batchnorm is None else 2)
        if not isinstance(layer, _SKIPPED):
            steps.append((name, layer, batchnorm, shapes[i], shapes[end]))
        i = end
    return steps


def _report(inexact: list[str], strict: bool) -> None:
    if not inexact:
        return
    message = "NIR cannot represent these neurons exactly:\n  " + "\n  ".join(inexact)
    if strict:
        raise ValueError(message)
    warnings.warn(message + "\n(exported as the nearest NIR node)", NIRWarning, stacklevel=3)


def _array(value: Tensor | float, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` (parameters broadcast per neuron)."""
    t = torch.as_tensor(value).detach().to("cpu", torch.float64)
    try:
        return np.ascontiguousarray(np.broadcast_to(t.numpy(), shape))
    except ValueError as err:
        raise ValueError(f"a parameter of shape {tuple(t.shape)} does not fit {shape}") from err


def _weights(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to("cpu").numpy().copy()


# ---------------------------------------------------------------------------------- neurons


def _neuron(layer: Neuron, shape: tuple[int, ...], dt: float) -> tuple[Any, str | None]:
    """The NIR node of a neuron layer and why it is inexact (``None`` if it is exact)."""
    import nir

    def arr(v):
        return _array(v, shape)

    if isinstance(layer, NIRLIF | NIRCubaLIF):  # a NIR node already: its parameters by name
        params = {
            ("v_threshold" if name == "v_th" else name): arr(value)
            for name, value in layer.named_buffers(recurse=False)
        }
        return getattr(nir, layer.kind)(**params), None
    if isinstance(layer, CubaLIF):
        # i[t] = alpha i[t-1] + x[t], v[t] = beta v'[t-1] + kappa i[t]: Euler with these taus
        alpha, beta = arr(layer.alpha), arr(layer.beta)
        tau_syn, tau_mem = dt / (1 - alpha), dt / (1 - beta)
        node = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=arr(layer.kappa) / (1 - beta),
            v_leak=np.zeros(shape),
            w_in=tau_syn / dt,
            v_threshold=arr(layer.v_th),
            v_reset=np.zeros(shape),
        )
        return node, None
    if isinstance(layer, LI):
        return _leaky_integrator(arr(layer.beta), dt), None
    if isinstance(layer, LIF):
        return _lif(layer, arr, dt)
    raise ValueError(
        f"{type(layer).__name__} has no NIR equivalent; NIR covers LIF, IF, LI, CubaLIF "
        "(and torchspike.nir.NIRLIF / NIRCubaLIF)"
    )


def _leaky_integrator(beta: np.ndarray, dt: float) -> Any:
    """``v[t] = beta v[t-1] + x[t]`` as NIR ``LI`` (or ``I`` when ``beta`` is 1)."""
    import nir

    if (beta == 1).all():
        return nir.I(r=np.full(beta.shape, 1 / dt))
    _no_mixed_integrators(beta)
    return nir.LI(tau=dt / (1 - beta), r=1 / (1 - beta), v_leak=np.zeros(beta.shape))


def _no_mixed_integrators(beta: np.ndarray) -> None:
    if (beta == 1).any():
        raise ValueError("beta = 1 (no leak) for some neurons only has no NIR node; use beta < 1")


def _lif(layer: LIF, arr, dt: float) -> tuple[Any, str | None]:
    import nir

    beta = arr(layer._beta(torch.float64))
    if layer.output == "membrane":
        reason = None
        if layer.reset != "none":
            reason = "its membrane read-out resets after spikes; NIR LI never resets"
        return _leaky_integrator(beta, dt), reason
    v_th, zero = arr(layer.v_th), np.zeros(beta.shape)
    if (beta == 1).all():
        node = nir.IF(r=np.full(beta.shape, 1 / dt), v_threshold=v_th, v_reset=zero)
    else:
        _no_mixed_integrators(beta)
        tau = dt / (1 - beta)
        node = nir.LIF(tau=tau, r=1 / (1 - beta), v_leak=zero, v_threshold=v_th, v_reset=zero)
    return node, _reset_gap(layer)


def _reset_gap(layer: LIF) -> str:
    """Why a torchspike LIF/IF differs from NIR's hard reset to 0 within the step."""
    if isinstance(layer, IF) and layer.rectify:
        return "rectify=True clamps the membrane at 0; NIR IF has no floor"
    if layer.reset == "subtract":
        return "reset='subtract' subtracts v_th one step late; NIR resets to v_reset = 0"
    if layer.reset == "zero":
        return "reset='zero' also drops the input of the step after a spike; NIR keeps it"
    return "reset='none' never resets; NIR always resets to v_reset"


# ------------------------------------------------------------------------- stateless layers


def _layer(name: str, layer: nn.Module, shape: tuple[int, ...], bn: nn.Module | None) -> Any:
    import nir

    if isinstance(layer, nn.Linear):
        weight, bias = _fold(layer.weight, layer.bias, bn)
        return nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    if isinstance(layer, nn.Conv1d | nn.Conv2d):
        if layer.padding_mode != "zeros":
            raise ValueError(
                f"layer {name}: NIR convolutions pad with zeros, got {layer.padding_mode!r}"
            )
        weight, bias = _fold(layer.weight, layer.bias, bn)
        bias = np.zeros(weight.shape[0], dtype=weight.dtype) if bias is None else bias
        two_d = isinstance(layer, nn.Conv2d)
        return (nir.Conv2d if two_d else nir.Conv1d)(
            input_shape=tuple(shape[1:]) if two_d else shape[1],
            weight=weight,
            stride=layer.stride if two_d else layer.stride[0],
            padding=layer.padding if two_d or isinstance(layer.padding, str) else layer.padding[0],
            dilation=layer.dilation if two_d else layer.dilation[0],
            groups=layer.groups,
            bias=bias,
        )
    if isinstance(layer, nn.Flatten):
        if layer.start_dim == 0 or layer.end_dim == 0:
            raise ValueError(f"layer {name}: Flatten over the batch dimension has no NIR node")
        end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
        return nir.Flatten(input_type=np.array(shape), start_dim=layer.start_dim - 1, end_dim=end)
    if isinstance(layer, nn.AvgPool2d):
        if layer.ceil_mode or layer.divisor_override is not None:
            raise ValueError(f"layer {name}: AvgPool2d with ceil_mode or divisor_override")
        if not layer.count_include_pad and _pair(layer.padding) != (0, 0):
            raise ValueError(f"layer {name}: NIR AvgPool2d counts the padding (count_include_pad)")
        return nir.AvgPool2d(**_pool_args(layer))
    if isinstance(layer, SumPool2d):
        return nir.SumPool2d(**_pool_args(layer))
    if isinstance(layer, Threshold):
        return nir.Threshold(threshold=_array(layer.threshold, shape))
    if isinstance(layer, Scale):
        return nir.Scale(scale=_array(layer.scale, shape))
    if isinstance(layer, _BATCHNORMS):
        raise ValueError(f"layer {name}: BatchNorm is exported folded into a Linear/Conv before it")
    raise ValueError(
        f"layer {name}: {type(layer).__name__} has no NIR node; supported: Linear, Conv1d, "
        "Conv2d (+BatchNorm), Flatten, AvgPool2d, MaxPool2d after spikes, Dropout, neurons"
    )


def _fold(weight: Tensor, bias: Tensor | None, bn: nn.Module | None):
    """Weights (and bias) with an eval-mode BatchNorm after the layer folded in (float64 maths)."""
    if bn is None:
        return _weights(weight), _weights(bias)
    if bn.running_mean is None:
        raise ValueError("BatchNorm without running statistics cannot be folded for NIR")
    w = weight.detach().to("cpu", torch.float64)
    scale = torch.rsqrt(bn.running_var.detach().double().cpu() + bn.eps)
    shift = -bn.running_mean.detach().double().cpu()
    if bias is not None:
        shift = shift + bias.detach().double().cpu()
    if bn.affine:
        scale = scale * bn.weight.detach().double().cpu()
    b = shift * scale + (bn.bias.detach().double().cpu() if bn.affine else 0)
    w = w * scale.reshape(-1, *[1] * (w.dim() - 1))
    return w.to(weight.dtype).numpy(), b.to(weight.dtype).numpy()


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _pool_args(layer: nn.Module) -> dict[str, np.ndarray]:
    stride = layer.stride if layer.stride is not None else layer.kernel_size
    return {
        "kernel_size": np.array(_pair(layer.kernel_size)),
        "stride": np.array(_pair(stride)),
        "padding": np.array(_pair(layer.padding)),
    }


def _max_pool(name: str, layer: nn.MaxPool2d, out_shape, spiking: bool) -> dict[str, Any]:
    """Max pooling of 0/1 spikes is exact as ``Threshold(SumPool2d(x), 0.5)``."""
    import nir

    if not spiking:
        raise ValueError(
            f"layer {name}: NIR has no max pooling; MaxPool2d is exported only right after "
            "spiking neurons (as SumPool2d + Threshold 0.5, exact on 0/1 spikes)"
        )
    if layer.ceil_mode or _pair(layer.dilation) != (1, 1) or layer.return_indices:
        raise ValueError(f"layer {name}: MaxPool2d with ceil_mode, dilation or return_indices")
    return {
        f"{name}_sum": nir.SumPool2d(**_pool_args(layer)),
        f"{name}_any": nir.Threshold(threshold=np.full(out_shape, 0.5)),
    }

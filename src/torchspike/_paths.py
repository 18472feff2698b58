"""Which path a module with neurons inside takes over time, and why (``SpikingNet.explain``).

Folding time into the batch runs ``forward`` once on ``[T*B, ...]``. It gives the step-by-step
result only if nothing in ``forward`` looks across rows: no reduction, concatenation, view or
index over dimension 0, no use of the batch size as a value, no branch on tensor values (those
would see all steps at once), no loop through time (a ``Feedback``), no use of a neuron's
returned state (only the last step's is known). :func:`plan` traces ``forward`` with
``torch.fx`` (neurons as leaves; the module itself is run as written, never the trace) and
accepts it only when every operation is one known to act on each sample alone; anything it
cannot trace or does not know sends the module down the per-step path, with the reason.
"""

from __future__ import annotations

import operator
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import fx, nn

from .kernels.conv_pool import is_max_pool_2x2
from .neurons import IF, LIF, Feedback, Neuron

PATHS = ("auto", "folded", "per-step")
STATEFUL = (Neuron, Feedback)


class Plan(NamedTuple):
    path: str  # "folded" or "per-step"
    reasons: tuple[str, ...]  # why per-step (empty when folded by analysis)


def stateful(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the neurons and ``Feedback`` loops in ``module`` (itself included),
    not looking inside a neuron (its parts are its own business)."""
    if isinstance(module, STATEFUL):
        return [(prefix, module)]
    found = []
    for name, child in module.named_children():
        found += stateful(child, f"{prefix}.{name}" if prefix else name)
    return found


def plan(module: nn.Module, path: str = "auto") -> Plan:
    """The path of ``module`` over time: forced by ``path``, or chosen by analysing ``forward``."""
    if path != "auto":
        return Plan(path, (f"path={path!r} given to SpikingNet",))
    loops = [name for name, m in stateful(module, "") if isinstance(m, Feedback)]
    if loops:
        return Plan("per-step", tuple(f"{n}: Feedback needs the previous step" for n in loops))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = _Tracer().trace(module)
    except Exception as err:  # noqa: BLE001 - any failure to trace means: run it step by step
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Plan("per-step", (f"torch.fx cannot trace forward ({first[:160]})",))
    problems = _Fold(module).problems(graph)
    return Plan("per-step", tuple(problems)) if problems else Plan("folded", ())


class _Tracer(fx.Tracer):
    record_stack_traces = True  # the source line of each operation, for the listing

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, STATEFUL) or super().is_leaf_module(m, qualname)


# torch.nn leaves that act on each sample alone (their checks below); normalisation in training
# uses statistics over all the rows it sees, [T*B] folded as in a layer list
_PER_SAMPLE_MODULES = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.dropout._DropoutNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.padding._ConstantPadNd,
    nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.Upsample,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
    nn.Softsign,
    nn.Threshold,
    nn.Softmax,
    nn.LogSoftmax,
)

# functions and methods that act elementwise or on each sample alone with any arguments
_ELEMENTWISE = {
    *("add", "sub", "mul", "truediv", "div", "floordiv", "mod", "neg", "pos", "pow", "abs"),
    *("and_", "or_", "xor", "invert", "gt", "lt", "ge", "le", "eq", "ne", "rsub", "matmul"),
    *("relu", "relu6", "leaky_relu", "gelu", "silu", "elu", "selu", "celu", "mish", "sigmoid"),
    *("tanh", "hardtanh", "hardsigmoid", "hardswish", "softplus", "softsign", "exp", "log"),
    *("sqrt", "rsqrt", "clamp", "clamp_min", "clamp_max", "clip", "maximum", "minimum", "where"),
    *("sign", "square", "reciprocal", "logical_and", "logical_or", "logical_not", "heaviside"),
    *("dropout", "alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "conv1d", "conv2d"),
    *("conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear"),
    *("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"),
    *("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"),
    *("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "interpolate"),
    *("batch_norm", "layer_norm", "group_norm", "instance_norm", "pixel_shuffle", "pad"),
    *("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like"),
    *("contiguous", "float", "double", "half", "bfloat16", "to", "type", "type_as", "clone"),
    *("detach", "view_as", "reshape_as", "expand_as", "masked_fill", "add_", "mul_", "sub_"),
    *("div_", "relu_", "clamp_", "zero_", "fill_", "copy_", "addcmul", "addcdiv", "lerp"),
}
_BY_DIM = {  # (name: (position of the dim argument, its default)); dim 0 would mix samples
    **dict.fromkeys(("cat", "concat", "concatenate", "stack", "chunk"), (1, 0)),
    **dict.fromkeys(("split", "tensor_split"), (2, 0)),
    **dict.fromkeys(("unbind", "flatten", "unsqueeze"), (1, 0)),
    **dict.fromkeys(("softmax", "log_softmax", "cumsum", "cumprod", "squeeze"), (1, None)),
    **dict.fromkeys(("sum", "mean", "amax", "amin", "prod", "std", "var", "norm"), (1, None)),
    **dict.fromkeys(("logsumexp", "any", "all", "argmax", "argmin", "count_nonzero"), (1, None)),
}
_BY_DIM["norm"] = (2, None)  # norm(x, p, dim)
_ARG_DIM = {"max": (1, None), "min": (1, None)}  # max(x, dim) reduces; max(x, y) is elementwise
_NAMES: dict[Any, str] = {}
for _module in (operator, torch, F, torch.Tensor):
    for _name in (*_ELEMENTWISE, *_BY_DIM, *_ARG_DIM, "flatten", "reshape", "view", "permute"):
        _fn = getattr(_module, _name, None)
        if callable(_fn):
            _NAMES.setdefault(_fn, _name)


class _Fold:
    """Walks a traced graph, tracking what each value is, and collects what would fold wrong."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.kind: dict[fx.Node, str] = {}  # rows (a tensor, batch first), const, neuron, state,
        # shape (x.shape), batch (x.shape[0]: T*B folded, B per step), size (another int), tuple

    def problems(self, graph: fx.Graph) -> list[str]:
        found = []
        for node in graph.nodes:
            kind, problem = self._visit(node)
            self.kind[node] = kind
            if kind == "state" and node.users and self.kind.get(node.args[0]) == "neuron":
                problem = "uses the state a neuron returns (folded, only the last is known)"
            if problem:
                found.append(f"{_where(node)}: {problem}")
        return found

    def _of(self, value: Any) -> str:
        if isinstance(value, fx.Node):
            return self.kind[value]
        if isinstance(value, tuple | list):
            kinds = {self._of(v) for v in value}
            return "rows" if "rows" in kinds else "const"
        return "const"

    def _visit(self, node: fx.Node) -> tuple[str, str | None]:
        if node.op == "placeholder":
            return ("rows" if not self.kind else "const"), None
        if node.op == "get_attr":
            return "const", None
        if node.op == "output":
            return "const", None
        if node.op == "call_module":
            return self._call_module(node)
        name = node.target if node.op == "call_method" else _NAMES.get(node.target)
        args = list(node.args)
        kinds = [self._of(a) for a in args] + [self._of(v) for v in node.kwargs.values()]
        if name is None and node.target is getattr:
            return self._getattr(node, kinds[0])
        if name == "getitem" or node.target is operator.getitem:
            return self._getitem(node, kinds[0])
        if node.op == "call_method" and name in ("size", "dim", "numel"):
            if name == "size" and len(args) > 1:
                return ("batch" if args[1] == 0 else "size"), None
            return ("shape" if name == "size" else "size"), None
        if name is None:
            return "rows", f"{_callable(node)} is not known to act on each sample alone"
        if "state" in kinds:  # reported where the state is taken from the neuron
            return "rows", None
        if "neuron" in kinds or "shape" in kinds:
            return "rows", f"{name}() of a neuron's (output, state) pair or of a shape"
        rows = "rows" if "rows" in kinds else "const"
        if name in ("view", "reshape", "expand", "permute", "flatten"):
            return rows, _reshape(name, args[1:], node.kwargs, self.kind)
        if "batch" in kinds:
            return rows, f"{name}() computes with the batch size (T*B when folded)"
        if name in _ELEMENTWISE:
            return rows, None
        if name in _ARG_DIM and len(args) > 1 and isinstance(args[1], fx.Node):
            return rows, None  # max(x, y): elementwise
        if name in _BY_DIM or name in _ARG_DIM:
            position, default = {**_BY_DIM, **_ARG_DIM}[name]
            dim = node.kwargs.get("dim", args[position] if len(args) > position else default)
            if name in ("chunk", "split", "tensor_split", "unbind"):
                rows = "tuple" if rows == "rows" else rows
            return rows, _dim_problem(name, dim)
        return rows, f"{name}() is not known to act on each sample alone"

    def _call_module(self, node: fx.Node) -> tuple[str, str | None]:
        sub = self.module.get_submodule(node.target)
        if isinstance(sub, Neuron):
            return "neuron", None
        if isinstance(sub, Feedback):
            return "rows", "a Feedback loop needs the previous step"
        if not isinstance(sub, _PER_SAMPLE_MODULES):
            return "rows", f"{type(sub).__name__} is not known to act on each sample alone"
        if isinstance(sub, nn.Flatten) and not sub.start_dim >= 1:
            return "rows", f"Flatten(start_dim={sub.start_dim}) may flatten the batch"
        if isinstance(sub, nn.Unflatten) and not sub.dim >= 1:
            return "rows", f"Unflatten(dim={sub.dim}) may split the batch"
        if isinstance(sub, nn.Softmax | nn.LogSoftmax):
            return "rows", _dim_problem(type(sub).__name__, sub.dim)
        return "rows", None

    def _getattr(self, node: fx.Node, kind: str) -> tuple[str, str | None]:
        attr = node.args[1]
        if kind == "rows" and attr == "shape":
            return "shape", None
        if kind == "state" or attr in ("dtype", "device", "ndim", "is_cuda", "requires_grad"):
            return ("state" if kind == "state" else "size"), None
        if kind == "const":
            return "const", None
        return "rows", f".{attr} of a {kind} value is not known to act on each sample alone"

    def _getitem(self, node: fx.Node, kind: str) -> tuple[str, str | None]:
        index = node.args[1]
        if kind == "neuron":
            return ("rows" if index == 0 else "state"), None
        if kind == "shape":
            return ("batch" if index == 0 else "size"), None
        if kind == "tuple":
            return "rows", None
        if kind in ("const", "size", "state"):
            return kind, None
        first = index[0] if isinstance(index, tuple) and index else index
        if first is Ellipsis or first == slice(None):
            return kind, None
        return kind, f"x[{_show(index)}] indexes the batch dimension"


def _dim_problem(name: str, dim: Any) -> str | None:
    dims = dim if isinstance(dim, tuple | list) else (dim,)
    if all(isinstance(d, int) and (d >= 1 or d == -1) for d in dims):
        return None
    return f"{name}(dim={dim!r}) may act across samples (give a dimension >= 1, or -1)"


def _reshape(name: str, sizes: list, kwargs: dict, kind: dict) -> str | None:
    """``view``/``reshape``/``expand``/``permute``/``flatten`` must keep the batch first."""
    if name == "flatten":
        start = kwargs.get("start_dim", sizes[0] if sizes else 0)
        return None if isinstance(start, int) and start >= 1 else f"flatten(start_dim={start})"
    sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], tuple | list) else sizes
    sizes = sizes or list(kwargs.get("shape", kwargs.get("size", kwargs.get("dims", ()))))
    if name == "permute":
        return None if sizes and sizes[0] == 0 else f"permute({_show(sizes)}) moves the batch"
    first = sizes[0] if sizes else None
    batch = isinstance(first, fx.Node) and kind.get(first) == "batch"
    if len(sizes) >= 2 and (batch or first == -1):
        return None
    return f"{name}({_show(sizes)}) must keep the batch first: x.{name}(x.shape[0], ...)"


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, slice):
        parts = ["" if p is None else str(p) for p in (value.start, value.stop, value.step)]
        return ":".join(parts).rstrip(":") or ":"
    return "..." if value is Ellipsis else str(value)


def _callable(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        return f".{target}()"
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__name__', target)}()".lstrip(".")


def _where(node: fx.Node) -> str:
    """The node and the line of ``forward`` it comes from (the stack's first frame)."""
    found = re.match(r'\s*File "([^"]+)", line (\d+)', node.stack_trace or "")
    return node.name + (f" ({Path(found[1]).name}:{found[2]})" if found else "")


# ------------------------------------------------------------------------------- the listing


def explain_layer(layer: nn.Module, after: nn.Module | None, module_plan: Plan | None) -> str:
    """One line: how ``SpikingNet`` runs ``layer`` (``after``: the layer that follows it)."""
    from .net import SpikingNet
    from .steps import has_hooks

    if isinstance(layer, SpikingNet):
        return "a SpikingNet: runs its own layers over [T, B, ...]"
    if isinstance(layer, Neuron):
        how = _kernel(layer)
        if type(after) is nn.Linear and _fuses(layer):
            if has_hooks(layer) or has_hooks(after):  # as SpikingNet.forward decides
                how += "; not fused with the Linear after it: a hook must see each call"
            else:
                how += "; with the Linear after it as one node when a gradient is needed"
        return how
    if module_plan is None:
        how = "stateless: once on all steps as [T*B, ...] (time folded into the batch)"
        if type(layer) is nn.Conv2d:
            how += "; channels-last on the CPU, kept by the BatchNorm, LIF and pooling after it"
        if type(layer) is nn.Conv2d and is_max_pool_2x2(after):
            how += (
                "; with the 2x2 max pooling after it in one native pass where its input is "
                "sparse binary events or spikes (kernels.event_conv_pool)"
            )
        return how
    names = ", ".join(n for n, m in stateful(layer, "") if isinstance(m, Neuron))
    if module_plan.path == "folded":
        why = "; ".join(module_plan.reasons) or "every operation acts on each sample alone"
        return (
            f"folded: forward once on [T*B, ...] ({why}); neurons ({names}) unfold it to "
            "[T, B, ...] and run their own kernels"
        )
    why = "; ".join(module_plan.reasons)
    return f"per-step: forward once per step on [B, ...], neurons ({names}) a step each: {why}"


def _kernel(neuron: Neuron) -> str:
    cls = type(neuron)
    if isinstance(neuron, IF) and neuron.rectify:
        return "step by step (run_steps): the rectified IF's clamp has no fused kernel"
    if isinstance(neuron, LIF) and cls._run is LIF._run:
        return "fused LIF sequence kernel over [T, B, ...]"
    if cls._run is Neuron._run:
        return "step by step (run_steps) over [T, B, ...]"
    return f"{cls.__name__}._run over [T, B, ...]"


def _fuses(neuron: Neuron) -> bool:
    lif = isinstance(neuron, LIF) and not (isinstance(neuron, IF) and neuron.rectify)
    return lif and neuron.output == "spikes" and neuron.reuse_membrane and not neuron.compile

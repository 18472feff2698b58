"""NIR interop between torchspike and its peers (snnTorch 1.0, Norse 1.1), with nir 1.0.8.

Run with the peer venv (see /work/shared/PEERS.md); it takes a few seconds:

    PYTHONPATH=src .venv-peers/bin/python bench/nir_interop.py --out bench/RESULTS_nir.md

Every check runs two implementations on the same random input ``[T=60, B=8, 10]`` and compares
their spikes (or a read-out's membrane). "NIR reference" is an independent float64 NumPy
simulation of the graph, written here from NIR's equations under forward Euler (the
discretization torchspike.nir documents): ``v += dt/tau (v_leak - v + r x)``, ``z = v > v_th``,
``v = v_reset`` where ``z`` in the same step; a CubaLIF updates its current first; an edge that
closes a cycle carries the previous step's output. The libraries run in float32.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import platform
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import nir
import nirtorch
import norse
import norse.torch as nt
import numpy as np
import snntorch
import snntorch as snn
import snntorch.utils
import torch
from norse.torch.utils.export_nir import to_nir as norse_to_nir
from norse.torch.utils.import_nir import from_nir as norse_from_nir
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir
from torch import nn

import torchspike as ts
import torchspike.nir as tn

T, B, N_IN, N_HID, N_OUT = 60, 8, 10, 16, 4
SNN_DT, NORSE_DT = 1e-4, 1e-3  # the dt each peer assumes (snnTorch: hard-coded; Norse: default)
ROWS: list[tuple[str, str, str]] = []


# ------------------------------------------------------------------------ NIR reference


def _params(node) -> dict[str, np.ndarray]:
    skip = ("metadata", "input_type", "output_type")
    return {k: np.asarray(v, dtype=np.float64) for k, v in vars(node).items() if k not in skip}


def _is_neuron(node) -> bool:
    return isinstance(node, nir.LIF | nir.LI | nir.IF | nir.CubaLIF)


def _schedule(graph) -> tuple[list[str], set[tuple[str, str]]]:
    """Nodes in execution order from the Input, and the edges that close cycles (delayed)."""
    successors: dict[str, list[str]] = {}
    for a, b in graph.edges:
        successors.setdefault(a, []).append(b)
    start = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    order, back, state = [], set(), {}

    def visit(name):
        state[name] = "open"
        for nxt in successors.get(name, []):
            if state.get(nxt) == "open":
                back.add((name, nxt))
            elif nxt not in state:
                visit(nxt)
        state[name] = "done"
        order.append(name)

    visit(start)
    return order[::-1], back


def reference(graph, xs: torch.Tensor, dt: float, start: str = "rest") -> dict[str, np.ndarray]:
    """Every node's output over time ``[T, B, ...]`` by NIR's Euler equations (float64).

    At the first step an edge closing a cycle brings its source's output at rest (``"rest"``:
    an Affine fed by neurons gives its bias) or 0 (``"zero"``)."""
    if any(isinstance(n, nir.NIRGraph) for n in graph.nodes.values()):
        raise NotImplementedError("the reference runs flat graphs")
    order, back = _schedule(graph)
    params = {k: _params(n) for k, n in graph.nodes.items() if not isinstance(n, nir.Input)}
    rest = {}
    for a, _ in back:
        fed_by = [graph.nodes[u] for u, v in graph.edges if v == a]
        if not all(_is_neuron(n) for n in fed_by):
            raise NotImplementedError("the reference's cycles start at a neuron's output")
        node = graph.nodes[a]
        rest[a] = params[a]["bias"] if start == "rest" and isinstance(node, nir.Affine) else 0.0
    state: dict[str, dict] = {k: {} for k in order}
    now: dict[str, np.ndarray] = {}
    record: dict[str, list] = {k: [] for k in order}
    for x in xs.double().numpy():
        prev, now = now, {}
        for name in order:
            node, p, s = graph.nodes[name], params.get(name), state[name]
            if isinstance(node, nir.Input):
                now[name] = x
                record[name].append(x)
                continue
            sources = [(a, (a, b) in back) for a, b in graph.edges if b == name]
            h = sum(prev.get(a, rest.get(a)) if delayed else now[a] for a, delayed in sources)
            now[name] = _node_step(node, p, s, h, dt)
            record[name].append(now[name])
    return {k: np.stack(v) for k, v in record.items()}


def _node_step(node, p, s, h, dt):
    if isinstance(node, nir.Affine):
        return h @ p["weight"].T + p["bias"]
    if isinstance(node, nir.Linear):
        return h @ p["weight"].T
    if isinstance(node, nir.Flatten | nir.Output):
        return h.reshape(h.shape[0], -1) if isinstance(node, nir.Flatten) else h
    if isinstance(node, nir.LIF | nir.LI):
        v = s.get("v", np.broadcast_to(p["v_leak"], h.shape))
        v = v + dt / p["tau"] * (p["v_leak"] - v + p["r"] * h)
    elif isinstance(node, nir.IF):
        v = s.get("v", np.zeros(h.shape)) + dt * p["r"] * h
    elif isinstance(node, nir.CubaLIF):
        s["i"] = s.get("i", np.zeros(h.shape))
        s["i"] = s["i"] + dt / p["tau_syn"] * (p["w_in"] * h - s["i"])
        v = s.get("v", np.broadcast_to(p["v_leak"], h.shape))
        v = v + dt / p["tau_mem"] * (p["v_leak"] - v + p["r"] * s["i"])
    else:
        raise NotImplementedError(type(node).__name__)
    if isinstance(node, nir.LI):
        s["v"] = v
        return v
    z = (v > p["v_threshold"]).astype(np.float64)
    s["v"] = np.where(z > 0, p["v_reset"], v)
    return z


def neurons_of(graph, outputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs of the neuron nodes in execution order, then the graph's output."""
    order, _ = _schedule(graph)
    out = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Output))
    return [outputs[k] for k in order if _is_neuron(graph.nodes[k])] + [outputs[out]]


# ------------------------------------------------------------------------- runners


def torchspike_outputs(net: nn.Module, xs: torch.Tensor) -> list[np.ndarray]:
    """A SpikingNet's neuron-layer outputs, then its output (float32, as a user runs it)."""
    with torch.no_grad():
        ys, records = net.trace(xs)
    return [r["out"].numpy() for r in records.values()] + [ys.numpy()]


def torchspike_load(graph, xs, dt=None) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.NIRWarning)
        return torchspike_outputs(tn.load(graph, dt=dt), xs)


def run_stepper(module, xs, reset=None) -> np.ndarray:
    """A nirtorch GraphModule or GraphExecutor: ``out, state = module(x, state)`` per step."""
    if reset is not None:
        reset(module)
    state, out = None, []
    with torch.no_grad():
        for x in xs:
            y, state = module(x, state)
            out.append(y[0] if isinstance(y, tuple) else y)  # snnTorch's IF returns (spk, mem)
    return torch.stack(out).numpy()


def run_snntorch(net: nn.Sequential, xs) -> list[np.ndarray]:
    """snnTorch neurons (init_hidden=True) in a Sequential: each neuron's output over time."""
    snntorch.utils.reset(net)
    outs: dict[int, list] = {}
    with torch.no_grad():
        for x in xs:
            h = x
            for k, layer in enumerate(net):
                h = layer(h)
                if isinstance(layer, snn.SpikingNeuron):
                    outs.setdefault(k, []).append(h)
    return [torch.stack(v).numpy() for v in outs.values()]


def run_norse(net, xs) -> list[np.ndarray]:
    """A Norse SequentialState, layer by layer: each cell's output over time."""
    states: list = [None] * len(net)
    outs: dict[int, list] = {}
    with torch.no_grad():
        for x in xs:
            h = x
            for k, layer in enumerate(net):
                if isinstance(layer, nn.Linear):
                    h = layer(h)
                else:
                    h, states[k] = layer(h, states[k])
                    outs.setdefault(k, []).append(h)
    return [torch.stack(v).numpy() for v in outs.values()]


@contextlib.contextmanager
def quiet():
    """Silence the peers' prints, log messages and deprecation warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def snntorch_import(graph, tmp: Path, xs) -> np.ndarray:
    path = tmp / "for_snntorch.nir"
    nir.write(path, graph)
    with quiet():
        return run_stepper(import_from_nir(nir.read(path)), xs, reset=snntorch.utils.reset)


def norse_import(graph, tmp: Path, xs, dt=NORSE_DT) -> np.ndarray:
    path = tmp / "for_norse.nir"
    nir.write(path, graph)
    with quiet():
        return run_stepper(norse_from_nir(nir.read(path), dt=dt), xs)


# ------------------------------------------------------------------------- reporting


def compare(a, b) -> str:
    """Fraction of differing spikes, or the largest membrane difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return f"shapes differ: {a.shape} vs {b.shape}"
    if set(np.unique(a)) | set(np.unique(b)) <= {0.0, 1.0}:
        diff = float((a != b).mean())
        word = "identical" if diff == 0 else f"{diff:.2%} differ"
        return f"{word} ({int(a.sum())} vs {int(b.sum())} spikes)"
    return f"max abs diff {np.abs(a - b).max():.2e}"


def compare_layers(got: list[np.ndarray], want: list[np.ndarray]) -> str:
    """Per neuron layer, last one being the output (the network output is dropped if doubled)."""
    return "; ".join(compare(a, b) for a, b in zip(got, want, strict=False))


def check(direction: str, what: str, fn: Callable[[], str]) -> None:
    try:
        result = fn()
    except Exception as err:  # noqa: BLE001 - a failing peer is a result to report
        last = traceback.extract_tb(err.__traceback__)[-1]
        message = " ".join(str(err).split())[:110]
        where = f"{Path(last.filename).name}:{last.lineno}"
        result = f"**fails**: `{type(err).__name__}: {message}` ({where})"
    ROWS.append((direction, what, result))
    print(f"[{direction}] {what}: {result}")


# ----------------------------------------------------------------------- networks


def inputs(scale: float = 1.0) -> torch.Tensor:
    return scale * torch.rand(T, B, N_IN, generator=torch.Generator().manual_seed(1))


def linears() -> tuple[nn.Linear, nn.Linear]:
    """The two weight layers every network here uses (the second scaled up to drive spikes)."""
    torch.manual_seed(0)
    first, second = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
    with torch.no_grad():
        second.weight.mul_(4)
    return first, second


def snn_net(kind: str, reset: str) -> nn.Sequential:
    first, second = linears()

    def neuron(n, beta):
        common = dict(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True)
        if kind == "Synaptic":
            return snn.Synaptic(alpha=torch.full((n,), 0.8), reset_mechanism=reset, **common)
        return snn.Leaky(reset_mechanism=reset, **common)

    return nn.Sequential(first, neuron(N_HID, 0.9), second, neuron(N_OUT, 0.8))


def snntorch_export(net: nn.Module, tmp: Path, name: str):
    """snnTorch's export, written to and read back from a file."""
    with quiet():
        graph = export_to_nir(net, torch.randn(1, N_IN), ignore_dims=[0])
    nir.write(tmp / name, graph)
    return nir.read(tmp / name)


def norse_net(cell: str):
    first, second = linears()
    with torch.no_grad():
        second.weight.mul_(10)  # Norse scales every input by dt / tau = 0.1

    def make():
        if cell == "LIFBoxCell":
            return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0)))
        return nt.LIFCell(nt.LIFParameters())

    return nt.SequentialState(first, make(), second, make())


def nir_lif_net(dt: float, tau: tuple[float, float], *, gain_one: bool) -> ts.SpikingNet:
    """Linear -> NIR LIF (per-neuron tau, hard reset to 0) -> Linear -> NIR LIF.

    ``gain_one``: ``r = tau / dt``, so that ``v[t] = (1 - dt/tau) v + x`` (snnTorch's choice);
    else ``r = 1`` (Norse's) with ``tau / dt`` folded into the weights: the same spikes.
    """
    g = torch.Generator().manual_seed(2)
    layers: list[nn.Module] = []
    for linear, tau_mean in zip(linears(), tau, strict=True):
        n = linear.out_features
        tau_n = tau_mean * (0.8 + 0.4 * torch.rand(n, generator=g, dtype=torch.float64))
        r = tau_n / dt if gain_one else torch.ones(n, dtype=torch.float64)
        if not gain_one:
            with torch.no_grad():
                linear.weight.mul_((tau_n / dt).float().unsqueeze(1))
                linear.bias.mul_((tau_n / dt).float())
        layers += [linear, tn.NIRLIF(dt=dt, tau=tau_n, r=r, v_th=1.0)]
    return ts.SpikingNet(layers)


# ------------------------------------------------------------------------- the checks


def snntorch_to_torchspike(tmp: Path, xs) -> None:
    def scalar_beta():
        net = nn.Sequential(nn.Linear(N_IN, N_HID), snn.Leaky(beta=0.9, init_hidden=True))
        snntorch_export(net, tmp, "scalar.nir")
        return "exports"

    check("snnTorch export", "`Leaky(beta=0.9)` (scalar beta, the usual way)", scalar_beta)
    for kind in ("Leaky", "Synaptic"):
        for reset in ("zero", "subtract"):
            net = snn_net(kind, reset)
            graph = snntorch_export(net, tmp, f"{kind}_{reset}.nir")
            name = f"`{kind}(reset_mechanism={reset!r})`, per-neuron beta"
            got = torchspike_load(graph, xs, dt=SNN_DT)[:-1]
            want = neurons_of(graph, reference(graph, xs, SNN_DT))[:-1]
            check(
                "snnTorch -> torchspike",
                f"{name}: vs NIR reference",
                lambda g=got, w=want: compare_layers(g, w),
            )
            own = run_snntorch(net, xs)
            check(
                "snnTorch -> torchspike",
                f"{name}: vs snnTorch itself",
                lambda g=got, o=own: compare_layers(g, o),
            )
            if kind == "Leaky":
                check(
                    "snnTorch -> snnTorch",
                    f"{name}: `import_from_nir` vs NIR reference",
                    lambda g=graph, w=want: compare(snntorch_import(g, tmp, xs), w[-1]),
                )

    rleaky = snn.RLeaky(
        beta=torch.full((N_HID,), 0.9),
        threshold=torch.ones(N_HID),
        linear_features=N_HID,
        reset_mechanism="zero",
        init_hidden=True,
    )
    net = nn.Sequential(linears()[0], rleaky)
    graph = snntorch_export(net, tmp, "rleaky.nir")
    got = {}
    for start in ("rest", "zero"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = tn.load(graph, dt=SNN_DT, delay_init=start)
        with torch.no_grad():
            got[start] = loaded(xs)[0].numpy()
        want = neurons_of(graph, reference(graph, xs, SNN_DT, start))[-1]
        what = f"`RLeaky(reset_mechanism='zero')`, a LIF <-> Affine cycle ({type(loaded).__name__})"
        check(
            "snnTorch -> torchspike",
            f"{what}, delay_init={start!r}: vs NIR reference started the same way",
            lambda got=got[start], want=want: compare(got, want),
        )
    got = got["rest"]
    snntorch.utils.reset(net)
    with torch.no_grad():
        own = torch.stack([net(x) for x in xs]).numpy()
    check("snnTorch -> torchspike", f"{what}: vs snnTorch itself", lambda: compare(got, own))


def norse_to_torchspike(tmp: Path, xs) -> None:
    for cell in ("LIFBoxCell", "LIFCell"):
        net = norse_net(cell)
        with quiet():
            graph = norse_to_nir(net, torch.randn(1, N_IN), dt=NORSE_DT)
        node = next(n for n in graph.nodes.values() if _is_neuron(n))
        fields = ("tau", "tau_syn", "tau_mem", "r", "w_in")
        shown = {k: float(np.asarray(getattr(node, k))) for k in fields if hasattr(node, k)}
        shown = ", ".join(f"{k}={v:.3g}" for k, v in shown.items())
        check(
            "Norse export",
            f"`{cell}` (tau_mem_inv=100, dt=1e-3)",
            lambda s=shown, n=node: f"{type(n).__name__} node with {s}",
        )
        check(
            "Norse export",
            f"`{cell}`: `nir.write`",
            lambda g=graph, c=cell: nir.write(tmp / f"{c}.nir", g) or "writes",
        )
        own = run_norse(net, xs)
        got = torchspike_load(graph, xs, dt=NORSE_DT)[:-1]
        want = neurons_of(graph, reference(graph, xs, NORSE_DT))[:-1]
        check(
            "Norse -> torchspike",
            f"`{cell}` as exported: vs NIR reference",
            lambda g=got, w=want: compare_layers(g, w),
        )
        check(
            "Norse -> torchspike",
            f"`{cell}` as exported: vs Norse itself",
            lambda g=got, o=own: compare_layers(g, o),
        )
        fixed = corrected_norse_graph(graph)
        got = torchspike_load(fixed, xs)[:-1]
        what = f"`{cell}` with the time constants{' and w_in' if cell == 'LIFCell' else ''} fixed"
        check(
            "Norse -> torchspike",
            f"{what}: vs Norse itself",
            lambda g=got, o=own: compare_layers(g, o),
        )


def corrected_norse_graph(graph):
    """The graph Norse meant. It writes ``tau = dt / tau_inv``, ``dt`` times the real time
    constant; a LIFCell's current jumps by its input, which in NIR is ``w_in = tau_syn / dt``."""
    nodes = dict(graph.nodes)
    keep = ("r", "v_leak", "v_threshold", "v_reset")
    for name, node in graph.nodes.items():
        if not _is_neuron(node):
            continue
        p = _params(node)
        if isinstance(node, nir.LIF):
            nodes[name] = nir.LIF(tau=p["tau"] / NORSE_DT, **{k: p[k] for k in keep})
        elif isinstance(node, nir.CubaLIF):
            tau_syn = p["tau_syn"] / NORSE_DT
            nodes[name] = nir.CubaLIF(
                tau_syn=tau_syn,
                tau_mem=p["tau_mem"] / NORSE_DT,
                w_in=tau_syn / NORSE_DT,
                **{k: p[k] for k in keep},
            )
    return nir.NIRGraph(nodes, list(graph.edges), metadata={"dt": NORSE_DT}, type_check=False)


def torchspike_to_snntorch(tmp: Path, xs) -> None:
    d = "torchspike -> snnTorch"
    cases = [
        ("NIR LIF net, r = tau/dt, dt = 1e-4", nir_lif_net(SNN_DT, (1e-3, 5e-4), gain_one=True), 1),
        ("NIR LIF net, r = 1, dt = 1e-4", nir_lif_net(SNN_DT, (1e-3, 5e-4), gain_one=False), 1),
        ("NIR LIF net, r = tau/dt, dt = 1e-3", nir_lif_net(1e-3, (1e-2, 5e-3), gain_one=True), 1),
    ]
    for what, net, scale in cases:
        graph = tn.export(net, dt=net.layers[1].dt)
        want = torchspike_outputs(net, xs * scale)[-1]
        check(
            d,
            f"{what}: vs torchspike",
            lambda g=graph, w=want, s=scale: compare(snntorch_import(g, tmp, xs * s), w),
        )

    first, second = linears()
    native = ts.SpikingNet(first, ts.LIF(0.9), second, ts.LIF(0.8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = tn.export(native, dt=SNN_DT)
    warned = "warns" if any(issubclass(w.category, tn.NIRWarning) for w in caught) else "silent"
    ref = neurons_of(graph, reference(graph, xs, SNN_DT))[-1]
    what = f"torchspike `LIF(0.9)` (reset subtract; export {warned})"
    check(
        d,
        f"{what}: snnTorch vs NIR reference",
        lambda: compare(snntorch_import(graph, tmp, xs), ref),
    )
    want = torchspike_outputs(native, xs)[-1]
    check(
        d,
        f"{what}: snnTorch vs torchspike original",
        lambda: compare(snntorch_import(graph, tmp, xs), want),
    )

    for what, r in (("NIR IF, r = 1/dt, dt = 1e-4", 1 / SNN_DT), ("NIR IF, r = 1, dt = 1", 1.0)):
        dt = SNN_DT if r != 1.0 else 1.0
        net = ts.SpikingNet(linears()[0], tn.NIRLIF(dt=dt, r=r, v_th=1.0))
        graph = tn.export(net, dt=dt)
        want = torchspike_outputs(net, xs)[-1]
        check(
            d,
            f"{what}: vs torchspike",
            lambda g=graph, w=want: compare(snntorch_import(g, tmp, xs), w),
        )
    net = ts.SpikingNet(linears()[0], ts.LI(0.9))
    graph = tn.export(net, dt=SNN_DT)
    check(
        d,
        "LI read-out (`LI(0.9)`)",
        lambda: compare(snntorch_import(graph, tmp, xs), torchspike_outputs(net, xs)[-1]),
    )


def torchspike_to_norse(tmp: Path, xs) -> None:
    d = "torchspike -> Norse"
    cases = [
        ("NIR LIF net, r = tau/dt", nir_lif_net(NORSE_DT, (1e-2, 5e-3), gain_one=True), 1),
        ("NIR LIF net, r = 1", nir_lif_net(NORSE_DT, (1e-2, 5e-3), gain_one=False), 1),
    ]
    for what, net, scale in cases:
        graph = tn.export(net, dt=NORSE_DT)
        want = torchspike_outputs(net, xs * scale)[-1]
        check(
            d,
            f"{what}: vs torchspike",
            lambda g=graph, w=want, s=scale: compare(norse_import(g, tmp, xs * s), w),
        )
    first, second = linears()
    cuba = ts.SpikingNet(
        first,
        ts.CubaLIF(tau_mem=1e-2, tau_syn=5e-3, dt=NORSE_DT, v_th=0.3),
        second,
        ts.CubaLIF(tau_mem=1e-2, tau_syn=5e-3, dt=NORSE_DT, v_th=0.3),
    )
    graph = tn.export(cuba, dt=NORSE_DT)
    want = torchspike_outputs(cuba, xs)[-1]
    check(
        d,
        "torchspike `CubaLIF` net (exact export): vs torchspike",
        lambda: compare(norse_import(graph, tmp, xs), want),
    )
    net = ts.SpikingNet(linears()[0], tn.NIRLIF(dt=NORSE_DT, r=1 / NORSE_DT, v_th=1.0))
    graph = tn.export(net, dt=NORSE_DT)
    want = torchspike_outputs(net, xs)[-1]
    check(d, "NIR IF, r = 1/dt: vs torchspike", lambda: compare(norse_import(graph, tmp, xs), want))
    net = ts.SpikingNet(linears()[0], ts.LI(0.9))
    graph = tn.export(net, dt=NORSE_DT)
    want = torchspike_outputs(net, xs)[-1]
    check(
        d,
        "LI read-out (`LI(0.9)`): vs torchspike",
        lambda: compare(norse_import(graph, tmp, xs), want),
    )
    with torch.no_grad():
        affine = net.layers[0](xs).numpy()
    check(
        d,
        "LI read-out: vs the Affine in front of it",
        lambda: compare(norse_import(graph, tmp, xs), affine),
    )


def nirtorch_and_flatten(xs) -> None:
    net = ts.SpikingNet(linears()[0])
    graph = tn.export(net)

    def defaults():
        with quiet():
            module = nirtorch.nir_to_torch(graph, {})
        with torch.no_grad():
            return compare(module(xs[0])[0].numpy(), net.layers[0](xs[0]).numpy())

    check("nirtorch 2.6", "`nir_to_torch` default Affine map vs the exported Linear", defaults)
    conv = ts.SpikingNet(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, N_OUT))
    graph = tn.export(conv, (1, 4, 4))
    image = torch.rand(B, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    want = conv(image.unsqueeze(0))[0][0].detach().numpy()
    peers = {"snnTorch": import_from_nir, "Norse": lambda g: norse_from_nir(g, dt=NORSE_DT)}
    what = f"Conv2d -> Flatten (NIR start_dim 0) -> Affine, batch of {B}"
    for peer, load in peers.items():

        def run(load=load):
            with quiet(), torch.no_grad():
                out = load(graph)(image)
            return compare((out[0] if isinstance(out, tuple) else out).numpy(), want)

        check(f"torchspike -> {peer}", what, run)
    got = tn.load(graph)(image.unsqueeze(0))[0][0].detach().numpy()
    check("torchspike -> torchspike", what, lambda: compare(got, want))


def braille_in_snntorch() -> None:
    """The NIR paper's Braille graph without bias, trained in snnTorch with reset by subtraction:
    snnTorch 1.0's RSynaptic with the graph's weights against the paper's snnTorch record."""
    data = Path(__file__).resolve().parent.parent / "tests" / "data" / "nir"
    sys.path.insert(0, str(data))
    import braille_input

    xs = torch.tensor(braille_input.read(), dtype=torch.float32).unsqueeze(1)
    graph = nir.read(data / "braille_noDelay_noBias_subtract.nir")
    record = np.load(data / "snntorch_activity_noDelay_noBias_subtract.npy")
    lif, n = graph.nodes["lif1.lif"], graph.nodes["lif1.w_rec"].weight.shape[0]
    alpha, beta = (float(1 - 1e-4 / getattr(lif, k)[0]) for k in ("tau_syn", "tau_mem"))
    cell = snn.RSynaptic(alpha, beta, linear_features=n, reset_mechanism="subtract")
    fc1 = nn.Linear(12, n, bias=False)
    with torch.no_grad():
        cell.recurrent.weight.copy_(torch.from_numpy(graph.nodes["lif1.w_rec"].weight))
        cell.recurrent.bias.zero_()
        fc1.weight.copy_(torch.from_numpy(graph.nodes["fc1"].weight))
        spk, syn, mem, out = torch.zeros(1, n), torch.zeros(1, n), torch.zeros(1, n), []
        for x in xs:
            spk, syn, mem = cell(fc1(x), spk, syn, mem)
            out.append(spk[0].numpy())
    what = "the paper's Braille graph without bias, hidden layer, vs the paper's snnTorch record"
    check(
        "snnTorch 1.0",
        f"`RSynaptic(reset='subtract')` with {what}",
        lambda: compare(np.array(out), record),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.NIRWarning)
        net = tn.load(data / "braille_noDelay_noBias_subtract.nir", dt=1e-4, probe=False)
    with torch.no_grad():
        hidden = net.trace(xs, ["lif1.lif"])[1]["lif1.lif"][:, 0].numpy()
    check(
        "NIR -> torchspike",
        f"NIR's hard reset (as the file says) on {what}",
        lambda: compare(hidden, record),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/RESULTS_nir.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    xs = inputs()
    with tempfile.TemporaryDirectory() as d:
        snntorch_to_torchspike(Path(d), xs)
        norse_to_torchspike(Path(d), xs * 10)  # Norse scales its input by dt / tau = 0.1
        torchspike_to_snntorch(Path(d), xs)
        torchspike_to_norse(Path(d), xs)
        nirtorch_and_flatten(xs)
    braille_in_snntorch()
    versions = ", ".join(
        f"{name} {version}"
        for name, version in (
            ("torch", torch.__version__),
            ("nir", nir.version),
            ("nirtorch", nirtorch.__version__),
            ("snntorch", snntorch.__version__),
            ("norse", norse.__version__),
            ("Python", platform.python_version()),
        )
    )
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in ROWS)
    Path(args.out).write_text(REPORT_HEAD.format(versions=versions, table=table) + GAPS)
    print(f"wrote {args.out}")


REPORT_HEAD = """# NIR interop: torchspike, snnTorch and Norse

Generated by `bench/nir_interop.py` ({versions}); rerun it to refresh the table. Input: uniform
random currents `[T=60, B=8, 10]`. "NIR reference" is the script's own float64 NumPy simulation
of the graph under forward Euler (torchspike.nir's documented discretization); the libraries run
in float32. Spike results list the neuron layers in order, the last being the output layer.

## Results

| direction | network: what is compared | result |
|---|---|---|
{table}
"""

GAPS = """
## Semantic gaps found

torchspike loads every graph above as the NIR reference runs it (identical spikes): where a peer
differs, the peer departs from its own NIR graph. The gaps, with the source lines behind them
(paths under `.venv-peers/lib/python3.11/site-packages/`):

1. **dt is nowhere in the file.** snnTorch hard-codes `dt = 1e-4` on both sides
   (`snntorch/export_nir.py`, `import_nir.py`: `beta = 1 - dt/tau`); Norse takes `dt` as an
   argument (default `1e-3`) and writes nothing. torchspike writes `graph.metadata["dt"]` (and
   `"discretization": "forward-euler"`), reads it back, and asks for `dt=` when a graph has none.
   A torchspike graph exported with another dt loads in snnTorch with other dynamics (row
   "dt = 1e-3").
2. **snnTorch exports resets it does not have.** `Leaky`/`Synaptic` export as NIR nodes with
   `v_reset = 0` (a hard reset in the spike's step) whatever `reset_mechanism` is, and without a
   warning. Only `Leaky(reset_mechanism="zero")` matches NIR (snnTorch zeroes one call late,
   which gives the same spikes). `subtract` differs; `Synaptic` and `RLeaky` with `zero` differ
   too, because they zero the *whole* next step, input included (`synaptic.py` and `rleaky.py`,
   `_base_zero`). snnTorch's own `import_from_nir` then builds zero-reset neurons, so a
   subtract-reset `Leaky` changes behaviour on a snnTorch -> NIR -> snnTorch round trip.
   torchspike's `LIF(reset="zero")` also zeroes the whole next step, and torchspike's export
   says so (a `NIRWarning`, or a `ValueError` with `strict=True`).
3. **snnTorch cannot export the usual scalar `beta`.** A shape-`()` LIF node meets an Affine of
   shape `(n,)` and `nir` 1.0.8's type check fails; only per-neuron `beta`/`threshold` tensors
   (and `ignore_dims=[0]`) export. torchspike broadcasts every parameter per neuron.
4. **snnTorch's importer**: `IF` asserts `r == 1`, and then builds `Leaky(beta=0.9)` with the
   default subtractive reset (`import_nir.py`, the `nir.IF` branch): an IF that leaks, whose
   module returns `(spk, mem)` into the graph. `LI` (and `CubaLI`, `I`) have no mapping at all.
   `LIF` needs one `v_threshold` for the whole layer and folds the input gain `r dt / tau` into
   the threshold with its smallest value only (`np.unique(w_scale)[0]`), wrong for per-neuron
   `tau` with `r = 1`.
5. **Norse writes `tau = dt / tau_mem_inv`** (and `tau_syn = dt / tau_syn_inv`) in
   `norse/torch/utils/export_nir.py`: the time constant times dt. Run by NIR's equations the
   graph is unstable (`dt / tau = 100`), so torchspike warns (`tau < dt: forward Euler
   overshoots`) and reproduces that graph, not Norse's network. With `tau / dt` restored (and
   for LIFCell `w_in = tau_syn / dt`, since Norse's current jumps by the input where it exports
   `w_in = 1`), torchspike reproduces Norse's `LIFBoxCell` and `LIFCell` spike for spike.
6. **Norse graphs cannot be written to a file**: parameters are 0-d torch tensors (not NumPy
   arrays, not per neuron), and `nir.write` refuses scalar datasets with gzip compression. The
   `Input` shape also carries the batch dimension (`[1, 10]`). torchspike loads the in-memory
   graph (tensors converted, 0-d parameters broadcast).
7. **Norse's importer ignores `r`** for `LIF` and `IF` (it logs a warning): `LIFBoxCell` computes
   `v += dt/tau (v_leak - v + x)`, so a graph with `r != 1` (every snnTorch or torchspike LIF,
   where `r = tau/dt` gives an input gain of 1) runs with its input scaled by `1/r`. Norse's `IF`
   adds the input unscaled (`v += x`), i.e. NIR's `IF` only when `r = 1/dt`. `LI` has no mapping
   and is **silently dropped** (the read-out returns the Affine output). `v_reset` is ignored
   (always 0); CubaLIF's synapse gets `v_leak` as well.
8. **Flatten dimensions.** NIR counts dimensions without the batch (`start_dim = 0` is torch's
   `Flatten(1)`), but nirtorch's default map, snnTorch's and Norse's importers pass `start_dim`
   to `torch.nn.Flatten` unchanged, so they flatten the batch too and fail on batches > 1.
9. **nirtorch 2.6's default `Affine` map drops the bias** (`nir_interpreter.py`,
   `_default_map_affine` assigns `module.weight.bias`), leaving PyTorch's random bias in place.
   torchspike maps every node itself.
10. **Recurrence is a convention.** NIR's edges are instantaneous; a discrete simulator must
    delay a cycle by one step. torchspike and this reference feed a cycle the previous step's
    output, as snnTorch's `RLeaky` does. At the first step torchspike's cycle brings what its
    source gives at rest (`delay_init="rest"`: a recurrent `Affine` gives its bias, as in
    snnTorch), or 0 (`delay_init="zero"`, nirtorch's and so Norse's); the paper's Braille graph
    shows the difference (bench/RESULTS_nir_published.md), and so do the `RLeaky` rows above.
11. **The NIR paper's Braille graph without bias** was trained in snnTorch with reset by
    subtraction, and its file says `v_reset = 0` (gap 2's exporter behaviour). Read as the file
    says (torchspike, and Norse exactly alike) the hidden layer fires 103 times where the
    paper's snnTorch record has 118; snnTorch 1.0's own `RSynaptic(reset_mechanism="subtract")`
    with the same weights fires 118 times, with 72 of the 10,240 entries placed differently
    (the paper's notebook used an older snnTorch, commit 40ad136, not tried here).

## What torchspike does about them

- Export: `beta -> tau = dt / (1 - beta)`, `r = 1 / (1 - beta)` (input gain 1), `v_leak = 0`,
  `v_reset = 0`, every parameter broadcast per neuron; `dt` in the metadata. Exact for `LI`,
  `CubaLIF` and `NIRLIF`/`NIRCubaLIF`; `LIF` and `IF` warn (their resets differ from NIR's).
  For snnTorch, export with `dt=1e-4`; for Norse, use `r = 1` neurons (`NIRLIF(r=1)`), or fold
  `r` into the weights.
- Import: NIR's equations exactly under forward Euler, with `dt` from the metadata, the caller,
  or (with a warning) inferred where two or more time constants agree on `dt = tau / r`; every
  node mapped by torchspike itself (nirtorch is not used). The NIR paper's published graphs:
  bench/RESULTS_nir_published.md (`bench/nir_published.py`).
"""


if __name__ == "__main__":
    main()

"""The step ``dt`` of a NIR graph: recorded, given, or inferred; then checked on a probe input.

NIR files (nir 1.0) have no field for the step their exporter assumed; docs/nir.md lists what
each producer assumes. What can be read from the parameters: exporters that keep the input
gain at 1 (snnTorch, torchspike) write ``r = tau / dt`` and ``w_in = tau_syn / dt``. When at
least two different time constants give the same ``tau / r``, that is taken as ``dt``, with a
warning saying so; one time constant alone could mean anything (Norse writes ``r = 1``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..neurons import Neuron
from ._modules import NIRWarning
from ._nodes import array, is_neuron

PROBE_STEPS, PROBE_BATCH, PROBE_RATE = 100, 2, 0.5
_PRODUCERS = (
    "snnTorch: 1e-4, hard-coded, with r = tau/dt; Norse: its to_nir(dt=...) argument, "
    "default 1e-3, with r = 1 (the NIR paper's Norse LIF graph was made at 1e-4); Sinabs: IF "
    "neurons with r = 1 stepped once per time bin, dt = 1; Rockpool: the paper's graphs use "
    "1e-4; torchspike: recorded in graph.metadata['dt']"
)


def resolve(metadata: Any, nodes: dict[str, Any], dt: float | None) -> tuple[float, str]:
    """``(dt, where it came from)``: ``"given"``, ``"metadata"`` or ``"inferred"``."""
    source = "given"
    if dt is None:
        dt, source = (metadata.get("dt") if isinstance(metadata, dict) else None), "metadata"
    if dt is None:
        dt, evidence = infer(nodes)
        if dt is None:
            raise ValueError(
                "this graph records no dt (graph.metadata['dt']) and its parameters do not "
                f"show one{evidence}: pass load(graph, dt=...), the step its exporter assumed "
                f"({_PRODUCERS}; see docs/nir.md)"
            )
        source = "inferred"
        warnings.warn(
            f"this graph records no dt; dt = {dt:g} is inferred from {evidence} (the input "
            "gain 1 convention of snnTorch and torchspike exports); pass dt= to choose another",
            NIRWarning,
            stacklevel=3,
        )
    try:
        dt = float(np.asarray(dt))
    except (TypeError, ValueError):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}") from None
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    return dt, source


def infer(nodes: dict[str, Any]) -> tuple[float | None, str]:
    """``dt = tau / r`` when two or more different time constants agree on it."""
    ratios, taus = [], []
    for node in nodes.values():
        if not is_neuron(node):
            continue
        pairs = [("tau", "r"), ("tau_mem", "r"), ("tau_syn", "w_in")]
        for tau_name, gain_name in pairs:
            if hasattr(node, tau_name) and hasattr(node, gain_name):
                tau = array(getattr(node, tau_name)).astype(np.float64).ravel()
                gain = array(getattr(node, gain_name)).astype(np.float64).ravel()
                if tau.size and gain.size and np.all(gain != 0):
                    try:
                        tau, gain = np.broadcast_arrays(tau, gain)
                    except ValueError:
                        continue  # shapes that disagree: the one-step check names the node
                    ratios.append(tau / gain)
                    taus.append(tau)
    if not ratios:
        return None, ""
    ratio, tau = np.concatenate(ratios), np.concatenate(taus)
    distinct = np.unique(np.round(np.log10(np.abs(tau)), 4)).size
    spread = float(np.ptp(ratio) / np.abs(ratio).max()) if ratio.size else 1.0
    shown = f"tau / r = {ratio.min():.6g}" + (f"..{ratio.max():.6g}" if spread else "")
    if spread > 1e-5 or distinct < 2 or not ratio.min() > 0:
        why = "they disagree" if spread > 1e-5 else "one time constant alone cannot tell"
        return None, f" (with r = tau/dt it would be {shown}, but {why})"
    dt = float(f"{np.median(ratio):.6g}")
    return dt, f"{shown} over {distinct} different time constants"


def probe(net: nn.Module, shape, dt: float, source: str, labels: dict[str, str]) -> None:
    """Warn when, on random 0/1 input, a spiking layer never fires or fires almost always.

    ``labels`` maps the names ``net.trace`` records under to the graph's node names."""
    if shape is None:
        return
    generator = torch.Generator().manual_seed(0)
    size = (PROBE_STEPS, PROBE_BATCH, *shape)
    xs = (torch.rand(size, generator=generator) < PROBE_RATE).float()
    with torch.no_grad():
        _, records = net.trace(xs)
    silent, saturated = [], []
    for name, rec in records.items():
        out = rec["out"] if isinstance(rec, dict) else rec
        module = _neuron_of(net, name)
        if module is None or getattr(module, "v_th", None) is None:
            continue  # LI and the like: no spikes to count
        rate = float(out.mean())
        label = repr(labels.get(name, name))
        if rate == 0:
            silent.append(label)
        elif rate > 0.9:
            saturated.append(f"{label} ({rate:.0%} of steps)")
    if silent or saturated:
        found = "; ".join(
            part
            for part in (
                f"never spike: {', '.join(silent)}" if silent else "",
                f"spike almost every step: {', '.join(saturated)}" if saturated else "",
            )
            if part
        )
        warnings.warn(
            f"with dt = {dt:g} ({source}), on a probe input ({PROBE_STEPS} steps of random 0/1 "
            f"spikes at rate {PROBE_RATE}) these layers {found}. A wrong dt does this; check "
            f"the step the exporter assumed ({_PRODUCERS})",
            NIRWarning,
            stacklevel=3,
        )


def _neuron_of(net: nn.Module, name: str) -> Neuron | None:
    from ._graphnet import NIRGraphNet

    if isinstance(net, NIRGraphNet):
        module = net.module(name)
    else:
        module = net.layers[int(name)] if name.isdigit() else None
    return module if isinstance(module, Neuron) else None

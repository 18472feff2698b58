"""NIR, the Neuromorphic Intermediate Representation: export to and load from other SNN tools.

``export(model) -> nir.NIRGraph`` and ``load(graph_or_path) -> nn.Module``; ``nir`` is optional
(``pip install torchspike[nir]``) and imported only when called.

NIR neurons are ODEs; torchspike reads them with forward Euler over steps of ``dt`` (recorded in
``graph.metadata["dt"]``), so a decay ``beta`` per step is ``tau = dt / (1 - beta)``. NIR resets
are hard and happen in the step of the spike; ``NIRLIF`` and ``NIRCubaLIF`` run exactly these
semantics (see ``_modules``), and ``export`` warns (or with ``strict=True`` refuses) where a
torchspike neuron differs. ``load`` checks a graph before building it and runs graphs with
branches, cycles or subgraphs as a ``NIRGraphNet``. See docs/nir.md for the mapping of every
node, the step each exporter assumes, and the first step of a cycle.
"""

from ._export import DISCRETIZATION, export, export_run
from ._graphnet import NIRGraphNet, NIRGraphState
from ._load import load
from ._modules import (
    NIRLIF,
    NIRCubaLIF,
    NIRCubaLIFState,
    NIRLIFState,
    NIRWarning,
    Scale,
    SumPool2d,
    Threshold,
)

__all__ = [
    "DISCRETIZATION",
    "NIRCubaLIF",
    "NIRCubaLIFState",
    "NIRGraphNet",
    "NIRGraphState",
    "NIRLIF",
    "NIRLIFState",
    "NIRWarning",
    "Scale",
    "SumPool2d",
    "Threshold",
    "export",
    "export_run",
    "load",
]

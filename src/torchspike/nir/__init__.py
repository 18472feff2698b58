"""NIR, the Neuromorphic Intermediate Representation: export to and load from other SNN tools.

``export(model) -> nir.NIRGraph`` and ``load(graph_or_path) -> nn.Module``; ``nir`` and
``nirtorch`` are optional (``pip install torchspike[nir]``) and imported only when called.

NIR neurons are ODEs; torchspike reads them with forward Euler over steps of ``dt`` (recorded in
``graph.metadata["dt"]``), so a decay ``beta`` per step is ``tau = dt / (1 - beta)``. NIR resets
are hard and happen in the step of the spike; ``NIRLIF`` and ``NIRCubaLIF`` run exactly these
semantics (see ``_modules``), and ``export`` warns (or with ``strict=True`` refuses) where a
torchspike neuron differs. See docs/nir.md for the mapping of every node.
"""

from ._export import DISCRETIZATION, export, export_run
from ._load import NIRGraphNet, load
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

"""The fast paths, each pinned to the plain reference by tests: one module per kernel.

``lif_sequence`` (the fused LIF over the whole sequence and its adjoint), ``lif_linear`` (a LIF and
the Linear after it as one node), ``folded_linear`` and ``sparse`` (a Linear over folded time,
dense or on binary spikes), ``conv_pool`` (2x2 max pooling of a channels-last convolution),
``event_conv`` (a convolution of sparse binary events), ``event_conv_pool`` (that convolution and
the 2x2 max pooling after it in one pass), ``native`` (their C loops, built on first use),
``workspace`` (buffers reused from step to step), ``allocator`` (freed memory kept in the process)
and ``compiled`` (the pieces ``torch.compile`` may fuse).
"""

# torchspike.kernels was the module now named compiled: its two names stay reachable here
from .compiled import direct_grad, get

__all__ = ["direct_grad", "get"]

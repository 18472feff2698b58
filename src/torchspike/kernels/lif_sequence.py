"""The fused LIF kernel: the whole sequence in one autograd node, and its adjoint over time.

It runs the recursion of ``neurons.lif_step`` with a hand-written backward over time, saves
only the membrane sequence, and the tests pin it to the step-by-step autograd reference
(:func:`torchspike.run_steps`).

A backward with ``create_graph=True`` runs the same adjoint in differentiable operations
(:func:`lif_adjoint_graph`), so a double backward goes through the kernel. It has no vmap or
forward-mode rule: neurons run their step-by-step reference instead under ``torch.func``
transforms and forward-mode AD (:func:`applies`).
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from ..surrogate import Surrogate
from . import compiled
from .workspace import Workspace, empty

RESETS = ("subtract", "zero", "none")


def _scalar(t: Tensor) -> float | None:
    """A plain float for a one-element tensor that needs no gradient (fast scalar kernels)."""
    if torch.compiler.is_compiling() or t.numel() != 1 or t.requires_grad:
        return None
    return float(t)


def _accumulate(g: Tensor, b: float | None, beta: Tensor, carry: Tensor | None) -> None:
    """``g[t] += dL/dU[t+1] * dU[t+1]/dU[t]`` in place, from the last step back to the first."""
    gs = g.unbind(0)  # views made once, not indexed in the loop
    if carry is not None:
        cs = carry.unbind(0)
        for t in range(len(gs) - 2, -1, -1):
            gs[t].addcmul_(gs[t + 1], cs[t])
    elif b is not None:
        for t in range(len(gs) - 2, -1, -1):
            gs[t].add_(gs[t + 1], alpha=b)
    else:
        for t in range(len(gs) - 2, -1, -1):
            gs[t].addcmul_(gs[t + 1], beta)


def _lif_forward(
    xs: Tensor,
    v0: Tensor,
    beta: Tensor,
    v_th: Tensor,
    reset: str,
    *,
    keep_membrane: bool,
    keep_spikes: bool = True,
    into_input: bool = False,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """The LIF recursion, without autograd: ``(spikes [T, ...], membrane)``.

    The membrane is the whole sequence ``[T, ...]`` with ``keep_membrane``, else only its last
    step ``[...]``, computed in two alternating buffers instead of T (the same operations in the
    same order, so the spikes are identical); likewise the spikes with ``keep_spikes`` (without
    it the caller reads them from the membrane, ``z[t] = U[t] > v_th``, and ignores the first
    output). ``into_input`` writes the membrane sequence over
    ``xs`` (each ``x[t]`` is read once, by the step that overwrites it); ``workspace`` supplies
    the other buffers."""
    shape = torch.broadcast_shapes(xs.shape, v0.shape)
    zs = empty(workspace, shape if keep_spikes else (2, *shape[1:]), xs.dtype, xs.device)
    if into_input:
        vs = xs
    else:
        vs_shape = shape if keep_membrane else (2, *shape[1:])
        vs = empty(workspace, vs_shape, xs.dtype, xs.device)
    th = _scalar(v_th)
    v, z = v0, (v0 > v_th).to(xs.dtype)
    v_steps, z_steps = vs.unbind(0), zs.unbind(0)  # views made once, not indexed in the loop
    for t, x in enumerate(xs.unbind(0)):
        vt = v_steps[t] if keep_membrane else v_steps[t % 2]
        torch.addcmul(x, v, beta, out=vt)  # charge: beta * v + x
        if reset == "subtract":  # the previous step's spike, not decayed
            if th is not None:
                vt.add_(z, alpha=-th)
            else:
                vt.addcmul_(z, v_th, value=-1)
        elif reset == "zero":  # beta * v * (1 - z) + x
            vt.addcmul_(v, z * beta, value=-1)
        z = z_steps[t] if keep_spikes else z_steps[t % 2]
        torch.gt(vt, v_th, out=z)  # fire
        v = vt
    return zs, (vs if keep_membrane else v)


class _LIFSequence(torch.autograd.Function):
    """U[t] = beta U[t-1] + x[t] - reset term; z[t] = H(U[t] - v_th); see ``neurons.lif_step``.

    With ``membrane=False`` the outputs are the spikes and the last membrane only (a copy), so the
    saved membrane sequence is private: backward computes the surrogate gradient in its buffer
    instead of a new one (unless the gradient of beta or v_th needs the membrane afterwards).
    The membrane sequence is always an output too (hidden by ``lif_sequence``; the spent input
    with ``over``), so that a backward with ``create_graph=True`` can express the gradient in
    differentiable operations of it (:func:`lif_adjoint_graph`): a second backward then reaches
    the inputs through this node's own first-order backward.
    """

    @staticmethod
    def forward(ctx, xs, v0, beta, v_th, reset, spike_fn, compile, membrane, over, workspace):
        zs, vs = _lif_forward(
            xs, v0, beta, v_th, reset, keep_membrane=True, into_input=over, workspace=workspace
        )
        ctx.reset, ctx.spike_fn, ctx.compile, ctx.membrane = reset, spike_fn, compile, membrane
        ctx.save_for_backward(vs, zs if reset == "zero" else None, v0, beta, v_th)
        ctx.set_materialize_grads(False)
        ctx.double = False  # set once a backward has run with create_graph=True
        if over:  # the input now holds the membrane: an output of this node, not to be used
            ctx.mark_dirty(xs)
            return zs, vs[-1].clone(), xs
        if membrane:
            return zs, vs
        return zs, vs[-1].clone(), vs

    @staticmethod
    def backward(ctx, g_spikes, g_out, g_seq=None):
        if torch.is_grad_enabled():  # create_graph=True: a backward that can be differentiated
            ctx.double = True
            vs, _, v0, beta, v_th = saved_membrane(ctx)
            g = _spike_term(ctx.spike_fn, vs, v_th, g_spikes)
            g_mem = membrane_grad(g_out, g_seq, ctx.membrane, vs)
            needs = ctx.needs_input_grad[:4]
            grads = lif_adjoint_graph(g, vs, v0, beta, v_th, ctx.reset, g_mem, needs)
            return *grads, None, None, None, None, None, None
        if not ctx.double:
            refuse_spent_input(g_seq)
        vs, zs, v0, beta, v_th = saved_membrane(ctx)
        need_x, need_v0, need_beta, need_th = ctx.needs_input_grad[:4]
        if g_spikes is not None and ctx.compile:  # dL/dz * dz/dU in one fused pass
            g = compiled.get("direct_grad", True)(vs, v_th, g_spikes, ctx.spike_fn)
        elif g_spikes is not None:  # dL/dz * dz/dU, in place in one buffer
            ctx.reused = not (ctx.membrane or need_beta or need_th or ctx.double)
            g = ctx.spike_fn.backward_(vs.sub_(v_th) if ctx.reused else vs - v_th, g_spikes)
        else:
            g = torch.zeros_like(vs)
        g_mem, full = g_out, ctx.membrane
        if g_seq is not None:  # a double backward reached the hidden membrane output
            g_mem, full = membrane_grad(g_out, g_seq, ctx.membrane, vs), True
        grads = lif_adjoint(
            g, vs, zs, v0, beta, v_th, ctx.reset, g_mem, full, ctx.needs_input_grad[:4]
        )
        return *grads, None, None, None, None, None, None


def membrane_grad(
    g_out: Tensor | None, g_seq: Tensor | None, membrane: bool, vs: Tensor
) -> Tensor | None:
    """The gradient of the membrane sequence ``vs`` from that of the membrane output (the
    sequence if ``membrane``, else the last step) and of the hidden sequence ``g_seq``, in
    differentiable operations."""
    if membrane or g_out is None:
        return g_out if g_seq is None else g_seq if g_out is None else g_out + g_seq
    last = torch.cat([torch.zeros_like(vs[:-1]), g_out.unsqueeze(0)])
    return last if g_seq is None else g_seq + last


def _spike_term(spike_fn: Surrogate, vs: Tensor, v_th: Tensor, g_spikes: Tensor | None) -> Tensor:
    """``dL/dz * dz/dU`` in differentiable operations (zeros where no spike gradient came)."""
    if g_spikes is None:
        return torch.zeros_like(vs)
    return spike_fn.derivative(vs - v_th) * g_spikes


def lif_adjoint_graph(
    g: Tensor,
    vs: Tensor,
    v0: Tensor,
    beta: Tensor,
    v_th: Tensor,
    reset: str,
    g_mem: Tensor | None,
    needs: tuple[bool, ...],
) -> tuple[Tensor | None, ...]:
    """:func:`lif_adjoint` in differentiable operations, for a backward with
    ``create_graph=True``: nothing in place, and ``vs`` the node's own membrane output, so that
    the gradient's dependence on the membrane is recorded. The reset ``R[t]`` is a constant, as
    in the forward. ``g_mem`` is the gradient of the whole membrane sequence."""
    need_x, need_v0, need_beta, need_th = needs
    g_th = -g.sum_to_size(v_th.shape) if need_th else None
    if g_mem is not None:
        g = g + g_mem
    with torch.no_grad():
        fired = (vs > v_th).to(vs.dtype)
        reset_in = torch.cat([(v0 > v_th).to(vs.dtype).unsqueeze(0), fired[:-1]])  # R[t]
    keep = (1 - reset_in) if reset == "zero" else None  # the zero reset cuts U[t-1]
    gs = list(g.unbind(0))
    for t in range(len(gs) - 2, -1, -1):  # dU[t+1]/dU[t] = beta (* (1 - R[t+1]))
        gs[t] = gs[t] + gs[t + 1] * (beta if keep is None else beta * keep[t + 1])
    g = torch.stack(gs)
    g_v0 = None
    if need_v0:
        g_v0 = g[0] * beta if keep is None else g[0] * beta * keep[0]
    g_beta = None
    if need_beta:
        v_prev = torch.cat([v0.unsqueeze(0), vs[:-1]])
        g_beta = (g * (v_prev if keep is None else v_prev * keep)).sum_to_size(beta.shape)
    if need_th and reset == "subtract":
        g_th = g_th - (g * reset_in).sum_to_size(v_th.shape)
    return (g if need_x else None), g_v0, g_beta, g_th


def applies(*tensors: Tensor) -> bool:
    """True where the fused kernels may run on ``tensors``: no ``torch.func`` transform is active
    (their Functions have no vmap rule, and their out= loops cannot run on wrapped tensors) and
    none of ``tensors`` carries a forward-mode tangent (no jvp rule); elsewhere a neuron runs
    its step-by-step reference. Under ``torch.compile`` the kernels run as before."""
    if torch.compiler.is_compiling():
        return True
    if torch._C._are_functorch_transforms_active():
        return False
    if fwAD._current_level < 0:  # no dual level entered: no tensor has a tangent (fast check)
        return True
    return all(fwAD.unpack_dual(t).tangent is None for t in tensors)


def _refuse_transforms(name: str, *tensors: Tensor) -> None:
    if not applies(*tensors):
        raise RuntimeError(
            f"{name} cannot run under torch.func transforms or forward-mode AD; the neurons "
            "run their step-by-step reference there (call the LIF module, not the kernel)"
        )


def refuse_spent_input(g_overwritten: Tensor | None) -> None:
    """Backward of a kernel that wrote its membrane over its input: that input, now an output
    of the node, must not have been used afterwards."""
    if g_overwritten is not None:
        raise RuntimeError(
            "a tensor given to a LIF layer with overwrite_input=True was used after the call: "
            "it holds the layer's membrane now; pass overwrite_input=False to keep it"
        )


def saved_membrane(ctx) -> tuple[Tensor, ...]:
    """``ctx.saved_tensors``, with a clear error where a first backward spent the membrane."""
    try:
        return ctx.saved_tensors
    except RuntimeError as e:
        if not getattr(ctx, "reused", False):
            raise
        raise RuntimeError(  # the membrane buffer was reused by an earlier backward
            "backward through a fused LIF layer a second time (retain_graph=True): its "
            "saved membrane holds the first backward's gradient; build the layer with "
            "LIF(..., reuse_membrane=False), or sum the losses and call backward once"
        ) from e


def lif_adjoint(
    g: Tensor,
    vs: Tensor,
    zs: Tensor | None,
    v0: Tensor,
    beta: Tensor,
    v_th: Tensor,
    reset: str,
    g_out: Tensor | None,
    membrane: bool,
    needs: tuple[bool, ...],
) -> tuple[Tensor | None, ...]:
    """The LIF backward over time from ``g = dL/dz[t] * dz[t]/dU[t]`` (the spike term, in place
    in ``g``): the gradients of ``(xs, v0, beta, v_th)``, each ``None`` where ``needs`` says it
    is not wanted. ``g_out`` is the gradient of the membrane output (the sequence if
    ``membrane``, else the last step); ``zs`` the float spikes (zero reset only); ``vs`` the
    membrane, read only for the gradients of beta and v_th."""
    need_x, need_v0, need_beta, need_th = needs
    b = _scalar(beta)
    carry = (1 - zs) * beta if reset == "zero" else None  # dU[t+1]/dU[t]
    g_th = -g.sum_to_size(v_th.shape) if need_th else None
    if g_out is not None and membrane:
        g.add_(g_out)
    elif g_out is not None:  # the gradient of the last membrane only
        g[-1].add_(g_out)
    _accumulate(g, b, beta, carry)
    # g is now dL/dU[t]; map it to the inputs of step t
    reset_in = None
    if reset == "zero" or (need_th and reset == "subtract"):
        fired = zs if zs is not None else (vs > v_th).to(vs.dtype)
        reset_in = torch.cat([(v0 > v_th).to(vs.dtype).unsqueeze(0), fired[:-1]])  # R[t]
    g_x = g if need_x else None
    keep = (1 - reset_in) if reset == "zero" else None  # the zero reset cuts U[t-1]
    g_v0 = None
    if need_v0:
        g_v0 = g[0] * beta if keep is None else g[0] * beta * keep[0]
    g_beta = None
    if need_beta:
        v_prev = torch.cat([v0.unsqueeze(0), vs[:-1]])
        if keep is not None:
            v_prev = v_prev * keep
        g_beta = (g * v_prev).sum_to_size(beta.shape)
    if need_th and reset == "subtract":
        g_th = g_th - (g * reset_in).sum_to_size(v_th.shape)
    return g_x, g_v0, g_beta, g_th


def lif_sequence(
    xs: Tensor,
    v0: Tensor,
    beta: Tensor,
    v_th: Tensor,
    reset: str,
    spike_fn: Surrogate,
    compile: bool = False,
    *,
    membrane: bool = True,
    overwrite_input: bool = False,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """Fused LIF over ``[T, B, ...]``: returns ``(spikes, membrane)``; one autograd node.

    The membrane sequence is ``U[t]`` before each step's own reset (the state to carry on). With
    ``membrane=False`` the second output is only the last step's membrane ``[B, ...]``, and the
    backward saves one ``[T, B, ...]`` buffer; a second backward through the same graph then
    raises. Where no gradient is needed, ``membrane=False`` runs the recursion without autograd in
    two membrane buffers instead of T (the same spikes, bit for bit). ``overwrite_input`` (with
    ``membrane=False``) lets the kernel keep the membrane sequence in ``xs`` itself instead of a
    new buffer, where ``xs`` is a contiguous tensor of the full shape, not a view and not a leaf
    that requires grad; ``xs`` is then spent, and a gradient through it later raises.
    ``workspace`` (:mod:`torchspike.kernels.workspace`) supplies the spike and membrane buffers.
    """
    _refuse_transforms("lif_sequence", xs, v0, beta, v_th)
    if not membrane and not needs_grad(xs, v0, beta, v_th):
        return _lif_forward(xs, v0, beta, v_th, reset, keep_membrane=False, workspace=workspace)
    # refused, not an error, where writing into xs would not be safe or possible
    over = overwrite_input and not (membrane or compile) and can_overwrite(xs, v0)
    out = _LIFSequence.apply(
        xs, v0, beta, v_th, reset, spike_fn, compile, membrane, over, workspace
    )
    return out[0], out[1]


def can_overwrite(xs: Tensor, v0: Tensor) -> bool:
    """True when a kernel may write its membrane sequence over ``xs``: a contiguous tensor of
    the full shape, not a view and not a leaf that requires grad."""
    return (
        not xs._is_view()
        and not (xs.is_leaf and xs.requires_grad)
        and xs.is_contiguous()
        and xs.shape == torch.broadcast_shapes(xs.shape, v0.shape)
    )


def needs_grad(*tensors: Tensor) -> bool:
    """True when autograd would record an op on ``tensors``."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)

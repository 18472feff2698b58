"""The fused LIF kernel against the step-by-step autograd reference."""

import pytest
import torch

import torchspike as ts
from torchspike.kernels.lif_sequence import lif_sequence


def _grads(run, lif, xs, x, v0, w):
    """Spikes of ``run`` on ``xs`` (made from the leaf ``x``) and the gradients of a loss on the
    spikes and the final membrane."""
    spikes, state = run(xs, ts.LIFState(v0))
    loss = (spikes * w).sum() + (state.v**2).sum()
    return spikes, torch.autograd.grad(loss, [x, v0, *lif.parameters()])


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("spike_fn", ["atan", "fast_sigmoid", "triangle"])
@pytest.mark.parametrize("static", [False, True])
def test_fused_equals_reference(reset, learn, per_neuron, spike_fn, static):
    """Spikes and every gradient, also for a static input (one image repeated, a stride-0
    view as ``encode.direct`` gives it)."""
    torch.manual_seed(1)
    beta = torch.rand(5) * 0.5 + 0.5 if per_neuron else 0.9
    v_th = torch.rand(5) + 0.5 if per_neuron else 1.0
    lif = ts.LIF(
        beta, v_th, reset=reset, spike_fn=spike_fn, learn_beta=learn, learn_v_th=learn
    ).double()
    shape = (3, 5) if static else (30, 3, 5)
    x = (torch.randn(shape, dtype=torch.float64) * 0.8 + 0.3).requires_grad_()
    xs = x.expand(30, 3, 5) if static else x
    v0 = (torch.rand(3, 5, dtype=torch.float64) * 1.5).requires_grad_()
    w = torch.randn(30, 3, 5, dtype=torch.float64)
    fused, g_fused = _grads(lif._run, lif, xs, x, v0, w)
    ref, g_ref = _grads(lambda x, s: ts.run_steps(lif.step, x, s), lif, xs, x, v0, w)
    assert 0.05 < fused.mean() < 0.95  # the test exercises both spikes and resets
    assert torch.equal(fused, ref)
    for a, b in zip(g_fused, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_membrane_output_equals_reference(reset):
    torch.manual_seed(2)
    lif = ts.LIF(0.9, reset=reset, output="membrane", learn_beta=True).double()
    xs = (torch.randn(20, 3, 4, dtype=torch.float64) + 0.4).requires_grad_()
    w = torch.randn(20, 3, 4, dtype=torch.float64)
    results = []
    for run in (lif._run, lambda x, s: ts.run_steps(lif.step, x, s)):
        v, _ = run(xs, lif.initial_state(xs[0]))
        results.append((v, torch.autograd.grad((v * w).sum(), [xs, lif.beta])))
    (v_fused, g_fused), (v_ref, g_ref) = results
    torch.testing.assert_close(v_fused, v_ref)
    for a, b in zip(g_fused, g_ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_inference_path_equals_training_path(reset, per_neuron):
    """Under no_grad a spiking LIF keeps two membrane buffers: the same spikes, bit for bit,
    and the same final state as the fused training kernel and the step-by-step reference."""
    torch.manual_seed(3)
    beta = torch.rand(5) * 0.5 + 0.5 if per_neuron else 0.9
    v_th = torch.rand(5) + 0.5 if per_neuron else 1.0
    lif = ts.LIF(beta, v_th, reset=reset, learn_beta=True)
    xs = torch.randn(40, 3, 5) * 0.8 + 0.3
    v0 = torch.rand(3, 5) * 1.5
    train, train_state = lif._run(xs, ts.LIFState(v0))  # learn_beta: the autograd path
    assert train.grad_fn is not None
    ref, ref_state = ts.run_steps(lif.step, xs, ts.LIFState(v0))
    with torch.no_grad():
        infer, infer_state = lif._run(xs, ts.LIFState(v0))
    assert infer.grad_fn is None  # the lean path, not the autograd node
    assert 0.05 < infer.mean() < 0.95
    assert torch.equal(infer, train) and torch.equal(infer, ref)
    assert torch.equal(infer_state.v, train_state.v)
    torch.testing.assert_close(infer_state.v, ref_state.v)


def test_second_backward_through_private_membrane_raises():
    lif = ts.LIF(0.9)
    xs = (torch.randn(10, 2, 3) + 0.5).requires_grad_()
    spikes, _ = lif(xs)
    loss = spikes.sum()
    (first,) = torch.autograd.grad(loss, xs, retain_graph=True)
    with pytest.raises(RuntimeError, match="second time"):
        torch.autograd.grad(loss, xs)
    spikes, _ = lif(xs)  # a fresh graph gives the same gradient again
    (again,) = torch.autograd.grad(spikes.sum(), xs)
    assert torch.equal(first, again)
    v0 = torch.rand(2, 3, requires_grad=True) * 1.0  # another in-place error keeps its message
    spikes, _ = lif(xs, ts.LIFState(v0))
    v0.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        spikes.sum().backward()
    keep = ts.LIF(0.9, reuse_membrane=False)  # keeps its membrane: twice is fine
    loss = keep(xs)[0].sum()
    grads = [torch.autograd.grad(loss, xs, retain_graph=True)[0] for _ in range(2)]
    assert torch.equal(grads[0], first) and torch.equal(grads[1], first)


def test_fused_gradcheck():
    lif = ts.LIF(beta=0.8, learn_beta=True).double()
    xs = (torch.rand(6, 2, 3, dtype=torch.float64) * 0.9).requires_grad_()
    v0 = torch.rand(2, 3, dtype=torch.float64).requires_grad_()
    # the spikes are piecewise constant; check the smooth part through the final membrane
    assert torch.autograd.gradcheck(
        lambda x, v: lif._run(x, ts.LIFState(v))[1].v, (xs, v0), eps=1e-6, atol=1e-8
    )


# dynamo itself instantiates autograd.Function subclasses while tracing (a torch-internal warning)
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_torch_compile_runs_lif_forward_and_backward():
    lif = ts.LIF(beta=0.9)
    compiled = torch.compile(lambda xs: lif(xs)[0].sum(), backend="aot_eager", fullgraph=False)
    xs = (torch.rand(5, 2, 3) * 2).requires_grad_()
    out = compiled(xs)
    out.backward()
    ref_xs = xs.detach().clone().requires_grad_()
    lif(ref_xs)[0].sum().backward()
    assert out.item() == lif(xs.detach())[0].sum().item()
    torch.testing.assert_close(xs.grad, ref_xs.grad)


# torch.compile's own imports and tracing raise these torch-internal deprecation warnings
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method. is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_compiled_kernels_equal_reference(reset):
    torch.manual_seed(3)
    lif = ts.LIF(0.9, reset=reset, compile=True, learn_beta=True)
    xs = (torch.randn(12, 4, 6) * 0.8 + 0.4).requires_grad_()
    w = torch.randn(12, 4, 6)
    results = []
    for run in (lif._run, lambda x, s: ts.run_steps(lif.step, x, s)):
        z, state = run(xs, lif.initial_state(xs[0]))
        loss = (z * w).sum() + state.v.square().sum()
        results.append((z, *torch.autograd.grad(loss, [xs, lif.beta])))
    (z_c, *g_c), (z_r, *g_r) = results
    assert torch.equal(z_c, z_r) and 0 < z_c.mean() < 1
    for a, b in zip(g_c, g_r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_overwrite_input_keeps_membrane_in_input():
    """``overwrite_input`` computes the same spikes and gradients, with the membrane sequence
    written over the (spent) input instead of a new buffer."""
    torch.manual_seed(4)
    x = (torch.randn(30, 3, 5) * 0.8 + 0.3).requires_grad_()
    v0 = (torch.rand(3, 5) * 1.5).requires_grad_()
    w = torch.randn(30, 3, 5)
    args = (torch.tensor(0.9), torch.tensor(1.0), "subtract", ts.surrogate.atan())
    results = []
    for overwrite in (False, True):
        xs = x * 1.0  # a temporary, as a layer's output
        spikes, v = lif_sequence(xs, v0, *args, membrane=False, overwrite_input=overwrite)
        loss = (spikes * w).sum() + (v**2).sum()
        results.append((spikes, v, xs.detach().clone(), *torch.autograd.grad(loss, [x, v0])))
    (s0, v_0, xs0, *g0), (s1, v_1, xs1, *g1) = results
    assert torch.equal(s0, s1) and torch.equal(v_0, v_1) and 0.05 < s0.mean() < 0.95
    for a, b in zip(g0, g1, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    _, membrane = lif_sequence(x.detach(), v0.detach(), *args)
    assert torch.equal(xs0, x.detach()) and torch.equal(xs1, membrane)


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    """``LIF(compile=True)`` where compiling fails (no C++ compiler, ...) warns once and runs
    the eager kernel: the same spikes and gradients as without compile."""
    from torchspike.kernels import compiled as kernels

    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no compiler here")

        return run

    monkeypatch.setattr(kernels, "_compiled", {})
    monkeypatch.setattr(kernels, "_failed", set())
    monkeypatch.setattr(torch, "compile", broken)
    torch.manual_seed(7)
    xs = (torch.randn(12, 4, 6) * 0.8 + 0.4).requires_grad_()
    results = []
    for compiled in (True, False):
        lif = ts.LIF(0.9, compile=compiled)
        if compiled:
            with pytest.warns(RuntimeWarning, match="running eagerly"):
                z, _ = lif(xs)
                (g,) = torch.autograd.grad(z.sum(), xs)
        else:
            z, _ = lif(xs)
            (g,) = torch.autograd.grad(z.sum(), xs)
        results.append((z, g))
    assert kernels._failed == {"direct_grad"}
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_a_lif_started_without_state_keeps_no_full_tensor_of_zeros():
    """The fused kernel saves its start state for the backward: a fresh start is one zero
    expanded to [B, N], not a [B, N] buffer, with the same spikes and gradients."""
    lif = ts.LIF(0.9)
    xs = (torch.rand(5, 4, 6) * 1.5).requires_grad_()
    sizes = []

    def pack(t):
        sizes.append((tuple(t.shape), t.untyped_storage().nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = lif(xs)
    assert ((4, 6), 4) in sizes and not any(size == (4, 6) and n > 4 for size, n in sizes)
    ref, _ = lif(xs, ts.neurons.LIFState(torch.zeros(4, 6)))
    assert torch.equal(out, ref) and 0 < float(out.detach().mean()) < 1
    gy = torch.randn(out.shape)
    assert torch.equal(torch.autograd.grad(out, xs, gy)[0], torch.autograd.grad(ref, xs, gy)[0])

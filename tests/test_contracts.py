"""PyTorch's contracts through spiking layers: double backward, ``torch.func`` (grad, vmap, jvp),
forward-mode AD and autocast, each against an oracle (plain autograd on the fused path, the
network written out in plain autograd, the step-by-step reference, finite differences, or the
reverse-mode product)."""

from contextlib import nullcontext

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

import torchspike as ts
from torchspike import surrogate
from torchspike.neurons import step_by_step

D = torch.float64

# torch.func.jvp's first call imports torch's jvp decompositions, which script functions
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def _net(learn: bool = False) -> ts.SpikingNet:
    torch.manual_seed(0)
    net = ts.SpikingNet(
        nn.Linear(4, 6),
        ts.LIF(beta=0.9, v_th=0.5, learn_beta=learn, learn_v_th=learn),
        nn.Linear(6, 3),
        ts.LIF(beta=0.8, output="membrane"),
    )
    return net.to(D)


def _xs(*shape: int) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(*shape, dtype=D) * 1.5


def _grad_fns(t: torch.Tensor) -> set[str]:
    """The names of the autograd nodes behind ``t``."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        todo += [n for n, _ in node.next_functions]
    return {type(n).__name__ for n in seen}


# --- the surrogate spike function ----------------------------------------------------------------

X = torch.linspace(-2, 2, 41, dtype=D)


@pytest.mark.parametrize("name", surrogate.NAMES)
def test_surrogate_jvp_is_the_surrogate_derivative(name):
    """Forward mode gives ``derivative(x) * t``, the same slope as backward."""
    fn, t = surrogate.get(name), torch.linspace(3, -1, len(X), dtype=D)
    out, tangent = torch.func.jvp(fn, (X,), (t,))
    assert torch.equal(out, (X > 0).to(D))
    torch.testing.assert_close(tangent, fn.derivative(X) * t)
    with fwAD.dual_level():
        dual = fn(fwAD.make_dual(X, t))
        torch.testing.assert_close(fwAD.unpack_dual(dual).tangent, fn.derivative(X) * t)
    x = X.clone().requires_grad_()
    fn(x).backward(t)
    torch.testing.assert_close(x.grad, tangent)


@pytest.mark.parametrize("name", surrogate.NAMES)
def test_surrogate_vmap_and_grad_equal_plain_calls(name):
    fn, xs = surrogate.get(name), X.view(1, -1).repeat(3, 1) * torch.tensor([[1.0], [0.5], [-2]])
    torch.testing.assert_close(torch.func.vmap(fn)(xs), torch.stack([fn(x) for x in xs]))
    per_row = torch.func.vmap(torch.func.grad(lambda x: fn(x).sum()))(xs)
    torch.testing.assert_close(per_row, fn.derivative(xs))


@pytest.mark.parametrize("name", ["atan", "fast_sigmoid", "sigmoid"])
def test_surrogate_double_backward_equals_finite_differences(name):
    """``create_graph=True`` then backward: the derivative of ``derivative(x)``."""
    fn, h = surrogate.get(name), 1e-6
    x = (X + 0.013).clone().requires_grad_()  # off the kink of fast_sigmoid at 0
    (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    g.sum().backward()
    xd = x.detach()
    want = (fn.derivative(xd + h) - fn.derivative(xd - h)) / (2 * h)
    torch.testing.assert_close(x.grad, want, rtol=1e-5, atol=1e-7)


class _Gaussian(surrogate.Surrogate):
    """A user's surrogate, as the module docstring shows one."""

    def derivative(self, x):
        return torch.exp(-0.5 * (x / 0.5) ** 2) / (0.5 * (2 * torch.pi) ** 0.5)


def test_a_custom_surrogate_keeps_the_contracts_too():
    fn, t, h = _Gaussian(), torch.linspace(1, 2, len(X), dtype=D), 1e-6
    torch.testing.assert_close(torch.func.jvp(fn, (X,), (t,))[1], fn.derivative(X) * t)
    torch.testing.assert_close(torch.func.vmap(fn)(X.view(-1, 1)), fn(X).view(-1, 1))
    lif, xs = ts.LIF(0.9, spike_fn=fn).to(D), _xs(5, 2, 3)
    got = torch.func.grad(lambda x: lif(x)[0].sum())(xs)
    x = xs.clone().requires_grad_()
    lif(x)[0].sum().backward()
    torch.testing.assert_close(got, x.grad)
    x = X.clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    g.sum().backward()
    want = (fn.derivative(X + h) - fn.derivative(X - h)) / (2 * h)
    torch.testing.assert_close(x.grad, want, rtol=1e-5, atol=1e-7)


# --- torch.func and forward mode through a network with LIF layers ---------------------------


def test_func_grad_equals_plain_autograd_on_the_fused_path():
    """``torch.func.grad`` (neurons step by step) == ordinary backward (fused kernels)."""
    net, xs = _net(learn=True), _xs(7, 2, 4)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, x):
        out, _ = torch.func.functional_call(net, p, (x,))
        return (out * torch.arange(1.0, 4.0, dtype=D)).sum()

    got_p, got_x = torch.func.grad(loss, argnums=(0, 1))(params, xs)
    x = xs.clone().requires_grad_()
    out, _ = net(x)
    assert "_LIFLinearBackward" in _grad_fns(out)  # the fused path ran
    (out * torch.arange(1.0, 4.0, dtype=D)).sum().backward()
    torch.testing.assert_close(got_x, x.grad)
    for name, p in net.named_parameters():
        torch.testing.assert_close(got_p[name], p.grad, msg=name)


def test_vmap_over_an_ensemble_dimension_equals_a_loop():
    net, xs = _net(), _xs(3, 7, 2, 4)
    got = torch.func.vmap(lambda x: net(x)[0])(xs)
    want = torch.stack([net(x)[0] for x in xs])
    torch.testing.assert_close(got, want)
    assert (got != 0).any()


def test_vmap_of_grad_gives_per_sample_gradients():
    net, xs = _net(), _xs(7, 3, 4)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, x):  # one sample: [T, N] -> [T, 1, N]
        return torch.func.functional_call(net, p, (x.unsqueeze(1),))[0].pow(2).sum()

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 1))(params, xs)
    for b in range(xs.shape[1]):
        net.zero_grad()
        net(xs[:, b : b + 1])[0].pow(2).sum().backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(per_sample[name][b], p.grad, msg=f"{name} sample {b}")


def test_jvp_is_the_transpose_of_the_backward():
    """``<J t, u> == <t, J^T u>``: forward mode against reverse mode on the fused path."""
    net, xs = _net(), _xs(7, 2, 4)
    torch.manual_seed(2)
    t, u = torch.randn_like(xs), torch.randn(7, 2, 3, dtype=D)
    out, jt = torch.func.jvp(lambda x: net(x)[0], (xs,), (t,))
    x = xs.clone().requires_grad_()
    ref, _ = net(x)
    assert "_LIFLinearBackward" in _grad_fns(ref)
    (vjp,) = torch.autograd.grad(ref, x, u)
    torch.testing.assert_close(out, ref.detach())
    torch.testing.assert_close((jt * u).sum(), (t * vjp).sum())
    with fwAD.dual_level():  # forward mode without torch.func: dual tensors
        dual, _ = net(fwAD.make_dual(xs, t))
        torch.testing.assert_close(fwAD.unpack_dual(dual).tangent, jt)


def test_jvp_equals_the_plain_autograd_network():
    """Forward mode through SpikingNet == forward mode through the network written out."""
    net, xs = _net(learn=True), _xs(7, 2, 4)
    params = dict(net.named_parameters())
    torch.manual_seed(9)
    t = torch.randn_like(xs)
    got = torch.func.jvp(lambda x: net(x)[0], (xs,), (t,))
    want = torch.func.jvp(lambda x: _plain_net(params, x), (xs,), (t,))
    torch.testing.assert_close(got, want)
    assert got[1].abs().max() > 0


@pytest.mark.parametrize(
    "neuron",
    [
        lambda: ts.LIF(beta=0.9, v_th=0.5, reset="zero"),
        lambda: ts.IF(v_th=0.7, rectify=True),
        lambda: ts.ALIF(0.9, 0.5, rho=0.8),
        lambda: ts.CubaLIF(v_th=0.2),
    ],
    ids=["lif-zero", "if-rectify", "alif", "cuba"],
)
def test_each_neuron_under_jacfwd_equals_jacrev(neuron):
    layer, xs = neuron().to(D), _xs(6, 2, 3)
    fwd = torch.func.jacfwd(lambda x: layer(x)[0])(xs)
    rev = torch.func.jacrev(lambda x: layer(x)[0])(xs)
    torch.testing.assert_close(fwd, rev)
    x = xs.clone().requires_grad_()
    layer(x)[0].sum().backward()
    torch.testing.assert_close(rev.sum(dim=(0, 1, 2)), x.grad)


# --- double backward --------------------------------------------------------------------------


def _plain_net(params, xs):
    """``_net()`` written out as plain autograd: F.linear and the LIF recursion step by step."""
    w1, b1, beta1, th1, w2, b2 = (params[k] for k in _PARAMS)
    spike = surrogate.atan()
    v1 = v2 = None
    out = []
    for x in xs.unbind(0):
        h = torch.nn.functional.linear(x, w1, b1)
        v1 = h if v1 is None else beta1 * v1 + h - th1 * (v1 > th1).to(D)
        z = spike(v1 - th1)
        y = torch.nn.functional.linear(z, w2, b2)
        v2 = y if v2 is None else _BETA2 * v2 + y - (v2 > 1.0).to(D)
        out.append(v2)
    return torch.stack(out)


_BETA2 = torch.tensor(0.8).to(D)  # the output LIF's buffer: float32 0.8, widened
_PARAMS = ("layers.0.weight", "layers.0.bias", "layers.1.beta", "layers.1.v_th")
_PARAMS += ("layers.2.weight", "layers.2.bias")


def _penalty_grads(run, params, xs):
    """The gradients of ``|dL/dx|^2`` (a gradient penalty: create_graph, then backward) with
    respect to ``x`` and the parameters, for ``L = sum(out^2)``."""
    x = xs.clone().requires_grad_()
    (g,) = torch.autograd.grad(run(x).pow(2).sum(), x, create_graph=True)
    return torch.autograd.grad(g.pow(2).sum(), [x, *params.values()])


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "step-by-step"])
def test_double_backward_equals_plain_autograd(fused):
    """A gradient penalty through SpikingNet (the fused LIF+Linear and LIF kernels, or the
    neurons step by step) == the same network written as plain autograd operations."""
    net, xs = _net(learn=True), _xs(7, 2, 4)
    params = dict(net.named_parameters())
    assert tuple(params) == _PARAMS
    kernels = {"_LIFLinearBackward", "_LIFSequenceBackward"}

    def run(x):
        with nullcontext() if fused else step_by_step():
            out, _ = net(x)
        assert (kernels <= _grad_fns(out)) == fused
        return out

    got = _penalty_grads(run, params, xs)
    want = _penalty_grads(lambda x: _plain_net(params, x), params, xs)
    for name, g, w in zip(("x", *_PARAMS), got, want, strict=True):
        torch.testing.assert_close(g, w, msg=name)
    assert got[0].abs().max() > 0 and got[1].abs().max() > 0


def _lif_penalty(lif, xs, v0, linear, overwrite):
    """``|dL/d(x, v0, params)|^2`` differentiated again, for one LIF layer called directly
    (with the Linear after it fused when ``linear`` is given)."""
    x, v = xs.clone().requires_grad_(), v0.clone().requires_grad_()
    inputs = [x, v, *lif.parameters(), *(linear.parameters() if linear else [])]
    h = x * 1.0  # a temporary the kernel may overwrite
    state = ts.LIFState(v)
    fused = None
    if linear is not None:  # None under step_by_step: the two layers one by one
        fused = lif.forward_into_linear(h, state, linear, overwrite_input=overwrite)
    if fused is not None:
        out, _ = fused
    else:
        out, _ = lif(h, state, overwrite_input=overwrite)
        out = linear(out) if linear is not None else out
    loss = (out * torch.linspace(-1, 2, out.shape[-1], dtype=D)).pow(2).sum()
    grads = torch.autograd.grad(loss, inputs, create_graph=True, allow_unused=True)
    penalty = sum(g.pow(2).sum() for g in grads if g is not None)
    second = torch.autograd.grad(penalty, inputs, allow_unused=True)
    return out, [
        torch.zeros_like(i) if g is None else g for i, g in zip(inputs, second, strict=True)
    ]


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize(
    "kind",
    ["spikes", "spikes-overwrite", "membrane", "keep-membrane", "linear", "linear-overwrite"],
)
def test_double_backward_through_each_fused_kernel_equals_step_by_step(reset, kind):
    """Every way the fused kernels run (spikes with the membrane reused or kept, membrane
    output, the Linear fused after, the input overwritten) against the step-by-step reference
    (lif_step under plain autograd), for the gradients of x, the initial state, beta and v_th
    (learned) and the Linear's parameters."""
    torch.manual_seed(11)
    lif = ts.LIF(
        beta=0.85,
        v_th=0.6,
        reset=reset,
        learn_beta=True,
        learn_v_th=True,
        output="membrane" if kind == "membrane" else "spikes",
        reuse_membrane=kind != "keep-membrane",
    ).to(D)
    linear = nn.Linear(5, 3).to(D) if kind.startswith("linear") else None
    xs, v0 = _xs(8, 3, 5), torch.rand(3, 5, dtype=D)
    overwrite = kind.endswith("overwrite")
    out, got = _lif_penalty(lif, xs, v0, linear, overwrite)
    fused = "_LIFLinearBackward" if linear else "_LIFSequenceBackward"
    assert fused in _grad_fns(out)
    with step_by_step():
        ref_out, want = _lif_penalty(lif, xs, v0, linear, False)
    assert fused not in _grad_fns(ref_out)
    torch.testing.assert_close(out, ref_out)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(g, w, msg=f"input {i}")
    assert got[0].abs().max() > 0


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("membrane", [False, True], ids=["spikes", "membrane"])
def test_fused_lif_passes_torch_gradgradcheck(reset, membrane):
    """torch's own check of a double backward (finite differences of the first-order gradient,
    in x, the initial state, beta, v_th and the incoming gradient) on the fused kernel: valid
    for one layer, whose surrogate gradient is the gradient of a smooth function."""
    from torchspike.kernels.lif_sequence import lif_sequence

    xs, v0 = _xs(6, 2, 3).requires_grad_(), torch.rand(2, 3, dtype=D).requires_grad_()
    beta = torch.tensor(0.8, dtype=D, requires_grad=True)
    v_th = torch.tensor(0.6, dtype=D, requires_grad=True)

    def run(x, v, b, th):  # x * 1 is a temporary the kernel may reuse
        out = lif_sequence(x * 1, v, b, th, reset, surrogate.atan(), membrane=membrane)
        return out[1] if membrane else out[0]

    assert torch.autograd.gradgradcheck(run, (xs, v0, beta, v_th))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_double_backward_equals_finite_differences_of_the_gradient(reset):
    """Where the surrogate gradient is the gradient of a smooth function (one layer, a loss
    linear in its spikes; the reset is detached), its Hessian-vector product from a double
    backward through the fused kernel equals central differences of its first-order gradient."""
    torch.manual_seed(8)
    linear, lif = nn.Linear(4, 6).to(D), ts.LIF(beta=0.9, v_th=0.5, reset=reset).to(D)
    xs, t, u = _xs(9, 3, 4), torch.randn(9, 3, 4, dtype=D), torch.randn(9, 3, 6, dtype=D)

    def grad_at(x, create_graph=False):
        x = x.clone().requires_grad_()
        z, _ = lif(linear(x))
        return x, torch.autograd.grad((z * u).sum(), x, create_graph=create_graph)[0]

    x, g = grad_at(xs, create_graph=True)  # through the fused kernel
    assert "_LIFSequenceBackward" in _grad_fns(lif(linear(xs))[0].requires_grad_())
    (hvp,) = torch.autograd.grad(g, x, t)
    eps = 1e-6
    fd = (grad_at(xs + eps * t)[1] - grad_at(xs - eps * t)[1]) / (2 * eps)
    torch.testing.assert_close(hvp, fd, rtol=1e-5, atol=1e-7)
    assert hvp.abs().max() > 1e-3


def test_func_grad_of_grad_equals_double_backward():
    net, xs = _net(), _xs(7, 2, 4)
    torch.manual_seed(4)
    t = torch.randn_like(xs)
    x = xs.clone().requires_grad_()
    out, _ = net(x)  # the fused kernels
    (g,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
    (hvp,) = torch.autograd.grad(g, x, t)

    def g_dot_t(x):  # the neurons step by step, under torch.func
        return (torch.func.grad(lambda y: net(y)[0].pow(2).sum())(x) * t).sum()

    torch.testing.assert_close(torch.func.grad(g_dot_t)(xs), hvp)


def test_fused_kernels_run_in_ordinary_training_only():
    """The fast paths are taken without a transform; step_by_step and transforms leave them."""
    net, xs = _net(), _xs(7, 2, 4)
    x = xs.clone().requires_grad_()
    names = _grad_fns(net(x)[0])
    assert "_LIFLinearBackward" in names and "_LIFSequenceBackward" in names
    lif = ts.LIF(0.9)
    assert "_LIFSequenceBackward" in _grad_fns(lif(x)[0])
    with step_by_step():
        names = _grad_fns(net(x)[0]) | _grad_fns(lif(x)[0])
    assert not names & {"_LIFLinearBackward", "_LIFSequenceBackward"}
    assert "_HeavisideBackward" in names


def test_kernels_called_directly_under_a_transform_raise_clearly():
    from torchspike.kernels.lif_sequence import lif_sequence

    one = torch.tensor(1.0, dtype=D)
    with pytest.raises(RuntimeError, match="lif_sequence cannot run under torch.func"):
        torch.func.vmap(
            lambda x: lif_sequence(
                x, torch.zeros(3, dtype=D), one, one, "subtract", surrogate.atan()
            )
        )(_xs(2, 5, 3))


# --- autocast ---------------------------------------------------------------------------------


def _exact_net() -> ts.SpikingNet:
    """Weights that bfloat16 holds exactly (multiples of 1/8 in [-1, 1]), so that a Linear on
    0/1 inputs gives the same sums in bfloat16 and float32."""
    net = ts.SpikingNet(
        nn.Linear(20, 32),
        ts.LIF(beta=0.95, v_th=1.0),
        nn.Linear(32, 16),
        ts.LIF(beta=0.9, v_th=0.5),
        nn.Linear(16, 4),
        ts.LIF(beta=0.9, v_th=0.5),
    )
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-8, 9, p.shape, generator=gen) / 8)
    return net


def _spike_input() -> torch.Tensor:
    gen = torch.Generator().manual_seed(6)
    return (torch.rand(40, 8, 20, generator=gen) < 0.3).float()


def test_autocast_keeps_neuron_state_in_float32():
    """Under bfloat16 autocast a neuron runs in float32 (like a normalisation layer): the
    spikes equal float32 spikes where the Linear sums are exact in bfloat16."""
    net, xs = _exact_net(), _spike_input()
    want, want_state = net(xs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, state = net(xs)
        with step_by_step():
            ref, _ = net(xs)
        traced, records = net.trace(xs)  # step by step, recording
    assert got.dtype == torch.float32 and all(s.v.dtype == torch.float32 for s in state)
    assert torch.equal(traced, got) and records["3"]["v"].dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    for s, w in zip(state, want_state, strict=True):
        torch.testing.assert_close(s.v, w.v, rtol=0, atol=0)
    assert torch.equal(ref, got)  # the spikes: fused == step by step
    assert got.sum() > 0
    assert (want_state[1].v > 0.5).any() and (want_state[0].v > 1.0).any()  # spikes happen


@pytest.mark.parametrize(
    "neuron",
    [
        lambda: ts.IF(v_th=0.5, rectify=True),
        lambda: ts.ALIF(0.9, 0.5, rho=0.8),
        lambda: ts.CubaLIF(v_th=0.05),
        lambda: ts.RecurrentLIF(6, 0.9, 0.5),
        lambda: ts.LI(0.9),
    ],
    ids=["if-rectify", "alif", "cuba", "recurrent", "li"],
)
def test_autocast_runs_every_neuron_in_float32(neuron):
    torch.manual_seed(10)
    layer, xs = neuron(), (torch.rand(20, 3, 6) * 0.6).to(torch.bfloat16)
    want, want_state = layer(xs.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, state = layer(xs)
    assert got.dtype == torch.float32 and all(s.dtype == torch.float32 for s in state)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    for s, w in zip(state, want_state, strict=True):
        torch.testing.assert_close(s, w, rtol=0, atol=0)


@pytest.mark.parametrize("train", [True, False], ids=["train", "inference"])
def test_autocast_lif_equals_float32_lif_on_the_same_input(train):
    """A bfloat16 input under autocast gives the float32 layer's outputs and gradients, on the
    fused path and step by step."""
    torch.manual_seed(7)
    xs = (torch.rand(30, 4, 50) * 0.6).to(torch.bfloat16).requires_grad_(train)
    lif = ts.LIF(beta=0.95, v_th=1.0)
    x32 = xs.detach().float().requires_grad_(train)
    want, want_state = lif(x32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, state = lif(xs)
        with step_by_step():
            ref, _ = lif(xs)
    assert got.dtype == state.v.dtype == torch.float32
    assert torch.equal(got, want) and torch.equal(ref, want) and torch.equal(state.v, want_state.v)
    assert want.sum() > 0
    if train:
        g = torch.linspace(-1, 1, 50)
        (g_got,) = torch.autograd.grad((got * g).sum(), xs)
        (g_ref,) = torch.autograd.grad((ref * g).sum(), xs)
        (g_want,) = torch.autograd.grad((want * g).sum(), x32)
        assert g_got.dtype == torch.bfloat16
        torch.testing.assert_close(g_got, g_want.to(torch.bfloat16), rtol=0, atol=0)
        torch.testing.assert_close(g_ref, g_got, rtol=0, atol=0)

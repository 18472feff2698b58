"""A module with neurons inside its own forward, run over time by SpikingNet: against the layer
list, hand-written step loops and step-by-step autograd; state scoped to the call; clear errors."""

import threading

import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike.models import SEWBlock, sew_resnet
from torchspike.neurons import Feedback, LIFState, lif_step
from torchspike.steps import current_scope, fold_time


class TutorialSNN(nn.Module):
    """The spikingtorch tutorial's module, written with torchspike neurons."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, stride=2)
        self.lif1 = ts.LIF(0.9)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2)
        self.lif2 = ts.LIF(0.8, reset="zero")
        self.fc = nn.Linear(8 * 5 * 5, 10)
        self.lif3 = ts.LIF(0.9)
        with torch.no_grad():  # loud enough that every layer spikes
            for layer in (self.conv1, self.conv2, self.fc):
                layer.weight.mul_(3).add_(0.05)

    def forward(self, x):
        x, _ = self.lif1(self.conv1(x))
        x, _ = self.lif2(self.conv2(x))
        x, _ = self.lif3(self.fc(torch.flatten(x, 1)))
        return x


def _step(neuron, x, v):
    """One step of ``neuron``'s maths written out (``lif_step``), from membrane ``v``."""
    v = torch.zeros_like(x) if v is None else v
    z, state = lif_step(
        x,
        LIFState(v),
        beta=float(neuron.beta),
        v_th=float(neuron.v_th),
        reset=neuron.reset,
        spike_fn=neuron.spike_fn,
    )
    return z, state.v


def _grads(net, xs, ys=None):
    net.zero_grad()
    ys = net(xs)[0] if ys is None else ys
    (ys * torch.linspace(-1, 1, ys.shape[-1])).sum().backward()
    return [p.grad.clone() for p in net.parameters()]


def _close(a, b):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def _images(steps=8, batch=5, seed=0):
    torch.manual_seed(seed)
    return torch.rand(steps, batch, 1, 28, 28) * 1.5


def test_tutorial_module_wrapped_whole_equals_the_layer_list():
    torch.manual_seed(0)
    m = TutorialSNN()
    whole = ts.SpikingNet(m)
    listed = ts.SpikingNet(m.conv1, m.lif1, m.conv2, m.lif2, nn.Flatten(), m.fc, m.lif3)
    assert whole.explain().split()[2] == "folded:"
    xs = _images()
    ys, state = whole(xs)
    ys_ref, state_ref = listed(xs)
    assert ys.shape == (8, 5, 10) and ys.sum() > 0
    torch.testing.assert_close(ys, ys_ref)
    assert whole.neuron_names() == ["0.lif1", "0.lif2", "0.lif3"]
    for s, r in zip(state, state_ref, strict=True):
        torch.testing.assert_close(s.v, r.v)
    _, records = whole.trace(xs)  # membranes at every step (the module run step by step)
    _, records_ref = listed.trace(xs)
    for name, ref in zip(["0.lif1", "0.lif2", "0.lif3"], ["1", "3", "6"], strict=True):
        torch.testing.assert_close(records[name]["v"], records_ref[ref]["v"])
        torch.testing.assert_close(records[name]["out"], records_ref[ref]["out"])
    _close(_grads(whole, xs), _grads(listed, xs))
    assert sum(g.abs().sum() for g in _grads(whole, xs)) > 0


def test_folded_and_per_step_paths_agree_with_step_by_step_autograd():
    torch.manual_seed(1)
    m = TutorialSNN()
    xs = _images(steps=6, batch=3, seed=1)
    folded, step = ts.SpikingNet(m), ts.SpikingNet(m, path="per-step")
    assert "per-step" in step.explain()

    def by_hand(xs):  # the module's maths, one step at a time, plain autograd
        v1 = v2 = v3 = None
        out = []
        for x in xs.unbind(0):
            z1, v1 = _step(m.lif1, m.conv1(x), v1)
            z2, v2 = _step(m.lif2, m.conv2(z1), v2)
            z3, v3 = _step(m.lif3, m.fc(z2.flatten(1)), v3)
            out.append(z3)
        return torch.stack(out)

    ref = by_hand(xs)
    torch.testing.assert_close(folded(xs)[0], ref)
    torch.testing.assert_close(step(xs)[0], ref)
    want = _grads(m, xs, by_hand(xs))
    _close(_grads(folded, xs), want)
    _close(_grads(step, xs), want)


def _hand_residual(block: SEWBlock, xs: torch.Tensor) -> torch.Tensor:
    """SEW ADD block written out: z = LIF(BN(conv(LIF(BN(conv(x)))))) + x, step by step."""
    v1 = v2 = None
    out = []
    for x in xs.unbind(0):
        z, v1 = _step(block.lif1, block.bn1(block.conv1(x)), v1)
        z, v2 = _step(block.lif2, block.bn2(block.conv2(z)), v2)
        out.append(z + x)
    return torch.stack(out)


def test_residual_add_block_equals_a_hand_written_step_loop_with_gradients():
    torch.manual_seed(2)
    block = SEWBlock(4, beta=0.9).eval()  # running statistics: the same on either path
    for bn in (block.bn1, block.bn2):
        bn.running_var.uniform_(0.5, 1.5)
        bn.running_mean.uniform_(-0.2, 0.2)
    xs = (torch.rand(7, 3, 4, 6, 6) < 0.4).float() * 1.5
    net = ts.SpikingNet(block)
    assert "folded" in net.explain()
    ys, state = net(xs)
    ref = _hand_residual(block, xs)
    torch.testing.assert_close(ys, ref)
    assert ys.max() == 2.5  # spikes added to the input: the ADD connection
    _close(_grads(net, xs), _grads(block, xs, _hand_residual(block, xs)))
    xs_grad = xs.clone().requires_grad_()
    (g,) = torch.autograd.grad(net(xs_grad)[0].sum(), xs_grad)
    (g_ref,) = torch.autograd.grad(_hand_residual(block, xs_grad).sum(), xs_grad)
    torch.testing.assert_close(g, g_ref)


def test_a_new_batch_size_between_calls_and_explicit_continuation():
    torch.manual_seed(3)
    for path in ("folded", "per-step"):
        net = ts.SpikingNet(TutorialSNN(), path=path)
        a = _images(steps=6, batch=4, seed=3)
        b = _images(steps=6, batch=2, seed=4)
        ya, _ = net(a)
        yb, state = net(b)  # nothing kept from the call with 4 samples
        assert yb.shape == (6, 2, 10) and state[0].v.shape == (2, 4, 12, 12)
        torch.testing.assert_close(net(a)[0], ya)
        first, state = net(a[:2])
        second, _ = net(a[2:], state)
        torch.testing.assert_close(torch.cat([first, second]), ya)
        assert current_scope() is None  # the scope lived for the call only


def test_threads_do_not_share_state():
    torch.manual_seed(5)
    net = ts.SpikingNet(TutorialSNN(), path="per-step")  # many neuron calls per run
    inputs = [_images(steps=5, batch=n, seed=n) for n in (1, 2, 3, 4)]
    with torch.no_grad():
        want = [net(xs)[0] for xs in inputs]
        got = [None] * len(inputs)

        def run(i):
            for _ in range(3):
                got[i] = net(inputs[i])[0]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


class Gated(nn.Module):
    """Data-dependent control flow: a branch on the input's values at each step."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.lif = ts.LIF(0.9)

    def forward(self, x):
        h = self.fc(x)
        if x.sum() > 3:
            h = h * 2
        return self.lif(h)[0]


def test_data_dependent_control_flow_runs_step_by_step():
    torch.manual_seed(6)
    m = Gated()
    net = ts.SpikingNet(m)
    assert "per-step" in net.explain() and "cannot trace" in net.explain()
    xs = torch.rand(9, 2, 3) * 2
    v, out = None, []
    for x in xs:
        z, v = _step(m.lif, m.fc(x) * (2 if x.sum() > 3 else 1), v)
        out.append(z)
    torch.testing.assert_close(net(xs)[0], torch.stack(out))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 5)
        self.rec = nn.Linear(5, 5, bias=False)
        self.lif = ts.LIF(0.9)
        self.loop = Feedback(5)

    def forward(self, x):
        z, _ = self.lif(self.fc(x) + self.rec(self.loop.read()))
        self.loop.write(z)
        return z


def test_feedback_loop_equals_a_recurrent_step_loop():
    torch.manual_seed(7)
    m = Recurrent()
    nn.init.uniform_(m.rec.weight, -1, 1)
    net = ts.SpikingNet(m)
    assert "Feedback needs the previous step" in net.explain()
    xs = torch.rand(10, 2, 3) * 2
    v, z, out = None, torch.zeros(2, 5), []
    for x in xs:
        z, v = _step(m.lif, m.fc(x) + m.rec(z), v)
        out.append(z)
    ys, state = net(xs)
    torch.testing.assert_close(ys, torch.stack(out))
    assert net.neuron_names() == ["0.lif", "0.loop"]
    torch.testing.assert_close(state[1], out[-1])
    first, state = net(xs[:4])
    second, _ = net(xs[4:], state)
    torch.testing.assert_close(torch.cat([first, second]), ys)


class Hidden(nn.Module):
    """A neuron kept in a plain list: not a submodule, so the layer looks stateless."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.neurons = [ts.LIF(0.9)]

    def forward(self, x):
        return self.neurons[0](self.fc(x))[0]


def test_a_neuron_that_would_see_folded_time_raises():
    xs = torch.rand(6, 2, 3)
    with pytest.raises(ValueError, match=r"would take T\*B as time.*Register the neuron"):
        ts.SpikingNet(Hidden())(xs)
    with pytest.raises(ValueError, match=r"folded into the batch"):
        fold_time(TutorialSNN(), _images(steps=2, batch=2))


class MixesRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.lif = ts.LIF(0.9)

    def forward(self, x):
        h = self.fc(x)
        return self.lif(torch.cat([h, h]))[0]  # dimension 0: samples (and folded steps)


def test_operations_across_rows_are_never_folded_and_a_forced_fold_raises():
    net = ts.SpikingNet(MixesRows())
    assert "per-step" in net.explain() and "cat(dim=0)" in net.explain()
    with pytest.raises(ValueError, match=r"got \(4, 4\).*B = 2"):
        net(torch.rand(5, 2, 3))  # per step, the neuron sees 2B rows: refused too
    with pytest.raises(ValueError, match=r"T\*B = 5\*2 = 10 rows.*path='per-step'"):
        ts.SpikingNet(MixesRows(), path="folded")(torch.rand(5, 2, 3))


def test_misuse_inside_a_module_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = ts.LIF(0.9)

        def forward(self, x):
            return self.lif(self.lif(x)[0])[0]

    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = ts.LIF(0.9)

        def forward(self, x):
            return self.lif(x, ts.LIFState(torch.zeros_like(x)))[0]

    xs = torch.rand(4, 2, 3)
    with pytest.raises(ValueError, match="called twice in one time step"):
        ts.SpikingNet(Twice())(xs)
    with pytest.raises(ValueError, match="keeps every neuron's state itself"):
        ts.SpikingNet(WithState())(xs)
    net = ts.SpikingNet(TutorialSNN())
    with pytest.raises(ValueError, match="state must have 3 entries"):
        net(_images(steps=2, batch=1), (None,))
    with pytest.raises(ValueError, match="works in the forward of a module run by SpikingNet"):
        Feedback(3).read()


def test_sew_resnet_runs_trains_and_lists_its_paths():
    torch.manual_seed(8)
    net = sew_resnet((2, 12, 12), [4, 8], 1, 3, beta=0.9)
    listing = net.explain()
    assert listing.count("folded: forward once") == 2
    xs = (torch.rand(5, 3, 2, 12, 12) < 0.3).float()
    ys, state = net(xs)
    assert ys.shape == (5, 3, 3) and len(state) == len(net.neuron_names()) == 7
    ts.loss.ce_count(ys, torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="connect must be one of"):
        SEWBlock(4, beta=0.9, connect="or")


def test_nir_export_of_a_residual_model_is_refused_clearly():
    pytest.importorskip("nir")
    from torchspike.nir import export

    net = sew_resnet((2, 8, 8), [4], 1, 3, beta=0.9)
    with pytest.raises(ValueError, match=r"layer 3 \(SEWBlock\) runs neurons inside its own"):
        export(net, (2, 8, 8))


# torch-internal warnings of torch.compile: tracing the fused kernel, and resuming after the
# module layer (run eagerly: its scope is a context variable) with its non-leaf output
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_torch_compile_runs_a_module_network_as_eager():
    torch.manual_seed(9)
    block = SEWBlock(2, beta=0.9).eval()
    net = ts.SpikingNet(nn.Conv2d(1, 2, 3, padding=1), ts.LIF(0.9), block, nn.Flatten())
    xs = torch.rand(4, 2, 1, 5, 5) * 2
    compiled = torch.compile(net, backend="eager")
    torch.testing.assert_close(compiled(xs)[0], net(xs)[0])


def test_explain_says_a_hook_stops_the_lif_linear_fusion():
    net = ts.SpikingNet(nn.Linear(4, 8), ts.LIF(0.9), nn.Linear(8, 3))
    assert "with the Linear after it as one node" in net.explain().splitlines()[1]
    handle = net.layers[2].register_forward_hook(lambda *args: None)
    assert "not fused with the Linear after it" in net.explain().splitlines()[1]
    handle.remove()
    net.layers[1].register_forward_pre_hook(lambda *args: None)
    assert "not fused with the Linear after it" in net.explain().splitlines()[1]

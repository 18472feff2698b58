"""Workspace: a buffer is handed out again only when nothing refers to it any more."""

import copy
import pickle

import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike.kernels.workspace import Workspace

MiB = 1 << 20


def ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def test_a_free_buffer_is_reused_and_a_held_one_is_not():
    ws = Workspace()
    a = ws.empty((256, 1024), torch.float32, "cpu")  # 1 MiB
    assert a.shape == (256, 1024) and a.is_contiguous() and not a._is_view()
    first = ptr(a)
    b = ws.empty((256, 1024), torch.float32, "cpu")
    second = ptr(b)
    assert second != first  # a is still held
    del a
    c = ws.empty((1024, 256), torch.float32, "cpu")  # same bytes, other shape
    assert ptr(c) == first
    del b, c
    d = ws.empty((MiB,), torch.uint8, "cpu")  # same bytes, other dtype
    assert ptr(d) in {first, second}
    assert ws.nbytes() == 2 * MiB


@pytest.mark.parametrize("holder", ["view", "storage", "saved", "numpy"])
def test_any_reference_keeps_a_buffer_taken(holder):
    ws = Workspace()
    t = ws.empty((MiB // 4,), torch.float32, "cpu")
    first = ptr(t)
    if holder == "view":
        keep = t[10:]
    elif holder == "storage":
        keep = t.untyped_storage()
    elif holder == "numpy":
        keep = t.numpy()
    else:  # saved for backward by autograd
        w = torch.ones(MiB // 4, requires_grad=True)
        keep = (w * t).sum()
    del t
    assert ptr(ws.empty((MiB // 4,), torch.float32, "cpu")) != first
    del keep
    assert ptr(ws.empty((MiB // 4,), torch.float32, "cpu")) == first


def test_small_blocks_and_caps_are_plain_allocations():
    ws = Workspace(per_size=2, sizes=2)
    small = ws.empty((10,), torch.float32, "cpu")
    assert ws.nbytes() == 0 and small.numel() == 10
    held = [ws.empty((MiB,), torch.uint8, "cpu") for _ in range(3)]
    assert ws.nbytes() == 2 * MiB  # the third is not kept
    ws.empty((2 * MiB,), torch.uint8, "cpu")
    ws.empty((3 * MiB,), torch.uint8, "cpu")  # a third size: the oldest size is dropped
    assert sorted(ws._pool) == [2 * MiB, 3 * MiB]
    assert all(t.numel() == MiB for t in held)  # dropped buffers stay valid with their tensors
    ws.clear()
    assert ws.nbytes() == 0


def test_copies_start_empty_and_bad_settings_are_named():
    ws = Workspace()
    keep = ws.empty((MiB,), torch.uint8, "cpu")
    assert ws.nbytes() == MiB and keep.numel() == MiB
    assert copy.deepcopy(ws).nbytes() == 0
    assert pickle.loads(pickle.dumps(ws)).nbytes() == 0
    with pytest.raises(ValueError, match="per_size must be a positive integer, got 0"):
        Workspace(per_size=0)
    with pytest.raises(ValueError, match="min_bytes"):
        Workspace(min_bytes=-1)


def _net(workspace: bool, compact: bool) -> ts.SpikingNet:
    torch.manual_seed(3)
    return ts.SpikingNet(
        nn.Linear(300, 500),
        ts.LIF(0.9),
        nn.Linear(500, 500),
        ts.LIF(0.9),
        nn.Linear(500, 4),
        ts.LIF(0.9, output="membrane"),
        compact_spikes=compact,
        workspace=workspace,
    )


@pytest.mark.parametrize("compact", [False, True])
def test_spiking_net_with_a_workspace_trains_exactly_like_without(compact):
    """Three Adam steps on sparse input spikes (the sparse first layer) and a hidden layer: the
    same losses and weights bit for bit, with the buffers really reused."""
    xs = (torch.rand(20, 32, 300, generator=torch.Generator().manual_seed(0)) < 0.05).float()
    y = torch.arange(32) % 4
    runs = []
    for workspace in (False, True):
        net = _net(workspace, compact)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        losses, pointers = [], []
        for _ in range(3):
            v, _ = net(xs)
            loss = ts.loss.ce_membrane_sum(v, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if workspace:
                pointers.append({s.data_ptr() for ss in net.workspace._pool.values() for s in ss})
        runs.append((losses, [p.detach().clone() for p in net.parameters()]))
        if workspace:
            assert pointers[0] and pointers[0] == pointers[1] == pointers[2]
    (l0, p0), (l1, p1) = runs
    assert l0 == l1
    for a, b in zip(p0, p1, strict=True):
        assert torch.equal(a, b)


def test_outputs_kept_by_the_caller_are_never_overwritten():
    """Outputs held across calls (and a graph kept for a second backward) stay intact."""
    # spikes out in 1 MiB+ blocks; a membrane kept apart from the gradient, for a second backward
    net = ts.SpikingNet(nn.Linear(300, 1000), ts.LIF(0.9, reuse_membrane=False))
    xs = [torch.rand(10, 32, 300) for _ in range(3)]
    with torch.no_grad():
        kept = [net(x)[0] for x in xs]
        again = [net(x)[0] for x in xs]
    for a, b in zip(kept, again, strict=True):
        assert torch.equal(a, b) and ptr(a) != ptr(b)
    x = xs[0].requires_grad_()
    out, _ = net(x)
    (g1,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
    net(xs[1])  # another step in between: the first graph's buffers are still taken
    (g2,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(g1, g2)


def test_shared_storages_are_not_reused():
    """A buffer moved to shared memory (sent to another process) is never handed out again."""
    ws = Workspace()
    t = ws.empty((MiB,), torch.uint8, "cpu")
    t.share_memory_()  # the storage's memory moves (into a shared segment)
    shared = ptr(t)
    del t
    assert ptr(ws.empty((MiB,), torch.uint8, "cpu")) != shared


def _plain_net(workspace: bool) -> ts.SpikingNet:
    torch.manual_seed(4)
    layers = (nn.Linear(6, 300), ts.LI(0.9), nn.Linear(300, 3), ts.LI(0.8))
    return ts.SpikingNet(*layers, workspace=workspace)


def test_double_backward_and_torch_func_work_as_without_a_workspace():
    """create_graph=True (a gradient penalty) and torch.func.grad through a network of Linear
    and LI layers give what the plain layers give."""
    from torch.func import functional_call, grad

    xs = torch.rand(40, 32, 6)
    results = []
    for workspace in (False, True):
        net = _plain_net(workspace)
        x = xs.clone().requires_grad_()
        out, _ = net(x)
        (gx,) = torch.autograd.grad((out**2).sum(), x, create_graph=True)
        (gx**2).sum().backward()
        params = {k: v.detach() for k, v in net.named_parameters()}
        g = grad(lambda p, net=net: functional_call(net, p, (xs,))[0].sum())(params)
        results.append([gx, *(p.grad for p in net.parameters()), *g.values()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def test_empty_batch_trains():
    net = _net(True, False)
    v, _ = net(torch.rand(5, 0, 300))
    v.sum().backward()
    assert v.shape == (5, 0, 4)

"""The same code on a GPU: every result on CUDA equals the CPU's. Skipped without a GPU."""

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

import torchspike as ts
from torchspike import eventprop as ep
from torchspike.app import cli
from torchspike.kernels import sparse
from torchspike.stdp import DiehlCook, DiehlCookParams, spike_events

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPU = torch.device("cuda")


def _on(device, *tensors):
    return [t.detach().to(device).requires_grad_(t.requires_grad) for t in tensors]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_lif_on_gpu_equals_cpu(reset):
    torch.manual_seed(0)
    xs = (torch.randn(30, 4, 16, dtype=torch.float64) + 0.3).requires_grad_()
    w = torch.randn(30, 4, 16, dtype=torch.float64)
    results = []
    for device in ("cpu", GPU):
        lif = ts.LIF(0.9, reset=reset, learn_beta=True).double().to(device)
        (x,) = _on(device, xs)
        spikes, state = lif(x)
        loss = (spikes * w.to(device)).sum() + (state.v**2).sum()
        results.append([spikes, *torch.autograd.grad(loss, [x, lif.beta])])
        with torch.no_grad():  # the two-buffer inference path
            results[-1].append(lif(x)[0])
    for cpu, gpu in zip(*results, strict=True):
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_spiking_net_fused_lif_linear_on_gpu_equals_cpu(reset):
    """SpikingNet's fused LIF + Linear node (and its workspace, CPU only) on both devices."""
    torch.manual_seed(0)
    xs = torch.rand(20, 4, 12, dtype=torch.float64) * 1.5
    y = torch.tensor([0, 1, 2, 1])
    results = []
    for device in ("cpu", GPU):
        torch.manual_seed(1)
        net = (
            ts.SpikingNet(nn.Linear(12, 30), ts.LIF(0.9, reset=reset), nn.Linear(30, 3), ts.LI(0.9))
            .double()
            .to(device)
        )
        v, _ = net(xs.to(device))
        ts.loss.ce_membrane_sum(v, y.to(device)).backward()
        results.append([v, *(p.grad for p in net.parameters())])
    for cpu, gpu in zip(*results, strict=True):
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=1e-12)


def test_sparse_linear_on_gpu_equals_dense():
    torch.manual_seed(0)
    x = (torch.rand(200, 50, device=GPU) < 0.03).float()
    w = torch.randn(512, 50, device=GPU, requires_grad=True)
    b = torch.randn(512, device=GPU, requires_grad=True)
    gy = torch.randn(200, 512, device=GPU)
    y = sparse.maybe_sparse_linear(x, w, b)
    assert y is not None
    g_sparse = torch.autograd.grad(y, [w, b], gy)
    y_dense = nn.functional.linear(x, w, b)
    g_dense = torch.autograd.grad(y_dense, [w, b], gy)
    torch.testing.assert_close(y, y_dense)
    for got, want in zip(g_sparse, g_dense, strict=True):
        torch.testing.assert_close(got, want)


def test_spiking_net_training_step_on_gpu_equals_cpu():
    torch.manual_seed(0)
    net = ts.SpikingNet(nn.Linear(20, 64), ts.LIF(0.9), nn.Linear(64, 3), ts.LI(0.9))
    xs = ts.encode.direct(torch.rand(8, 20), 12)
    y = torch.randint(0, 3, (8,))
    grads = []
    for device in ("cpu", GPU):
        net.zero_grad()
        model = net.to(device)
        loss = ts.loss.ce_membrane_sum(model(xs.to(device))[0], y.to(device))
        loss.backward()
        grads.append([loss.detach().cpu(), *(p.grad.cpu() for p in model.parameters())])
    for cpu, gpu in zip(*grads, strict=True):
        torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_eventprop_layer_on_gpu_equals_cpu():
    torch.manual_seed(0)
    times = torch.rand(3, 8, dtype=torch.float64) * 20e-3
    layer = ep.LIFLayer(8, 5, init_mean=1.5, init_std=1.0).double()
    outs = []
    for device in ("cpu", GPU):
        model = layer.to(device)
        spikes = ep.from_times(times.to(device), steps=30, dt=1e-3)
        out = model(spikes)
        (grad,) = torch.autograd.grad(out.times.sum(), model.weight)
        outs.append((out.times.detach().cpu(), out.unit.cpu(), grad.cpu()))
    assert len(outs[0][0]) > 3
    for cpu, gpu in zip(*outs, strict=True):
        torch.testing.assert_close(gpu, cpu)


def test_diehl_cook_presentation_on_gpu_equals_cpu():
    params = replace(DiehlCookParams(), t_present=50.0, norm=200.0)
    pre = torch.rand(params.steps, 3, 20, generator=torch.Generator().manual_seed(4)) < 0.1
    results = []
    for device in ("cpu", GPU):
        net = DiehlCook(20, 5, params, generator=torch.Generator().manual_seed(0)).double()
        net = net.to(device)
        events = spike_events(pre.double().to(device))
        counts = net.present(events, 3, learn=True)
        results.append((counts.cpu(), net.weight.cpu(), net.theta.cpu()))
    assert results[0][0].sum() > 0
    for cpu, gpu in zip(*results, strict=True):
        torch.testing.assert_close(gpu, cpu)


def test_cli_trains_on_gpu(tmp_path):
    run = tmp_path / "gpu"
    args = ["train", "--dataset", "digits", "--hidden", "32", "--steps", "6", "--epochs", "5"]
    assert cli.main([*args, "--device", "cuda", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.5 < metrics["test_accuracy"] <= 1.0  # chance is 0.1

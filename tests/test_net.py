import torch
from torch import nn

import torchspike as ts


def test_conv_example_runs_and_trains():
    torch.manual_seed(0)
    net = ts.SpikingNet(
        nn.Conv2d(1, 4, 3, padding=1),
        ts.LIF(beta=0.9),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
        ts.LIF(beta=0.9),
    )
    x = torch.rand(5, 1, 8, 8)
    spikes, state = net(ts.encode.rate(x, 6))
    assert spikes.shape == (6, 5, 3)
    assert len(state) == 2 and state[0].v.shape == (5, 4, 8, 8)
    ts.loss.ce_count(spikes, torch.tensor([0, 1, 2, 0, 1])).backward()
    assert net.layers[0].weight.grad.abs().sum() > 0


def test_fresh_state_per_call_and_explicit_continuation():
    net = ts.SpikingNet([nn.Linear(3, 4), ts.LIF(beta=0.9), nn.Linear(4, 2), ts.LI(beta=0.8)])
    xs = torch.rand(10, 2, 3) * 2
    a, _ = net(xs)
    b, _ = net(xs)
    assert torch.equal(a, b)  # no hidden state between calls
    first, state = net(xs[:4])
    second, _ = net(xs[4:], state)
    torch.testing.assert_close(torch.cat([first, second]), a)


def test_trace_records_spikes_and_membrane():
    net = ts.SpikingNet(
        nn.Sequential(nn.Linear(3, 4), ts.LIF(beta=0.9), nn.Linear(4, 2), ts.LIF(0.9))
    )
    xs = torch.rand(10, 2, 3) * 2
    ys, records = net.trace(xs)
    assert set(records) == {"1", "3"}
    assert records["1"]["out"].shape == (10, 2, 4) and records["1"]["v"].shape == (10, 2, 4)
    assert torch.equal(ys, net(xs)[0])
    assert torch.equal(records["3"]["out"], (records["3"]["v"] > 1).float())

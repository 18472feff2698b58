import math

import pytest
import torch

from torchspike import encode


def test_direct_is_a_stride_zero_view():
    x = torch.rand(3, 4)
    xs = encode.direct(x, 7)
    assert xs.shape == (7, 3, 4) and xs.stride(0) == 0
    assert torch.equal(xs[5], x)


def test_rate_frequencies_follow_probabilities():
    gen = torch.Generator().manual_seed(0)
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    spikes = encode.rate(x, 4000, generator=gen)
    assert spikes.shape == (4000, 4)
    torch.testing.assert_close(spikes.mean(0), x, atol=0.03, rtol=0)
    assert spikes[:, 0].sum() == 0 and spikes[:, 3].sum() == 4000
    half = encode.rate(x, 4000, gain=0.5, generator=gen).mean(0)
    torch.testing.assert_close(half, x * 0.5, atol=0.03, rtol=0)


def test_poisson_rates_in_hz():
    gen = torch.Generator().manual_seed(0)
    spikes = encode.poisson(torch.tensor([0.0, 50.0, 200.0]), 10000, 1e-3, generator=gen)
    torch.testing.assert_close(
        spikes.mean(0) / 1e-3, torch.tensor([0.0, 50.0, 200.0]), atol=15, rtol=0
    )


def test_latency_linear_and_log():
    x = torch.tensor([[1.0, 0.5, 0.0, 0.005]])
    t = encode.latency_times(x, 10.0)
    assert t[0, :2].tolist() == [0.0, 5.0] and math.isinf(t[0, 2]) and math.isinf(t[0, 3])
    spikes = encode.latency(x, 11)
    assert spikes.shape == (11, 1, 4)
    assert spikes[:, 0, 0].nonzero().flatten().tolist() == [0]
    assert spikes[:, 0, 1].nonzero().flatten().tolist() == [5]
    assert spikes[:, 0, 2:].sum() == 0
    t_log = encode.latency_times(x, 10.0, method="log", tau=2.0, threshold=0.1)
    assert t_log[0, 0].item() == pytest.approx(2 * math.log(1 / 0.9))
    assert t_log[0, 0] < t_log[0, 1]  # stronger inputs fire earlier
    assert math.isinf(t_log[0, 2])


def test_binary_time_code_of_the_eventprop_seed():
    x = torch.tensor([[0.9, 0.2, 0.51, 0.5]])
    t = encode.binary_times(x, 2e-3, 12e-3)
    torch.testing.assert_close(t, torch.tensor([[2e-3, 12e-3, 2e-3, 12e-3]]))
    spikes = encode.binary_time(x, 20, 1e-3)
    assert spikes[2, 0].tolist() == [1, 0, 1, 0] and spikes[12, 0].tolist() == [0, 1, 0, 1]
    assert spikes.sum() == 4


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: encode.rate(torch.rand(3), 0), "steps.*0"),
        (lambda: encode.rate(torch.tensor([1.5]), 5), r"x must lie in \[0, 1\]"),
        (lambda: encode.rate(torch.tensor([0.8]), 5, gain=2.0), "gain"),
        (lambda: encode.poisson(torch.tensor([10.0]), 5, -1e-3), "dt.*-0.001"),
        (lambda: encode.poisson(torch.tensor([2000.0]), 5, 1e-3), "rates_hz"),
        (lambda: encode.latency(torch.tensor([0.5]), 5, method="cubic"), "method.*cubic"),
        (lambda: encode.direct(torch.tensor([float("nan")]), 5), "x must be finite"),
        (lambda: encode.binary_time(torch.rand(3), 10, 1e-3), "t_max"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()

import math

import pytest
import torch
import torch.nn.functional as F

from torchspike import decode, loss


def test_decoders():
    spikes = torch.tensor([[[0.0, 1.0, 0.0]], [[1.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]])
    assert decode.spike_count(spikes).tolist() == [[1, 2, 0]]
    torch.testing.assert_close(decode.spike_rate(spikes), torch.tensor([[1 / 3, 2 / 3, 0]]))
    first = decode.first_spike_time(spikes, dt=0.5)
    assert first[0, :2].tolist() == [0.5, 0.0] and math.isinf(first[0, 2])
    assert decode.max_membrane(torch.tensor([[1.0], [3.0], [2.0]])).tolist() == [3.0]


def test_ce_membrane_sum_is_the_tutorial_loop():
    v = torch.randn(7, 4, 10)
    y = torch.tensor([1, 0, 9, 3])
    want = sum(F.cross_entropy(v[t], y) for t in range(7))
    torch.testing.assert_close(loss.ce_membrane_sum(v, y), want)


def test_count_losses():
    spikes = torch.zeros(10, 2, 3)
    spikes[:8, 0, 1] = 1
    spikes[:2, 0, 0] = 1
    y = torch.tensor([1, 2])
    torch.testing.assert_close(loss.ce_count(spikes, y), F.cross_entropy(spikes.sum(0), y))
    # target counts: 0.8 * T for the label, 0.2 * T for the others; divided by T as in snnTorch
    want = torch.tensor([[2.0, 8, 2], [2, 2, 8]])
    torch.testing.assert_close(loss.mse_count(spikes, y), F.mse_loss(spikes.sum(0), want) / 10)
    # T = 7: snnTorch's int(7 * 0.8) = 5 and int(7 * 0.2) = 1, by hand
    counts = spikes[:7].sum(0)  # [[2, 7, 0], [0, 0, 0]]
    want = torch.tensor([[1.0, 5, 1], [1, 1, 5]])
    by_hand = ((counts - want) ** 2).mean() / 7
    torch.testing.assert_close(loss.mse_count(spikes[:7], y), by_hand)


def test_first_spike_ce_by_hand():
    t = torch.tensor([[2e-3, 5e-3]])
    y = torch.tensor([0])
    tau, xi, alpha, beta = 5e-3, 0.4, 3e-3, 6.4
    logits = [-2e-3 / (xi * tau), -5e-3 / (xi * tau)]
    ce = -logits[0] + math.log(sum(math.exp(v) for v in logits))
    want = ce + alpha * (math.exp(2e-3 / (beta * tau)) - 1)
    got = loss.first_spike_ce(t, y, tau_syn=tau)
    assert got.item() == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="times must be finite"):
        loss.first_spike_ce(torch.tensor([[math.inf, 1.0]]), y, tau_syn=tau)

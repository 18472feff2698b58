"""Each bad input raises ValueError naming the parameter and the value it got."""

import pytest
import torch

import torchspike as ts


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ts.LIF(beta=1.5), r"beta must be in \[0, 1\], got 1.5"),
        (lambda: ts.LIF(beta=-0.1), r"beta must be in \[0, 1\], got -0.1"),
        (lambda: ts.LIF(beta=torch.tensor([0.5, 2.0])), r"beta.*\[0.5, 2.0\]"),
        (lambda: ts.LIF(tau=0.0, dt=1e-3), "tau must be finite and > 0, got 0.0"),
        (lambda: ts.LIF(tau=20e-3, dt=-1.0), "dt must be finite and > 0, got -1.0"),
        (lambda: ts.LIF(tau=20e-3), "dt must be given"),
        (lambda: ts.LIF(), "exactly one of beta or tau"),
        (lambda: ts.LIF(0.9, v_th=0), "v_th must be finite and > 0, got 0"),
        (lambda: ts.LIF(0.9, reset="soft"), "reset must be one of .* got 'soft'"),
        (lambda: ts.LIF(0.9, spike_fn="relu"), "spike_fn must be .* got 'relu'"),
        (lambda: ts.CubaLIF(tau_mem=-1), "tau_mem must be finite and > 0, got -1"),
        (lambda: ts.CubaLIF(tau_syn=0), "tau_syn must be finite and > 0, got 0"),
        (lambda: ts.IF(rectify=True, reset="subtract"), "reset must be 'zero'"),
        (lambda: ts.ALIF(0.9), "exactly one of rho or tau_adapt"),
        (lambda: ts.RecurrentLIF(0, 0.9), "size must be an integer > 0, got 0"),
        (lambda: ts.encode.direct(torch.rand(3), 0), "steps must be an integer > 0, got 0"),
        (lambda: ts.encode.rate(torch.rand(3), -2), "steps must be an integer > 0, got -2"),
    ],
)
def test_bad_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "neuron, xs, match",
    [
        (ts.LIF(0.9), torch.rand(5), r"rank >= 2, got shape \(5,\)"),
        (ts.LIF(0.9), torch.zeros(0, 2, 3), "at least one time step"),
        (ts.LIF(0.9), torch.tensor([[1.0, float("nan")]]), "xs must be finite, got .*nan"),
        (ts.LIF(0.9), torch.tensor([[float("inf")]]), "xs must be finite"),
        (ts.LIF(0.9), torch.ones(3, 2, dtype=torch.long), "floating-point"),
        (ts.LIF(torch.full((4,), 0.9)), torch.rand(3, 2, 5), r"LIF size \(4,\), got .*5"),
        (ts.RecurrentLIF(4, 0.9), torch.rand(3, 2, 5), r"size \(4,\)"),
    ],
)
def test_bad_inputs(neuron, xs, match):
    with pytest.raises(ValueError, match=match):
        neuron(xs)


def test_bad_state_shape():
    with pytest.raises(ValueError, match=r"state.v must have shape \(2, 3\)"):
        ts.LIF(0.9)(torch.rand(4, 2, 3), ts.LIFState(torch.zeros(5, 3)))


def test_net_rejects_bad_input():
    with pytest.raises(ValueError, match="xs must be finite"):
        ts.SpikingNet(ts.LIF(0.9))(torch.tensor([[float("nan")]]))

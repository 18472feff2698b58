"""Keyword names from snnTorch, SpikingJelly and Norse given to torchspike's neurons: a
``TypeError`` that names torchspike's spelling (one table, ``neurons.peer_names``)."""

import re

import pytest
import torch

import torchspike as ts
from torchspike.neurons import peer_names
from torchspike.neurons.base import Neuron


@pytest.mark.parametrize(
    "make, key, says",
    [
        (lambda **kw: ts.LIF(0.9, **kw), "threshold", "torchspike calls it v_th"),
        (lambda **kw: ts.LIF(0.9, **kw), "v_threshold", "torchspike calls it v_th"),
        (lambda **kw: ts.LIF(0.9, **kw), "spike_grad", "torchspike calls it spike_fn"),
        (lambda **kw: ts.LIF(0.9, **kw), "surrogate_function", "torchspike calls it spike_fn"),
        (lambda **kw: ts.LIF(0.9, **kw), "reset_mechanism", "torchspike calls it reset"),
        (lambda **kw: ts.LIF(0.9, **kw), "learn_threshold", "torchspike calls it learn_v_th"),
        (lambda **kw: ts.LIF(0.9, **kw), "v_reset", "reset='subtract'"),
        (lambda **kw: ts.LIF(0.9, **kw), "detach_reset", "always detaches the reset"),
        (lambda **kw: ts.LIF(0.9, **kw), "decay_input", "decay_input=False"),
        (lambda **kw: ts.LIF(0.9, **kw), "init_hidden", "keep no hidden state"),
        (lambda **kw: ts.LIF(0.9, **kw), "p", "not a parameters object"),
        (lambda **kw: ts.IF(**kw), "threshold", "torchspike calls it v_th"),
        (lambda **kw: ts.IF(**kw), "learn_beta", "the same, but IF does not take it"),
        (lambda **kw: ts.ALIF(0.9, rho=0.9, **kw), "learn_threshold", "which ALIF does not take"),
        (lambda **kw: ts.ALIF(0.9, rho=0.9, **kw), "spike_grad", "torchspike calls it spike_fn"),
        (lambda **kw: ts.CubaLIF(**kw), "tau_mem_inv", "1 / tau_mem_inv"),
        (lambda **kw: ts.CubaLIF(**kw), "alpha", "tau_syn"),
        (lambda **kw: ts.CubaLIF(**kw), "threshold", "torchspike calls it v_th"),
        (lambda **kw: ts.RecurrentLIF(4, 0.9, **kw), "threshold", "torchspike calls it v_th"),
        (lambda **kw: ts.LI(0.9, **kw), "threshold", "v_th, which LI does not take"),
    ],
)
def test_peer_keyword_raises_naming_the_torchspike_spelling(make, key, says):
    with pytest.raises(TypeError, match=re.escape(says)) as err:
        make(**{key: 1.0})
    assert f"unexpected keyword {key!r}" in str(err.value)


def test_the_message_reads_as_documented():
    with pytest.raises(TypeError) as err:
        ts.LIF(beta=0.9, threshold=0.5)
    assert str(err.value) == (
        "LIF got an unexpected keyword 'threshold' (snnTorch's name): torchspike calls it v_th"
    )


def test_unknown_keywords_keep_pythons_error_and_torchspike_names_work():
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        ts.LIF(0.9, nonsense=1)
    lif = ts.LIF(0.9, v_th=0.5, spike_fn="atan", reset="zero", learn_v_th=True, learn_beta=True)
    assert isinstance(lif.v_th, torch.nn.Parameter) and lif.reset == "zero"


def test_every_neuron_constructor_is_checked():
    """Each public neuron class's ``__init__`` goes through the table, and a user's subclass
    with its own ``__init__`` too."""
    for cls in (ts.LIF, ts.IF, ts.LI, ts.ALIF, ts.CubaLIF, ts.RecurrentLIF):
        assert getattr(cls.__init__, "__wrapped__", None) is not None, cls.__name__

    class Mine(Neuron):
        def __init__(self, v_th: float = 1.0):
            super().__init__()

    with pytest.raises(TypeError, match="Mine got an unexpected keyword 'threshold'.*v_th"):
        Mine(threshold=1.0)


def test_table_entries_are_well_formed():
    for key, (ours, peer, note) in peer_names.PEER_NAMES.items():
        assert peer, key
        assert ours is not None or note, f"{key}: no torchspike name and no note"


def test_tau_without_dt_mentions_spikingjelly_tau():
    with pytest.raises(ValueError, match=r"dt must be given with tau.*beta=1 - 1/tau"):
        ts.LIF(tau=2.0)

"""The snnTorch and Norse parts of tutorial 07 (NIR), run in the peers' environment:

    cd docs/tutorials/full && PYTHONPATH=../../../src ../../../.venv-peers/bin/python nir_peers.py

Prints what the tutorial shows as recorded output. bench/nir_interop.py checks many more cases.
"""

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import nir
import norse
import snntorch
import snntorch as snn
import snntorch.utils
import torch
from norse.torch.utils.import_nir import from_nir as norse_from_nir
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir
from torch import nn

import torchspike as ts
import torchspike.nir as tn

T, B, N_IN, N_HID, N_OUT = 60, 8, 10, 16, 4


@contextlib.contextmanager
def quiet():
    """The peers print and warn while importing and exporting."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def linears():
    torch.manual_seed(0)
    first, second = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
    with torch.no_grad():
        second.weight.mul_(4)
    return first, second


def stepped(module, xs, reset=None):
    """A peer's module stepped through ``xs`` ``[T, B, N]``: ``out, state = module(x, state)``."""
    if reset is not None:
        reset(module)
    state, out = None, []
    with torch.no_grad(), quiet():
        for x in xs:
            y, state = module(x, state)
            out.append(y[0] if isinstance(y, tuple) else y)
    return torch.stack(out)


def compare(name, theirs, ours):
    differ = (theirs != ours).float().mean().item()
    same = "identical" if differ == 0 else f"{differ:.2%} of outputs differ"
    print(f"{name}:\n    {same} ({int(theirs.sum())} vs {int(ours.sum())} output spikes)")


def main():
    print(f"snntorch {snntorch.__version__}, norse {norse.__version__}, nir {nir.__version__}")
    tmp = Path(tempfile.mkdtemp())
    torch.manual_seed(1)
    xs = torch.rand(T, B, N_IN)

    # snnTorch -> torchspike: per-neuron beta (a scalar beta fails to export in snnTorch 1.0)
    for reset in ("zero", "subtract"):
        first, second = linears()
        kw = dict(init_hidden=True, reset_mechanism=reset)
        net = nn.Sequential(
            first,
            snn.Leaky(beta=torch.full((N_HID,), 0.9), threshold=torch.ones(N_HID), **kw),
            second,
            snn.Leaky(
                beta=torch.full((N_OUT,), 0.8), threshold=torch.ones(N_OUT), output=True, **kw
            ),
        )
        path = tmp / f"from_snntorch_{reset}.nir"
        with quiet():
            nir.write(path, export_to_nir(net, torch.randn(1, N_IN), ignore_dims=[0]))
        theirs = stepped(
            lambda x, s, net=net: (net(x), None),
            xs,
            reset=lambda _, net=net: snntorch.utils.reset(net),
        )
        loaded = tn.load(path, dt=1e-4)
        ours, _ = loaded(xs)
        print(f"loaded from snnTorch: {type(loaded).__name__}, neurons {loaded.layers[1]}")
        compare(f"snnTorch Leaky(reset_mechanism={reset!r}) -> torchspike", theirs, ours)

    # torchspike -> snnTorch: dt = 1e-4 (snnTorch's), r = tau/dt
    first, second = linears()
    net = ts.SpikingNet(
        first, tn.NIRLIF(dt=1e-4, tau=1e-3, r=10.0, v_th=1.0),
        second, tn.NIRLIF(dt=1e-4, tau=1e-3, r=10.0, v_th=1.0),
    )  # fmt: skip
    graph = tn.export(net, dt=1e-4)
    nir.write(tmp / "for_snntorch.nir", graph)
    with quiet():
        theirs_net = import_from_nir(nir.read(tmp / "for_snntorch.nir"))
    theirs = stepped(theirs_net, xs, reset=snntorch.utils.reset)
    ours, _ = net(xs)
    compare("torchspike NIRLIF (dt 1e-4, r = tau/dt) -> snnTorch", theirs, ours)

    # torchspike -> Norse: r = 1 (Norse ignores r), the gain folded into the weights
    first, second = linears()
    tau, dt = 1e-2, 1e-3
    with torch.no_grad():
        for linear in (first, second):
            linear.weight.mul_(tau / dt)
            linear.bias.mul_(tau / dt)
    net = ts.SpikingNet(
        first, tn.NIRLIF(dt=dt, tau=tau, r=1.0, v_th=1.0),
        second, tn.NIRLIF(dt=dt, tau=tau, r=1.0, v_th=1.0),
    )  # fmt: skip
    nir.write(tmp / "for_norse.nir", tn.export(net, dt=dt))
    with quiet():
        theirs_net = norse_from_nir(nir.read(tmp / "for_norse.nir"), dt=dt)
    theirs = stepped(theirs_net, xs)
    ours, _ = net(xs)
    compare("torchspike NIRLIF (dt 1e-3, r = 1) -> Norse", theirs, ours)


if __name__ == "__main__":
    main()

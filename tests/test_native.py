"""The native kernels' build (cache, switch, compile failure) and their 2x2 max pooling against
``F.max_pool2d``; the event convolution is in test_event_conv.py."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from torchspike.kernels import native
from torchspike.kernels.conv_pool import max_pool_2x2

needs_native = pytest.mark.usefixtures("native_kernels")


@pytest.fixture(params=["native", "torch"])
def path(request, monkeypatch):
    """Each test twice: with the native kernels (skipped without a compiler) and without."""
    if request.param == "native":
        request.getfixturevalue("native_kernels")
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "1" if request.param == "native" else "0")
    return request.param


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("TORCHSPIKE_NATIVE", "0")
    assert native.library() is None


@needs_native
def test_built_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "_loaded", {})
    assert native.library() is not None
    built = list((tmp_path / "torchspike").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"  # no temporary file left
    monkeypatch.setattr(native, "_loaded", {})
    stamp = built[0].stat().st_mtime_ns
    assert native.library() is not None  # loaded again, not rebuilt
    assert built[0].stat().st_mtime_ns == stamp


@pytest.mark.parametrize("compiler", ["/bin/false", "/no/such/compiler"])
def test_a_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path, compiler):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TORCHSPIKE_CC", compiler)
    monkeypatch.setattr(native, "_loaded", {})
    x = torch.rand(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    with pytest.warns(RuntimeWarning, match="native kernels could not be built"):
        y = max_pool_2x2(x)
    assert torch.equal(y, F.max_pool2d(x, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.library() is None  # no second warning
    assert list((tmp_path / "torchspike").glob("*")) == []  # nothing half-written left


LAYOUTS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}


@pytest.fixture(params=list(LAYOUTS))
def layout(request) -> torch.memory_format:
    """The pooling's input after a convolution (channels-last) or after a neuron (NCHW)."""
    return LAYOUTS[request.param]


@pytest.mark.parametrize(
    "shape", [(3, 5, 8, 8), (2, 4, 7, 9), (2, 3, 2, 3), (1, 12, 30, 30), (2, 13, 11, 11)]
)
def test_max_pool_2x2_equals_max_pool2d_bit_for_bit(path, layout, shape):
    """Ties (integer values: the first maximum in scan order wins; binary spikes below),
    odd sizes (the dropped row and column get zero gradient), channel counts with and without
    a remainder of four; output in the input's layout, and so the input gradient (NCHW only
    with the native kernel), whatever the output gradient's layout."""
    gen = torch.Generator().manual_seed(0)
    for x in (torch.randint(-2, 3, shape, generator=gen), torch.rand(shape, generator=gen) < 0.3):
        x = x.float().contiguous(memory_format=layout).requires_grad_()
        y, ref = max_pool_2x2(x), F.max_pool2d(x, 2)
        assert torch.equal(y, ref) and y.is_contiguous(memory_format=layout)
        for gy in (torch.randn(ref.shape, generator=gen), torch.randn(ref.shape).contiguous(
                memory_format=torch.channels_last)):  # fmt: skip
            (gx,) = torch.autograd.grad(y, x, gy, retain_graph=True)
            (gref,) = torch.autograd.grad(ref, x, gy, retain_graph=True)
            assert torch.equal(gx, gref)
            native_nchw = layout == torch.contiguous_format and native.library() is not None
            assert gx.is_contiguous(memory_format=layout if native_nchw else torch.channels_last)


def test_max_pool_2x2_double_backward_after_the_native_forward(path, layout):
    x = torch.randint(-2, 3, (2, 5, 6, 7)).float()
    x = x.contiguous(memory_format=layout).requires_grad_()
    gy = torch.randn(2, 5, 3, 3, requires_grad=True)
    (plain,) = torch.autograd.grad(max_pool_2x2(x), x, gy)
    (graphed,) = torch.autograd.grad(max_pool_2x2(x), x, gy, create_graph=True)
    assert torch.equal(plain, graphed) and graphed.requires_grad
    (ggy,) = torch.autograd.grad(graphed.sum(), gy)
    (gref,) = torch.autograd.grad(F.max_pool2d(x, 2), x, gy, create_graph=True)
    assert torch.equal(ggy, torch.autograd.grad(gref.sum(), gy)[0])


@needs_native
def test_max_pool_2x2_native_routes_nan_as_pytorch(layout):
    x = torch.zeros(1, 4, 4, 4)
    x[0, 0, 0, 1] = x[0, 1, 1, 0] = x[0, 2, 0, 0] = x[0, 3, 1, 1] = float("nan")
    x[0, 2, 1, 1] = float("nan")
    x = x.contiguous(memory_format=layout).requires_grad_()
    y, ref = max_pool_2x2(x), F.max_pool2d(x, 2)
    assert torch.equal(y.isnan(), ref.isnan()) and torch.equal(y.nan_to_num(), ref.nan_to_num())
    gy = torch.randn(ref.shape)
    assert torch.equal(torch.autograd.grad(y, x, gy)[0], torch.autograd.grad(ref, x, gy)[0])

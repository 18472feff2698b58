import math

import pytest
import torch

from torchspike import surrogate

X = torch.linspace(-2, 2, 81, dtype=torch.float64)


def _surrogate_grad(fn, x):
    x = x.clone().requires_grad_()
    fn(x).sum().backward()
    return x.grad


def _primitive_grad(primitive, x):
    x = x.clone().requires_grad_()
    primitive(x).sum().backward()
    return x.grad


@pytest.mark.parametrize(
    "fn, primitive",
    [
        (surrogate.atan(2.0), lambda x: torch.atan(math.pi / 2 * 2.0 * x) / math.pi),
        (surrogate.atan(0.7), lambda x: torch.atan(math.pi / 2 * 0.7 * x) / math.pi),
        (surrogate.fast_sigmoid(25.0), lambda x: x / (1 + 25.0 * x.abs())),
        (surrogate.fast_sigmoid(3.0), lambda x: x / (1 + 3.0 * x.abs())),
        (surrogate.sigmoid(5.0), lambda x: torch.sigmoid(5.0 * x)),
        (surrogate.straight_through(), lambda x: x),
    ],
)
def test_backward_is_derivative_of_smooth_primitive(fn, primitive):
    torch.testing.assert_close(_surrogate_grad(fn, X), _primitive_grad(primitive, X))


@pytest.mark.parametrize("name", surrogate.NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_kernels_equal_derivative(name, dtype):
    """The fused kernels' in-place forms (``derivative_``, ``backward_``) == ``derivative``."""
    fn, x = surrogate.get(name), X.to(dtype)
    grad = torch.linspace(-3, 5, len(X), dtype=dtype)
    want = fn.derivative(x)
    torch.testing.assert_close(fn.derivative_(x.clone()), want)
    buffer = x.clone()
    out = fn.backward_(buffer, grad)
    assert out.data_ptr() == buffer.data_ptr()  # written into x's buffer
    torch.testing.assert_close(out, grad * want)


def test_atan_matches_snntorch_formula_at_hand_points():
    got = _surrogate_grad(surrogate.atan(2.0), torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64))
    want = [1.0, 1 / (1 + (math.pi * 0.5) ** 2), 1 / (1 + math.pi**2)]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_triangle_by_hand():
    x = torch.tensor([-1.5, -0.5, 0.0, 0.25, 1.0, 3.0], dtype=torch.float64)
    got = _surrogate_grad(surrogate.triangle(1.0), x)
    torch.testing.assert_close(got, torch.tensor([0, 0.5, 1, 0.75, 0, 0], dtype=torch.float64))
    got = _surrogate_grad(surrogate.triangle(2.0), x)
    torch.testing.assert_close(
        got, torch.tensor([0.125, 0.375, 0.5, 0.4375, 0.25, 0], dtype=torch.float64)
    )


@pytest.mark.parametrize("name", surrogate.NAMES)
def test_forward_is_strict_heaviside(name):
    fn = surrogate.get(name)
    x = torch.tensor([-1.0, -1e-9, 0.0, 1e-9, 2.0])
    assert fn(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_custom_surrogate_by_subclassing():
    class Box(surrogate.Surrogate):
        def derivative(self, x):
            return (x.abs() < 0.5).to(x.dtype)

    grad = _surrogate_grad(Box(), torch.tensor([-1.0, 0.2, 0.7]))
    assert grad.tolist() == [0.0, 1.0, 0.0]


def test_get_accepts_names_with_dashes_and_instances():
    assert isinstance(surrogate.get("fast-sigmoid"), surrogate.FastSigmoid)
    inst = surrogate.atan(3.0)
    assert surrogate.get(inst) is inst
    assert surrogate.atan(2.0) == surrogate.ATan()


def test_unknown_name_and_bad_parameters_raise():
    with pytest.raises(ValueError, match="spike_fn.*'relu'"):
        surrogate.get("relu")
    with pytest.raises(ValueError, match="alpha.*-1"):
        surrogate.atan(-1)
    with pytest.raises(ValueError, match="slope.*0"):
        surrogate.fast_sigmoid(0)

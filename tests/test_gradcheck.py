"""tinydeep/gradcheck.py: passes correct gradients, catches wrong ones, and says where."""

from __future__ import annotations

import numpy as np
import pytest

import tinydeep as td
from tinydeep.tensor import differentiable


def sin_forward(x):
    return np.sin(x), x


def wrong_sin_backward(dy, x):
    return (dy * np.sin(x),)  # should be cos


wrong_sin = differentiable(sin_forward, wrong_sin_backward, "wrong_sin")


def scale_forward(a, b):
    return a * b, (a, b)


def half_wrong_scale_backward(dy, cache):
    a, b = cache
    return dy * b, dy * a * 2  # the gradient of b is doubled


half_wrong_scale = differentiable(scale_forward, half_wrong_scale_backward, "half_wrong_scale")

rng = np.random.default_rng(0)


@pytest.mark.parametrize("mode", ["full", "random"])
def test_correct_gradients_pass(mode):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    assert td.gradcheck(lambda x, w: (x @ w).tanh().log_softmax(), a, b, mode=mode)


@pytest.mark.parametrize("mode", ["full", "random"])
def test_a_deliberately_wrong_backward_is_caught(mode):
    x = np.array([0.3, 1.1, -0.7])
    with pytest.raises(td.GradcheckError, match="gradient of input 0"):
        td.gradcheck(wrong_sin, x, mode=mode)


def test_the_failure_names_the_input_the_element_and_both_values():
    a, b = np.array([[1.0, 2.0]]), np.array([[0.5, -1.0]])
    with pytest.raises(td.GradcheckError) as caught:
        td.gradcheck(half_wrong_scale, a, b)
    message = str(caught.value)
    assert "input 1 (shape (1, 2))" in message  # input 0 is right; input 1 is not
    assert "element (0, 1)" in message  # |a| is largest at (0, 1), so the error is too
    assert "analytic 4, numeric 2" in message


def test_multiple_outputs_and_parameters_are_checked_and_restored():
    w = td.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w.grad = np.full((4, 3), 7.0)
    before = w.data.copy()
    x = rng.standard_normal((2, 4))
    assert td.gradcheck(lambda t: ((t @ w).relu(), (t @ w).sum(axis=0)), x, params={"kernel": w})
    np.testing.assert_array_equal(w.data, before)
    np.testing.assert_array_equal(w.grad, 7.0)

    wrong = td.Tensor(np.array([0.5]), requires_grad=True)
    with pytest.raises(td.GradcheckError, match="parameter kernel"):
        td.gradcheck(lambda: wrong_sin(wrong * 2.0), params={"kernel": wrong})


def test_the_callers_tensors_are_not_touched():
    x = td.Tensor(np.array([0.1, 0.2], dtype=np.float32), requires_grad=True)
    td.gradcheck(lambda t: t.exp(), x, atol=1e-6)
    assert x.dtype == np.float32 and x.grad is None


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="mode must be 'full' or 'random'"):
        td.gradcheck(lambda t: t, np.ones(2), mode="fast")
    with pytest.raises(ValueError, match="no floating-point input or parameter"):
        td.gradcheck(lambda t: td.Tensor(np.ones(2)), np.arange(2))
    with pytest.raises(ValueError, match="parameter 0 has dtype float32, expected float64"):
        td.gradcheck(lambda t: t, np.ones(2), params=[td.Tensor(np.ones(2, np.float32))])


# ---- the float64 tolerances, and what gradcheck refuses to call a pass ----------------------


def sigmoid_forward(x):
    y = 1 / (1 + np.exp(-x))
    return y, y


def slightly_wrong_sigmoid_backward(dy, y):
    return (dy * y * (1 - y) * 1.0005,)  # 0.05% too large


slightly_wrong_sigmoid = differentiable(
    sigmoid_forward, slightly_wrong_sigmoid_backward, "slightly_wrong_sigmoid"
)


@pytest.mark.parametrize("mode", ["full", "random"])
def test_a_backward_off_by_five_hundredths_of_a_percent_is_caught(mode):
    """The audit's planted sigmoid bug: PyTorch's float32-minded defaults (atol 1e-5,
    rtol 1e-3) pass it; the float64 defaults do not."""
    x = rng.standard_normal((3, 4))
    assert td.gradcheck(slightly_wrong_sigmoid, x, atol=1e-5, rtol=1e-3, mode=mode)
    with pytest.raises(td.GradcheckError, match="gradient of input 0"):
        td.gradcheck(slightly_wrong_sigmoid, x, mode=mode)
    assert td.gradcheck(lambda t: t.sigmoid(), x, mode=mode)  # the real one passes


def test_the_defaults_are_float64s():
    import inspect

    defaults = inspect.signature(td.gradcheck).parameters
    assert defaults["eps"].default == 1e-6
    assert defaults["atol"].default == 1e-8 and defaults["rtol"].default == 1e-7


def wrong_on_empty_backward(dy, x):
    return (np.ones(x.shape),)  # any backward at all: the output is empty


empty_output = differentiable(lambda x: (x[:0], x), wrong_on_empty_backward, "empty_output")


@pytest.mark.parametrize("mode", ["full", "random"])
def test_an_empty_jacobian_is_not_a_pass(mode):
    with pytest.raises(td.GradcheckError, match="nothing to compare: every output is empty"):
        td.gradcheck(empty_output, np.ones(3), mode=mode)
    with pytest.raises(td.GradcheckError, match="every checked tensor is empty"):
        td.gradcheck(lambda t: t.sum() + 1.0, np.ones((0, 2)), mode=mode)

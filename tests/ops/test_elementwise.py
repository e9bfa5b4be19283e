"""tinydeep/ops/elementwise.py: forward against NumPy, gradients against central differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import (
    EDGE_PAIRS,
    EDGES,
    MAX_SIDE,
    arrays,
    away_from_zero,
    broadcastable_pair,
    floats,
    shapes,
)

import tinydeep as td
from tinydeep import ops

# ---- binary arithmetic, on broadcastable partners ---------------------------------------------


@given(broadcastable_pair())
@example(EDGE_PAIRS["scalars"])
@example(EDGE_PAIRS["zeros, a constant"])
@example(EDGE_PAIRS["a column, a row"])
@example(EDGE_PAIRS["one element, a row"])
def test_add(pair):
    a, b = pair
    y = check_gradients(lambda x, z: x + z, a, b)
    np.testing.assert_array_equal(y.data, a + b)


@given(broadcastable_pair())
@example(EDGE_PAIRS["scalars"])
@example(EDGE_PAIRS["zeros, a constant"])
@example(EDGE_PAIRS["a column, a row"])
@example(EDGE_PAIRS["one element, a row"])
def test_subtract(pair):
    a, b = pair
    y = check_gradients(lambda x, z: x - z, a, b)
    np.testing.assert_array_equal(y.data, a - b)


@given(broadcastable_pair())
@example(EDGE_PAIRS["scalars"])
@example(EDGE_PAIRS["zeros, a constant"])
@example(EDGE_PAIRS["a column, a row"])
@example(EDGE_PAIRS["one element, a row"])
def test_multiply(pair):
    a, b = pair
    y = check_gradients(lambda x, z: x * z, a, b)
    np.testing.assert_array_equal(y.data, a * b)


@given(broadcastable_pair(other_elements=away_from_zero(0.5, 3.0)))
@example(EDGE_PAIRS["scalars"])
@example(EDGE_PAIRS["zeros, a constant"])
@example(EDGE_PAIRS["a column, a row"])
@example(EDGE_PAIRS["one element, a row"])
def test_divide(pair):
    a, b = pair
    y = check_gradients(lambda x, z: x / z, a, b)
    np.testing.assert_array_equal(y.data, a / b)


@given(broadcastable_pair(elements=floats(0.5, 2.0), other_elements=floats(-2.0, 2.0)))
def test_power_of_two_tensors(pair):
    a, b = pair
    y = check_gradients(lambda x, z: x**z, a, b)
    np.testing.assert_array_equal(y.data, a**b)


@given(st.data(), st.sampled_from([2, 3, -1, 0.5, 1.5, -2.5]))
def test_power_scalar(data, exponent):
    x = data.draw(arrays(shapes(), floats(0.2, 3.0)))
    y = check_gradients(lambda t: t**exponent, x)
    np.testing.assert_array_equal(y.data, x**exponent)


@given(broadcastable_pair())
def test_reflected_operators_with_arrays_and_numbers(pair):
    a, b = pair
    x = td.Tensor(a)
    np.testing.assert_array_equal((b + x).data, b + a)
    np.testing.assert_array_equal((b - x).data, b - a)
    np.testing.assert_array_equal((2.0 * x).data, 2.0 * a)
    np.testing.assert_array_equal((1.5 - x).data, 1.5 - a)
    np.testing.assert_array_equal((b * x).data, b * a)


@given(arrays(shapes()))
@example(EDGES["scalar"])
@example(EDGES["one"])
@example(EDGES["zeros"])
@example(EDGES["constant"])
def test_negative(x):
    y = check_gradients(lambda t: -t, x)
    np.testing.assert_array_equal(y.data, -x)


# ---- pointwise functions ----------------------------------------------------------------------

UNARY = {
    # name: (tinydeep function, NumPy reference, element strategy away from trouble)
    "exp": (lambda t: t.exp(), np.exp, floats()),
    "log": (lambda t: t.log(), np.log, floats(0.1, 5.0)),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, floats(0.1, 5.0)),
    "tanh": (lambda t: t.tanh(), np.tanh, floats()),
    "sigmoid": (lambda t: t.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), floats(-8.0, 8.0)),
    "relu": (lambda t: t.relu(), lambda a: np.maximum(a, 0), away_from_zero(0.01, 3.0)),
    "abs": (lambda t: t.abs(), np.abs, away_from_zero(0.01, 3.0)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary(name, data):
    fn, reference, elements = UNARY[name]
    x = data.draw(arrays(shapes(), elements))
    y = check_gradients(fn, x)
    np.testing.assert_allclose(y.data, reference(x), rtol=1e-15, atol=0)


def test_sigmoid_is_finite_and_exact_at_extremes():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    y = td.Tensor(x).sigmoid().data
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[[0, 2, 4]], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(y[1], np.exp(-40.0), rtol=1e-15)  # no cancellation to 0


@given(arrays(shapes(), floats(-3.0, 3.0)), floats(-2.0, 0.0), floats(0.01, 2.0))
def test_clip(x, low, width):
    high = low + width
    x = np.where(np.abs(x - low) < 1e-3, x + 2e-3, x)  # away from the kinks at the bounds
    x = np.where(np.abs(x - high) < 1e-3, x + 2e-3, x)
    y = check_gradients(lambda t: t.clip(low, high), x)
    np.testing.assert_array_equal(y.data, np.clip(x, low, high))


def test_clip_gradient_passes_at_the_bounds_and_one_sided_bounds_work():
    x = td.Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(x.clip(min=0.0).data, [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(x.clip(max=0.0).data, [-2, -1, 0, 0, 0])
    with pytest.raises(ValueError, match="clip: at least one"):
        x.clip()


@given(st.data())
def test_where(data):
    (shape_c, shape_a, shape_b), _ = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=MAX_SIDE)
    )
    condition = data.draw(arrays(shape_c)) > 0
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    y = check_gradients(lambda c, x, z: td.where(c, x, z), condition, a, b)
    np.testing.assert_array_equal(y.data, np.where(condition, a, b))


def test_where_rejects_a_non_boolean_condition():
    with pytest.raises(TypeError, match="where: condition must be boolean, got dtype float32"):
        td.where(td.Tensor([1.0, 0.0]), td.Tensor([1.0, 2.0]), td.Tensor([3.0, 4.0]))


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "divide", "power"])
def test_shapes_that_do_not_broadcast_name_the_op_and_both_shapes(op):
    a, b = td.Tensor(np.ones((2, 3))), td.Tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        getattr(ops, op)(a, b)

"""tinydeep/ops/reduce.py: sum, mean and max over every axis form, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import example, given
from hypothesis import strategies as st
from strategies import EDGES, arrays, distinct_arrays, shapes

import tinydeep as td


@st.composite
def array_and_axis(draw, values=arrays):
    """An array and an axis argument: None, one int (negative too), or a tuple of ints."""
    x = draw(values(shapes(min_dims=1)))
    ndim = x.ndim
    axis = draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), unique=True, min_size=1).map(tuple),
        )
    )
    return x, axis, draw(st.booleans())


@given(array_and_axis())
@example((EDGES["one"], None, False))
@example((EDGES["zeros"], (0, 1), True))
@example((EDGES["constant"], -1, False))
def test_sum(case):
    x, axis, keepdims = case
    y = check_gradients(lambda t: t.sum(axis=axis, keepdims=keepdims), x)
    np.testing.assert_allclose(y.data, np.sum(x, axis=axis, keepdims=keepdims), rtol=1e-15)


@given(array_and_axis())
@example((EDGES["one"], None, False))
@example((EDGES["zeros"], (0, 1), True))
@example((EDGES["constant"], -1, False))
def test_mean(case):
    x, axis, keepdims = case
    y = check_gradients(lambda t: t.mean(axis=axis, keepdims=keepdims), x)
    np.testing.assert_allclose(y.data, np.mean(x, axis=axis, keepdims=keepdims), rtol=1e-15)


@given(array_and_axis(values=distinct_arrays))
def test_max(case):
    x, axis, keepdims = case
    y = check_gradients(lambda t: t.max(axis=axis, keepdims=keepdims), x)
    np.testing.assert_array_equal(y.data, np.max(x, axis=axis, keepdims=keepdims))


@given(array_and_axis(values=distinct_arrays))
def test_min(case):
    x, axis, keepdims = case
    y = check_gradients(lambda t: t.min(axis=axis, keepdims=keepdims), x)
    np.testing.assert_array_equal(y.data, np.min(x, axis=axis, keepdims=keepdims))


def test_max_shares_the_gradient_between_tied_maxima():
    x = td.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_reductions_of_a_scalar_tensor():
    x = td.Tensor(np.array(2.5), requires_grad=True)
    (x.sum() + x.mean() + x.max()).backward()
    assert x.grad.shape == () and x.grad == 3.0


@pytest.mark.parametrize("method", ["sum", "mean", "max"])
def test_axis_out_of_range_names_the_op(method):
    with pytest.raises(ValueError, match=f"{method}: axis 2 is out of range .* 2 dimensions"):
        getattr(td.Tensor(np.ones((2, 3))), method)(axis=2)


def test_a_repeated_axis_is_an_error():
    with pytest.raises(ValueError, match="sum: axis .* names an axis twice"):
        td.Tensor(np.ones((2, 3))).sum(axis=(1, -1))

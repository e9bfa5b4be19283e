"""tinydeep/ops/softmax.py: softmax and log_softmax, their gradients and their stability."""

from __future__ import annotations

import numpy as np
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, shapes

import tinydeep as td


def numpy_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@st.composite
def array_and_one_axis(draw):
    x = draw(arrays(shapes(min_dims=1)))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


@given(array_and_one_axis())
def test_softmax(case):
    x, axis = case
    y = check_gradients(lambda t: td.softmax(t, axis=axis), x)
    np.testing.assert_allclose(y.data, np.exp(numpy_log_softmax(x, axis)), rtol=1e-13)
    np.testing.assert_allclose(y.data.sum(axis=axis), 1.0, rtol=1e-13)


@given(array_and_one_axis())
def test_log_softmax(case):
    x, axis = case
    y = check_gradients(lambda t: t.log_softmax(axis=axis), x)
    np.testing.assert_allclose(y.data, numpy_log_softmax(x, axis), rtol=1e-13, atol=1e-13)


def test_huge_logits_stay_finite_and_exact():
    x = td.Tensor(np.array([[1e4, 0.0, -1e4]], dtype=np.float32), requires_grad=True)
    logp = x.log_softmax()
    np.testing.assert_array_equal(logp.data, [[0.0, -1e4, -2e4]])
    logp[0, 1].backward()
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_array_equal(td.softmax(x).data, [[1.0, 0.0, 0.0]])

"""tinydeep/ops/convert.py: dtype casts keep the graph; gradients come back in the input dtype."""

from __future__ import annotations

import numpy as np
from gradients import check_gradients
from hypothesis import given
from strategies import arrays, shapes

import tinydeep as td


@given(arrays(shapes()))
def test_astype_is_differentiable(x):
    # float64 -> float64 keeps central differences exact; a float32 step would round them
    y = check_gradients(lambda t: t.astype(np.float64) * 2.0, x)
    np.testing.assert_array_equal(y.data, x * 2.0)


def test_a_cast_to_an_integer_dtype_ends_the_graph():
    x = td.Tensor(np.array([1.5, 2.5]), requires_grad=True)
    y = x.astype(np.int64)
    assert y.dtype == np.int64 and not y.requires_grad


def test_gradient_of_a_cast_has_the_input_dtype():
    x = td.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (x.astype("float64") * 3.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3, 3, 3])

"""tinydeep/ops/matmul.py: 1-D, 2-D and broadcast batched products, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import MAX_SIDE, arrays

import tinydeep as td

side = st.integers(1, MAX_SIDE)


@st.composite
def matmul_operands(draw):
    """a (..., M, K) or (K,), b (..., K, N) or (K,), with broadcastable batch axes."""
    m, k, n = draw(side), draw(side), draw(side)
    (batch_a, batch_b), _ = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)
    )
    shape_a = (k,) if draw(st.booleans()) and not batch_a else (*batch_a, m, k)
    shape_b = (k,) if draw(st.booleans()) and not batch_b else (*batch_b, k, n)
    return draw(arrays(shape_a)), draw(arrays(shape_b))


@given(matmul_operands())
def test_matmul(operands):
    a, b = operands
    y = check_gradients(lambda x, z: x @ z, a, b)
    np.testing.assert_allclose(y.data, np.matmul(a, b), rtol=1e-13, atol=1e-13)


def test_matmul_inner_dimension_mismatch_names_both_shapes():
    with pytest.raises(
        ValueError,
        match=r"matmul: inner dimensions do not match: a has shape "
        r"\(2, 3\) and b has shape \(4, 5\) \(3 != 4\)",
    ):
        td.Tensor(np.ones((2, 3))) @ td.Tensor(np.ones((4, 5)))


def test_matmul_batch_axes_that_do_not_broadcast_are_named():
    with pytest.raises(ValueError, match=r"matmul \(batch axes\): shapes \(2,\) and \(3,\)"):
        td.Tensor(np.ones((2, 1, 3))) @ td.Tensor(np.ones((3, 3, 1)))


def test_matmul_of_a_scalar_is_an_error():
    with pytest.raises(ValueError, match="matmul: operands must have at least 1 dimension"):
        td.Tensor(np.ones(3)) @ td.Tensor(np.array(2.0))

"""kernels/cpu/elementwise.py against tinydeep/ops/elementwise.py: ReLU, bit for bit.

Hypothesis-drawn shapes and values (NaN, infinities and -0.0 included), float32 and float64,
contiguous or not; other dtypes and shapes declined; then the gradient of relu with the
kernels on.
"""

from __future__ import annotations

import numpy as np
import tinydeep_kernels.cpu.elementwise as kernels
from gradients import check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_settings import declined
from strategies import arrays, away_from_zero

from tinydeep import ops
from tinydeep.ops import elementwise as reference_module

relu_forward = reference_module.relu_forward.reference
relu_backward = reference_module.relu_backward.reference


@st.composite
def pair(draw):
    """x and dy of one shape and dtype, any floats; sometimes non-contiguous views."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=9))
    x, dy = (draw(hnp.arrays(dtype, shape)) for _ in range(2))
    if draw(st.booleans()):
        x, dy = x.T, dy.T
    return x, dy


@settings(max_examples=40)
@given(pair())
def test_relu_forward_and_backward_are_the_reference_bit_for_bit(case):
    x, dy = case
    y, cache = kernels.relu_forward(x)
    ref_y, _ = relu_forward(x)
    assert y.dtype == ref_y.dtype and cache is y
    np.testing.assert_array_equal(y, ref_y)
    assert np.array_equal(np.signbit(y), np.signbit(ref_y))  # -0.0 becomes 0.0 in both
    (dx,) = kernels.relu_backward(dy, ref_y)
    with np.errstate(invalid="ignore"):  # inf * 0 in NumPy: NaN, with a warning
        (ref_dx,) = relu_backward(dy, ref_y)
    assert dx.dtype == ref_dx.dtype
    np.testing.assert_array_equal(dx, ref_dx)  # NaN where dy is NaN or infinite and y <= 0


def test_other_dtypes_and_shapes_are_declined_and_the_reference_runs():
    x = np.array([-2, 0, 3])
    y, cache = declined(reference_module.relu_forward, x)
    assert y.dtype == x.dtype and cache is y
    np.testing.assert_array_equal(y, [0, 0, 3])
    (dx,) = declined(reference_module.relu_backward, x, np.array([1, 0, 1]))
    np.testing.assert_array_equal(dx, [-2, 0, 3])
    (dx,) = declined(reference_module.relu_backward, np.ones((2, 3)), np.array([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(dx, [[1, 0, 1], [1, 0, 1]])  # broadcast, as the reference


@settings(max_examples=10)
@given(arrays(st.tuples(st.integers(1, 4), st.integers(1, 4)), away_from_zero()))
def test_relu_gradient_with_the_kernels_on(x):
    check_gradients(ops.relu, x)

"""tinydeep/ops/pool.py: max and average pooling against the loop references and central
differences; the first-maximum rule for ties, padding that never counts, the errors, those of
a backward's arrays that do not fit the cache's geometry on the reference path and with the
CPU kernels on."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from kernel_settings import PATHS
from reference import avg_pool2d_reference, max_pool2d_reference
from strategies import arrays, distinct_arrays

import tinydeep as td
from tinydeep.ops.conv import window_geometry
from tinydeep.ops.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

POOLS = {
    "max": (td.ops.max_pool2d, max_pool2d_reference),
    "avg": (td.ops.avg_pool2d, avg_pool2d_reference),
}


def upto(high: int) -> st.SearchStrategy:
    """1..high, drawn evenly (st.integers leans towards the small end)."""
    return st.sampled_from(range(1, high + 1))


@st.composite
def pool_case(draw, max_batch: int, max_side: int, max_channels: int, values=arrays):
    """x (N, H, W, C), pool_size, strides (None: the pool size), padding: windows 1-3,
    strides 1-3, "valid" or "same", and a window that fits the padded input."""
    padding = draw(st.sampled_from(["valid", "same"]))
    n, h, w, c = (draw(upto(m)) for m in (max_batch, max_side, max_side, max_channels))
    fits_h, fits_w = (3, 3) if padding == "same" else (min(3, h), min(3, w))
    pool = draw(upto(fits_h) | st.tuples(upto(fits_h), upto(fits_w)))
    # An int pool size is used along both axes, so it must fit the narrower one.
    if isinstance(pool, int) and padding == "valid":
        pool = min(pool, h, w)
    strides = draw(st.none() | upto(3) | st.tuples(upto(3), upto(3)))
    return draw(values((n, h, w, c))), pool, strides, padding


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_case(max_batch=3, max_side=7, max_channels=3))
def test_pool_matches_the_loop_reference(kind, case):
    x, pool, strides, padding = case
    op, reference = POOLS[kind]
    y = op(x, pool_size=pool, strides=strides, padding=padding)
    np.testing.assert_allclose(y.data, reference(x, pool, strides, padding), rtol=1e-13, atol=1e-13)


@given(pool_case(max_batch=2, max_side=5, max_channels=2, values=distinct_arrays))
def test_max_pool2d_gradients(case):
    # Distinct values: no ties, so a small step never moves a window's maximum.
    x, pool, strides, padding = case
    check_gradients(
        lambda t: td.ops.max_pool2d(t, pool_size=pool, strides=strides, padding=padding), x
    )


@given(pool_case(max_batch=2, max_side=5, max_channels=2))
def test_avg_pool2d_gradients(case):
    x, pool, strides, padding = case
    check_gradients(
        lambda t: td.ops.avg_pool2d(t, pool_size=pool, strides=strides, padding=padding), x
    )


def test_max_pool2d_routes_a_tie_to_the_first_maximum():
    # One 2x2 window holding 5 three times: the gradient goes to the first in row-major order.
    x = td.Tensor(np.array([[0.0, 5.0], [5.0, 5.0]]).reshape(1, 2, 2, 1), requires_grad=True)
    td.ops.max_pool2d(x).sum().backward()
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_overlapping_windows_add_their_gradients():
    # 3x3 windows at stride 1 over a 4x4 image: the centre 2x2 pixels lie in all four windows.
    x = td.Tensor(np.ones((1, 4, 4, 1)), requires_grad=True)
    td.ops.avg_pool2d(x, pool_size=3, strides=1).sum().backward()
    expected = np.outer([1, 2, 2, 1], [1, 2, 2, 1]) / 9
    np.testing.assert_allclose(x.grad[0, :, :, 0], expected, rtol=1e-15)


def test_same_padding_never_counts():
    # H = W = 5, window 3, stride 2: TensorFlow pads one row and column on each side.
    negative = -np.arange(1.0, 26.0).reshape(1, 5, 5, 1)
    y = td.ops.max_pool2d(negative, pool_size=3, strides=2, padding="same")
    assert y.shape == (1, 3, 3, 1)
    assert y.data[0, 0, 0, 0] == -1.0  # the max of the real pixels, not the -inf (or 0) pad

    y = td.ops.avg_pool2d(np.ones((1, 5, 5, 1)), pool_size=3, strides=2, padding="same")
    np.testing.assert_array_equal(y.data, np.ones((1, 3, 3, 1)))  # PyTorch's default: 4/9


def test_pool_keeps_float32_and_defaults_strides_to_the_pool_size():
    x = np.ones((2, 6, 6, 3), np.float32)
    for op in (td.ops.max_pool2d, td.ops.avg_pool2d):
        y = op(x, pool_size=(3, 2))
        assert y.shape == (2, 2, 3, 3) and y.dtype == np.float32


@pytest.mark.parametrize("op", [td.ops.max_pool2d, td.ops.avg_pool2d], ids=lambda op: op.__name__)
@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((4, 4, 3), {}, r"x must be 4-D \(N, H, W, C\), got shape \(4, 4, 3\)"),
        ((1, 4, 4, 1), {"padding": 1}, r"padding must be 'valid' or 'same', got 1"),
        (
            (1, 1, 4, 1),
            {},
            (
                r"pool_size 2x2 is larger than the padded input 1x4 "
                r"\(x shape \(1, 1, 4, 1\), padding 'valid'\)"
            ),
        ),
        ((1, 4, 4, 1), {"pool_size": 0}, r"pool_size must be an int >= 1 or a pair of them"),
        ((1, 4, 4, 1), {"strides": (2, 0)}, r"strides must be an int >= 1 .* \(2, 0\)"),
    ],
)
def test_pool_errors_name_the_op_and_the_argument(op, shape, kwargs, message):
    with pytest.raises(ValueError, match=rf"{op.__name__}: {message}"):
        op(np.ones(shape), **kwargs)


# ---- a backward's arrays that do not fit the cache's geometry ---------------------------------
# The Numba and CUDA kernels read dy and argmax by the cache's x_shape and window, with no
# bounds checks: each misfit is an error before the reference or a kernel runs.

X = np.random.default_rng(7).standard_normal((2, 5, 4, 3))  # N, H, W, C; windows 2x2 -> 2x2


def misfit(shape) -> str:
    return rf"must have shape \(N, OH, OW, C\) = \(2, 2, 2, 3\), got shape {re.escape(str(shape))}"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(1, 2, 2, 3), (2, 2, 2, 4), (2, 3, 2, 3), (2, 2, 2)])
def test_max_pool2d_backward_rejects_dy_and_argmax_that_do_not_fit(path, shape):
    with PATHS[path]():
        y, (argmax, x_shape, window) = max_pool2d_forward(X)
        with pytest.raises(ValueError, match="max_pool2d_backward: dy " + misfit(shape)):
            max_pool2d_backward(np.ones(shape), (argmax, x_shape, window))
        with pytest.raises(ValueError, match="max_pool2d_backward: argmax " + misfit(shape)):
            max_pool2d_backward(y, (np.zeros(shape, np.int64), x_shape, window))
        (dx,) = max_pool2d_backward(y, (argmax, x_shape, window))  # the cache as made
    assert dx.shape == X.shape


@pytest.mark.parametrize("path", PATHS)
def test_max_pool2d_backward_rejects_a_float_argmax_and_a_foreign_window(path):
    with PATHS[path]():
        y, (argmax, x_shape, window) = max_pool2d_forward(X)
        with pytest.raises(
            TypeError, match="max_pool2d_backward: argmax must be an integer array.*float64"
        ):
            max_pool2d_backward(y, (argmax.astype(np.float64), x_shape, window))
        wider = window_geometry("test", (2, 9, 9, 3), (2, 2), (2, 2), "valid")  # 4x4 out
        with pytest.raises(
            ValueError,
            match=r"max_pool2d_backward: the window's output 4x4 does not fit x_shape "
            r"\(2, 5, 4, 3\)",
        ):
            max_pool2d_backward(
                np.ones((2, 4, 4, 3)), (np.zeros((2, 4, 4, 3), int), x_shape, wider)
            )


@pytest.mark.parametrize("path", PATHS)
def test_avg_pool2d_backward_rejects_a_dy_that_does_not_fit(path):
    with PATHS[path]():
        y, cache = avg_pool2d_forward(X)
        with pytest.raises(ValueError, match="avg_pool2d_backward: dy " + misfit((2, 2, 2, 1))):
            avg_pool2d_backward(np.ones((2, 2, 2, 1)), cache)
        (dx,) = avg_pool2d_backward(y, cache)
    assert dx.shape == X.shape

"""kernels/cpu/pool.py: the max pooling kernels against the references they replace in
tinydeep/ops/pool.py (max_pool2d_argmax, max_pool2d_backward), exactly, and the whole
max_pool2d op with kernels on against `reference_only()`.

Both kernels keep the reference's cache, (argmax, x_shape, window), so a forward of either kind
may meet a backward of either kind: the tests cross them.
"""

from __future__ import annotations

import numpy as np
import tinydeep_kernels.cpu as kernels
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinydeep as td
from tinydeep.backend import reference_only
from tinydeep.ops import pool
from tinydeep.ops.conv import window_geometry

DTYPES = [np.float32, np.float64]


def upto(high: int) -> st.SearchStrategy:
    """1..high, drawn evenly."""
    return st.sampled_from(range(1, high + 1))


@st.composite
def pool_case(draw):
    """x (N, H, W, C), the Window, pool_size, strides and padding: windows 1-3, strides 1-3 or
    None (the window), "valid" or "same". Values on a coarse grid, so windows hold ties."""
    padding = draw(st.sampled_from(["valid", "same"]))
    n, h, w, c = draw(upto(3)), draw(upto(7)), draw(upto(7)), draw(upto(4))
    fits_h, fits_w = (3, 3) if padding == "same" else (min(3, h), min(3, w))
    size = (draw(upto(fits_h)), draw(upto(fits_w)))
    strides = draw(st.none() | st.tuples(upto(3), upto(3)))
    window = window_geometry("max_pool2d", (n, h, w, c), size, strides or size, padding)
    x = draw(hnp.arrays(np.int64, (n, h, w, c), elements=st.integers(-4, 4)))
    return x.astype(draw(st.sampled_from(DTYPES))), window, size, strides, padding


def dy_for(window, x, seed: int = 0):
    """A random gradient of the pooled output, in x's dtype."""
    shape = (x.shape[0], *window.out, x.shape[3])
    return np.random.default_rng(seed).standard_normal(shape).astype(x.dtype)


@given(pool_case())
def test_max_pool2d_kernels_match_the_references_exactly(case):
    x, window, *_ = case
    y, argmax = kernels.max_pool2d_argmax(x, window)
    y_ref, argmax_ref = pool.max_pool2d_argmax.reference(x, window)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)  # ties: the first maximum, as the ref
    assert y.dtype == y_ref.dtype and argmax.dtype == argmax_ref.dtype
    dy = dy_for(window, x)
    cache, cache_ref = (argmax, x.shape, window), (argmax_ref, x.shape, window)
    (dx,) = kernels.max_pool2d_backward(dy, cache_ref)  # crossed: the reference's cache
    (dx_ref,) = pool.max_pool2d_backward.reference(dy, cache)  # and the kernel's
    np.testing.assert_array_equal(dx, dx_ref)
    assert dx.dtype == dx_ref.dtype


@given(pool_case())
def test_max_pool2d_kernels_on_non_contiguous_arrays_and_nan(case):
    x, window, *_ = case
    x = x[:, :, ::-1]  # a reversed W axis: a non-contiguous view
    if x.size > 1:
        x = x.copy()
        x.flat[x.size // 2] = np.nan  # NaN is the maximum, as in NumPy's argmax
    y, argmax = kernels.max_pool2d_argmax(x, window)
    y_ref, argmax_ref = pool.max_pool2d_argmax.reference(x, window)
    np.testing.assert_array_equal(y, y_ref)  # NaNs in the same places count as equal
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = dy_for(window, x)[:, ::-1]
    (dx,) = kernels.max_pool2d_backward(dy, (argmax, x.shape, window))
    np.testing.assert_array_equal(
        dx, pool.max_pool2d_backward.reference(dy, (argmax, x.shape, window))[0]
    )


def test_max_pool2d_kernels_on_integers():
    x = np.random.default_rng(1).integers(-100, 100, (2, 5, 6, 3)).astype(np.int32)
    window = window_geometry("max_pool2d", x.shape, (3, 2), (2, 2), "same")
    for got, expected in zip(
        kernels.max_pool2d_argmax(x, window), pool.max_pool2d_argmax.reference(x, window)
    ):
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype


@given(pool_case())
def test_max_pool2d_op_is_the_same_with_kernels_and_under_reference_only(case):
    x, window, size, strides, padding = case
    dy = dy_for(window, x)

    def run():
        xt = td.Tensor(x, requires_grad=True)
        y = td.ops.max_pool2d(xt, pool_size=size, strides=strides, padding=padding)
        y.backward(dy)
        return y.data, xt.grad

    with_kernels = run()
    with reference_only():
        reference = run()
    for got, expected in zip(with_kernels, reference):
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == x.dtype

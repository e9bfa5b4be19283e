"""kernels/cpu/normalization.py against tinydeep/ops/normalization.py, its reference.

Each kernel on hypothesis-drawn shapes (2-D and 4-D, a batch of one, odd sides), float32 and
float64, data centred at 0 or at 1e3; a non-contiguous input; the moments of a large float32
batch against float64 (where the reference itself, summing row by row in float32, is off by
1e-5); the training-mode gradients with the kernels on.
"""

from __future__ import annotations

import numpy as np
import pytest
import tinydeep_kernels.cpu.normalization as kernels
from gradients import check_gradients
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinydeep import backend, ops
from tinydeep.ops import normalization as reference_module

REF = {
    name: getattr(reference_module, name).reference
    for name in ("batch_moments", "batch_norm_normalize", "batch_norm_backward")
}


def kernel_forward(x, gamma, beta, **stats):
    """batch_norm_forward: the reference's checks, then the kernel's batch_norm_normalize."""
    return reference_module.batch_norm_forward(x, gamma, beta, **stats)


def reference_forward(x, gamma, beta, **stats):
    with backend.reference_only():
        return reference_module.batch_norm_forward(x, gamma, beta, **stats)


RTOL = {np.float32: 1e-6, np.float64: 1e-12}


@st.composite
def case(draw):
    """x (N, C) or (N, H, W, C) of dtype float32 or float64, around 0 or 1e3, with spread
    at most 3; gamma, beta (C,); dy like x."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(
        st.tuples(st.integers(1, 9), st.integers(1, 70))
        | st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 17))
    )
    offset = draw(st.sampled_from([0.0, 1e3]))
    values = st.floats(-3, 3, width=32)
    x = draw(hnp.arrays(dtype, shape, elements=values)) + dtype(offset)
    dy = draw(hnp.arrays(dtype, shape, elements=values))
    gamma = draw(hnp.arrays(dtype, shape[-1:], elements=values))
    beta = draw(hnp.arrays(dtype, shape[-1:], elements=values))
    return x, dy, gamma, beta


CANCELLING = np.array([[-2.75], [0.9198552], [0.9198552], [0.9198552]], np.float32)  # mean 0.0024


@settings(max_examples=40)
@given(case())
@example((CANCELLING, CANCELLING, CANCELLING[0], CANCELLING[0]))  # found by hypothesis in CI
def test_batch_moments_match_the_reference(case):
    x = case[0]
    rtol = RTOL[x.dtype.type]
    mean, var = kernels.batch_moments(x)
    ref_mean, ref_var = REF["batch_moments"](x)
    assert mean.dtype == var.dtype == x.dtype
    # Summing rounds at the scale of the values, not of their mean: a mean near 0 from
    # values near 3 (-2.75 and three 0.92s) can differ from the reference's in its 4th digit.
    scale = np.abs(x).reshape(-1, x.shape[-1]).max(axis=0)  # (C,) the largest value
    assert (np.abs(mean - ref_mean) <= rtol * scale).all(), (mean, ref_mean, scale)
    # A variance can be 0; its scale is the spread of the drawn values (at most 3**2 = 9).
    np.testing.assert_allclose(var, ref_var, rtol=rtol, atol=rtol * 9)


SUBNORMAL_GAMMA = (  # found by hypothesis: the reference's dx is 3 subnormal steps off
    np.zeros((7, 1), np.float32),
    np.array([[0], [1], [1], [1], [1], [1], [1]], np.float32),
    np.array([1e-45], np.float32),
    np.zeros(1, np.float32),
)


@settings(max_examples=40)
@given(case())
@example(SUBNORMAL_GAMMA)
def test_forward_and_backward_match_the_reference(case):
    x, dy, gamma, beta = case
    rtol = RTOL[x.dtype.type]
    mean, var = REF["batch_moments"](x)
    y, cache = kernel_forward(x, gamma, beta, mean=mean, var=var)
    ref_y, ref_cache = reference_forward(x, gamma, beta, mean=mean, var=var)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, ref_y, rtol=rtol, atol=rtol)
    for mine, theirs in zip(cache, ref_cache):
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=rtol)

    dx, dgamma, dbeta = kernels.batch_norm_backward(dy, ref_cache)
    ref_dx, ref_dgamma, ref_dbeta = REF["batch_norm_backward"](dy, ref_cache)
    assert dx.dtype == dgamma.dtype == dbeta.dtype == x.dtype
    # Sums of M terms: their error scale is the sum of the terms' sizes. dx is a difference
    # of per-element terms of size gamma * inv_std * |dy| (x_hat is at most sqrt(M)).
    m = x.size // x.shape[-1]
    axes = tuple(range(x.ndim - 1))
    np.testing.assert_allclose(dbeta, ref_dbeta, rtol=rtol, atol=rtol * 3 * m)
    np.testing.assert_allclose(dgamma, ref_dgamma, rtol=rtol, atol=rtol * 3 * m**1.5)
    _, _, inv_std = ref_cache
    scale = np.abs(gamma * inv_std).max() * 3 * (1 + np.sqrt(m))
    # Where gamma is subnormal, dx is too. The reference rounds gamma * inv_std / M to a
    # whole number of subnormal steps s (off by up to s / 2) before multiplying it by the
    # bracket M * dy - dbeta - x_hat * dgamma; the kernel rounds once, from float64. So the
    # reference's own error there is up to s / 2 times the bracket's size, plus s.
    s = np.finfo(x.dtype).smallest_subnormal
    x_hat = ref_cache[0]
    bracket = m * np.abs(dy) + np.abs(ref_dbeta) + np.abs(x_hat * ref_dgamma)
    floor = s * (1 + bracket / 2)
    assert np.all(np.abs(dx - ref_dx) <= rtol * (scale + np.abs(ref_dx)) + floor)
    np.testing.assert_allclose(dbeta, dy.astype(np.float64).sum(axis=axes), rtol=rtol, atol=rtol)


def test_backward_without_an_input_gradient_skips_dx():
    x = np.random.default_rng(0).standard_normal((5, 3))
    _, cache = kernel_forward(x, np.ones(3), np.zeros(3), mean=x.mean(0), var=x.var(0))
    dx, dgamma, dbeta = kernels.batch_norm_backward(x, cache, needs_grad=(False, True, True))
    assert dx is None and dgamma.shape == dbeta.shape == (3,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_inputs(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 5, 8)).astype(dtype)[:, ::2, :, 1::2]  # a strided view
    dy = rng.standard_normal((4, 5, 3, 4)).astype(dtype).transpose(0, 2, 1, 3)
    gamma, beta = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    rtol = RTOL[dtype]
    for mine, theirs in zip(kernels.batch_moments(x), REF["batch_moments"](x)):
        np.testing.assert_allclose(mine, theirs, rtol=rtol)
    mean, var = REF["batch_moments"](x)
    y, cache = kernel_forward(x, gamma, beta, mean=mean, var=var)
    np.testing.assert_allclose(
        y, reference_forward(x, gamma, beta, mean=mean, var=var)[0], rtol=rtol, atol=rtol
    )
    for mine, theirs in zip(
        kernels.batch_norm_backward(dy, cache), REF["batch_norm_backward"](dy, cache)
    ):
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=rtol * 100)


def test_float32_moments_of_a_large_batch_far_from_zero_keep_float64_accuracy():
    x = (1e3 + np.random.default_rng(2).standard_normal((64, 8, 8, 16))).astype(np.float32)
    exact = x.astype(np.float64)
    exact_mean = exact.mean(axis=(0, 1, 2))
    exact_var = ((exact - exact_mean) ** 2).mean(axis=(0, 1, 2))
    mean, var = kernels.batch_moments(x)
    np.testing.assert_allclose(mean, exact_mean, rtol=1e-6)
    np.testing.assert_allclose(var, exact_var, rtol=1e-6)


def test_float64_moments_keep_their_digits_far_from_zero():
    x = 1e8 + np.random.default_rng(3).standard_normal((1000, 3))
    mean, var = kernels.batch_moments(x)
    np.testing.assert_allclose(var, (x - x.mean(axis=0)).var(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-15)


def test_training_mode_gradients_with_the_kernels_on():
    rng = np.random.default_rng(4)
    x, gamma, beta = rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3), rng.random(3)

    def fn(t, g, b):
        return ops.batch_norm(t, g, b)[0]  # the moments too are the kernel's, through dispatch

    check_gradients(fn, x, gamma, beta)

"""tinydeep/ops/normalization.py: batch norm in training mode, its fused backward, batch_moments.

The gradient checks recompute the moments from the perturbed input inside fn: in training mode
the mean and variance are functions of x, and the fused backward says so.

Mixed dtypes promote as NumPy promotes them, on the reference path and with the CPU kernels
on, and every kernel is handed operands of one dtype (the CUDA kernels take nothing else);
a dy of another shape or dtype than y is an error before any kernel runs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tinydeep_kernels.cpu
from devices import TORCH_SKIP_REASON
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from kernel_settings import PATHS, cpu_kernel
from strategies import arrays, floats

import tinydeep as td
from tinydeep import ops
from tinydeep.ops.normalization import (
    batch_moments,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_normalize,
)


def training_batch_norm(epsilon=1e-3):
    """fn(x, gamma, beta) -> y of the op, which takes the moments of x itself; they come back
    beside y, and must be batch_moments(x), exactly."""

    def fn(t, gamma, beta):
        y, mean, var = ops.batch_norm(t, gamma, beta, epsilon=epsilon)
        for got, want in zip((mean, var), batch_moments(t.data)):
            np.testing.assert_array_equal(got, want)
        return y

    return fn


def numpy_batch_norm(x, gamma, beta, epsilon):
    axes = tuple(range(x.ndim - 1))
    return (x - x.mean(axis=axes)) / np.sqrt(x.var(axis=axes) + epsilon) * gamma + beta


@st.composite
def batch_norm_case(draw):
    """x (N, C) or (N, H, W, C) with tiny sides (N = 1 included), gamma, beta, epsilon."""
    side = st.integers(1, 3)
    shape = draw(
        st.tuples(st.integers(1, 4), side)
        | st.tuples(st.integers(1, 2), side, side, st.integers(1, 2))
    )
    channels = (shape[-1],)
    x = draw(arrays(shape))
    gamma = draw(arrays(channels, floats(-2.0, 2.0)))
    beta = draw(arrays(channels))
    return x, gamma, beta, draw(st.sampled_from([1e-3, 0.1]))


@given(batch_norm_case())
def test_batch_norm_forward_and_training_mode_gradients(case):
    x, gamma, beta, epsilon = case
    y = check_gradients(training_batch_norm(epsilon), x, gamma, beta)
    np.testing.assert_allclose(
        y.data, numpy_batch_norm(x, gamma, beta, epsilon), rtol=1e-12, atol=1e-12
    )


@given(batch_norm_case())
def test_batch_moments_are_the_biased_moments_over_all_but_the_last_axis(case):
    x = case[0]
    axes = tuple(range(x.ndim - 1))
    mean, var = batch_moments(x)
    np.testing.assert_allclose(mean, x.mean(axis=axes), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(var, x.var(axis=axes), rtol=1e-12, atol=1e-15)


def test_batch_moments_keep_their_digits_far_from_zero():
    x = 1e8 + np.random.default_rng(0).standard_normal((1000, 3))
    _, var = batch_moments(x)
    np.testing.assert_allclose(var, (x - x.mean(axis=0)).var(axis=0), rtol=1e-6)


def test_one_example_of_many_pixels_is_normalized_over_the_pixels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 2, 2))
    gamma, beta = np.ones(2), np.zeros(2)
    y = check_gradients(training_batch_norm(), x, gamma, beta)
    np.testing.assert_allclose(y.data.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    assert np.all(np.isfinite(y.data)) and np.all(y.data.std(axis=(0, 1, 2)) > 0.9)


def test_one_example_of_a_dense_layer_gives_beta_and_no_input_gradient():
    # A batch of one has variance 0: x_hat = 0 / sqrt(epsilon) = 0, so y = beta exactly.
    x = td.Tensor(np.array([[3.0, -1.0, 7.0]]), requires_grad=True)
    gamma = td.Tensor(np.array([2.0, 0.5, -1.0]), requires_grad=True)
    beta = td.Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
    y = training_batch_norm()(x, gamma, beta)
    np.testing.assert_array_equal(y.data, [beta.data])
    (y * td.Tensor(np.array([[1.0, 2.0, 3.0]]))).sum().backward()
    np.testing.assert_array_equal(x.grad, 0)
    np.testing.assert_array_equal(gamma.grad, 0)
    np.testing.assert_array_equal(beta.grad, [1.0, 2.0, 3.0])


def test_float32_stays_float32_and_data_needing_no_gradient_is_skipped():
    rng = np.random.default_rng(2)
    x = td.Tensor(rng.standard_normal((4, 2, 2, 3)).astype(np.float32))  # the data batch
    gamma = td.Tensor(np.ones(3, np.float32), requires_grad=True)
    beta = td.Tensor(np.zeros(3, np.float32), requires_grad=True)
    y = training_batch_norm()(x, gamma, beta)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert gamma.grad.dtype == beta.grad.dtype == np.float32
    assert x.grad is None
    # d/dgamma sum(y**2) = 2 sum(x_hat**2) = 2 M var / (var + eps) per channel
    _, var = batch_moments(x.data.astype(np.float64))
    np.testing.assert_allclose(gamma.grad, 2 * 16 * var / (var + 1e-3), rtol=1e-5)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 3), (1, 2, 3, 3)])
def test_batch_norm_matches_torch_training_mode(shape):
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    leaves = [td.Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    y = training_batch_norm(1e-3)(*leaves)
    y.backward(dy)

    def channels_first(a):  # torch normalizes axis 1: NHWC -> NCHW
        return torch.tensor(np.moveaxis(a, -1, 1) if a.ndim == 4 else a)

    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    xt_in = xt.permute(0, 3, 1, 2) if len(shape) == 4 else xt
    yt = torch.nn.functional.batch_norm(xt_in, None, None, gt, bt, training=True, eps=1e-3)
    yt.backward(channels_first(dy))
    yt = yt.detach().numpy()
    np.testing.assert_allclose(y.data, np.moveaxis(yt, 1, -1) if yt.ndim == 4 else yt, atol=1e-12)
    for ours, theirs in zip(leaves, (xt, gt, bt)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_errors_name_the_op_the_argument_and_the_shapes():
    x, c = np.ones((4, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have shape \(3,\).*got \(2,\)"):
        ops.batch_norm(td.Tensor(x), np.ones(2), c)
    with pytest.raises(ValueError, match=r"batch_norm: beta must have shape \(3,\).*got \(4,\)"):
        ops.batch_norm(x, c, np.ones(4))  # an array is taken as a Tensor
    with pytest.raises(ValueError, match=r"batch_moments: x must be \(N, .*got shape \(3,\)"):
        ops.batch_norm(c, c, c)
    with pytest.raises(TypeError, match="mean"):  # the array forward: the moments are required
        batch_norm_forward(x, c, c)
    with pytest.raises(ValueError, match=r"batch_norm: var must have shape \(3,\).*got \(4,\)"):
        batch_norm_forward(x, c, c, mean=c, var=np.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: x must be \(N, C\).*got shape \(3,\)"):
        batch_norm_forward(c, c, c, mean=c, var=c)
    with pytest.raises(ValueError, match=r"batch_moments: .*got shape \(3,\)"):
        batch_moments(c)


# ---- dtypes ---------------------------------------------------------------------------------

# (x's dtype, the dtype of gamma and beta): float64 data through float32 weights and the
# other way round, integer data, and one float16 operand.
MIXED = [
    (np.float64, np.float32),
    (np.float32, np.float64),
    (np.int64, np.float32),
    (np.int32, np.float64),
    (np.float32, np.float16),
]


def mixed_case(x_dtype, weight_dtype, shape=(3, 2, 2, 4)):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3).astype(x_dtype)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    return x, gamma.astype(weight_dtype), beta.astype(weight_dtype), rng.standard_normal(shape)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("x_dtype", "weight_dtype"), MIXED)
def test_mixed_dtypes_promote_as_numpy_does(path, x_dtype, weight_dtype):
    """y in NumPy's common dtype of the operands, as the formula computes it there; each
    gradient in the dtype of its input."""
    x, gamma, beta, dy = mixed_case(x_dtype, weight_dtype)
    dtype = np.result_type(x, gamma, batch_moments(x)[0])
    leaves = [td.Tensor(x), td.Tensor(gamma, requires_grad=True), td.Tensor(beta, True)]
    with PATHS[path]():
        y = training_batch_norm()(*leaves)
        y.backward(dy)
    assert y.dtype == dtype
    # float32 data takes its moments in float32 (batch_moments keeps x's dtype), so the
    # result is float64 only to float32's digits then; the expected formula runs in float64.
    inexact = {x.dtype, gamma.dtype} & {np.dtype(np.float32), np.dtype(np.float16)}
    tol = 1e-5 if inexact else 1e-12
    expected = numpy_batch_norm(*(a.astype(dtype) for a in (x, gamma, beta)), 1e-3)
    np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol)
    assert leaves[1].grad.dtype == leaves[2].grad.dtype == weight_dtype


@pytest.mark.parametrize(("x_dtype", "weight_dtype"), MIXED)
def test_every_kernel_is_handed_operands_of_one_dtype(x_dtype, weight_dtype):
    """The CUDA kernels declare every operand as one type T, and CuPy casts no array to it:
    the op promotes before dispatch, so no kernel ever gets two dtypes. Stand-ins for the CPU
    kernels check that, then run them."""
    seen = {}

    def one_dtype(name: str):
        kernel = getattr(tinydeep_kernels.cpu, name)

        def stand_in(*args, **kwargs):
            flat = [a for arg in args for a in (arg if isinstance(arg, tuple) else (arg,))]
            seen[name] = {a.dtype.name for a in flat if hasattr(a, "dtype")}  # cache included
            return kernel(*args, **kwargs)

        return stand_in

    x, gamma, beta, dy = mixed_case(x_dtype, weight_dtype)
    normalize, backward = "batch_norm_normalize", "batch_norm_backward"
    with cpu_kernel(normalize, one_dtype(normalize)), cpu_kernel(backward, one_dtype(backward)):
        y = training_batch_norm()(td.Tensor(x), td.Tensor(gamma, True), td.Tensor(beta, True))
        y.backward(dy)
    assert sorted(seen) == [backward, normalize]
    assert all(len(dtypes) == 1 for dtypes in seen.values()), seen


@pytest.mark.parametrize("path", PATHS)
def test_operands_that_promote_to_no_float_are_an_error(path):
    x, c = np.ones((4, 3), np.int64), np.ones(3, np.int64)
    message = (
        r"batch_norm: expected operands that promote to a floating-point dtype, got x int64, "
        r"gamma int64, beta int64, mean int64, var int64, which promote to int64"
    )
    with PATHS[path](), pytest.raises(TypeError, match=message):
        batch_norm_forward(x, c, c, mean=c, var=c)


@pytest.mark.parametrize("path", PATHS)
def test_a_dy_of_another_shape_or_dtype_than_y_is_an_error(path):
    """dy is y's gradient: y's shape and dtype (tinydeep/tensor.py casts it so). The kernels
    read dy beside x_hat element by element, so another shape would be read out of bounds."""
    x, gamma, beta, dy = mixed_case(np.float32, np.float32)
    with PATHS[path]():
        y, cache = batch_norm_forward(x, gamma, beta, mean=x.mean((0, 1, 2)), var=x.var((0, 1, 2)))
        for bad in (dy[:2], dy[..., :3], dy.reshape(-1, 4)):
            with pytest.raises(
                ValueError,
                match=r"batch_norm_backward: dy must have the shape of the forward's y, "
                rf"\(3, 2, 2, 4\), got shape {re.escape(str(bad.shape))}",
            ):
                batch_norm_backward(bad.astype(np.float32), cache)
        with pytest.raises(
            TypeError,
            match="batch_norm_backward: dy must have the dtype of the forward's y, float32, "
            "got float64",
        ):
            batch_norm_backward(dy, cache)
        x_hat, gamma, inv_std = cache
        with pytest.raises(ValueError, match=r"the cache's gamma must have shape \(4,\)"):
            batch_norm_backward(y, (x_hat, gamma[:3], inv_std))
        with pytest.raises(TypeError, match="the cache's inv_std must have the dtype .* float32"):
            batch_norm_backward(y, (x_hat, gamma, inv_std.astype(np.float64)))
        dx, dgamma, _ = batch_norm_backward(dy.astype(np.float32), cache)  # as a control
    assert dx.shape == x.shape and dgamma.dtype == np.float32


def test_the_forward_keeps_one_dtype_without_copies():
    """Operands already in one dtype are not copied by the promotion."""
    x, gamma, beta, _ = mixed_case(np.float32, np.float32)
    mean, var = batch_moments(x)
    y, (x_hat, cached_gamma, _) = batch_norm_forward(x, gamma, beta, mean=mean, var=var)
    assert cached_gamma is gamma and y.dtype == x_hat.dtype == np.float32
    np.testing.assert_array_equal(
        y, batch_norm_normalize.reference(x, gamma, beta, mean, 1 / np.sqrt(var + 1e-3))[0]
    )

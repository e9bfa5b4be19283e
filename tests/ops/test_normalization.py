"""tinydeep/ops/normalization.py: batch norm in training mode, its fused backward, batch_moments.

The gradient checks recompute the moments from the perturbed input inside fn: in training mode
the mean and variance are functions of x, and the fused backward says so.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, floats

import tinydeep as td
from tinydeep import ops
from tinydeep.ops.normalization import batch_moments


def training_batch_norm(epsilon=1e-3):
    """fn(x, gamma, beta) that takes the moments of x itself, as the BatchNorm layer does."""

    def fn(t, gamma, beta):
        mean, var = batch_moments(t.data)
        return ops.batch_norm(t, gamma, beta, mean=mean, var=var, epsilon=epsilon)

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
    torch = pytest.importorskip("torch")
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
        ops.batch_norm(x, np.ones(2), c, mean=c, var=c)
    with pytest.raises(ValueError, match=r"batch_norm: var must have shape \(3,\).*got \(4,\)"):
        ops.batch_norm(x, c, c, mean=c, var=np.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: x must be \(N, C\).*got shape \(3,\)"):
        ops.batch_norm(c, c, c, mean=c, var=c)
    with pytest.raises(TypeError, match="mean"):  # the moments are required keywords
        ops.batch_norm(x, c, c)
    with pytest.raises(ValueError, match=r"batch_moments: .*got shape \(3,\)"):
        batch_moments(c)

"""tinydeep/layers/normalization.py: BatchNormalization with Keras's semantics; a batch of
another floating dtype than the weights promotes, as through Dense, on the reference path and
with the CPU kernels on."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_layer_gradients
from hypothesis import given
from hypothesis import strategies as st
from kernel_settings import PATHS

import tinydeep as td
from tinydeep.layers import BatchNorm, BatchNormalization, Dense


@st.composite
def batch(draw):
    shape = draw(st.sampled_from([(3, 2), (4, 1), (2, 2, 2, 2), (1, 2, 3, 2), (2, 1, 1, 3)]))
    seed = draw(st.integers(0, 2**16))
    return np.random.default_rng(seed).standard_normal(shape) * 2 + 1


@given(batch())
def test_training_normalizes_with_batch_statistics_and_updates_moving_ones(x):
    bn = BatchNormalization(momentum=0.9, epsilon=1e-3)
    y = bn(x, training=True)
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)  # biased variance, as Keras
    np.testing.assert_allclose(y.data, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bn.moving_mean.data, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.data, 0.9 + 0.1 * var, rtol=1e-12)


@given(batch(), st.booleans())
def test_gradients_in_training_and_inference(x, training):
    bn = BatchNormalization()
    bn(x)  # build, then give gamma, beta and the moving statistics non-trivial values
    rng = np.random.default_rng(0)
    for w in (bn.gamma, bn.beta, bn.moving_mean):
        w.data[...] = rng.standard_normal(w.shape)
    bn.moving_variance.data[...] = rng.uniform(0.5, 2.0, bn.moving_variance.shape)
    assert check_layer_gradients(bn, x, training=training)


def test_inference_uses_the_moving_statistics():
    bn = BatchNorm()
    x = np.arange(12.0).reshape(4, 3)
    bn(x, training=True)
    y = bn(x, training=False)
    expected = (x - bn.moving_mean.data) / np.sqrt(bn.moving_variance.data + 1e-3)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


def test_one_value_per_channel_cannot_train_and_changes_nothing():
    bn = BatchNormalization(name="bn")
    bn(np.ones((2, 3)))
    with pytest.raises(
        ValueError,
        match="BatchNormalization 'bn': training needs more than one "
        r"value per channel .* shape \(1, 3\)",
    ):
        bn(np.ones((1, 3)), training=True)
    np.testing.assert_array_equal(bn.moving_mean.data, 0.0)
    with pytest.raises(ValueError, match=r"expected an input of 2 or 4 dimensions"):
        bn(np.ones((2, 2, 3)))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("data", [np.float64, np.float16])
def test_a_batch_of_another_float_dtype_promotes_as_through_dense(path, data):
    """A layer built in float32 and given float64 (or float16) data computes in NumPy's
    common dtype, as Dense does; its weights and moving statistics stay float32."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((6, 2, 2, 3)) * 2 + 1).astype(data)
    bn = BatchNormalization(momentum=0.9, name="bn")
    bn(x.astype(np.float32))  # built in float32, on float32 data
    bn.gamma.data[...] = rng.standard_normal(3)
    dtype = np.result_type(data, np.float32)
    with PATHS[path]():
        y = bn(td.Tensor(x), training=True)
        y.sum().backward()
        inference = bn(td.Tensor(x), training=False)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = (x - mean) / np.sqrt(var + 1e-3) * bn.gamma.data.astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-3
    assert y.dtype == inference.dtype == dtype
    np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol)
    assert bn.gamma.grad.dtype == bn.moving_mean.dtype == bn.moving_variance.dtype == np.float32
    np.testing.assert_allclose(bn.moving_mean.data, 0.1 * mean, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bn.moving_variance.data, 0.9 + 0.1 * var, rtol=1e-3)
    dense = Dense(2)
    dense(x.astype(np.float32))
    assert dense(x).dtype == dtype  # the same rule


def test_a_batch_of_integers_is_an_error_naming_the_layer_and_changes_nothing():
    bn = BatchNormalization(name="bn")
    bn(np.ones((2, 3), np.float32))
    before = [w.data.copy() for w in bn.weights]
    with pytest.raises(
        TypeError, match="BatchNormalization 'bn': expected a floating-point input, got dtype int64"
    ):
        bn(np.ones((4, 3), np.int64), training=True)
    assert all((w.data == b).all() for w, b in zip(bn.weights, before))

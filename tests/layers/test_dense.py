"""tinydeep/layers/dense.py: Dense against NumPy; gradients of input, kernel and bias."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_layer_gradients
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import arrays, shapes
from weights import randomize_constant_weights

import tinydeep as td
from tinydeep.layers import Dense

KINK_MARGIN = 1e-3  # how far every relu pre-activation stays from 0 (eps is 1e-6)


def bias_off_the_kink(z: np.ndarray) -> np.ndarray:
    """A bias per unit that keeps every pre-activation z + bias at least KINK_MARGIN from
    relu's kink at 0 where it can: the middle of the widest gap between a unit's values of z,
    so that some rows are active and some not; below them all when no gap is wide enough."""
    bias = np.empty(z.shape[-1])
    for j in range(z.shape[-1]):
        values = np.sort(z[..., j].ravel())
        middles = (values[:-1] + values[1:]) / 2
        widths = np.diff(values) / 2
        best = int(np.argmax(widths)) if widths.size else -1
        cut = middles[best] if best >= 0 and widths[best] >= KINK_MARGIN else values[0] - 1
        bias[j] = -cut
    return bias


@given(
    st.data(),
    st.integers(1, 3),
    st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax"]),
    st.booleans(),
)
def test_dense(data, units, activation, use_bias):
    x = data.draw(arrays(shapes(min_dims=1, max_dims=3)))
    layer = Dense(units, activation=activation, use_bias=use_bias)
    layer(x)  # build in float64, then give the bias values (it starts at zero)
    seed = data.draw(st.integers(0, 2**16))
    randomize_constant_weights(layer, seed=seed)
    if activation == "relu" and use_bias:
        layer.bias.data[...] = bias_off_the_kink(x @ layer.kernel.data)
    elif activation == "relu":  # no bias to move: x in general position, then check
        x = x + np.random.default_rng(seed).uniform(-0.3, 0.3, x.shape)
        assume(np.abs(x @ layer.kernel.data).min() >= KINK_MARGIN)
    y = layer(x)
    expected = x @ layer.kernel.data + (layer.bias.data if use_bias else 0)
    reference = {
        None: lambda z: z,
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "softmax": lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True),
    }[activation]
    np.testing.assert_allclose(y.data, reference(expected), rtol=1e-12, atol=1e-12)
    if activation == "relu":
        assert np.abs(expected).min() >= KINK_MARGIN  # central differences see no kink
    assert check_layer_gradients(layer, x)


def test_glorot_uniform_limits_and_seeded_initialization():
    td.manual_seed(3)
    a = Dense(50)
    a(np.ones((1, 30), np.float32))
    td.manual_seed(3)
    b = Dense(50)
    b(np.ones((1, 30), np.float32))
    np.testing.assert_array_equal(a.kernel.data, b.kernel.data)
    limit = np.sqrt(6 / (30 + 50))
    assert np.abs(a.kernel.data).max() <= limit and np.abs(a.kernel.data).max() > 0.9 * limit
    assert a.kernel.dtype == np.float32 and not a.bias.data.any()


def test_bad_settings():
    with pytest.raises(ValueError, match="Dense: units must be a positive integer, got 0"):
        Dense(0)
    with pytest.raises(ValueError, match="activation must be one of"):
        Dense(2, activation="swishy")

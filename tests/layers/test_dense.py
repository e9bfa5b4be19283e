"""tinydeep/layers/dense.py: Dense against NumPy; gradients of input, kernel and bias."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_layer_gradients
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, shapes

import tinydeep as td
from tinydeep.layers import Dense


@given(
    st.data(),
    st.integers(1, 3),
    st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax"]),
    st.booleans(),
)
def test_dense(data, units, activation, use_bias):
    x = data.draw(arrays(shapes(min_dims=1, max_dims=3)))
    if activation == "relu":
        x = x + np.sign(x) * 0.1  # keep pre-activations away from the kink (checked below)
    layer = Dense(units, activation=activation, use_bias=use_bias)
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
    if activation == "relu" and np.any(np.abs(expected) < 1e-4):
        return  # a pre-activation sits on the kink: central differences are not defined
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

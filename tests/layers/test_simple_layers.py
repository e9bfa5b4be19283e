"""The weightless layers: Activation, ReLU, Add, Concatenate, Flatten, Dropout."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_layer_gradients
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, away_from_zero, shapes

import tinydeep as td
from tinydeep.layers import Activation, Add, Concatenate, Dropout, Flatten, ReLU, add, concatenate

# Each activation from its definition, in NumPy: the layer is not compared with itself.
NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
    None: lambda x: x,
}


@given(
    arrays(shapes(min_dims=1), away_from_zero(0.01, 3.0)),
    st.sampled_from(["relu", "sigmoid", "tanh", "softmax", None]),
)
def test_activation_layers(x, name):
    layer = Activation(name)
    expected = NUMPY_ACTIVATIONS[name](x)
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-14, atol=1e-15)
    assert check_layer_gradients(layer, x)
    np.testing.assert_array_equal(ReLU()(x).data, np.maximum(x, 0))


@given(st.data())
def test_add_and_concatenate(data):
    shape = data.draw(shapes(min_dims=1))
    parts = [data.draw(arrays(shape)) for _ in range(data.draw(st.integers(2, 3)))]
    np.testing.assert_array_equal(Add()(parts).data, sum(parts))
    np.testing.assert_array_equal(add(parts).data, sum(parts))
    np.testing.assert_array_equal(concatenate(parts).data, np.concatenate(parts, axis=-1))
    assert td.gradcheck(lambda *ts: Add()(list(ts)), *parts)
    assert td.gradcheck(lambda *ts: Concatenate(axis=0)(list(ts)), *parts)


def test_merge_errors():
    with pytest.raises(
        ValueError,
        match=r"Add '.*': expected tensors of one shape, got "
        r"\[\(2, 3\), \(2, 4\)\]",
    ):
        Add()([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="expected a list of at least 2 tensors, got 1"):
        Add()([np.ones(2)])


def test_flatten():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(Flatten()(x).data, x.reshape(2, 12))
    assert check_layer_gradients(Flatten(), x)


def test_dropout_is_inverted_seeded_and_off_in_inference():
    x = np.ones((200, 50))
    layer = Dropout(0.3)
    np.testing.assert_array_equal(layer(x).data, x)  # training=False: identity
    td.manual_seed(7)
    a = layer(x, training=True).data
    td.manual_seed(7)
    b = layer(x, training=True).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1 / 0.7}
    assert abs((a == 0).mean() - 0.3) < 0.02  # 10,000 draws: 4.5 standard deviations
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\), got 1.0"):
        Dropout(1.0)


def test_dropout_gradient_with_a_fixed_mask():
    x = np.random.default_rng(0).standard_normal((3, 4))
    layer = Dropout(0.5)

    def fixed_mask(t):
        td.manual_seed(1)  # the same mask on every evaluation
        return layer(t, training=True)

    assert td.gradcheck(fixed_mask, x)

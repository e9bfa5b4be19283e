"""tinydeep/layers/conv2d.py: Conv2D against the loop reference; gradients of all weights."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_layer_gradients
from hypothesis import given
from hypothesis import strategies as st
from reference import conv2d_reference
from weights import randomize_constant_weights

from tinydeep.layers import Conv2D


@st.composite
def conv_case(draw):
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["valid", "same"]))
    size = draw(st.integers(k if padding == "valid" else 1, 5))
    x = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal((n, size, size, c))
    return x, f, k, s, padding


@given(conv_case(), st.booleans())
def test_conv2d_layer(case, use_bias):
    x, filters, k, s, padding = case
    layer = Conv2D(filters, k, strides=s, padding=padding, use_bias=use_bias)
    layer(x)  # build, then give the bias values (it starts at zero)
    randomize_constant_weights(layer, seed=x.size)
    y = layer(x)
    expected = conv2d_reference(x, layer.kernel.data, (s, s), padding)
    if use_bias:
        expected = expected + layer.bias.data
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
    assert check_layer_gradients(layer, x)


def test_same_padding_follows_tensorflow_at_stride_two():
    layer = Conv2D(4, 3, strides=2, padding="same")
    assert layer(np.ones((1, 32, 32, 3), np.float32)).shape == (1, 16, 16, 4)
    assert layer.kernel.shape == (3, 3, 3, 4)
    assert Conv2D(1, 3, strides=2, padding="same")(np.ones((1, 5, 5, 1))).shape == (1, 3, 3, 1)


def test_bad_input_and_settings():
    layer = Conv2D(2, 3, name="c")
    layer(np.ones((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"Conv2D 'c': expected inputs with 3 features"):
        layer(np.ones((1, 5, 5, 2)))
    with pytest.raises(ValueError, match=r"Conv2D 'c': expected an input of 4 dimensions"):
        layer(np.ones((5, 5, 3)))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same', got 'full'"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1 or a pair"):
        Conv2D(2, (3, 0))

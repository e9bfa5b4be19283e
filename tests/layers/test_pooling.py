"""tinydeep/layers/pooling.py: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_layer_gradients
from hypothesis import given
from hypothesis import strategies as st
from reference import avg_pool2d_reference, max_pool2d_reference

from tinydeep.layers import AveragePooling2D, GlobalAveragePooling2D, MaxPool2D, MaxPooling2D


@st.composite
def pool_case(draw):
    k, s = draw(st.integers(1, 3)), draw(st.sampled_from([None, 1, 2]))
    padding = draw(st.sampled_from(["valid", "same"]))
    size = draw(st.integers(k if padding == "valid" else 1, 5))
    shape = (draw(st.integers(1, 2)), size, size, draw(st.integers(1, 2)))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 10.0
    return x, k, s, padding  # distinct values: no ties for max


@given(pool_case())
def test_max_pooling(case):
    x, k, s, padding = case
    layer = MaxPooling2D(k, strides=s, padding=padding)
    stride = (k, k) if s is None else (s, s)
    np.testing.assert_array_equal(layer(x).data, max_pool2d_reference(x, (k, k), stride, padding))
    assert check_layer_gradients(layer, x)


@given(pool_case())
def test_average_pooling(case):
    x, k, s, padding = case
    layer = AveragePooling2D(k, strides=s, padding=padding)
    stride = (k, k) if s is None else (s, s)
    np.testing.assert_allclose(
        layer(x).data, avg_pool2d_reference(x, (k, k), stride, padding), rtol=1e-12
    )
    assert check_layer_gradients(layer, x)


def test_global_average_pooling():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = GlobalAveragePooling2D()
    np.testing.assert_allclose(layer(x).data, x.mean(axis=(1, 2)), rtol=1e-12)
    assert check_layer_gradients(layer, x)


def test_alias_and_errors():
    assert MaxPool2D is MaxPooling2D
    with pytest.raises(ValueError, match=r"MaxPooling2D '.*': expected an input of 4 dimensions"):
        MaxPooling2D()(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="pool_size must be an int >= 1 or a pair"):
        MaxPooling2D(0)

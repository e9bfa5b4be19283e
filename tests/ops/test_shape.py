"""tinydeep/ops/shape.py: reshape, transpose, pad, concatenate and stack."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, shapes

import tinydeep as td


@given(st.data())
def test_reshape(data):
    x = data.draw(arrays(shapes()))
    target = data.draw(st.permutations(list(x.shape)).map(tuple))  # same size, other layout
    if x.ndim and data.draw(st.booleans()):
        target = (-1, *target[1:])
    y = check_gradients(lambda t: t.reshape(target), x)
    np.testing.assert_array_equal(y.data, x.reshape(target))


@given(st.data())
def test_transpose(data):
    x = data.draw(arrays(shapes()))
    axes = data.draw(st.none() | st.permutations(range(x.ndim)).map(tuple))
    y = check_gradients(lambda t: t.transpose(axes), x)
    np.testing.assert_array_equal(y.data, np.transpose(x, axes))


@given(st.data())
def test_pad(data):
    x = data.draw(arrays(shapes(min_dims=1)))
    pairs = st.tuples(st.integers(0, 2), st.integers(0, 2))
    pad_width = data.draw(
        st.one_of(st.integers(0, 2), pairs, st.lists(pairs, min_size=x.ndim, max_size=x.ndim))
    )
    value = data.draw(st.sampled_from([0.0, -1.5]))
    y = check_gradients(lambda t: t.pad(pad_width, constant_values=value), x)
    np.testing.assert_array_equal(y.data, np.pad(x, pad_width, constant_values=value))


@given(st.data())
def test_concatenate(data):
    base = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        shape = list(base)
        shape[axis] = data.draw(st.integers(1, 3))
        parts.append(data.draw(arrays(tuple(shape))))
    y = check_gradients(lambda *ts: td.concatenate(ts, axis=axis), *parts)
    np.testing.assert_array_equal(y.data, np.concatenate(parts, axis=axis))


@given(st.data())
def test_stack(data):
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [data.draw(arrays(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    y = check_gradients(lambda *ts: td.stack(ts, axis=axis), *parts)
    np.testing.assert_array_equal(y.data, np.stack(parts, axis=axis))


def test_shape_errors_name_the_op_and_the_shapes():
    x = td.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape .* \(2, 3\) .* into shape"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="transpose: axes .* are not a permutation"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match=r"concatenate: shapes \(2, 3\) and \(2, 4\) differ"):
        td.concatenate([x, td.Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ValueError, match="stack: all tensors must have one shape"):
        td.stack([x, td.Tensor(np.ones((3, 2)))])
    with pytest.raises(ValueError, match="pad: pad_width must not be negative"):
        x.pad(-1)

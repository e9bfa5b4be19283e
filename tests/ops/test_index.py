"""tinydeep/ops/index.py: slices, integers, integer arrays (with repeats) and boolean masks."""

from __future__ import annotations

import numpy as np
import pytest
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import arrays, shapes

import tinydeep as td


@given(st.data())
def test_basic_indexing(data):
    x = data.draw(arrays(shapes(min_dims=1)))
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    y = check_gradients(lambda t: t[index], x)
    np.testing.assert_array_equal(y.data, x[index])


@given(st.data())
def test_integer_array_indexing_accumulates_over_repeats(data):
    x = data.draw(arrays(shapes(min_dims=1)))
    index = data.draw(hnp.integer_array_indices(x.shape, result_shape=shapes(max_dims=2)))
    y = check_gradients(lambda t: t[index], x)
    np.testing.assert_array_equal(y.data, x[index])


@given(st.data())
def test_boolean_mask_indexing(data):
    x = data.draw(arrays(shapes(min_dims=1)))
    # each element kept with probability 3/4: most masks select something to check
    keep = st.sampled_from([True, True, True, False])
    mask = data.draw(hnp.arrays(bool, x.shape, elements=keep, fill=st.nothing()))
    y = check_gradients(lambda t: t[mask], x)
    np.testing.assert_array_equal(y.data, x[mask])


def test_an_empty_selection_has_a_zero_gradient_and_nothing_for_gradcheck():
    x = np.arange(6.0).reshape(2, 3)
    mask = np.zeros((2, 3), bool)
    y = check_gradients(lambda t: t[mask], x)  # zero gradients of x's shape
    assert y.shape == (0,)
    with pytest.raises(td.GradcheckError, match="nothing to compare: every output is empty"):
        td.gradcheck(lambda t: t[mask], x)


def test_repeated_indices_add_their_gradients():
    x = td.Tensor(np.zeros(4), requires_grad=True)
    x[[0, 2, 0, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 1, 0])


def test_lists_and_integer_tensors_index_like_arrays():
    x = td.Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    rows = td.Tensor(np.array([2, 0]))
    y = x[rows, [1, 1]] + x[1:, -1].sum()
    np.testing.assert_array_equal(y.data, [9 + 18, 1 + 18])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0, 0], [0, 0, 0, 2], [0, 1, 0, 2]])


def test_an_index_out_of_range_names_the_op_and_shape():
    with pytest.raises(IndexError, match=r"getitem: index does not fit a tensor of shape \(3,\)"):
        td.Tensor(np.ones(3))[5]

"""kernels/cpu/embedding.py against tinydeep/ops/embedding.py and tinydeep/sparse.py.

gather_rows, gather_rows_sum, scatter_add and coalesce_rows bit for bit against their
references on hypothesis-drawn tables and ids (repeats, a batch of one, K = 1), float32 and
float64; out-of-range ids, other dtypes and layouts declined (the reference, NumPy's
behaviour); then embedding gradients with the kernels on.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import tinydeep_kernels.cpu.embedding as kernels
from gradients import check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_settings import declined

from tinydeep import ops, sparse

# tinydeep.ops.embedding, the module (the package exports the op under the same name)
reference_module = importlib.import_module("tinydeep.ops.embedding")
gather_rows = reference_module.gather_rows.reference
gather_rows_sum = reference_module.gather_rows_sum.reference


@st.composite
def table_and_ids(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    v, d = draw(st.integers(1, 20)), draw(st.integers(1, 9))
    table = draw(hnp.arrays(dtype, (v, d), elements=st.floats(-3, 3, width=32)))
    ids_dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8]))
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    ids = draw(hnp.arrays(ids_dtype, (n, k), elements=st.integers(0, min(v - 1, 255))))
    return table, ids


@settings(max_examples=40)
@given(table_and_ids())
def test_gathers_are_the_reference_bit_for_bit(case):
    table, ids = case
    np.testing.assert_array_equal(kernels.gather_rows(table, ids), gather_rows(table, ids))
    np.testing.assert_array_equal(kernels.gather_rows(table, ids.T), gather_rows(table, ids.T))
    mine, theirs = kernels.gather_rows_sum(table, ids), gather_rows_sum(table, ids)
    assert mine.dtype == theirs.dtype
    np.testing.assert_array_equal(mine, theirs)


@settings(max_examples=40)
@given(table_and_ids())
def test_scatter_add_and_coalesce_are_the_reference_bit_for_bit(case):
    table, ids = case
    indices = ids.reshape(-1)
    values = np.cumsum(np.ones((len(indices), table.shape[1]), table.dtype), axis=0) / 7
    mine, theirs = table.copy(), table.copy()
    kernels.scatter_add(mine, indices, values)
    sparse.scatter_add.reference(theirs, indices, values)
    np.testing.assert_array_equal(mine, theirs)

    rows, summed = kernels.coalesce_rows(indices, values)
    ref_rows, ref_summed = sparse.coalesce_rows.reference(indices, values)
    assert rows.dtype == ref_rows.dtype and summed.dtype == ref_summed.dtype
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(summed, ref_summed)


def test_rows_of_any_shape_and_an_empty_gradient():
    target = np.zeros((5, 2, 3))
    values = np.arange(24.0).reshape(4, 2, 3)
    kernels.scatter_add(target, np.array([4, 0, 4, 1]), values)
    np.testing.assert_array_equal(target[4], values[0] + values[2])
    rows, summed = kernels.coalesce_rows(np.array([4, 0, 4, 1]), values)
    np.testing.assert_array_equal(rows, [0, 1, 4])
    np.testing.assert_array_equal(summed[2], values[0] + values[2])
    kernels.scatter_add(target, np.zeros(0, np.int64), np.zeros((0, 2, 3)))
    rows, summed = kernels.coalesce_rows(np.zeros(0, np.int64), np.zeros((0, 2, 3)))
    assert rows.shape == (0,) and summed.shape == (0, 2, 3)


def test_out_of_range_ids_are_declined_and_behave_as_numpy():
    table = np.arange(6.0).reshape(3, 2)
    with pytest.raises(IndexError):
        declined(reference_module.gather_rows, table, np.array([0, 3]))
    got = declined(reference_module.gather_rows, table, np.array([-1]))
    np.testing.assert_array_equal(got, table[[-1]])
    with pytest.raises(IndexError):
        declined(reference_module.gather_rows_sum, table, np.array([[0, 3]]))
    target = np.zeros((3, 2))
    declined(sparse.scatter_add, target, np.array([-1, 2]), np.ones((2, 2)))  # from the end
    np.testing.assert_array_equal(target, [[0, 0], [0, 0], [2, 2]])
    with pytest.raises(IndexError):
        declined(sparse.scatter_add, target, np.array([3]), np.ones((1, 2)))


def test_a_non_contiguous_target_is_declined_and_updated_in_place():
    target = np.zeros((4, 6))[:, ::2]
    declined(sparse.scatter_add, target, np.array([1, 1]), np.ones((2, 3)))
    np.testing.assert_array_equal(target[1], [2, 2, 2])


def test_other_dtypes_are_declined_and_the_reference_runs():
    table, ids = np.arange(6).reshape(3, 2), np.array([[2, 0, 2]])
    np.testing.assert_array_equal(declined(reference_module.gather_rows, table, ids), table[ids])
    np.testing.assert_array_equal(declined(reference_module.gather_rows_sum, table, ids), [[8, 11]])
    rows, summed = declined(sparse.coalesce_rows, ids[0], np.array([[1], [2], [4]]))
    np.testing.assert_array_equal(rows, [0, 2])
    np.testing.assert_array_equal(summed, [[2], [5]])
    assert summed.dtype == np.int64
    empty = declined(reference_module.gather_rows_sum, np.ones((3, 2)), np.zeros((2, 0), int))
    np.testing.assert_array_equal(empty, np.zeros((2, 2)))  # K = 0: a sum of no rows


def test_embedding_gradients_with_the_kernels_on():
    rng = np.random.default_rng(0)
    table, ids = rng.standard_normal((5, 3)), np.array([[0, 4, 0], [2, 2, 1]])
    check_gradients(lambda t: ops.embedding_sum(t, ids), table)
    check_gradients(lambda t: ops.embedding(t, ids), table)

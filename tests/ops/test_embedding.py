"""tinydeep/ops/embedding.py: lookups, their row-sparse gradients, and the checks on ids.

The table's gradient is a RowSparseGrad, which tests/gradients.py:check_gradients does not
handle (it compares dense arrays), so these tests state the same contract directly: gradcheck
(which densifies), a dense reference in which repeated ids add up, no mutation. The errors
hold on the reference path and with the CPU kernels on, and the checks of shapes and dtypes
run before any kernel (the CUDA one replaces the whole forward).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_settings import PATHS, cpu_kernel
from strategies import arrays, shapes

import tinydeep as td
from tinydeep import ops
from tinydeep.ops.embedding import embedding_forward, embedding_sum_forward
from tinydeep.sparse import RowSparseGrad


@st.composite
def table_and_ids(draw, ids_shape=None):
    """A float64 table (V, D) and integer ids of any shape (repeats likely), all in [0, V)."""
    v, d = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    table = draw(arrays((v, d)))
    shape = draw(shapes(max_dims=3) if ids_shape is None else ids_shape)
    dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8]))
    ids = draw(hnp.arrays(dtype, shape, elements=st.integers(0, v - 1)))
    return table, ids


def dense_reference(ids, rows, shape):
    """The dense table gradient by a loop: row ids[k] gets rows[k] added, repeats adding up."""
    grad = np.zeros(shape)
    for i, row in zip(ids, rows):
        grad[i] += row
    return grad


def sparse_gradient(fn, table, ids, dy):
    """Run fn(table, ids).backward(dy); check it mutated nothing; return table.grad."""
    copies = table.copy(), ids.copy(), dy.copy()
    leaf = td.Tensor(table, requires_grad=True)
    y = fn(leaf, ids)
    y.backward(dy)
    for a, copy in zip((table, ids, dy), copies):
        np.testing.assert_array_equal(a, copy)
    assert isinstance(leaf.grad, RowSparseGrad) and leaf.grad.shape == table.shape
    return y, leaf.grad


@given(table_and_ids(), st.integers(0, 2**32 - 1))
def test_embedding(case, seed):
    table, ids = case
    dy = np.random.default_rng(seed).standard_normal((*ids.shape, table.shape[1]))
    y, grad = sparse_gradient(ops.embedding, table, ids, dy)
    np.testing.assert_array_equal(y.data, table[ids])
    expected = dense_reference(ids.reshape(-1), dy.reshape(-1, table.shape[1]), table.shape)
    np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-14, atol=1e-14)
    if ids.size:
        assert td.gradcheck(lambda t: ops.embedding(t, ids), table)


@given(table_and_ids(ids_shape=st.tuples(st.integers(1, 4), st.integers(1, 4))))
def test_embedding_sum(case):
    table, ids = case
    n, k = ids.shape
    dy = np.random.default_rng(0).standard_normal((n, table.shape[1]))
    y, grad = sparse_gradient(ops.embedding_sum, table, ids, dy)
    np.testing.assert_allclose(y.data, table[ids].sum(axis=1), rtol=1e-14, atol=1e-14)
    expected = dense_reference(ids.reshape(-1), np.repeat(dy, k, axis=0), table.shape)
    np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-14, atol=1e-14)
    assert td.gradcheck(lambda t: ops.embedding_sum(t, ids), table)


def test_embedding_sum_with_one_column_is_a_sparse_linear_model():
    # The wide part of Wide & Deep: multi-hot features (N, V) times weights (V, 1).
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((6, 1))
    ids = np.array([[0, 3, 5], [1, 1, 2], [4, 0, 0]])
    multi_hot = np.zeros((3, 6))
    np.add.at(multi_hot, (np.arange(3)[:, None], ids), 1)  # counts: a repeated id counts twice
    w = td.Tensor(weights, requires_grad=True)
    y = ops.embedding_sum(w, ids)
    np.testing.assert_allclose(y.data, multi_hot @ weights, rtol=1e-14)
    dy = rng.standard_normal((3, 1))
    y.backward(dy)
    np.testing.assert_allclose(w.grad.to_dense(), multi_hot.T @ dy, rtol=1e-14)


def test_repeated_ids_add_up_and_the_gradient_keeps_the_table_dtype():
    table = td.Tensor(np.zeros((4, 2), np.float32), requires_grad=True)
    ids = np.array([[0, 2], [0, 0]])
    ops.embedding(table, ids).sum().backward()
    assert table.grad.dtype == np.float32 and len(table.grad.indices) == 4
    np.testing.assert_array_equal(table.grad.to_dense(), [[3, 3], [0, 0], [1, 1], [0, 0]])


def test_a_table_used_twice_accumulates_sparse_and_then_dense():
    table = td.Tensor(np.ones((3, 2)), requires_grad=True)
    both = ops.embedding(table, np.array([0])).sum() + ops.embedding(table, np.array([0, 2])).sum()
    both.backward()
    assert isinstance(table.grad, RowSparseGrad)  # sparse + sparse stays sparse
    np.testing.assert_array_equal(table.grad.to_dense(), [[2, 2], [0, 0], [1, 1]])

    table.grad = None
    mixed = (table * 3.0).sum() + ops.embedding(table, np.array([1, 1])).sum()
    mixed.backward()  # dense + sparse is dense
    np.testing.assert_array_equal(table.grad, [[3, 3], [5, 5], [3, 3]])


def test_ids_as_an_integer_tensor_and_a_scalar_id():
    table = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(
        ops.embedding(table, td.Tensor(np.array([2, 0]))).data, [[4, 5], [0, 1]]
    )
    y = ops.embedding(td.Tensor(table, requires_grad=True), np.array(1))
    assert y.shape == (2,)
    np.testing.assert_array_equal(y.data, [2, 3])


@pytest.mark.parametrize("path", PATHS)
def test_errors_name_the_op_the_bad_id_and_the_table_size(path):
    with PATHS[path]():
        errors_name_the_op_the_bad_id_and_the_table_size()


def errors_name_the_op_the_bad_id_and_the_table_size():
    table = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"embedding: id -1 is out of range .*V=5"):
        ops.embedding(table, np.array([0, -1, 3]))
    with pytest.raises(ValueError, match=r"embedding: id 5 is out of range .*V=5"):
        ops.embedding(table, np.array([[5, 0]]))
    with pytest.raises(ValueError, match=r"embedding_sum: id 7 is out of range .*V=5"):
        ops.embedding_sum(table, np.array([[1, 7]]))
    with pytest.raises(
        TypeError, match=r"embedding: ids must be an integer array, got dtype float"
    ):
        ops.embedding(table, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="embedding_sum: ids must be an integer array"):
        ops.embedding_sum(table, [[0, 1]])  # a Python list becomes a float32 tensor
    with pytest.raises(ValueError, match=r"embedding_sum: ids must be \(N, K\), got shape \(3,\)"):
        ops.embedding_sum(table, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"embedding: table must be \(V, D\), got shape \(5,\)"):
        ops.embedding(np.zeros(5), np.array([0]))


@pytest.mark.parametrize(
    ("op", "table", "ids", "error", "message"),
    [
        ("embedding", np.zeros(5), np.array([0]), ValueError, r"table must be \(V, D\)"),
        ("embedding", np.zeros((5, 2)), np.array([0.0]), TypeError, "ids must be an integer"),
        ("embedding_sum", np.zeros((5, 2, 1)), np.array([[0]]), ValueError, "table must be"),
        ("embedding_sum", np.zeros((5, 2)), np.array([[True]]), TypeError, "ids must be an"),
        ("embedding_sum", np.zeros((5, 2)), np.array([0, 1]), ValueError, r"ids must be \(N, K\)"),
    ],
    ids=["1-d-table", "float-ids", "3-d-table", "bool-ids", "1-d-ids"],
)
def test_the_checks_of_shapes_and_dtypes_run_before_any_kernel(op, table, ids, error, message):
    """A kernel that replaces the whole forward (the CUDA one does) never sees a table that
    is not (V, D) or ids that are not integers: it would gather by that geometry."""
    seen = []
    forward = {"embedding": embedding_forward, "embedding_sum": embedding_sum_forward}[op]

    def stand_in(table, ids):
        seen.append((table, ids))
        return forward.reference(table, ids)

    with cpu_kernel(forward.__name__, stand_in):
        with pytest.raises(error, match=f"{op}: {message}"):
            getattr(ops, op)(table, ids)
        getattr(ops, op)(np.zeros((5, 2)), np.array([[0, 4]]))  # a good call reaches it
    assert len(seen) == 1

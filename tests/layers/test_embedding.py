"""tinydeep/layers/embedding.py: lookups, a row-sparse gradient, and id errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinydeep as td
from tinydeep.layers import Embedding
from tinydeep.sparse import RowSparseGrad


def test_lookup_and_row_sparse_gradient():
    layer = Embedding(6, 3)
    ids = np.array([[1, 4], [1, 0]])
    y = layer(ids)
    np.testing.assert_array_equal(y.data, layer.embeddings.data[ids])
    (y * td.Tensor(np.arange(12.0).reshape(2, 2, 3).astype(np.float32))).sum().backward()
    grad = layer.embeddings.grad
    assert isinstance(grad, RowSparseGrad)
    dense = np.zeros((6, 3), np.float32)
    np.add.at(dense, ids.reshape(-1), np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(grad.to_dense(), dense)


def test_gradcheck_of_the_table():
    layer = Embedding(5, 2, embeddings_initializer="he_normal", dtype="float64")
    ids = np.array([[0, 3, 3], [4, 0, 1]])  # row 3 twice, row 2 never
    layer(ids)
    assert layer.embeddings.dtype == np.float64
    assert td.gradcheck(lambda: layer(ids).tanh(), params=layer.named_weights())


def test_float_weights_from_an_integer_input_and_id_errors():
    layer = Embedding(4, 2, name="emb")
    layer(np.array([0, 1]))
    assert layer.embeddings.dtype == np.float32
    with pytest.raises(ValueError, match="Embedding 'emb': .*4"):
        layer(np.array([0, 4]))
    with pytest.raises(TypeError, match="Embedding 'emb'"):
        layer(np.array([0.0, 1.0]))

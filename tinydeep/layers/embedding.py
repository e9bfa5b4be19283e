"""Embedding: integer ids -> rows of a learned table, with a row-sparse gradient.

Shapes: ids (...) integers in [0, input_dim) -> y (..., output_dim); embeddings
(input_dim, output_dim). Backward touches only the looked-up rows: the table's gradient is
a RowSparseGrad (tinydeep/sparse.py), never a dense one-hot product.
"""

from __future__ import annotations

import numpy as np

from tinydeep import initializers, ops
from tinydeep.layers.layer import Layer
from tinydeep.random import generator
from tinydeep.tensor import Tensor


def uniform_small(shape, dtype=np.float32):
    """Keras's default for embeddings: uniform on [-0.05, 0.05]."""
    return generator().uniform(-0.05, 0.05, size=shape).astype(dtype)


class Embedding(Layer):
    """Embedding(input_dim, output_dim, embeddings_initializer="uniform").
    Weights: `embeddings` (input_dim, output_dim)."""

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Embedding: {argument} must be a positive integer, got {value!r}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = (
            uniform_small
            if embeddings_initializer == "uniform"
            else initializers.get(embeddings_initializer)
        )

    def build(self, input_shape) -> None:
        self.embeddings = self.add_weight(
            "embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer
        )

    def call(self, ids: Tensor) -> Tensor:
        self.check_input(ids, floating=False)
        with self.naming_errors():  # the op checks the ids' dtype and range
            return ops.embedding(self.embeddings, ids)

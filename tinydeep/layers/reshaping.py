"""Flatten: (N, d1, d2, ...) -> (N, d1 * d2 * ...), keeping the batch axis."""

from __future__ import annotations

import math

from tinydeep.layers.layer import Layer
from tinydeep.tensor import Tensor


class Flatten(Layer):
    """Flatten(): every axis but the first joined into one; (N,) becomes (N, 1), as in
    Keras. Any dtype is accepted: the values are only moved."""

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x, floating=False)
        if x.ndim < 1:
            raise ValueError(
                f"{self.where()}: expected an input with a batch axis, got shape {x.shape}"
            )
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # not -1: N may be 0

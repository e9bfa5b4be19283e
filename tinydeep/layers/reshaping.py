"""Flatten: (N, d1, d2, ...) -> (N, d1 * d2 * ...), keeping the batch axis."""

from __future__ import annotations

from tinydeep.layers.layer import Layer
from tinydeep.tensor import Tensor


class Flatten(Layer):
    """Flatten(): every axis but the first joined into one."""

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x, floating=False)
        if x.ndim < 1:
            raise ValueError(f"Flatten {self.name!r}: expected a batch axis, got a scalar")
        return x.reshape(x.shape[0], -1)

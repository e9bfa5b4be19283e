"""Activation layers: Activation(name) and ReLU(), elementwise, no weights.

Shapes: y has the shape of x.
"""

from __future__ import annotations

from tinydeep import activations, ops
from tinydeep.layers.layer import Layer
from tinydeep.tensor import Tensor


class Activation(Layer):
    """Activation(name): "relu", "sigmoid", "tanh", "softmax" (last axis), None or "linear"."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.activation(x)


class ReLU(Layer):
    """ReLU(): y = max(x, 0)."""

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return ops.relu(x)

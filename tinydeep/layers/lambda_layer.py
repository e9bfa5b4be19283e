"""Lambda(function): a layer that applies a function of Tensors, as keras.layers.Lambda.

    Lambda(lambda x: x * 2.0)          # in Sequential, or called on keras.Input tensors
    Lambda(lambda xs: xs[0] - xs[1])   # a list in, as the layer was called

It has no weights. The functional API records arithmetic on KerasTensors (`a + b`) as Lambda
layers (tinydeep/layers/symbolic.py). Left out: saving the function (it is code: weights files
hold only arrays) and Keras's `output_shape` argument (shapes are found by running it).
"""

from __future__ import annotations

from collections.abc import Callable

from tinydeep.layers.layer import Layer


class Lambda(Layer):
    """Lambda(function, **kwargs): call(inputs) returns function(inputs)."""

    def __init__(self, function: Callable, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {type(function).__name__}")
        self.function = function

    def call(self, inputs):
        return self.function(inputs)

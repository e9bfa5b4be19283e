"""Dense: the fully connected layer, y = activation(x @ kernel + bias).

Shapes: x (..., IN) -> y (..., UNITS); kernel (IN, UNITS); bias (UNITS,).
The kernel is built on the first call, when IN is known from the input.
"""

from __future__ import annotations

from tinydeep import activations
from tinydeep.layers.layer import Layer
from tinydeep.tensor import Tensor


class Dense(Layer):
    """Dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
    bias_initializer="zeros"). Weights: `kernel` (IN, UNITS), `bias` (UNITS,)."""

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, input_shape) -> None:
        if not isinstance(input_shape, tuple) or len(input_shape) < 1:
            raise ValueError(
                f"Dense {self.name!r}: expected one input with a feature axis, "
                f"got input shape {input_shape}"
            )
        self.kernel = self.add_weight(
            "kernel", (input_shape[-1], self.units), self.kernel_initializer
        )
        self.bias = (
            self.add_weight("bias", (self.units,), self.bias_initializer) if self.use_bias else None
        )

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x, last=self.kernel.shape[0])
        y = x @ self.kernel  # (..., UNITS)
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

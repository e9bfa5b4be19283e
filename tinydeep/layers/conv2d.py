"""Conv2D: 2-D convolution over NHWC images, y = activation(conv2d(x, kernel) + bias).

Shapes: x (N, H, W, C) -> y (N, OH, OW, F); kernel (KH, KW, C, F); bias (F,).
padding "valid" (no padding) or "same" (TensorFlow's rule at any stride: OH = ceil(H / s)).
The maths, forward and backward, is in tinydeep/ops/conv.py.
"""

from __future__ import annotations

from tinydeep import activations, ops
from tinydeep.layers.layer import Layer
from tinydeep.ops.conv import as_pair
from tinydeep.tensor import Tensor


def check_padding(padding: str, layer: str) -> str:
    padding = padding.lower() if isinstance(padding, str) else padding
    if padding not in ("valid", "same"):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


class Conv2D(Layer):
    """Conv2D(filters, kernel_size, strides=1, padding="valid", activation=None,
    use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros").
    Weights: `kernel` (KH, KW, C, F), `bias` (F,)."""

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive integer, got {filters!r}")
        self.filters = filters
        self.kernel_size = as_pair("Conv2D", "kernel_size", kernel_size)
        self.strides = as_pair("Conv2D", "strides", strides)
        self.padding = check_padding(padding, "Conv2D")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, input_shape) -> None:
        if not isinstance(input_shape, tuple) or len(input_shape) != 4:
            raise ValueError(
                f"Conv2D {self.name!r}: expected NHWC input of 4 dimensions, got "
                f"input shape {input_shape}"
            )
        channels = input_shape[-1]
        self.kernel = self.add_weight(
            "kernel", (*self.kernel_size, channels, self.filters), self.kernel_initializer
        )
        self.bias = (
            self.add_weight("bias", (self.filters,), self.bias_initializer)
            if self.use_bias
            else None
        )

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x, ndim=4, last=self.kernel.shape[2])
        with self.naming_errors():  # e.g. an image smaller than the kernel
            y = ops.conv2d(x, self.kernel, strides=self.strides, padding=self.padding)
        if self.bias is not None:
            y = y + self.bias  # (N, OH, OW, F) + (F,)
        return self.activation(y)

"""Pooling over NHWC images: MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D.

Shapes: x (N, H, W, C) -> y (N, OH, OW, C) for the windowed pools; (N, C) for the global
average. The window maths, forward and backward, is in tinydeep/ops/pool.py.
"""

from __future__ import annotations

from tinydeep import ops
from tinydeep.layers.conv2d import check_padding
from tinydeep.layers.layer import Layer
from tinydeep.ops.conv import as_pair
from tinydeep.tensor import Tensor


class _Pooling2D(Layer):
    """A window slid over H and W; subclasses name the op that reduces each window."""

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        layer = type(self).__name__
        self.pool_size = as_pair(layer, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else as_pair(layer, "strides", strides)
        self.padding = check_padding(padding, layer)

    def pool(self, x: Tensor, **settings) -> Tensor:
        raise NotImplementedError

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x, ndim=4)
        with self.naming_errors():  # e.g. an image smaller than the window
            return self.pool(
                x, pool_size=self.pool_size, strides=self.strides, padding=self.padding
            )


class MaxPooling2D(_Pooling2D):
    """MaxPooling2D(pool_size=2, strides=None (= pool_size), padding="valid")."""

    def pool(self, x: Tensor, **settings) -> Tensor:
        return ops.max_pool2d(x, **settings)


class AveragePooling2D(_Pooling2D):
    """AveragePooling2D(pool_size=2, strides=None (= pool_size), padding="valid")."""

    def pool(self, x: Tensor, **settings) -> Tensor:
        return ops.avg_pool2d(x, **settings)


class GlobalAveragePooling2D(Layer):
    """GlobalAveragePooling2D(): the mean over H and W of each channel, (N, H, W, C) -> (N, C)."""

    def call(self, x: Tensor) -> Tensor:
        self.check_input(x, ndim=4)
        return x.mean(axis=(1, 2))


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D

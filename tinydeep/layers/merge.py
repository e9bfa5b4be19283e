"""Layers that merge a list of tensors: Add (elementwise sum) and Concatenate (along an axis),
with Keras's functional forms `add([...])` and `concatenate([...], axis=-1)`.

Shapes: Add takes tensors of one shape; Concatenate takes tensors whose shapes agree off
`axis`, and its output's `axis` is the sum of theirs.
"""

from __future__ import annotations

from tinydeep.layers.layer import Layer
from tinydeep.ops.shape import concatenate as concatenate_tensors
from tinydeep.tensor import Tensor


def _check_list(layer: Layer, inputs, minimum: int = 2) -> None:
    where = layer.where()
    if not isinstance(inputs, (list, tuple)) or len(inputs) < minimum:
        got = (
            f"{len(inputs)} tensors" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
        )
        raise ValueError(f"{where}: expected a list of at least {minimum} tensors, got {got}")
    for x in inputs:
        layer.check_input(x)


class Add(Layer):
    """Add(): the elementwise sum of a list of tensors of one shape (a residual connection)."""

    def call(self, inputs: list[Tensor]) -> Tensor:
        _check_list(self, inputs)
        shapes = [tuple(x.shape) for x in inputs]
        if len(set(shapes)) > 1:
            raise ValueError(f"{self.where()}: expected tensors of one shape, got {shapes}")
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Concatenate(Layer):
    """Concatenate(axis=-1): join a list of tensors along `axis`."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs: list[Tensor]) -> Tensor:
        _check_list(self, inputs, minimum=1)
        with self.naming_errors():  # shapes that differ off the axis, an axis out of range
            return concatenate_tensors(inputs, axis=self.axis)


def add(inputs: list[Tensor], **kwargs) -> Tensor:
    """The functional form of Add: add([a, b]) == Add()([a, b])."""
    return Add(**kwargs)(inputs)


def concatenate(inputs: list[Tensor], axis: int = -1, **kwargs) -> Tensor:
    """The functional form of Concatenate, as keras.layers.concatenate."""
    return Concatenate(axis=axis, **kwargs)(inputs)

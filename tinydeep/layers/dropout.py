"""Dropout: in training, zero each element with probability `rate` and scale the rest by
1 / (1 - rate) ("inverted" dropout), so inference needs no rescaling; identity otherwise.

The mask is drawn from tinydeep's generator (tinydeep.random), so `manual_seed` makes it
reproducible. Shapes: y has the shape of x.
"""

from __future__ import annotations

from tinydeep import backend
from tinydeep.layers.layer import Layer
from tinydeep.random import generator
from tinydeep.tensor import Tensor


class Dropout(Layer):
    """Dropout(rate): the fraction of elements to drop in training, in [0, 1)."""

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = rate

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        self.check_input(x)
        if not training or self.rate == 0.0:
            return x
        keep = generator().random(x.shape) >= self.rate  # drawn on the CPU: same on any device
        scale = (keep / (1.0 - self.rate)).astype(x.dtype)
        return x * Tensor(backend.to_device(scale, x.device))

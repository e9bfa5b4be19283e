"""Activation functions by name, as Keras's `activation=` arguments take them.

"relu", "sigmoid", "tanh", "softmax" (over the last axis), and None or "linear" (identity).
Each is a function from Tensor to Tensor built from tinydeep ops.
"""

from __future__ import annotations

from collections.abc import Callable

from tinydeep import ops
from tinydeep.tensor import Tensor


def linear(x: Tensor) -> Tensor:
    return x


def relu(x: Tensor) -> Tensor:
    return ops.relu(x)


def sigmoid(x: Tensor) -> Tensor:
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def softmax(x: Tensor) -> Tensor:
    return ops.softmax(x, axis=-1)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
}


def get(activation: str | Callable | None) -> Callable[[Tensor], Tensor]:
    """The activation called `activation` (None means linear), or the function itself."""
    if activation is None:
        return linear
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, None or a function, "
            f"got {activation!r}"
        )
    return ACTIVATIONS[activation]


def name_of(activation: Callable) -> str:
    """The registered name of an activation function, or its __name__."""
    for name, fn in ACTIVATIONS.items():
        if fn is activation:
            return name
    return getattr(activation, "__name__", repr(activation))

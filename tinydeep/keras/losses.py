"""keras.losses: tinydeep/losses.py (`get` knows Keras's names: "mse",
"sparse_categorical_crossentropy", ...)."""

from tinydeep.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    get,
    mse,
    sparse_categorical_crossentropy,
)

mean_squared_error = mse

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "get",
    "mean_squared_error",
    "mse",
    "sparse_categorical_crossentropy",
]

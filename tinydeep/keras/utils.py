"""keras.utils: plot_model (tinydeep/plot.py), set_random_seed and to_categorical."""

from __future__ import annotations

import numpy as np

from tinydeep.plot import plot_model
from tinydeep.random import manual_seed as set_random_seed


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Class indices (N,) as one-hot rows (N, num_classes), as keras.utils.to_categorical."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise ValueError(
            f"to_categorical: y must hold class indices >= 0, got dtype {y.dtype}"
            + (f" and a minimum of {y.min()}" if y.size and y.dtype.kind in "iu" else "")
        )
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    classes = int(y.max()) + 1 if num_classes is None else num_classes
    if y.size and y.max() >= classes:
        raise ValueError(f"to_categorical: y has class {y.max()}, num_classes is {classes}")
    return np.eye(classes, dtype=dtype)[y]


__all__ = ["plot_model", "set_random_seed", "to_categorical"]

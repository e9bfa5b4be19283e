"""Give a layer's or model's constant-initialized weights random values before a test.

Biases and BatchNorm's beta start at zero, gamma and the moving variance at one: a test that
keeps them checks nothing about them (with a zero bias, Conv2D subtracting its bias instead of
adding it passed every layer and model test). `randomize_constant_weights` draws them anew.
"""

from __future__ import annotations

import numpy as np


def randomize_constant_weights(layer, seed: int = 0) -> None:
    """Every built weight whose elements are all equal gets random values in place: a variance
    (named *variance) uniform in [0.5, 2], anything else of either sign, |value| in [0.2, 1]."""
    rng = np.random.default_rng(seed)
    for name, weight in layer.named_weights().items():
        data = weight.data
        if data.size == 0 or not np.all(data == data.reshape(-1)[0]):
            continue  # already random (a kernel), or empty
        if name.endswith("variance"):
            values = rng.uniform(0.5, 2.0, data.shape)
        else:
            values = rng.uniform(0.2, 1.0, data.shape) * rng.choice([-1.0, 1.0], data.shape)
        data[...] = values.astype(data.dtype)

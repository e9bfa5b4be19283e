"""Weight initializers, named as in Keras: glorot_uniform, he_normal, zeros, ones.

Each takes a shape and a dtype and returns a NumPy array, drawn from tinydeep's generator
(tinydeep.random), so `tinydeep.manual_seed(n)` makes initialization reproducible.

Fans follow Keras: for a Dense kernel (in, out), fan_in = in and fan_out = out; for a Conv2D
kernel (KH, KW, C_in, C_out), fan_in = KH * KW * C_in and fan_out = KH * KW * C_out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinydeep.random import generator


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`; receptive-field axes come first."""
    if len(shape) < 2:
        size = int(np.prod(shape)) if shape else 1
        return size, size
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, dtype=np.float32) -> np.ndarray:
    """Uniform on [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010):
    keeps the variance of activations and of gradients about equal across layers."""
    fan_in, fan_out = fans(tuple(shape))
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return generator().uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, dtype=np.float32) -> np.ndarray:
    """Truncated normal with std sqrt(2 / fan_in), as Keras's he_normal (He et al., 2015):
    keeps the variance of activations constant through ReLU layers. Draws beyond two standard
    deviations are redrawn; the 0.8796 factor restores the variance the truncation removes."""
    fan_in, _ = fans(tuple(shape))
    std = np.sqrt(2.0 / fan_in) / 0.87962566103423978
    values = generator().standard_normal(size=shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = generator().standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2
    return (values * std).astype(dtype)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype=np.float32) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


INITIALIZERS: dict[str, Callable] = {
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
    "ones": ones,
}


def get(initializer: str | Callable) -> Callable:
    """The initializer called `initializer`, or `initializer` itself when it is a function."""
    if callable(initializer):
        return initializer
    if initializer not in INITIALIZERS:
        raise ValueError(
            f"initializer must be one of {sorted(INITIALIZERS)} or a function, got {initializer!r}"
        )
    return INITIALIZERS[initializer]

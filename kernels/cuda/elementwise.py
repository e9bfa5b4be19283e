"""CUDA kernels for the ReLU activation.

replaces tinydeep/ops/elementwise.py:relu_forward
replaces tinydeep/ops/elementwise.py:relu_backward

Each is one ElementwiseKernel, the reference's one line: the backward fuses the comparison
y > 0 and the product with dy, which the reference does in two passes with a boolean
(N, ..., C) temporary between them. Any dtype, any layout; the results are new contiguous
arrays, as the references' are.
"""

from __future__ import annotations

import cupy

__all__ = ["relu_backward", "relu_forward"]

# y = maximum(x, 0): x where x > 0, and NaN stays NaN (x != x only for NaN), as in cupy.maximum
_relu = cupy.ElementwiseKernel("T x", "T y", "y = (x > (T)0 || x != x) ? x : (T)0", "relu_forward")

# dx = dy * (y > 0): the product, not a branch, so a NaN or inf in dy where y <= 0 gives NaN,
# as in the reference
_relu_gradient = cupy.ElementwiseKernel(
    "T dy, Y y", "T dx", "dx = dy * (T)(y > (Y)0)", "relu_backward"
)


def relu_forward(x: cupy.ndarray):
    """y = max(x, 0); the cache is y."""
    y = _relu(x)
    return y, y


def relu_backward(dy: cupy.ndarray, y: cupy.ndarray):
    """dx = dy where y > 0, else 0 (the kink at 0 gets 0)."""
    return (_relu_gradient(dy, y),)

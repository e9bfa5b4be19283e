"""CUDA kernels for training-mode batch normalization.

replaces tinydeep/ops/normalization.py:batch_moments
replaces tinydeep/ops/normalization.py:batch_norm_normalize
replaces tinydeep/ops/normalization.py:batch_norm_backward

The references spend a temporary (N, ..., C) array on nearly every line (x - mean, its
square, x_hat, x_hat * gamma, dy * x_hat, m * dy, ...). Here each per-element line is one
ElementwiseKernel and each per-channel sum one reduction that computes its summand on the
fly, so a (N, ..., C) array is written only where the reference returns or caches one.
The per-channel (C,) arithmetic stays CuPy expressions: it is tiny.

x is viewed as (M, C), M = N*H*W, the channel last; (C,) arrays broadcast against it.
Caches are the references' own, (x_hat, gamma, inv_std), so kernels and references mix.
Every operand of a kernel below is one type T, and CuPy casts no array to it (only Python
scalars): the op promotes x, gamma, beta, mean and var to one dtype before dispatch, and
checks that dy has y's shape and dtype (tinydeep/ops/normalization.py), so these kernels
never see two.
"""

from __future__ import annotations

import cupy

__all__ = ["batch_moments", "batch_norm_backward", "batch_norm_normalize"]

# sum over M of (x - mean)^2, the second pass of the two-pass variance: mean is (C,) and
# broadcasts; an integer x is promoted to mean's floating type first, as x - mean would be.
_sum_squared_deviations = cupy.ReductionKernel(
    "X x, T mean",
    "T total",
    "((T)x - mean) * ((T)x - mean)",
    "a + b",
    "total = a",
    "0",
    "batch_moments_sum_squared_deviations",
)

# sum over M of dy * x_hat (dgamma), without the (M, C) product the reference makes.
_sum_products = cupy.ReductionKernel(
    "T dy, T x_hat",
    "T total",
    "dy * x_hat",
    "a + b",
    "total = a",
    "0",
    "batch_norm_sum_products",
)

# x_hat = (x - mean) * inv_std ; y = x_hat * gamma + beta   (the reference's two lines)
_normalize = cupy.ElementwiseKernel(
    "T x, T mean, T inv_std, T gamma, T beta",
    "T x_hat, T y",
    """
    x_hat = (x - mean) * inv_std;
    y = x_hat * gamma + beta;
    """,
    "batch_norm_normalize",
)

# dx = scale * (m * dy - dbeta - x_hat * dgamma), scale = gamma * inv_std / m  (C,)
_input_gradient = cupy.ElementwiseKernel(
    "T dy, T x_hat, T scale, T m, T dbeta, T dgamma",
    "T dx",
    "dx = scale * (m * dy - dbeta - x_hat * dgamma)",
    "batch_norm_backward",
)


def batch_moments(x: cupy.ndarray):
    """(mean, var) of x (..., C) per channel, over all axes but the last; each (C,).
    Two passes, as the reference: the mean, then the mean squared deviation from it."""
    if x.ndim < 2:
        raise ValueError(f"batch_moments: x must be (N, ..., C), got shape {x.shape}")
    x2 = x.reshape(-1, x.shape[-1])  # (M, C), a view when x is contiguous
    mean = x2.mean(axis=0)  # (C,)
    var = _sum_squared_deviations(x2, mean, axis=0) / x2.shape[0]
    return mean, var


def batch_norm_normalize(x: cupy.ndarray, gamma, beta, mean, inv_std):
    """y = x_hat * gamma + beta and x_hat = (x - mean) * inv_std, per channel; (y, x_hat)."""
    x_hat, y = _normalize(x, mean, inv_std, gamma, beta)
    return y, x_hat


def batch_norm_backward(dy: cupy.ndarray, cache, needs_grad=(True, True, True)):
    """(dx, dgamma, dbeta): dbeta = sum(dy), dgamma = sum(dy * x_hat),
    dx = gamma * inv_std / M * (M * dy - dbeta - x_hat * dgamma), sums over M per channel."""
    x_hat, gamma, inv_std = cache
    channels = dy.shape[-1]
    dy2, x_hat2 = dy.reshape(-1, channels), x_hat.reshape(-1, channels)  # (M, C)
    m = x_hat2.shape[0]
    dbeta = dy2.sum(axis=0)  # (C,)
    dgamma = _sum_products(dy2, x_hat2, axis=0)  # (C,)
    dx = None
    if needs_grad[0]:  # skipped for a batch norm applied straight to the data
        dx = _input_gradient(dy, x_hat, gamma * inv_std / m, m, dbeta, dgamma)
    return dx, dgamma, dbeta

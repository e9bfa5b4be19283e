"""Batch normalization in training mode: one op whose backward is the fused closed form.

Training-mode batch norm normalizes each channel with the mean and variance of the batch
itself, so the mean and variance are functions of x and the gradient flows through them too.
Built from small ops (subtract, mean, sqrt, divide) that would take a dozen graph nodes and
as many temporary arrays; as one op the whole backward is two channel sums and one line.

`batch_norm(x, gamma, beta)` takes Tensors and returns what the BatchNorm layer needs: y, and
the batch's mean and variance, which the layer folds into its moving statistics. It takes the
moments once, with `batch_moments`, and hands them to the array pair `batch_norm_forward` /
`batch_norm_backward` as settings (keyword arguments), not as inputs: they are not leaves of
the graph, since the backward already accounts for their dependence on x. Inference mode
(moving statistics, constants with respect to x) is plain arithmetic on Tensors in the layer.

Shapes: N, H, W, C (channels last, as in Keras); M = N*H*W, the number of elements per channel.
  x, y (N, C) or (N, H, W, C) (any rank >= 2: the statistics run over all axes but the last);
  gamma, beta, mean, var (C,).

Dtypes. The operands promote as NumPy promotes them, as in every tinydeep op (float64 x with
float32 gamma gives float64 y; integer x promotes to a float, as x - mean does), but here
explicitly, before the kernels run: batch_norm_forward casts all five to their common
floating dtype, so the reference, the Numba kernels and the CUDA kernels (whose operands
share one type) all see one dtype. dy must then have y's dtype and shape, as every gradient
has that of what it is the gradient of (tinydeep/tensor.py casts them so).

Read in order: batch_norm, batch_moments, batch_norm_forward, batch_norm_normalize,
batch_norm_backward. The checks of their arguments, and the promotion to one dtype, are in
tinydeep/ops/checks.py.
"""

from __future__ import annotations

from tinydeep.backend import kernelized, xp_of
from tinydeep.ops.checks import (
    check_batch_moments,
    check_batch_norm,
    check_batch_norm_backward,
    promoted,
)
from tinydeep.tensor import Tensor, differentiable


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: float = 1e-3) -> tuple:
    """Training-mode batch norm of x by its own batch statistics: (y, mean, var).

    y = (x - mean) / sqrt(var + epsilon) * gamma + beta, a Tensor whose backward is
    `batch_norm_backward`; mean, var (C,): the arrays of `batch_moments(x)`, for the caller's
    moving statistics. x (N, C) or (N, H, W, C); gamma, beta (C,); epsilon 1e-3 as in Keras.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    mean, var = batch_moments(x.data)  # (C,) each, biased variance
    y = _batch_norm(x, gamma, beta, mean=mean, var=var, epsilon=epsilon)
    return y, mean, var


@kernelized(check=check_batch_moments)
def batch_moments(x):
    """(mean, var) of x (..., C) per channel, over all axes but the last; each (C,).

    The variance is the biased one (divided by M, not M - 1), which is what normalizes the
    batch. Two passes (the mean first, then the squared deviations from it) rather than
    E[x**2] - E[x]**2, which loses every digit when the mean is large beside the spread.
    """
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    centered = x - mean
    var = (centered * centered).mean(axis=axes)
    return mean, var


def batch_norm_forward(x, gamma, beta, *, mean, var, epsilon: float = 1e-3):
    """y = (x - mean) / sqrt(var + epsilon) * gamma + beta, per channel (the last axis).

    x (N, ..., C); gamma, beta (C,); mean, var (C,): the batch statistics of x from
    `batch_moments(x)`, settings rather than inputs (see the module docstring). epsilon:
    added to the variance.
    """
    check_batch_norm(x, gamma, beta, mean=mean, var=var)
    x, gamma, beta, mean, var = promoted(x, gamma, beta, mean, var)
    inv_std = 1 / xp_of(x).sqrt(var + epsilon)  # (C,)
    y, x_hat = batch_norm_normalize(x, gamma, beta, mean, inv_std)
    return y, (x_hat, gamma, inv_std)


@kernelized
def batch_norm_normalize(x, gamma, beta, mean, inv_std):
    """The per-element part of the forward, once the settings are checked: returns
    y = x_hat * gamma + beta and x_hat = (x - mean) * inv_std. x (..., C), the rest (C,)."""
    x_hat = (x - mean) * inv_std  # (N, ..., C), zero mean and unit variance per channel
    return x_hat * gamma + beta, x_hat


@kernelized(check=check_batch_norm_backward)
def batch_norm_backward(dy, cache, needs_grad=(True, True, True)):
    """(dx, dgamma, dbeta) for training mode, where mean and var are functions of x.

    With sums over the M = N*H*W elements of each channel:
      dbeta  = sum(dy)
      dgamma = sum(dy * x_hat)
      dx     = gamma * inv_std / M * (M * dy - sum(dy) - x_hat * sum(dy * x_hat))
    The last two terms are the paths through the mean and the variance: dx is dy * gamma *
    inv_std made orthogonal to the constant and to x_hat, since shifting or scaling a
    channel's inputs leaves its normalized output unchanged.
    """
    x_hat, gamma, inv_std = cache
    axes = tuple(range(dy.ndim - 1))
    m = x_hat.size // x_hat.shape[-1]
    dbeta = dy.sum(axis=axes)  # (C,)
    dgamma = (dy * x_hat).sum(axis=axes)  # (C,)
    dx = None
    if needs_grad[0]:  # skipped for a batch norm applied straight to the data
        dx = (gamma * inv_std / m) * (m * dy - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


_batch_norm = differentiable(batch_norm_forward, batch_norm_backward, "batch_norm")

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

Read in order: batch_norm, batch_moments, batch_norm_forward (its checks, then the
promotion), batch_norm_normalize, batch_norm_backward.
"""

from __future__ import annotations

import numpy as np

from tinydeep.backend import kernelized, xp_of
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


def check_batch_moments(x) -> None:
    """Before the reference or a kernel: x must have a channel axis and at least one other."""
    if x.ndim < 2:
        raise ValueError(f"batch_moments: x must be (N, ..., C), got shape {x.shape}")


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
    if x.ndim < 2:
        raise ValueError(f"batch_norm: x must be (N, C) or (N, H, W, C), got shape {x.shape}")
    channels = x.shape[-1]
    for name, value in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if value.shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} must have shape ({channels},), one value per channel of "
                f"x {x.shape}, got {value.shape}"
            )
    x, gamma, beta, mean, var = promoted(x, gamma, beta, mean, var)
    inv_std = 1 / xp_of(x).sqrt(var + epsilon)  # (C,)
    y, x_hat = batch_norm_normalize(x, gamma, beta, mean, inv_std)
    return y, (x_hat, gamma, inv_std)


def promoted(x, gamma, beta, mean, var) -> tuple:
    """(x, gamma, beta, mean, var) cast to their common dtype, NumPy's promotion, which must
    be floating: float64 x with float32 gamma all in float64, integer x in the float it
    promotes to. An array already in that dtype is not copied."""
    operands = {"x": x, "gamma": gamma, "beta": beta, "mean": mean, "var": var}
    dtype = np.result_type(*(a.dtype for a in operands.values()))
    if dtype.kind != "f":
        received = ", ".join(f"{name} {a.dtype}" for name, a in operands.items())
        raise TypeError(
            f"batch_norm: expected operands that promote to a floating-point dtype, got "
            f"{received}, which promote to {dtype}; cast x to a float, e.g. x.astype('float32')"
        )
    return tuple(a.astype(dtype, copy=False) for a in operands.values())


@kernelized
def batch_norm_normalize(x, gamma, beta, mean, inv_std):
    """The per-element part of the forward, once the settings are checked: returns
    y = x_hat * gamma + beta and x_hat = (x - mean) * inv_std. x (..., C), the rest (C,)."""
    x_hat = (x - mean) * inv_std  # (N, ..., C), zero mean and unit variance per channel
    return x_hat * gamma + beta, x_hat


def check_batch_norm_backward(dy, cache, needs_grad=(True, True, True)) -> None:
    """Before the reference or a kernel: dy must have y's shape and dtype, which are x_hat's,
    and gamma, inv_std be (C,) in that dtype. The kernels read dy and x_hat element by
    element, gamma and inv_std per channel, by x_hat's shape; the CUDA ones in one dtype."""
    x_hat, gamma, inv_std = cache
    if dy.shape != x_hat.shape:
        raise ValueError(
            f"batch_norm_backward: dy must have the shape of the forward's y, "
            f"{x_hat.shape}, got shape {dy.shape}"
        )
    for name, a in (("gamma", gamma), ("inv_std", inv_std)):
        if a.shape != x_hat.shape[-1:]:
            raise ValueError(
                f"batch_norm_backward: the cache's {name} must have shape "
                f"{x_hat.shape[-1:]}, one value per channel of y {x_hat.shape}, got {a.shape}"
            )
    for name, a in (("dy", dy), ("the cache's gamma", gamma), ("the cache's inv_std", inv_std)):
        if a.dtype != x_hat.dtype:
            raise TypeError(
                f"batch_norm_backward: {name} must have the dtype of the forward's y, "
                f"{x_hat.dtype}, got {a.dtype}"
            )


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

"""Numba kernels for the optimizers' in-place updates.

replaces tinydeep/optim.py:sgd_update
replaces tinydeep/optim.py:adagrad_update
replaces tinydeep/optim.py:adam_update

Each reference is a handful of NumPy lines, each a pass over the parameter and most with a
temporary array; each kernel is one pass over the flattened arrays that reads every element
once and writes it once. The hyper-parameters are cast to the parameter's dtype first, and
the arithmetic follows the reference's operations in its order, so float32 stays float32
just as NumPy computes it (results agree to a few units in the last place, usually exactly).

The loops run on one core: ResNet-20's parameters hold 16 to 36,864 values, which one core
updates in microseconds, less than waking a second thread costs. A parameter that is not
C-contiguous is updated through a contiguous copy written back; the gradient may be any
array of the parameter's shape and dtype (tinydeep/optim.py checks both before dispatch, for
the gradient and the state). A parameter of another dtype than float32 or float64 (float16)
is declined: the kernels return NotImplemented before changing anything, and the reference
runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .dtypes import FLOATS

__all__ = ["adagrad_update", "adam_update", "sgd_update"]


@njit(cache=True)
def _sgd_loop(param, grad, buf, lr, momentum, damped, nesterov, weight_decay, first):
    for i in range(param.size):
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        b = g if first else buf[i] * momentum + damped * g
        buf[i] = b
        param[i] -= lr * (g + momentum * b if nesterov else b)


@njit(cache=True)
def _plain_sgd_loop(param, grad, lr, momentum, damped, nesterov, weight_decay, first):
    for i in range(param.size):
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        param[i] -= lr * g


@njit(cache=True, error_model="numpy")  # IEEE division: no zero check blocking SIMD
def _adagrad_loop(param, grad, sum_sq, clr, eps, weight_decay):
    for i in range(param.size):
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        s = sum_sq[i] + g * g
        sum_sq[i] = s
        param[i] -= clr * g / (np.sqrt(s) + eps)


@njit(cache=True, error_model="numpy")
def _adam_loop(param, grad, exp_avg, exp_avg_sq, shrink, l2, beta1, one_minus_beta1, beta2,
               one_minus_beta2, step_size, bias2_root, eps):  # fmt: skip
    for i in range(param.size):
        p = param[i]
        g = grad[i]
        if shrink != 1:  # AdamW's decoupled decay
            p = p * shrink
        if l2 != 0:  # Adam's L2 decay
            g = g + l2 * p
        m = exp_avg[i] * beta1 + one_minus_beta1 * g
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] = p - step_size * m / (np.sqrt(v) / bias2_root + eps)


def _flat(a, like):
    """`a` as a contiguous 1-D array of like's dtype (a view when it already is one)."""
    return np.ascontiguousarray(a, dtype=like.dtype).reshape(-1)


def _update(loop, grad, arrays, *settings) -> None:
    """loop(param, grad, *state, *settings) on flat views of param and its state `arrays`,
    all updated in place (through contiguous copies written back where they are not)."""
    param = arrays[0]
    flats = [_flat(a, param) for a in arrays]
    loop(flats[0], _flat(grad, param), *flats[1:], *[param.dtype.type(s) for s in settings])
    for a, f in zip(arrays, flats):
        if not np.shares_memory(a, f):
            a[...] = f.reshape(a.shape)


def sgd_update(param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay):
    """One SGD step on `param`, in place; returns the momentum buffer (None without
    momentum, a new array on the first step). Equations: tinydeep/optim.py:sgd_update."""
    if param.dtype not in FLOATS:
        return NotImplemented
    first = momentum != 0 and buf is None
    if first:
        buf = np.empty(param.shape, dtype=param.dtype)  # the loop sets it to the gradient
    state = [param] if buf is None else [param, buf]
    loop = _sgd_loop if buf is not None else _plain_sgd_loop
    _update(loop, grad, state, lr, momentum, 1 - dampening, nesterov, weight_decay,
            first)  # fmt: skip
    return buf if momentum != 0 else None


def adagrad_update(param, grad, sum_sq, *, clr, eps, weight_decay) -> None:
    """One AdaGrad step, in place. Equations: tinydeep/optim.py:adagrad_update."""
    if param.dtype not in FLOATS:
        return NotImplemented
    _update(_adagrad_loop, grad, [param, sum_sq], clr, eps, weight_decay)


def adam_update(
    param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay, decoupled
) -> None:
    """One Adam or AdamW step, in place. Equations: tinydeep/optim.py:adam_update."""
    if param.dtype not in FLOATS:
        return NotImplemented
    shrink = 1 - lr * weight_decay if weight_decay and decoupled else 1.0
    l2 = weight_decay if weight_decay and not decoupled else 0.0
    _update(
        _adam_loop,
        grad,
        [param, exp_avg, exp_avg_sq],
        shrink,
        l2,
        beta1,
        1 - beta1,
        beta2,
        1 - beta2,
        lr / (1 - beta1**step),
        np.sqrt(1 - beta2**step),
        eps,
    )

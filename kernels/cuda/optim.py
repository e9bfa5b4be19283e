"""CUDA kernels for the optimizer updates: each step is one ElementwiseKernel.

replaces tinydeep/optim.py:sgd_update
replaces tinydeep/optim.py:adagrad_update
replaces tinydeep/optim.py:adam_update

The references update in place with several CuPy lines, each a kernel launch and most a
temporary array (Adam: about ten passes over the parameter). Here the whole rule runs in one
pass that reads param, grad and the state once and writes param and the state in place: the
arrays are the kernel's outputs, which it may also read (Chainer's optimizers work so).

param, grad and the state share one dtype T: CuPy casts no array to it, and tinydeep/optim.py
checks before dispatch that the gradient and the state have the parameter's dtype and shape.
Hyper-parameters arrive as Python floats and are cast to the arrays' dtype T, as NumPy casts
a Python float in `float32_array * 0.9`; the scalars the references compute in Python
(1 - beta1, lr / (1 - beta1**step), ...) are computed in Python here too, so each kernel line
does the arithmetic of the reference line it mirrors. Terms the reference leaves out when a
setting is 0 (weight decay) are left out here as well, not multiplied by 0, so an inf or NaN
in a parameter behaves the same way.
"""

from __future__ import annotations

import math

import cupy

__all__ = ["adagrad_update", "adam_update", "sgd_update"]

# SGD without momentum:  g = grad + weight_decay * param;  param -= lr * g
_sgd = cupy.ElementwiseKernel(
    "T grad, T lr, T weight_decay",
    "T param",
    """
    T g = grad;
    if (weight_decay != (T)0) g += weight_decay * param;
    param -= lr * g;
    """,
    "sgd_update",
)

# SGD with momentum (first = 1 on the step that creates buf):
#   buf = g (first step) or momentum * buf + (1 - dampening) * g
#   param -= lr * (g + momentum * buf if nesterov else buf)
_sgd_momentum = cupy.ElementwiseKernel(
    "T grad, T lr, T weight_decay, T momentum, T one_minus_dampening, int32 nesterov, int32 first",
    "T param, T buf",
    """
    T g = grad;
    if (weight_decay != (T)0) g += weight_decay * param;
    if (first) {
        buf = g;
    } else {
        buf *= momentum;
        buf += one_minus_dampening * g;
    }
    param -= lr * (nesterov ? g + momentum * buf : buf);
    """,
    "sgd_update_momentum",
)

# g = grad + weight_decay * param;  sum_sq += g * g;  param -= clr * g / (sqrt(sum_sq) + eps)
_adagrad = cupy.ElementwiseKernel(
    "T grad, T clr, T eps, T weight_decay",
    "T param, T sum_sq",
    """
    T g = grad;
    if (weight_decay != (T)0) g += weight_decay * param;
    sum_sq += g * g;
    param -= clr * g / (sqrt(sum_sq) + eps);
    """,
    "adagrad_update",
)

# param *= decay (AdamW);  g = grad + l2 * param (Adam);  the moments;  the bias-corrected step
_adam = cupy.ElementwiseKernel(
    "T grad, T decay, T l2, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, "
    "T step_size, T bias_correction2_sqrt, T eps",
    "T param, T exp_avg, T exp_avg_sq",
    """
    if (decay != (T)1) param *= decay;
    T g = grad;
    if (l2 != (T)0) g += l2 * param;
    exp_avg *= beta1;
    exp_avg += one_minus_beta1 * g;
    exp_avg_sq *= beta2;
    exp_avg_sq += one_minus_beta2 * g * g;
    param -= step_size * exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt + eps);
    """,
    "adam_update",
)


def sgd_update(param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay):
    """One SGD step on `param`, in place; returns the momentum buffer (None without momentum).
    The rule is the reference's (tinydeep/optim.py: sgd_update)."""
    if not momentum:
        _sgd(grad, lr, weight_decay, param)
        return None
    first = buf is None
    if first:
        buf = cupy.empty_like(param)  # the kernel writes g into it: the reference's grad.copy()
    _sgd_momentum(
        grad, lr, weight_decay, momentum, 1 - dampening, int(nesterov), int(first), param, buf
    )
    return buf


def adagrad_update(param, grad, sum_sq, *, clr, eps, weight_decay) -> None:
    """One AdaGrad step on `param` and its running sum of squared gradients, in place
    (tinydeep/optim.py: adagrad_update)."""
    _adagrad(grad, clr, eps, weight_decay, param, sum_sq)


def adam_update(
    param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay, decoupled
) -> None:
    """One Adam (decoupled=False) or AdamW (decoupled=True) step on `param` and its moment
    estimates, in place (tinydeep/optim.py: adam_update)."""
    decay = 1 - lr * weight_decay if weight_decay and decoupled else 1.0
    l2 = weight_decay if weight_decay and not decoupled else 0.0
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    _adam(
        grad,
        decay,
        l2,
        beta1,
        1 - beta1,
        beta2,
        1 - beta2,
        step_size,
        bias_correction2_sqrt,
        eps,
        param,
        exp_avg,
        exp_avg_sq,
    )

"""Elementwise ops: arithmetic, the pointwise functions, clip and where.

Each op is a pair of array functions, `*_forward(...) -> (y, cache)` and
`*_backward(dy, cache) -> (dx, ...)`, then one line that makes it a Tensor function.
Binary ops broadcast like NumPy and return gradients of the broadcast shape; the engine
(tinydeep/tensor.py: unbroadcast) sums them back to each input's shape.

Shapes: any; `a`, `b` are broadcastable partners, `y` has their broadcast shape.
Read top to bottom: arithmetic, then the unary functions, then clip and where.
"""

from __future__ import annotations

from tinydeep.backend import kernelized, xp_of
from tinydeep.tensor import differentiable


def check_broadcast(op: str, shape_a: tuple, shape_b: tuple) -> None:
    """Raise ValueError naming `op` and both shapes when they do not broadcast."""
    if shape_a == shape_b or not shape_a or not shape_b:  # same shape, or a scalar
        return
    for m, n in zip(reversed(shape_a), reversed(shape_b)):
        if m != n and m != 1 and n != 1:
            raise ValueError(
                f"{op}: shapes {shape_a} and {shape_b} do not broadcast "
                f"(axes of size {m} and {n}, counted from the right)"
            )


# ---- arithmetic ------------------------------------------------------------------------------


def add_forward(a, b):
    """y = a + b."""
    check_broadcast("add", a.shape, b.shape)
    return a + b, None


def add_backward(dy, cache):
    """da = dy, db = dy."""
    return dy, dy


def subtract_forward(a, b):
    """y = a - b."""
    check_broadcast("subtract", a.shape, b.shape)
    return a - b, None


def subtract_backward(dy, cache):
    """da = dy, db = -dy."""
    return dy, -dy


def multiply_forward(a, b):
    """y = a * b."""
    check_broadcast("multiply", a.shape, b.shape)
    return a * b, (a, b)


def multiply_backward(dy, cache, needs_grad=(True, True)):
    """da = dy * b, db = dy * a (each only when needed: x * constant is common)."""
    a, b = cache
    return (dy * b if needs_grad[0] else None), (dy * a if needs_grad[1] else None)


def divide_forward(a, b):
    """y = a / b."""
    check_broadcast("divide", a.shape, b.shape)
    y = a / b
    return y, (b, y)


def divide_backward(dy, cache):
    """da = dy / b, db = -dy * a / b**2 = -dy * y / b."""
    b, y = cache
    da = dy / b
    return da, -da * y


def power_forward(a, b):
    """y = a ** b, both tensors."""
    check_broadcast("power", a.shape, b.shape)
    y = a**b
    return y, (a, b, y)


def power_backward(dy, cache):
    """da = dy * b * a**(b-1), db = dy * y * log(a).

    d/db is taken as 0 where a <= 0, where a**b has no real logarithmic derivative.
    """
    a, b, y = cache
    xp = xp_of(a)
    positive = a > 0
    log_a = xp.log(xp.where(positive, a, 1))
    return dy * b * a ** (b - 1), dy * y * log_a


def power_scalar_forward(x, exponent: float):
    """y = x ** exponent for a Python number `exponent` (x ** 2, x ** 0.5, ...)."""
    return x**exponent, (x, exponent)


def power_scalar_backward(dy, cache):
    """dx = dy * exponent * x**(exponent - 1)."""
    x, exponent = cache
    return (dy * exponent * x ** (exponent - 1),)


def negative_forward(x):
    """y = -x."""
    return -x, None


def negative_backward(dy, cache):
    """dx = -dy."""
    return (-dy,)


add = differentiable(add_forward, add_backward, "add")
subtract = differentiable(subtract_forward, subtract_backward, "subtract")
multiply = differentiable(multiply_forward, multiply_backward, "multiply")
divide = differentiable(divide_forward, divide_backward, "divide")
power = differentiable(power_forward, power_backward, "power")
power_scalar = differentiable(power_scalar_forward, power_scalar_backward, "power_scalar")
negative = differentiable(negative_forward, negative_backward, "negative")


# ---- pointwise functions ---------------------------------------------------------------------


def exp_forward(x):
    """y = e**x."""
    y = xp_of(x).exp(x)
    return y, y


def exp_backward(dy, y):
    """dx = dy * y."""
    return (dy * y,)


def log_forward(x):
    """y = ln(x)."""
    return xp_of(x).log(x), x


def log_backward(dy, x):
    """dx = dy / x."""
    return (dy / x,)


def sqrt_forward(x):
    """y = sqrt(x)."""
    y = xp_of(x).sqrt(x)
    return y, y


def sqrt_backward(dy, y):
    """dx = dy / (2 y)."""
    return (dy / (2 * y),)


def tanh_forward(x):
    """y = tanh(x)."""
    y = xp_of(x).tanh(x)
    return y, y


def tanh_backward(dy, y):
    """dx = dy * (1 - y**2)."""
    return (dy * (1 - y * y),)


def sigmoid_forward(x):
    """y = 1 / (1 + e**-x), computed from e = e**-|x| so that no exponent overflows:
    y = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0."""
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    y = xp.where(x >= 0, 1, e) / (1 + e)
    return y, y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    return (dy * y * (1 - y),)


@kernelized
def relu_forward(x):
    """y = max(x, 0)."""
    y = xp_of(x).maximum(x, 0)
    return y, y


@kernelized
def relu_backward(dy, y):
    """dx = dy where y > 0, else 0 (the kink at 0 gets 0)."""
    return (dy * (y > 0),)


def absolute_forward(x):
    """y = |x|."""
    return xp_of(x).abs(x), x


def absolute_backward(dy, x):
    """dx = dy * sign(x) (0 at x = 0)."""
    return (dy * xp_of(x).sign(x),)


exp = differentiable(exp_forward, exp_backward, "exp")
log = differentiable(log_forward, log_backward, "log")
sqrt = differentiable(sqrt_forward, sqrt_backward, "sqrt")
tanh = differentiable(tanh_forward, tanh_backward, "tanh")
sigmoid = differentiable(sigmoid_forward, sigmoid_backward, "sigmoid")
relu = differentiable(relu_forward, relu_backward, "relu")
absolute = differentiable(absolute_forward, absolute_backward, "absolute")


# ---- clip and where --------------------------------------------------------------------------


def clip_forward(x, min=None, max=None):
    """y = x limited to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    y = xp_of(x).clip(x, min, max)
    return y, (x, min, max)


def clip_backward(dy, cache):
    """dx = dy where min <= x <= max (bounds included, as in PyTorch), else 0."""
    x, lo, hi = cache
    inside = True
    if lo is not None:
        inside = x >= lo
    if hi is not None:
        inside = inside & (x <= hi)
    return (dy * inside,)


def where_forward(condition, a, b):
    """y = a where condition else b; condition is boolean and gets no gradient."""
    if condition.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {condition.dtype}")
    check_broadcast("where", condition.shape, a.shape)
    check_broadcast("where", condition.shape, b.shape)
    check_broadcast("where", a.shape, b.shape)
    return xp_of(a).where(condition, a, b), condition


def where_backward(dy, condition):
    """da = dy where condition, db = dy elsewhere."""
    zero = dy.dtype.type(0)
    xp = xp_of(dy)
    return None, xp.where(condition, dy, zero), xp.where(condition, zero, dy)


clip = differentiable(clip_forward, clip_backward, "clip")
where = differentiable(where_forward, where_backward, "where")

"""Matrix product with NumPy's `matmul` rules: 1-D operands and broadcast batch axes.

Shapes: a is (..., M, K) or (K,); b is (..., K, N) or (K,); y is (..., M, N) with the
1-D axes dropped. The batch axes `...` broadcast; the engine sums the gradients back down.
"""

from __future__ import annotations

from tinydeep.ops.elementwise import check_broadcast
from tinydeep.tensor import differentiable


def matmul_forward(a, b):
    """y = a @ b."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least 1 dimension, got shapes "
            f"{a.shape} and {b.shape}; use * to scale by a scalar"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: inner dimensions do not match: a has shape {a.shape} and b "
            f"has shape {b.shape} ({k_a} != {k_b})"
        )
    if a.ndim > 2 and b.ndim > 2:
        check_broadcast("matmul (batch axes)", a.shape[:-2], b.shape[:-2])
    return a @ b, (a, b)


def matmul_backward(dy, cache, needs_grad=(True, True)):
    """da = dy @ b^T, db = a^T @ dy (transposing the last two axes), with 1-D operands
    treated as a row (a) or a column (b) and the added axis removed again. A gradient that
    is not needed (the data batch of a first layer) is not computed."""
    a, b = cache
    a2 = a[None, :] if a.ndim == 1 else a  # (1, K)
    b2 = b[:, None] if b.ndim == 1 else b  # (K, 1)
    dy2 = dy  # (..., M, N) with the dropped 1-D axes put back, the column axis first
    if b.ndim == 1:
        dy2 = dy2[..., None]
    if a.ndim == 1:
        dy2 = dy2[..., None, :]
    da = db = None
    if needs_grad[0]:
        da = dy2 @ b2.swapaxes(-1, -2)  # (..., M, K)
        da = da[..., 0, :] if a.ndim == 1 else da
    if needs_grad[1]:
        db = a2.swapaxes(-1, -2) @ dy2  # (..., K, N)
        db = db[..., 0] if b.ndim == 1 else db
    return da, db


matmul = differentiable(matmul_forward, matmul_backward, "matmul")

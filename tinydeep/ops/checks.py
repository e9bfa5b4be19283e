"""The argument checks that run before an op's reference or its kernel.

A Numba or CUDA kernel reads its arrays by the shapes it is told, with no bounds checks of its
own, so an array that does not fit its geometry must be stopped before one reads it. Each
function here is the `check=` of a `@kernelized` function (tinydeep/backend.py), or is called
by one, and runs on every device, once, before any kernel or reference: they are written once,
here, beside the ops they guard but not inside their maths. Each raises a ValueError
(TypeError for a dtype) that names the op, the argument, what was expected and what was
received, before anything is computed.

Read in this order: the two helpers (check_window_fits, expect_shape); then the checks of
ops/conv.py (im2col, col2im, conv2d_backward), ops/pool.py (the two backwards),
ops/normalization.py (batch_moments, batch_norm, promoted, batch_norm_backward) and
ops/embedding.py (table and ids; ids in range).
"""

from __future__ import annotations

import numpy as np

# ---- helpers: a window that comes back from a cache, an array of a known shape ---------------


def check_window_fits(op: str, x_shape: tuple, window) -> tuple[int, int, int, int]:
    """(N, H, W, C) of x_shape, once it is checked to be 4 sizes and `window` to be the
    geometry window_geometry gives for it: OH = (H + top + bottom - KH) // SH + 1, and so
    for OW. For the ops that take x_shape and a window from a cache (the backwards), where
    nothing else ties them together."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x_shape must be (N, H, W, C), got {x_shape}")
    n, h, w, c = x_shape
    (kh, kw), (sh, sw), out, ((top, bottom), (left, right)) = window
    fits = ((h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1)
    if tuple(out) != fits:
        raise ValueError(
            f"{op}: the window's output {out[0]}x{out[1]} does not fit x_shape {x_shape}: a "
            f"{kh}x{kw} window at strides {sh}x{sw} with padding {window[3]} gives "
            f"{fits[0]}x{fits[1]}"
        )
    return n, h, w, c


def expect_shape(op: str, name: str, array, expected: tuple, layout: str) -> None:
    """Raise a ValueError naming op, argument, the layout and both shapes unless
    array.shape == expected."""
    if tuple(array.shape) != expected:
        raise ValueError(
            f"{op}: {name} must have shape {layout} = {expected}, got shape {tuple(array.shape)}"
        )


# ---- ops/conv.py ----------------------------------------------------------------------------


def check_im2col(x, window, pad_value=0.0) -> None:
    """The window must be x's: the reference's strided view would read past x otherwise."""
    check_window_fits("im2col", x.shape, window)


def check_col2im(dcols, x_shape: tuple, window) -> None:
    """col2im's arguments, before the reference or a kernel: the kernels read dcols by the
    geometry alone, so dcols must be (KH, KW, N, OH, OW, C) for x_shape and the window."""
    n, _, _, c = check_window_fits("col2im", x_shape, window)
    expected = (*window[0], n, *window[2], c)
    expect_shape("col2im", "dcols", dcols, expected, "(KH, KW, N, OH, OW, C)")


def check_conv2d_backward(dy, cache, needs_grad=(True, True)) -> None:
    """dy must be (N, OH, OW, F) for the forward's x, w and window (in the cache)."""
    x, w, window = cache
    n, _, _, _ = check_window_fits("conv2d_backward", x.shape, window)
    expected = (n, *window[2], w.shape[3])
    expect_shape("conv2d_backward", "dy", dy, expected, "(N, OH, OW, F)")


# ---- ops/pool.py ----------------------------------------------------------------------------


def check_max_pool2d_backward(dy, cache) -> None:
    """dy and argmax must be (N, OH, OW, C) for the cache's x_shape and window, and argmax
    integer: the kernels read both by that geometry, with no bounds checks."""
    argmax, x_shape, window = cache
    n, _, _, c = check_window_fits("max_pool2d_backward", x_shape, window)
    expected = (n, *window[2], c)
    expect_shape("max_pool2d_backward", "dy", dy, expected, "(N, OH, OW, C)")
    expect_shape("max_pool2d_backward", "argmax", argmax, expected, "(N, OH, OW, C)")
    if argmax.dtype.kind not in "iu":
        raise TypeError(
            "max_pool2d_backward: argmax must be an integer array (positions in the window), "
            f"got dtype {argmax.dtype}"
        )


def check_avg_pool2d_backward(dy, cache) -> None:
    """dy must be (N, OH, OW, C) for the cache's x_shape and window."""
    _, x_shape, window = cache
    n, _, _, c = check_window_fits("avg_pool2d_backward", x_shape, window)
    expect_shape("avg_pool2d_backward", "dy", dy, (n, *window.out, c), "(N, OH, OW, C)")


# ---- ops/normalization.py -------------------------------------------------------------------


def check_batch_moments(x) -> None:
    """Before the reference or a kernel: x must have a channel axis and at least one other."""
    if x.ndim < 2:
        raise ValueError(f"batch_moments: x must be (N, ..., C), got shape {x.shape}")


def check_batch_norm(x, gamma, beta, *, mean, var, epsilon: float = 1e-3) -> None:
    """batch_norm_forward's arguments: x (N, ..., C) and gamma, beta, mean, var (C,) each."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: x must be (N, C) or (N, H, W, C), got shape {x.shape}")
    channels = x.shape[-1]
    for name, value in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if value.shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} must have shape ({channels},), one value per channel of "
                f"x {x.shape}, got {value.shape}"
            )


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


# ---- ops/embedding.py -----------------------------------------------------------------------


def check_table_and_ids(op: str, table, ids) -> None:
    """Raise unless `table` is (V, D) and `ids` integers: shapes and dtypes, nothing read
    from the device."""
    if table.ndim != 2:
        raise ValueError(f"{op}: table must be (V, D), got shape {table.shape}")
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: ids must be an integer array, got dtype {ids.dtype}; pass e.g. "
            "numpy.asarray(ids, dtype=numpy.int64) (a Python list becomes a float32 tensor)"
        )


def check_ids_in_range(op: str, table, ids) -> None:
    """Raise unless every id is in [0, V). NumPy would read a negative id as counting from
    the end and return a row silently, so the range is checked here, not left to indexing.
    This reads the ids' values: on the GPU the kernel flags a bad id as it gathers instead,
    to wait for the device once."""
    if ids.size == 0:
        return
    rows = table.shape[0]
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= rows:
        bad = low if low < 0 else high
        raise ValueError(f"{op}: id {bad} is out of range for a table of V={rows} rows")


def check_embedding(table, ids) -> None:
    check_table_and_ids("embedding", table, ids)


def check_embedding_sum(table, ids) -> None:
    check_table_and_ids("embedding_sum", table, ids)
    if ids.ndim != 2:
        raise ValueError(f"embedding_sum: ids must be (N, K), got shape {ids.shape}")

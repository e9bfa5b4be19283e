"""CUDA kernels for embedding lookups: rows of a table gathered by integer ids.

replaces tinydeep/ops/embedding.py:embedding_forward
replaces tinydeep/ops/embedding.py:embedding_sum_forward

The references check the ids with `int(ids.min())` and `int(ids.max())`, two reductions and
two waits for the GPU, then gather with fancy indexing (embedding_sum also makes the (N, K,
D) array of gathered rows before summing it). Here one ElementwiseKernel gathers (and for
embedding_sum adds up the K rows in the order k = 0, 1, ...) and flags any id outside
[0, V) as it goes; the host then waits once, for that flag, because an out-of-range id must
raise here, as in the reference. ids.min() and ids.max() run only to word the error.
The checks of shapes and dtypes (table (V, D), integer ids, embedding_sum's (N, K)) run
before dispatch, in tinydeep/ops/embedding.py, for this kernel and the reference alike.

The backwards (RowSparseGrad of dy) are already free of copies and stay the references'.
Shapes: table (V, D); ids (...) any integer dtype; y (..., D); embedding_sum ids (N, K).
"""

from __future__ import annotations

import cupy

__all__ = ["embedding_forward", "embedding_sum_forward"]

# y[..., e] = table[ids[...], e], one thread per element of y (i is its flat index, d = D).
_gather = cupy.ElementwiseKernel(
    "raw T table, raw I ids, int64 rows, int64 d",
    "T y, raw int32 bad",
    """
    const long long id = (long long)ids[i / d];
    if (id < 0 || id >= rows) {
        bad[0] = 1;
        y = (T)0;
    } else {
        y = table[id * d + i % d];
    }
    """,
    "embedding_forward",
)

# y[n, e] = sum over k of table[ids[n, k], e], one thread per element of y (N, D).
_gather_sum = cupy.ElementwiseKernel(
    "raw T table, raw I ids, int64 rows, int64 d, int64 k",
    "T y, raw int32 bad",
    """
    const long long n = i / d, e = i % d;
    T sum = 0;
    for (long long j = 0; j < k; ++j) {
        const long long id = (long long)ids[n * k + j];
        if (id < 0 || id >= rows) {
            bad[0] = 1;
        } else {
            sum += table[id * d + e];
        }
    }
    y = sum;
    """,
    "embedding_sum_forward",
)


def _raise_if_bad(op: str, table: cupy.ndarray, ids: cupy.ndarray, bad: cupy.ndarray) -> None:
    """The range check, the reference's check_ids_in_range: one wait, for the kernel's flag
    (or, with D = 0 and nothing gathered, for a direct range test)."""
    rows = table.shape[0]
    if bad is None:
        bad = ((ids < 0) | (ids >= rows)).any()
    if bool(bad.any()):  # the op's one host sync: the error is raised now or never
        low, high = int(ids.min()), int(ids.max())
        found = low if low < 0 else high
        raise ValueError(f"{op}: id {found} is out of range for a table of V={rows} rows")


def embedding_forward(table: cupy.ndarray, ids: cupy.ndarray):
    """y = table[ids]: y[..., :] is row ids[...] of the table; y (..., D)."""
    rows, d = table.shape
    y = cupy.empty((*ids.shape, d), dtype=table.dtype)
    if ids.size:
        bad = None
        if y.size:
            bad = cupy.zeros(1, dtype=cupy.int32)
            _gather(table, ids, rows, d, y, bad)
        _raise_if_bad("embedding", table, ids, bad)
    return y, (ids, table.shape)


def embedding_sum_forward(table: cupy.ndarray, ids: cupy.ndarray):
    """y[n] = sum over k of table[ids[n, k]]; ids (N, K), y (N, D)."""
    rows, d = table.shape
    y = cupy.zeros((ids.shape[0], d), dtype=table.dtype)
    if ids.size:
        bad = None
        if y.size:
            bad = cupy.zeros(1, dtype=cupy.int32)
            _gather_sum(table, ids, rows, d, ids.shape[1], y, bad)
        _raise_if_bad("embedding_sum", table, ids, bad)
    return y, (ids, table.shape)

"""Numba kernels for embedding lookups and their row-sparse gradients.

replaces tinydeep/ops/embedding.py:gather_rows
replaces tinydeep/ops/embedding.py:gather_rows_sum
replaces tinydeep/sparse.py:scatter_add
replaces tinydeep/sparse.py:coalesce_rows

Gathering a few thousand rows of D = 8..64 values is cheap either way; what these save is
NumPy's generality: `table[ids].sum(axis=1)` builds the (N, K, D) array of rows before
adding it up, `np.add.at` goes element by element through a slow generic path, and
`np.unique(return_inverse=True)` sorts twice. The loops are serial: a batch touches a few
hundred kilobytes, less than a thread start costs, and rows that repeat would race.

Every loop adds in the reference's order (the ids of an example from the first, each row's
repeats in the order they come), so the results are the reference's bit for bit. The kernels
decline (return NotImplemented, and the reference runs) what the loops do not read: a table
or values of another dtype than float32 or float64, a table that is not C-contiguous, and
scatter_add's broadcast values. A loop checks every id before using it and, when one is out
of [0, V), declines too: the reference then raises (or, for scatter_add's negative indices,
counts from the end) as it always does. The checks of shapes and dtypes of embedding's ids
run before dispatch (tinydeep/ops/embedding.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .dtypes import FLOATS

__all__ = ["coalesce_rows", "gather_rows", "gather_rows_sum", "scatter_add"]


@njit(cache=True)
def _ids_in_range(ids, rows):
    for i in range(ids.size):
        if ids[i] < 0 or ids[i] >= rows:
            return False
    return True


@njit(cache=True)
def _gather_loop(table, ids, out):
    for i in range(ids.size):
        for d in range(out.shape[1]):
            out[i, d] = table[ids[i], d]


@njit(cache=True)
def _gather_sum_loop(table, ids, out):
    n, k = ids.shape
    for i in range(n):
        for d in range(out.shape[1]):
            out[i, d] = table[ids[i, 0], d]
        for j in range(1, k):
            for d in range(out.shape[1]):
                out[i, d] += table[ids[i, j], d]


@njit(cache=True)
def _scatter_add_loop(target, indices, values):
    for i in range(indices.size):
        for d in range(values.shape[1]):
            target[indices[i], d] += values[i, d]


@njit(cache=True)
def _coalesce_loop(indices, values, order):
    """Walk the indices in sorted (stable) order, summing each run of equal ones."""
    k = indices.size
    unique = 0
    for i in range(k):
        if i == 0 or indices[order[i]] != indices[order[i - 1]]:
            unique += 1
    rows = np.empty(unique, dtype=indices.dtype)
    summed = np.zeros((unique, values.shape[1]), dtype=values.dtype)
    r = -1
    for i in range(k):
        j = order[i]
        if i == 0 or indices[j] != indices[order[i - 1]]:
            r += 1
            rows[r] = indices[j]
        for d in range(values.shape[1]):
            summed[r, d] += values[j, d]
    return rows, summed


def _usable(table) -> bool:
    """A float NumPy array the loops can read as a contiguous (V, ...) array."""
    return isinstance(table, np.ndarray) and table.dtype in FLOATS and table.flags.c_contiguous


def gather_rows(table, ids):
    """y = table[ids]: table (V, D), ids (...) integers in [0, V); y (..., D)."""
    if not _usable(table):
        return NotImplemented
    flat = np.ascontiguousarray(ids).reshape(-1)
    if not _ids_in_range(flat, table.shape[0]):
        return NotImplemented
    out = np.empty((flat.size, table.shape[1]), dtype=table.dtype)
    _gather_loop(table, flat, out)
    return out.reshape(*ids.shape, table.shape[1])


def gather_rows_sum(table, ids):
    """y[n] = sum over k of table[ids[n, k]]: table (V, D), ids (N, K); y (N, D)."""
    if not _usable(table) or ids.shape[1] == 0:  # K = 0: the sum of no rows, NumPy's zeros
        return NotImplemented
    ids = np.ascontiguousarray(ids)
    if not _ids_in_range(ids.reshape(-1), table.shape[0]):
        return NotImplemented
    out = np.empty((ids.shape[0], table.shape[1]), dtype=table.dtype)
    _gather_sum_loop(table, ids, out)
    return out


def scatter_add(target, indices, values) -> None:
    """target[indices] += values, adding up repeated indices, in place.

    target (V, *R); indices (K,) integers in [0, V); values (K, *R) of target's dtype. The
    kernel declines anything else (broadcast values, other dtypes, a non-contiguous target):
    the reference's np.add.at takes it.
    """
    ok = _usable(target) and target.ndim >= 1 and getattr(indices, "ndim", 0) == 1
    ok = ok and indices.dtype.kind in "iu" and isinstance(values, np.ndarray)
    ok = ok and values.dtype == target.dtype and values.shape == (len(indices), *target.shape[1:])
    if ok:
        indices = np.ascontiguousarray(indices)
        ok = _ids_in_range(indices, target.shape[0])
    if not ok:
        return NotImplemented
    width = int(np.prod(target.shape[1:]))
    _scatter_add_loop(
        target.reshape(target.shape[0], width),
        indices,
        np.ascontiguousarray(values).reshape(len(indices), width),
    )


def coalesce_rows(indices, values):
    """(rows, summed): the sorted distinct indices (J,), and summed (J, *R) where summed[j]
    adds up the values of every k with indices[k] == rows[j]."""
    if not (values.dtype in FLOATS and indices.ndim == 1 and indices.dtype.kind in "iu"):
        return NotImplemented
    width = int(np.prod(values.shape[1:]))
    k = len(indices)
    if k and int(indices.max()) < np.iinfo(np.int64).max // k - 1:
        # Sort index * K + position: distinct keys, so NumPy's fast (SIMD) unstable sort
        # gives the stable order, repeats in the order they came (the reference's sums).
        keys = np.sort(indices.astype(np.int64) * k + np.arange(k))
        order = keys % k
    else:
        order = np.argsort(indices, kind="stable")
    rows, summed = _coalesce_loop(
        np.ascontiguousarray(indices),
        np.ascontiguousarray(values).reshape(len(indices), width),
        order,
    )
    return rows, summed.reshape(len(rows), *values.shape[1:])

"""Embedding lookups: rows of a table picked by integer ids, with row-sparse gradients.

`embedding(table, ids)` is `table[ids]`; `embedding_sum(table, ids)` adds up the K rows each
example picks, which with D = 1 is a sparse linear model (the "wide" half of Wide & Deep: one
weight per active feature, summed). Either way a batch touches a handful of the V rows, so the
table's gradient is a `RowSparseGrad` (tinydeep/sparse.py) holding only those rows, one per id,
repeats included (they add up when the gradient is made dense or applied).

Shapes: V rows in the table, D values per row, K ids per example.
  table (V, D); ids (...) integers in [0, V), any shape; embedding y (..., D);
  embedding_sum ids (N, K), y (N, D).
"""

from __future__ import annotations

from tinydeep.backend import kernelized
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import differentiable


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


@kernelized
def gather_rows(table, ids):
    """table[ids]: row ids[...] of the table (V, D) for every id; (..., D)."""
    return table[ids]


@kernelized
def gather_rows_sum(table, ids):
    """The K rows each example picks, added up: table (V, D), ids (N, K); (N, D)."""
    return table[ids].sum(axis=1)


# The forwards' checks of shapes and dtypes run before the reference or a kernel
# (kernelized(check=...)): every device gets them, once. The range check reads the ids, so
# it stays in each: the reference's check_ids_in_range, the CUDA kernel's flag.


def check_embedding(table, ids) -> None:
    check_table_and_ids("embedding", table, ids)


def check_embedding_sum(table, ids) -> None:
    check_table_and_ids("embedding_sum", table, ids)
    if ids.ndim != 2:
        raise ValueError(f"embedding_sum: ids must be (N, K), got shape {ids.shape}")


# tinydeep_kernels.cuda replaces the whole forward, the CPU only the gather
@kernelized(check=check_embedding)
def embedding_forward(table, ids):
    """y = table[ids]: y[..., :] is row ids[...] of the table; y (..., D)."""
    check_ids_in_range("embedding", table, ids)
    return gather_rows(table, ids), (ids, table.shape)


def embedding_backward(dy, cache):
    """dtable = dy scattered onto the rows named by ids, kept sparse: RowSparseGrad with
    indices ids.reshape(-1) and values dy.reshape(-1, D) (a repeated id adds up).
    No gradient for the ids (integers)."""
    ids, shape = cache
    return RowSparseGrad(ids.reshape(-1), dy.reshape(-1, shape[1]), shape), None


@kernelized(check=check_embedding_sum)
def embedding_sum_forward(table, ids):
    """y[n] = sum over k of table[ids[n, k]]; ids (N, K), y (N, D)."""
    check_ids_in_range("embedding_sum", table, ids)
    return gather_rows_sum(table, ids), (ids, table.shape)


def embedding_sum_backward(dy, cache):
    """dtable = RowSparseGrad with indices ids.reshape(-1) and values dy[n] repeated for each
    of the K ids of example n ((N*K, D), in the row-major order of ids). No gradient for ids."""
    ids, shape = cache
    values = dy.repeat(ids.shape[1], axis=0)  # (N*K, D): row n*K + k is dy[n]
    return RowSparseGrad(ids.reshape(-1), values, shape), None


embedding = differentiable(embedding_forward, embedding_backward, "embedding")
embedding_sum = differentiable(embedding_sum_forward, embedding_sum_backward, "embedding_sum")

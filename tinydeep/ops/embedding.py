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
from tinydeep.ops.checks import check_embedding, check_embedding_sum, check_ids_in_range
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import differentiable


@kernelized
def gather_rows(table, ids):
    """table[ids]: row ids[...] of the table (V, D) for every id; (..., D)."""
    return table[ids]


@kernelized
def gather_rows_sum(table, ids):
    """The K rows each example picks, added up: table (V, D), ids (N, K); (N, D)."""
    return table[ids].sum(axis=1)


# The forwards' checks of shapes and dtypes (tinydeep/ops/checks.py) run before the reference
# or a kernel (kernelized(check=...)): every device gets them, once. The range check reads the
# ids, so it stays in each: the reference's check_ids_in_range, the CUDA kernel's flag.
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

"""Row-sparse gradients: the gradient of an embedding table, without a dense table of zeros.

A lookup `table[ids]` touches only the rows in `ids`, so its gradient is zero everywhere else.
`RowSparseGrad` keeps just those rows: `values[k]` is the gradient of row `indices[k]`, and
an index may appear several times (its values then add up). The engine passes it through
like an array (tinydeep/tensor.py), optimizers update only the rows it names
(tinydeep/optim.py), and `to_dense()` gives the ordinary array when one is needed.

Shapes: V rows in the dense table, each of shape R (often (D,)); K stored rows.
  indices (K,) integers in [0, V); values (K, *R); shape (V, *R).
"""

from __future__ import annotations

import numpy as np

from tinydeep.backend import kernelized, xp_of


@kernelized
def scatter_add(target, indices, values) -> None:
    """target[indices] += values, adding up repeated indices (in place, NumPy or CuPy)."""
    if xp_of(target) is np:
        np.add.at(target, indices, values)
    else:
        import cupyx

        cupyx.scatter_add(target, indices, values)


@kernelized
def coalesce_rows(indices, values):
    """(rows, summed): the distinct indices, sorted (J,), and the values of each added up
    (J, *R): summed[j] is the sum of values[k] over every k with indices[k] == rows[j]."""
    xp = xp_of(values)
    rows, where = xp.unique(indices, return_inverse=True)
    summed = xp.zeros((len(rows), *values.shape[1:]), dtype=values.dtype)
    scatter_add(summed, where.reshape(-1), values)
    return rows, summed


class RowSparseGrad:
    """The gradient of a (V, *R) array that is zero outside the rows in `indices`."""

    __slots__ = ("indices", "shape", "values")
    __array_ufunc__ = None  # dense_array + sparse calls RowSparseGrad.__radd__

    def __init__(self, indices, values, shape: tuple[int, ...]):
        if values.shape != (len(indices), *shape[1:]):
            raise ValueError(
                f"RowSparseGrad: values of shape {values.shape} do not fit {len(indices)} "
                f"rows of a table of shape {shape}"
            )
        self.indices = indices
        self.values = values
        self.shape = tuple(shape)

    @property
    def dtype(self):
        return self.values.dtype

    def __repr__(self) -> str:
        return f"RowSparseGrad({len(self.indices)} rows of a table of shape {self.shape})"

    def copy(self) -> RowSparseGrad:
        return RowSparseGrad(self.indices.copy(), self.values.copy(), self.shape)

    def coalesce(self) -> RowSparseGrad:
        """The same gradient with each row once, indices sorted, repeated rows summed."""
        rows, summed = coalesce_rows(self.indices, self.values)
        return RowSparseGrad(rows, summed, self.shape)

    def to_dense(self):
        """The full (V, *R) array, zeros outside the stored rows."""
        dense = xp_of(self.values).zeros(self.shape, dtype=self.values.dtype)
        scatter_add(dense, self.indices, self.values)
        return dense

    def __add__(self, other):
        """Sparse + sparse stays sparse (rows appended); sparse + dense is dense."""
        if isinstance(other, RowSparseGrad):
            if other.shape != self.shape:
                raise ValueError(f"RowSparseGrad: cannot add shapes {self.shape} and {other.shape}")
            xp = xp_of(self.values)
            return RowSparseGrad(
                xp.concatenate([self.indices, other.indices]),
                xp.concatenate([self.values, other.values]),
                self.shape,
            )
        return other + self.to_dense()

    __radd__ = __add__

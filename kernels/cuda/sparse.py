"""CUDA kernel for adding rows into a table at repeated indices (row-sparse gradients).

replaces tinydeep/sparse.py:scatter_add

This is cupyx.scatter_add, on purpose. It already is one CUDA kernel, one thread per element
of `values`, each doing an atomicAdd into `target`: what a hand-written scatter would be.
The reference's CuPy branch calls it too, so this kernel only skips the reference's device
test. The price of the atomics is the order in which repeated indices add up, which varies
from run to run: float results can differ in the last bits (sums of distinct indices, and
all integer sums, are exact). A deterministic version would sort the indices first (a
stable argsort of K ids, then one ordered segment sum per row) - worth it only if bitwise
reproducible embedding gradients become a requirement.

Dtypes: those CUDA atomicAdd supports (float16, float32, float64, int32, uint32, uint64).
"""

from __future__ import annotations

import cupy
import cupyx

__all__ = ["scatter_add"]


def scatter_add(target: cupy.ndarray, indices, values) -> None:
    """target[indices] += values, adding up repeated indices (in place)."""
    cupyx.scatter_add(target, indices, values)

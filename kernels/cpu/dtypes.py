"""The dtypes the Numba loops of this folder are written for. A kernel declines any other
(it returns NotImplemented, and tinydeep runs the reference instead: tinydeep/backend.py,
kernelized), so no kernel carries a copy of its reference for the inputs it leaves out.

Numba compiles no float16 or long double arithmetic; the loops' arithmetic follows the
reference's in float32 and float64, the dtypes models train in.
"""

from __future__ import annotations

import numpy as np

__all__: list[str] = []  # helpers only: kernels/cpu/__init__.py gathers nothing from here

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def numeric(dtype) -> bool:
    """float32, float64 or an integer dtype: what the loops that copy, add up and compare
    elements (im2col, col2im, max pooling) compile for."""
    return dtype in FLOATS or dtype.kind in "iu"

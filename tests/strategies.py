"""Hypothesis strategies for the op tests: shapes, broadcastable partners, float64 arrays.

Values are drawn away from the places where an op has no derivative (0 for relu and abs,
ties for max, the bounds of clip, 0 for divisors and logarithms), so central differences
and backward() are comparing the same thing.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_SIDE = 4  # small sides keep a full Jacobian (outputs x inputs) cheap


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1) -> st.SearchStrategy:
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=MAX_SIDE
    )


def floats(low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


def away_from_zero(low: float = 0.1, high: float = 3.0) -> st.SearchStrategy:
    """Floats with low <= |x| <= high, of either sign."""
    return floats(low, high) | floats(-high, -low)


def arrays(shape, elements=None) -> st.SearchStrategy:
    """float64 arrays of `shape` (a tuple or a strategy for one)."""
    return hnp.arrays(np.float64, shape, elements=floats() if elements is None else elements)


def distinct_arrays(shape) -> st.SearchStrategy:
    """float64 arrays whose elements differ pairwise by at least 0.01 (no ties for max)."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-300, 300), unique=True).map(
        lambda a: a.astype(np.float64) / 100
    )


@st.composite
def broadcastable_pair(draw, elements=None, other_elements=None, max_dims: int = 3):
    """Two float64 arrays whose shapes broadcast together (sizes 1 and missing axes included)."""
    (shape_a, shape_b), _ = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=max_dims, max_side=MAX_SIDE
        )
    )
    a = draw(arrays(shape_a, elements))
    b = draw(arrays(shape_b, elements if other_elements is None else other_elements))
    return a, b

"""Hypothesis strategies for the op tests: shapes, broadcastable partners, float64 arrays.

Values are drawn away from the places where an op has no derivative (0 for relu and abs,
ties for max, the bounds of clip, 0 for divisors and logarithms), so central differences
and backward() are comparing the same thing.

Draws are mostly ordinary: hypothesis left to itself favours its simplest values, and with
its defaults a fifth of the drawn arrays were all zeros, nearly half constant and a quarter
a single element, on which a wrong backward often gives the right answer (a gradient with a
flipped sign is still zero). Here each element is drawn on its own (no fill value), shapes
have 2-4 elements along most axes, and broadcasting partners differ in shape. The edge cases
are still drawn, rarely, and tests that care about them name them with `@example`: `EDGES`
holds the usual ones. tests/test_strategies.py measures how often each kind comes up.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_SIDE = 4  # small sides keep a full Jacobian (outputs x inputs) cheap


def _weighted(common: list[int], rare: list[int], weight: int = 4) -> st.SearchStrategy:
    """One of `common` (each `weight` times as likely) or `rare`; shrinks towards common[0]."""
    return st.sampled_from(common * weight + rare) if common else st.sampled_from(rare)


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1) -> st.SearchStrategy:
    """Shapes of min_dims to max_dims axes, each of min_side to MAX_SIDE elements; 0-d shapes
    and axes of one element are drawn rarely (both are broadcasting's special cases)."""
    ranks = _weighted(list(range(max(min_dims, 1), max_dims + 1)), [0] * (min_dims == 0))
    sides = _weighted(list(range(max(min_side, 2), MAX_SIDE + 1)), [1] * (min_side <= 1))
    return ranks.flatmap(lambda rank: st.tuples(*[sides] * rank))


def floats(low: float = -3.0, high: float = 3.0) -> st.SearchStrategy:
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


def away_from_zero(low: float = 0.1, high: float = 3.0) -> st.SearchStrategy:
    """Floats with low <= |x| <= high, of either sign."""
    return floats(low, high) | floats(-high, -low)


def arrays(shape, elements=None) -> st.SearchStrategy:
    """float64 arrays of `shape` (a tuple or a strategy for one), every element drawn."""
    elements = floats() if elements is None else elements
    return hnp.arrays(np.float64, shape, elements=elements, fill=st.nothing())


def distinct_arrays(shape) -> st.SearchStrategy:
    """float64 arrays whose elements differ pairwise by at least 0.01 (no ties for max)."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-300, 300), unique=True).map(
        lambda a: a.astype(np.float64) / 100
    )


@st.composite
def broadcastable_pair(draw, elements=None, other_elements=None, max_dims: int = 3):
    """Two float64 arrays whose shapes broadcast together: one shape drawn, the other made from
    it by dropping leading axes and setting some axes to 1 (each rarely all of them)."""
    shape = draw(shapes(max_dims=max_dims))
    dropped = draw(_weighted([0, 1], list(range(2, len(shape) + 1)))) if shape else 0
    other = tuple(1 if draw(st.integers(0, 3)) == 0 else s for s in shape[dropped:])
    shape_a, shape_b = (shape, other) if draw(st.booleans()) else (other, shape)
    a = draw(arrays(shape_a, elements))
    b = draw(arrays(shape_b, elements if other_elements is None else other_elements))
    return a, b


# The edge cases the strategies above draw rarely, for `@example`s: a 0-d array, one element,
# all zeros, a constant, broadcasting a column against a row. Every second operand of a pair
# is at least 0.5 from zero, so the pairs suit divide too.
EDGES = {
    "scalar": np.array(1.5),
    "one": np.array([-2.0]),
    "zeros": np.zeros((2, 3)),
    "constant": np.full((3, 2), 0.75),
}
EDGE_PAIRS = {
    "scalars": (np.array(1.5), np.array(-0.5)),
    "zeros, a constant": (np.zeros((2, 3)), np.full(3, 0.75)),
    "a column, a row": (np.array([[1.0], [-0.5], [2.0]]), np.array([[0.5, -1.5]])),
    "one element, a row": (np.array([-2.0]), np.array([[1.25, 0.5]])),
}

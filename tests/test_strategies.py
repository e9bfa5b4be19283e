"""tests/strategies.py draws mostly ordinary arrays: measured over 200 derandomized draws.

Under hypothesis's own defaults the audit found 20% of drawn arrays all zeros, 46% constant,
27% of one element, and both partners of a broadcasting pair of one element 46% of the time:
there a wrong backward often gives the right number. The bounds below are what the
strategies must stay under; the edge cases themselves are `@example`s in the op tests.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import EDGE_PAIRS, EDGES, arrays, broadcastable_pair, shapes


def draws(strategy: st.SearchStrategy, n: int = 200) -> list:
    """n values of `strategy`, drawn as CI draws them (derandomized)."""
    found = []

    @settings(max_examples=n, derandomize=True, database=None)
    @given(strategy)
    def collect(value):
        found.append(value)

    collect()
    return found


def fraction(values: list, predicate) -> float:
    return sum(map(predicate, values)) / len(values)


def test_arrays_are_rarely_zero_constant_or_one_element():
    drawn = draws(arrays(shapes()))
    zeros = fraction(drawn, lambda a: not a.any())
    constant = fraction(drawn, lambda a: a.size > 1 and np.all(a == a.flat[0]))
    single = fraction(drawn, lambda a: a.size == 1)
    print(f"all zeros {zeros:.1%}, constant {constant:.1%}, one element {single:.1%}")
    assert zeros <= 0.05 and constant <= 0.15 and single <= 0.10
    assert single > 0  # the rare cases are still drawn


def test_broadcasting_pairs_are_rarely_both_one_element():
    drawn = draws(broadcastable_pair())
    both = fraction(drawn, lambda p: p[0].size == 1 and p[1].size == 1)
    same = fraction(drawn, lambda p: p[0].shape == p[1].shape)
    print(f"both one element {both:.1%}, same shape {same:.1%}")
    assert both <= 0.10 and same <= 0.5
    for a, b in drawn:
        np.broadcast_shapes(a.shape, b.shape)  # every pair broadcasts


def test_the_edge_cases_are_what_they_say():
    assert EDGES["scalar"].ndim == 0 and EDGES["one"].size == 1
    assert not EDGES["zeros"].any() and np.all(EDGES["constant"] == EDGES["constant"].flat[0])
    for a, b in EDGE_PAIRS.values():
        np.broadcast_shapes(a.shape, b.shape)
        assert np.all(np.abs(b) >= 0.5)  # usable as divisors

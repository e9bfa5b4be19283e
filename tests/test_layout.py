"""The layered layout (tinydeep/layout.py): what a drawing relies on, for any graph.

No two nodes overlap; every edge runs rank by rank from its source's border to its target's
(an edge that closed a cycle the other way); everything lies inside the reported size; a box
holds its nodes and keeps out of its siblings' way; and the placement step's least-squares
spreading (`_spread`) is exact, checked against the characterization of isotonic regression.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinydeep.layout import _spread, layered_layout

EPS = 1e-6


def rect(center, size) -> tuple[float, float, float, float]:
    return (
        center[0] - size[0] / 2,
        center[1] - size[1] / 2,
        center[0] + size[0] / 2,
        center[1] + size[1] / 2,
    )


def overlap(a, b) -> bool:
    return a[0] < b[2] - EPS and b[0] < a[2] - EPS and a[1] < b[3] - EPS and b[1] < a[3] - EPS


def inside(inner, outer) -> bool:
    return all(inner[i] >= outer[i] - EPS for i in (0, 1)) and all(
        inner[i] <= outer[i] + EPS for i in (2, 3)
    )


@st.composite
def graphs(draw):
    """Up to 12 nodes of random sizes; edges mostly forward, some backward (cycles), and a
    few self-loops; each edge once."""
    count = draw(st.integers(1, 12))
    sizes = draw(
        st.lists(st.tuples(st.floats(10, 120), st.floats(10, 60)), min_size=count, max_size=count)
    )
    pairs = st.tuples(st.integers(0, count - 1), st.integers(0, count - 1))
    edges = draw(st.lists(pairs, max_size=2 * count, unique=True))
    return sizes, edges


def check_routes(layout, sizes, edges) -> None:
    """Each route leaves its source's border and reaches its target's, one rank at a time,
    in one direction across the ranks."""
    for (u, v), route in zip(edges, layout.routes):
        if u == v:
            assert route is None
            continue
        source, target = rect(layout.centers[u], sizes[u]), rect(layout.centers[v], sizes[v])
        downwards = route[-1][1] > route[0][1]
        assert route[0][1] == pytest.approx(source[3] if downwards else source[1])
        assert route[-1][1] == pytest.approx(target[1] if downwards else target[3])
        assert source[0] - EPS <= route[0][0] <= source[2] + EPS
        assert target[0] - EPS <= route[-1][0] <= target[2] + EPS
        steps = [b[1] - a[1] for a, b in pairwise(route)]
        assert all(step > 0 for step in steps) or all(step < 0 for step in steps)


@given(graphs())
def test_nodes_never_overlap_and_edges_run_from_border_to_border(graph):
    sizes, edges = graph
    layout = layered_layout(sizes, edges)
    rects = [rect(c, s) for c, s in zip(layout.centers, sizes)]
    for i, a in enumerate(rects):
        assert inside(a, (0, 0, *layout.size))
        assert not any(overlap(a, b) for b in rects[i + 1 :])
    check_routes(layout, sizes, edges)


def test_an_acyclic_graph_is_drawn_downwards_and_a_cycle_has_one_edge_going_back():
    sizes = [(40.0, 20.0)] * 4
    chain = layered_layout(sizes, [(0, 1), (1, 2), (2, 3), (0, 3)])
    across = [c[1] for c in chain.centers]
    assert across == sorted(across) and len(set(across)) == 4
    column = [c[0] for c in chain.centers]
    assert column[1:] == pytest.approx(column[:-1], abs=0.05)  # one column; 0 -> 3 goes around
    cycle = [(0, 1), (1, 2), (2, 0), (3, 3)]
    layout = layered_layout(sizes, cycle)
    directions = [r[-1][1] > r[0][1] for r in layout.routes[:3]]
    assert directions == [True, True, False]  # 2 -> 0 is drawn upwards
    assert layout.routes[3] is None  # the self-loop is left to the drawing
    check_routes(layout, sizes, cycle)


def blocks(count: int) -> tuple[list, list, list]:
    """A chain of `count` boxed blocks shaped like tinydeep's ResidualBlock: a -> b -> r ->
    c -> d -> add, a shortcut from the block's input to `add`, and `r` called again on add's
    output (a cycle), r feeding the next block."""
    sizes, edges, groups = [(60.0, 24.0)], [], [()]
    feeding = 0
    for k in range(count):
        a, b, r, c, d, add = range(len(sizes), len(sizes) + 6)
        sizes += [
            (80.0, 30.0),
            (120.0, 30.0),
            (50.0, 30.0),
            (80.0, 30.0),
            (120.0, 30.0),
            (40.0, 20.0),
        ]
        groups += [(k,)] * 6
        edges += [(feeding, a), (a, b), (b, r), (r, c), (c, d), (d, add), (feeding, add), (add, r)]
        feeding = r
    sizes.append((60.0, 24.0))
    groups.append(())
    edges.append((feeding, len(sizes) - 1))
    return sizes, edges, groups


def test_boxes_hold_their_nodes_and_keep_apart():
    sizes, edges, groups = blocks(4)
    layout = layered_layout(sizes, edges, groups)
    rects = [rect(c, s) for c, s in zip(layout.centers, sizes)]
    assert sorted(layout.boxes) == [(0,), (1,), (2,), (3,)]
    for path, box in layout.boxes.items():
        assert inside(box, (0, 0, *layout.size))
        for node, r in enumerate(rects):
            if groups[node][:1] == path:
                assert inside(r, box)
            else:
                assert not overlap(r, box)
        for other, box2 in layout.boxes.items():
            assert other == path or not overlap(box, box2)
    # each box starts below the one before: the blocks are drawn one after the other
    tops = [layout.boxes[(k,)][1] for k in range(4)]
    bottoms = [layout.boxes[(k,)][3] for k in range(4)]
    assert all(bottoms[k] < tops[k + 1] for k in range(3))
    check_routes(layout, sizes, edges)


def test_nested_boxes_sit_inside_their_outer_box():
    sizes = [(50.0, 20.0)] * 5
    groups = [(), ("outer",), ("outer", "inner"), ("outer", "inner"), ()]
    layout = layered_layout(sizes, [(0, 1), (1, 2), (2, 3), (3, 4)], groups)
    outer, inner = layout.boxes[("outer",)], layout.boxes[("outer", "inner")]
    assert inside(inner, outer) and inner != outer
    assert inner[1] - outer[1] >= 8 - EPS  # the outer box's padding, at least
    assert not overlap(rect(layout.centers[0], sizes[0]), outer)


# ---- _spread: the placement's least squares -----------------------------------------------------


def test_spread_keeps_targets_that_fit_and_parts_those_that_clash():
    assert _spread([0.0, 50.0], [1.0, 1.0], [20.0]) == [0.0, 50.0]
    assert _spread([10.0, 10.0], [1.0, 1.0], [20.0]) == [0.0, 20.0]  # halves the clash
    left, right = _spread([10.0, 10.0], [1.0, 0.25], [20.0])  # the light one gives way
    assert (left, right) == (pytest.approx(6.0), pytest.approx(26.0))


@given(
    st.lists(
        st.tuples(st.floats(-100, 100), st.floats(0.1, 4), st.floats(0, 30)),
        min_size=1,
        max_size=8,
    )
)
def test_spread_is_the_least_squares_solution(rows):
    """Isotonic regression's characterization: y = x - offset never decreases; y is constant
    on blocks, each block at the weighted mean of its targets, and within a block every
    proper prefix's mean is at least the block's (else that prefix would move down)."""
    targets, weights, gaps = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows[1:]]
    xs = _spread(targets, weights, gaps)
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    ys = [x - o for x, o in zip(xs, offsets)]
    zs = [t - o for t, o in zip(targets, offsets)]  # what each y would like to be
    assert all(b >= a - 1e-9 for a, b in pairwise(ys))
    start = 0
    while start < len(ys):
        end = start
        while end + 1 < len(ys) and abs(ys[end + 1] - ys[start]) < 1e-9:
            end += 1
        block = range(start, end + 1)
        mean = sum(weights[i] * zs[i] for i in block) / sum(weights[i] for i in block)
        assert ys[start] == pytest.approx(mean, abs=1e-7)
        for stop in range(start, end):
            prefix = range(start, stop + 1)
            prefix_mean = sum(weights[i] * zs[i] for i in prefix) / sum(weights[i] for i in prefix)
            assert prefix_mean >= mean - 1e-7
        start = end + 1

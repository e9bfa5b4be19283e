"""Where to draw a directed graph: a layered ("Sugiyama") layout, in plain Python.

tinydeep/plot.py draws models and autodiff graphs with matplotlib; this module decides where
each node, edge and box goes, and knows nothing of models or of matplotlib. It follows the
four classic steps of Sugiyama, Tagawa and Toda (1981), the method behind Graphviz's `dot`:

  1. cycles:  a depth-first search reverses the edges that point back up (a shared layer
              called twice makes a cycle); they are drawn in their true direction at the end;
  2. ranks:   each node one rank below its lowest input (longest path), then nodes pulled
              down next to what reads them, so an input used late does not sit at the top;
              a box that feeds a sibling box ends before that one starts, as `dot` keeps
              its clusters apart;
  3. order:   an edge that spans several ranks gets a dummy node on each rank it crosses (the
              bends of its route, inside the box it is passing through), then nodes are
              sorted within each rank by the mean position of their neighbours (barycenter
              sweeps, down and up), keeping the order with the fewest crossings; the nodes of
              one box stay side by side;
  4. place:   each node moves towards the nodes at the other ends of its edges (not towards
              the dummies between, so a chain of layers stays in one column and long edges
              bend around it), and the smallest move that keeps the order and the gaps is
              found exactly by isotonic regression (pool adjacent violators).

Coordinates are in "along" (within a rank) and "across" (from rank to rank, downwards) units,
the drawing's points: rankdir="TB" draws along as x, "LR" draws it as y. Read layered_layout,
then the steps in order. Left out: network-simplex ranking and Brandes-Kopf placement (what
`dot` does: a little tighter, several times the code), and edge labels. The ends of the
edges at one node are spread along its border, in the order of where they lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

Point = tuple[float, float]  # (along, across)


@dataclass
class Layout:
    """centers: (along, across) of each node's centre. routes: for each edge, the points of its
    route from the border of its source to the border of its target (None for a self-loop).
    boxes: for each group path, its rectangle (along0, across0, along1, across1). size: the
    (along, across) extent; everything lies in [0, size]."""

    centers: list[Point]
    routes: list[list[Point] | None]
    boxes: dict[tuple, tuple[float, float, float, float]]
    size: Point


def layered_layout(
    sizes: list[Point],
    edges: list[tuple[int, int]],
    groups: list[tuple] | None = None,
    node_gap: float = 18.0,
    rank_gap: float = 30.0,
    group_pad: float = 8.0,
    label_pad: float = 14.0,
    label_axis: str = "across",
) -> Layout:
    """Lay out nodes of `sizes` (along, across) joined by `edges` (source, target).

    groups: per node, the boxes it sits in, outermost first (a path of hashable ids, () for
    none); each box is drawn around its nodes with `group_pad` on every side and `label_pad`
    more on its low side of `label_axis` ("across": above it in a TB drawing; "along").
    """
    count = len(sizes)
    groups = list(groups) if groups is not None else [()] * count
    dag, flipped = _acyclic(count, edges)
    rank = _ranks(count, dag, groups)

    # Step 3a: a dummy node on every rank that a long edge crosses. chains[e] is the route of
    # edge e through the ranks, source to target, in the acyclic orientation; ends[d] the two
    # real nodes of a dummy's edge. A dummy sits in the deepest box of either end that spans
    # its rank, so an edge into a box travels inside it, not across its neighbours' boxes.
    spans = _spans(rank, groups)
    size, group, rank_of = list(sizes), list(groups), list(rank)
    ends = [(node, node) for node in range(count)]
    chains: list[list[int] | None] = []
    for u, v in dag:
        if u == v:
            chains.append(None)
            continue
        chain = [u]
        for r in range(rank[u] + 1, rank[v]):
            size.append((0.0, 0.0))
            group.append(_box_at(r, groups[u], groups[v], spans))
            rank_of.append(r)
            ends.append((u, v))
            chain.append(len(size) - 1)
        chains.append([*chain, v])
    real = [i < count for i in range(len(size))]
    up: list[list[int]] = [[] for _ in size]  # the neighbours on the rank above
    down: list[list[int]] = [[] for _ in size]
    for chain in chains:
        for a, b in pairwise(chain or []):
            down[a].append(b)
            up[b].append(a)
    layers: list[list[int]] = [[] for _ in range(max(rank_of, default=-1) + 1)]
    for node in range(len(size)):
        layers[rank_of[node]].append(node)

    _order(layers, up, down, group)
    along = _place(layers, up, down, size, group, ends, node_gap, group_pad, label_pad, label_axis)
    across = _rank_positions(layers, size, group, real, rank_gap, group_pad, label_pad, label_axis)

    centers = [(along[i], across[rank_of[i]]) for i in range(len(size))]
    routes = _routes(chains, flipped, centers, size)
    boxes = _boxes(centers, size, group, group_pad, label_pad, label_axis)
    return _shifted(centers[:count], routes, boxes, size[:count])


# ---- step 1: break cycles ------------------------------------------------------------------


def _acyclic(count: int, edges: list[tuple[int, int]]) -> tuple[list, list[bool]]:
    """The edges with those that close a cycle reversed, and which were. A depth-first search
    from each node in turn (iterative): an edge to a node still on the search's path points
    back up. Self-loops stay as they are (routed apart)."""
    out: list[list[int]] = [[] for _ in range(count)]
    for u, v in edges:
        out[u].append(v)
    state = [0] * count  # 0 unseen, 1 on the current path, 2 done
    back: set[tuple[int, int]] = set()
    for start in range(count):
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, successors = stack[-1]
            step = next(successors, None)
            if step is None:
                state[node] = 2
                stack.pop()
            elif state[step] == 1 and step != node:
                back.add((node, step))
            elif state[step] == 0:
                state[step] = 1
                stack.append((step, iter(out[step])))
    flipped = [(u, v) in back for u, v in edges]
    return [(v, u) if f else (u, v) for (u, v), f in zip(edges, flipped)], flipped


# ---- step 2: ranks -------------------------------------------------------------------------


def _ranks(count: int, dag: list[tuple[int, int]], groups: list[tuple]) -> list[int]:
    """Longest path from the sources; then, from the sinks upwards, each node that has at least
    as many outputs as inputs moved down to just above the first node that reads it; then
    boxes that feed one another put one after the other (_separate); then empty ranks closed."""
    inputs: list[list[int]] = [[] for _ in range(count)]
    outputs: list[list[int]] = [[] for _ in range(count)]
    for u, v in dag:
        if u != v:
            inputs[v].append(u)
            outputs[u].append(v)
    waiting = [len(x) for x in inputs]
    order = [node for node in range(count) if not waiting[node]]  # Kahn's topological sort
    for node in order:
        for v in outputs[node]:
            waiting[v] -= 1
            if not waiting[v]:
                order.append(v)
    rank = [0] * count
    for node in order:
        for v in outputs[node]:
            rank[v] = max(rank[v], rank[node] + 1)
    for node in reversed(order):
        if outputs[node] and len(outputs[node]) >= len(inputs[node]):
            rank[node] = min(rank[v] for v in outputs[node]) - 1
    _separate(rank, dag, groups)
    for node in order:  # every edge points down again, whatever _separate had to give up
        for v in outputs[node]:
            rank[v] = max(rank[v], rank[node] + 1)
    used = sorted(set(rank))
    renumber = {r: i for i, r in enumerate(used)}
    return [renumber[r] for r in rank]


def _separate(rank: list[int], dag: list[tuple[int, int]], groups: list[tuple]) -> None:
    """Where an edge leaves a box for a sibling box (or a node beside it), the second one
    starts below the end of the first, so that boxes do not overlap: a shared layer in the
    middle of a block feeds the next block, yet the next block is drawn after the whole of
    this one, as Graphviz draws clusters. Two boxes that feed each other are left alone."""
    members: dict[tuple, list[int]] = {}
    for node, path in enumerate(groups):
        for depth in range(1, len(path) + 1):
            members.setdefault(path[:depth], []).append(node)

    def unit(node: int, depth: int) -> tuple:  # the box at `depth` holding node, or node
        path = groups[node]
        return tuple(members[path[: depth + 1]]) if len(path) > depth else (node,)

    pairs = set()
    for u, v in dag:
        depth = len(_common_prefix(groups[u], groups[v]))
        first, second = unit(u, depth), unit(v, depth)
        if u != v and (len(first) > 1 or len(second) > 1 or groups[u] != groups[v]):
            pairs.add((first, second))
    pairs = [(a, b) for a, b in pairs if (b, a) not in pairs]
    for _ in range(2 * len(pairs) + 2):  # enough for boxes in a chain; a bound for the rest
        changed = False
        for u, v in dag:
            if u != v and rank[v] < rank[u] + 1:
                rank[v], changed = rank[u] + 1, True
        for first, second in pairs:
            shift = max(rank[n] for n in first) + 1 - min(rank[n] for n in second)
            if shift > 0:
                for n in second:
                    rank[n] += shift
                changed = True
        if not changed:
            break


def _spans(rank: list[int], groups: list[tuple]) -> dict[tuple, tuple[int, int]]:
    """The first and last rank of each box's nodes."""
    spans: dict[tuple, tuple[int, int]] = {}
    for node, path in enumerate(groups):
        for depth in range(1, len(path) + 1):
            lo, hi = spans.get(path[:depth], (rank[node], rank[node]))
            spans[path[:depth]] = (min(lo, rank[node]), max(hi, rank[node]))
    return spans


def _box_at(r: int, source: tuple, target: tuple, spans: dict) -> tuple:
    """The deepest box of an edge's source or target that spans rank r (at least the boxes
    both ends share)."""
    best = _common_prefix(source, target)
    for path in (source, target):
        for depth in range(len(best) + 1, len(path) + 1):
            lo, hi = spans[path[:depth]]
            if lo <= r <= hi and depth > len(best):
                best = path[:depth]
    return best


# ---- step 3: the order within each rank ----------------------------------------------------


def _order(layers: list[list[int]], up, down, group, sweeps: int = 6) -> None:
    """Sort each layer in place: barycenter sweeps down and up, keeping the best order."""
    position = {node: i for layer in layers for i, node in enumerate(layer)}
    best, fewest = [list(layer) for layer in layers], _crossings(layers, down, position)
    for _ in range(sweeps):
        for rows, neighbours in (
            (range(1, len(layers)), up),
            (range(len(layers) - 2, -1, -1), down),
        ):
            for r in rows:
                _sort_layer(layers[r], neighbours, position, group)
        crossings = _crossings(layers, down, position)
        if crossings < fewest:
            best, fewest = [list(layer) for layer in layers], crossings
    layers[:] = best


def _sort_layer(layer: list[int], neighbours, position: dict, group) -> None:
    """Sort by barycenter (the mean position of the neighbours on the adjacent rank; a node
    without any keeps its own). A node's key starts with the mean barycenter of each box it
    is in, outermost first, so the nodes of a box stay together."""
    bary = {}
    for node in layer:
        near = neighbours[node]
        bary[node] = sum(position[n] for n in near) / len(near) if near else position[node]
    members: dict[tuple, list[float]] = {}
    for node in layer:
        for depth in range(1, len(group[node]) + 1):
            members.setdefault(group[node][:depth], []).append(bary[node])
    mean = {path: sum(values) / len(values) for path, values in members.items()}

    def key(node: int) -> tuple:
        path = group[node]
        boxes = tuple((mean[path[:d]], 0, d, path[:d]) for d in range(1, len(path) + 1))
        return (*boxes, (bary[node], 1, 0, (position[node],)))

    layer.sort(key=key)
    for i, node in enumerate(layer):
        position[node] = i


def _crossings(layers: list[list[int]], down, position: dict) -> int:
    """Edge crossings between adjacent ranks: two edges cross when their ends swap order."""
    total = 0
    for layer in layers:
        pairs = [(position[a], position[b]) for a in layer for b in down[a]]
        for i, (a1, b1) in enumerate(pairs):
            total += sum(1 for a2, b2 in pairs[i + 1 :] if (a1 - a2) * (b1 - b2) < 0)
    return total


# ---- step 4: coordinates -------------------------------------------------------------------


def _place(layers, up, down, size, group, ends, node_gap, group_pad, label_pad, label_axis):
    """The along coordinate of every node: packed first, then passes that move each layer
    towards its neighbours on the rank above (then below) as far as its gaps allow. A real
    node aims at the real nodes at the other end of its edges (not at the dummies between),
    so a chain of layers stays in one column and long edges bend around it; a dummy aims
    between its two neighbours, which keeps a long edge straight, and gives way to nodes."""
    real = [ends[n][0] == n for n in range(len(size))]
    along = [0.0] * len(size)
    gaps = []
    for layer in layers:
        needed = []
        for a, b in pairwise(layer):
            shared = len(_common_prefix(group[a], group[b]))
            opened, closed = len(group[b]) - shared, len(group[a]) - shared
            gap = node_gap if real[a] and real[b] else node_gap / 2
            gap += (opened + closed) * group_pad
            if label_axis == "along":
                gap += opened * label_pad
            needed.append((size[a][0] + size[b][0]) / 2 + gap)
        gaps.append(needed)
        x = 0.0
        for i, node in enumerate(layer):
            along[node] = x
            x += needed[i] if i < len(needed) else 0.0
    for sweep in range(8):
        downwards = sweep % 2 == 0
        rows = range(len(layers)) if downwards else range(len(layers) - 1, -1, -1)
        for r in rows:
            targets, weights = [], []
            for node in layers[r]:
                if real[node]:  # the far end of each edge: 0 is the source, 1 the target
                    near = up[node] if downwards else down[node]
                    near = [ends[n][0 if downwards else 1] for n in near]
                else:
                    near = up[node] + down[node]
                targets.append(sum(along[n] for n in near) / len(near) if near else along[node])
                weights.append(1.0 if real[node] else 1e-3)  # dummies give way
            for node, x in zip(layers[r], _spread(targets, weights, gaps[r])):
                along[node] = x
    return along


def _spread(targets: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """Positions x_i as close to `targets` as they can be (weighted least squares) with
    x_(i+1) - x_i >= gaps[i]. With y_i = x_i - (gaps before i), the y must not decrease:
    isotonic regression, solved exactly by pooling adjacent blocks that violate the order."""
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for target, weight, offset in zip(targets, weights, offsets):
        blocks.append([target - offset, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight, n = blocks.pop()
            last = blocks[-1]
            total = last[1] + weight
            last[0] = (last[0] * last[1] + mean * weight) / total
            last[1], last[2] = total, last[2] + n
    ys = [mean for mean, _, n in blocks for _ in range(n)]
    return [y + offset for y, offset in zip(ys, offsets)]


def _rank_positions(layers, size, group, real, rank_gap, group_pad, label_pad, label_axis):
    """The across coordinate of each rank's centre line: each rank as thick as its thickest
    node, with room between ranks for the box borders (and labels) that fall between them."""
    spans: dict[tuple, list[int]] = {}  # box path -> [first rank, last rank]
    for r, layer in enumerate(layers):
        for node in layer:
            for depth in range(1, len(group[node]) + 1):
                span = spans.setdefault(group[node][:depth], [r, r])
                span[0], span[1] = min(span[0], r), max(span[1], r)
    centres, start = [], 0.0
    for r, layer in enumerate(layers):
        if r:
            closing = sum(1 for lo, hi in spans.values() if hi == r - 1)
            opening = sum(1 for lo, hi in spans.values() if lo == r)
            start += rank_gap + (closing + opening) * group_pad
            start += opening * label_pad if label_axis == "across" else 0.0
        thickness = max((size[n][1] for n in layer if real[n]), default=0.0)
        centres.append(start + thickness / 2)
        start += thickness
    return centres


def _routes(chains, flipped, centers, size) -> list[list[Point] | None]:
    """Each edge's points: from its source's border facing the next rank, through its
    dummies, to its target's border (reversed for an edge that closed a cycle). The ends of
    the edges at one node are spread along its border, in the order of where they lead, so
    that they do not all meet in one point."""
    ends: dict[tuple[int, int], float] = {}  # (node, next node on the route) -> along offset
    for side in (0, 1):
        touching: dict[int, list[int]] = {}
        for chain in chains:
            if chain:
                node, nxt = (chain[0], chain[1]) if side == 0 else (chain[-1], chain[-2])
                touching.setdefault(node, []).append(nxt)
        for node, others in touching.items():
            others = sorted(set(others), key=lambda n: centers[n][0])
            step = min(12.0, size[node][0] * 0.6 / max(len(others), 1))
            for i, other in enumerate(others):
                ends[(node, other)] = (i - (len(others) - 1) / 2) * step
    routes: list[list[Point] | None] = []
    for chain, reverse in zip(chains, flipped):
        if chain is None:
            routes.append(None)
            continue
        u, v = chain[0], chain[-1]
        first = (centers[u][0] + ends[(u, chain[1])], centers[u][1] + size[u][1] / 2)
        last = (centers[v][0] + ends[(v, chain[-2])], centers[v][1] - size[v][1] / 2)
        points = [first, *(centers[d] for d in chain[1:-1]), last]
        routes.append(points[::-1] if reverse else points)
    return routes


def _boxes(centers, size, group, group_pad, label_pad, label_axis) -> dict:
    """Each box: around its nodes and the boxes inside it, `group_pad` wider on every side and
    `label_pad` more on the label's side; the innermost boxes first."""
    members: dict[tuple, list[int]] = {}
    for node, path in enumerate(group):
        for depth in range(1, len(path) + 1):
            members.setdefault(path[:depth], []).append(node)
    boxes: dict[tuple, tuple[float, float, float, float]] = {}
    for path in sorted(members, key=len, reverse=True):
        rects = [
            (c[0] - s[0] / 2, c[1] - s[1] / 2, c[0] + s[0] / 2, c[1] + s[1] / 2)
            for c, s in ((centers[n], size[n]) for n in members[path])
        ]
        rects += [  # the boxes just inside this one, already padded
            box
            for inner, box in boxes.items()
            if len(inner) == len(path) + 1 and inner[:-1] == path
        ]
        a0, c0 = min(r[0] for r in rects), min(r[1] for r in rects)
        a1, c1 = max(r[2] for r in rects), max(r[3] for r in rects)
        extra_a = label_pad if label_axis == "along" else 0.0
        extra_c = label_pad if label_axis == "across" else 0.0
        boxes[path] = (
            a0 - group_pad - extra_a,
            c0 - group_pad - extra_c,
            a1 + group_pad,
            c1 + group_pad,
        )
    return boxes


def _shifted(centers, routes, boxes, size) -> Layout:
    """The layout moved so that its lowest corner is at (0, 0), and its extent."""
    corners = [
        (c[0] - s[0] / 2, c[1] - s[1] / 2, c[0] + s[0] / 2, c[1] + s[1] / 2)
        for c, s in zip(centers, size)
    ]
    corners += list(boxes.values())
    corners += [(p[0], p[1], p[0], p[1]) for route in routes if route for p in route]
    if not corners:
        return Layout([], [], {}, (0.0, 0.0))
    da, dc = -min(r[0] for r in corners), -min(r[1] for r in corners)
    extent = (max(r[2] for r in corners) + da, max(r[3] for r in corners) + dc)

    def move(p: Point) -> Point:
        return (p[0] + da, p[1] + dc)

    return Layout(
        [move(c) for c in centers],
        [None if route is None else [move(p) for p in route] for route in routes],
        {k: (b[0] + da, b[1] + dc, b[2] + da, b[3] + dc) for k, b in boxes.items()},
        extent,
    )


def _common_prefix(a: tuple, b: tuple) -> tuple:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]

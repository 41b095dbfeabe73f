"""A layered (Sugiyama) layout, top to bottom, with boxes around nested clusters.

1. Layers: the longest path from the sources (sources other than inputs, such as learned
   tensors, sit just above their first reader instead of at the top).
2. Dummy vertices split every edge that spans several layers, so that long edges (skips)
   are routed around the nodes they pass instead of through them.
3. Order within layers: barycentre sweeps down and up, keeping the order with the fewest
   crossings; the members of one cluster stay contiguous in every layer (they are sorted
   by the cluster's barycentre first), so that cluster boxes can enclose them.
4. x: each layer is placed where its vertices' neighbours pull it (the weighted mean of
   their x), subject to the order and the minimum spacing, solved exactly per layer as an
   isotonic regression (pool adjacent violators); dummies weigh less than real nodes, so
   that the main path stays straight and skips bend around it.
5. y: layers stacked, with room between them for the headers and bottoms of the cluster
   boxes that start or end there.

Edges leave the bottom of their source and enter the top of their target, through the
dummies' points, so every edge runs downward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GAP_X = 22.0  # between neighbouring nodes in a layer
GAP_DUMMY = 10.0  # beside a dummy (an edge passing by)
GAP_Y = 30.0  # between layers
PAD = 10.0  # a cluster box's margin around its contents
HEADER = 16.0  # a cluster box's label, above its contents
DUMMY_WIDTH = 2.0
DUMMY_WEIGHT = 0.02  # a dummy's pull on its layer's placement, against a real node's 1:
# small, so that a path that a skip passes beside stays straight and the skip moves aside
SWEEPS = 4  # down-and-up barycentre passes
PLACEMENTS = 6  # down-and-up placement passes
CLEARINGS = 20  # passes moving vertices out of cluster boxes (each settles one more)
PORT_GAP = 14.0  # between the ends of edges that share a side of a node


@dataclass(frozen=True)
class Box:
    """A rectangle: top-left corner, width and height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True)
class Item:
    """What the layout needs to know of a node."""

    id: str
    width: float
    height: float
    clusters: tuple[str, ...] = ()  # the clusters containing it, outermost first
    top: bool = False  # a network input: kept in the first layer


@dataclass
class Route:
    src: str
    dst: str
    points: list[tuple[float, float]]  # from the source's bottom to the target's top


@dataclass
class Layout:
    width: float
    height: float
    boxes: dict[str, Box]
    clusters: dict[str, Box]
    routes: list[Route]
    layers: dict[str, int]


@dataclass
class _Vertex:
    width: float
    height: float
    clusters: tuple[str, ...]
    layer: int
    real: bool
    x: float = 0.0
    up: list[int] | None = None
    down: list[int] | None = None
    ends: tuple[int, int] = (-1, -1)  # a dummy's edge: its real source and target


def layout(items: Sequence[Item], edges: Sequence[tuple[str, str]]) -> Layout:
    """Lay out ``items`` (in a topological order: every edge goes to a later item, as the
    IR's node order is) and ``edges`` (pairs of ids) from the top down."""
    index = {it.id: i for i, it in enumerate(items)}
    n = len(items)
    pairs: list[tuple[int, int]] = []
    for s, d in edges:
        a, b = index[s], index[d]
        if a != b:
            # An edge against the order would be a cycle; it is laid out reversed.
            pairs.append((a, b) if a < b else (b, a))
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs:
        preds[b].append(a)
        succs[a].append(b)

    layer = [0] * n
    for b in range(n):
        for a in preds[b]:
            layer[b] = max(layer[b], layer[a] + 1)
    for v in reversed(range(n)):
        if not preds[v] and succs[v] and not items[v].top:
            layer[v] = min(layer[s] for s in succs[v]) - 1
    if n:
        low = min(layer)
        layer = [x - low for x in layer]

    verts = [
        _Vertex(it.width, it.height, it.clusters, layer[i], True, up=[], down=[])
        for i, it in enumerate(items)
    ]
    chains: list[list[int]] = []  # per edge: its vertices from the upper end to the lower
    for a, b in pairs:
        chain = [a]
        common = _common(items[a].clusters, items[b].clusters)
        for lay in range(layer[a] + 1, layer[b]):
            verts.append(_Vertex(DUMMY_WIDTH, 0.0, common, lay, False, up=[], down=[], ends=(a, b)))
            chain.append(len(verts) - 1)
        chain.append(b)
        for u, v in zip(chain, chain[1:]):
            verts[u].down.append(v)
            verts[v].up.append(u)
        chains.append(chain)

    count = max(layer) + 1 if n else 0
    rows: list[list[int]] = [[] for _ in range(count)]
    for v, vert in enumerate(verts):
        rows[vert.layer].append(v)
    rows = _order(rows, verts)
    _place_x(rows, verts)
    _clear_clusters(rows, verts)
    tops, heights = _place_y(rows, verts)

    boxes = {}
    for i, it in enumerate(items):
        v = verts[i]
        y = tops[v.layer] + (heights[v.layer] - v.height) / 2
        boxes[it.id] = Box(v.x - v.width / 2, y, v.width, v.height)
    inside = [(it.clusters, boxes[it.id]) for it in items]
    # An edge inside a cluster runs inside its box: its dummies count as members.
    inside += [
        (v.clusters, Box(v.x - v.width / 2, tops[v.layer], v.width, heights[v.layer]))
        for v in verts[n:]
        if v.clusters
    ]
    clusters = _cluster_boxes(inside)

    routes = []
    for (a, b), chain in zip(pairs, chains):
        pts = [(boxes[items[a].id].cx, boxes[items[a].id].y + boxes[items[a].id].h)]
        for d in chain[1:-1]:
            lay = verts[d].layer
            pts += [(verts[d].x, tops[lay]), (verts[d].x, tops[lay] + heights[lay])]
        pts.append((boxes[items[b].id].cx, boxes[items[b].id].y))
        routes.append(Route(items[a].id, items[b].id, pts))
    _spread_ports(routes, boxes)
    for route, (s, d) in zip(routes, ((s, d) for s, d in edges if index[s] != index[d])):
        if (route.src, route.dst) != (s, d):  # laid out reversed: drawn as it goes
            route.src, route.dst = s, d
            route.points.reverse()

    # Move everything to start at (0, 0); a skip may pass beyond every box.
    all_boxes = list(boxes.values()) + list(clusters.values())
    all_boxes += [Box(v.x - v.width / 2, tops[v.layer], v.width, 0.0) for v in verts[n:]]
    x0 = min((b.x for b in all_boxes), default=0.0)
    y0 = min((b.y for b in all_boxes), default=0.0)
    x1 = max((b.x + b.w for b in all_boxes), default=0.0)
    y1 = max((b.y + b.h for b in all_boxes), default=0.0)

    def shift(b: Box) -> Box:
        return Box(b.x - x0, b.y - y0, b.w, b.h)

    for route in routes:
        route.points = [(x - x0, y - y0) for x, y in route.points]
    return Layout(
        width=x1 - x0,
        height=y1 - y0,
        boxes={k: shift(b) for k, b in boxes.items()},
        clusters={k: shift(b) for k, b in clusters.items()},
        routes=routes,
        layers={it.id: layer[i] for i, it in enumerate(items)},
    )


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return a[:k]


# ---- order within layers ------------------------------------------------------------


def _order(rows: list[list[int]], verts: list[_Vertex]) -> list[list[int]]:
    """Barycentre sweeps; the order with the fewest crossings wins (ties: the earlier)."""
    rank = {c: i for i, c in enumerate(dict.fromkeys(c for v in verts for c in v.clusters))}
    pos = [0.0] * len(verts)

    def sort(row: list[int], ref: str) -> list[int]:
        bary = {}
        for i, v in enumerate(row):
            nbrs = verts[v].up if ref == "up" else verts[v].down
            bary[v] = sum(pos[u] for u in nbrs) / len(nbrs) if nbrs else float(i)
        # A cluster sorts as a whole by its members' mean barycentre, so that its members
        # stay together; within it, its members (and sub-clusters) sort the same way.
        sums: dict[tuple[str, ...], list[float]] = {}
        for v in row:
            path = verts[v].clusters
            for k in range(1, len(path) + 1):
                acc = sums.setdefault(path[:k], [0.0, 0])
                acc[0] += bary[v]
                acc[1] += 1

        def key(iv: tuple[int, int]) -> tuple:
            i, v = iv
            path = verts[v].clusters
            parts = []
            for k in range(1, len(path) + 1):
                total, num = sums[path[:k]]
                parts.append((total / num, 0, rank[path[k - 1]]))
            parts.append((bary[v], 1, i))
            return tuple(parts)

        return [v for _, v in sorted(enumerate(row), key=key)]

    def number(row: list[int]) -> None:
        for i, v in enumerate(row):
            pos[v] = float(i)

    for row in rows:
        number(row)
    # The first pass orders each layer by its predecessors from the top.
    for r in range(1, len(rows)):
        rows[r] = sort(rows[r], "up")
        number(rows[r])
    best = [list(r) for r in rows]
    best_cross = _crossings(rows, verts)
    for _ in range(SWEEPS):
        for r in range(len(rows) - 2, -1, -1):
            rows[r] = sort(rows[r], "down")
            number(rows[r])
        for r in range(1, len(rows)):
            rows[r] = sort(rows[r], "up")
            number(rows[r])
        cross = _crossings(rows, verts)
        if cross < best_cross:
            best, best_cross = [list(r) for r in rows], cross
        if best_cross == 0:
            break
    return best


def _crossings(rows: list[list[int]], verts: list[_Vertex]) -> int:
    total = 0
    for r in range(len(rows) - 1):
        pos = {v: i for i, v in enumerate(rows[r + 1])}
        ends = sorted((i, pos[w]) for i, v in enumerate(rows[r]) for w in verts[v].down)
        # Inversions among the lower ends, edges ordered by their upper ends.
        lower = [w for _, w in ends]
        total += sum(1 for i in range(len(lower)) for j in range(i) if lower[j] > lower[i])
    return total


# ---- coordinates --------------------------------------------------------------------


def _gap(a: _Vertex, b: _Vertex) -> float:
    """The least distance between the centres of neighbours ``a`` (left) and ``b``."""
    common = len(_common(a.clusters, b.clusters))
    # Each cluster boundary between them needs room for the cluster box's margin.
    boundaries = len(a.clusters) + len(b.clusters) - 2 * common
    gap = GAP_X if a.real and b.real else GAP_DUMMY
    return (a.width + b.width) / 2 + gap + PAD * boundaries


def _place_x(rows: list[list[int]], verts: list[_Vertex]) -> None:
    for row in rows:
        x = 0.0
        for i, v in enumerate(row):
            if i:
                x += _gap(verts[row[i - 1]], verts[v])
            verts[v].x = x
        mid = x / 2
        for v in row:
            verts[v].x -= mid

    def weight(v: int) -> float:
        return 1.0 if verts[v].real else DUMMY_WEIGHT

    def pull(row: list[int], ref: str) -> None:
        # Each neighbour u in the reference layer wants the vertices it links to in this
        # row packed side by side and centred under it (on its own real branches: a
        # skip's dummies go aside). A real vertex wants the median of what its neighbours
        # want, where a dummy neighbour stands for the far end of its edge: a join thus
        # comes back between the branches it joins, and the drawing does not drift
        # sideways block after block. A dummy follows its neighbour, to keep skips straight.
        pos = {v: i for i, v in enumerate(row)}
        offset: dict[tuple[int, int], float] = {}
        done: set[int] = set()
        for v in row:
            for u in verts[v].up if ref == "up" else verts[v].down:
                if u in done:
                    continue
                done.add(u)
                sibs = sorted(verts[u].down if ref == "up" else verts[u].up, key=pos.__getitem__)
                at = [0.0]
                for a, b in zip(sibs, sibs[1:]):
                    at.append(at[-1] + _gap(verts[a], verts[b]))
                # Centred on the real vertices that hang from u alone (a fork's branches),
                # else on the real ones: a join's other inputs keep their own columns.
                own = [
                    x
                    for w, x in zip(sibs, at)
                    if verts[w].real and len(verts[w].up if ref == "up" else verts[w].down) == 1
                ]
                real = own or [x for w, x in zip(sibs, at) if verts[w].real] or at
                mid = sum(real) / len(real)
                for w, x in zip(sibs, at):
                    offset[(u, w)] = x - mid
        want = []
        for v in row:
            nbrs = verts[v].up if ref == "up" else verts[v].down
            if not nbrs:
                want.append(verts[v].x)
                continue
            xs = []
            for u in nbrs:
                if verts[v].real and not verts[u].real:
                    xs.append(verts[verts[u].ends[0 if ref == "up" else 1]].x)
                else:
                    xs.append(verts[u].x + offset[(u, v)])
            # The median, not the mean: the mean (least squares) shears parallel chains
            # that meet at every layer into a staircase; the median keeps them upright.
            # Between two middle values, the vertex stays where it is if it can.
            xs.sort()
            lo, hi = xs[(len(xs) - 1) // 2], xs[len(xs) // 2]
            want.append(min(max(verts[v].x, lo), hi))
        weights = [1.0 if verts[v].real else DUMMY_WEIGHT for v in row]
        gaps = [_gap(verts[a], verts[b]) for a, b in zip(row, row[1:])]
        for v, x in zip(row, _isotonic(want, weights, gaps)):
            verts[v].x = x

    for _ in range(PLACEMENTS):
        for r in range(1, len(rows)):
            pull(rows[r], "up")
        for r in range(len(rows) - 2, -1, -1):
            pull(rows[r], "down")
    for r in range(1, len(rows)):
        pull(rows[r], "up")


def _clear_clusters(rows: list[list[int]], verts: list[_Vertex]) -> None:
    """Move what is not in a cluster out of its box, which spans the widest of its layers:
    in each layer the cluster spans, the vertices beyond its members (and what lies
    further out) shift sideways until they clear the box."""
    span: dict[str, list[int]] = {}
    for v in verts:
        if v.real:
            for c in v.clusters:
                s = span.setdefault(c, [v.layer, v.layer])
                s[0], s[1] = min(s[0], v.layer), max(s[1], v.layer)
    for _ in range(CLEARINGS):
        ext: dict[str, list[float]] = {}
        for v in verts:
            if v.real or v.clusters:  # a dummy in a cluster is an edge inside it
                for k, c in enumerate(v.clusters):
                    margin = PAD * (len(v.clusters) - k)
                    lo, hi = v.x - v.width / 2 - margin, v.x + v.width / 2 + margin
                    e = ext.setdefault(c, [lo, hi])
                    e[0], e[1] = min(e[0], lo), max(e[1], hi)
        moved = False
        for c, (lo, hi) in ext.items():
            for r in range(span[c][0], span[c][1] + 1):
                row = rows[r]
                inside = [i for i, v in enumerate(row) if c in verts[v].clusters]
                if inside:
                    left, right = inside[0] - 1, inside[-1] + 1
                else:  # the cluster passes this layer by edges alone
                    mid = (lo + hi) / 2
                    right = next((i for i, v in enumerate(row) if verts[v].x >= mid), len(row))
                    left = right - 1
                if right < len(row):
                    v = verts[row[right]]
                    need = hi + (GAP_X if v.real else GAP_DUMMY) - (v.x - v.width / 2)
                    if need > 0.01:
                        for w in row[right:]:
                            verts[w].x += need
                        moved = True
                if left >= 0:
                    v = verts[row[left]]
                    need = (v.x + v.width / 2) - (lo - (GAP_X if v.real else GAP_DUMMY))
                    if need > 0.01:
                        for w in row[: left + 1]:
                            verts[w].x -= need
                        moved = True
        if not moved:
            break


def _isotonic(want: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """The x closest to ``want`` (weighted least squares) with x[i+1] - x[i] >= gaps[i].

    Shifting each x by the sum of the gaps before it turns the spacing constraints into
    y[i+1] >= y[i], a monotone regression that pooling adjacent violators solves exactly.
    """
    offset = [0.0]
    for g in gaps:
        offset.append(offset[-1] + g)
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w, o in zip(want, weights, offset):
        blocks.append([(t - o) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, w2, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w2
            blocks[-1][2] += c
    out = []
    for s, w, c in blocks:
        out += [s / w] * int(c)
    return [y + o for y, o in zip(out, offset)]


def _place_y(rows: list[list[int]], verts: list[_Vertex]) -> tuple[list[float], list[float]]:
    """Each layer's top and height, leaving room for the cluster boxes' headers and
    bottoms between layers."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for v in verts:
        if v.real:
            for c in v.clusters:
                first[c] = min(first.get(c, v.layer), v.layer)
                last[c] = max(last.get(c, v.layer), v.layer)
    heights = [max((verts[v].height for v in row), default=0.0) for row in rows]
    starts = [0] * len(rows)
    ends = [0] * len(rows)
    for r, row in enumerate(rows):
        for v in row:
            if verts[v].real:
                cs = verts[v].clusters
                starts[r] = max(starts[r], sum(1 for c in cs if first[c] == r))
                ends[r] = max(ends[r], sum(1 for c in cs if last[c] == r))
    tops = []
    y = 0.0
    for r in range(len(rows)):
        if r:
            y += heights[r - 1] + ends[r - 1] * PAD + GAP_Y
        y += starts[r] * (PAD + HEADER)
        tops.append(y)
    return tops, heights


def _cluster_boxes(members: list[tuple[tuple[str, ...], Box]]) -> dict[str, Box]:
    """Each cluster's box: around its members' boxes (given with the clusters they are in,
    outermost first), with a margin for each level of nesting and a header above."""
    extent: dict[str, list[float]] = {}
    for clusters, b in members:
        for k, c in enumerate(clusters):
            # Nested k levels below c: each level adds a margin (and a header above).
            inner = len(clusters) - 1 - k
            x0 = b.x - PAD * (inner + 1)
            x1 = b.x + b.w + PAD * (inner + 1)
            y0 = b.y - (PAD + HEADER) * (inner + 1)
            y1 = b.y + b.h + PAD * (inner + 1)
            e = extent.get(c)
            if e is None:
                extent[c] = [x0, y0, x1, y1]
            else:
                e[0], e[1], e[2], e[3] = min(e[0], x0), min(e[1], y0), max(e[2], x1), max(e[3], y1)
    return {c: Box(e[0], e[1], e[2] - e[0], e[3] - e[1]) for c, e in extent.items()}


def _spread_ports(routes: list[Route], boxes: dict[str, Box]) -> None:
    """Edges that share a side of a node end at points spread along it, in the order of
    where they come from, instead of all at its centre."""
    outs: dict[str, list[Route]] = {}
    ins: dict[str, list[Route]] = {}
    for r in routes:
        outs.setdefault(r.src, []).append(r)
        ins.setdefault(r.dst, []).append(r)
    for name, group in outs.items():
        group.sort(key=lambda r: (r.points[1][0], r.points[-1][0]))
        xs = _ports(boxes[name], len(group))
        for r, x in zip(group, xs):
            r.points[0] = (x, r.points[0][1])
    for name, group in ins.items():
        group.sort(key=lambda r: (r.points[-2][0], r.points[0][0]))
        xs = _ports(boxes[name], len(group))
        for r, x in zip(group, xs):
            r.points[-1] = (x, r.points[-1][1])


def _ports(b: Box, k: int) -> list[float]:
    step = min(PORT_GAP, b.w / (k + 1))
    return [b.cx + (i - (k - 1) / 2) * step for i in range(k)]

"""SVG of a drawing, laid out by ``layout`` (no Graphviz).

The document's classes are its contract (tests and ``html`` read them): one
``<g class="node ..." id=NODE>`` per drawn node, holding a ``<title>`` (the tooltip) and
its box as the first ``<rect>``; one ``<g class="cluster" id="cluster_CALL">`` per open
block call; one ``<path class="edge" data-from=... data-to=...>`` per edge.
"""

from __future__ import annotations

from html import escape

from .graph import Drawing, DrawNode
from .layout import Box, Item, Layout, layout
from .style import (
    BOLD,
    COLOURS,
    FONT,
    FONT_SIZE,
    LINE,
    NODE_PAD_Y,
    colours,
    node_size,
    text_width,
)

MARGIN = 16.0
HEADING = 44.0  # the title and totals lines above the diagram
LEGEND_GAP = 28.0
LEGEND_LINE = 16.0
STUB = 18.0  # the arrow out of an output node
EDGE = "#64748b"
CLUSTER_FILLS = ("#f8fafc", "#eef2f7", "#e2e8f0")


def lay_out(drawing: Drawing) -> Layout:
    items = [
        Item(n.id, *node_size(n), clusters=n.clusters, top=n.kind == "input") for n in drawing.nodes
    ]
    return layout(items, drawing.edges)


def to_svg(drawing: Drawing, lay: Layout | None = None, standalone: bool = True) -> str:
    """The SVG text; ``standalone=False`` leaves out the XML declaration and namespace, for
    an ``<svg>`` inside an HTML page (which needs neither)."""
    lay = lay or lay_out(drawing)
    ox, oy = MARGIN, MARGIN + HEADING
    families = [f for f in COLOURS if any(n.family == f for n in drawing.nodes)]
    families += sorted({n.family for n in drawing.nodes} - set(COLOURS))
    legend_x = ox + lay.width + LEGEND_GAP
    legend_w = max((text_width(f) for f in families), default=0.0) + 24
    # The title is bold 14 px, the totals 12 px: generous mean advances of each.
    heading_w = max(len(drawing.title) * 8.2, len(drawing.totals) * 6.8)
    width = max(legend_x + legend_w, ox + heading_w) + MARGIN
    height = oy + max(lay.height + STUB, len(families) * LEGEND_LINE) + MARGIN
    marker = "dlc-arrow"

    out: list[str] = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>')
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    out.append(
        f'<svg{ns} class="dlc-diagram" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{FONT}" '
        f'font-size="{_n(FONT_SIZE)}">'
    )
    out.append(f"<title>{_e(drawing.heading)}</title>")
    out.append(
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{EDGE}"/></marker></defs>'
    )
    out.append('<rect class="background" width="100%" height="100%" fill="#ffffff"/>')
    out.append(
        f'<text class="heading" x="{_n(ox)}" y="{_n(MARGIN + 12)}" font-size="14" '
        f'font-weight="bold" fill="#0f172a">{_e(drawing.title)}</text>'
    )
    out.append(
        f'<text class="totals" x="{_n(ox)}" y="{_n(MARGIN + 29)}" font-size="12" '
        f'fill="#475569">{_e(drawing.totals)}</text>'
    )

    out.append('<g class="clusters">')
    for cid, cluster in drawing.clusters.items():  # outer calls come first: drawn below
        b = _at(lay.clusters[cid], ox, oy)
        level = _level(drawing, cid)
        label = _fit(cluster.label, b.w - 12, BOLD * 0.95)
        where = f"{cluster.span.source.path}:{cluster.span.line}" if cluster.span else "?"
        out.append(
            f'<g class="cluster" id="cluster_{_e(cid)}" data-block="{_e(cluster.block)}">'
            f"<title>{_e(cluster.label)}&#10;source: {_e(where)}</title>"
            f'<rect x="{_n(b.x)}" y="{_n(b.y)}" width="{_n(b.w)}" height="{_n(b.h)}" rx="8" '
            f'fill="{CLUSTER_FILLS[min(level, len(CLUSTER_FILLS) - 1)]}" stroke="#94a3b8" '
            f'stroke-dasharray="4 3"/>'
            f'<text x="{_n(b.x + 8)}" y="{_n(b.y + 15)}" font-size="10.5" '
            f'font-weight="bold" fill="#334155">{_e(label)}</text></g>'
        )
    out.append("</g>")

    out.append('<g class="edges" fill="none">')
    for r in lay.routes:
        pts = [(x + ox, y + oy) for x, y in r.points]
        out.append(
            f'<path class="edge" data-from="{_e(r.src)}" data-to="{_e(r.dst)}" '
            f'd="{_path(pts)}" stroke="{EDGE}" stroke-width="1.2" '
            f'marker-end="url(#{marker})"/>'
        )
    out.append("</g>")

    out.append('<g class="nodes">')
    for node in drawing.nodes:
        out.append(_node(node, _at(lay.boxes[node.id], ox, oy), marker))
    out.append("</g>")

    out.append(f'<g class="legend" transform="translate({_n(legend_x)},{_n(oy)})">')
    for i, fam in enumerate(families):
        fill, stroke = colours(fam)
        y = i * LEGEND_LINE
        out.append(
            f'<rect x="0" y="{_n(y)}" width="14" height="10" rx="2" fill="{fill}" '
            f'stroke="{stroke}"/><text x="20" y="{_n(y + 9)}" font-size="10" '
            f'fill="#334155">{_e(fam)}</text>'
        )
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _node(node: DrawNode, b: Box, marker: str) -> str:
    fill, stroke = colours(node.family)
    classes = f"node {node.kind} {node.family}" + (" output" if node.output else "")
    rx = b.h / 2 if node.kind == "input" else 5
    width = 2.2 if node.output else 1.5 if node.kind == "block" else 1
    attrs = f'data-op="{_e(node.subtitle.split(" ")[0])}" data-kind="{node.kind}"'
    if node.count > 1:
        attrs += f' data-count="{node.count}"'
    parts = [
        f'<g class="{classes}" id="{_e(node.id)}" {attrs}>',
        f"<title>{_e(node.tooltip)}</title>",
        f'<rect x="{_n(b.x)}" y="{_n(b.y)}" width="{_n(b.w)}" height="{_n(b.h)}" '
        f'rx="{_n(rx)}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>',
    ]
    if node.kind == "block":  # a double border: a box that holds more boxes
        parts.append(
            f'<rect x="{_n(b.x + 3)}" y="{_n(b.y + 3)}" width="{_n(b.w - 6)}" '
            f'height="{_n(b.h - 6)}" rx="3" fill="none" stroke="{stroke}" stroke-width="0.6"/>'
        )
    cx = b.cx
    base = b.y + NODE_PAD_Y + LINE - 3.5
    sub_weight = ' font-weight="bold"' if node.count > 1 else ""
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(base)}" text-anchor="middle" fill="#0f172a">'
        f'<tspan font-weight="bold">{_e(node.title)}</tspan> '
        f'<tspan fill="{stroke}"{sub_weight}>{_e(node.subtitle)}</tspan></text>'
    )
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(base + LINE)}" text-anchor="middle" '
        f'fill="#1e293b">{_e(node.shape)}</text>'
    )
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(base + 2 * LINE)}" text-anchor="middle" font-size="10" '
        f'fill="#475569">{_e(node.counts)}</text>'
    )
    if node.output:
        y = b.y + b.h
        parts.append(
            f'<path class="output-arrow" d="M{_n(cx)},{_n(y)} L{_n(cx)},{_n(y + STUB - 2)}" '
            f'stroke="{stroke}" stroke-width="1.6" marker-end="url(#{marker})"/>'
        )
    parts.append("</g>")
    return "".join(parts)


def _path(pts: list[tuple[float, float]]) -> str:
    """Straight down where x stays, else an S-curve with vertical ends (so arrowheads
    point down into their node)."""
    d = [f"M{_n(pts[0][0])},{_n(pts[0][1])}"]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if abs(x1 - x0) < 0.05:
            d.append(f"L{_n(x1)},{_n(y1)}")
        else:
            ym = (y0 + y1) / 2
            d.append(f"C{_n(x0)},{_n(ym)} {_n(x1)},{_n(ym)} {_n(x1)},{_n(y1)}")
    return " ".join(d)


def _level(drawing: Drawing, cid: str) -> int:
    level, parent = 0, drawing.clusters[cid].parent
    while parent is not None:
        level, parent = level + 1, drawing.clusters[parent].parent
    return level


def _fit(text: str, width: float, char: float) -> str:
    most = max(int(width / char), 4)
    return text if len(text) <= most else text[: most - 1] + "…"


def _at(b: Box, dx: float, dy: float) -> Box:
    return Box(b.x + dx, b.y + dy, b.w, b.h)


def _n(v: float) -> str:
    """A coordinate with one decimal at most (and the same text for the same value)."""
    text = f"{v:.1f}"
    if text == "-0.0":
        return "0"
    return text[:-2] if text.endswith(".0") else text


def _e(text: str) -> str:
    return escape(text, quote=True)

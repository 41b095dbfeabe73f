"""Diagrams of compiled networks (``dlc draw``): SVG laid out by the project itself, DOT
text, and HTML with tooltips.

``graph`` groups the IR by block call (closing and folding by depth), ``layout`` places
it, ``svg``, ``dot`` and ``html`` write it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compiler.errors import DlcError
from .html import notebook_html

if TYPE_CHECKING:
    from ..compiler.network import Network

__all__ = ["FORMATS", "ENGINES", "render", "notebook_html"]

FORMATS = ("svg", "dot", "html")
ENGINES = ("dlc", "dot")


def render(net: Network, fmt: str, depth: int | None = None, engine: str = "dlc") -> str:
    """The diagram of ``net`` as SVG, DOT or HTML text.

    ``depth``: block calls nested deeper than this many levels are closed, one node each
    (None: all open). ``engine``: lay out SVG (and HTML's SVG) by dlc's own layered layout
    (``"dlc"``) or by Graphviz's ``dot`` program (``"dot"``, when installed).
    """
    from .dot import graphviz_svg, to_dot
    from .graph import build
    from .html import to_html
    from .svg import to_svg

    if fmt not in FORMATS:
        raise DlcError(f"cannot draw as {fmt!r}: the formats are {', '.join(FORMATS)}")
    if engine not in ENGINES:
        raise DlcError(f"unknown engine {engine!r}: the engines are {', '.join(ENGINES)}")
    drawing = build(net, depth)
    if fmt == "dot":
        return to_dot(drawing)
    if engine == "dot":
        svg = graphviz_svg(to_dot(drawing))
    else:
        svg = to_svg(drawing, standalone=fmt == "svg")
    return svg if fmt == "svg" else to_html(drawing, svg)

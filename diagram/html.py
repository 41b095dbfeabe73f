"""A standalone HTML page of a drawing, and the notebook display of a network.

The page needs no network access: the SVG is inline, and so are the style and the small
script that shows each node's tooltip (its SVG ``<title>``, which also serves as the
browser's own tooltip where scripts are off) and highlights the node's edges on hover.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from .graph import Drawing

if TYPE_CHECKING:
    from ..compiler.network import Network

STYLE = """
body { margin: 16px; font-family: Helvetica, Arial, sans-serif; color: #0f172a; }
h1 { font-size: 18px; margin: 0 0 4px; }
p.totals { margin: 0 0 12px; color: #475569; font-size: 13px; }
.diagram { overflow: auto; }
g.node { cursor: default; }
g.node:hover > rect:first-of-type { stroke-width: 2.5; }
path.edge.hot { stroke: #dc2626; stroke-width: 2.4; }
#dlc-tip { position: absolute; display: none; max-width: 560px; padding: 6px 8px;
  background: #0f172a; color: #f8fafc; font: 12px/1.35 Menlo, Consolas, monospace;
  white-space: pre-wrap; border-radius: 4px; pointer-events: none; }
"""

SCRIPT = """
(function () {
  var tip = document.getElementById("dlc-tip");
  function hot(id, on) {
    document.querySelectorAll("path.edge").forEach(function (p) {
      if (p.getAttribute("data-from") === id || p.getAttribute("data-to") === id) {
        p.classList.toggle("hot", on);
      }
    });
  }
  document.querySelectorAll("g.node, g.cluster").forEach(function (g) {
    var title = g.querySelector("title");
    if (!title) return;
    var text = title.textContent;
    title.remove();  // the custom tooltip replaces the browser's
    g.addEventListener("mouseenter", function () {
      tip.textContent = text; tip.style.display = "block";
      if (g.classList.contains("node")) hot(g.id, true);
    });
    g.addEventListener("mousemove", function (e) {
      tip.style.left = (e.pageX + 14) + "px"; tip.style.top = (e.pageY + 14) + "px";
    });
    g.addEventListener("mouseleave", function () {
      tip.style.display = "none";
      if (g.classList.contains("node")) hot(g.id, false);
    });
  });
})();
"""


def inline_svg(svg: str) -> str:
    """An SVG document as an element for HTML: without its XML declaration and doctype."""
    svg = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", svg)
    return re.sub(r"^\s*<!DOCTYPE[^>]*>\s*", "", svg)


def to_html(drawing: Drawing, svg: str) -> str:
    """The page: a heading with the totals, the diagram, the tooltip script."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(drawing.name)}: dlc draw</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(drawing.title)}</h1>\n"
        f'<p class="totals">{escape(drawing.totals)}. Hover over a layer for its attributes, '
        "parameters, MACs and source line.</p>\n"
        f'<div class="diagram">\n{inline_svg(svg)}</div>\n'
        '<div id="dlc-tip"></div>\n'
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def notebook_html(net: Network) -> str:
    """A notebook's display of a network: its summary table, then its depth-1 diagram."""
    from . import render

    svg = inline_svg(render(net, "svg", depth=1))
    return (
        '<div class="dlc-network">'
        f'<pre style="font-size: 12px; line-height: 1.3">{escape(net.summary())}</pre>'
        f"{svg}</div>"
    )

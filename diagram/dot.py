"""DOT text of a drawing (written with no dependency), and SVG from Graphviz's ``dot``."""

from __future__ import annotations

import shutil
import subprocess

from ..compiler.errors import DlcError
from .graph import Drawing, DrawNode
from .style import FONT, colours

NO_DOT = (
    "--engine dot needs Graphviz's dot program, which is not installed "
    "(apt install graphviz); the default --engine dlc needs nothing"
)


def to_dot(drawing: Drawing) -> str:
    """``digraph`` text: one node statement per drawn node, inside nested
    ``subgraph cluster_...`` blocks for the open block calls, then the edges."""
    # Defaults are written on each node and edge, not as ``node [...]`` statements, which
    # some readers (pydot) list as nodes named "node", "edge" and "graph".
    out = [
        f"digraph {_q(drawing.name)} {{",
        f"  rankdir=TB; fontname={_q(FONT)}; fontsize=12; label={_q(drawing.heading)};",
        "  labelloc=t; labeljust=l; nodesep=0.25; ranksep=0.3;",
    ]
    inside: dict[str | None, list[DrawNode]] = {}
    for node in drawing.nodes:
        inside.setdefault(node.clusters[-1] if node.clusters else None, []).append(node)
    children: dict[str | None, list[str]] = {}
    for cid, cluster in drawing.clusters.items():
        children.setdefault(cluster.parent, []).append(cid)

    def emit(cid: str | None, indent: str) -> None:
        for node in inside.get(cid, ()):
            out.append(indent + _node(node))
        for sub in children.get(cid, ()):
            cluster = drawing.clusters[sub]
            where = f"{cluster.span.source.path}:{cluster.span.line}" if cluster.span else "?"
            out.append(f"{indent}subgraph {_q('cluster_' + sub)} {{")
            tip = f"{cluster.label} at {where}"
            out.append(
                f"{indent}  label={_q(cluster.label)}; tooltip={_q(tip)}; "
                'style="rounded,dashed"; color="#94a3b8"; fontsize=10;'
            )
            emit(sub, indent + "  ")
            out.append(f"{indent}}}")

    emit(None, "  ")
    for src, dst in drawing.edges:
        out.append(f'  {_q(src)} -> {_q(dst)} [color="#64748b", arrowsize=0.7];')
    out.append("}")
    return "\n".join(out) + "\n"


def _node(node: DrawNode) -> str:
    fill, stroke = colours(node.family)
    label = "\n".join(node.lines)
    style = "rounded,filled,bold" if node.kind == "input" else "rounded,filled"
    attrs = [
        f"label={_q(label)}",
        "shape=box",
        f"style={_q(style)}",
        f"fontname={_q(FONT)}",
        "fontsize=10",
        'margin="0.12,0.04"',
        f"tooltip={_q(node.tooltip)}",
        f"fillcolor={_q(fill)}",
        f"color={_q(stroke)}",
    ]
    if node.kind == "block":
        attrs.append("peripheries=2")
    if node.output:
        attrs.append("penwidth=2")
    return f"{_q(node.id)} [{', '.join(attrs)}];"


def _q(text: str) -> str:
    """A DOT double-quoted string (where ``\\n`` is a line break)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graphviz_svg(dot_text: str) -> str:
    """SVG laid out by Graphviz (``--engine dot``), which must be installed."""
    exe = shutil.which("dot")
    if exe is None:
        raise DlcError(NO_DOT)
    try:
        done = subprocess.run(
            [exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise DlcError(f"--engine dot: cannot run {exe}: {exc}") from None
    if done.returncode != 0:
        raise DlcError(f"--engine dot: dot failed: {done.stderr.strip()}")
    return done.stdout

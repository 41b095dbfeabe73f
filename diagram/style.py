"""Colours, fonts and text metrics shared by the SVG and DOT writers."""

from __future__ import annotations

from .graph import DrawNode

FONT = "Helvetica, Arial, sans-serif"
FONT_SIZE = 11.0
LINE = 14.0  # line height of a node's label
CHAR = 6.1  # a generous mean advance of the font at FONT_SIZE (digits, lower case)
BOLD = 6.7  # the same in bold
SMALL = 5.6  # at the counts line's 10 px
NODE_PAD_X = 10.0
NODE_PAD_Y = 6.0
MIN_WIDTH = 90.0

# (fill, stroke) by op family: the module of compiler/ops that defines the op.
COLOURS: dict[str, tuple[str, str]] = {
    "input": ("#e5e7eb", "#4b5563"),
    "conv": ("#dbeafe", "#2563eb"),
    "dense": ("#ede9fe", "#7c3aed"),
    "norm": ("#fef3c7", "#b45309"),
    "pool": ("#d1fae5", "#047857"),
    "activation": ("#fee2e2", "#b91c1c"),
    "recurrent": ("#fce7f3", "#be185d"),
    "attention": ("#ffedd5", "#c2410c"),
    "merge": ("#ccfbf1", "#0f766e"),
    "shape": ("#f1f5f9", "#64748b"),
    "tensor": ("#f5f5f4", "#78716c"),
    "rearrange": ("#ecfccb", "#4d7c0f"),
    "block": ("#ffffff", "#1e293b"),
}
OTHER = ("#ffffff", "#6b7280")  # an op family added after this table


def colours(family: str) -> tuple[str, str]:
    return COLOURS.get(family, OTHER)


def text_width(text: str) -> float:
    return len(text) * CHAR


def node_size(node: DrawNode) -> tuple[float, float]:
    """Width and height of a node's box: its widest line, three lines high."""
    first = len(node.title) * BOLD + (len(node.subtitle) + 1) * CHAR
    width = max(first, text_width(node.shape), len(node.counts) * SMALL) + 2 * NODE_PAD_X
    return max(MIN_WIDTH, round(width)), len(node.lines) * LINE + 2 * NODE_PAD_Y

"""Positions: the compiler's 1-based (line, column in code points) against the protocol's
0-based (line, column in the negotiated code units, UTF-16 unless the client chose another).
"""

from __future__ import annotations

from lsprotocol import types

from ..compiler.errors import Span

BOM = "\ufeff"


def _units(text: str, encoding: str) -> int:
    """How many code units ``text`` takes in ``encoding`` (utf-8, utf-16 or utf-32)."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)  # surrogate pairs


class LineIndex:
    """A document's lines, to convert positions both ways.

    Lines are split at "\\n" only, as the compiler's lexer counts them (a "\\r" before it
    stays at the end of the line and never shifts a column). A byte-order mark, which the
    parser drops, still takes a column of the client's first line.
    """

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.bom = text.startswith(BOM)
        self.lines = (text[1:] if self.bom else text).split("\n")
        self.encoding = str(getattr(encoding, "value", encoding) or "utf-16")
        starts, pos = [], 0
        for line in self.lines:
            starts.append(pos)
            pos += len(line) + 1
        self.starts = starts  # offsets of the line starts in the text without the BOM

    def line(self, n: int) -> str:
        """0-based line ``n``, or "" past the end."""
        return self.lines[n] if 0 <= n < len(self.lines) else ""

    def units(self, line: int, col: int) -> int:
        """Code units before 0-based code-point column ``col`` of 0-based ``line``; a column
        past the end counts one unit per missing character (as the CLI's columns do)."""
        text = self.line(line)
        head = text[:col]
        extra = (1 if self.bom and line == 0 else 0) + max(0, col - len(text))
        return _units(head, self.encoding) + extra

    def column(self, line: int, units: int) -> int:
        """The 0-based code-point column at ``units`` code units into 0-based ``line``."""
        text = self.line(line)
        if self.bom and line == 0:
            units -= 1
        if self.encoding == "utf-32":
            return max(0, min(units, len(text)))
        seen = 0
        for i, c in enumerate(text):
            if seen >= units:
                return i
            seen += _units(c, self.encoding)
        return len(text)

    def position(self, line: int, col: int) -> types.Position:
        """The protocol position of 0-based ``line`` and code-point ``col``."""
        return types.Position(line=max(0, line), character=self.units(line, col))

    def span_range(self, span: Span) -> types.Range:
        """The range of a compiler span (1-based, end exclusive): each end minus one."""
        start = self.position(span.line - 1, span.col - 1)
        end = self.position(span.end_line - 1, span.end_col - 1)
        if (end.line, end.character) < (start.line, start.character):
            end = start
        return types.Range(start=start, end=end)

    def cursor(self, pos: types.Position) -> tuple[int, int]:
        """A protocol position as the compiler's 1-based (line, column)."""
        return pos.line + 1, self.column(pos.line, pos.character) + 1

    def offset(self, line: int, col: int) -> int:
        """The offset in the text (without its BOM) of 1-based ``line`` and ``col``."""
        if line - 1 >= len(self.starts):
            return self.starts[-1] + len(self.lines[-1])
        start = self.starts[max(0, line - 1)]
        return start + min(max(0, col - 1), len(self.lines[max(0, line - 1)]))


def whole_line(index: LineIndex, line: int) -> types.Range:
    """0-based ``line`` from its start to its end."""
    return types.Range(
        start=index.position(line, 0), end=index.position(line, len(index.line(line)))
    )

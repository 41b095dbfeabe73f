"""Source spans and the one error type of the compiler.

Every message the user sees has the form ``file:line:col: error: message``, then the source
line with a caret under the offending text, then the block call chain (innermost first).
The chain is added once, where a block is called (as torch.fx adds "While executing"), not
by each check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A source file's name (as the user gave it) and text, shared by all its spans."""

    path: str
    text: str = field(repr=False)

    def line(self, n: int) -> str:
        # Split on "\n" only, as the lexer counts lines (splitlines also breaks at \f, ...).
        lines = self.text.split("\n")
        return lines[n - 1].rstrip("\r") if 0 < n <= len(lines) else ""


@dataclass(slots=True, unsafe_hash=True)
class Span:
    """1-based line and column of a construct, and where it ends (immutable by convention:
    not ``frozen``, whose field-by-field ``object.__setattr__`` makes every AST node's span
    several times slower to build; equality and hashing stay by value)."""

    source: Source
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.col}"

    @property
    def short(self) -> str:
        """``line:col``, for notes that point into the same file."""
        return f"{self.line}:{self.col}"


# A block call chain: (block name, span of the call), innermost call first.
Chain = tuple[tuple[str, Span], ...]


_SHOWN = 160  # the most characters of a source line that a message shows


class DlcError(Exception):
    """A located compile error; ``str()`` gives the full, user-facing message."""

    severity = "error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        notes: Iterable[str] = (),
        chain: Chain = (),
    ):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = tuple(notes)
        self.chain = chain
        self.others: list[DlcError] = []  # further independent errors of the same run

    @classmethod
    def group(cls, errors: list[DlcError]) -> DlcError:
        """One exception for several errors: the first, carrying the rest."""
        first = errors[0]
        first.others = list(errors[1:])
        return first

    @property
    def errors(self) -> list[DlcError]:
        return [self, *self.others]

    def with_chain(self, chain: Chain) -> DlcError:
        if not self.chain and chain:
            self.chain = chain
        return self

    def __str__(self) -> str:
        return "\n".join(e.format() for e in self.errors)

    def format(self) -> str:
        """This one error (without ``others``) as the user sees it."""
        if self.span is None:
            return "\n".join([f"{self.severity}: {self.message}", *self.notes])
        span = self.span
        # Control characters (form feeds, ...) shown as spaces keep the caret aligned and the
        # message on its own lines.
        text = "".join(" " if not c.isprintable() else c for c in span.source.line(span.line))
        width = (
            (span.end_col - span.col) if span.end_line == span.line else len(text) - span.col + 1
        )
        width = max(1, min(width, len(text) - span.col + 1))
        col = span.col
        if len(text) > _SHOWN:  # a long line (generated, minified, binary): around the caret
            start = max(0, min(col - 1 - _SHOWN // 3, len(text) - _SHOWN))
            more = "..." if start + _SHOWN < len(text) else ""
            text = ("..." if start else "") + text[start : start + _SHOWN] + more
            col += (3 if start else 0) - start
            width = max(1, min(width, len(text) - len(more) - col + 1))
        gutter = f"{span.line:>5} | "
        lines = [
            f"{span}: {self.severity}: {self.message}",
            gutter + text,
            " " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" + "~" * (width - 1),
        ]
        lines += [f"  {note}" for note in self.notes]
        lines += [  # a block's name, or "fn name" for a compile-time function
            f"  in {'' if name.startswith('fn ') else 'block '}{name}, called at {where}"
            for name, where in self.chain
        ]
        return "\n".join(lines)


class DlcWarning(DlcError):
    """A located warning: formatted as an error is, never raised."""

    severity = "warning"


class ShapeError(Exception):
    """Raised by an op's shape rule; the elaborator adds the call's span and chain."""

"""Questions about the syntax tree: what is under the cursor, which definitions a file
holds, and which names a body binds (params, ``x = ...``, ``let``, ``for``, ``input``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from ..compiler.errors import Span
from ..compiler.frontend import ast
from .tokens import Section
from .vocabulary import Def


def _nodes(value: Any) -> Iterator[Any]:
    if isinstance(value, tuple):
        for item in value:
            yield from _nodes(item)
    elif hasattr(value, "span") and hasattr(value, "__dataclass_fields__"):
        yield value


def children(node: Any) -> Iterator[Any]:
    """The syntax nodes directly inside ``node``, in field order."""
    for f in fields(node):
        if f.name != "span":
            yield from _nodes(getattr(node, f.name))


def contains(span: Span, line: int, col: int, strict: bool = False) -> bool:
    """Whether 1-based (line, col) lies in ``span`` (at its end too, unless ``strict``)."""
    start, end, pos = (span.line, span.col), (span.end_line, span.end_col), (line, col)
    return start <= pos < end if strict else start <= pos <= end


def definitions(module: ast.Module) -> list[Def]:
    """The file's blocks, networks, fns, train and search sections, in source order."""
    defs = [*module.blocks, *module.networks, *module.functions, *module.trains]
    defs += module.searches
    return sorted(defs, key=lambda d: (d.span.line, d.span.col))


def extents(module: ast.Module, secs: list[Section]) -> dict[int, Span]:
    """Each definition's whole extent, keyword to closing brace, by ``id``: a definition's
    own span covers only its name (where the compiler points), so the extent comes from
    the tokens."""
    by_name = {(s.name.line, s.name.col): s for s in secs if s.name is not None}
    out: dict[int, Span] = {}
    for d in [*definitions(module), *module.imports]:
        sec = by_name.get((d.span.line, d.span.col))
        if sec is not None and sec.last is not None:
            kw, last = sec.keyword, sec.last
            out[id(d)] = Span(d.span.source, kw.line, kw.col, last.line, last.end_col)
            continue
        end = max(((n.span.end_line, n.span.end_col) for n in walk(d)), default=(0, 0))
        end = max(end, (d.span.end_line, d.span.end_col))
        out[id(d)] = Span(d.span.source, d.span.line, 1, end[0], end[1])
    return out


def path_at(module: ast.Module, line: int, col: int, extent: dict[int, Span]) -> list[Any]:
    """The nodes from the definition down to the innermost one at (line, col);
    ``extent`` gives the definitions' extents (see ``extents``)."""
    path: list[Any] = []
    candidates: list[Any] = [*definitions(module), *module.imports]
    while True:

        def span(n: Any) -> Span:
            return extent.get(id(n), n.span) if not path else n.span

        inside = [n for n in candidates if contains(span(n), line, col)]
        if not inside:
            return path
        # Prefer a node the cursor is strictly inside; at a boundary (`a|b`), the later one.
        strict = [n for n in inside if contains(span(n), line, col, strict=True)]
        node = strict[0] if strict else inside[-1]
        path.append(node)
        candidates = list(children(node))


_WORD = r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])"


def find_name(span: Span, name: str, skip: int = 0) -> Span:
    """The span of the word ``name`` at or after the start of ``span`` (after ``skip``
    further characters), within the span's lines; the span's start if not found."""
    lines = span.source.text.split("\n")
    pattern = re.compile(_WORD.format(re.escape(name)))
    for n in range(span.line, min(span.end_line, len(lines)) + 1):
        start = span.col - 1 + skip if n == span.line else 0
        m = pattern.search(lines[n - 1], start)
        if m:
            return Span(span.source, n, m.start() + 1, n, m.end() + 1)
    return Span(span.source, span.line, span.col, span.line, span.col + len(name))


@dataclass
class Binding:
    """A name a definition binds: where the name is written, the statement, its value."""

    name: str
    kind: str  # param, assign, let, for, input, destructure
    span: Span  # the name itself
    stmt: Any
    value: Any = None  # the bound expression (an assignment's or let's), if any


def bindings(d: Def) -> list[Binding]:
    """The names ``d`` binds, in source order: its parameters, then its statements'
    (bindings are not scoped by if/for/repeat bodies, so those are walked too)."""
    out = [
        Binding(p.name, "param", find_name(p.span, p.name), p, p.default)
        for p in getattr(d, "params", ())
    ]
    body = d.body if isinstance(d.body, tuple) else ()
    _statements(body, out)
    return out


def _statements(body: tuple, out: list[Binding]) -> None:
    for s in body:
        if isinstance(s, ast.Assign):
            out.append(Binding(s.name, "assign", find_name(s.span, s.name), s, s.value))
        elif isinstance(s, ast.Destructure):
            for name in s.names:
                out.append(Binding(name, "destructure", find_name(s.span, name), s, s.value))
        elif isinstance(s, ast.Let):
            out.append(Binding(s.name, "let", find_name(s.span, s.name, skip=3), s, s.value))
        elif isinstance(s, ast.InputDecl):
            out.append(Binding(s.name, "input", find_name(s.span, s.name, skip=5), s))
        elif isinstance(s, ast.For):
            for name in s.targets:
                out.append(Binding(name, "for", find_name(s.span, name, skip=3), s, s.iter))
            _statements(s.body, out)
        elif isinstance(s, ast.If):
            _statements(s.then, out)
            _statements(s.orelse, out)
        elif isinstance(s, ast.Repeat):
            _statements(s.body, out)
        elif isinstance(s, ast.Residual):
            _statements(s.body, out)
            _statements(s.shortcut or (), out)


def resolve(d: Def, name: str, line: int, col: int) -> Binding | None:
    """The binding of ``name`` that the use at (line, col) inside ``d`` sees: the last one
    written before it, not counting an assignment whose value holds the use (``h = h |
    relu`` reads the previous ``h``); the binding itself when the cursor is on its name."""
    best = None
    for b in bindings(d):
        if b.name != name:
            continue
        if contains(b.span, line, col):
            return b
        if (b.span.line, b.span.col) >= (line, col):
            break
        if b.kind in ("assign", "let", "destructure") and contains(b.stmt.span, line, col):
            continue
        best = b
    return best


def enclosing_def(module: ast.Module, line: int, col: int, extent: dict[int, Span]) -> Def | None:
    for d in definitions(module):
        if contains(extent.get(id(d), d.span), line, col):
            return d
    return None


def walk(d: Def) -> Iterator[Any]:
    """Every node of ``d``, depth first."""
    stack = [d]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(list(children(node))))

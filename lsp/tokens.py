"""The document as tokens: the parser's own lexer made tolerant (a character it cannot
match becomes an ``ERROR`` token instead of stopping), with comments and newlines kept, and
the top-level sections (``network Name(params) { ... }``) found from the tokens alone.

Everything here works on text that does not parse, so completion and highlighting keep
working while the user types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..compiler.frontend import dl_tables
from ..compiler.frontend.lalr import token_re

# The same alternation, in the same order, as compiler.frontend.lalr's lexer.
_TOKEN = re.compile(token_re(dl_tables.TERMINALS))
_SKIP = frozenset(dl_tables.IGNORE) - {"COMMENT"}
KEYWORDS: dict[str, str] = dict(dl_tables.KEYWORDS)  # word -> token type

# Keywords that start a top-level section, and those that only make sense inside a body.
TOP_LEVEL = ("import", "block", "network", "fn", "train", "search")
TOP_TYPES = frozenset(KEYWORDS[k] for k in TOP_LEVEL)
OPEN = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}


@dataclass(slots=True)
class Token:
    """A token: its type (the parser's terminal, a keyword's type, ``COMMENT``, ``NL`` or
    ``ERROR``), text, 1-based line and code-point column, and offset in the text."""

    kind: str
    value: str
    line: int
    col: int
    offset: int

    @property
    def end(self) -> int:
        return self.offset + len(self.value)

    @property
    def end_col(self) -> int:
        return self.col + len(self.value)


def lex(text: str) -> list[Token]:
    """Every token of ``text`` (a leading byte-order mark dropped, as the parser does)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    match = _TOKEN.match
    out: list[Token] = []
    pos, end, line, line_start = 0, len(text), 1, 0
    while pos < end:
        m = match(text, pos)
        if m is None:  # a character no terminal matches: skip it, as an error token
            kind, value = "ERROR", text[pos]
        else:
            kind, value = m.lastgroup or "ERROR", m.group()
        if kind not in _SKIP:
            if kind == "NAME":
                kind = KEYWORDS.get(value, kind)
            elif kind == "_NL":
                kind = "NL"
            out.append(Token(kind, value, line, pos - line_start + 1, pos))
        pos += len(value)
        if "\n" in value:
            line += value.count("\n")
            line_start = pos - len(value) + value.rindex("\n") + 1
    return out


def significant(tokens: list[Token]) -> list[Token]:
    """The tokens without comments and error characters."""
    return [t for t in tokens if t.kind not in ("COMMENT", "ERROR")]


@dataclass
class Section:
    """One top-level definition as the tokens show it, complete or not."""

    kind: str  # import, block, network, fn, train, search
    keyword: Token
    name: Token | None = None
    params: list[Token] = field(default_factory=list)
    body_start: int | None = None  # offset just past the body's `{` (a fn's `=`)
    body_end: int | None = None  # offset of the closing `}`; None: still open
    last: Token | None = None  # the section's last token (its closing `}`, if closed)

    def in_body(self, offset: int) -> bool:
        if self.body_start is None or offset < self.body_start:
            return False
        return self.body_end is None or offset <= self.body_end


def sections(tokens: list[Token]) -> list[Section]:
    """The top-level sections, in order. A top-level keyword at the start of a line ends
    a section whose braces are still open (the user is typing in it)."""
    toks = significant(tokens)
    out: list[Section] = []
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        if t.kind not in TOP_TYPES:
            i += 1
            continue
        sec = Section(t.value, t, last=t)
        out.append(sec)
        i += 1
        if sec.kind == "import":
            if i < n and toks[i].kind == "STRING":
                sec.name = toks[i]
                sec.last = toks[i]
                i += 1
            continue
        if i < n and toks[i].kind == "NAME":
            sec.name = toks[i]
            sec.last = toks[i]
            i += 1
        if i < n and toks[i].kind == "LPAR":
            i = _params(toks, i, sec)
        if sec.kind == "fn":
            i = _fn_body(toks, i, sec)
        else:
            i = _body(toks, i, sec)
    return out


def _starts_section(t: Token) -> bool:
    return t.kind in TOP_TYPES and t.col == 1


def _params(toks: list[Token], i: int, sec: Section) -> int:
    """The names of a header's parameters: ``(a, b = 2 * a)``; returns the index past ``)``."""
    depth = 0
    while i < len(toks):
        t = toks[i]
        if _starts_section(t) and depth:
            return i
        if t.kind in ("LPAR", "LSQB"):
            depth += 1
        elif t.kind in ("RPAR", "RSQB"):
            depth -= 1
            if depth == 0:
                sec.last = t
                return i + 1
        elif t.kind == "NAME" and depth == 1 and toks[i - 1].kind in ("LPAR", "COMMA"):
            sec.params.append(t)
        sec.last = t
        i += 1
    return i


def _body(toks: list[Token], i: int, sec: Section) -> int:
    while i < len(toks) and toks[i].kind == "NL":
        i += 1
    if i >= len(toks) or toks[i].kind != "LBRACE":
        return i
    sec.body_start = toks[i].end
    depth = 0
    while i < len(toks):
        t = toks[i]
        if depth and _starts_section(t):
            return i
        sec.last = t
        if t.kind == "LBRACE":
            depth += 1
        elif t.kind == "RBRACE":
            depth -= 1
            if depth == 0:
                sec.body_end = t.offset
                return i + 1
        i += 1
    return i


def _fn_body(toks: list[Token], i: int, sec: Section) -> int:
    """A fn's body: one expression after ``=``, to the end of its line (newlines inside
    brackets do not end it)."""
    if i >= len(toks) or toks[i].kind != "EQUAL":
        return i
    sec.body_start = toks[i].end
    depth = 0
    i += 1
    while i < len(toks):
        t = toks[i]
        if _starts_section(t) or (t.kind == "NL" and depth <= 0):
            sec.body_end = t.offset
            return i
        if t.kind in ("LPAR", "LSQB"):
            depth += 1
        elif t.kind in ("RPAR", "RSQB"):
            depth -= 1
        sec.last = t
        i += 1
    return i


def section_at(secs: list[Section], offset: int) -> Section | None:
    """The section whose body holds ``offset``, if any."""
    for sec in reversed(secs):
        if sec.keyword.offset < offset:
            return sec if sec.in_body(offset) else None
    return None


def statements(toks: list[Token]) -> list[list[Token]]:
    """Significant tokens of a body split into statements, as the parser's post-lexer
    splits them: a newline ends one unless inside brackets or next to `|`; `;` ends one;
    braces stand between. For text being typed, a bracket left open is abandoned when a
    later line starts at or left of the statement's first column. The last statement is
    the one the tokens end in (empty if they end with a separator)."""
    out: list[list[Token]] = []
    cur: list[Token] = []
    depth = 0
    after_newline = False
    for t in toks:
        if t.kind in ("LBRACE", "RBRACE") or (t.kind == "SEMICOLON" and depth == 0):
            out.append(cur)
            cur, depth, after_newline = [], 0, False
            continue
        if t.kind == "NL":
            if depth == 0 and cur and cur[-1].kind != "VBAR":
                out.append(cur)
                cur, after_newline = [], True
            continue
        if t.kind == "VBAR" and not cur and after_newline and out:
            cur = out.pop()  # a line that starts with `|` continues the statement
        elif depth and cur and t.line > cur[-1].line and t.col <= cur[0].col:
            out.append(cur)
            cur, depth = [], 0
        after_newline = False
        if t.kind in ("LPAR", "LSQB"):
            depth += 1
        elif t.kind in ("RPAR", "RSQB"):
            depth = max(0, depth - 1)
        cur.append(t)
    out.append(cur)
    return out


def bound_names(tokens: list[Token], start: int, end: int, lets_only: bool = False) -> list[Token]:
    """Names a body binds between offsets ``start`` and ``end``: ``x = ...``,
    ``a, b = ...``, ``let x``, ``for a, b in``, ``input x:``, in order (only ``let``
    names with ``lets_only``: in a recipe, ``key = value`` binds no name)."""
    toks = [t for t in significant(tokens) if start <= t.offset < end]
    out: list[Token] = []
    for stmt in statements(toks):
        kinds = [t.kind for t in stmt]
        if len(stmt) >= 2 and kinds[0] == "LET" and kinds[1] == "NAME":
            out.append(stmt[1])
        elif lets_only:
            continue
        elif kinds[:1] == ["NAME"]:
            j = 1
            while j + 1 < len(stmt) and kinds[j] == "COMMA" and kinds[j + 1] == "NAME":
                j += 2
            if j < len(stmt) and kinds[j] == "EQUAL":
                out += stmt[0:j:2]
        elif kinds[:2] == ["FOR", "NAME"]:
            j = 1
            while j < len(stmt) and kinds[j] == "NAME":
                out.append(stmt[j])
                j += 2 if j + 1 < len(stmt) and kinds[j + 1] == "COMMA" else len(stmt)
        elif kinds[:2] == ["INPUT", "NAME"]:
            out.append(stmt[1])
    return out


def token_at(tokens: list[Token], offset: int, kinds: tuple[str, ...] = ()) -> Token | None:
    """The token under ``offset`` (or ending just at it), of one of ``kinds`` if given."""
    best = None
    for t in tokens:
        if t.offset > offset:
            break
        if t.offset <= offset <= t.end and (not kinds or t.kind in kinds):
            best = t
            if offset < t.end:
                return t
    return best

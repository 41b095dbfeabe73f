"""Go-to-definition (blocks, networks, fns, recipes, imports, bound names) and the
document's outline (its sections and the names each binds)."""

from __future__ import annotations

import os
from pathlib import Path

from lsprotocol import types
from pygls import uris

from ..compiler.errors import Span
from ..compiler.frontend.program import Program
from .analysis import Analysis
from .positions import LineIndex
from .syntax import enclosing_def, resolve
from .tokens import Section, Token, bound_names, section_at, sections, significant, token_at


def _location(a: Analysis, span: Span) -> types.Location:
    if a.here(span):
        return types.Location(uri=a.uri, range=a.index.span_range(span))
    path = os.path.abspath(span.source.path)
    index = LineIndex(span.source.text, a.index.encoding)
    return types.Location(uri=uris.from_fs_path(path) or path, range=index.span_range(span))


def _token_range(a: Analysis, tok: Token) -> types.Range:
    return types.Range(
        start=a.index.position(tok.line - 1, tok.col - 1),
        end=a.index.position(tok.line - 1, tok.end_col - 1),
    )


def definition(
    a: Analysis, pos: types.Position, program: Program | None
) -> list[types.Location] | None:
    """Where the word at ``pos`` is defined; ``program`` is the last one that loaded, for
    a document that does not parse now."""
    line, col = a.index.cursor(pos)
    offset = a.index.offset(line, col)
    tok = token_at(a.tokens, offset, ("NAME", "STRING"))
    if tok is None:
        return None
    if tok.kind == "STRING":
        return _import_target(a, tok)
    word = tok.value
    if a.module is not None:
        d = enclosing_def(a.module, line, col, a.extents)
        b = resolve(d, word, line, col) if d is not None else None
        if b is not None:
            return [_location(a, b.span)]
    else:  # no tree: the names the tokens of this section bind before the cursor
        sec = section_at(sections(a.tokens), offset)
        if sec is not None:
            bound = [t for t in _section_names(a.tokens, sec, offset) if t.value == word]
            if bound:
                return [types.Location(uri=a.uri, range=_token_range(a, bound[-1]))]
    program = a.program or program
    found = program.definition(word) if program is not None else None
    if found is not None:
        return [_location(a, found.span)]  # a definition's span is its name
    for sec in sections(a.tokens):
        if sec.name is not None and sec.name.value == word and sec.kind != "import":
            return [types.Location(uri=a.uri, range=_token_range(a, sec.name))]
    return None


def _section_names(tokens: list[Token], sec: Section, offset: int) -> list[Token]:
    """A section's parameters and the names its body binds before ``offset``."""
    start = sec.body_start if sec.body_start is not None else offset
    return [*sec.params, *bound_names(tokens, start, offset)]


def _import_target(a: Analysis, tok: Token) -> list[types.Location] | None:
    toks = significant(a.tokens)
    i = next((i for i, t in enumerate(toks) if t is tok), 0)
    if i == 0 or toks[i - 1].kind != "IMPORT":
        return None
    target = Path(a.path).parent / tok.value[1:-1]
    if not target.is_file():
        return None
    start = types.Position(line=0, character=0)
    uri = uris.from_fs_path(str(target.resolve())) or str(target)
    return [types.Location(uri=uri, range=types.Range(start=start, end=start))]


# ---- outline -------------------------------------------------------------------------

_KINDS = {
    "network": types.SymbolKind.Class,
    "block": types.SymbolKind.Module,
    "fn": types.SymbolKind.Function,
    "train": types.SymbolKind.Event,
    "search": types.SymbolKind.Object,
    "import": types.SymbolKind.File,
}


def symbols(a: Analysis) -> list[types.DocumentSymbol]:
    """The sections of the document with the names each binds, from its tokens (so an
    outline stays while the text does not parse)."""
    out = []
    for sec in sections(a.tokens):
        if sec.name is None or sec.last is None:
            continue
        last = sec.last
        rng = types.Range(
            start=a.index.position(sec.keyword.line - 1, sec.keyword.col - 1),
            end=a.index.position(last.line - 1, last.end_col - 1),
        )
        children = []
        if sec.kind != "import":
            end = (last.offset if sec.body_end is None else sec.body_end) + 1
            seen: set[str] = set()
            child_kind = (
                types.SymbolKind.Property
                if sec.kind in ("train", "search")
                else types.SymbolKind.Variable
            )
            for t in bound_names(a.tokens, sec.body_start or end, end):
                if t.value in seen:
                    continue
                seen.add(t.value)
                r = _token_range(a, t)
                children.append(
                    types.DocumentSymbol(name=t.value, kind=child_kind, range=r, selection_range=r)
                )
        name = sec.name.value.strip("\"'") if sec.kind == "import" else sec.name.value
        out.append(
            types.DocumentSymbol(
                name=name,
                detail=sec.kind,
                kind=_KINDS[sec.kind],
                range=rng,
                selection_range=_token_range(a, sec.name),
                children=children or None,
            )
        )
    return out

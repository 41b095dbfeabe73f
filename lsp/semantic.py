"""Semantic tokens (full document): every token of the parser's lexer classified —
keywords, op and builtin names, block/network/fn/recipe names, parameters, numbers,
strings, comments — and encoded as the protocol's relative quintuples."""

from __future__ import annotations

from lsprotocol import types

from ..compiler.frontend.program import Program
from ..compiler.recipe import schema
from . import vocabulary as V
from .analysis import Analysis
from .tokens import KEYWORDS, Section, Token, sections

TOKEN_TYPES = [
    "keyword",
    "function",
    "class",
    "parameter",
    "variable",
    "property",
    "number",
    "string",
    "comment",
    "type",
]
TOKEN_MODIFIERS = ["declaration", "defaultLibrary"]
LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)

_TYPE = {name: i for i, name in enumerate(TOKEN_TYPES)}
_DECLARATION, _LIBRARY = 1, 2  # modifier bits
_KEYWORD_TYPES = frozenset(KEYWORDS.values())
_LITERALS = {"INT": "number", "FLOAT": "number", "STRING": "string", "COMMENT": "comment"}
_DEF_TYPES = {"block": "class", "network": "class", "train": "class", "search": "class"}
_RECIPE_WORDS = frozenset(n for table in schema.FUNCTIONS.values() for n in table)
_SEARCH_WORDS = frozenset((*V.SEARCH_FUNCTIONS, *V.SAMPLERS, *V.PRUNERS))
_LIBRARY_WORDS = frozenset((*V.OPS, *V.BUILTINS, *V.INITIALIZERS))


def semantic_tokens(a: Analysis, program: Program | None) -> types.SemanticTokens:
    """The document's tokens; ``program`` is the last one that loaded."""
    secs = sections(a.tokens)
    defs = V.program_definitions(a.program or program, secs)
    data: list[int] = []
    prev_line = prev_start = 0
    sec_i = 0
    prev: Token | None = None
    depth = 0  # brackets open: a `NAME =` inside them is a keyword argument
    sig = [t for t in a.tokens if t.kind not in ("COMMENT", "ERROR")]
    following = {id(t): sig[i + 1] for i, t in enumerate(sig[:-1])}
    for t in a.tokens:
        while sec_i + 1 < len(secs) and secs[sec_i + 1].keyword.offset <= t.offset:
            sec_i += 1
        sec = secs[sec_i] if secs and secs[sec_i].keyword.offset <= t.offset else None
        nxt = following.get(id(t))
        keyword_arg = depth > 0 and nxt is not None and nxt.kind == "EQUAL"
        found = _classify(t, prev, nxt, sec, defs, keyword_arg)
        if t.kind in ("LPAR", "LSQB"):
            depth += 1
        elif t.kind in ("RPAR", "RSQB"):
            depth = max(0, depth - 1)
        elif t.kind in ("LBRACE", "RBRACE"):
            depth = 0
        if t.kind not in ("COMMENT", "ERROR"):
            prev = t
        if found is None:
            continue
        kind, mods = found
        line = t.line - 1
        start = a.index.units(line, t.col - 1)
        length = a.index.units(line, t.end_col - 1) - start
        delta_line = line - prev_line
        data += [delta_line, start - prev_start if delta_line == 0 else start, length]
        data += [_TYPE[kind], mods]
        prev_line, prev_start = line, start
    return types.SemanticTokens(data=data)


def _classify(
    t: Token,
    prev: Token | None,
    nxt: Token | None,
    sec: Section | None,
    defs: dict[str, str],
    keyword_arg: bool,
) -> tuple[str, int] | None:
    if t.kind in _LITERALS:
        return _LITERALS[t.kind], 0
    if t.kind in _KEYWORD_TYPES:
        return "keyword", 0
    if t.kind != "NAME":
        return None
    word = t.value
    if sec is not None:
        if t is sec.name:
            return _DEF_TYPES.get(sec.kind, "function"), _DECLARATION
        if any(t is p for p in sec.params):
            return "parameter", _DECLARATION
    if prev is not None and prev.kind == "DOT":
        return "property", 0
    if keyword_arg:  # `stride=2` in a call
        return "parameter", 0
    if prev is not None and prev.kind == "COLON" and word in V.DTYPES:
        return "type", 0
    statement_start = prev is None or prev.kind in ("LBRACE", "SEMICOLON", "NL", "RBRACE")
    sets = statement_start and nxt is not None and nxt.kind == "EQUAL"
    if sec is not None and sec.kind in ("train", "search") and sets:
        if sec.kind == "search" or word in schema.KEYS:  # a key (a search sets any name)
            return "property", 0
    if sec is not None and any(p.value == word for p in sec.params):
        return "parameter", 0
    if sec is not None and sec.kind == "train" and word in _RECIPE_WORDS:
        return "function", _LIBRARY
    if sec is not None and sec.kind == "search" and word in _SEARCH_WORDS:
        return "function", _LIBRARY
    if word in defs:
        return _DEF_TYPES.get(defs[word], "function"), 0
    if word in _LIBRARY_WORDS:
        return "function", _LIBRARY
    return "variable", 0

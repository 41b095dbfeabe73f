"""Completion, from the tokens before the cursor (so it works while the text does not
parse) and the last program that loaded: ops with their signatures and docs, the keyword
arguments of the call the cursor is in, the program's blocks, networks, fns and recipes,
the names in scope, the grammar's keywords, and a ``train`` or ``search`` section's keys
and functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types

from ..compiler.frontend.program import Program
from ..compiler.recipe import schema
from . import vocabulary as V
from .analysis import Analysis
from .tokens import (
    TOP_LEVEL,
    Section,
    Token,
    bound_names,
    section_at,
    sections,
    significant,
    statements,
)

Kind = types.CompletionItemKind

# Sort groups: what the cursor's place asks for first, then names, then everything else.
_FIRST, _NAMES, _DEFS, _WORDS, _KEYWORDS = "0", "1", "2", "3", "4"


@dataclass
class _Place:
    """Where the cursor is, as the tokens before it say."""

    section: Section | None
    statement: list[Token]  # the tokens of the current statement before the word typed
    callee: str | None  # the name whose call's parentheses hold the cursor
    at_argument: bool  # right after that call's `(` or a `,`: an argument starts here
    before: list[Token]  # the section body's tokens before the cursor


def _markdown(text: str) -> types.MarkupContent:
    return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)


class _Items:
    """Completion items, the first of each label kept."""

    def __init__(self) -> None:
        self.items: dict[str, types.CompletionItem] = {}

    def add(
        self,
        label: str,
        kind: types.CompletionItemKind,
        group: str,
        detail: str | None = None,
        doc: str | None = None,
        insert: str | None = None,
    ) -> None:
        if label in self.items:
            return
        self.items[label] = types.CompletionItem(
            label=label,
            kind=kind,
            detail=detail,
            documentation=_markdown(doc) if doc else None,
            insert_text=insert,
            sort_text=f"{group}{label}",
        )


def complete(a: Analysis, pos: types.Position, program: Program | None) -> types.CompletionList:
    """The completions at ``pos``; ``program`` is the last one that loaded."""
    line, col = a.index.cursor(pos)
    offset = a.index.offset(line, col)
    items = _Items()
    for t in a.tokens:  # nothing to offer inside a comment or a string
        if t.offset < offset < t.end or (t.kind == "COMMENT" and t.offset < offset <= t.end):
            if t.kind in ("COMMENT", "STRING", "ERROR"):
                return types.CompletionList(is_incomplete=False, items=[])
    text_line = a.index.line(line - 1)
    start = col - 1
    while start > 0 and (text_line[start - 1].isalnum() or text_line[start - 1] == "_"):
        start -= 1
    word_start = offset - (col - 1 - start)
    program = a.program or program
    secs = sections(a.tokens)
    if start > 0 and text_line[start - 1] == ".":
        for name, doc in V.TENSOR_ATTRS.items():
            items.add(name, Kind.Property, _FIRST, doc)
        return types.CompletionList(is_incomplete=False, items=list(items.items.values()))
    place = _place(a.tokens, secs, word_start)
    if place.section is None:
        for word in TOP_LEVEL:
            items.add(word, Kind.Keyword, _KEYWORDS)
    elif place.section.kind == "train":
        _train(items, place, program, secs)
    elif place.section.kind == "search":
        _search(items, place, program, secs)
    else:
        _body(items, place, program, secs)
    return types.CompletionList(is_incomplete=False, items=list(items.items.values()))


def _place(tokens: list[Token], secs: list[Section], offset: int) -> _Place:
    sec = section_at(secs, offset)
    if sec is None or sec.body_start is None:
        return _Place(None, [], None, False, [])
    before = [t for t in significant(tokens) if sec.body_start <= t.offset < offset]
    statement = statements(before)[-1]
    stack: list[int] = []
    for i, t in enumerate(statement):
        if t.kind in ("LPAR", "LSQB"):
            stack.append(i)
        elif t.kind in ("RPAR", "RSQB") and stack:
            stack.pop()
    callee, at_argument = None, False
    if stack and statement[stack[-1]].kind == "LPAR":
        i = stack[-1]
        if i and statement[i - 1].kind == "NAME":
            callee = statement[i - 1].value
        at_argument = statement[-1].kind in ("LPAR", "COMMA")
    return _Place(sec, statement, callee, at_argument, before)


# ---- names the program and the section define -----------------------------------------


def _def_node(program: Program | None, name: str):
    return program.definition(name) if program is not None else None


def _params_of(name: str, program: Program | None, secs: list[Section]) -> list[str]:
    """The parameter names of a block, network, fn or recipe of the program."""
    d = _def_node(program, name)
    if d is not None and hasattr(d, "params"):
        return [p.name for p in d.params]
    for sec in secs:
        if sec.name is not None and sec.name.value == name:
            return [t.value for t in sec.params]
    return []


def _add_definitions(items: _Items, program: Program | None, secs: list[Section], kinds) -> None:
    kind_map = {
        "block": Kind.Module,
        "network": Kind.Class,
        "fn": Kind.Function,
        "train": Kind.Event,
        "search": Kind.Struct,
    }
    for name, kind in V.program_definitions(program, secs).items():
        if kind not in kinds:
            continue
        d = _def_node(program, name)
        items.add(
            name,
            kind_map[kind],
            _DEFS,
            V.def_signature(d) if d is not None else kind,
            V.def_markdown(d) if d is not None else None,
        )


def _add_scope(items: _Items, place: _Place) -> None:
    sec = place.section
    assert sec is not None
    for t in sec.params:
        items.add(t.value, Kind.Variable, _NAMES, f"parameter of {sec.kind} {_name(sec)}")
    lets_only = sec.kind in ("train", "search")
    for t in bound_names(place.before, 0, 1 << 62, lets_only):
        items.add(t.value, Kind.Variable, _NAMES, f"bound at {t.line}:{t.col}")


def _name(sec: Section) -> str:
    return sec.name.value if sec.name is not None else ""


# ---- networks, blocks, fns -----------------------------------------------------------


def _body(items: _Items, place: _Place, program: Program | None, secs: list[Section]) -> None:
    kinds = [t.kind for t in place.statement]
    if len(kinds) >= 3 and kinds[0] == "INPUT" and kinds[-1] == "COLON":
        for dtype in V.DTYPES:
            items.add(dtype, Kind.TypeParameter, _FIRST, "dtype")
        return
    if place.callee is not None and place.at_argument:
        _keyword_arguments(items, place.callee, program, secs)
    if "INIT" in kinds or _after_init_argument(place.statement):
        for name in V.INITIALIZERS:
            items.add(name, Kind.Function, _FIRST, V.initializer_signature(name))
    _add_scope(items, place)
    for name, op in V.OPS.items():
        items.add(name, Kind.Function, _WORDS, V.op_signature(op), V.op_markdown(op))
    _add_definitions(items, program, secs, ("block", "fn"))
    for name, doc in V.BUILTIN_DOCS.items():
        items.add(name, Kind.Function, _WORDS, doc)
    for word in V.BODY_KEYWORDS:
        items.add(word, Kind.Keyword, _KEYWORDS)


def _after_init_argument(statement: list[Token]) -> bool:
    """``init=`` / ``bias_init=`` just before the cursor."""
    return (
        len(statement) >= 2
        and statement[-1].kind == "EQUAL"
        and statement[-2].value in ("init", "bias_init")
    )


def _keyword_arguments(
    items: _Items, callee: str, program: Program | None, secs: list[Section]
) -> None:
    """``name=`` for each argument of the op, block, fn or initialiser being called."""
    if callee in V.OPS:
        op = V.OPS[callee]
        for arg in op.signature:
            if not arg.variadic:
                items.add(
                    arg.name, Kind.Property, _FIRST, V.arg_doc(op, arg.name), None, f"{arg.name}="
                )
        return
    if callee in V.INITIALIZERS:
        for arg in V.INITIALIZERS[callee]:
            items.add(arg.name, Kind.Property, _FIRST, arg.doc or None, None, f"{arg.name}=")
        return
    for name in _params_of(callee, program, secs):
        items.add(name, Kind.Property, _FIRST, f"parameter of {callee}", None, f"{name}=")


# ---- train and search sections -------------------------------------------------------


def _recipe_functions(items: _Items, kinds: tuple[str, ...] | None) -> None:
    for kind, table in schema.FUNCTIONS.items():
        if kind == "statement" or (kinds is not None and kind not in kinds):
            continue
        for name, fn in table.items():
            items.add(name, Kind.Function, _FIRST, V.recipe_signature(fn), f"{kind}: {fn.doc}")


def _train(items: _Items, place: _Place, program: Program | None, secs: list[Section]) -> None:
    stmt = place.statement
    if place.callee is not None and place.at_argument:
        fn = V.recipe_function(place.callee)
        if fn is not None:
            for p in fn.params:
                shown = "required" if p.default is schema.REQUIRED else V.value_text(p.default)
                items.add(
                    p.name, Kind.Property, _FIRST, f"{fn.name}: {shown}", None, f"{p.name} = "
                )
        else:  # model = Net(...): the network's parameters
            for name in _params_of(place.callee, program, secs):
                items.add(
                    name, Kind.Property, _FIRST, f"parameter of {place.callee}", None, f"{name} = "
                )
    if not stmt:  # a statement starts: a key, `let`, `if`, early_stop(...), checkpoint(...)
        for key in schema.KEYS:
            items.add(key, Kind.Property, _FIRST, V.recipe_key_doc(key), None, f"{key} = ")
        for name, fn in schema.FUNCTIONS["statement"].items():
            items.add(name, Kind.Function, _FIRST, V.recipe_signature(fn), fn.doc)
        for word in ("let", "if", "else"):
            items.add(word, Kind.Keyword, _KEYWORDS)
        return
    key = stmt[0].value if len(stmt) >= 2 and stmt[1].kind == "EQUAL" else None
    kind = schema.KEYS[key][0] if key in schema.KEYS else None
    if place.callee is not None:  # an argument's value: plain values, names in scope
        pass
    elif kind == "model":
        _add_definitions(items, program, secs, ("network",))
    elif isinstance(kind, str) and kind in V.KEY_FUNCTIONS:
        _recipe_functions(items, (V.KEY_FUNCTIONS[kind],))
    elif kind is None:
        _recipe_functions(items, None)
    _add_scope(items, place)
    for word in V.VALUE_KEYWORDS:
        items.add(word, Kind.Keyword, _KEYWORDS)


def _search(items: _Items, place: _Place, program: Program | None, secs: list[Section]) -> None:
    stmt = place.statement
    recipe = _searched_recipe(place)
    if place.callee is not None and place.at_argument:
        for name in _params_of(place.callee, program, secs):
            items.add(
                name, Kind.Property, _FIRST, f"parameter of {place.callee}", None, f"{name} = "
            )
    if not stmt:  # a setting, a parameter of the recipe, a plain key, or `let`
        for name in V.SETTINGS:
            items.add(name, Kind.Property, _FIRST, "search setting", None, f"{name} = ")
        if recipe is not None:
            for name in _params_of(recipe, program, secs):
                items.add(name, Kind.Property, _FIRST, f"parameter of {recipe}", None, f"{name} = ")
        for key, (kind, _) in schema.KEYS.items():
            if not isinstance(kind, str):
                items.add(key, Kind.Property, _NAMES, V.recipe_key_doc(key), None, f"{key} = ")
        items.add("let", Kind.Keyword, _KEYWORDS)
        return
    key = stmt[0].value if len(stmt) >= 2 and stmt[1].kind == "EQUAL" else None
    if key == "recipe":
        _add_definitions(items, program, secs, ("train",))
    elif key == "sampler":
        for name in V.SAMPLERS:
            items.add(name, Kind.EnumMember, _FIRST, "sampler")
    elif key == "pruner":
        for name in V.PRUNERS:
            items.add(name, Kind.EnumMember, _FIRST, "pruner")
    elif key == "objective":
        for name in ("maximize", "minimize"):
            items.add(name, Kind.Function, _FIRST, V.SEARCH_FUNCTIONS[name])
    else:
        for name in V.SPACES:
            items.add(name, Kind.Function, _FIRST, V.SEARCH_FUNCTIONS[name])
    _add_scope(items, place)
    for word in V.VALUE_KEYWORDS:
        items.add(word, Kind.Keyword, _KEYWORDS)


def _searched_recipe(place: _Place) -> str | None:
    """The recipe a search section names (``recipe = R`` before the cursor)."""
    toks = place.before
    for i in range(len(toks) - 2):
        if toks[i].value == "recipe" and toks[i + 1].kind == "EQUAL":
            if toks[i + 2].kind == "NAME":
                return toks[i + 2].value
    return None

"""Source text -> syntax tree (compiler.ast), with friendly, located syntax errors.

Sources are parsed by ``lalr.Parser`` over Lark's tables for the grammar (generated into
``dl_tables.py``); Lark itself is built only to explain a syntax error.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DlcError, Source, Span
from . import ast
from .lalr import MAX_DEPTH, Parser, Reject, Tok, TooDeep, tokenize

if TYPE_CHECKING:
    from lark import Lark
    from lark.exceptions import UnexpectedInput

GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "dl.lark"
if not GRAMMAR.exists():  # installed (non-editable): the grammar is package data of dlc.grammar
    from importlib.resources import files

    GRAMMAR = Path(str(files("dlc.grammar") / "dl.lark"))

# How Lark is built, for the tables (gen_tables.py) and for explaining syntax errors. The
# AST is built by rule methods that take every token (``keep_all_tokens``) for the spans.
LARK_OPTIONS = {
    "parser": "lalr",
    "lexer": "basic",
    "keep_all_tokens": True,
    "maybe_placeholders": False,
}

_LOCK = threading.RLock()  # the shared AST builder holds the current source
_OPEN = {"LPAR": "RPAR", "LSQB": "RSQB"}
# A newline before these tokens continues the statement (`}` newline `else {`, a pipeline
# continued on the next line, a body brace on its own line).
_JOIN_NEXT = {"SHORTCUT", "ELSE", "VBAR", "LBRACE"}


class _Newlines:
    """Post-lexer: drop newlines inside brackets, after `|`, and before continuation tokens."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.open: list = []  # the open brackets' tokens

    def process(self, stream):
        self.open = []
        pending = None  # a newline held back until the next token shows whether it counts
        prev = None
        for tok in stream:
            if tok.type == "_NL":
                if not self.open and prev is not None and prev.type != "VBAR":
                    pending = pending or tok
                continue
            if pending is not None and tok.type not in _JOIN_NEXT:
                yield pending
            pending = None
            if tok.type in _OPEN:
                self.open.append(tok)
            elif (
                tok.type in ("RPAR", "RSQB") and self.open and _OPEN[self.open[-1].type] == tok.type
            ):
                self.open.pop()
            prev = tok
            yield tok
        if pending is not None:
            yield pending


@cache
def _lark(start: str) -> tuple[Lark, _Newlines]:
    """Lark's LALR parser for ``start`` (a fifth of a second to build): only its errors
    are used, and the states in them identify the typical mistakes."""
    from lark import Lark

    postlex = _Newlines()
    return Lark(GRAMMAR.read_text(), start=start, postlex=postlex, **LARK_OPTIONS), postlex


def _span(source: Source, tok: Tok) -> Span:
    """The span of a token."""
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)


def _edge(items, end: bool):
    """(line, col) where the first item starts, or (with ``end``) where the last one ends;
    items are tokens, AST nodes, or (nested) sequences of them."""
    for x in reversed(items) if end else items:
        if isinstance(x, Tok):
            return (x.end_line, x.end_column) if end else (x.line, x.column)
        if isinstance(x, (tuple, list)):
            pos = _edge(x, end)
            if pos:
                return pos
        elif hasattr(x, "span"):
            return (x.span.end_line, x.span.end_col) if end else (x.span.line, x.span.col)
    return None


_VALUE_TOKENS = {"NAME", "INT", "FLOAT", "STRING", "COMP_OP"}


def _meaningful(children: list) -> list:
    """The children a rule method is given: nodes and value tokens, not punctuation."""
    return [c for c in children if not isinstance(c, Tok) or c.type in _VALUE_TOKENS]


def _rule(method):
    """Give a rule method the span of all its tokens and only its meaningful children."""

    def wrapped(self, children):
        start, end = _edge(children, False) or (1, 1), _edge(children, True) or (1, 1)
        span = Span(self.source, start[0], start[1], end[0], end[1])
        return method(self, span, _meaningful(children))

    return wrapped


def _leaf(method):
    """As ``_rule``, for a rule method that needs no span of all its tokens (it takes one
    from a token, or makes no node): most reductions are names and numbers."""

    def wrapped(self, children):
        return method(self, _meaningful(children))

    return wrapped


class _ToAst:
    """Builds compiler.ast nodes; one method per grammar rule or alias, given the rule's
    children as Lark's tree builder would."""

    source: Source  # set before each parse (the parser instance is shared)

    # -- top level
    @_rule
    def module(self, meta, items):
        return ast.Module(
            path=self.source.path,
            imports=tuple(i for i in items if isinstance(i, ast.Import)),
            blocks=tuple(i for i in items if isinstance(i, ast.BlockDef)),
            networks=tuple(i for i in items if isinstance(i, ast.NetworkDef)),
            functions=tuple(i for i in items if isinstance(i, ast.FnDef)),
            trains=tuple(i for i in items if isinstance(i, ast.TrainDef)),
            searches=tuple(i for i in items if isinstance(i, ast.SearchDef)),
        )

    @_rule
    def import_stmt(self, meta, c):
        return ast.Import(meta, c[0].value[1:-1])

    @_leaf
    def block_def(self, c):
        return ast.BlockDef(_span(self.source, c[0]), c[0].value, tuple(c[1:-1]), c[-1])

    @_leaf
    def network_def(self, c):
        return ast.NetworkDef(_span(self.source, c[0]), c[0].value, tuple(c[1:-1]), c[-1])

    @_leaf
    def train_def(self, c):
        return ast.TrainDef(_span(self.source, c[0]), c[0].value, tuple(c[1:-1]), c[-1])

    @_leaf
    def search_def(self, c):
        return ast.SearchDef(_span(self.source, c[0]), c[0].value, c[1])

    @_leaf
    def fn_def(self, c):
        return ast.FnDef(_span(self.source, c[0]), c[0].value, tuple(c[1:-1]), c[-1])

    @_rule
    def param(self, meta, c):
        return ast.Param(meta, c[0].value, c[1] if len(c) > 1 else None)

    @_leaf
    def body(self, c):
        return tuple(c)

    # -- statements
    @_rule
    def input_decl(self, meta, c):
        return ast.InputDecl(meta, c[0].value, c[1].value, _span(self.source, c[1]), tuple(c[2:]))

    @_rule
    def output_stmt(self, meta, c):
        return ast.Output(meta, tuple(c))

    @_rule
    def let_stmt(self, meta, c):
        return ast.Let(meta, c[0].value, c[1])

    @_rule
    def init_stmt(self, meta, c):
        return ast.Init(meta, tuple(c))

    @_rule
    def init_item(self, meta, c):
        return ast.Kwarg(meta, c[0].value, c[1])

    @_rule
    def residual_stmt(self, meta, c):
        cond, shortcut = c[1] if len(c) > 1 else (None, None)
        return ast.Residual(meta, c[0], shortcut, cond)

    @_leaf
    def shortcut(self, c):
        return (c[0], c[1]) if len(c) == 2 else (None, c[0])

    @_rule
    def if_stmt(self, meta, c):
        orelse = c[2] if len(c) > 2 else ()
        if isinstance(orelse, ast.If):
            orelse = (orelse,)
        return ast.If(meta, c[0], c[1], orelse)

    @_rule
    def repeat_stmt(self, meta, c):
        return ast.Repeat(meta, c[0], c[1])

    @_rule
    def for_stmt(self, meta, c):
        names = tuple(t.value for t in c if isinstance(t, Tok))
        return ast.For(meta, names, c[-2], c[-1])

    @_rule
    def assign(self, meta, c):
        return ast.Assign(meta, c[0].value, c[1])

    @_rule
    def destructure(self, meta, c):
        return ast.Destructure(meta, tuple(t.value for t in c[:-1]), c[-1])

    @_rule
    def expr_stmt(self, meta, c):
        return ast.ExprStmt(meta, c[0])

    # -- expressions
    @_rule
    def pipe(self, meta, c):
        return ast.Pipe(meta, tuple(c))

    @_rule
    def ifexp(self, meta, c):
        return ast.IfExp(meta, c[0], c[1], c[2])

    def _bin(op):  # noqa: N805 - a factory used in the class body
        @_rule
        def method(self, meta, c):
            return ast.BinOp(meta, op, c[0], c[1])

        return method

    or_, and_ = _bin("or"), _bin("and")
    add, sub, mul, truediv, floordiv, mod, pow = (
        _bin("+"),
        _bin("-"),
        _bin("*"),
        _bin("/"),
        _bin("//"),
        _bin("%"),
        _bin("**"),
    )
    matmul = _bin("@")

    @_rule
    def not_(self, meta, c):
        return ast.Unary(meta, "not", c[0])

    @_rule
    def neg(self, meta, c):
        return ast.Unary(meta, "-", c[0])

    @_rule
    def compare(self, meta, c):
        return ast.Compare(meta, tuple(t.value for t in c[1::2]), tuple(c[0::2]))

    @_rule
    def call(self, meta, c):
        args = tuple(a for a in c[1:] if not isinstance(a, ast.Kwarg))
        kwargs = tuple(a for a in c[1:] if isinstance(a, ast.Kwarg))
        return ast.Call(meta, c[0], args, kwargs)

    @_leaf
    def arg(self, c):
        return c[0]

    @_leaf
    def kwarg(self, c):
        return ast.Kwarg(_span(self.source, c[0]), c[0].value, c[1])

    @_rule
    def init_kwarg(self, meta, c):
        return ast.Kwarg(meta, "init", c[0])

    @_rule
    def output_kwarg(self, meta, c):
        return ast.Kwarg(meta, "output", c[0])

    @_rule
    def index(self, meta, c):
        return ast.Index(meta, c[0], tuple(c[1:]))

    def slice(self, children):
        """``a:b:s`` with parts left out: the colons say which part each value is."""
        parts: list = [None]
        for c in children:
            if isinstance(c, Tok) and c.value == ":":
                parts.append(None)
            elif not isinstance(c, Tok) or c.type in _VALUE_TOKENS:
                parts[-1] = c
        (line, col), (end_line, end_col) = _edge(children, False), _edge(children, True)
        span = Span(self.source, line, col, end_line, end_col)
        return ast.Slice(span, *parts, *([None] * (3 - len(parts))))

    @_rule
    def ellipsis(self, meta, c):
        return ast.EllipsisLit(meta)

    @_rule
    def attr(self, meta, c):
        return ast.Attr(meta, c[0], c[1].value)

    @_leaf
    def atom(self, c):  # "(" expr ")"
        return c[0]

    @_leaf
    def factor(self, c):  # unary "+"
        return c[0]

    @_leaf
    def int_lit(self, c):
        try:
            return ast.Lit(_span(self.source, c[0]), int(c[0].value))
        except ValueError:  # over Python's 4,300 digits (str(int) could not show it either)
            raise DlcError(
                f"an integer of {len(c[0].value):,} digits is too large", _span(self.source, c[0])
            ) from None

    @_leaf
    def float_lit(self, c):
        return ast.Lit(_span(self.source, c[0]), float(c[0].value))

    @_leaf
    def str_lit(self, c):
        return ast.Lit(_span(self.source, c[0]), c[0].value[1:-1])

    @_rule
    def true(self, meta, c):
        return ast.Lit(meta, True)

    @_rule
    def false(self, meta, c):
        return ast.Lit(meta, False)

    @_rule
    def none(self, meta, c):
        return ast.Lit(meta, None)

    @_leaf
    def name(self, c):
        return ast.Name(_span(self.source, c[0]), c[0].value)

    @_rule
    def input_ref(self, meta, c):
        return ast.InputRef(meta)

    @_rule
    def tuple_lit(self, meta, c):
        return ast.TupleExpr(meta, tuple(c))

    @_rule
    def list_lit(self, meta, c):
        return ast.ListExpr(meta, tuple(c))


# ---- friendly syntax errors ---------------------------------------------------------

_NET = "network A() {{\n  {}\n}}\n"
_MISTAKES = {
    "missing ')' to close the call": [_NET.format("conv2d(3, 3\n  relu"), _NET.format("f(1, g(2)")],
    "missing ']' to close the list": [
        _NET.format("input x: float32[N, 3\n  relu"),
        _NET.format("for c in [1, 2 { relu }"),
    ],
    "missing '}' to close the body": [
        "network A() {\n  relu\n",
        "network A() {\n  relu\n  relu\n",
        "block b() {\n relu\n",
    ],
    "an input is declared as `input NAME: DTYPE[dims]` (with ':', not '=')": [
        _NET.format("input x = float32[N, 3]")
    ],
    "an input's shape is written in brackets, as in `input x: float32[N, 3, 32, 32]`": [
        _NET.format("input x: float32(N, 3)"),
        _NET.format("input x: float32"),
    ],
    "keyword arguments use '=', as in `stride=2`": [_NET.format("conv2d(3, stride: 2)")],
    "missing ',' between arguments": [_NET.format("conv2d(3 3)"), _NET.format("f(a b)")],
    "a comparison uses '==', not '='": [_NET.format("if a = 1 { relu }")],
    "statements are separated by a newline or ';'": [
        _NET.format("relu relu"),
        _NET.format("relu dense(3)"),
        _NET.format("dense(2) relu"),
        _NET.format("h = dense(2) relu"),
        _NET.format("relu 3"),
    ],
    "a block or network needs a name: `block name(params) { ... }`": [
        "block (c) { relu }\n",
        "network { relu }\n",
    ],
}

_TOKEN_NAMES = {
    "RPAR": "')'",
    "LPAR": "'('",
    "RSQB": "']'",
    "LSQB": "'['",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "SEMICOLON": "';'",
    "_NL": "newline",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "VBAR": "'|'",
    "DOT": "'.'",
    "$END": "end of file",
}


def _signature(err: UnexpectedInput) -> tuple | None:
    """Where the parser stood (its state, not its stack depth) and what it was given."""
    state = getattr(err, "state", None)
    tok = getattr(err, "token", None)
    if state is None or tok is None:
        return None
    return state.position, tok.type


@cache
def _mistake_table() -> dict:
    """(parser state, token type) of each typical mistake -> its explanation.

    Lark's ``match_examples`` compares whole parser stacks, so a mistake in a later
    statement (a deeper stack) would miss its hint; the state and token alone identify it.
    """
    from lark.exceptions import UnexpectedInput

    parser, _ = _lark("module")
    table = {}
    for label, examples in _MISTAKES.items():
        for text in examples:
            try:
                parser.parse(text)
            except UnexpectedInput as err:
                key = _signature(err)
                if key is not None:
                    table.setdefault(key, label)
    return table


def _mistake(err: UnexpectedInput) -> str | None:
    key = _signature(err)
    return _mistake_table().get(key) if key is not None else None


def _describe(tok_type: str) -> str:
    return _TOKEN_NAMES.get(tok_type, f"'{tok_type.lower()}'")


def _syntax_error(err: UnexpectedInput, source: Source, start: str, postlex: _Newlines) -> DlcError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    unclosed_at = list(postlex.open)  # matching the mistakes re-parses and resets the post-lexer
    line, col = getattr(err, "line", 0), getattr(err, "column", 0)
    notes: list[str] = []
    if isinstance(err, UnexpectedCharacters):
        ch = source.text[err.pos_in_stream] if err.pos_in_stream < len(source.text) else "?"
        message = f"unexpected character {ch!r}"
        if ch == '"' or ch == "'":
            message = "unterminated string"
    else:
        label = None
        if start == "module":
            label = _mistake(err)
        tok = err.token if isinstance(err, UnexpectedToken) else None
        found = (
            "end of file"
            if tok is None or tok.type == "$END"
            else ("newline" if tok.type == "_NL" else f"{str(tok)!r}")
        )
        if isinstance(err, UnexpectedEOF) or (tok is not None and tok.type == "$END"):
            lines = source.text.rstrip("\n").split("\n")
            line, col = len(lines), len(lines[-1].rstrip("\r")) + 1
        elif tok is not None and tok.type == "_NL":
            col = max(1, col)  # the newline itself: point just past the line's end
        if label and label.startswith(("missing ')'", "missing ']'")) and unclosed_at:
            # the same parser state serves both brackets: name the one actually left open
            inner = unclosed_at[-1]
            label = (
                "missing ')' to close the call"
                if inner.type == "LPAR"
                else ("missing ']' to close the list")
            )
        if label:
            message = f"{label}; found {found}"
        else:
            expected = sorted(
                _describe(t) for t in getattr(err, "expected", ()) or () if not t.startswith("__")
            )
            message = f"unexpected {found}"
            if expected and len(expected) <= 8:
                message += "; expected " + ", ".join(expected)
        unclosed = label is None or label.startswith(("missing ')'", "missing ']'"))
        for opened in unclosed_at[-1:] if unclosed else ():
            notes.append(f"the '{opened}' opened at {opened.line}:{opened.column} is not closed")
    span = Span(source, max(line, 1), max(col, 1), max(line, 1), max(col, 1) + 1)
    return DlcError(message, span, notes=notes)


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse a whole .dl file."""
    return _parse(text, path, "module")


def parse_expr(text: str, path: str = "<command line>"):
    """Parse one expression (used for ``--set name=value``)."""
    return _parse(text, path, "expr")


@cache
def _fast(start: str) -> Parser:
    return Parser(start, _TO_AST)


_TO_AST = _ToAst()


def _parse(text: str, path: str, start: str):
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark: not part of the program
        text = text[1:]
    source = Source(path, text)
    with _LOCK:
        _TO_AST.source = source
        try:
            return _fast(start).parse(_Newlines().process(tokenize(text)))
        except Reject:
            raise _explain(source, start) from None
        except TooDeep as err:
            raise DlcError(
                f"nested too deeply: past the parser's {MAX_DEPTH} levels (about 180 "
                "brackets or prefix operators, 90 calls or 60 blocks inside one another)",
                _span(source, err.token),
            ) from None


def _explain(source: Source, start: str) -> DlcError:
    """The syntax error in ``source``, from Lark's parser (which must reject it too)."""
    from lark.exceptions import UnexpectedInput

    parser, postlex = _lark(start)
    try:
        parser.parse(source.text)
    except UnexpectedInput as err:
        return _syntax_error(err, source, start, postlex)
    raise AssertionError(f"Lark accepts what the parse tables reject: {source.path}")

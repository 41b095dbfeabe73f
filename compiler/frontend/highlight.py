"""Syntax highlighting of ``.dl``: a Pygments lexer and coloured error messages.

The word lists come from the language's own tables (the grammar's keywords, the op registry,
the built-in and recipe functions, the search spaces), so highlighting cannot drift from the
compiler; ``editors/vscode/gen_grammar.py`` builds the VS Code grammar from the same lists.
Pygments finds the lexer through the ``pygments.lexers`` entry point ``dl``.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
    _TokenType,
)
from rich.console import Console
from rich.text import Text

from ..elaborate.values import BUILTINS as _BUILTINS
from ..ir.graph import DTYPES as _DTYPES
from ..ir.initializers import INITIALIZERS
from ..ops import OPS as _OPS
from ..recipe.schema import FUNCTIONS as _RECIPE
from ..recipe.search import PRUNERS, SAMPLERS, SPACES
from .dl_tables import KEYWORDS as _KEYWORDS
from .dl_tables import TERMINALS

# ---- the word lists (sorted; a word appears in the first list that has it) ----
KEYWORDS: tuple[str, ...] = tuple(sorted(_KEYWORDS))
CONSTANTS: tuple[str, ...] = ("false", "none", "true")  # keywords that are values
DEFINERS: tuple[str, ...] = ("block", "network", "search", "train")  # followed by a type name
DTYPES: tuple[str, ...] = tuple(sorted(_DTYPES))
OPS: tuple[str, ...] = tuple(sorted(set(_OPS) - set(KEYWORDS)))
_OBJECTIVES = ("maximize", "minimize")  # a search's objective (compiler/recipe/search.py)
FUNCTIONS: tuple[str, ...] = tuple(
    sorted(
        {*_BUILTINS, *INITIALIZERS, *SPACES, *SAMPLERS, *PRUNERS, *_OBJECTIVES}.union(
            *(kind.keys() for kind in _RECIPE.values())
        ).difference(KEYWORDS, OPS, DTYPES)
    )
)

# ---- the lexical rules, from the grammar's terminals ----
_TERMINALS = dict(TERMINALS)
IDENTIFIER = _TERMINALS["NAME"]
FLOAT = _TERMINALS["FLOAT"]
INT = _TERMINALS["INT"]
STRING = _TERMINALS["STRING"]
COMMENT = "#.*"
_PUNCTUATION = {"LPAR", "RPAR", "LSQB", "RSQB", "LBRACE", "RBRACE", "COMMA", "SEMICOLON"}
_PUNCTUATION |= {"COLON", "DOT"}
_NOT_OPERATORS = {"NAME", "INT", "FLOAT", "STRING", "COMMENT", "_NL", *_PUNCTUATION}
# Lark orders its terminals longest first (`**` before `*`), as an alternation needs.
OPERATOR = "|".join(
    p for n, p in TERMINALS if n not in _NOT_OPERATORS and not n.startswith("__IGNORE")
)
PUNCTUATION = "|".join(p for n, p in TERMINALS if n in _PUNCTUATION)
# After an op or function name: not a name being bound (`input images: ...`, `images = ...`).
NOT_BOUND = r"(?!\s*(?::|=(?!=)))"


class DlLexer(RegexLexer):
    """Pygments lexer for ``.dl`` network specs."""

    name = "dl"
    aliases = ["dl"]
    filenames = ["*.dl"]
    mimetypes = ["text/x-dl"]

    tokens = {
        "root": [
            (r"[ \t\f\r\n]+", Whitespace),
            (COMMENT, Comment.Single),
            (STRING, String),
            (
                rf"\b({'|'.join(DEFINERS)})(\s+)({IDENTIFIER})",
                bygroups(Keyword, Whitespace, Name.Class),
            ),
            (rf"\b(fn)(\s+)({IDENTIFIER})", bygroups(Keyword, Whitespace, Name.Function)),
            (words(CONSTANTS, prefix=r"\b", suffix=r"\b"), Keyword.Constant),
            (words(KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword),
            (words(DTYPES, prefix=r"\b", suffix=r"\b"), Keyword.Type),
            (words(OPS, prefix=r"\b", suffix=r"\b" + NOT_BOUND), Name.Builtin),
            (words(FUNCTIONS, prefix=r"\b", suffix=r"\b" + NOT_BOUND), Name.Function),
            (IDENTIFIER, Name),
            (FLOAT, Number.Float),
            (INT, Number.Integer),
            (OPERATOR, Operator),
            (PUNCTUATION, Punctuation),
        ]
    }


# ---- coloured error messages ----
STYLES: dict[_TokenType, str] = {
    Comment: "dim",
    String: "green",
    Number: "cyan",
    Keyword.Constant: "cyan",
    Keyword.Type: "cyan",
    Keyword: "bold magenta",
    Name.Builtin: "blue",
    Name.Function: "blue",
    Name.Class: "bold yellow",
    Error: "red",
}
_LEXER = DlLexer()
_GUTTER = re.compile(r"(\s*\d+ \| )(.*)")  # `   12 | source text`
_CARET = re.compile(r"(\s*\| )(\s*\^~*)")
_HEADER = re.compile(r"(.*?:\d+:\d+: )?(error|warning)(: .*)")


def _style(token: _TokenType) -> str:
    while token not in STYLES and token.parent is not None:
        token = token.parent
    return STYLES.get(token, "")


def highlight_line(text: str) -> Text:
    """One line (or more) of ``.dl`` source as a ``rich.text.Text`` coloured by ``DlLexer``."""
    out = Text()
    for _, token, value in _LEXER.get_tokens_unprocessed(text):
        out.append(value, _style(token))
    return out


def highlight_error(message: str) -> Text:
    """A formatted ``DlcError`` (``file:line:col: error: ...``, the source line, the caret)
    with its source lines highlighted and its severity and caret in colour."""
    out = Text()
    for i, line in enumerate(message.split("\n")):
        if i:
            out.append("\n")
        if m := _GUTTER.fullmatch(line):
            out.append(m[1], "dim")
            out.append_text(highlight_line(m[2]))
        elif m := _CARET.fullmatch(line):
            out.append(m[1], "dim")
            out.append(m[2], "bold red")
        elif m := _HEADER.fullmatch(line):
            out.append(m[1] or "", "bold")
            out.append(m[2], "bold red" if m[2] == "error" else "bold magenta")
            out.append(m[3], "bold")
        else:
            out.append(line)
    return out


def print_error(message: str, file: TextIO | None = None) -> None:
    """``print(message, file=file)`` (stderr by default), in colour where ``file`` is a
    terminal that supports it (``rich`` decides: ``NO_COLOR``, ``FORCE_COLOR``, ``TERM``)."""
    file = sys.stderr if file is None else file
    console = Console(file=file, highlight=False, soft_wrap=True, emoji=False, markup=False)
    if console.color_system is None:
        print(message, file=file)
    else:
        console.print(highlight_error(message))

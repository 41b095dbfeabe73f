"""A small LALR(1) lexer and parse loop over the tables that Lark generates for the
grammar (``dl_tables.py``, see ``gen_tables.py``).

It accepts exactly what Lark's LALR parser with the basic lexer accepts, and hands each
rule the children Lark's tree builder would (``keep_all_tokens``, ``_rule`` inlined,
``?rule`` with one child replaced by it), but loads in a millisecond, needs no Lark, and
does less per token. On any error it raises ``Reject``: the caller re-parses with Lark
itself, whose errors (and parser states) the syntax-error messages are built from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from . import dl_tables as T


class Reject(Exception):
    """The text is not in the language (Lark tells why)."""


# The deepest parse stack accepted. The parse loop itself is iterative, but elaboration
# recurses about as deep as this stack, and Python's recursion limit is 1,000 frames; the
# specs in specs/ reach 40.
MAX_DEPTH = 200


class TooDeep(Exception):
    """The program nests deeper than ``MAX_DEPTH``; ``token`` is where it went too deep."""

    def __init__(self, token: Tok):
        super().__init__(token)
        self.token = token


class Tok:
    """A token: its terminal type, text and 1-based start and end (exclusive) position."""

    __slots__ = ("type", "value", "line", "column", "end_line", "end_column")

    def __init__(self, type: str, value: str, line: int, col: int, end_line: int, end_col: int):
        self.type = type
        self.value = value
        self.line = line
        self.column = col
        self.end_line = end_line
        self.end_column = end_col

    def __repr__(self) -> str:
        return f"Tok({self.type}, {self.value!r}, {self.line}:{self.column})"


def token_re(terminals: list[tuple[str, str]]) -> str:
    """One alternation of the terminals, in order, each a group named by its type."""
    return "|".join(f"(?P<{name}>{regexp})" for name, regexp in terminals)


_TOKEN = re.compile(token_re(T.TERMINALS))
_IGNORE = frozenset(T.IGNORE)
_MULTILINE = frozenset(T.MULTILINE)


def tokenize(text: str) -> Iterator[Tok]:
    """Lark's basic lexer: the first alternative that matches at each position (keywords
    retyped from NAME), ignored tokens dropped, lines counted."""
    match, keywords = _TOKEN.match, T.KEYWORDS
    pos, end, line, line_start = 0, len(text), 1, 0
    while pos < end:
        m = match(text, pos)
        if m is None:
            raise Reject
        kind, value = m.lastgroup, m.group()
        column = pos - line_start + 1
        start_line = line
        pos = m.end()
        if kind in _MULTILINE and "\n" in value:
            line += value.count("\n")
            line_start = pos - len(value) + value.rindex("\n") + 1
        if kind in _IGNORE:
            continue
        if kind == "NAME":
            kind = keywords.get(value, kind)
        yield Tok(kind, value, start_line, column, line, pos - line_start + 1)


def _reducer(size: int, inline: tuple, single: bool, method: Callable | None) -> Callable:
    """What a reduction makes of its ``size`` children: inlined ``_rule`` children spliced
    in, then one child passed up (``?rule``), the rule's method, or (for a ``_rule``) the
    list itself, to be spliced into its parent."""
    if not inline and not single and method is not None:
        return method  # the common case: the method takes the children as they are

    def reduce(children: list) -> Any:
        if inline:
            flat: list | None = None
            for i, child in enumerate(children):
                if i not in inline:
                    child = [child]
                if flat is None:
                    flat = child  # reused, not copied: left-recursive lists stay linear
                else:
                    flat += child
            children = flat if flat is not None else []
        if single and len(children) == 1:
            return children[0]
        return method(children) if method is not None else children

    return reduce


class Parser:
    """The parse loop for one start symbol, calling ``builder``'s rule methods."""

    def __init__(self, start: str, builder: object):
        self.start_state, self.end_state = T.STARTS[start]
        # A rule is (origin, size, reduce), or (origin, None, None) for a unit rule whose
        # only child is passed up unchanged: then the loop only moves to the goto state.
        self.rules = [
            (origin, 1, None)
            if size == 1 and single and not inline
            else (origin, size, _reducer(size, inline, single, getattr(builder, m) if m else None))
            for origin, size, inline, single, m in T.RULES
        ]
        # (state below, state, token type) -> the state after the unit reductions that the
        # token triggers there (see ``_units``): learnt from the tables as parses meet them.
        self.unit_chains: dict[tuple[int, int, str], int] = {}

    def parse(self, tokens: Iterator[Tok]) -> Any:
        """Run the LALR automaton; ``Reject`` if the tokens are not a sentence, ``TooDeep``
        if they nest too deeply."""
        table, rules, end_state = T.STATES, self.rules, self.end_state
        chains = self.unit_chains
        states, values = [self.start_state], []
        end = Tok("$END", "", 0, 0, 0, 0)
        for tok in chain(tokens, (end,)):
            kind = tok.type
            while True:
                act = table[states[-1]].get(kind)
                if act is None:
                    raise Reject
                if act >= 0:  # shift
                    if len(states) >= MAX_DEPTH:
                        raise TooDeep(tok)
                    states.append(act)
                    values.append(tok)
                    break
                origin, size, reduce = rules[~act]
                if reduce is None:  # unit rules: the value stays, the state moves
                    top = chains.get((states[-2], states[-1], kind))
                    states[-1] = self._units(states[-2], states[-1], kind) if top is None else top
                else:
                    if size:
                        children = values[-size:]
                        del states[-size:]
                        del values[-size:]
                    else:
                        children = []
                    values.append(reduce(children))
                    states.append(table[states[-1]][origin])
                if tok is end and states[-1] == end_state:
                    return values[-1]
        raise Reject  # not reached: $END either completes the parse or is rejected

    def _units(self, below: int, top: int, kind: str) -> int:
        """Where the chain of unit reductions (``?expr: or_expr`` and the like: most of an
        expression's reductions) that ``kind`` triggers on ``top`` ends. Each pops one state
        and goes to ``below``'s goto, so the chain depends on these three alone; it stops
        where $END completes the parse, as the loop would."""
        table, rules = T.STATES, self.rules
        state = top
        while True:
            act = table[state].get(kind)
            if act is None or act >= 0 or rules[~act][2] is not None:
                break
            state = table[below][rules[~act][0]]
            if kind == "$END" and state == self.end_state:
                break
        self.unit_chains[below, top, kind] = state
        return state

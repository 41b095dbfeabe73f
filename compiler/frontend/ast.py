"""The syntax tree of a .dl file: small frozen dataclasses, each with its source span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Span

# ---- expressions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    span: Span
    value: Any  # int, float, bool or str


@dataclass(frozen=True, slots=True)
class Name:
    span: Span
    id: str


@dataclass(frozen=True, slots=True)
class InputRef:
    """The keyword ``input``: the block's (or network's first) input value."""

    span: Span


@dataclass(frozen=True, slots=True)
class TupleExpr:
    span: Span
    items: tuple


@dataclass(frozen=True, slots=True)
class ListExpr:
    span: Span
    items: tuple


@dataclass(frozen=True, slots=True)
class BinOp:
    span: Span
    op: str  # + - * / // % ** and or
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Unary:
    span: Span
    op: str  # - not
    operand: Any


@dataclass(frozen=True, slots=True)
class Compare:
    span: Span
    ops: tuple  # chained, as in Python: a < b <= c
    operands: tuple


@dataclass(frozen=True, slots=True)
class IfExp:
    span: Span
    then: Any
    cond: Any
    orelse: Any


@dataclass(frozen=True, slots=True)
class Kwarg:
    span: Span
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class Call:
    span: Span
    func: Any
    args: tuple
    kwargs: tuple  # of Kwarg


@dataclass(frozen=True, slots=True)
class Index:
    span: Span
    value: Any
    index: Any


@dataclass(frozen=True, slots=True)
class Attr:
    span: Span
    value: Any
    name: str


@dataclass(frozen=True, slots=True)
class Pipe:
    """``a | f | g``: the first stage is a value, each later stage a call applied to it."""

    span: Span
    stages: tuple


# ---- statements ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputDecl:
    span: Span
    name: str
    dtype: str
    dtype_span: Span
    dims: tuple


@dataclass(frozen=True, slots=True)
class Output:
    span: Span
    values: tuple


@dataclass(frozen=True, slots=True)
class Let:
    span: Span
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class Assign:
    span: Span
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class Init:
    span: Span
    items: tuple  # of Kwarg: role = initialiser


@dataclass(frozen=True, slots=True)
class Residual:
    span: Span
    body: tuple
    shortcut: tuple | None
    cond: Any  # None: unconditional shortcut


@dataclass(frozen=True, slots=True)
class If:
    span: Span
    cond: Any
    then: tuple
    orelse: tuple


@dataclass(frozen=True, slots=True)
class Repeat:
    span: Span
    count: Any
    body: tuple


@dataclass(frozen=True, slots=True)
class For:
    span: Span
    targets: tuple
    iter: Any
    body: tuple


@dataclass(frozen=True, slots=True)
class ExprStmt:
    span: Span
    expr: Any


# ---- top level -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    span: Span
    name: str
    default: Any  # None: required


@dataclass(frozen=True, slots=True)
class Import:
    span: Span
    path: str


@dataclass(frozen=True, slots=True)
class BlockDef:
    span: Span
    name: str
    params: tuple
    body: tuple


@dataclass(frozen=True, slots=True)
class NetworkDef:
    span: Span
    name: str
    params: tuple
    body: tuple


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    imports: tuple
    blocks: tuple
    networks: tuple

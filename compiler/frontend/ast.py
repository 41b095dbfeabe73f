"""The syntax tree of a .dl file: small immutable dataclasses, each with its source span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Span

# Immutable by convention, not ``frozen``: a frozen dataclass sets each field through
# ``object.__setattr__`` (four times slower to build, and a parse builds hundreds of nodes;
# slower to define too, at import). Equality and hashing stay by value.
_node = dataclass(slots=True, unsafe_hash=True)

# ---- expressions ---------------------------------------------------------------------


@_node
class Lit:
    span: Span
    value: Any  # int, float, bool or str


@_node
class Name:
    span: Span
    id: str


@_node
class InputRef:
    """The keyword ``input``: the block's (or network's first) input value."""

    span: Span


@_node
class TupleExpr:
    span: Span
    items: tuple


@_node
class ListExpr:
    span: Span
    items: tuple


@_node
class BinOp:
    span: Span
    op: str  # + - * / // % ** and or
    left: Any
    right: Any


@_node
class Unary:
    span: Span
    op: str  # - not
    operand: Any


@_node
class Compare:
    span: Span
    ops: tuple  # chained, as in Python: a < b <= c
    operands: tuple


@_node
class IfExp:
    span: Span
    then: Any
    cond: Any
    orelse: Any


@_node
class Kwarg:
    span: Span
    name: str
    value: Any


@_node
class Call:
    span: Span
    func: Any
    args: tuple
    kwargs: tuple  # of Kwarg


@_node
class Index:
    """``value[items]``: each item an expression, a ``Slice`` or an ``EllipsisLit``."""

    span: Span
    value: Any
    items: tuple


@_node
class Slice:
    """``start:stop:step`` in an index; a part left out is None."""

    span: Span
    start: Any
    stop: Any
    step: Any


@_node
class EllipsisLit:
    """``...`` in an index: every axis not named."""

    span: Span


@_node
class Attr:
    span: Span
    value: Any
    name: str


@_node
class Pipe:
    """``a | f | g``: the first stage is a value, each later stage a call applied to it."""

    span: Span
    stages: tuple


# ---- statements ----------------------------------------------------------------------


@_node
class InputDecl:
    span: Span
    name: str
    dtype: str
    dtype_span: Span
    dims: tuple


@_node
class Output:
    span: Span
    values: tuple


@_node
class Let:
    span: Span
    name: str
    value: Any


@_node
class Assign:
    span: Span
    name: str
    value: Any


@_node
class Destructure:
    """``a, b = ...``: binds the results of a call that gives several, in order."""

    span: Span
    names: tuple
    value: Any


@_node
class Init:
    span: Span
    items: tuple  # of Kwarg: role = initialiser


@_node
class Residual:
    span: Span
    body: tuple
    shortcut: tuple | None
    cond: Any  # None: unconditional shortcut


@_node
class If:
    span: Span
    cond: Any
    then: tuple
    orelse: tuple


@_node
class Repeat:
    span: Span
    count: Any
    body: tuple


@_node
class For:
    span: Span
    targets: tuple
    iter: Any
    body: tuple


@_node
class ExprStmt:
    span: Span
    expr: Any


# ---- top level -----------------------------------------------------------------------


@_node
class Param:
    span: Span
    name: str
    default: Any  # None: required


@_node
class Import:
    span: Span
    path: str


@_node
class BlockDef:
    span: Span
    name: str
    params: tuple
    body: tuple


@_node
class NetworkDef:
    span: Span
    name: str
    params: tuple
    body: tuple


@_node
class TrainDef:
    """``train Name(params) { key = value ... }``: a training recipe (LANGUAGE §11)."""

    span: Span
    name: str
    params: tuple
    body: tuple


@_node
class SearchDef:
    """``search Name { recipe = R; lr = loguniform(...) ... }`` (LANGUAGE §12)."""

    span: Span
    name: str
    body: tuple


@_node
class FnDef:
    """``fn name(params) = expr``: a pure function of compile-time values."""

    span: Span
    name: str
    params: tuple
    body: Any


@_node
class Module:
    path: str
    imports: tuple
    blocks: tuple
    networks: tuple
    functions: tuple
    trains: tuple
    searches: tuple

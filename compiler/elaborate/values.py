"""Compile-time values of the elaborator: tensors, the poison of failed statements,
callable names, builtins, and how messages show values."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from ..ir.graph import Node, TensorType
from .frame import MAX_UNROLL


class Tensor:
    """A tensor value during elaboration: the IR value it names and its type."""

    __slots__ = ("name", "type", "node")

    def __init__(self, name: str, type: TensorType, node: Node):
        self.name, self.type, self.node = name, type, node

    def __repr__(self) -> str:
        return f"tensor {self.type}"


class Poison:
    """The value of anything that depends on an error already reported."""

    def __repr__(self) -> str:
        return "<error>"


POISON = Poison()


@dataclass(frozen=True)
class Callee:
    """A name that can be called: an op, a block, a builtin function or an initialiser."""

    kind: str  # op | block | builtin | init
    name: str
    target: Any = None


def _range(*args):
    return range(*args)


def _walk(f):
    """A function that walks a sequence item by item (sum, min, max): refused for a range
    too long to unroll, which would take forever."""

    def call(*args):
        if len(args) == 1 and isinstance(args[0], range) and len(args[0]) > MAX_UNROLL:
            raise ValueError(f"a range of more than {MAX_UNROLL:,} items (the unrolling limit)")
        return f(*args)

    return call


def _number(f):
    """A math function of one number (a bool or a string is not one)."""

    def call(x):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"expected a number, got {describe(x)}")
        return f(x)

    return call


# The built-in functions of compile-time values (LANGUAGE §10), with Python's semantics:
# round() rounds halves to even; int() truncates toward zero.
BUILTINS = {
    "range": _range,
    "len": len,
    "min": _walk(min),
    "max": _walk(max),
    "abs": abs,
    "sum": _walk(sum),
    "round": _number(round),
    "floor": _number(math.floor),
    "ceil": _number(math.ceil),
    "sqrt": _number(math.sqrt),
    "log": _number(math.log),
    "exp": _number(math.exp),
    "int": _number(int),
    "float": _number(float),
}


def describe(v: Any) -> str:
    """A value as a message shows it."""
    if isinstance(v, Tensor):
        return f"a tensor {v.type}"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Callee):
        return f"the {v.kind} '{v.name}'" if v.kind != "builtin" else f"the function '{v.name}'"
    if isinstance(v, (tuple, list)):
        inner = ", ".join(describe(x) for x in v)
        return f"({inner})" if isinstance(v, tuple) else f"[{inner}]"
    return str(v)


def suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""

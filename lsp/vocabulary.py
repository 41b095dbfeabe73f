"""The words of the language and what to say about each: ops (from the registry, rendered as
``dlc ops`` renders them), builtins, keywords, dtypes, initialisers, recipe keys and
functions, search settings, and the program's own blocks, networks, fns and recipes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ..compiler.elaborate.values import BUILTINS
from ..compiler.errors import Span
from ..compiler.frontend import ast
from ..compiler.frontend.program import Program
from ..compiler.ir.graph import DTYPES
from ..compiler.ir.initializers import INITIALIZERS
from ..compiler.ops import OPS
from ..compiler.ops.base import Op
from ..compiler.ops.catalog import description, signature
from ..compiler.recipe import schema
from ..compiler.recipe.search import PRUNERS, SAMPLERS, SETTINGS, SPACES
from .tokens import KEYWORDS, Section

# The compiler's tables gathered here, so that the feature modules read every word of the
# language from one place (``V.OPS``, ``V.DTYPES``, ...).
__all__ = [
    "BUILTIN_DOCS",
    "BUILTINS",
    "DTYPES",
    "INITIALIZERS",
    "KEYWORDS",
    "OPS",
    "PRUNERS",
    "SAMPLERS",
    "SETTINGS",
    "SPACES",
]

BUILTIN_DOCS = {
    "range": "range(n), range(a, b), range(a, b, step): the integers, as Python's",
    "len": "len(x): the length of a tuple, list, range or string",
    "min": "min(a, b, ...) or min(seq): the smallest",
    "max": "max(a, b, ...) or max(seq): the largest",
    "abs": "abs(x): the absolute value",
    "sum": "sum(seq): the sum",
    "round": "round(x): to the nearest integer, halves to even",
    "floor": "floor(x): the largest integer ≤ x",
    "ceil": "ceil(x): the smallest integer ≥ x",
    "sqrt": "sqrt(x): the square root",
    "log": "log(x): the natural logarithm",
    "exp": "exp(x): e to the x",
    "int": "int(x): truncated to an integer",
    "float": "float(x): as a float",
}

# Keywords offered inside a network or block body, and at the top level of a file.
BODY_KEYWORDS = (
    "input output let init residual shortcut if else repeat for in true false none and or not"
).split()
VALUE_KEYWORDS = ("true", "false", "none", "and", "or", "not", "if", "else")
TENSOR_ATTRS = {
    "shape": "the tensor's dims, a tuple",
    "rank": "the number of dims",
    "dtype": 'the element type, a string such as "float32"',
}

# A recipe key's kind of value -> the FUNCTIONS table its values come from.
KEY_FUNCTIONS = {
    "source": "source",
    "split": "source",
    "losses": "loss",
    "metrics": "metric",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "augments": "augment",
}
SEARCH_FUNCTIONS = {
    **{s: "a search space" for s in SPACES},
    "maximize": 'the objective: maximize("metric")',
    "minimize": 'the objective: minimize("metric")',
}


def op_signature(op: Op) -> str:
    return signature(op)


def op_markdown(op: Op) -> str:
    """An op's signature (as ``dlc ops`` prints it), description and arguments."""
    lines = [f"```dl\n{signature(op)}\n```", description(op)]
    args = [f"- `{a.name}`: {a.doc}" for a in op.signature if a.doc]
    if args:
        lines.append("\n".join(args))
    return "\n\n".join(lines)


def arg_doc(op: Op, name: str) -> str | None:
    """What an op's argument accepts and means."""
    for a in op.signature:
        if a.name == name:
            accepts = a.kind.describe if a.kind is not None else ""
            return f"`{op.name}({a.name}=…)`: " + "; ".join(x for x in (a.doc, accepts) if x)
    return None


def initializer_signature(name: str) -> str:
    """``kaiming_normal(a=0.0, mode="fan_in", ...)``, rendered as op signatures are."""
    return signature(SimpleNamespace(name=name, signature=INITIALIZERS[name]))


def value_text(v: Any) -> str:
    """A default as .dl source writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(map(value_text, v)) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def recipe_function(name: str, kinds: tuple[str, ...] | None = None) -> schema.Fn | None:
    """The recipe function ``name`` (of one of ``kinds``, if given)."""
    for kind, table in schema.FUNCTIONS.items():
        if (kinds is None or kind in kinds) and name in table:
            return table[name]
    return None


def recipe_signature(fn: schema.Fn) -> str:
    params = [
        p.name if p.default is schema.REQUIRED else f"{p.name}={value_text(p.default)}"
        for p in fn.params
    ]
    if fn.extra:
        params.append("NAME=...")
    return f"{fn.name}({', '.join(params)})"


def recipe_key_doc(key: str) -> str:
    kind, default = schema.KEYS[key]
    what = kind if isinstance(kind, str) else getattr(kind, "__name__", "a value")
    shown = "required" if default is schema.REQUIRED else f"default {value_text(default)}"
    return f"recipe key `{key}`: {what} ({shown})"


# ---- the program's own definitions ---------------------------------------------------

Def = ast.BlockDef | ast.NetworkDef | ast.FnDef | ast.TrainDef | ast.SearchDef
KIND_OF = {
    ast.BlockDef: "block",
    ast.NetworkDef: "network",
    ast.FnDef: "fn",
    ast.TrainDef: "train",
    ast.SearchDef: "search",
}


def source_text(where: Span | Any) -> str:
    """The source text a span (or a syntax node's span) covers."""
    span = where if isinstance(where, Span) else where.span
    lines = span.source.text.split("\n")
    if span.line == span.end_line:
        return lines[span.line - 1][span.col - 1 : span.end_col - 1] if lines else ""
    part = [lines[span.line - 1][span.col - 1 :]]
    part += lines[span.line : span.end_line - 1]
    part.append(lines[span.end_line - 1][: span.end_col - 1])
    return "\n".join(part)


def param_text(p: ast.Param) -> str:
    return p.name if p.default is None else f"{p.name}={' '.join(source_text(p.default).split())}"


def def_signature(d: Def) -> str:
    """``block basic(c, stride=1)`` from the definition's source."""
    kind = KIND_OF.get(type(d), "")
    params = getattr(d, "params", None)
    if params is None:
        return f"{kind} {d.name}"
    return f"{kind} {d.name}({', '.join(param_text(p) for p in params)})"


def def_markdown(d: Def) -> str:
    where = f"{d.span.source.path.rsplit('/', 1)[-1]}:{d.span.line}"
    text = f"```dl\n{def_signature(d)}\n```\n\ndefined at {where}"
    if isinstance(d, ast.FnDef):
        text += f"\n\n`= {' '.join(source_text(d.body).split())}`"
    return text


def program_definitions(program: Program | None, secs: list[Section]) -> dict[str, str]:
    """Every block, network, fn, recipe and search name the program and the text define."""
    out: dict[str, str] = {}
    if program is not None:
        for kind, table in (
            ("block", program.blocks),
            ("network", program.networks),
            ("fn", program.functions),
            ("train", program.recipes),
            ("search", program.searches),
        ):
            out.update(dict.fromkeys(table, kind))
    for sec in secs:
        if sec.name is not None and sec.kind != "import":
            out.setdefault(sec.name.value, sec.kind)
    return out

"""The intermediate representation: a flat, ordered list of small immutable nodes.

Blocks, loops, conditionals and ``residual`` are gone by the time a graph exists: every
node is a primitive op of the registry (or an ``input``). A node names its op, its input
values (by the names of the nodes that produced them), its normalised attributes, its
output type and its parameters as named shapes, plus the source span and block call chain
it came from. ``Graph.format()`` is the text that ``dlc ir`` prints and golden tests read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import Chain, Span
from .symbolic import Dim, fmt_shape

DTYPES = ("float32", "float16", "bfloat16", "int64", "int32", "bool")
FLOAT_DTYPES = ("float32", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1}

EMPTY: Mapping[str, Any] = MappingProxyType({})


# Value types are immutable by convention, not ``frozen``: a frozen dataclass sets each
# field through ``object.__setattr__``, several times slower, and every layer makes a type
# and its parameters. Equality and hashing stay by value.
@dataclass(slots=True, unsafe_hash=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}{fmt_shape(self.shape)}"


@dataclass(frozen=True, slots=True)
class Init:
    """An initialiser named in the spec: ``kaiming_normal(mode="fan_out")``."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args)
        return f"{self.name}({inner})" if self.args else self.name


@dataclass(slots=True, unsafe_hash=True)
class Param:
    """A parameter or buffer of a node, as a named shape.

    ``role`` says what the tensor is for, which decides its default initialisation and
    which ``init`` rules reach it: ``weight`` and ``bias`` for layers with a weight
    matrix or kernel, ``scale`` and ``shift`` for normalisation layers, ``table`` for an
    embedding, ``stat`` for a buffer of running statistics.
    """

    shape: tuple[int, ...]
    role: str
    buffer: bool = False
    dtype: str = "float32"
    init: Init | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(slots=True)  # not frozen either (see TensorType); nothing writes to a node
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    type: TensorType
    params: Mapping[str, Param] = field(default_factory=lambda: EMPTY)
    span: Span | None = None
    chain: Chain = ()

    def param_name(self, local: str) -> str:
        """The IR name of a parameter: ``layer.weight``; a ``param`` is the node itself."""
        return f"{self.name}.{local}" if local else self.name

    def param_items(self):
        """(full name, Param) for each parameter and buffer: ``layer.weight``."""
        return ((self.param_name(k), p) for k, p in self.params.items())

    def format(self) -> str:
        attrs = ", ".join(f"{k}={_fmt_attr(v)}" for k, v in self.attrs.items() if v is not None)
        args = ", ".join(f"%{i}" for i in self.inputs)
        if attrs:
            args = f"{args}; {attrs}" if args else attrs
        text = f"%{self.name} = {self.op}({args}) : {self.type}"
        if self.params:
            text += (
                "  {"
                + ", ".join(
                    f"{k or 'param'}{'*' if p.buffer else ''}: {fmt_shape(p.shape)}"
                    for k, p in self.params.items()
                )
                + "}"
            )
        if self.span is not None:
            text += f"  # {self.span.source.path.rsplit('/', 1)[-1]}:{self.span.line}"
        return text


def _fmt_attr(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True, slots=True)
class Constraint:
    """``a == b`` for every input: undecidable at compile time, checked when inputs arrive."""

    a: Dim
    b: Dim
    what: str
    span: Span | None = None

    def __str__(self) -> str:
        return f"{self.a} == {self.b}  ({self.what})"


@dataclass(slots=True, unsafe_hash=True)  # not frozen (see TensorType): one per block call
class Scope:
    """One block call: the prefix its layers share, the block's name, its call site, and
    the values it was given: ``("input", value)`` and ``(parameter, value)`` for tensors."""

    prefix: str
    block: str
    args: str
    span: Span | None
    inputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Graph:
    name: str
    args: Mapping[str, Any]
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constraints: tuple[Constraint, ...] = ()
    scopes: tuple[Scope, ...] = ()
    # The symbolic dims the input declarations name (N, T), those bound by --dim included.
    symbols: frozenset[str] = frozenset()
    _by_name: dict = field(default_factory=dict, repr=False, compare=False)

    def node(self, name: str) -> Node:
        if not self._by_name:
            self._by_name.update((n.name, n) for n in self.nodes)
        return self._by_name[name]

    def params(self, buffers: bool = True):
        """(full name, Param) over the graph in declaration order."""
        for n in self.nodes:
            for name, p in n.param_items():
                if buffers or not p.buffer:
                    yield name, p

    def format(self) -> str:
        args = ", ".join(f"{k}={_fmt_attr(v)}" for k, v in self.args.items())
        lines = [f"network {self.name}({args})"]
        for n in self.nodes:
            if n.op == "input":
                lines.append(f"  input %{n.name} : {n.type}")
            else:
                lines.append(f"  {n.format()}")
        lines.append("  output " + ", ".join(f"%{o}" for o in self.outputs))
        for c in self.constraints:
            lines.append(f"  constraint {c}")
        return "\n".join(lines)

"""Elaboration: syntax tree -> flat IR graph.

``Elaborator`` is composed of one mixin per job: ``Expressions`` (the compile-time
interpreter), ``Statements`` (unrolling), ``Calls`` (ops and blocks), ``Binding``
(arguments) and ``Memo`` (replaying repeated block calls). Each op's shape rule runs as its
node is created. An error in one statement is recorded and its result "poisoned", so that
the statements after it are still checked and independent errors are reported together.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..errors import DlcError
from ..frontend import ast
from ..frontend.program import Program
from ..ir.graph import Constraint, Graph, Node, Scope
from ..ops.base import Signature
from . import memo
from .binding import Binding
from .calls import Calls
from .expressions import Expressions
from .frame import Frame, Overrun
from .memo import Memo, Template
from .statements import Statements
from .values import POISON, Callee, Tensor, describe, suggest


class Elaborator(Statements, Calls, Binding, Memo, Expressions):
    """Elaborates one network of a program into a ``Graph``."""

    def __init__(self, program: Program, dims: Mapping[str, int] | None = None):
        self.program = program
        self.dims = dict(dims or {})
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.errors: list[DlcError] = []
        self.constraints: list[Constraint] = []
        self.scopes: list[Scope] = []
        self.inputs: list[str] = []
        self.symbols: set[str] = set()  # named in input shapes (Graph.symbols)
        self.memo: dict[tuple, Template] | None = {} if memo.MEMOIZE_BLOCKS else None
        self.block_sigs: dict[str, Signature] = {}  # see Calls.block_signature
        self.callees: dict[str, Callee] = {}  # see Expressions.lookup
        self.fn_stack: list[str] = []  # the fns being evaluated, to refuse recursion
        self.conversions: dict[tuple, Any] = {}  # see Binding._convert
        self.unroll = 1  # iterations of the loops being run, enclosing ones multiplied
        self.work = 0  # statements and calls counted against MAX_UNROLL (Statements.spend)

    def network(self, net: ast.NetworkDef, overrides: Mapping[str, Any]) -> Graph:
        env = self.bind_params(net, overrides)
        args = MappingProxyType({k: env[k] for k in (p.name for p in net.params) if k in env})
        frame = Frame("", env, None, (), MappingProxyType({}), (), True)
        try:
            self.exec_body(net.body, frame)
        except Overrun as err:  # reported with the errors before it
            self.error(err)
        if not self.inputs and not self.errors:
            self.error(
                DlcError(
                    f"network {net.name} declares no input (add `input x: float32[N, ...]`)",
                    net.span,
                )
            )
        outputs = frame.outputs or (
            [(frame.current, net.span)] if frame.current is not None else []
        )
        names = []
        for value, span in outputs:
            if isinstance(value, Tensor):
                names.append(value.name)
            elif value is not POISON:
                self.error(DlcError(f"output must be a tensor, got {describe(value)}", span))
        if self.errors:
            raise DlcError.group(self.errors)
        return Graph(
            net.name,
            args,
            tuple(self.nodes),
            tuple(self.inputs),
            tuple(names),
            tuple(self.constraints),
            tuple(self.scopes),
            frozenset(self.symbols),
        )

    def bind_params(
        self, net: ast.NetworkDef | ast.TrainDef, overrides: Mapping[str, Any], what="network"
    ) -> dict:
        """The parameters of a network (or a recipe): ``overrides``, else the defaults."""
        known = {p.name for p in net.params}
        for name in overrides:
            if name not in known:
                raise DlcError(
                    f"{what} {net.name} has no parameter '{name}'"
                    + suggest(name, known)
                    + (f" (parameters: {', '.join(sorted(known))})" if known else ""),
                )  # no span: the mistake is in the caller's overrides, not in the spec
        env: dict[str, Any] = {}
        frame = Frame("", env, None, (), {}, (), True)
        for p in net.params:
            if p.name in overrides:
                env[p.name] = overrides[p.name]
            elif p.default is not None:
                env[p.name] = self.eval(p.default, frame)
            else:
                raise DlcError(
                    f"{what} parameter '{p.name}' has no default; set it "
                    f"(dlc ... --set {p.name}=VALUE)",
                    p.span,
                )
        return env

    def error(self, err: DlcError, frame: Frame | None = None) -> None:
        """Record ``err`` (and the errors it carries), each once."""
        for e in err.errors:
            e.others = []
            if frame is not None:
                e.with_chain(frame.chain)
            key = (e.message, e.span)
            if all((old.message, old.span) != key for old in self.errors):
                self.errors.append(e)


def elaborate(
    program: Program,
    network: str,
    overrides: Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
) -> Graph:
    """Compile one network of a loaded program to an IR graph (raises DlcError)."""
    return Elaborator(program, dims).network(program.networks[network], overrides or {})


def constant(expr) -> Any:
    """The value of a compile-time expression that names no variables (``--set k=v``)."""
    frame = Frame("", {}, None, (), MappingProxyType({}), (), True)
    return Elaborator(Program("<command line>")).eval(expr, frame)

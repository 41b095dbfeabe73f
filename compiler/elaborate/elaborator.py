"""Elaboration: syntax tree -> flat IR graph.

Evaluates compile-time expressions (a small interpreter over the syntax tree, never a
host ``eval``), binds block parameters, unrolls ``repeat``/``for``/``if``, expands
``residual`` and block calls into primitive ops, and runs each op's shape rule as its node
is created. An error in one statement is recorded and its result "poisoned", so that the
statements after it are still checked and independent errors are reported together.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..errors import Chain, DlcError, ShapeError, Span
from ..frontend import ast
from ..frontend.program import Program
from ..ir.graph import DTYPES, Constraint, Graph, Init, Node, Scope, TensorType
from ..ir.initializers import INIT_ROLES, INITIALIZERS
from ..ir.symbolic import Dim, Sym, equal, fmt_shape
from ..ops import OPS
from ..ops.base import REQUIRED, Arg, ArgError, InferCtx, Op, Signature
from .values import BUILTINS, POISON, Callee, Poison, Tensor, describe, suggest

# ---- evaluation ------------------------------------------------------------------------

_INIT_SIGNATURES = {name: Signature(args) for name, args in INITIALIZERS.items()}

# Unrolling is eager, so runaway loops must stop with an error rather than exhaust memory.
MAX_UNROLL = 1_000_000
MAX_NODES = 2_000_000


def _too_long(a: Any, b: Any) -> bool:
    """Would ``a * b`` build a sequence longer than the unrolling limit?"""
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (tuple, list, str)) and isinstance(n, int):
            return len(seq) * n > MAX_UNROLL
    return False


_BINOPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_CMPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# ---- frames ----------------------------------------------------------------------------


class Frame:
    """One network or block invocation: its names, current value and naming scope."""

    def __init__(
        self,
        prefix: str,
        env: dict,
        current: Any,
        chain: Chain,
        inits: Mapping,
        stack: tuple[str, ...],
        is_network: bool,
    ):
        self.prefix, self.env, self.current, self.chain = prefix, env, current, chain
        self.input = current
        self.inits = inits
        self.stack = stack
        self.is_network = is_network
        self.counters: dict[str, int] = {}
        self.outputs: list[tuple[Any, Span]] = []


class Elaborator:
    def __init__(self, program: Program, dims: Mapping[str, int] | None = None):
        self.program = program
        self.dims = dict(dims or {})
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.errors: list[DlcError] = []
        self.constraints: list[Constraint] = []
        self.scopes: list[Scope] = []
        self.inputs: list[str] = []
        self.memo: dict[tuple, _Template] | None = {} if MEMOIZE_BLOCKS else None

    # -- entry point -------------------------------------------------------------------
    def network(self, net: ast.NetworkDef, overrides: Mapping[str, Any]) -> Graph:
        env = self._bind_network_params(net, overrides)
        args = MappingProxyType({k: env[k] for k in (p.name for p in net.params) if k in env})
        frame = Frame("", env, None, (), MappingProxyType({}), (), True)
        self.exec_body(net.body, frame)
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
        )

    def _bind_network_params(self, net: ast.NetworkDef, overrides: Mapping[str, Any]) -> dict:
        known = {p.name for p in net.params}
        for name in overrides:
            if name not in known:
                raise DlcError(
                    f"network {net.name} has no parameter '{name}'"
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
                    f"network parameter '{p.name}' has no default; set it "
                    f"(dlc ... --set {p.name}=VALUE)",
                    p.span,
                )
        return env

    def error(self, err: DlcError, frame: Frame | None = None) -> None:
        if frame is not None:
            err.with_chain(frame.chain)
        key = (err.message, err.span)
        if all((e.message, e.span) != key for e in self.errors):
            self.errors.append(err)

    # -- statements --------------------------------------------------------------------
    def exec_body(self, body, frame: Frame) -> None:
        for stmt in body:
            try:
                if frame.outputs and not frame.is_network:
                    raise DlcError("a block's `output` must be its last statement", stmt.span)
                self.exec_stmt(stmt, frame)
            except DlcError as err:
                self.error(err, frame)
                frame.current = POISON
                if isinstance(stmt, (ast.Assign, ast.Let, ast.InputDecl)):
                    frame.env[stmt.name] = POISON

    def exec_stmt(self, s, frame: Frame) -> None:
        _EXEC[type(s)](self, s, frame)

    def exec_expr(self, s: ast.ExprStmt, frame: Frame) -> None:
        self.set_current(self.eval_layer(s.expr, frame), frame, s.span)

    def exec_assign(self, s: ast.Assign, frame: Frame) -> None:
        value = self.eval_layer(s.value, frame, layer_name=s.name)
        frame.env[s.name] = value
        if isinstance(value, (Tensor, Poison)):
            frame.current = value

    def exec_let(self, s: ast.Let, frame: Frame) -> None:
        value = self.eval(s.value, frame)
        if isinstance(value, Tensor):
            raise DlcError(
                f"`let` binds a compile-time constant; for a layer write `{s.name} = ...`", s.span
            )
        frame.env[s.name] = value

    def exec_output(self, s: ast.Output, frame: Frame) -> None:
        frame.outputs.extend((self.eval_layer(e, frame), e.span) for e in s.values)

    def exec_if(self, s: ast.If, frame: Frame) -> None:
        self.exec_body(s.then if self.truth(s.cond, frame) else s.orelse, frame)

    def exec_repeat(self, s: ast.Repeat, frame: Frame) -> None:
        count = self.eval(s.count, frame)
        if isinstance(count, int) and count > MAX_UNROLL:
            raise DlcError(
                f"repeat {count:,} exceeds the unrolling limit of {MAX_UNROLL:,}", s.count.span
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DlcError(
                f"repeat needs a non-negative integer count, got {describe(count)}", s.count.span
            )
        for _ in range(count):
            self.exec_body(s.body, frame)

    def set_current(self, value: Any, frame: Frame, span: Span) -> None:
        if isinstance(value, (Tensor, Poison)):
            frame.current = value
        else:
            raise DlcError(
                f"this statement computes {describe(value)} and does nothing with it "
                "(bind a constant with `let name = ...`)",
                span,
            )

    def declare_input(self, s: ast.InputDecl, frame: Frame) -> None:
        if not frame.is_network:
            raise DlcError(
                "inputs are declared in a network; inside a block, `input` is the "
                "block's input value",
                s.span,
            )
        if s.dtype not in DTYPES:
            raise DlcError(
                f"unknown dtype '{s.dtype}'"
                + suggest(s.dtype, DTYPES)
                + f" (dtypes: {' '.join(DTYPES)})",
                s.dtype_span,
            )
        if s.name in frame.env or s.name in self.names:
            raise DlcError(f"'{s.name}' is already defined", s.span)
        dims = []
        for d in s.dims:
            if isinstance(d, ast.Name) and d.id not in frame.env:
                if not d.id[:1].isupper():
                    raise DlcError(
                        f"unknown name '{d.id}' in a shape: a symbolic dim is a "
                        "capitalised name such as N or T",
                        d.span,
                    )
                dims.append(self.dims.get(d.id, Sym.var(d.id)))
                continue
            v = self.eval(d, frame)
            if not (
                isinstance(v, Sym) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            ):
                raise DlcError(
                    f"a dimension must be a non-negative integer or a capitalised "
                    f"symbolic name such as N, got {describe(v)}",
                    d.span,
                )
            dims.append(v)
        node = Node(
            s.name, "input", (), MappingProxyType({}), TensorType(s.dtype, tuple(dims)), span=s.span
        )
        self.nodes.append(node)
        self.names.add(s.name)
        self.inputs.append(s.name)
        tensor = Tensor(s.name, node.type, node)
        frame.env[s.name] = tensor
        if frame.input is None:
            frame.input = tensor
        if frame.current is None:
            frame.current = tensor

    def exec_init(self, s: ast.Init, frame: Frame) -> None:
        rules = dict(frame.inits)
        for item in s.items:
            if item.name not in INIT_ROLES:
                raise DlcError(
                    f"unknown init target '{item.name}'"
                    + suggest(item.name, INIT_ROLES)
                    + f" (targets: {', '.join(INIT_ROLES)})",
                    item.span,
                )
            value = self.eval_init(item.value, frame)
            for role in INIT_ROLES[item.name]:
                rules[role] = value
        frame.inits = MappingProxyType(rules)

    def exec_residual(self, s: ast.Residual, frame: Frame) -> None:
        x = frame.current
        if x is not POISON:
            self.need_tensor(x, s.span, "residual")
        self.exec_body(s.body, frame)
        body = frame.current
        short = x
        if s.shortcut is not None and (s.cond is None or self.truth(s.cond, frame)):
            frame.current = x
            self.exec_body(s.shortcut, frame)
            short = frame.current
        if body is POISON or short is POISON:
            frame.current = POISON
            return
        self.need_tensor(body, s.span, "the residual body")
        if body.type.shape != short.type.shape:
            what = "the shortcut's" if short is not x else "the input's"
            ok = len(body.type.shape) == len(short.type.shape) and all(
                equal(a, b) is not False for a, b in zip(body.type.shape, short.type.shape)
            )
            if not ok:
                hint = (
                    "" if short is not x else " (add a `shortcut { ... }` that projects the input)"
                )
                raise DlcError(
                    f"residual: the body's output {fmt_shape(body.type.shape)} does not "
                    f"match {what} shape {fmt_shape(short.type.shape)}{hint}",
                    s.span,
                )
        frame.current = self.apply_op(OPS["add"], s.span, [short, body], {}, frame)

    def exec_for(self, s: ast.For, frame: Frame) -> None:
        items = self.eval(s.iter, frame)
        if not isinstance(items, (tuple, list, range)):
            raise DlcError(f"for needs a list, tuple or range, got {describe(items)}", s.iter.span)
        if len(items) > MAX_UNROLL:
            raise DlcError(
                f"a loop of {len(items):,} iterations exceeds the unrolling limit of "
                f"{MAX_UNROLL:,}",
                s.iter.span,
            )
        for item in items:
            if len(s.targets) == 1:
                frame.env[s.targets[0]] = item
            else:
                if not isinstance(item, (tuple, list)) or len(item) != len(s.targets):
                    raise DlcError(
                        f"cannot unpack {describe(item)} into {len(s.targets)} names "
                        f"({', '.join(s.targets)})",
                        s.iter.span,
                    )
                frame.env.update(zip(s.targets, item))
            self.exec_body(s.body, frame)

    # -- expressions -------------------------------------------------------------------
    def truth(self, expr, frame: Frame) -> bool:
        v = self.eval(expr, frame)
        if isinstance(v, (Tensor, Poison)) or isinstance(v, Callee):
            raise DlcError(
                f"a condition must be a compile-time value, got {describe(v)}", expr.span
            )
        if isinstance(v, Sym):
            raise DlcError(
                f"cannot decide at compile time whether the symbolic dim {v} is non-zero", expr.span
            )
        return bool(v)

    def eval_layer(self, expr, frame: Frame, layer_name: str | None = None) -> Any:
        """Evaluate a statement's expression: a bare op or block name is a call without
        arguments, and the binding name (``e1 = ...``) names the layer that makes the value."""
        if isinstance(expr, ast.Pipe):
            return self.eval_pipe(expr, frame, layer_name)
        if isinstance(expr, (ast.Name, ast.Call)):
            return self.eval_call(expr, frame, None, layer_name)
        if isinstance(expr, ast.BinOp):
            return self.eval_binop(expr, frame, layer_name)
        return self.eval(expr, frame)

    def eval_pipe(self, expr: ast.Pipe, frame: Frame, layer_name: str | None = None) -> Any:
        value = self.eval_layer(expr.stages[0], frame)
        for i, stage in enumerate(expr.stages[1:], 1):
            if not isinstance(stage, (ast.Name, ast.Call)):
                raise DlcError("each stage after '|' must be a layer or block call", stage.span)
            if value is POISON:
                return POISON
            self.need_tensor(value, expr.stages[i - 1].span, "a pipeline stage")
            last = i == len(expr.stages) - 1
            value = self.eval_call(stage, frame, value, layer_name if last else None)
        return value

    def eval_call(self, expr, frame: Frame, piped: Any, layer_name: str | None) -> Any:
        """A Name (call without arguments if callable) or a Call."""
        if isinstance(expr, ast.Name):
            callee = self.lookup(expr, frame)
            if not isinstance(callee, Callee) or callee.kind not in ("op", "block"):
                if piped is not None:
                    raise DlcError(
                        f"'{expr.id}' is {describe(callee)}, not a layer or block", expr.span
                    )
                return callee
            return self.call(callee, expr.span, [], {}, frame, piped, layer_name)
        if not isinstance(expr.func, ast.Name):
            raise DlcError("only ops, blocks and builtin functions can be called", expr.func.span)
        callee = self.lookup(expr.func, frame)
        if not isinstance(callee, Callee):
            raise DlcError(
                f"'{expr.func.id}' is {describe(callee)}, which cannot be called", expr.func.span
            )
        args = [(self.eval(a, frame), a.span) for a in expr.args]
        kwargs: dict[str, tuple[Any, Span]] = {}
        for kw in expr.kwargs:
            if kw.name in kwargs:
                raise DlcError(f"argument '{kw.name}' given twice", kw.span)
            kwargs[kw.name] = (self.eval(kw.value, frame), kw.span)
        return self.call(callee, expr.span, args, kwargs, frame, piped, layer_name)

    def call(self, callee: Callee, span: Span, args, kwargs, frame: Frame, piped, layer_name):
        if callee.kind == "op":
            return self.call_op(callee.target, span, args, kwargs, frame, piped, layer_name)
        if callee.kind == "block":
            return self.call_block(callee.target, span, args, kwargs, frame, piped, layer_name)
        if piped is not None:
            raise DlcError(f"{describe(callee)} cannot take a piped tensor", span)
        if callee.kind == "init":
            return self.make_init(callee.name, span, args, kwargs)
        values = [v for v, _ in args]
        if kwargs:
            raise DlcError(f"{callee.name}() takes no keyword arguments", span)
        if any(isinstance(v, (Tensor, Poison)) for v in values):
            bad = next(s for v, s in args if isinstance(v, (Tensor, Poison)))
            raise DlcError(f"{callee.name}() takes compile-time values, not tensors", bad)
        try:
            return callee.target(*values)
        except (TypeError, ValueError, OverflowError) as exc:
            raise DlcError(f"{callee.name}(): {exc}", span) from None

    def lookup(self, name: ast.Name, frame: Frame) -> Any:
        n = name.id
        if n in frame.env:
            return frame.env[n]
        if n in OPS:
            return Callee("op", n, OPS[n])
        if n in self.program.blocks:
            return Callee("block", n, self.program.blocks[n])
        if n in BUILTINS:
            return Callee("builtin", n, BUILTINS[n])
        if n in INITIALIZERS:
            return Callee("init", n)
        if n in self.program.networks:
            raise DlcError(
                f"'{n}' is a network; only blocks can be called from a network or block", name.span
            )
        if n[:1].isupper() and frame.is_network:
            hint = " (a capitalised name is a symbolic dim only in an input's shape)"
        else:
            hint = ""
        kind = "op or name" if n.islower() else "name"
        pool = [*frame.env, *OPS, *self.program.blocks, *BUILTINS, *INITIALIZERS, "true", "false"]
        raise DlcError(f"unknown {kind} '{n}'" + suggest(n, pool) + hint, name.span)

    def eval(self, e, frame: Frame) -> Any:
        """The value of an expression (dispatch on its node type: this is the hot path)."""
        return _EVAL[type(e)](self, e, frame)

    def eval_input(self, e: ast.InputRef, frame: Frame) -> Any:
        if frame.input is None:
            raise DlcError("`input` is used before any input is declared", e.span)
        return frame.input

    def eval_unary(self, e: ast.Unary, frame: Frame) -> Any:
        v = self.eval(e.operand, frame)
        if e.op == "not":
            return not self._as_bool(v, e.operand.span)
        if not isinstance(v, (int, float, Sym)) or isinstance(v, bool):
            raise DlcError(f"cannot negate {describe(v)}", e.operand.span)
        return -v

    def _as_bool(self, v: Any, span: Span) -> bool:
        if isinstance(v, (Tensor, Poison, Callee, Sym)):
            raise DlcError(f"expected a compile-time truth value, got {describe(v)}", span)
        return bool(v)

    def _arith_operand(self, v: Any, op: str, span: Span) -> None:
        if isinstance(v, Poison):
            raise DlcError("operand depends on an earlier error", span)
        if isinstance(v, (Callee, type(None), bool)) or (isinstance(v, Tensor) and op not in "+*"):
            raise DlcError(f"cannot apply '{op}' to {describe(v)}", span)

    def eval_binop(self, e: ast.BinOp, frame: Frame, layer_name: str | None = None) -> Any:
        if e.op in ("and", "or"):
            left = self._as_bool(self.eval(e.left, frame), e.left.span)
            if left == (e.op == "or"):
                return left
            return self._as_bool(self.eval(e.right, frame), e.right.span)
        a, b = self.eval(e.left, frame), self.eval(e.right, frame)
        if POISON in (a, b):
            return POISON
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            if e.op in ("+", "*") and isinstance(a, Tensor) and isinstance(b, Tensor):
                op = OPS["add" if e.op == "+" else "mul"]
                return self.apply_op(op, e.span, [a, b], {}, frame, layer_name)
            raise DlcError(
                f"cannot apply '{e.op}' to {describe(a)} and {describe(b)}"
                + (" (tensors combine with + and *)" if e.op not in "+*" else ""),
                e.span,
            )
        self._arith_operand(a, e.op, e.left.span)
        self._arith_operand(b, e.op, e.right.span)
        if e.op == "**" and isinstance(b, int) and abs(b) > 64:
            raise DlcError(f"exponent {b} is too large (at most 64)", e.right.span)
        if e.op in ("/", "//", "%") and b == 0:
            raise DlcError("division by zero", e.right.span)
        if e.op == "/" and (isinstance(a, Sym) or isinstance(b, Sym)):
            raise DlcError("a symbolic dim can only be divided with '//'", e.span)
        if e.op == "*" and _too_long(a, b):
            raise DlcError(f"a sequence of more than {MAX_UNROLL:,} items", e.span)
        try:
            return _BINOPS[e.op](a, b)
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise DlcError(
                f"cannot compute {describe(a)} {e.op} {describe(b)}: {exc}", e.span
            ) from None

    def eval_compare(self, e: ast.Compare, frame: Frame) -> bool:
        values = [self.eval(x, frame) for x in e.operands]
        for v, x in zip(values, e.operands):
            if isinstance(v, (Tensor, Poison, Callee)):
                raise DlcError(f"cannot compare {describe(v)}", x.span)
        for op, a, b in zip(e.ops, values, values[1:]):
            if isinstance(a, Sym) or isinstance(b, Sym):
                result = self._compare_dims(op, a, b, e.span)
            else:
                try:
                    result = _CMPS[op](a, b)
                except TypeError:
                    raise DlcError(
                        f"cannot compare {describe(a)} {op} {describe(b)}", e.span
                    ) from None
            if not result:
                return False
        return True

    def _compare_dims(self, op: str, a, b, span: Span) -> bool:
        try:
            diff = a - b
        except TypeError:
            raise DlcError(f"cannot compare {describe(a)} {op} {describe(b)}", span) from None
        if isinstance(diff, int):
            return _CMPS[op](diff, 0)
        raise DlcError(
            f"cannot decide at compile time whether {a} {op} {b} (it depends on the "
            f"symbolic dims {', '.join(sorted(diff.symbols))})",
            span,
        )

    def eval_index(self, e: ast.Index, frame: Frame) -> Any:
        v, i = self.eval(e.value, frame), self.eval(e.index, frame)
        if not isinstance(v, (tuple, list, range, str)):
            raise DlcError(f"cannot index {describe(v)}", e.value.span)
        if isinstance(i, bool) or not isinstance(i, int):
            raise DlcError(f"an index must be an integer, got {describe(i)}", e.index.span)
        if not -len(v) <= i < len(v):
            raise DlcError(
                f"index {i} is out of range for {describe(v)} of length {len(v)}", e.index.span
            )
        return v[i]

    def eval_attr(self, e: ast.Attr, frame: Frame) -> Any:
        v = self.eval(e.value, frame)
        if isinstance(v, Poison):
            raise DlcError("value depends on an earlier error", e.value.span)
        if not isinstance(v, Tensor):
            raise DlcError(f"{describe(v)} has no attribute '{e.name}'", e.span)
        attrs = {"shape": v.type.shape, "rank": v.type.rank, "dtype": v.type.dtype}
        if e.name not in attrs:
            raise DlcError(
                f"a tensor has no attribute '{e.name}'"
                + suggest(e.name, attrs)
                + " (tensors have shape, rank and dtype)",
                e.span,
            )
        return attrs[e.name]

    # -- calls -------------------------------------------------------------------------
    def bind_args(self, what: str, sig: Signature, span: Span, args, kwargs) -> dict[str, Any]:
        """Match positional and keyword arguments to a signature: {name: (value, span)}, where
        arguments left out are absent (their defaults are ``sig.defaults``)."""
        positional = sig.positional
        if sig.variadic is not None:
            bound = {sig.variadic.name: (tuple(v for v, _ in args), args[0][1] if args else span)}
        else:
            if len(args) > len(positional):
                if not positional:
                    raise DlcError(f"{what} takes no arguments", args[0][1])
                raise DlcError(
                    f"{what} takes at most {len(positional)} positional argument"
                    f"{'s' if len(positional) != 1 else ''}, got {len(args)}",
                    args[len(positional)][1],
                )
            bound = {p.name: a for p, a in zip(positional, args)}
        for k, (v, s) in kwargs.items():
            if k not in sig.names:
                raise DlcError(
                    f"{what} has no argument '{k}'"
                    + suggest(k, sig.names)
                    + (f" (arguments: {', '.join(sig.names)})" if sig.names else ""),
                    s,
                )
            if k in bound:
                raise DlcError(f"{what}: argument '{k}' given both by position and by name", s)
            bound[k] = (v, s)
        for name in sig.required:
            if name not in bound:
                raise DlcError(f"{what} is missing its argument '{name}'", span)
        return bound

    def check_args(self, what: str, sig: Signature, bound) -> dict:
        """The call's attributes: the given arguments validated and normalised, over the
        signature's defaults."""
        attrs = {}
        for p in sig.args:  # in signature order, so the IR prints attributes consistently
            if p.name not in bound:
                if p.name in sig.defaults:
                    attrs[p.name] = sig.defaults[p.name]
                continue
            value, vspan = bound[p.name]
            if isinstance(value, Poison) or (isinstance(value, tuple) and POISON in value):
                raise Poisoned
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, Callee) and value.kind == "init":
                value = Init(value.name)
            try:
                attrs[p.name] = p.kind(value)
            except ArgError as exc:
                raise DlcError(
                    f"{what}: argument '{p.name}' must be {exc}, got {describe(value)}", vspan
                ) from None
        return attrs

    def call_op(self, op: Op, span: Span, args, kwargs, frame: Frame, piped, layer_name):
        tensors = []
        while args and isinstance(args[0][0], (Tensor, Poison)):
            tensors.append(args.pop(0)[0])
        for v, s in [*args, *kwargs.values()]:
            if isinstance(v, Tensor):
                raise DlcError(f"{op.name}: tensor inputs come first, before other arguments", s)
        inputs = ([piped] if piped is not None else []) + tensors
        lo, hi = op.n_inputs
        if len(inputs) < lo:
            inputs = [frame.current, *inputs]
        if hi is not None and len(inputs) > hi:
            most = "one tensor input" if hi == 1 else f"at most {hi} tensor inputs"
            raise DlcError(f"{op.name} takes {most}, got {len(inputs)}", span)
        for x in inputs:
            if x is None:
                raise DlcError(f"{op.name} has no input: declare an `input` first", span)
        bound = self.bind_args(op.name, op.sig, span, args, kwargs)
        try:
            attrs = self.check_args(op.name, op.sig, bound)
            try:
                attrs = op.normalize(attrs)
            except ArgError as exc:
                raise DlcError(f"{op.name}: {exc}", span) from None
        except Poisoned:
            return POISON
        if any(x is POISON for x in inputs):
            return POISON
        return self.apply_op(op, span, inputs, attrs, frame, layer_name)

    def apply_op(
        self,
        op: Op,
        span: Span,
        inputs: list[Tensor],
        attrs: dict,
        frame: Frame,
        layer_name: str | None = None,
    ) -> Tensor:
        if not attrs and op.signature:
            attrs = op.normalize(dict(op.sig.defaults))
        types = [x.type for x in inputs]
        ctx = InferCtx()
        try:
            out = op.infer(ctx, attrs, *types)
            params = op.params(attrs, *types)
        except ShapeError as exc:
            notes = [
                f"input {fmt_shape(x.type.shape)} produced by {x.node.op} at "
                f"{x.node.span.short if x.node.span else '?'}"
                for x in inputs
                if x.node is not None and x.node.op != "input"
            ]
            raise DlcError(str(exc), span, notes=notes[:2]) from None
        for a, b, what in ctx.constraints:
            self.constraints.append(Constraint(a, b, what, span))
        if params and frame.inits:
            params = {
                k: replace(p, init=frame.inits[p.role])
                if p.init is None and p.role in frame.inits
                else p
                for k, p in params.items()
            }
        if len(self.nodes) >= MAX_NODES:
            raise DlcError(f"the network exceeds {MAX_NODES:,} layers", span)
        name = self.layer_name(frame, layer_name or op.name, numbered=layer_name is None)
        node = Node(
            name,
            op.name,
            tuple(x.name for x in inputs),
            MappingProxyType(attrs),
            out,
            MappingProxyType(params),
            span,
            frame.chain,
        )
        self.nodes.append(node)
        return Tensor(name, out, node)

    def layer_name(self, frame: Frame, base: str, numbered: bool) -> str:
        """``prefix + base_k``, or ``prefix + base`` for a binding name, unique in the graph."""
        if not numbered:  # a binding name; a second `h = ...` gives h_1, h_2, ...
            name, k = f"{frame.prefix}{base}", 0
            while name in self.names:
                k += 1
                name = f"{frame.prefix}{base}_{k}"
            self.names.add(name)
            return name
        while True:
            k = frame.counters.get(base, 0)
            frame.counters[base] = k + 1
            name = f"{frame.prefix}{base}_{k}"
            if name not in self.names:
                self.names.add(name)
                return name

    def call_block(
        self, block: ast.BlockDef, span: Span, args, kwargs, frame: Frame, piped, layer_name
    ):
        if block.name in frame.stack:
            cycle = " -> ".join([*frame.stack[frame.stack.index(block.name) :], block.name])
            raise DlcError(f"block '{block.name}' calls itself ({cycle})", span)
        x = piped if piped is not None else frame.current
        if x is None:
            raise DlcError(f"block {block.name} has no input: declare an `input` first", span)
        sig = Signature(
            tuple(
                Arg(p.name, None, REQUIRED if p.default is None else p.default)  # type: ignore[arg-type]
                for p in block.params
            ),
            normalise=False,
        )
        bound = self.bind_args(f"block {block.name}", sig, span, args, kwargs)
        name = self.layer_name(frame, layer_name or block.name, numbered=layer_name is None)
        inner = Frame(
            name + ".",
            {},
            x,
            ((block.name, span), *frame.chain),
            frame.inits,
            (*frame.stack, block.name),
            False,
        )
        for p in block.params:  # defaults may use earlier parameters: block b(c, d = 2 * c)
            inner.env[p.name] = bound[p.name][0] if p.name in bound else self.eval(p.default, inner)
        shown = ", ".join(
            f"{p.name}={describe(inner.env[p.name])}"
            for p in block.params
            if not isinstance(inner.env[p.name], Tensor)
        )
        key = self._memo_key(block, inner.env, x, frame)
        if key is not None and key in self.memo:
            return self._replay(self.memo[key], name, x, span, frame)
        tensors = [("input", x)] + [(p.name, inner.env[p.name]) for p in block.params]
        inputs = tuple((k, v.name) for k, v in tensors if isinstance(v, Tensor))
        marks = len(self.nodes), len(self.scopes), len(self.constraints), len(self.errors)
        self.scopes.append(Scope(inner.prefix, block.name, shown, span, inputs))
        self.exec_body(block.body, inner)
        result = inner.current
        if inner.outputs:
            if len(inner.outputs) > 1:
                raise DlcError(
                    f"block {block.name} has {len(inner.outputs)} outputs; a block "
                    "returns one value",
                    inner.outputs[1][1],
                )
            result = inner.outputs[0][0]
        if key is not None and len(self.errors) == marks[3] and isinstance(result, Tensor):
            template = _Template(
                inner.prefix,
                x.name,
                result.name,
                len(frame.chain),
                self.nodes[marks[0] :],
                self.scopes[marks[1] :],
                self.constraints[marks[2] :],
            )
            if template.closed():
                self.memo[key] = template
        return result

    def _memo_key(self, block: ast.BlockDef, env: dict, x: Any, frame: Frame) -> tuple | None:
        """Calls of one block with equal compile-time arguments, input type and ``init``
        rules build the same layers, up to names: the second one replays the first."""
        if self.memo is None or not isinstance(x, Tensor):
            return None
        values = tuple(env[p.name] for p in block.params)
        if any(isinstance(v, (Tensor, Poison)) for v in values):
            return None
        key = (block.name, _typed(values), x.type, tuple(frame.inits.items()))
        try:
            hash(key)
        except TypeError:  # a list argument: not worth a canonical form
            return None
        return key

    def _replay(self, t: _Template, name: str, x: Tensor, span: Span, frame: Frame) -> Tensor:
        old, new = t.prefix, name + "."

        def rename(value: str) -> str:
            return x.name if value == t.input else new + value[len(old) :]

        if len(self.nodes) + len(t.nodes) > MAX_NODES:
            raise DlcError(f"the network exceeds {MAX_NODES:,} layers", span)
        made = {}
        for n in t.nodes:
            cut = len(n.chain) - t.depth - 1  # the chain ends with this call, then its callers
            chain = (*n.chain[:cut], (n.chain[cut][0], span), *frame.chain)
            node = Node(
                rename(n.name),
                n.op,
                tuple(map(rename, n.inputs)),
                n.attrs,
                n.type,
                n.params,
                n.span,
                chain,
            )
            self.nodes.append(node)
            self.names.add(node.name)
            made[node.name] = node
        for sc in t.scopes:
            prefix = new + sc.prefix[len(old) :]
            self.names.add(prefix[:-1])
            self.scopes.append(
                Scope(
                    prefix,
                    sc.block,
                    sc.args,
                    span if sc.prefix == old else sc.span,
                    tuple((k, rename(v)) for k, v in sc.inputs),
                )
            )
        self.constraints.extend(t.constraints)
        result = rename(t.result)
        return x if result == x.name else Tensor(result, made[result].type, made[result])

    def make_init(self, name: str, span: Span, args, kwargs) -> Init:
        sig = _INIT_SIGNATURES[name]
        bound = self.bind_args(name, sig, span, args, kwargs)
        try:
            attrs = self.check_args(name, sig, bound)
        except Poisoned:
            raise DlcError(f"{name}: argument depends on an earlier error", span) from None
        return Init(name, tuple((k, attrs[k]) for k in sig.names if k in bound))

    def eval_init(self, expr, frame: Frame) -> Init:
        v = self.eval(expr, frame)
        if isinstance(v, Callee) and v.kind == "init":
            v = Init(v.name)
        if not isinstance(v, Init):
            raise DlcError(
                f"expected an initialiser ({', '.join(INITIALIZERS)}), got {describe(v)}", expr.span
            )
        return v

    def need_tensor(self, v: Any, span: Span, what: str) -> None:
        if not isinstance(v, Tensor):
            if v is None:
                raise DlcError(f"{what} has no input: declare an `input` first", span)
            raise DlcError(f"{what} needs a tensor, got {describe(v)}", span)


_EVAL = {
    ast.Lit: lambda self, e, frame: e.value,
    ast.Name: Elaborator.lookup,
    ast.InputRef: Elaborator.eval_input,
    ast.TupleExpr: lambda self, e, frame: tuple(self.eval(x, frame) for x in e.items),
    ast.ListExpr: lambda self, e, frame: [self.eval(x, frame) for x in e.items],
    ast.BinOp: Elaborator.eval_binop,
    ast.Unary: Elaborator.eval_unary,
    ast.Compare: Elaborator.eval_compare,
    ast.IfExp: lambda self, e, frame: self.eval(
        e.then if self.truth(e.cond, frame) else e.orelse, frame
    ),
    ast.Call: Elaborator.eval_layer,
    ast.Pipe: Elaborator.eval_layer,
    ast.Index: Elaborator.eval_index,
    ast.Attr: Elaborator.eval_attr,
}
_EXEC = {
    ast.ExprStmt: Elaborator.exec_expr,
    ast.Assign: Elaborator.exec_assign,
    ast.Let: Elaborator.exec_let,
    ast.InputDecl: Elaborator.declare_input,
    ast.Output: Elaborator.exec_output,
    ast.Init: Elaborator.exec_init,
    ast.Residual: Elaborator.exec_residual,
    ast.If: Elaborator.exec_if,
    ast.Repeat: Elaborator.exec_repeat,
    ast.For: Elaborator.exec_for,
}


# Replaying repeated block calls (see Elaborator._memo_key); tests switch it off to check
# that replay gives exactly the IR that elaboration gives.
MEMOIZE_BLOCKS = True


@dataclass(frozen=True)
class _Template:
    """What one block call added to the graph, to be replayed under another prefix."""

    prefix: str
    input: str
    result: str
    depth: int  # length of the caller's chain
    nodes: list
    scopes: list
    constraints: list

    def closed(self) -> bool:
        """Whether the call reads only its input and its own values (always, unless a
        value from outside reached it some other way): only then can names be mapped."""
        own = (self.input, *(n.name for n in self.nodes))
        return self.result in own and all(i in own for n in self.nodes for i in n.inputs)


def _typed(value: Any) -> Any:
    """A memo key part that tells 1, 1.0 and true apart (they are equal in Python)."""
    if isinstance(value, tuple):
        return ("tuple", tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


class Poisoned(Exception):
    """An argument depends on an error already reported: skip the call quietly."""


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


__all__ = ["Dim", "Elaborator", "Tensor", "constant", "elaborate"]

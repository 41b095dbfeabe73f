"""Statements: unrolling ``repeat``/``for``/``if``, bindings, inputs, ``init`` rules and
``residual``. An error in one statement is recorded and its result poisoned, so that the
statements after it are still checked."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..errors import DlcError, Span
from ..frontend import ast
from ..ir.graph import DTYPES, Node, TensorType
from ..ir.initializers import INIT_ROLES
from ..ir.symbolic import Sym, equal, fmt_shape
from ..ops import OPS
from .binding import Poisoned
from .frame import MAX_UNROLL, Frame, Overrun
from .values import POISON, Poison, Tensor, describe, suggest


class Statements:
    """Executing statements (a mixin of ``Elaborator``)."""

    def exec_body(self, body, frame: Frame) -> None:
        for stmt in body:
            try:
                if frame.outputs and not frame.is_network:
                    raise DlcError("a block's `output` must be its last statement", stmt.span)
                EXEC[type(stmt)](self, stmt, frame)
            except (DlcError, Poisoned, RecursionError) as err:
                if isinstance(err, RecursionError):
                    # The syntax nests at most lalr.MAX_DEPTH deep, but calls and values built
                    # in loops (`let t = [t]`) nest further; reported where it overflowed.
                    err = DlcError(
                        "nested too deeply to elaborate (calls within calls, or values "
                        "nested in values)",
                        stmt.span,
                    )
                if isinstance(err, Overrun):
                    raise err.with_chain(frame.chain) from None
                if isinstance(err, DlcError):  # Poisoned: an error already reported
                    self.error(err, frame)
                frame.current = POISON
                if isinstance(stmt, (ast.Assign, ast.Let, ast.InputDecl)):
                    frame.env[stmt.name] = POISON
                elif isinstance(stmt, ast.Destructure):
                    frame.env.update(dict.fromkeys(stmt.names, POISON))

    def exec_expr(self, s: ast.ExprStmt, frame: Frame) -> None:
        self.set_current(self.eval_layer(s.expr, frame), frame, s.span)

    def exec_destructure(self, s: ast.Destructure, frame: Frame) -> None:
        """``a, b = ...``: one name per result; the first becomes the current value."""
        value = self.eval_layer(s.value, frame, layer_name=s.names)
        if value is POISON:
            raise Poisoned
        if not isinstance(value, (tuple, list)) or len(value) != len(s.names):
            raise DlcError(
                f"cannot unpack {describe(value)} into {len(s.names)} names ({', '.join(s.names)})",
                s.span,
            )
        frame.env.update(zip(s.names, value))
        if isinstance(value[0], Tensor):
            frame.current = value[0]

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
        for e in s.values:  # a call with several results gives each of them
            value = self.eval_layer(e, frame)
            results = value if isinstance(value, tuple) and value else (value,)
            frame.outputs.extend((v, e.span) for v in results)

    def exec_if(self, s: ast.If, frame: Frame) -> None:
        self.exec_body(s.then if self.truth(s.cond, frame) else s.orelse, frame)

    def exec_repeat(self, s: ast.Repeat, frame: Frame) -> None:
        count = self.eval(s.count, frame)
        if count is POISON:
            raise Poisoned
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DlcError(
                f"repeat needs a non-negative integer count, got {describe(count)}", s.count.span
            )
        outer = self.enter_loop(f"repeat {count:,}", count, s.body, s.count.span)
        try:
            for _ in range(count):
                self.exec_body(s.body, frame)
        finally:
            self.unroll = outer

    def enter_loop(self, what: str, count: int, body: tuple, span: Span) -> int:
        """Check a loop of ``count`` iterations against the unrolling limit before it runs,
        and count it among the loops being run; returns the count to restore after it."""
        outer = self.unroll
        if outer * count > MAX_UNROLL:
            within = f" inside loops that run {outer:,} times" if outer > 1 else ""
            raise Overrun(f"{what}{within} exceeds the unrolling limit of {MAX_UNROLL:,}", span)
        self.spend(count * max(1, len(body)), span)  # an empty body's iterations cost too
        self.unroll = outer * count
        return outer

    def spend(self, cost: int, span: Span) -> None:
        """Count ``cost`` statements or calls against the unrolling limit on the work of one
        elaboration (a replayed block call costs nothing: MAX_NODES bounds those)."""
        self.work += cost
        if self.work > MAX_UNROLL:
            raise Overrun(
                f"the program unrolls to more than {MAX_UNROLL:,} statements and calls "
                "(the unrolling limit); this is where it crosses it",
                span,
            )

    def set_current(self, value: Any, frame: Frame, span: Span) -> None:
        if isinstance(value, (Tensor, Poison)):
            frame.current = value
        elif isinstance(value, tuple) and value and all(isinstance(v, Tensor) for v in value):
            names = ", ".join("abcdefgh"[: len(value)]) if len(value) <= 8 else "a, b, ..."
            raise DlcError(
                f"this call gives {len(value)} results: bind them (`{names} = ...`) or take "
                "one (`parts = ...` then `parts[0]`)",
                span,
            )
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
                self.symbols.add(d.id)
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
        if items is POISON:
            raise Poisoned
        if not isinstance(items, (tuple, list, range)):
            raise DlcError(f"for needs a list, tuple or range, got {describe(items)}", s.iter.span)
        try:
            count = len(items)
        except OverflowError:  # a range past 2**63 items
            count = (items.stop - items.start) // items.step
        outer = self.enter_loop(f"a loop of {count:,} iterations", count, s.body, s.iter.span)
        try:
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
        finally:
            self.unroll = outer


EXEC = {
    ast.ExprStmt: Statements.exec_expr,
    ast.Assign: Statements.exec_assign,
    ast.Destructure: Statements.exec_destructure,
    ast.Let: Statements.exec_let,
    ast.InputDecl: Statements.declare_input,
    ast.Output: Statements.exec_output,
    ast.Init: Statements.exec_init,
    ast.Residual: Statements.exec_residual,
    ast.If: Statements.exec_if,
    ast.Repeat: Statements.exec_repeat,
    ast.For: Statements.exec_for,
}

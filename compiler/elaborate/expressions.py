"""The compile-time expression interpreter: literals, names, arithmetic, comparisons,
indexing and attributes over the syntax tree (never a host ``eval``)."""

from __future__ import annotations

import operator
from typing import Any

from ..errors import DlcError, Span
from ..frontend import ast
from ..ir.initializers import INITIALIZERS
from ..ir.symbolic import Sym
from ..ops import OPS
from .binding import Poisoned
from .frame import MAX_UNROLL, Frame
from .values import BUILTINS, POISON, Callee, Poison, Tensor, describe, suggest

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

# Compile-time numbers stay as large as literals may be (Python's int() takes at most 4,300
# digits, and prints no more): `k = k * k` in a loop would otherwise grow without end.
_INT_DIGITS = 4300
_INT_BOUND = 10**_INT_DIGITS
_SYM_TERMS = 64  # for symbolic dims, the terms of the polynomial and the powers in them


def _too_big(v: Any) -> bool:
    """Whether an arithmetic result is past the limits (`l = l + l` doubles a list too)."""
    if isinstance(v, (tuple, list, str)):
        return len(v) > MAX_UNROLL
    if type(v) is int:
        return not -_INT_BOUND < v < _INT_BOUND
    if isinstance(v, Sym):
        return len(v.terms) > _SYM_TERMS or any(
            not -_INT_BOUND < c < _INT_BOUND or any(p > _SYM_TERMS for _, p in m)
            for m, c in v.terms.items()
        )
    return False


def _too_long(a: Any, b: Any) -> bool:
    """Would ``a * b`` build a sequence longer than the unrolling limit?"""
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (tuple, list, str)) and isinstance(n, int):
            return len(seq) * n > MAX_UNROLL
    return False


class Expressions:
    """The elaborator's expression interpreter (a mixin of ``Elaborator``)."""

    def truth(self, expr, frame: Frame) -> bool:
        v = self.eval(expr, frame)
        if v is POISON:
            raise Poisoned
        if isinstance(v, (Tensor, Poison)) or isinstance(v, Callee):
            raise DlcError(
                f"a condition must be a compile-time value, got {describe(v)}", expr.span
            )
        if isinstance(v, Sym):
            raise DlcError(
                f"cannot decide at compile time whether the symbolic dim {v} is non-zero", expr.span
            )
        return bool(v)

    def eval(self, e, frame: Frame) -> Any:
        """The value of an expression (dispatch on its node type: this is the hot path)."""
        return EVAL[type(e)](self, e, frame)

    def lookup(self, name: ast.Name, frame: Frame) -> Any:
        n = name.id
        env = frame.env
        if n in env:
            return env[n]
        callee = self.callees.get(n)  # a name outside every frame means one thing
        if callee is None:
            callee = self.callees[n] = self._callee(name, frame)
        return callee

    def _callee(self, name: ast.Name, frame: Frame) -> Callee:
        """What a name that no frame binds calls: an op, block, builtin or initialiser."""
        n = name.id
        if n in OPS:
            return Callee("op", n, OPS[n])
        if n in self.program.blocks:
            return Callee("block", n, self.program.blocks[n])
        if n in self.program.functions:
            return Callee("fn", n, self.program.functions[n])
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
        pool = [
            *frame.env,
            *OPS,
            *self.program.blocks,
            *self.program.functions,
            *BUILTINS,
            *INITIALIZERS,
            "true",
            "none",
            "false",
        ]
        raise DlcError(f"unknown {kind} '{n}'" + suggest(n, pool) + hint, name.span)

    def eval_input(self, e: ast.InputRef, frame: Frame) -> Any:
        if frame.input is None:
            raise DlcError("`input` is used before any input is declared", e.span)
        return frame.input

    def eval_unary(self, e: ast.Unary, frame: Frame, layer_name: str | None = None) -> Any:
        v = self.eval(e.operand, frame)
        if v is POISON:
            return POISON
        if e.op == "not":
            return not self._as_bool(v, e.operand.span)
        if isinstance(v, Tensor):
            return self.apply_op(OPS["neg"], e.span, [v], {}, frame, layer_name)
        if not isinstance(v, (int, float, Sym)) or isinstance(v, bool):
            raise DlcError(f"cannot negate {describe(v)}", e.operand.span)
        return -v

    def _as_bool(self, v: Any, span: Span) -> bool:
        if isinstance(v, (Tensor, Poison, Callee, Sym)):
            raise DlcError(f"expected a compile-time truth value, got {describe(v)}", span)
        return bool(v)

    def _arith_operand(self, v: Any, op: str, span: Span) -> None:
        if isinstance(v, (Callee, type(None), bool)):
            raise DlcError(f"cannot apply '{op}' to {describe(v)}", span)

    def eval_binop(self, e: ast.BinOp, frame: Frame, layer_name: str | None = None) -> Any:
        # A left-associative chain (`1 + 1 + ... + 1`) nests as deep as it is long, and the
        # parser's depth limit does not see it: walk its left spine in a loop instead.
        spine = [e]
        left = e.left
        while type(left) is ast.BinOp:
            spine.append(left)
            left = left.left
        value = self.eval(left, frame)
        for node in reversed(spine):
            value = self._binop(node, value, frame, layer_name if node is e else None)
        return value

    def _binop(self, e: ast.BinOp, a: Any, frame: Frame, layer_name: str | None) -> Any:
        """``e`` given the value ``a`` of its left operand."""
        if e.op in ("and", "or"):
            left = self._as_bool(a, e.left.span)
            if left == (e.op == "or"):
                return left
            return self._as_bool(self.eval(e.right, frame), e.right.span)
        b = self.eval(e.right, frame)
        if POISON in (a, b):
            return POISON
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return self.tensor_binop(e, a, b, frame, layer_name)
        if e.op == "@":
            raise DlcError(f"'@' multiplies tensors, not {describe(a)} and {describe(b)}", e.span)
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
            value = _BINOPS[e.op](a, b)
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise DlcError(
                f"cannot compute {describe(a)} {e.op} {describe(b)}: {exc}", e.span
            ) from None
        if _too_big(value):
            if type(value) is int:
                limit = f"more than {_INT_DIGITS:,} digits"
            elif isinstance(value, Sym):
                limit = f"a symbolic dim of more than {_SYM_TERMS} terms, powers or digits"
            else:
                limit = f"a sequence of more than {MAX_UNROLL:,} items (the unrolling limit)"
            raise DlcError(f"the result of '{e.op}' is too large: {limit}", e.span)
        return value

    def tensor_binop(self, e: ast.BinOp, a: Any, b: Any, frame: Frame, layer_name) -> Any:
        """``a op b`` where a tensor is involved: a layer (LANGUAGE §10)."""
        name = _TENSOR_OPS.get(e.op)
        both = isinstance(a, Tensor) and isinstance(b, Tensor)
        number, where = (b, e.right) if isinstance(a, Tensor) else (a, e.left)
        if name is None or (e.op == "@" and not both):
            raise DlcError(
                f"cannot apply '{e.op}' to {describe(a)} and {describe(b)} (tensors combine "
                "with + - * / and @, and ** a number)",
                e.span,
            )
        if both:
            if e.op == "**":
                raise DlcError("a tensor's power must be a number", e.right.span)
            return self.apply_op(OPS[name], e.span, [a, b], {}, frame, layer_name)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            what = "a symbolic dim" if isinstance(number, Sym) else describe(number)
            raise DlcError(f"a tensor combines with a number, not {what}", where.span)
        tensor = a if isinstance(a, Tensor) else b
        if e.op == "**":
            if tensor is not a:
                raise DlcError("a number cannot be raised to a tensor's power", e.span)
            return self.apply_op(OPS["pow"], e.span, [a], {"exponent": b}, frame, layer_name)
        attrs = {"scalar": number, "left": tensor is b}
        return self.apply_op(OPS[name], e.span, [tensor], attrs, frame, layer_name)

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

    def eval_index(self, e: ast.Index, frame: Frame, layer_name: str | None = None) -> Any:
        v = self.eval(e.value, frame)
        items = [self._subscript(i, frame) for i in e.items]
        if v is POISON or POISON in items:
            return POISON
        if isinstance(v, Tensor):
            return self.index_tensor(e, v, items, frame, layer_name)
        if not isinstance(v, (tuple, list, range, str)):
            raise DlcError(f"cannot index {describe(v)}", e.value.span)
        if len(items) != 1 or items[0] is Ellipsis:
            raise DlcError(f"{describe(v)} takes one index or slice", e.span)
        (i,) = items
        if isinstance(i, slice):
            return v[i]
        if not -len(v) <= i < len(v):
            raise DlcError(
                f"index {i} is out of range for {describe(v)} of length {len(v)}", e.items[0].span
            )
        return v[i]

    def _subscript(self, item, frame: Frame) -> Any:
        """One index: an int, a ``slice`` of ints, or ``Ellipsis``."""
        if isinstance(item, ast.EllipsisLit):
            return Ellipsis
        if not isinstance(item, ast.Slice):
            return self._int_index(self.eval(item, frame), item, "an index")
        parts = [
            None if p is None else self._int_index(self.eval(p, frame), p, what)
            for p, what in zip(
                (item.start, item.stop, item.step), ("a slice bound", "a slice bound", "a step")
            )
        ]
        if POISON in parts:
            return POISON
        if parts[2] is not None and parts[2] <= 0:
            raise DlcError(f"a slice step must be positive, got {parts[2]}", item.step.span)
        return slice(*parts)

    @staticmethod
    def _int_index(v: Any, expr, what: str) -> Any:
        """An integer; a slice bound may also be a symbolic dim (``x[:, :x.shape[1] - 1]``)."""
        if v is POISON or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        if isinstance(v, Sym) and what == "a slice bound":
            return v
        raise DlcError(f"{what} must be an integer, got {describe(v)}", expr.span)

    def index_tensor(self, e: ast.Index, x: Tensor, items: list, frame: Frame, layer_name):
        """``x[...]``: the ``index`` op, with ``...`` spelled out as whole axes."""
        if items.count(Ellipsis) > 1:
            raise DlcError("an index may hold one `...`", e.span)
        if Ellipsis in items:
            k = items.index(Ellipsis)
            whole = [slice(None)] * max(0, x.type.rank - len(items) + 1)
            items[k : k + 1] = whole
        while items and items[-1] == slice(None):
            items.pop()  # trailing whole axes: the normal form leaves them out
        attrs = {
            "items": tuple((i.start, i.stop, i.step) if isinstance(i, slice) else i for i in items)
        }
        return self.apply_op(OPS["index"], e.span, [x], attrs, frame, layer_name)

    def eval_attr(self, e: ast.Attr, frame: Frame) -> Any:
        v = self.eval(e.value, frame)
        if isinstance(v, Poison):
            return POISON
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

    def need_tensor(self, v: Any, span: Span, what: str) -> None:
        if not isinstance(v, Tensor):
            if v is None:
                raise DlcError(f"{what} has no input: declare an `input` first", span)
            raise DlcError(f"{what} needs a tensor, got {describe(v)}", span)


# The op of each operator on tensors.
_TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "**": "pow"}

# Which method evaluates each expression node: dispatch on the node's type is the hot path.
EVAL = {
    ast.Lit: lambda self, e, frame: e.value,
    ast.Name: Expressions.lookup,
    ast.InputRef: Expressions.eval_input,
    ast.TupleExpr: lambda self, e, frame: tuple(self.eval(x, frame) for x in e.items),
    ast.ListExpr: lambda self, e, frame: [self.eval(x, frame) for x in e.items],
    ast.BinOp: Expressions.eval_binop,
    ast.Unary: Expressions.eval_unary,
    ast.Compare: Expressions.eval_compare,
    ast.IfExp: lambda self, e, frame: self.eval(
        e.then if self.truth(e.cond, frame) else e.orelse, frame
    ),
    ast.Call: lambda self, e, frame: self.eval_layer(e, frame),
    ast.Pipe: lambda self, e, frame: self.eval_layer(e, frame),
    ast.Index: lambda self, e, frame: self.eval_index(e, frame),
    ast.Attr: Expressions.eval_attr,
}

"""Layer and block calls: a statement's expression as a call, ops applied (shape rule,
parameters, ``init`` rules, unique layer names) and block calls expanded in a new frame."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ..errors import DlcError, ShapeError, Span
from ..frontend import ast
from ..ir.graph import EMPTY, Constraint, Node, Scope
from ..ir.symbolic import fmt_shape
from ..ops.base import REQUIRED, Arg, ArgError, InferCtx, Op, Signature
from .binding import Poisoned
from .frame import MAX_CALL_DEPTH, MAX_NODES, Frame, Overrun
from .memo import Template
from .values import BUILTINS, POISON, Callee, Poison, Tensor, describe


class Calls:
    """Calling ops and blocks (a mixin of ``Elaborator``)."""

    def eval_layer(self, expr, frame: Frame, layer_name: str | None = None) -> Any:
        """Evaluate a statement's expression: a bare op or block name is a call without
        arguments, and the binding name (``e1 = ...``) names the layer that makes the value."""
        if isinstance(expr, (ast.Name, ast.Call)):  # the common case first
            return self.eval_call(expr, frame, None, layer_name)
        if isinstance(expr, ast.Pipe):
            return self.eval_pipe(expr, frame, layer_name)
        if isinstance(expr, ast.BinOp):
            return self.eval_binop(expr, frame, layer_name)
        if isinstance(expr, ast.Unary):
            return self.eval_unary(expr, frame, layer_name)
        if isinstance(expr, ast.Index):
            return self.eval_index(expr, frame, layer_name)
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
        if _poisoned(args, kwargs):  # depends on an error already reported: skip quietly
            return POISON
        # An op that is also a builtin (max, min, abs) called on compile-time values only.
        if callee.kind == "op" and callee.name in BUILTINS and args and piped is None:
            if not any(isinstance(v, (Tensor, Poison)) for v, _ in args):
                callee = Callee("builtin", callee.name, BUILTINS[callee.name])
        if callee.kind == "op":
            return self.call_op(callee.target, span, args, kwargs, frame, piped, layer_name)
        if callee.kind == "block":
            return self.call_block(callee.target, span, args, kwargs, frame, piped, layer_name)
        if piped is not None:
            raise DlcError(f"{describe(callee)} cannot take a piped tensor", span)
        if callee.kind == "init":
            return self.make_init(callee.name, span, args, kwargs)
        if callee.kind == "fn":
            return self.call_fn(callee.target, span, args, kwargs, frame)
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
        if None in inputs:  # (values compare by identity: a membership test is exact)
            raise DlcError(f"{op.name} has no input: declare an `input` first", span)
        if len(inputs) < lo:
            raise DlcError(f"{op.name} takes {lo} tensor inputs, got {len(inputs)}", span)
        bound = self.bind_args(op.name, op.sig, span, args, kwargs)
        try:
            attrs = self.check_args(op.name, op.sig, bound)
            try:
                attrs = op.normalize(attrs)
            except ArgError as exc:
                raise DlcError(f"{op.name}: {exc}", span) from None
        except Poisoned:
            return POISON
        if POISON in inputs:
            return POISON
        count = 0
        if attrs.get("index", 0) is None:
            try:
                count = op.results(attrs, *(x.type for x in inputs))
            except ShapeError as exc:
                raise DlcError(str(exc), span) from None
        if count:  # several results: one node each, by its index (ops/tensor.py)
            names = _result_names(op.name, layer_name, count, span)
            return tuple(
                self.apply_op(op, span, inputs, {**attrs, "index": k}, frame, names[k])
                for k in range(count)
            )
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
            raise Overrun(f"the network exceeds {MAX_NODES:,} layers", span)
        if isinstance(layer_name, tuple):
            raise DlcError(f"{op.name} gives one result, not {len(layer_name)}", span)
        name = self.layer_name(frame, layer_name or op.name, numbered=layer_name is None)
        node = Node(
            name,
            op.name,
            tuple([x.name for x in inputs]),
            MappingProxyType(attrs) if attrs else EMPTY,
            out,
            MappingProxyType(params) if params else EMPTY,
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

    def call_fn(self, fn: ast.FnDef, span: Span, args, kwargs, frame: Frame) -> Any:
        """A compile-time function: its body evaluated with only its parameters (and other
        functions, ops and builtins) in scope; calling itself, directly or not, is an
        error."""
        if fn.name in self.fn_stack:
            cycle = " -> ".join([*self.fn_stack[self.fn_stack.index(fn.name) :], fn.name])
            raise DlcError(f"fn '{fn.name}' calls itself ({cycle})", span)
        self.check_call_depth(frame, span)
        self.spend(1, span)  # fns calling fns twice each would take exponential time
        for v, s in [*args, *kwargs.values()]:
            if isinstance(v, Tensor):
                raise DlcError(f"{fn.name}() takes compile-time values, not tensors", s)
        bound = self.bind_args(fn.name, self.block_signature(fn), span, args, kwargs)
        chain = ((f"fn {fn.name}", span), *frame.chain)
        inner = Frame("", {}, None, chain, EMPTY, frame.stack, False)
        self.fn_stack.append(fn.name)
        try:
            for p in fn.params:
                value = bound[p.name][0] if p.name in bound else self.eval(p.default, inner)
                inner.env[p.name] = value
            value = self.eval(fn.body, inner)
        except DlcError as err:
            for e in err.errors:
                e.with_chain(chain)
            raise
        finally:
            self.fn_stack.pop()
        if isinstance(value, Tensor):
            raise DlcError(f"fn {fn.name} computes a tensor; a fn gives compile-time values", span)
        return value

    @staticmethod
    def check_call_depth(frame: Frame, span: Span) -> None:
        if len(frame.chain) >= MAX_CALL_DEPTH:
            raise DlcError(
                f"block and fn calls nest more than {MAX_CALL_DEPTH} deep (the call chain "
                "below ends here)",
                span,
            )

    def block_signature(self, block: ast.BlockDef | ast.FnDef) -> Signature:
        """The parameters of a block (or fn) as a signature for binding (made once each)."""
        sig = self.block_sigs.get(block.name)
        if sig is None:
            sig = self.block_sigs[block.name] = Signature(
                tuple(
                    Arg(p.name, None, REQUIRED if p.default is None else p.default)  # type: ignore[arg-type]
                    for p in block.params
                ),
                normalise=False,
            )
        return sig

    def call_block(
        self, block: ast.BlockDef, span: Span, args, kwargs, frame: Frame, piped, layer_name
    ):
        if block.name in frame.stack:
            cycle = " -> ".join([*frame.stack[frame.stack.index(block.name) :], block.name])
            raise DlcError(f"block '{block.name}' calls itself ({cycle})", span)
        self.check_call_depth(frame, span)
        x = piped if piped is not None else frame.current
        if x is None:
            raise DlcError(f"block {block.name} has no input: declare an `input` first", span)
        bound = self.bind_args(
            f"block {block.name}", self.block_signature(block), span, args, kwargs
        )
        if isinstance(layer_name, tuple):  # a, b = block(...): the call keeps its own name
            layer_name = None
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
        key, template = self._memo_lookup(block, inner.env, x, frame)
        if template is not None:
            return self._replay(template, name, x, span, frame)
        return self._expand_block(block, span, inner, frame, key)

    def _expand_block(
        self, block: ast.BlockDef, span: Span, inner: Frame, frame: Frame, key: tuple | None
    ) -> Any:
        """Elaborate the block's body in its frame; remember it for replay under ``key``."""
        x = inner.input
        shown = ", ".join(
            f"{p.name}={describe(inner.env[p.name])}"
            for p in block.params
            if not isinstance(inner.env[p.name], Tensor)
        )
        tensors = [("input", x)] + [(p.name, inner.env[p.name]) for p in block.params]
        inputs = tuple((k, v.name) for k, v in tensors if isinstance(v, Tensor))
        self.spend(len(block.body), span)
        marks = len(self.nodes), len(self.scopes), len(self.constraints), len(self.errors)
        self.scopes.append(Scope(inner.prefix, block.name, shown, span, inputs))
        self.exec_body(block.body, inner)
        result = inner.current
        if inner.outputs:  # several: the call gives them all, in order
            values = tuple(v for v, _ in inner.outputs)
            result = values[0] if len(values) == 1 else values
        if key is not None and len(self.errors) == marks[3] and isinstance(result, Tensor):
            template = Template(
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


def _poisoned(args, kwargs) -> bool:
    """Whether a call's arguments depend on an error already reported."""
    return any(_has_poison(v) for v, _ in args) or any(_has_poison(v) for v, _ in kwargs.values())


def _has_poison(v: Any) -> bool:
    if isinstance(v, (tuple, list)):
        return any(_has_poison(x) for x in v)
    return v is POISON


def _result_names(op: str, layer_name, count: int, span: Span) -> list:
    """The layer names of a call's several results: the destructured names, or numbered
    ones (``parts = split(...)`` gives ``parts_0``, ``parts_1``, ...)."""
    if isinstance(layer_name, tuple):
        if len(layer_name) != count:
            raise DlcError(
                f"{op} gives {count} results; {len(layer_name)} names cannot bind them", span
            )
        return list(layer_name)
    if layer_name is None:
        return [None] * count
    return [f"{layer_name}_{k}" for k in range(count)]

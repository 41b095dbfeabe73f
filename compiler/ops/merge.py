"""Ops that combine tensors: arithmetic (NumPy broadcasting; a number may stand for one
operand), matmul, negation and powers, and concat."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.graph import FLOAT_DTYPES, TensorType
from ..ir.symbolic import equal, fmt_shape
from ..lazy import numpy as np
from .base import _BAD, BOOL, Arg, InferCtx, Kind, Op, integer, literal, per_example, register
from .shape import norm_axis


def broadcast(op: str, ctx: InferCtx, shapes: list[tuple]) -> tuple:
    """NumPy broadcasting; dims that may or may not be equal become constraints."""
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        result = 1
        for d in dims:
            if d == 1:
                continue
            if result == 1:
                result = d
                continue
            verdict = equal(result, d)
            if verdict is False:
                raise ShapeError(
                    f"{op}: shapes {' and '.join(fmt_shape(s) for s in shapes)} do not "
                    f"broadcast (axis {axis}: {result} vs {d})"
                )
            if verdict is None:
                ctx.same(result, d, f"{op}: axis {axis} of {' and '.join(map(fmt_shape, shapes))}")
        out.append(result)
    return tuple(out)


NUMBER = Kind(
    "a number",
    lambda v: v if isinstance(v, (int, float)) and not isinstance(v, bool) else _BAD,
)


def _promoted(dtype: str, op: str, scalar) -> str:
    """PyTorch's result dtype: an integer tensor becomes float32 with a float number, and
    under true division."""
    if dtype in FLOAT_DTYPES:
        return dtype
    return "float32" if op == "div" or isinstance(scalar, float) else dtype


class Arith(Op):
    """Elementwise arithmetic of two or more tensors (left to right), or of one tensor and
    a number (``scalar``, on the left where ``left=true``), broadcasting as NumPy. ``x - 1``,
    ``2 * x`` and ``a / b`` in a spec are these ops."""

    pointwise = True
    n_inputs = (1, None)
    numpy_inplace = True
    signature = (
        Arg("scalar", NUMBER, None, "a number operand instead of a second tensor"),
        Arg("left", BOOL, False, "the number is the left operand (2 - x)"),
    )

    def __init__(self, name: str, symbol: str, ufunc: str, onnx_type: str, doc: str):
        self.name, self.symbol, self.ufunc, self.onnx_type = name, symbol, ufunc, onnx_type
        self.__doc__ = doc + "\n\n" + (Arith.__doc__ or "")

    def normalize(self, a):
        if a.get("scalar") is None:  # tensors only: the IR shows no number attributes
            a.pop("scalar", None)
            a.pop("left", None)
        return a

    def infer(self, ctx, a, *xs):
        if (len(xs) == 1) != ("scalar" in a):
            raise ShapeError(f"{self.name} takes two or more tensors, or one tensor and a number")
        dtypes = {x.dtype for x in xs}
        if len(dtypes) > 1:
            raise ShapeError(f"{self.name}: inputs have different dtypes {sorted(dtypes)}")
        if "bool" in dtypes:
            raise ShapeError(f"{self.name}: arithmetic on a bool tensor")
        dtype = _promoted(xs[0].dtype, self.name, a.get("scalar"))
        return TensorType(dtype, broadcast(self.name, ctx, [x.shape for x in xs]))

    def _operands(self, a, xs: tuple) -> list:
        """The operands in order, the number placed on its side."""
        if "scalar" not in a:
            return list(xs)
        return [a["scalar"], xs[0]] if a["left"] else [xs[0], a["scalar"]]

    def onnx(self, g, a, node, *xs):
        dtype = node.type.dtype
        xs = tuple(g.cast(x, dtype) for x in xs)
        operands = self._operands(a, xs)
        first, *rest = [v if isinstance(v, str) else g.const(v, dtype) for v in operands]
        for x in rest:  # left to right, as the reference computes them
            first = g.op(self.onnx_type, [first, x])
        return first

    def torch_source(self, a, m, *xs, lit=literal):
        operands = [x if isinstance(x, str) else lit(x, "scalar") for x in self._operands(a, xs)]
        return f" {self.symbol} ".join(operands)

    def numpy(self, a, w, *xs, out=None):
        f = getattr(np, self.ufunc)
        dtype = _promoted(xs[0].dtype.name, self.name, a.get("scalar"))
        xs = tuple(x if x.dtype == dtype else x.astype(dtype) for x in xs)
        if out is not None and out.dtype != dtype:
            out = None
        y, *rest = self._operands(a, xs)
        for i, x in enumerate(rest):
            result = np.broadcast_shapes(np.shape(y), np.shape(x))
            target = out if i == 0 else (y if np.shape(y) == result else None)
            y = f(y, x, out=target, dtype=dtype)
        return y


@register
class Neg(Op):
    """``-x``: elementwise negation (any numeric dtype)."""

    name = "neg"
    pointwise = True
    numpy_inplace = True

    def infer(self, ctx, a, x):
        if x.dtype == "bool":
            raise ShapeError("neg: cannot negate a bool tensor")
        return x

    def onnx(self, g, a, node, x):
        return g.op("Neg", [x])

    def torch_source(self, a, m, x, lit=literal):
        return f"-{x}"

    def numpy(self, a, w, x, out=None):
        return np.negative(x, out=out)


@register
class Pow(Op):
    """``x ** exponent``: elementwise power by a number."""

    name = "pow"
    pointwise = True
    numpy_inplace = True
    signature = (Arg("exponent", NUMBER),)

    def infer(self, ctx, a, x):
        if x.dtype == "bool":
            raise ShapeError("pow: a bool tensor has no powers")
        return TensorType(_promoted(x.dtype, "pow", a["exponent"]), x.shape)

    def onnx(self, g, a, node, x):
        dtype = node.type.dtype
        return g.op("Pow", [g.cast(x, dtype), g.const(a["exponent"], dtype)])

    def torch_source(self, a, m, x, lit=literal):
        return f"{x} ** {lit(a['exponent'], 'exponent')}"

    def numpy(self, a, w, x, out=None):
        dtype = _promoted(x.dtype.name, "pow", a["exponent"])
        if x.dtype != dtype:
            x, out = x.astype(dtype), None
        return np.power(x, np.asarray(a["exponent"], dtype), out=out)


@register
class MatMul(Op):
    """``a @ b``: ``torch.matmul`` (batched, broadcasting the leading axes; a 1-D operand
    is a vector)."""

    name = "matmul"
    n_inputs = (2, 2)

    def infer(self, ctx, a, x, y):
        for t in (x, y):
            self.expect_float(t)
        if x.dtype != y.dtype:
            raise ShapeError(f"matmul: inputs have different dtypes {x.dtype} and {y.dtype}")
        if x.rank == 0 or y.rank == 0:
            raise ShapeError("matmul: operands must have at least one axis")
        xs = (1, *x.shape) if x.rank == 1 else x.shape
        ys = (*y.shape, 1) if y.rank == 1 else y.shape
        inner = f"matmul: inner dims of {fmt_shape(x.shape)} @ {fmt_shape(y.shape)}"
        ctx.same(xs[-1], ys[-2], inner)
        batch = broadcast("matmul", ctx, [xs[:-2], ys[:-2]])
        shape = (*batch, *((xs[-2],) if x.rank > 1 else ()), *((ys[-1],) if y.rank > 1 else ()))
        return TensorType(x.dtype, shape)

    def macs(self, a, y, x, w):
        return per_example(y.shape) * x.shape[-1] if y.rank else x.shape[-1]

    def onnx(self, g, a, node, x, y):
        return g.op("MatMul", [x, y])

    def torch_source(self, a, m, x, y, lit=literal):
        return f"{x} @ {y}"

    def numpy(self, a, w, x, y):
        return np.matmul(x, y)


@register
class Concat(Op):
    """``torch.cat`` along ``axis``; every other axis must match."""

    name = "concat"
    n_inputs = (2, None)
    signature = (Arg("axis", integer(), 1),)

    def receptive(self, a, field, jump, *xs):
        # Joining channels keeps each step's field; joining steps ends the 1-D stack.
        return None if a["axis"] % xs[0].rank == xs[0].rank - 1 else (field, jump)

    def infer(self, ctx, a, *xs):
        rank = xs[0].rank
        if any(x.rank != rank for x in xs):
            raise ShapeError(
                "concat: inputs have different ranks: " + ", ".join(fmt_shape(x.shape) for x in xs)
            )
        if len({x.dtype for x in xs}) > 1:
            raise ShapeError(
                f"concat: inputs have different dtypes {sorted({x.dtype for x in xs})}"
            )
        axis = norm_axis("concat", a["axis"], rank)
        shape = list(xs[0].shape)
        for x in xs[1:]:
            for i, (d, e) in enumerate(zip(shape, x.shape)):
                if i != axis:
                    ctx.same(
                        d,
                        e,
                        f"concat: axis {i} of {fmt_shape(xs[0].shape)} and {fmt_shape(x.shape)}",
                    )
            shape[axis] = shape[axis] + x.shape[axis]
        return TensorType(xs[0].dtype, tuple(shape))

    def onnx(self, g, a, node, *xs):
        return g.op("Concat", list(xs), axis=a["axis"])

    def torch_source(self, a, m, *xs, lit=literal):
        return f"torch.cat([{', '.join(xs)}], dim={a['axis']})"

    def numpy(self, a, w, *xs):
        # Concatenate in the memory order of the first input: channels-last images stay
        # channels-last, and the copy does not transpose them.
        order = sorted(range(xs[0].ndim), key=lambda i: -xs[0].strides[i])
        axis = order.index(a["axis"] % xs[0].ndim)
        y = np.concatenate([x.transpose(order) for x in xs], axis=axis)
        return y.transpose(np.argsort(order))


for _op in (
    Arith("add", "+", "add", "Add", "Elementwise sum."),
    Arith("sub", "-", "subtract", "Sub", "Elementwise difference."),
    Arith("mul", "*", "multiply", "Mul", "Elementwise product."),
    Arith("div", "/", "true_divide", "Div", "Elementwise true division."),
):
    register(_op)

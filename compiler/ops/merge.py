"""Ops that merge several tensors: add, mul (NumPy broadcasting) and concat."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.graph import TensorType
from ..ir.symbolic import equal, fmt_shape
from ..lazy import numpy as np
from .base import Arg, InferCtx, Op, integer, literal, register
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


class Arith(Op):
    """Elementwise ``add`` / ``mul`` of two or more tensors, broadcasting as NumPy."""
    pointwise = True

    n_inputs = (2, None)

    def __init__(self, name: str):
        self.name = name

    def infer(self, ctx, a, *xs):
        dtypes = {x.dtype for x in xs}
        if len(dtypes) > 1:
            raise ShapeError(f"{self.name}: inputs have different dtypes {sorted(dtypes)}")
        return TensorType(xs[0].dtype, broadcast(self.name, ctx, [x.shape for x in xs]))

    def onnx(self, g, a, node, *xs):
        out = xs[0]
        for x in xs[1:]:  # left to right, as the reference sums them
            out = g.op("Add" if self.name == "add" else "Mul", [out, x])
        return out

    def torch_source(self, a, m, *xs, lit=literal):
        return (" + " if self.name == "add" else " * ").join(xs)

    numpy_inplace = True

    def numpy(self, a, w, *xs, out=None):
        f = np.add if self.name == "add" else np.multiply
        if out is not None:  # start from the input that becomes the output
            xs = (out, *(x for x in xs if x is not out))
        y = f(xs[0], xs[1], out=out)
        for x in xs[2:]:
            y = f(y, x, out=y if y.shape == np.broadcast_shapes(y.shape, x.shape) else None)
        return y


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


register(Arith("add"))
register(Arith("mul"))

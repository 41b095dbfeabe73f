"""Ops that merge several tensors: add, mul (NumPy broadcasting) and concat."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import TensorType
from ..symbolic import equal, fmt_shape
from .base import Arg, InferCtx, Op, integer, register
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

    n_inputs = (2, None)

    def __init__(self, name: str):
        self.name = name

    def infer(self, ctx, a, *xs):
        dtypes = {x.dtype for x in xs}
        if len(dtypes) > 1:
            raise ShapeError(f"{self.name}: inputs have different dtypes {sorted(dtypes)}")
        return TensorType(xs[0].dtype, broadcast(self.name, ctx, [x.shape for x in xs]))


@register
class Concat(Op):
    """``torch.cat`` along ``axis``; every other axis must match."""

    name = "concat"
    n_inputs = (2, None)
    signature = (Arg("axis", integer(), 1),)

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


register(Arith("add"))
register(Arith("mul"))

"""Ops that only move data: flatten, reshape, permute, transpose, mean, last."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import TensorType
from ..symbolic import Sym, equal, floordiv, fmt_shape, product
from .base import _BAD, BOOL, Arg, ArgError, Kind, Op, _is_int, integer, register


def norm_axis(op: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for a rank-{rank} input")
    return axis % rank


def _int_list(v):
    if _is_int(v):
        return (v,)
    if isinstance(v, (tuple, list)) and len(v) == 1 and isinstance(v[0], (tuple, list)):
        v = v[0]  # reshape((16, 4)) means reshape(16, 4)
    if isinstance(v, (tuple, list)) and all(_is_int(x) for x in v):
        return tuple(v)
    return _BAD


INT_LIST = Kind("integers", _int_list)


def _flat(dims: tuple) -> tuple:
    """``reshape(16, 4)`` and ``reshape((16, 4))`` both mean (16, 4)."""
    return tuple(d for item in dims for d in (item if isinstance(item, tuple) else (item,)))


@register
class Flatten(Op):
    """``torch.flatten(x, start)``: merge axes ``start..`` into one."""

    name = "flatten"
    signature = (Arg("start", integer(), 1),)

    def infer(self, ctx, a, x):
        start = norm_axis("flatten", a["start"], x.rank)
        return TensorType(x.dtype, (*x.shape[:start], product(x.shape[start:])))


@register
class Reshape(Op):
    """The new shape of each example (the batch axis is kept); one dim may be -1."""

    name = "reshape"
    signature = (Arg("dims", INT_LIST, variadic=True),)

    def normalize(self, a):
        dims = _flat(a["dims"])
        if sum(d == -1 for d in dims) > 1 or any(d < -1 or d == 0 for d in dims):
            raise ArgError(f"dims: positive sizes and at most one -1, got {dims}")
        a["dims"] = dims
        return a

    def infer(self, ctx, a, x):
        total = product(x.shape[1:])
        known = product(d for d in a["dims"] if d != -1)
        if -1 in a["dims"]:
            rest = floordiv(total, known)
            verdict = equal(rest * known, total)
            if verdict is False:
                raise ShapeError(
                    f"reshape: {fmt_shape(x.shape[1:])} ({total} elements per example) "
                    f"cannot be split into {a['dims']}"
                )
            if verdict is None:
                ctx.same(rest * known, total, f"reshape: per-example size divisible by {known}")
            dims = tuple(rest if d == -1 else d for d in a["dims"])
        else:
            dims = a["dims"]
            if isinstance(total, Sym) or total != known:
                ctx.same(known, total, f"reshape: {fmt_shape(x.shape[1:])} to {a['dims']}")
        return TensorType(x.dtype, (x.shape[0], *dims))


@register
class Permute(Op):
    """``torch.permute``: a new order of all axes, the batch axis included."""

    name = "permute"
    signature = (Arg("dims", INT_LIST, variadic=True),)

    def infer(self, ctx, a, x):
        dims = tuple(norm_axis("permute", d, x.rank) for d in _flat(a["dims"]))
        if sorted(dims) != list(range(x.rank)):
            raise ShapeError(
                f"permute: {_flat(a['dims'])} is not an order of the {x.rank} axes of "
                f"{fmt_shape(x.shape)}"
            )
        return TensorType(x.dtype, tuple(x.shape[d] for d in dims))


@register
class Transpose(Op):
    """``torch.transpose(x, a, b)``: swap two axes (the batch axis is 0)."""

    name = "transpose"
    signature = (Arg("a", integer()), Arg("b", integer()))

    def infer(self, ctx, a, x):
        i, j = norm_axis("transpose", a["a"], x.rank), norm_axis("transpose", a["b"], x.rank)
        shape = list(x.shape)
        shape[i], shape[j] = shape[j], shape[i]
        return TensorType(x.dtype, tuple(shape))


@register
class Mean(Op):
    """Mean over ``axis`` (an integer or a tuple), dropping it unless ``keepdims``."""

    name = "mean"
    signature = (Arg("axis", INT_LIST), Arg("keepdims", BOOL, False))

    def infer(self, ctx, a, x):
        self.expect_float(x)
        axes = {norm_axis("mean", d, x.rank) for d in a["axis"]}
        if len(axes) != len(a["axis"]) or not axes:
            raise ShapeError(f"mean: axis {a['axis']} must name distinct axes, at least one")
        if a["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return TensorType(x.dtype, shape)


@register
class Last(Op):
    """The last time step of a sequence: ``[N, T, D] -> [N, D]``."""

    name = "last"
    layout = "[N, T, D]"

    def infer(self, ctx, a, x):
        self.expect_rank(x, 3)
        return TensorType(x.dtype, (x.shape[0], x.shape[2]))

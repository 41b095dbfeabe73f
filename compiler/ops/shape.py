"""Ops that only move data: flatten, reshape, permute, transpose, last; and the reductions
mean, sum, max, min."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.graph import TensorType
from ..ir.symbolic import Sym, equal, floordiv, fmt_shape, product
from ..lazy import numpy as np
from .base import _BAD, BOOL, Arg, ArgError, Kind, Op, _is_int, integer, literal, register


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

    def onnx(self, g, a, node, x):
        # ONNX Flatten always makes a matrix; Reshape keeps the leading axes (0 = copy).
        start = a["start"] % g.type(x).rank
        return g.op("Reshape", [x, g.const([0] * start + [-1])])

    def torch_source(self, a, m, x, lit=literal):
        return f"torch.flatten({x}, {a['start']})"

    numpy_view = True

    def numpy(self, a, w, x):
        return x.reshape(*x.shape[: a["start"] % x.ndim], -1)


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

    def receptive(self, a, field, jump, x):
        # Row-major: a step keeps its place where the last axis keeps its length.
        return (field, jump) if a["dims"][-1] == x.shape[-1] else None

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

    def onnx(self, g, a, node, x):
        return g.op("Reshape", [x, g.const([0, *a["dims"]])])  # 0: the batch dim, as it is

    def torch_source(self, a, m, x, lit=literal):
        return f"{x}.reshape({x}.shape[0], {', '.join(map(str, a['dims']))})"

    numpy_view = True

    def numpy(self, a, w, x):
        return x.reshape(x.shape[0], *a["dims"])


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

    def onnx(self, g, a, node, x):
        rank = g.type(x).rank
        return g.op("Transpose", [x], perm=[d % rank for d in _flat(a["dims"])])

    def torch_source(self, a, m, x, lit=literal):
        return f"{x}.permute({', '.join(map(str, _flat(a['dims'])))})"

    numpy_view = True

    def numpy(self, a, w, x):
        return np.transpose(x, _flat(a["dims"]))


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

    def onnx(self, g, a, node, x):
        perm = list(range(g.type(x).rank))
        i, j = perm[a["a"]], perm[a["b"]]
        if i == j:
            return x
        perm[i], perm[j] = j, i
        return g.op("Transpose", [x], perm=perm)

    def torch_source(self, a, m, x, lit=literal):
        return f"{x}.transpose({a['a']}, {a['b']})"

    numpy_view = True

    def numpy(self, a, w, x):
        return np.swapaxes(x, a["a"], a["b"])


class Reduce(Op):
    """A reduction over ``axis`` (an integer or a tuple), dropping it unless ``keepdims``:
    one record per op, naming what it computes (``what``), its NumPy and torch tensor
    methods and its ONNX op, whose axes are an input from opset ``axes_input`` on (an
    attribute before)."""

    signature = (Arg("axis", INT_LIST), Arg("keepdims", BOOL, False))

    def __init__(self, name: str, what: str, numpy: str, torch: str, onnx: str, axes_input: int):
        self.name = name
        self.__doc__ = (
            f"{what} over ``axis`` (an integer or a tuple), dropping it unless ``keepdims``."
        )
        self._numpy, self._torch, self._onnx, self._axes_input = numpy, torch, onnx, axes_input

    def infer(self, ctx, a, x):
        self.expect_float(x)
        axes = {norm_axis(self.name, d, x.rank) for d in a["axis"]}
        if len(axes) != len(a["axis"]) or not axes:
            raise ShapeError(f"{self.name}: axis {a['axis']} must name distinct axes, at least one")
        if a["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return TensorType(x.dtype, shape)

    def receptive(self, a, field, jump, x):
        # The axes kept and the last not reduced: each step sees only itself.
        last = any(d % x.rank == x.rank - 1 for d in a["axis"])
        return (field, jump) if a["keepdims"] and not last else None

    def onnx(self, g, a, node, x):
        rank, keep = g.type(x).rank, int(a["keepdims"])
        axes = sorted(d % rank for d in a["axis"])
        if g.opset >= self._axes_input:
            return g.op(self._onnx, [x, g.const(axes)], keepdims=keep)
        return g.op(self._onnx, [x], axes=axes, keepdims=keep)

    def torch_source(self, a, m, x, lit=literal):
        axis = a["axis"][0] if len(a["axis"]) == 1 else a["axis"]
        return f"{x}.{self._torch}({axis}{', keepdim=True' if a['keepdims'] else ''})"

    def numpy(self, a, w, x):
        axes = tuple({d % x.ndim for d in a["axis"]})
        return getattr(x, self._numpy)(axis=axes, keepdims=a["keepdims"])


for _op in (
    Reduce(
        "mean",
        "Mean",
        numpy="mean",
        torch="mean",
        onnx="ReduceMean",
        axes_input=18,
    ),
    Reduce(
        "sum",
        "Sum",
        numpy="sum",
        torch="sum",
        onnx="ReduceSum",
        axes_input=13,
    ),
    Reduce(
        "max",
        "Maximum",
        numpy="max",
        torch="amax",
        onnx="ReduceMax",
        axes_input=18,
    ),
    Reduce(
        "min",
        "Minimum",
        numpy="min",
        torch="amin",
        onnx="ReduceMin",
        axes_input=18,
    ),
):
    register(_op)


@register
class Last(Op):
    """The last time step of a sequence: ``[N, T, D] -> [N, D]``."""

    name = "last"
    layout = "[N, T, D]"
    lengths = "sequence"

    def infer(self, ctx, a, x):
        self.expect_rank(x, 3)
        return TensorType(x.dtype, (x.shape[0], x.shape[2]))

    def onnx(self, g, a, node, x):
        return g.op("Gather", [x, g.const(-1)], axis=1)  # a scalar index drops the axis

    def torch_source(self, a, m, x, lit=literal):
        return f"{x}[:, -1]"

    numpy_view = True

    def numpy(self, a, w, x):
        return x[:, -1]

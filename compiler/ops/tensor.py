"""Tensors as values (LANGUAGE §10): learnable tensors (``param``), ``expand`` (to dims
that may be symbolic), indexing and slicing (``x[:, 0]``, ``x[..., 1:]``) and the several
results of ``chunk`` and ``split``.

A call that gives several results is several nodes of one op, each with its ``index``
(the k-th result): every result is a value of the IR like any other, so the summary, the
IR and every backend need nothing special for it. ``Op.results`` says how many a call
gives.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.graph import Param, TensorType
from ..ir.symbolic import Dim, Sym, ceildiv
from ..lazy import numpy as np
from .base import _BAD, INIT, Arg, ArgError, Kind, Op, _is_int, integer, literal, register
from .shape import INT_LIST, _flat, norm_axis

# ONNX Slice's "to the end" (INT64_MAX).
_END = 2**63 - 1

# Which result of a several-result call a node is (set by the elaborator; none: all).
RESULT = Kind(
    "a non-negative integer", lambda v: v if v is None or (_is_int(v) and v >= 0) else _BAD
)


@register
class LearnableTensor(Op):
    """A learnable tensor of exactly these dims (no batch axis), named by its binding:
    ``class_token = param(1, 1, d)``. It broadcasts like any tensor."""

    name = "param"
    n_inputs = (0, 0)
    signature = (
        Arg("dims", INT_LIST, doc="the tensor's dims", variadic=True),
        Arg("init", INIT, None, "default: zeros"),
    )

    def normalize(self, a):
        a["dims"] = _flat(a["dims"])
        if not a["dims"] or any(d < 1 for d in a["dims"]):
            raise ArgError("param needs one or more positive dims")
        return a

    def infer(self, ctx, a):
        return TensorType("float32", a["dims"])

    def params(self, a):
        # The one parameter is the node itself: its IR name is the binding's (local "").
        return {"": Param(a["dims"], "param", init=a["init"])}

    def onnx(self, g, a, node):
        return g.param("")

    numpy_view = True

    def numpy(self, a, w):
        return w[""]

    def torch_layer(self, a, params):
        return "Parameter", {"dims": a["dims"]}, {}

    def torch_source(self, a, m, lit=literal):
        return m


def _dim_list(v):
    """Dims, each a positive int, -1 or a symbolic dim; ``f((2, 3))`` means ``f(2, 3)``."""
    if isinstance(v, (tuple, list)) and len(v) == 1 and isinstance(v[0], (tuple, list)):
        v = v[0]
    if isinstance(v, (tuple, list)) and v and all(map(_expand_dim, v)):
        return tuple(v)
    return _BAD


def _expand_dim(d) -> bool:
    return isinstance(d, Sym) or (_is_int(d) and (d >= 1 or d == -1))


@register
class Expand(Op):
    """``x.expand(dims...)`` as ``torch.Tensor.expand``: ``-1`` keeps a dim, a dim of size 1
    may become any size, new leading dims may be added. A dim may be symbolic
    (``class_token | expand(x.shape[0], -1, -1)``): each backend finds its value at run
    time (backends/numpy.py binds the symbols, the torch and ONNX emitters read it off a
    tensor that has that dim)."""

    name = "expand"
    signature = (
        Arg(
            "dims",
            Kind("positive integers, -1 or symbolic dims such as x.shape[0]", _dim_list),
            doc="the new dims (-1: keep)",
            variadic=True,
        ),
    )

    def infer(self, ctx, a, x):
        dims = a["dims"]
        new = len(dims) - x.rank
        if new < 0:
            raise ShapeError(f"expand: {len(dims)} dims for a rank-{x.rank} input {x}")
        if -1 in dims[:new]:
            raise ShapeError(f"expand: a new leading dim cannot be -1, got {dims}")
        out = list(dims[:new])
        for axis, (d, want) in enumerate(zip(x.shape, dims[new:])):
            if want != -1 and d != 1:
                ctx.same(d, want, f"expand: axis {axis} of {x} (not 1) to {want}")
            out.append(d if want == -1 else want)
        return TensorType(x.dtype, tuple(out))

    def receptive(self, a, field, jump, x):
        # Steps stay where they are when no axis is added and the last one is kept.
        kept = len(a["dims"]) == x.rank and a["dims"][-1] in (-1, x.shape[-1])
        return (field, jump) if kept else None

    def onnx(self, g, a, node, x):
        # ONNX Expand broadcasts: 1 keeps a dim.
        return g.op("Expand", [x, g.shape([1 if d == -1 else d for d in a["dims"]])])

    def numpy(self, a, w, x):
        new = len(a["dims"]) - x.ndim
        shape = [x.shape[i - new] if d == -1 else d for i, d in enumerate(a["dims"])]
        # A copy: a broadcast view is read-only and shares elements, and the driver may let
        # a later kernel write into this value.
        return np.broadcast_to(x, shape).copy()

    def torch_source(self, a, m, x, lit=literal):
        return f"{x}.expand({', '.join(lit(d, 'size') for d in a['dims'])})"


def _index_item(v):
    """An index of one axis: an int, or a slice as ``(start, stop, step)`` whose bounds
    may be symbolic dims (counted from the start: a dim is never negative)."""
    if _is_int(v):
        return v
    if isinstance(v, tuple) and len(v) == 3:
        start, stop, step = v
        bounds = all(b is None or _is_int(b) or isinstance(b, Sym) for b in (start, stop))
        if bounds and (step is None or (_is_int(step) and step > 0)):
            return v
    return _BAD


INDEX = Kind(
    "integers and slices a:b:s with s > 0",
    lambda v: tuple(map(_index_item, v)) if isinstance(v, tuple) else _BAD,
)


def _length(d: Dim, item: tuple) -> Dim:
    """The length of ``item`` (a slice) over a dim of size ``d``, as Python's."""
    start, stop, step = item
    step = step or 1
    if isinstance(d, int) and not isinstance(start, Sym) and not isinstance(stop, Sym):
        return len(range(*slice(start, stop, step).indices(d)))
    # A symbolic dim or bound: the bounds are taken to be in range (no clamping).
    lo = 0 if start is None else (d + start if _negative(start) else start)
    hi = d if stop is None else (d + stop if _negative(stop) else stop)
    return ceildiv(hi - lo, step)


def _negative(bound: Dim) -> bool:
    return isinstance(bound, int) and bound < 0


@register
class Index(Op):
    """``x[...]``: NumPy basic indexing, an int (the axis is dropped) or a slice ``a:b:s``
    (``s > 0``) per axis; axes left out are taken whole. The batch axis only whole."""

    name = "index"
    signature = (Arg("items", INDEX, doc="one index per leading axis"),)

    def infer(self, ctx, a, x):
        items = a["items"]
        if len(items) > x.rank:
            raise ShapeError(f"{len(items)} indices for a rank-{x.rank} tensor {x}")
        if items and items[0] != (None, None, None) and x.rank and isinstance(x.shape[0], Sym):
            raise ShapeError("the batch axis can only be taken whole (`:`)")
        shape = []
        for d, item in zip(x.shape, items):
            if isinstance(item, tuple):
                shape.append(_length(d, item))
            elif isinstance(d, int) and not -d <= item < d:
                raise ShapeError(f"index {item} is out of range for an axis of size {d}")
        return TensorType(x.dtype, (*shape, *x.shape[len(items) :]))

    def receptive(self, a, field, jump, x):
        # The last axis is kept whole (items stop before it) and stays the last.
        last_kept = len(a["items"]) < x.rank and not any(isinstance(i, int) for i in a["items"])
        return (field, jump) if last_kept else None

    def onnx(self, g, a, node, x):
        sliced = [(i, it) for i, it in enumerate(a["items"]) if it != (None, None, None)]
        if not sliced:
            return x
        starts, ends, steps = [], [], []
        for _, it in sliced:
            if isinstance(it, int):
                starts.append(it)
                ends.append(it + 1 if it != -1 else _END)
                steps.append(1)
            else:
                start, stop, step = it
                starts.append(0 if start is None else start)
                ends.append(_END if stop is None else stop)
                steps.append(step or 1)
        axes = [i for i, _ in sliced]
        bounds = [g.shape(starts), g.shape(ends)]  # symbolic bounds are read at run time
        y = g.op("Slice", [x, *bounds, g.const(axes), g.const(steps)])
        dropped = [i for i, it in sliced if isinstance(it, int)]
        return g.op("Squeeze", [y, g.const(dropped)]) if dropped else y

    numpy_view = True

    def numpy(self, a, w, x):
        return x[tuple(it if isinstance(it, int) else slice(*it) for it in a["items"])]

    def torch_source(self, a, m, x, lit=literal):
        if not a["items"]:  # x[:, :]: the tensor itself
            return x
        return f"{x}[{', '.join(_item_source(it, lit) for it in a['items'])}]"


def _item_source(item, lit) -> str:
    """One index as Python; a symbolic bound is written by ``lit`` (as code that reads it
    off a tensor)."""
    if isinstance(item, int):
        return str(item)
    start, stop, step = (
        "" if v is None else lit(v, "bound") if isinstance(v, Sym) else str(v) for v in item
    )
    return f"{start}:{stop}" + (f":{step}" if step else "")


class Parts(Op):
    """The pieces of ``chunk``/``split`` along ``axis``; each result is a node with its
    ``index``. Subclasses give the pieces' sizes."""

    layout = "[N, ...]"

    def sizes(self, a, d: int) -> list[int]:
        raise NotImplementedError

    def _sizes(self, a, x: TensorType) -> tuple[int, list[int]]:
        axis = norm_axis(self.name, a["axis"], x.rank)
        if axis == 0:
            raise ShapeError(f"{self.name}: the batch axis cannot be split")
        d = x.shape[axis]
        if isinstance(d, Sym):
            raise ShapeError(f"{self.name} needs a known size along axis {axis}, got {d}")
        return axis, self.sizes(a, d)

    def results(self, a, x: TensorType) -> int:
        return len(self._sizes(a, x)[1])

    def bounds(self, a, x: TensorType) -> tuple[int, int, int]:
        """(axis, start, stop) of the result ``a["index"]``."""
        axis, sizes = self._sizes(a, x)
        k = a["index"]
        if k is None or not 0 <= k < len(sizes):
            raise ShapeError(f"{self.name} gives {len(sizes)} results; index {k} is not one")
        return axis, sum(sizes[:k]), sum(sizes[: k + 1])

    def infer(self, ctx, a, x):
        axis, start, stop = self.bounds(a, x)
        shape = list(x.shape)
        shape[axis] = stop - start
        return TensorType(x.dtype, tuple(shape))

    def receptive(self, a, field, jump, x):
        return None if a["axis"] % x.rank == x.rank - 1 else (field, jump)

    def onnx(self, g, a, node, x):
        axis, start, stop = self.bounds(a, g.type(x))
        return g.op("Slice", [x, g.const([start]), g.const([stop]), g.const([axis])])

    numpy_view = True

    def numpy(self, a, w, x):
        axis, start, stop = self.bounds(a, _type(x))
        return x[(slice(None),) * axis + (slice(start, stop),)]


def _type(x) -> TensorType:
    return TensorType(x.dtype.name, tuple(x.shape))


@register
class Chunk(Parts):
    """``torch.chunk(x, n, dim=axis)``: ``n`` pieces of ``ceil(size / n)`` along ``axis``
    (the last may be smaller, and there may be fewer than ``n``)."""

    name = "chunk"
    signature = (
        Arg("n", integer(1), doc="how many pieces (at most)"),
        Arg("axis", integer(), 1),
        Arg("index", RESULT, None, "which result (default: all of them)"),
    )

    def sizes(self, a, d):
        size = -(-d // a["n"])
        return [min(size, d - s) for s in range(0, d, size)] if d else [0]

    def torch_source(self, a, m, x, lit=literal):
        return f"torch.chunk({x}, {a['n']}, dim={a['axis']})[{a['index']}]"


def _sizes(v):
    if _is_int(v) and v >= 1:
        return v
    if isinstance(v, (tuple, list)) and v and all(_is_int(s) and s >= 0 for s in v):
        return tuple(v)
    return _BAD


@register
class Split(Parts):
    """``torch.split(x, sizes, dim=axis)``: pieces of the given sizes (they sum to the
    axis), or of one size each (the last may be smaller)."""

    name = "split"
    signature = (
        Arg("sizes", Kind("a positive integer or a tuple of sizes", _sizes)),
        Arg("axis", integer(), 1),
        Arg("index", RESULT, None, "which result (default: all of them)"),
    )

    def sizes(self, a, d):
        sizes = a["sizes"]
        if isinstance(sizes, int):
            return [min(sizes, d - s) for s in range(0, d, sizes)] if d else [0]
        if sum(sizes) != d:
            raise ShapeError(f"split: sizes {list(sizes)} sum to {sum(sizes)}, not {d}")
        return list(sizes)

    def torch_source(self, a, m, x, lit=literal):
        return f"torch.split({x}, {a['sizes']!r}, dim={a['axis']})[{a['index']}]"

"""Pooling and resampling: max/avg pooling (1-d to 3-d), adaptive and global pooling,
upsample."""

from __future__ import annotations

import functools
import itertools

from ..errors import ShapeError
from ..ir.graph import TensorType
from ..ir.symbolic import Sym, ceildiv
from ..lazy import numpy as np
from .base import BOOL, Arg, ArgError, Op, choice, given, integer, ints, literal, register, short
from .conv import LAYOUT, SPATIAL, channels_last, out_size, windowed


class PoolNd(Op):
    """Max or average pooling, exactly as ``nn.MaxPool1d/2d/3d`` and ``nn.AvgPool1d/2d/3d``.

    ``L' = (L + 2*padding - kernel) // stride + 1`` (``ceil_mode`` rounds up, but a window
    may not start inside the right padding). Average pooling counts padding zeros, as
    PyTorch's default ``count_include_pad=True`` does.
    """

    def __init__(self, kind: str, rank: int):
        self.kind, self.rank = kind, rank
        self.name = f"{kind}pool{rank}d"
        self.layout = LAYOUT[rank]
        self.signature = (
            Arg("kernel", ints(rank, 1)),
            Arg("stride", ints(rank, 1), None, "defaults to the kernel"),
            Arg("padding", ints(rank, 0), 0),
            Arg("ceil_mode", BOOL, False),
        )

    lengths = "spatial"

    def receptive(self, a, field, jump, *xs):
        return windowed(a, field, jump)

    def normalize(self, a):
        if a["stride"] is None:
            a["stride"] = a["kernel"]
        for k, p in zip(a["kernel"], a["padding"]):
            if 2 * p > k:
                raise ArgError(f"padding: must be at most half the kernel ({k}), got {p}")
        return a

    def infer(self, ctx, a, x):
        self.expect_rank(x, self.rank + 2)
        self.expect_float(x)
        spatial = []
        for what, n, k, s, p in zip(
            SPATIAL[self.rank], x.shape[2:], a["kernel"], a["stride"], a["padding"]
        ):
            if not a["ceil_mode"]:
                spatial.append(out_size(self.name, what, n, k, s, p, p, 1))
                continue
            out = ceildiv(n + 2 * p - k, s) + 1
            if isinstance(out, Sym):
                if s + p > k:  # only then can PyTorch's correction below apply
                    raise ShapeError(
                        f"{self.name}: ceil_mode with stride + padding > kernel needs a "
                        f"known {what}, got {n}"
                    )
            else:
                out = _ceil_out(n, k, s, p)
                if out <= 0:
                    raise ShapeError(
                        f"{self.name}: output {what} ceil(({n} + 2*{p} - {k}) / {s}) + 1 = "
                        f"{out} is not positive: the kernel {k} does not fit in the padded "
                        f"input ({n} + {2 * p})"
                    )
            spatial.append(out)
        return TensorType(x.dtype, (*x.shape[:2], *spatial))

    def torch_source(self, a, m, x, lit=literal):
        args = [x, lit(short(a["kernel"]), "kernel_size")]
        if a["stride"] != a["kernel"]:
            args.append(f"stride={lit(short(a['stride']), 'stride')}")
        if any(a["padding"]):
            args.append(f"padding={lit(short(a['padding']), 'padding')}")
        if a["ceil_mode"]:
            args.append("ceil_mode=True")
        return f"F.{self.kind}_pool{self.rank}d({', '.join(args)})"

    def onnx(self, g, a, node, x):
        attrs = {"count_include_pad": 1} if self.kind == "avg" else {}  # as PyTorch's default
        y = g.op(
            "MaxPool" if self.kind == "max" else "AveragePool",
            [x],
            kernel_shape=a["kernel"],
            strides=a["stride"],
            pads=a["padding"] * 2,
            ceil_mode=int(a["ceil_mode"]),
            **attrs,
        )
        if not a["ceil_mode"]:
            return y
        # PyTorch drops a last window that would start in the right padding; onnxruntime
        # keeps it. The front end's (known) sizes are PyTorch's: cut the extra window off.
        # (With a symbolic size the front end admits only pools where this cannot happen.)
        axes, ends = [], []
        dims = zip(g.type(x).shape[2:], node.type.shape[2:], a["kernel"], a["stride"], a["padding"])
        for axis, (n, out, k, s, p) in enumerate(dims, 2):
            if isinstance(n, int) and -(-(n + 2 * p - k) // s) + 1 > out:
                axes.append(axis)
                ends.append(out)
        if not axes:
            return y
        return g.op("Slice", [y, g.const([0] * len(axes)), g.const(ends), g.const(axes)])

    def numpy(self, a, w, x):
        size, k, s = x.shape[2:], a["kernel"], a["stride"]
        out = []
        for n, ki, si, pi in zip(size, k, s, a["padding"]):
            out.append(_ceil_out(n, ki, si, pi) if a["ceil_mode"] else (n + 2 * pi - ki) // si + 1)
        x = channels_last(x)
        fill = -np.inf if self.kind == "max" else 0  # padding: never the max, adds 0 to a sum
        y = np.full((x.shape[0], *out, x.shape[-1]), fill, x.dtype)
        reduce = np.maximum if self.kind == "max" else np.add
        for tap in itertools.product(*map(range, k)):  # one strided pass per kernel tap
            dst, src = [slice(None)], [slice(None)]
            for t, n, o, si, pi in zip(tap, size, out, s, a["padding"]):
                lo = max(0, -((t - pi) // si))  # the outputs whose tap t falls in the input
                hi = min(o, (n - 1 + pi - t) // si + 1)
                dst.append(slice(lo, hi))
                src.append(slice(lo * si - pi + t, max(hi * si - pi + t, 0), si))
            if all(d.start < d.stop for d in dst[1:]):
                part = y[tuple(dst)]
                reduce(part, x[tuple(src)], out=part)
        if self.kind == "avg":
            # PyTorch divides by the window clipped to the padded input (ceil_mode windows
            # may reach past it).
            counts = [
                np.minimum(np.arange(o) * si - pi + ki, n + pi) - (np.arange(o) * si - pi)
                for o, si, pi, ki, n in zip(out, s, a["padding"], k, size)
            ]
            y /= functools.reduce(np.multiply.outer, counts)[..., None].astype(y.dtype)
        return np.moveaxis(y, -1, 1)


def _ceil_out(n: int, k: int, s: int, p: int) -> int:
    """The output length of a ceil_mode pool over a known length ``n``, as PyTorch's:
    ceil((n + 2*p - k) / s) + 1, less one when the last window would start in the right
    padding."""
    out = -(-(n + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


class AdaptivePoolNd(Op):
    """Adaptive pooling, exactly as ``nn.AdaptiveAvgPool1d/2d`` and ``nn.AdaptiveMaxPool2d``:
    the max or mean of each of ``size`` bins per spatial axis.

    Bin ``i`` of a length ``n`` spans ``floor(i*n/s)`` to ``ceil((i+1)*n/s)``: bins overlap
    or differ in size where ``s`` does not divide ``n``.
    """

    lengths = "spatial"

    def __init__(self, kind: str, rank: int):
        self.kind, self.rank = kind, rank
        self.name = f"adaptive_{kind}pool{rank}d"
        self.layout = LAYOUT[rank]
        self.signature = (Arg("size", ints(rank, 1), doc="bins per spatial axis"),)

    def infer(self, ctx, a, x):
        self.expect_rank(x, self.rank + 2)
        self.expect_float(x)
        return TensorType(x.dtype, (*x.shape[:2], *a["size"]))

    def torch_source(self, a, m, x, lit=literal):
        size = lit(short(a["size"]), "output_size")
        return f"F.adaptive_{self.kind}_pool{self.rank}d({x}, {size})"

    def onnx(self, g, a, node, x):
        if all(s == 1 for s in a["size"]):
            return g.op("GlobalAveragePool" if self.kind == "avg" else "GlobalMaxPool", [x])
        y = x
        if self.kind == "avg":
            # Pooling is linear: one averaging matrix per axis, y = A_h @ x @ A_w^T.
            y = g.op("MatMul", [y, _bins(g, x, -1, a["size"][-1], transpose=True)])
            if self.rank == 2:
                y = g.op("MatMul", [_bins(g, x, 2, a["size"][0]), y])
            return y
        # Max is separable too: per axis, each bin sliced out and reduced, the bins joined.
        for axis, s in enumerate(a["size"], 2):
            parts = []
            for i in range(s):
                lo, hi = _bin_bounds(g, x, axis, s, np.array([i]))
                part = g.op("Slice", [y, lo, hi, g.const([axis])])
                if g.opset >= 18:  # the axes became an input in opset 18
                    parts.append(g.op("ReduceMax", [part, g.const([axis])], keepdims=1))
                else:
                    parts.append(g.op("ReduceMax", [part], axes=[axis], keepdims=1))
            y = g.op("Concat", parts, axis=axis) if s > 1 else parts[0]
        return y

    def numpy(self, a, w, x):
        if self.kind == "avg":
            y = np.ascontiguousarray(x) @ _bin_matrix(x.shape[-1], a["size"][-1]).T
            return _bin_matrix(x.shape[2], a["size"][0]) @ y if self.rank == 2 else y
        for axis, s in enumerate(a["size"], 2):
            bins = (_adaptive_bin(i, x.shape[axis], s) for i in range(s))
            x = np.stack([np.take(x, range(lo, hi), axis).max(axis) for lo, hi in bins], axis)
        return x


def _adaptive_bin(i: int, n: int, s: int) -> tuple[int, int]:
    """Bin ``i`` of PyTorch's adaptive pooling of a length ``n`` into ``s`` bins, as
    ``[start, end)``: from floor(i*n/s) to ceil((i+1)*n/s). Bins overlap or differ in size
    where s does not divide n. ``i`` may be an index array."""
    return i * n // s, -(-(i + 1) * n // s)


@functools.lru_cache(maxsize=64)
def _bin_matrix(n: int, s: int, dtype: type | str = "float32") -> np.ndarray:
    """The [s, n] matrix whose row i averages adaptive bin i (do not write into it: it is
    cached)."""
    m = np.zeros((s, n), dtype)
    for i in range(s):
        lo, hi = _adaptive_bin(i, n, s)
        m[i, lo:hi] = 1 / (hi - lo)
    return m


def _bin_bounds(g, x: str, axis: int, s: int, i: np.ndarray) -> tuple[str, str]:
    """The ``[start, end)`` of adaptive bins ``i`` (an index array) of ``axis`` of ``x`` as
    ONNX int64 values of ``i``'s shape: constants when the axis is known, else computed in
    the graph with ``_adaptive_bin``'s formula."""
    n = g.type(x).shape[axis]
    if isinstance(n, int):
        return tuple(map(g.const, _adaptive_bin(i, n, s)))
    n = g.dim(x, axis, scalar=True)
    lo = g.op("Div", [g.op("Mul", [g.const(i), n]), g.const(s)])  # int Div: floor when >= 0
    end = g.op("Add", [g.op("Mul", [g.const(i + 1), n]), g.const(s - 1)])
    return lo, g.op("Div", [end, g.const(s)])


def _bins(g, x: str, axis: int, s: int, transpose: bool = False) -> str:
    """``_bin_matrix`` for ``axis`` of ``x`` as an ONNX value; built in the graph when the
    axis is symbolic."""
    n = g.type(x).shape[axis]
    if isinstance(n, int):
        m = _bin_matrix(n, s, np.float64)  # g.const rounds it to the network's float type
        return g.const(m.T if transpose else m)
    lo, hi = _bin_bounds(g, x, axis, s, np.arange(s)[:, None])
    cols = g.op("Range", [g.const(0), g.dim(x, axis, scalar=True), g.const(1)])
    inside = g.op("And", [g.op("GreaterOrEqual", [cols, lo]), g.op("Less", [cols, hi])])
    ones = g.op("Where", [inside, g.const(1.0), g.const(0.0)])
    m = g.op("Div", [ones, g.op("ReduceSum", [ones, g.const([1])], keepdims=1)])
    return g.op("Transpose", [m], perm=(1, 0)) if transpose else m


class GlobalPool(Op):
    """Mean or max over every axis after the channels: ``[N, C, ...] -> [N, C]``."""

    lengths = "spatial"

    layout = "[N, C, ...]"

    def __init__(self, kind: str):
        self.kind = kind
        self.name = f"global_{kind}pool"

    def infer(self, ctx, a, x):
        if x.rank < 3:
            raise ShapeError(f"{self.name} expects an input of rank 3 or more [N, C, ...], got {x}")
        self.expect_float(x)
        return TensorType(x.dtype, x.shape[:2])

    def torch_source(self, a, m, x, lit=literal):
        return f"{x}.flatten(2).{'mean' if self.kind == 'avg' else 'amax'}(2)"

    def onnx(self, g, a, node, x):
        pooled = g.op("GlobalAveragePool" if self.kind == "avg" else "GlobalMaxPool", [x])
        return g.op("Flatten", [pooled], axis=1)  # [N, C, 1, ...] -> [N, C]

    def numpy(self, a, w, x):
        axes = tuple(range(2, x.ndim))
        return x.mean(axis=axes) if self.kind == "avg" else x.max(axis=axes)


class Upsample(Op):
    """``nn.Upsample(scale_factor=scale, mode=mode)`` on every spatial axis.

    ``mode`` is ``"nearest"`` or ``"linear"`` (linear over 1-D signals, bilinear over
    images; ``"bilinear"`` is accepted for images), with ``align_corners=False``.
    """

    lengths = "spatial"

    name = "upsample"
    layout = "[N, C, L] or [N, C, H, W]"
    signature = (
        Arg("scale", integer(1), 2, "an integer factor, the same on every axis"),
        Arg("mode", choice("nearest", "linear", "bilinear"), "nearest"),
    )

    def infer(self, ctx, a, x):
        self.expect_rank(x, 3, 4)
        self.expect_float(x)
        if a["mode"] == "bilinear" and x.rank != 4:
            raise ShapeError('upsample: mode "bilinear" needs an image [N, C, H, W]; use "linear"')
        return TensorType(x.dtype, (*x.shape[:2], *(d * a["scale"] for d in x.shape[2:])))

    def torch_layer(self, a, params, x):
        mode = "bilinear" if a["mode"] == "linear" and x.rank == 4 else a["mode"]
        return "Upsample", {}, given({"mode": "nearest"}, scale_factor=a["scale"], mode=mode)

    def onnx(self, g, a, node, x):
        spatial = g.type(x).rank - 2
        scales = g.const([1.0, 1.0] + [float(a["scale"])] * spatial, dtype="float32")
        if a["mode"] == "nearest":  # PyTorch's nearest: source index floor(i / scale)
            attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
        else:  # align_corners=False
            attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
        return g.op("Resize", [x, "", scales], **attrs)

    def numpy(self, a, w, x):
        s = a["scale"]
        for axis in range(2, x.ndim):
            n = x.shape[axis]
            if a["mode"] == "nearest":  # source index floor(i / scale)
                x = np.repeat(x, s, axis)
                continue
            # align_corners=False: source coordinate (i + 0.5) / scale - 0.5, clamped at 0
            src = np.maximum((np.arange(n * s) + 0.5) / s - 0.5, 0)
            lo = np.minimum(src.astype(np.intp), n - 1)
            hi = np.minimum(lo + 1, n - 1)
            lam = (src - lo).astype(x.dtype).reshape(-1, *(1,) * (x.ndim - 1 - axis))
            x = np.take(x, lo, axis) * (1 - lam) + np.take(x, hi, axis) * lam
        return x


for _kind in ("max", "avg"):
    for _rank in (1, 2, 3):
        register(PoolNd(_kind, _rank))
    register(GlobalPool(_kind))
for _kind, _rank in (("avg", 1), ("avg", 2), ("max", 2)):
    register(AdaptivePoolNd(_kind, _rank))
register(Upsample)

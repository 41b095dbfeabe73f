"""Pooling and resampling: max/avg pooling, adaptive and global pooling, upsample."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import TensorType
from ..symbolic import Sym, ceildiv
from .base import BOOL, Arg, ArgError, Op, choice, integer, ints, register
from .conv import LAYOUT, SPATIAL, out_size


class PoolNd(Op):
    """Max or average pooling, exactly as ``nn.MaxPool1d/2d`` and ``nn.AvgPool1d/2d``.

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
                if (out - 1) * s >= n + p:
                    out -= 1  # the last window would start in the padding (PyTorch's rule)
                if out <= 0:
                    raise ShapeError(
                        f"{self.name}: output {what} ceil(({n} + 2*{p} - {k}) / {s}) + 1 = "
                        f"{out} is not positive: the kernel {k} does not fit in the padded "
                        f"input ({n} + {2 * p})"
                    )
            spatial.append(out)
        return TensorType(x.dtype, (*x.shape[:2], *spatial))


class AdaptiveAvgPool2d(Op):
    """``nn.AdaptiveAvgPool2d(size)``: ``[N, C, H, W] -> [N, C, s, s]``."""

    name = "adaptive_avgpool2d"
    layout = LAYOUT[2]
    signature = (Arg("size", ints(2, 1)),)

    def infer(self, ctx, a, x):
        self.expect_rank(x, 4)
        self.expect_float(x)
        return TensorType(x.dtype, (*x.shape[:2], *a["size"]))


class GlobalPool(Op):
    """Mean or max over every axis after the channels: ``[N, C, ...] -> [N, C]``."""

    layout = "[N, C, ...]"

    def __init__(self, kind: str):
        self.kind = kind
        self.name = f"global_{kind}pool"

    def infer(self, ctx, a, x):
        if x.rank < 3:
            raise ShapeError(f"{self.name} expects an input of rank 3 or more [N, C, ...], got {x}")
        self.expect_float(x)
        return TensorType(x.dtype, x.shape[:2])


class Upsample(Op):
    """``nn.Upsample(scale_factor=scale, mode=mode)`` on every spatial axis.

    ``mode`` is ``"nearest"`` or ``"linear"`` (linear over 1-D signals, bilinear over
    images; ``"bilinear"`` is accepted for images), with ``align_corners=False``.
    """

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


for _kind in ("max", "avg"):
    for _rank in (1, 2):
        register(PoolNd(_kind, _rank))
    register(GlobalPool(_kind))
register(AdaptiveAvgPool2d)
register(Upsample)

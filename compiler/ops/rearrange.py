"""Ops that rearrange channels: channel_shuffle, and pixel_shuffle (channels into space)."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.graph import TensorType
from ..ir.symbolic import fmt_shape
from .base import Arg, Op, integer, literal, register


@register
class ChannelShuffle(Op):
    """``nn.ChannelShuffle(groups)``: the channels (axis 1) as a ``[groups, C/groups]``
    grid, read out by columns (ShuffleNet)."""

    name = "channel_shuffle"
    layout = "[N, C, ...]"
    lengths = "spatial"
    pointwise = True
    signature = (Arg("groups", integer(1), doc="divides the channels"),)

    def infer(self, ctx, a, x):
        if x.rank < 3:
            raise ShapeError(
                f"{self.name} expects a rank-3 or higher input {self.layout}, "
                f"got {fmt_shape(x.shape)}"
            )
        c = self.known(x.shape[1], "channel count (axis 1)")
        if c % a["groups"]:
            raise ShapeError(f"{self.name}: channels {c} are not divisible by groups={a['groups']}")
        return x

    def torch_source(self, a, m, x, lit=literal):
        return f"F.channel_shuffle({x}, {lit(a['groups'], 'groups')})"

    def onnx(self, g, a, node, x):
        groups = a["groups"]
        grid = g.op("Reshape", [x, g.const([0, groups, g.type(x).shape[1] // groups, -1])])
        shuffled = g.op("Transpose", [grid], perm=(0, 2, 1, 3))
        return g.op("Reshape", [shuffled, g.op("Shape", [x])])

    def numpy(self, a, w, x):
        n, c, *rest = x.shape
        grid = x.reshape(n, a["groups"], c // a["groups"], *rest)
        return grid.swapaxes(1, 2).reshape(x.shape)


@register
class PixelShuffle(Op):
    """``nn.PixelShuffle(factor)``: ``[N, C*r*r, H, W] -> [N, C, H*r, W*r]``, each channel's
    ``r*r`` block of channels spread over an ``r x r`` block of pixels (``r = factor``)."""

    name = "pixel_shuffle"
    layout = "[N, C, H, W]"
    lengths = "spatial"
    signature = (Arg("factor", integer(1), doc="the upscale factor r"),)

    def infer(self, ctx, a, x):
        self.expect_rank(x, 4)
        n, c, h, w = x.shape
        r = a["factor"]
        if self.known(c, "channel count (axis 1)") % (r * r):
            raise ShapeError(f"{self.name}: channels {c} are not divisible by factor^2 = {r * r}")
        return TensorType(x.dtype, (n, c // (r * r), h * r, w * r))

    def torch_source(self, a, m, x, lit=literal):
        return f"F.pixel_shuffle({x}, {lit(a['factor'], 'upscale_factor')})"

    def onnx(self, g, a, node, x):
        # DepthToSpace's "CRD" order is PyTorch's: channel, then the block's row and column.
        return g.op("DepthToSpace", [x], blocksize=a["factor"], mode="CRD")

    def numpy(self, a, w, x):
        n, c, h, wd = x.shape
        r = a["factor"]
        blocks = x.reshape(n, c // (r * r), r, r, h, wd).transpose(0, 1, 4, 2, 5, 3)
        return blocks.reshape(n, c // (r * r), h * r, wd * r)

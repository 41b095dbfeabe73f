"""Normalisation: batchnorm over the channel axis, layernorm over the last axis."""

from __future__ import annotations

from ..ir import Param
from .base import Arg, Op, real, register


@register
class BatchNorm(Op):
    """``nn.BatchNorm1d/2d`` over axis 1 of ``[N, C]``, ``[N, C, L]`` or ``[N, C, H, W]``.

    Inference uses the running statistics: ``(x - mean) / sqrt(var + eps) * weight + bias``.
    """

    name = "batchnorm"
    layout = "[N, C], [N, C, L] or [N, C, H, W]"
    signature = (Arg("eps", real(0, lo_open=True), 1e-5), Arg("momentum", real(0, 1), 0.1))

    def infer(self, ctx, a, x):
        self.expect_rank(x, 2, 3, 4)
        self.expect_float(x)
        self.known(x.shape[1], "channel count (axis 1)")
        return x

    def params(self, a, x):
        c = (x.shape[1],)
        return {
            "weight": Param(c, "scale"),
            "bias": Param(c, "shift"),
            "running_mean": Param(c, "stat_mean", buffer=True),
            "running_var": Param(c, "stat_var", buffer=True),
            "num_batches_tracked": Param((), "stat_count", buffer=True, dtype="int64"),
        }


@register
class LayerNorm(Op):
    """``nn.LayerNorm(D)``: normalise the last axis, then scale and shift."""

    name = "layernorm"
    layout = "[..., D]"
    signature = (Arg("eps", real(0, lo_open=True), 1e-5),)

    def infer(self, ctx, a, x):
        self.expect_float(x)
        self.known(x.shape[-1], "feature size (last axis)")
        return x

    def params(self, a, x):
        d = (x.shape[-1],)
        return {"weight": Param(d, "scale"), "bias": Param(d, "shift")}

"""Normalisation: batchnorm over the channel axis, layernorm over the last axis."""

from __future__ import annotations

from ..ir.graph import Param
from ..lazy import numpy as np
from .base import Arg, Op, given, real, register


@register
class BatchNorm(Op):
    """``nn.BatchNorm1d/2d`` over axis 1 of ``[N, C]``, ``[N, C, L]`` or ``[N, C, H, W]``.

    Inference uses the running statistics: ``(x - mean) / sqrt(var + eps) * weight + bias``.
    """
    pointwise = True

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

    def torch_layer(self, a, params, x):
        return (
            f"BatchNorm{1 if x.rank < 4 else 2}d",
            {"num_features": x.shape[1]},
            given({"eps": 1e-5, "momentum": 0.1}, eps=a["eps"], momentum=a["momentum"]),
        )

    def onnx(self, g, a, node, x):
        stats = [g.param(k) for k in ("weight", "bias", "running_mean", "running_var")]
        return g.op("BatchNormalization", [x, *stats], epsilon=a["eps"])

    numpy_inplace = True

    def numpy_affine(self, a, w):
        scale = w["weight"] / np.sqrt(w["running_var"].astype(np.float64) + a["eps"])
        return scale, w["bias"] - w["running_mean"] * scale

    def numpy_prepare(self, a, w):
        scale, shift = self.numpy_affine(a, w)
        return {"scale": scale.astype(np.float32), "shift": shift.astype(np.float32)}

    def numpy(self, a, w, x, out=None):
        shape = (-1, *(1,) * (x.ndim - 2))
        y = np.multiply(x, w["scale"].reshape(shape), out=out)
        y += w["shift"].reshape(shape)
        return y


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

    def torch_layer(self, a, params, x):
        return "LayerNorm", {"normalized_shape": x.shape[-1]}, given({"eps": 1e-5}, eps=a["eps"])

    def onnx(self, g, a, node, x):
        return g.op(
            "LayerNormalization", [x, g.param("weight"), g.param("bias")], axis=-1, epsilon=a["eps"]
        )

    numpy_inplace = True

    def numpy(self, a, w, x, out=None):
        y = np.subtract(x, x.mean(axis=-1, keepdims=True), out=out)
        var = np.einsum("...i,...i->...", y, y)[..., None] / y.shape[-1]
        y *= 1 / np.sqrt(var + a["eps"])
        y *= w["weight"]
        y += w["bias"]
        return y

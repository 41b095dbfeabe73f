"""Normalisation: batchnorm, groupnorm and instancenorm over the channel axis, layernorm and
rmsnorm over the last axis."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.graph import Param
from ..ir.symbolic import fmt_shape
from ..lazy import numpy as np
from .base import BOOL, Arg, Op, given, integer, real, register


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


def _per_channel(v, rank: int):
    """A [C] vector shaped to broadcast over axis 1 of a rank-``rank`` array."""
    return v.reshape(-1, *(1,) * (rank - 2))


@register
class GroupNorm(Op):
    """``nn.GroupNorm(groups, C)``: the channels (axis 1) in ``groups`` groups, each
    normalised over its channels and every axis after them, then scaled and shifted per
    channel (``affine``)."""

    name = "groupnorm"
    layout = "[N, C, ...]"
    lengths = "spatial"
    signature = (
        Arg("groups", integer(1), doc="divides the channels"),
        Arg("eps", real(0, lo_open=True), 1e-5),
        Arg("affine", BOOL, True, "learnable per-channel weight and bias"),
    )

    def groups(self, a, c: int) -> int:
        """How many groups the ``c`` channels make."""
        return a["groups"]

    def infer(self, ctx, a, x):
        if x.rank < 2:
            raise ShapeError(
                f"{self.name} expects a rank-2 or higher input {self.layout}, "
                f"got {fmt_shape(x.shape)}"
            )
        self.expect_float(x)
        c = self.known(x.shape[1], "channel count (axis 1)")
        if c % self.groups(a, c):
            raise ShapeError(f"{self.name}: channels {c} are not divisible by groups={a['groups']}")
        return x

    def params(self, a, x):
        if not a["affine"]:
            return {}
        c = (x.shape[1],)
        return {"weight": Param(c, "scale"), "bias": Param(c, "shift")}

    def torch_layer(self, a, params, x):
        return (
            "GroupNorm",
            {"num_groups": a["groups"], "num_channels": x.shape[1]},
            given({"eps": 1e-5, "affine": True}, eps=a["eps"], affine=a["affine"]),
        )

    def onnx(self, g, a, node, x):
        if g.opset >= 21:  # per-channel scale and bias; opset 18's are per group, unlike torch
            scale, shift = self._affine(g, a, g.type(x).shape[1])
            return g.op(
                "GroupNormalization", [x, scale, shift], num_groups=a["groups"], epsilon=a["eps"]
            )
        # Each group as one channel of [N, G, rest]: InstanceNormalization normalises it.
        grouped = g.op("Reshape", [x, g.const([0, a["groups"], -1])])
        ones, zeros = g.const(np.ones(a["groups"])), g.const(np.zeros(a["groups"]))
        y = g.op("InstanceNormalization", [grouped, ones, zeros], epsilon=a["eps"])
        y = g.op("Reshape", [y, g.op("Shape", [x])])
        if not a["affine"]:
            return y
        rank = g.type(x).rank
        scale, shift = g.param("weight"), g.param("bias")
        if rank > 2:  # [C] -> [C, 1, ...], to broadcast over axis 1
            axes = g.const(list(range(1, rank - 1)))
            scale, shift = (g.op("Unsqueeze", [v, axes]) for v in (scale, shift))
        return g.op("Add", [g.op("Mul", [y, scale]), shift])

    def _affine(self, g, a, c: int) -> tuple[str, str]:
        """The ONNX scale and shift [C]: the parameters, or ones and zeros without them."""
        if a["affine"]:
            return g.param("weight"), g.param("bias")
        return g.const(np.ones(c)), g.const(np.zeros(c))

    def numpy(self, a, w, x):
        groups = x.reshape(x.shape[0], self.groups(a, x.shape[1]), -1)
        centred = groups - groups.mean(axis=-1, keepdims=True)
        var = np.einsum("...i,...i->...", centred, centred)[..., None] / centred.shape[-1]
        y = (centred / np.sqrt(var + a["eps"])).reshape(x.shape)
        if a["affine"]:
            y *= _per_channel(w["weight"], x.ndim)
            y += _per_channel(w["bias"], x.ndim)
        return y


@register
class InstanceNorm(GroupNorm):
    """``nn.InstanceNorm1d/2d/3d(C)``: each channel of each example normalised over its
    spatial axes (no running statistics), then scaled and shifted (``affine``)."""

    name = "instancenorm"
    layout = "[N, C, L], [N, C, H, W] or [N, C, D, H, W]"
    signature = (
        Arg("eps", real(0, lo_open=True), 1e-5),
        Arg("affine", BOOL, False, "learnable per-channel weight and bias"),
    )

    def groups(self, a, c: int) -> int:
        return c

    def infer(self, ctx, a, x):
        self.expect_rank(x, 3, 4, 5)
        return super().infer(ctx, a, x)

    def torch_layer(self, a, params, x):
        return (
            f"InstanceNorm{x.rank - 2}d",
            {"num_features": x.shape[1]},
            given({"eps": 1e-5, "affine": False}, eps=a["eps"], affine=a["affine"]),
        )

    def onnx(self, g, a, node, x):
        scale, shift = self._affine(g, a, g.type(x).shape[1])
        return g.op("InstanceNormalization", [x, scale, shift], epsilon=a["eps"])


# torch.finfo(dtype).eps: RMSNorm's epsilon when none is given.
MACHINE_EPS = {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}


@register
class RMSNorm(Op):
    """``nn.RMSNorm(D)``: ``x / sqrt(mean(x^2) + eps) * weight`` over the last axis."""

    name = "rmsnorm"
    layout = "[..., D]"
    lengths = "sequence"
    signature = (Arg("eps", real(0, lo_open=True), None, "defaults to torch.finfo(dtype).eps"),)

    def infer(self, ctx, a, x):
        self.expect_float(x)
        self.known(x.shape[-1], "feature size (last axis)")
        return x

    def params(self, a, x):
        return {"weight": Param((x.shape[-1],), "scale")}

    def torch_layer(self, a, params, x):
        return "RMSNorm", {"normalized_shape": x.shape[-1]}, given({"eps": None}, eps=a["eps"])

    def onnx(self, g, a, node, x):
        eps = a["eps"] if a["eps"] is not None else MACHINE_EPS[node.type.dtype]
        if g.opset >= 23:  # RMSNormalization is new in opset 23
            return g.op("RMSNormalization", [x, g.param("weight")], axis=-1, epsilon=eps)
        square = g.op("Mul", [x, x])
        if g.opset >= 18:  # the axes became an input in opset 18
            mean = g.op("ReduceMean", [square, g.const([-1])], keepdims=1)
        else:
            mean = g.op("ReduceMean", [square], axes=[-1], keepdims=1)
        rms = g.op("Sqrt", [g.op("Add", [mean, g.const(eps)])])
        return g.op("Mul", [g.op("Div", [x, rms]), g.param("weight")])

    def numpy(self, a, w, x):
        eps = a["eps"] if a["eps"] is not None else np.finfo(x.dtype).eps
        mean = np.einsum("...i,...i->...", x, x)[..., None] / x.shape[-1]
        return x / np.sqrt(mean + x.dtype.type(eps)) * w["weight"]

"""Dense layers, embeddings, positional encoding and dropout."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import INT_DTYPES, Param, TensorType
from .base import BOOL, INIT_ARGS, Arg, Op, integer, per_example, real, register


@register
class Dense(Op):
    """``nn.Linear(D, units)`` over the last axis: ``[..., D] -> [..., units]``."""

    name = "dense"
    layout = "[..., D]"
    signature = (Arg("units", integer(1)), Arg("bias", BOOL, True), *INIT_ARGS)

    def infer(self, ctx, a, x):
        if x.rank < 2:
            raise ShapeError(f"dense expects an input of rank 2 or more [N, ..., D], got {x}")
        self.expect_float(x)
        self.known(x.shape[-1], "input size (last axis)")
        return TensorType(x.dtype, (*x.shape[:-1], a["units"]))

    def params(self, a, x):
        p = {"weight": Param((a["units"], x.shape[-1]), "weight", init=a["init"])}
        if a["bias"]:
            p["bias"] = Param((a["units"],), "bias", init=a["bias_init"])
        return p

    def macs(self, a, y, x):
        return per_example(y.shape) * x.shape[-1]


@register
class Embedding(Op):
    """``nn.Embedding(vocab, dim)``: integer ids ``[N, T] -> [N, T, dim]``."""

    name = "embedding"
    layout = "int [N, T]"
    signature = (
        Arg("vocab", integer(1)),
        Arg("dim", integer(1)),
        Arg("init", INIT_ARGS[0].kind, None, "initialiser of the table"),
    )

    def infer(self, ctx, a, x):
        if x.dtype not in INT_DTYPES:
            raise ShapeError(f"embedding expects integer token ids (int64 or int32), got {x.dtype}")
        return TensorType("float32", (*x.shape, a["dim"]))

    def params(self, a, x):
        return {"weight": Param((a["vocab"], a["dim"]), "table", init=a["init"])}


@register
class PositionalEncoding(Op):
    """Adds the sinusoidal table ``PE[t, 2i] = sin(t / 10000^(2i/D))``, ``PE[t, 2i+1] =
    cos(t / 10000^(2i/D))`` to ``[N, T, D]``; no parameters. ``T`` may not exceed
    ``max_len``."""

    name = "positional_encoding"
    layout = "[N, T, D]"
    signature = (Arg("max_len", integer(1), 5000),)

    def infer(self, ctx, a, x):
        self.expect_rank(x, 3)
        self.expect_float(x)
        self.known(x.shape[2], "model width (last axis)")
        t = x.shape[1]
        if isinstance(t, int) and t > a["max_len"]:
            raise ShapeError(
                f"positional_encoding: sequence length {t} exceeds max_len={a['max_len']}"
            )
        return x


@register
class Dropout(Op):
    """``nn.Dropout(p)``: zeroes elements with probability ``p`` in training, identity at
    inference."""

    name = "dropout"
    layout = "any"
    signature = (Arg("p", real(0, 1, hi_open=True), 0.5),)

    def infer(self, ctx, a, x):
        self.expect_float(x)
        return x

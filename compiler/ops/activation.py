"""Elementwise activations and (log-)softmax."""

from __future__ import annotations

from .base import Arg, Op, choice, integer, real, register
from .shape import norm_axis


class Elementwise(Op):
    """An elementwise function; the output has the input's type."""

    def __init__(self, name: str, doc: str, *signature: Arg):
        self.name, self.__doc__, self.signature = name, doc, signature

    def infer(self, ctx, a, x):
        if self.name != "identity":  # identity passes any tensor, as nn.Identity does
            self.expect_float(x)
        return x


class Softmax(Op):
    """``softmax`` / ``log_softmax`` along ``axis`` (numerically stable)."""

    signature = (Arg("axis", integer(), -1),)

    def __init__(self, name: str):
        self.name = name

    def infer(self, ctx, a, x):
        self.expect_float(x)
        norm_axis(self.name, a["axis"], x.rank)
        return x


for _op in (
    Elementwise("relu", "max(x, 0)"),
    Elementwise("relu6", "min(max(x, 0), 6)"),
    Elementwise(
        "gelu",
        'x * Phi(x), the exact (erf) form unless approximate="tanh"',
        Arg("approximate", choice("none", "tanh"), "none"),
    ),
    Elementwise("silu", "x * sigmoid(x)"),
    Elementwise("sigmoid", "1 / (1 + exp(-x))"),
    Elementwise("tanh", "tanh(x)"),
    Elementwise("identity", "x"),
    Elementwise("leaky_relu", "x if x > 0 else slope * x", Arg("slope", real(), 0.01)),
    Elementwise("elu", "x if x > 0 else alpha * (exp(x) - 1)", Arg("alpha", real(), 1.0)),
    Softmax("softmax"),
    Softmax("log_softmax"),
):
    register(_op)

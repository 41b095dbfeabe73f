"""Elementwise activations and (log-)softmax."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..lazy import numpy as np
from .base import Arg, Op, choice, integer, literal, real, register
from .shape import norm_axis


class Elementwise(Op):
    """An elementwise function; the output has the input's type. One record per op: its
    NumPy kernel ``numpy(attrs, x, out)`` (``out`` is None or ``x`` itself), its torch
    function as emitted source names it (``torch``; None: the input itself) with the torch
    keyword of each argument whose name differs (``torch_keywords``), and its ONNX lowering
    ``onnx(g, attrs, x)``."""

    pointwise = True
    numpy_inplace = True

    def __init__(
        self,
        name: str,
        doc: str,
        *signature: Arg,
        numpy: Callable,
        torch: str | None,
        onnx: Callable,
        torch_keywords: Mapping[str, str] | None = None,
    ):
        self.name, self.__doc__, self.signature = name, doc, signature
        self._numpy, self._torch, self._onnx = numpy, torch, onnx
        self._keywords = {a.name: a.name for a in signature} | dict(torch_keywords or {})

    def infer(self, ctx, a, x):
        if self.name != "identity":  # identity passes any tensor, as nn.Identity does
            self.expect_float(x)
        return x

    def onnx(self, g, a, node, x):
        return self._onnx(g, a, x)

    @property
    def numpy_view(self) -> bool:  # identity hands back its input
        return self._torch is None

    def numpy(self, a, w, x, out=None):
        return self._numpy(a, x, out)

    def torch_source(self, a, m, x, lit=literal):
        if self._torch is None:
            return x
        kw = [
            f"{self._keywords[k]}={lit(v, self._keywords[k])}"
            for k, v in a.items()
            if v != self.defaults[k]
        ]
        return f"{self._torch}({', '.join([x, *kw])})"


class Softmax(Op):
    """``softmax`` / ``log_softmax`` along ``axis`` (numerically stable)."""

    signature = (Arg("axis", integer(), -1),)

    def __init__(self, name: str):
        self.name = name

    def infer(self, ctx, a, x):
        self.expect_float(x)
        norm_axis(self.name, a["axis"], x.rank)
        return x

    def receptive(self, a, field, jump, x):
        # Normalising across channels keeps each step's field; across steps ends the stack.
        return None if a["axis"] % x.rank == x.rank - 1 else (field, jump)

    def onnx(self, g, a, node, x):
        return g.op("Softmax" if self.name == "softmax" else "LogSoftmax", [x], axis=a["axis"])

    numpy_inplace = True

    def numpy(self, a, w, x, out=None):
        axis = a["axis"]
        y = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
        if self.name == "log_softmax":
            return np.subtract(y, np.log(np.exp(y).sum(axis=axis, keepdims=True)), out=y)
        np.exp(y, out=y)
        return np.divide(y, y.sum(axis=axis, keepdims=True), out=y)

    def torch_source(self, a, m, x, lit=literal):
        return f"F.{self.name}({x}, dim={lit(a['axis'], 'dim')})"


def _gelu_onnx(g, a, x):
    if g.opset >= 20:
        return g.op("Gelu", [x], approximate=a["approximate"])
    if a["approximate"] == "tanh":  # tanh(sqrt(2/pi) * (x + 0.044715 x^3))
        cube = g.op("Mul", [x, g.op("Mul", [x, x])])
        inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715)])])
        phi = g.op("Tanh", [g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi))])])
    else:  # erf(x / sqrt(2))
        phi = g.op("Erf", [g.op("Mul", [x, g.const(math.sqrt(0.5))])])
    return g.op("Mul", [g.op("Mul", [x, g.const(0.5)]), g.op("Add", [phi, g.const(1.0)])])


def _identity(x):
    return x



# -- NumPy kernels: (attrs, x, out) -> array; ``out`` is None or x itself ---------------------
def sigmoid(x, out=None):
    """``1 / (1 + exp(-x))`` with full relative precision (exp(-x) = inf gives the limit 0)."""
    y = np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


def _horner(x, coeffs):
    """``coeffs[0] + coeffs[1] * x + ...``."""
    y = np.full_like(x, coeffs[-1])
    for c in coeffs[-2::-1]:
        y *= x
        y += c
    return y


# FreeBSD msun s_erf.c (Sun Microsystems 1993): rational approximations on four ranges.
# fmt: off
_ERX = 8.45062911510467529297e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01,
       7.18286544141962662868e-02, 1.26171219808761642112e-01, 1.36370839120290507362e-02,
       1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e01,
       -6.23753324503260060396e01, -1.62396669462573470355e02, -1.84605092906711035994e02,
       -8.12874355063065934246e01, -9.81432934416914548592e00)
_SA = (1.0, 1.96512716674392571292e01, 1.37657754143519042600e02, 4.34565877475229228821e02,
       6.45387271733267880336e02, 4.29008140027567833386e02, 1.08635005541779435134e02,
       6.57024977031928170135e00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e01,
       -1.60636384855821916062e02, -6.37566443368389627722e02, -1.02509513161107724954e03,
       -4.83519191608651397019e02)
_SB = (1.0, 3.03380607434824582924e01, 3.25792512996573918826e02, 1.53672958608443695994e03,
       3.19985821950859553908e03, 2.55305040643316442583e03, 4.74528541206955367215e02,
       -2.24409524465858183362e01)
# fmt: on


def erf(x) -> np.ndarray:
    """The error function in float64, within an ulp or two of a double (NumPy has none)."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    out = np.sign(x, out=np.empty_like(x))  # |x| >= 6: +-1 to a double's precision; NaN: NaN
    m = ax < 0.84375
    z = x[m]
    out[m] = z + z * (_horner(z * z, _PP) / _horner(z * z, _QQ))
    m = (ax >= 0.84375) & (ax < 1.25)
    s = ax[m] - 1
    out[m] = np.copysign(_ERX + _horner(s, _PA) / _horner(s, _QA), x[m])
    for lo, hi, r, q in ((1.25, 1 / 0.35, _RA, _SA), (1 / 0.35, 6.0, _RB, _SB)):
        m = (ax >= lo) & (ax < hi)
        v = ax[m]
        s = 1 / (v * v)
        erfc = np.exp(-v * v - 0.5625 + _horner(s, r) / _horner(s, q)) / v
        out[m] = np.copysign(1 - erfc, x[m])
    return out


def _gelu(a, x, out):
    if a["approximate"] == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        t = x * x
        t *= 0.044715
        t += 1
        t *= x
        t *= math.sqrt(2 / math.pi)
        np.tanh(t, out=t)
        t += 1
        t *= 0.5
        return np.multiply(x, t, out=out)
    phi = erf(x * math.sqrt(0.5))  # in float64: Phi(x) keeps its precision in the far tail
    phi += 1
    phi *= 0.5
    return np.multiply(x, phi, out=out, dtype=x.dtype)


def _leaky_relu(a, x, out):
    y = np.copy(x) if out is None else out
    return np.multiply(y, a["slope"], out=y, where=y < 0)


def _elu(a, x, out):
    neg = np.minimum(x, 0)
    np.expm1(neg, out=neg)
    neg *= a["alpha"]
    y = np.maximum(x, 0, out=out)  # max(x, 0) + alpha * expm1(min(x, 0)), exact on both sides
    y += neg
    return y



def _relu6_onnx(g, a, x):
    return g.op("Clip", [x, g.const(0.0), g.const(6.0)])


def _silu_onnx(g, a, x):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


for _op in (
    Elementwise(
        "relu",
        "max(x, 0)",
        numpy=lambda a, x, out: np.maximum(x, 0, out=out),
        torch="F.relu",
        onnx=lambda g, a, x: g.op("Relu", [x]),
    ),
    Elementwise(
        "relu6",
        "min(max(x, 0), 6)",
        numpy=lambda a, x, out: np.clip(x, 0, 6, out=out),
        torch="F.relu6",
        onnx=_relu6_onnx,
    ),
    Elementwise(
        "gelu",
        'x * Phi(x), the exact (erf) form unless approximate="tanh"',
        Arg("approximate", choice("none", "tanh"), "none"),
        numpy=_gelu,
        torch="F.gelu",
        onnx=_gelu_onnx,
    ),
    Elementwise(
        "silu",
        "x * sigmoid(x)",
        numpy=lambda a, x, out: np.multiply(x, sigmoid(x), out=out),
        torch="F.silu",
        onnx=_silu_onnx,
    ),
    Elementwise(
        "sigmoid",
        "1 / (1 + exp(-x))",
        numpy=lambda a, x, out: sigmoid(x, out),
        torch="torch.sigmoid",
        onnx=lambda g, a, x: g.op("Sigmoid", [x]),
    ),
    Elementwise(
        "tanh",
        "tanh(x)",
        numpy=lambda a, x, out: np.tanh(x, out=out),
        torch="torch.tanh",
        onnx=lambda g, a, x: g.op("Tanh", [x]),
    ),
    Elementwise(
        "identity",
        "x",
        numpy=lambda a, x, out: x,
        torch=None,
        onnx=lambda g, a, x: x,
    ),
    Elementwise(
        "leaky_relu",
        "x if x > 0 else slope * x",
        Arg("slope", real(), 0.01),
        numpy=_leaky_relu,
        torch="F.leaky_relu",
        torch_keywords={"slope": "negative_slope"},
        onnx=lambda g, a, x: g.op("LeakyRelu", [x], alpha=a["slope"]),
    ),
    Elementwise(
        "elu",
        "x if x > 0 else alpha * (exp(x) - 1)",
        Arg("alpha", real(), 1.0),
        numpy=_elu,
        torch="F.elu",
        onnx=lambda g, a, x: g.op("Elu", [x], alpha=a["alpha"]),
    ),
    Softmax("softmax"),
    Softmax("log_softmax"),
):
    register(_op)

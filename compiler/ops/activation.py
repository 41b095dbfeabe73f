"""Elementwise activations and (log-)softmax."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..errors import ShapeError
from ..ir.graph import Init, Param
from ..lazy import numpy as np
from .base import Arg, ArgError, Op, choice, given, integer, literal, real, register
from .shape import norm_axis


class Elementwise(Op):
    """An elementwise function; the output has the input's type. One record per op: its
    NumPy kernel ``numpy(attrs, x, out)`` (``out`` is None or ``x`` itself), its torch
    function as emitted source names it (``torch``; None: the input itself) with the torch
    keyword of each argument whose name differs (``torch_keywords``), its ONNX lowering
    ``onnx(g, attrs, x)`` and, where arguments constrain each other, ``check(attrs)``, which
    raises ArgError."""

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
        check: Callable | None = None,
    ):
        self.name, self.__doc__, self.signature = name, doc, signature
        self._numpy, self._torch, self._onnx, self._check = numpy, torch, onnx, check
        self._keywords = {a.name: a.name for a in signature} | dict(torch_keywords or {})

    def normalize(self, a):
        if self._check is not None:
            self._check(a)
        return a

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


def _exp_linear(x, alpha, out, over=1.0):
    """``max(x, 0) + alpha * expm1(min(x, 0) / over)``, exact on both sides (elu, celu,
    selu)."""
    neg = np.minimum(x, 0)
    if over != 1.0:
        neg /= over
    np.expm1(neg, out=neg)
    neg *= alpha
    y = np.maximum(x, 0, out=out)
    y += neg
    return y


def _elu(a, x, out):
    return _exp_linear(x, a["alpha"], out)


# SELU's constants (Klambauer et al. 2017), as torch and ONNX's Selu defaults have them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(a, x, out):
    y = _exp_linear(x, _SELU_ALPHA, out)
    y *= _SELU_SCALE
    return y


def _hardsigmoid(x, out=None):
    """``min(max(x + 3, 0), 6) / 6``."""
    y = np.add(x, 3, out=out)
    np.clip(y, 0, 6, out=y)
    y /= 6
    return y


def _softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, or ``x`` where ``beta * x > threshold`` (as torch,
    which switches to the identity there)."""
    bx = np.multiply(x, beta)
    big = bx > threshold
    y = np.logaddexp(0, bx, out=bx)  # never overflows
    y /= beta
    return np.where(big, x, y)


def _logsigmoid(a, x, out):
    """``min(x, 0) - log1p(exp(-|x|))``: no overflow on either side."""
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    y = np.minimum(x, 0, out=out)
    y -= t
    return y


def _ufunc(name):
    """The NumPy kernel of a unary ufunc, by name (NumPy is imported lazily)."""
    return lambda a, x, out: getattr(np, name)(x, out=out)


def _rsqrt(a, x, out):
    y = np.sqrt(x, out=out)
    return np.reciprocal(y, out=y)


def _onnx_op(op_type, **attrs):
    """The ONNX lowering of an elementwise op that is one ONNX op."""
    return lambda g, a, x: g.op(op_type, [x], **attrs)


def _clip_onnx(g, x, lo, hi):
    """ONNX Clip between ``lo`` and ``hi``; a bound of None is left out (an empty name)."""
    return g.op("Clip", [x, *("" if v is None else g.const(v) for v in (lo, hi))])


def _relu6_onnx(g, a, x):
    return _clip_onnx(g, x, 0.0, 6.0)


def _softplus_onnx(g, a, x):
    beta = a["beta"]
    bx = x if beta == 1 else g.op("Mul", [x, g.const(beta)])
    y = g.op("Softplus", [bx])
    if beta != 1:
        y = g.op("Div", [y, g.const(beta)])
    # torch switches to the identity where beta * x exceeds the threshold.
    return g.op("Where", [g.op("Greater", [bx, g.const(a["threshold"])]), x, y])


def _mish_onnx(g, a, x):
    if g.opset >= 18:  # Mish is new in opset 18
        return g.op("Mish", [x])
    return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])


def _logsigmoid_onnx(g, a, x):  # -softplus(-x); ONNX has no LogSigmoid
    return g.op("Neg", [g.op("Softplus", [g.op("Neg", [x])])])


def _check_clamp(a):
    if a["min"] is None and a["max"] is None:
        raise ArgError("give min, max or both")


def _check_celu(a):
    if a["alpha"] == 0:
        raise ArgError("alpha must not be 0 (celu divides by it)")


def _check_hardtanh(a):
    if a["max"] <= a["min"]:
        raise ArgError(f"max must exceed min, got min={a['min']}, max={a['max']}")


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
    Elementwise(
        "sqrt",
        "sqrt(x)",
        numpy=_ufunc("sqrt"),
        torch="torch.sqrt",
        onnx=_onnx_op("Sqrt"),
    ),
    Elementwise(
        "rsqrt",
        "1 / sqrt(x)",
        numpy=_rsqrt,
        torch="torch.rsqrt",
        onnx=lambda g, a, x: g.op("Reciprocal", [g.op("Sqrt", [x])]),
    ),
    Elementwise("exp", "exp(x)", numpy=_ufunc("exp"), torch="torch.exp", onnx=_onnx_op("Exp")),
    Elementwise("log", "log(x)", numpy=_ufunc("log"), torch="torch.log", onnx=_onnx_op("Log")),
    Elementwise("abs", "|x|", numpy=_ufunc("abs"), torch="torch.abs", onnx=_onnx_op("Abs")),
    Elementwise(
        "clamp",
        "min(max(x, min), max), as torch.clamp, without a bound that is not given",
        Arg("min", real(), None, "lower bound"),
        Arg("max", real(), None, "upper bound"),
        numpy=lambda a, x, out: np.clip(x, a["min"], a["max"], out=out),
        torch="torch.clamp",
        onnx=lambda g, a, x: _clip_onnx(g, x, a["min"], a["max"]),
        check=_check_clamp,
    ),
    Elementwise(
        "hardtanh",
        "min(max(x, min), max)",
        Arg("min", real(), -1.0),
        Arg("max", real(), 1.0),
        numpy=lambda a, x, out: np.clip(x, a["min"], a["max"], out=out),
        torch="F.hardtanh",
        torch_keywords={"min": "min_val", "max": "max_val"},
        onnx=lambda g, a, x: _clip_onnx(g, x, a["min"], a["max"]),
        check=_check_hardtanh,
    ),
    Elementwise(
        "hardsigmoid",
        "min(max(x + 3, 0), 6) / 6",
        numpy=lambda a, x, out: _hardsigmoid(x, out),
        torch="F.hardsigmoid",
        onnx=_onnx_op("HardSigmoid", alpha=1 / 6, beta=0.5),
    ),
    Elementwise(
        "hardswish",
        "x * hardsigmoid(x)",
        numpy=lambda a, x, out: np.multiply(x, _hardsigmoid(x), out=out),
        torch="F.hardswish",
        onnx=_onnx_op("HardSwish"),
    ),
    Elementwise(
        "softplus",
        "log(1 + exp(beta * x)) / beta, or x where beta * x > threshold",
        Arg("beta", real(), 1.0),
        Arg("threshold", real(), 20.0),
        numpy=lambda a, x, out: _softplus(x, a["beta"], a["threshold"]),
        torch="F.softplus",
        onnx=_softplus_onnx,
    ),
    Elementwise(
        "mish",
        "x * tanh(softplus(x))",
        numpy=lambda a, x, out: np.multiply(x, np.tanh(_softplus(x)), out=out),
        torch="F.mish",
        onnx=_mish_onnx,
    ),
    Elementwise(
        "logsigmoid",
        "log(sigmoid(x))",
        numpy=_logsigmoid,
        torch="F.logsigmoid",
        onnx=_logsigmoid_onnx,
    ),
    Elementwise(
        "celu",
        "x if x > 0 else alpha * (exp(x / alpha) - 1)",
        Arg("alpha", real(), 1.0),
        numpy=lambda a, x, out: _exp_linear(x, a["alpha"], out, over=a["alpha"]),
        torch="F.celu",
        onnx=lambda g, a, x: g.op("Celu", [x], alpha=a["alpha"]),
        check=_check_celu,
    ),
    Elementwise(
        "selu",
        "scale * elu(x, alpha), with SELU's fixed alpha and scale",
        numpy=_selu,
        torch="F.selu",
        onnx=_onnx_op("Selu"),
    ),
    Softmax("softmax"),
    Softmax("log_softmax"),
):
    register(_op)


@register
class PReLU(Op):
    """``x if x >= 0 else weight * x`` as ``nn.PReLU(channels)``, with a learnt slope per
    channel (axis 1) or one for all, starting at 0.25."""

    name = "prelu"
    pointwise = True
    numpy_inplace = True
    signature = (Arg("channels", integer(1), 1, "slopes: 1, or one per channel"),)

    def infer(self, ctx, a, x):
        self.expect_float(x)
        if a["channels"] > 1:
            if x.rank < 2:
                raise ShapeError(f"prelu({a['channels']}) needs a channel axis 1, got {x}")
            ctx.same(x.shape[1], a["channels"], "prelu: channels (axis 1)")
        return x

    def params(self, a, x):
        # Its own role: `init weight = ...` statements mean weight matrices and kernels.
        return {"weight": Param((a["channels"],), "slope")}

    def default_inits(self, a, params):
        return {"weight": Init("constant", (("value", 0.25),))}

    def torch_layer(self, a, params, x):
        return "PReLU", {}, given({"num_parameters": 1}, num_parameters=a["channels"])

    def onnx(self, g, a, node, x):
        rank = g.type(x).rank
        if rank <= 2:
            return g.op("PRelu", [x, g.param("weight")])
        # ONNX broadcasts from the last axis: the slopes of axis 1 as [C, 1, ...].
        slope = g.weight("weight").reshape(-1, *(1,) * (rank - 2))
        return g.op("PRelu", [x, g.derived("weight_c", slope, "weight as [C, 1, ...]")])

    def numpy(self, a, w, x, out=None):
        y = np.copy(x) if out is None else out
        slope = w["weight"].reshape(-1, *(1,) * (x.ndim - 2))
        return np.multiply(y, slope, out=y, where=y < 0)

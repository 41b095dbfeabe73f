"""Every op of the registry against the real PyTorch layer (LANGUAGE.md §7).

Each case compiles a one-layer network ``y = <call>`` and runs the equivalent ``torch.nn``
layer (or ``torch`` function) on random inputs of the same shapes. The compiler's output
shape and dtype, its parameter and buffer names, shapes and dtypes, its parameter count and
its MACs per example must equal what PyTorch reports. The expected values always come from
torch (the layer's ``state_dict``, the tensor it returns, ``FlopCounterMode``) or from a
hand formula over torch's shapes, never from dlc itself.

``CASES`` is keyed by op name; ``test_every_op_has_cases`` fails when an op is registered
without a case here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from dlc.compiler import DlcError, load_source
from dlc.compiler.ir.symbolic import evaluate

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402  (needs torch)

BATCH = 2

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------

# ``Case.macs``: FLOPS means "what torch's FlopCounterMode counts, halved, per example";
# a callable ``(module, inputs, output) -> MACs of the whole batch`` is a hand formula over
# torch's shapes; an int is the expected count. Ops without a matmul count 0 MACs (the
# torchvision convention of compiler/analysis/counting.py: normalisation, pooling and activations
# are not counted).
FLOPS = "flops"


@dataclass(frozen=True)
class Case:
    call: str  # the right-hand side of ``y = ...``; inputs are x0, x1, ...
    inputs: tuple[tuple[str, tuple[int, ...]], ...]  # (dtype, shape) of x0, x1, ...
    module: Callable[[], Any] | None = None  # the torch layer whose state_dict is compared
    forward: Callable[..., Any] | None = None  # (module, *inputs) -> output; default m(*xs)
    macs: Any = 0

    def __str__(self) -> str:
        shapes = ",".join(("" if dt == "float32" else dt) + str(list(s)) for dt, s in self.inputs)
        return f"{self.call}@{shapes}".replace(" ", "")


def dl(v: Any) -> str:
    """A Python value as .dl source."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(dl(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def call(op: str, *args: Any, **kw: Any) -> str:
    return f"{op}(" + ", ".join([*map(dl, args), *(f"{k}={dl(v)}" for k, v in kw.items())]) + ")"


def shapes(*specs: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``(2, 3)`` is a float32 input; ``("int64", (2, 7))`` any other dtype."""
    return tuple(s if isinstance(s[0], str) else ("float32", tuple(s)) for s in specs)


def case(dl_call: str, *inputs: Any, module=None, forward=None, macs: Any = 0) -> Case:
    return Case(dl_call, shapes(*inputs), module, forward, macs)


def fn(f: Callable[..., Any]) -> Callable[..., Any]:
    """A parameterless reference: ``f(*inputs)``."""
    return lambda _m, *xs: f(*xs)


# -- convolutions ----------------------------------------------------------------------
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}


def conv(rank: int, cin: int, cout: int, kernel, size: tuple[int, ...], **kw) -> Case:
    """``conv{rank}d(cout, kernel, **kw)`` against ``nn.Conv{rank}d(cin, cout, kernel, **kw)``."""
    return case(
        call(f"conv{rank}d", cout, kernel, **kw),
        (BATCH, cin, *size),
        module=lambda: CONV[rank](cin, cout, kernel, **kw),
        macs=FLOPS,
    )


def causal(cin: int, cout: int, k: int, length: int, **kw) -> Case:
    """Causal conv1d: ``nn.Conv1d`` with padding 0 over the input padded (k-1)*d on the left."""
    d = kw.get("dilation", 1)
    return case(
        call("conv1d", cout, k, causal=True, **kw),
        (BATCH, cin, length),
        module=lambda: nn.Conv1d(cin, cout, k, **kw),
        forward=lambda m, x: m(F.pad(x, ((k - 1) * d, 0))),
        macs=lambda m, xs, y: y.numel() * (cin // m.groups) * k,
    )


def conv_t(rank: int, cin: int, cout: int, kernel, size: tuple[int, ...], **kw) -> Case:
    return case(
        call(f"conv_transpose{rank}d", cout, kernel, **kw),
        (BATCH, cin, *size),
        module=lambda: CONV_T[rank](cin, cout, kernel, **kw),
        macs=FLOPS,
    )


CONV1D = [
    conv(1, 4, 8, 3, (17,)),
    conv(1, 4, 8, 3, (17,), stride=2),
    conv(1, 4, 8, 3, (17,), stride=2, padding=1),
    conv(1, 4, 8, 5, (16,), stride=3, padding=2),
    conv(1, 4, 8, 3, (16,), padding=(2,)),
    conv(1, 4, 8, 3, (17,), dilation=2),
    conv(1, 4, 8, 3, (20,), stride=2, padding=3, dilation=3),
    conv(1, 4, 8, 3, (17,), padding="same"),
    conv(1, 4, 8, 4, (17,), padding="same"),
    conv(1, 4, 8, 4, (17,), padding="same", dilation=3),
    conv(1, 4, 8, 5, (17,), padding="valid"),
    conv(1, 4, 8, 3, (17,), groups=2),
    conv(1, 4, 8, 3, (17,), groups=4, padding=1),
    conv(1, 6, 6, 3, (17,), groups=6, padding=1),  # depthwise
    conv(1, 6, 12, 3, (17,), groups=6, bias=False),  # depthwise, multiplier 2
    conv(1, 4, 8, 1, (9,), bias=False),
    conv(1, 4, 8, 9, (9,)),  # output length 1
    causal(4, 8, 3, 17),
    causal(4, 8, 3, 17, dilation=4),
    causal(4, 8, 2, 16, dilation=8, bias=False),
    causal(4, 8, 3, 17, stride=2),
    causal(4, 8, 3, 17, groups=4),
]

CONV2D = [
    conv(2, 3, 8, 3, (17, 19)),
    conv(2, 3, 8, 3, (17, 19), stride=2, padding=1),
    conv(2, 3, 8, (3, 5), (17, 19), stride=(2, 1), padding=(1, 2)),
    conv(2, 3, 8, (1, 3), (17, 19), stride=(1, 3), padding=(0, 1)),
    conv(2, 3, 8, 7, (32, 30), stride=2, padding=3),
    conv(2, 3, 8, 3, (17, 19), dilation=2),
    conv(2, 3, 8, 3, (17, 19), dilation=(2, 3), padding=(1, 0)),
    conv(2, 3, 8, 3, (17, 19), padding="same"),
    conv(2, 3, 8, (2, 4), (17, 19), padding="same"),
    conv(2, 3, 8, (3, 2), (17, 19), padding="same", dilation=(2, 3)),
    conv(2, 3, 8, 3, (17, 19), padding="valid"),
    conv(2, 4, 8, 3, (17, 19), groups=2, padding=1),
    conv(2, 8, 8, 3, (17, 19), groups=8, padding=1),  # depthwise
    conv(2, 8, 16, 3, (17, 19), groups=8, stride=2, bias=False),
    conv(2, 6, 9, 1, (5, 5), groups=3),
    conv(2, 3, 8, 1, (17, 19), bias=False),
    conv(2, 3, 8, (17, 19), (17, 19)),  # 1x1 output
]

CONV_T1D = [
    conv_t(1, 4, 8, 3, (9,)),
    conv_t(1, 4, 8, 2, (9,), stride=2),
    conv_t(1, 4, 8, 3, (9,), stride=2, padding=1, output_padding=1),
    conv_t(1, 4, 8, 4, (9,), stride=3, padding=2, output_padding=2),
    conv_t(1, 4, 8, 3, (9,), dilation=2, padding=1),
    conv_t(1, 4, 8, 3, (9,), stride=2, dilation=3, output_padding=2),
    conv_t(1, 4, 8, 3, (9,), groups=2, bias=False),
    conv_t(1, 4, 4, 3, (9,), groups=4, stride=2),
]

CONV_T2D = [
    conv_t(2, 4, 8, 2, (7, 9), stride=2),
    conv_t(2, 4, 8, 3, (7, 9), stride=2, padding=1, output_padding=1),
    conv_t(2, 4, 8, (3, 4), (7, 9), stride=(2, 3), padding=(1, 0), output_padding=(0, 2)),
    conv_t(2, 4, 8, 3, (7, 9), dilation=(1, 2)),
    conv_t(2, 4, 6, 3, (7, 9), groups=2, stride=2, bias=False),
    conv_t(2, 4, 8, 4, (7, 9), stride=2, padding=1, groups=4),
    conv_t(2, 4, 8, 1, (7, 9)),
]

# -- pooling ---------------------------------------------------------------------------
POOL = {
    ("max", 1): nn.MaxPool1d,
    ("max", 2): nn.MaxPool2d,
    ("avg", 1): nn.AvgPool1d,
    ("avg", 2): nn.AvgPool2d,
    ("max", 3): nn.MaxPool3d,
    ("avg", 3): nn.AvgPool3d,
}


def pool(kind: str, rank: int, kernel, size: tuple[int, ...], **kw) -> Case:
    """``{kind}pool{rank}d(kernel, **kw)`` against ``nn.{Max,Avg}Pool{rank}d(kernel, **kw)``."""
    return case(
        call(f"{kind}pool{rank}d", kernel, **kw),
        (BATCH, 3, *size),
        module=lambda: POOL[kind, rank](kernel, **kw),
    )


def pools(kind: str, rank: int) -> list[Case]:
    if rank == 1:
        grid = [
            (2, (16,), {}),
            (2, (17,), {}),
            (3, (17,), {"stride": 2}),
            (3, (17,), {"stride": 1, "padding": 1}),
            (4, (17,), {"stride": 2, "padding": 2}),
            (3, (6,), {"stride": 2, "ceil_mode": True}),  # ceil_mode: 2 -> 3
            (2, (17,), {"ceil_mode": True}),  # 8 -> 9
            (2, (5,), {"stride": 2, "padding": 1, "ceil_mode": True}),  # last window in padding
            (3, (10,), {"stride": 3, "padding": 1, "ceil_mode": True}),  # 4 -> 4 (dropped)
            (5, (5,), {}),
            # ceil_mode: a kernel longer than the (padded) input still gives one window
            (3, (2,), {"stride": 2, "ceil_mode": True}),
            (4, (1,), {"stride": 2, "padding": 1, "ceil_mode": True}),
        ]
    else:
        grid = [
            (2, (16, 18), {}),
            (2, (17, 19), {}),
            (3, (17, 19), {"stride": 2}),
            (3, (17, 19), {"stride": 2, "padding": 1}),
            ((2, 3), (17, 19), {"stride": (1, 2)}),
            ((3, 1), (17, 19), {"stride": (2, 1), "padding": (1, 0)}),
            (3, (6, 7), {"stride": 2, "ceil_mode": True}),
            (2, (17, 19), {"ceil_mode": True}),
            (2, (5, 7), {"stride": 2, "padding": 1, "ceil_mode": True}),  # last window in padding
            (3, (10, 11), {"stride": 3, "padding": 1, "ceil_mode": True}),
            ((3, 2), (8, 9), {"stride": (2, 3), "padding": (1, 1), "ceil_mode": True}),
            # ceil_mode: a kernel taller than the input still gives one row of windows
            (3, (2, 7), {"stride": 2, "ceil_mode": True}),
        ]
    return [pool(kind, rank, k, size, **kw) for k, size, kw in grid]


def upsample(scale: int, mode: str, size: tuple[int, ...]) -> Case:
    torch_mode = "bilinear" if mode == "linear" and len(size) == 2 else mode
    return case(
        call("upsample", scale=scale, mode=mode),
        (BATCH, 3, *size),
        module=lambda: nn.Upsample(scale_factor=scale, mode=torch_mode),
    )


def spatial(x):
    return tuple(range(2, x.ndim))


# -- recurrent -------------------------------------------------------------------------
RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def rnn_macs(m, xs, y) -> int:
    """T * sum over layers and directions of gates*h*(in + h), for the whole batch."""
    n, t = xs[0].shape[:2]
    sd = m.state_dict()
    return n * t * sum(sd[k].numel() for k in sd if k.startswith("weight_"))


def recurrent(op: str, d: int, hidden: int, t: int = 6, **kw) -> Case:
    torch_kw = {{"layers": "num_layers"}.get(k, k): v for k, v in kw.items()}
    return case(
        call(op, hidden, **kw),
        (BATCH, t, d),
        module=lambda: RNN[op](d, hidden, batch_first=True, **torch_kw),
        forward=lambda m, x: m(x)[0],
        macs=rnn_macs if op == "lstm" else FLOPS,  # FlopCounterMode counts nothing in aten.lstm
    )


def recurrents(op: str) -> list[Case]:
    out = [
        recurrent(op, 5, 7),
        recurrent(op, 5, 7, layers=2),
        recurrent(op, 5, 7, layers=3, dropout=0.2),
        recurrent(op, 5, 7, bidirectional=True),
        recurrent(op, 5, 7, layers=2, bidirectional=True),
        recurrent(op, 5, 7, layers=3, bidirectional=True, bias=False),
        recurrent(op, 8, 4, bias=False),
        recurrent(op, 1, 3, t=1),
    ]
    if op == "rnn":
        out += [
            recurrent(op, 5, 7, nonlinearity="relu"),
            recurrent(op, 5, 7, layers=2, bidirectional=True, nonlinearity="relu"),
        ]
    return out


# -- attention -------------------------------------------------------------------------
def causal_mask(t: int):
    return torch.triu(torch.full((t, t), float("-inf")), diagonal=1)


def attention(d: int, heads: int, t: int = 5, mem: tuple[int, int] | None = None, **kw) -> Case:
    """Self-attention over [N, t, d], or cross-attention over a memory [N, S, Dm]."""
    bias = kw.get("bias", True)
    if mem is None:
        s, dm = t, d
        dl_call = call("attention", heads, **kw)
        inputs = [(BATCH, t, d)]
    else:
        s, dm = mem
        dl_call = (
            call("attention", "__q", "__m", heads=heads, **kw)
            .replace('"__q"', "x0")
            .replace('"__m"', "x1")
        )
        inputs = [(BATCH, t, d), (BATCH, s, dm)]
    mask = causal_mask(t) if kw.get("causal") else None

    def forward(m, q, k=None):
        k = q if k is None else k
        return m(q, k, k, attn_mask=mask)[0]

    def hand(m, xs, y):  # 2TD^2 (q, out) + 2 S Dm D (k, v) + 2TSD (scores, weighted sum)
        return BATCH * (2 * t * d * d + 2 * s * dm * d + 2 * t * s * d)

    return case(
        dl_call,
        *inputs,
        forward=forward,
        macs=hand,
        module=lambda: nn.MultiheadAttention(
            d, heads, bias=bias, kdim=dm, vdim=dm, batch_first=True
        ),
    )


# -- the rest --------------------------------------------------------------------------
def sinusoid(t: int, d: int):
    pos = torch.arange(t, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return pe


def elementwise(op: str, module: Callable[[], Any], **kw) -> list[Case]:
    dl_call = call(op, **kw) if kw else op
    return [case(dl_call, s, module=module) for s in ((BATCH, 7), (BATCH, 3, 5), (BATCH, 3, 4, 5))]


def function(dl_call: str, f: Callable[..., Any]) -> list[Case]:
    """An elementwise op against the torch function ``f``, on inputs of rank 2, 3 and 4."""
    return [case(dl_call, s, forward=fn(f)) for s in ((BATCH, 7), (BATCH, 3, 5), (BATCH, 3, 4, 5))]


def positive(op: str, f: Callable[..., Any]) -> list[Case]:
    """An op defined for positive inputs (``sqrt``, ``log``), on ``abs`` of the input."""
    return function(f"{op}(abs(x0))", lambda x: f(x.abs()))


def softmaxes(op: str, cls) -> list[Case]:
    return [
        case(
            call(op, axis=a) if a is not None else op,
            s,
            module=lambda a=a: cls(dim=-1 if a is None else a),
        )
        for s, a in (
            ((BATCH, 7), None),
            ((BATCH, 3, 5), 1),
            ((BATCH, 3, 4, 5), -2),
            ((BATCH, 3, 4, 5), 0),
        )
    ]


def binary(op: str, f) -> list[Case]:
    grid = [
        ((BATCH, 3, 4), (BATCH, 3, 4)),
        ((BATCH, 3, 4), (4,)),
        ((BATCH, 1, 4), (3, 1)),
        ((BATCH, 3, 1, 5), (1, 4, 1)),
        ((BATCH, 3, 4, 5), (BATCH, 3, 1, 1)),
        ((1, 3), (BATCH, 1)),
    ]
    out = [case(f"{op}(x0, x1)", a, b, forward=fn(f)) for a, b in grid]
    out.append(
        case(
            f"{op}(x0, x1, x2)",
            (BATCH, 3, 4),
            (4,),
            (BATCH, 1, 1),
            forward=fn(lambda a, b, c: f(f(a, b), c)),
        )
    )
    return out


def scalars(op: str, f) -> list[Case]:
    """A tensor and a number, on either side; integer tensors keep their dtype or become
    float32 as PyTorch's type promotion says."""
    out = []
    for dtype, number in (("float32", 2.5), ("float32", 3), ("int64", 4), ("int64", 0.5)):
        for left in (False, True):
            if left and op == "div" and dtype == "int64":
                continue  # 4 / x: random integer inputs include 0
            inputs = (BATCH, 3, 4) if dtype == "float32" else (dtype, (BATCH, 5))
            kw = ", left=true" if left else ""
            ref = (lambda x, n=number: f(n, x)) if left else (lambda x, n=number: f(x, n))
            out.append(case(f"{op}(x0, scalar={number}{kw})", inputs, forward=fn(ref)))
    return out


class Holder(nn.Module):
    """A learnable tensor ``y``, initialised by ``init`` (zeros by default)."""

    def __init__(self, *dims: int, init=nn.init.zeros_):
        super().__init__()
        self.y = nn.Parameter(init(torch.empty(*dims)))


def param(*dims: int, init: str = "", ref_init=nn.init.zeros_) -> Case:
    """``param(dims)``; the network's input is there only because a network needs one."""
    kw = f", init={init}" if init else ""
    return case(
        f"param({', '.join(map(str, dims))}{kw})",
        (BATCH, 3),
        module=lambda: Holder(*dims, init=ref_init),
        forward=lambda m, x: m.y,
    )


def parts(op: str, first, axis: int, shape: tuple[int, ...], results: int) -> list[Case]:
    """Each result of ``chunk``/``split`` (``results`` of them), against torch's."""
    f = getattr(torch, op)
    return [
        case(
            f"{op}(x0, {dl(first)}, axis={axis}, index={k})",
            shape,
            forward=fn(lambda x, k=k: f(x, first, dim=axis)[k]),
        )
        for k in range(results)
    ]


def reshape(*dims: int, shape=(BATCH, 4, 6)) -> Case:
    return case(call("reshape", *dims), shape, forward=fn(lambda x: x.reshape(x.shape[0], *dims)))


def permute(*dims: int, shape=(BATCH, 3, 4, 5)) -> Case:
    return case(call("permute", *dims), shape, forward=fn(lambda x: x.permute(*dims)))


def transpose(a: int, b: int, shape=(BATCH, 3, 4, 5)) -> Case:
    return case(call("transpose", a, b), shape, forward=fn(lambda x: x.transpose(a, b)))


REDUCTIONS = {"mean": torch.mean, "sum": torch.sum, "max": torch.amax, "min": torch.amin}


def reduction(op: str, axis, keepdims=None, shape=(BATCH, 3, 4, 5)) -> Case:
    kw = {} if keepdims is None else {"keepdims": keepdims}
    return case(
        call(op, axis=axis, **kw),
        shape,
        forward=fn(lambda x: REDUCTIONS[op](x, dim=axis, keepdim=bool(keepdims))),
    )


def mean(axis, keepdims=None, shape=(BATCH, 3, 4, 5)) -> Case:
    return reduction("mean", axis, keepdims, shape)


def flatten(start=None, shape=(BATCH, 3, 4, 5)) -> Case:
    dl_call = "flatten" if start is None else call("flatten", start=start)
    return case(
        dl_call, shape, forward=fn(lambda x: torch.flatten(x, 1 if start is None else start))
    )


def concat(axis, *inputs) -> Case:
    names = ", ".join(f"x{i}" for i in range(len(inputs)))
    dl_call = f"concat({names})" if axis is None else f"concat({names}, axis={axis})"
    return case(
        dl_call, *inputs, forward=fn(lambda *xs: torch.cat(xs, dim=1 if axis is None else axis))
    )


CASES: dict[str, list[Case]] = {
    "conv1d": CONV1D,
    "conv2d": CONV2D,
    "conv_transpose1d": CONV_T1D,
    "conv_transpose2d": CONV_T2D,
    "maxpool1d": pools("max", 1),
    "maxpool2d": pools("max", 2),
    "avgpool1d": pools("avg", 1),
    "avgpool2d": pools("avg", 2),
    "adaptive_avgpool2d": [
        case(
            call("adaptive_avgpool2d", s),
            (BATCH, 3, *hw),
            module=lambda s=s: nn.AdaptiveAvgPool2d(s),
        )
        for s, hw in ((1, (7, 9)), (3, (7, 9)), ((2, 4), (7, 9)), ((7, 7), (5, 6)))
    ],
    "global_avgpool": [
        case("global_avgpool", s, forward=fn(lambda x: x.mean(dim=spatial(x))))
        for s in ((BATCH, 3, 7), (BATCH, 3, 7, 9), (BATCH, 3, 4, 5, 6))
    ]
    + [
        case(
            "global_avgpool",
            (BATCH, 3, 7, 9),
            module=lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        )
    ],
    "global_maxpool": [
        case("global_maxpool", s, forward=fn(lambda x: x.amax(dim=spatial(x))))
        for s in ((BATCH, 3, 7), (BATCH, 3, 7, 9), (BATCH, 3, 4, 5, 6))
    ],
    "upsample": [
        upsample(scale, mode, size)
        for scale in (2, 3)
        for mode, size in (
            ("nearest", (7,)),
            ("nearest", (5, 7)),
            ("linear", (7,)),
            ("linear", (5, 7)),
            ("bilinear", (5, 7)),
        )
    ]
    + [case("upsample", (BATCH, 3, 5, 7), module=lambda: nn.Upsample(scale_factor=2))],
    "batchnorm": [
        case("batchnorm", (BATCH, 6), module=lambda: nn.BatchNorm1d(6)),
        case("batchnorm", (BATCH, 6, 9), module=lambda: nn.BatchNorm1d(6)),
        case("batchnorm", (BATCH, 6, 5, 7), module=lambda: nn.BatchNorm2d(6)),
        case(
            call("batchnorm", eps=1e-3, momentum=0.01),
            (BATCH, 4, 5, 7),
            module=lambda: nn.BatchNorm2d(4, eps=1e-3, momentum=0.01),
        ),
    ],
    "layernorm": [
        case("layernorm", s, module=lambda d=s[-1]: nn.LayerNorm(d))
        for s in ((BATCH, 16), (BATCH, 5, 16), (BATCH, 3, 5, 7))
    ]
    + [
        case(call("layernorm", eps=1e-6), (BATCH, 5, 16), module=lambda: nn.LayerNorm(16, eps=1e-6))
    ],
    "dense": [
        case(
            call("dense", u, **kw),
            s,
            module=lambda u=u, s=s, kw=kw: nn.Linear(s[-1], u, **kw),
            macs=FLOPS,
        )
        for u, s, kw in (
            (10, (BATCH, 16), {}),
            (10, (BATCH, 16), {"bias": False}),
            (7, (BATCH, 5, 16), {}),
            (3, (BATCH, 2, 5, 4), {}),
            (1, (BATCH, 1), {}),
        )
    ],
    "embedding": [
        case(call("embedding", v, d), (dt, s), module=lambda v=v, d=d: nn.Embedding(v, d))
        for v, d, dt, s in (
            (10, 8, "int64", (BATCH, 7)),
            (100, 16, "int64", (BATCH, 7)),
            (10, 8, "int32", (BATCH, 7)),
            (10, 3, "int64", (BATCH,)),
            (10, 3, "int64", (BATCH, 3, 4)),
        )
    ],
    "positional_encoding": [
        case("positional_encoding", (BATCH, t, d), forward=fn(lambda x: x + sinusoid(*x.shape[1:])))
        for t, d in ((7, 16), (1, 8), (12, 6))
    ]
    + [
        case(
            call("positional_encoding", max_len=7),
            (BATCH, 7, 16),
            forward=fn(lambda x: x + sinusoid(*x.shape[1:])),
        )
    ],
    "dropout": [
        case("dropout", s, module=lambda: nn.Dropout()) for s in ((BATCH, 7), (BATCH, 3, 4, 5))
    ]
    + [
        case(call("dropout", 0.1), (BATCH, 5, 16), module=lambda: nn.Dropout(0.1)),
        case(call("dropout", p=0.0), (BATCH, 5), module=lambda: nn.Dropout(0.0)),
    ],
    "rnn": recurrents("rnn"),
    "lstm": recurrents("lstm"),
    "gru": recurrents("gru"),
    "attention": [
        attention(16, 4),
        attention(16, 1),
        attention(16, 4, bias=False),
        attention(16, 2, causal=True),
        attention(16, 4, t=1),
        attention(16, 4, mem=(7, 12)),
        attention(16, 4, mem=(7, 12), bias=False),
        attention(16, 8, t=3, mem=(9, 32)),
        attention(16, 4, mem=(7, 16)),  # same width: packed in_proj_weight
        attention(16, 4, mem=(5, 16), causal=True),
    ],
    "relu": elementwise("relu", nn.ReLU),
    "relu6": elementwise("relu6", nn.ReLU6),
    "gelu": elementwise("gelu", nn.GELU)
    + [
        case(
            call("gelu", approximate="tanh"), (BATCH, 7), module=lambda: nn.GELU(approximate="tanh")
        )
    ],
    "silu": elementwise("silu", nn.SiLU),
    "sigmoid": elementwise("sigmoid", nn.Sigmoid),
    "tanh": elementwise("tanh", nn.Tanh),
    "identity": elementwise("identity", nn.Identity),
    "leaky_relu": elementwise("leaky_relu", nn.LeakyReLU)
    + elementwise("leaky_relu", lambda: nn.LeakyReLU(0.2), slope=0.2),
    "elu": elementwise("elu", nn.ELU) + elementwise("elu", lambda: nn.ELU(0.5), alpha=0.5),
    "softmax": softmaxes("softmax", nn.Softmax),
    "log_softmax": softmaxes("log_softmax", nn.LogSoftmax),
    "sqrt": positive("sqrt", torch.sqrt),
    "rsqrt": positive("rsqrt", torch.rsqrt),
    "log": positive("log", torch.log),
    "exp": function("exp", torch.exp),
    "abs": function("abs", torch.abs) + [case("abs(x0)", (BATCH, 3, 5), forward=fn(torch.abs))],
    "clamp": [
        case(call("clamp", min=-0.5), (BATCH, 7), forward=fn(lambda x: torch.clamp(x, min=-0.5))),
        case(call("clamp", max=0.3), (BATCH, 3, 5), forward=fn(lambda x: torch.clamp(x, max=0.3))),
        case(
            call("clamp", min=-1, max=0.5),
            (BATCH, 3, 4, 5),
            forward=fn(lambda x: torch.clamp(x, -1, 0.5)),
        ),
    ],
    "hardtanh": elementwise("hardtanh", nn.Hardtanh)
    + elementwise("hardtanh", lambda: nn.Hardtanh(-2.0, 0.5), min=-2.0, max=0.5),
    "hardsigmoid": elementwise("hardsigmoid", nn.Hardsigmoid),
    "hardswish": elementwise("hardswish", nn.Hardswish),
    "softplus": elementwise("softplus", nn.Softplus)
    + elementwise("softplus", lambda: nn.Softplus(2.0, 1.0), beta=2.0, threshold=1.0),
    "mish": elementwise("mish", nn.Mish),
    "logsigmoid": elementwise("logsigmoid", nn.LogSigmoid),
    "celu": elementwise("celu", nn.CELU) + elementwise("celu", lambda: nn.CELU(0.5), alpha=0.5),
    "selu": elementwise("selu", nn.SELU),
    "prelu": [
        case("prelu", (BATCH, 7), module=nn.PReLU),
        case(call("prelu", 7), (BATCH, 7), module=lambda: nn.PReLU(7)),
        case(call("prelu", 3), (BATCH, 3, 5), module=lambda: nn.PReLU(3)),
        case(call("prelu", channels=3), (BATCH, 3, 4, 5), module=lambda: nn.PReLU(3)),
        case("prelu", (BATCH, 3, 4, 5), module=nn.PReLU),
    ],
    "drop_path": [  # the identity at inference; training: test_drop_path_in_training
        case(call("drop_path", p), s, forward=fn(lambda x: x))
        for p, s in ((0.2, (BATCH, 7)), (0.5, (BATCH, 3, 5)), (0.1, (BATCH, 3, 4, 5)))
    ],
    "sum": [
        reduction("sum", 1),
        reduction("sum", (2, 3), True),
        reduction("sum", 1, True, shape=(BATCH, 5, 16)),
        reduction("sum", (0, 1), shape=(BATCH, 5, 16)),
    ],
    "max": [
        reduction("max", 1),
        reduction("max", -1),
        reduction("max", (2, 3), True),
        reduction("max", 1, True, shape=(BATCH, 5, 16)),
    ],
    "min": [
        reduction("min", 1),
        reduction("min", (1, 3)),
        reduction("min", -1, True),
        reduction("min", 1, True, shape=(BATCH, 5, 16)),
    ],
    "flatten": [
        flatten(),
        flatten(2),
        flatten(-2),
        flatten(3),
        flatten(shape=(BATCH, 7)),
        flatten(0, shape=(BATCH, 3, 4)),
    ],
    "reshape": [
        reshape(24),
        reshape(-1),
        reshape(6, 4),
        reshape(-1, 3),
        reshape(2, -1, 2),
        reshape(4, 6),
        reshape(3, 8, shape=(BATCH, 2, 3, 4)),
        reshape(-1, 1),
    ],
    "permute": [
        permute(0, 2, 1, 3),
        permute(0, 3, 1, 2),
        permute(3, 2, 1, 0),
        permute(0, 2, 1, shape=(BATCH, 5, 7)),
        permute(0, -1, 1, 2),
    ],
    "transpose": [
        transpose(1, 2),
        transpose(1, -1),
        transpose(0, 3),
        transpose(2, 2),
        transpose(1, 2, shape=(BATCH, 5, 7)),
    ],
    "mean": [
        mean(1),
        mean(-1),
        mean((2, 3)),
        mean((2, 3), True),
        mean(1, True),
        mean(1, False, shape=(BATCH, 5, 16)),
        mean((0, 1), shape=(BATCH, 5, 16)),
    ],
    "last": [
        case("last", s, forward=fn(lambda x: x[:, -1])) for s in ((BATCH, 5, 16), (BATCH, 1, 3))
    ],
    "add": binary("add", torch.add) + scalars("add", lambda a, b: a + b),
    "sub": binary("sub", torch.sub) + scalars("sub", lambda a, b: a - b),
    "mul": binary("mul", torch.mul) + scalars("mul", lambda a, b: a * b),
    "div": binary("div", torch.div) + scalars("div", lambda a, b: a / b),
    "neg": [case("neg", s, forward=fn(torch.neg)) for s in ((BATCH, 3), ("int64", (BATCH, 4)))],
    "pow": [
        case(f"pow({k})", (BATCH, 3, 4), forward=fn(lambda x, k=k: x**k)) for k in (2, 3, -1, -2)
    ]
    + [case("pow(2)", ("int64", (BATCH, 5)), forward=fn(lambda x: x**2))],
    "param": [
        param(4),
        param(1, 1, 6),
        param(2, 3, init="normal(0, 0.02)", ref_init=lambda t: nn.init.normal_(t, 0, 0.02)),
    ],
    "index": [
        case("x0[:, 0]", (BATCH, 3, 4), forward=fn(lambda x: x[:, 0])),
        case("x0[..., 1:]", (BATCH, 3, 4), forward=fn(lambda x: x[..., 1:])),
        case("x0[:, ::2, -1]", (BATCH, 5, 4), forward=fn(lambda x: x[:, ::2, -1])),
        case("x0[:, 1:3, ..., ::3]", (BATCH, 4, 2, 7), forward=fn(lambda x: x[:, 1:3, ..., ::3])),
        case("x0[:, -2:, :-1]", (BATCH, 5, 6), forward=fn(lambda x: x[:, -2:, :-1])),
        case("x0[:, 2:100]", (BATCH, 5), forward=fn(lambda x: x[:, 2:100])),
        case("x0[:, :]", (BATCH, 5), forward=fn(lambda x: x[:, :])),
    ],
    "expand": [
        case("expand(x0, 2, 3, 4)", (1, 3, 1), forward=fn(lambda x: x.expand(2, 3, 4))),
        case("expand(x0, -1, 3, 5)", (BATCH, 1, 5), forward=fn(lambda x: x.expand(-1, 3, 5))),
        case("expand((4, -1, -1, 2))", (BATCH, 3, 1), forward=fn(lambda x: x.expand(4, -1, -1, 2))),
        # A symbolic dim: the batch of another input (N where the batch is symbolic).
        case(
            "x1 | expand(x0.shape[0], -1, -1)",
            (BATCH, 3),
            (1, 1, 4),
            forward=fn(lambda x0, x1: x1.expand(x0.shape[0], -1, -1)),
        ),
        case(  # computed from it: 2 * N + 1
            "x1 | expand(2 * x0.shape[0] + 1, 1, -1)",
            (BATCH, 3),
            (1, 1, 4),
            forward=fn(lambda x0, x1: x1.expand(2 * x0.shape[0] + 1, 1, -1)),
        ),
    ],
    "chunk": parts("chunk", 2, 1, (BATCH, 6, 3), 2)
    + parts("chunk", 4, 1, (BATCH, 5, 3), 3)  # ceil(5 / 4) = 2: only three pieces
    + parts("chunk", 3, -1, (BATCH, 3, 7), 3),
    "split": parts("split", (2, 4), 1, (BATCH, 6, 3), 2)
    + parts("split", 2, 2, (BATCH, 3, 5), 3)
    + parts("split", (1, 1, 3), -1, (BATCH, 4, 5), 3),
    "matmul": [
        case("matmul(x0, x1)", a, b, forward=fn(torch.matmul), macs=FLOPS)
        for a, b in (
            ((BATCH, 3, 4), (BATCH, 4, 5)),
            ((BATCH, 3, 4), (4, 5)),
            ((BATCH, 2, 3, 4), (BATCH, 1, 4, 5)),
        )
    ]
    + [  # matrix-vector products, which FlopCounterMode does not count: out x inner
        case("matmul(x0, x1)", a, b, forward=fn(torch.matmul), macs=lambda m, xs, y: y.numel() * 4)
        for a, b in (((BATCH, 3, 4), (4,)), ((4,), (BATCH, 4, 5)))
    ],
    "concat": [
        concat(None, (BATCH, 3, 5), (BATCH, 4, 5)),
        concat(1, (BATCH, 3, 5, 5), (BATCH, 4, 5, 5), (BATCH, 1, 5, 5)),
        concat(-1, (BATCH, 3, 5), (BATCH, 3, 2)),
        concat(2, (BATCH, 3, 4, 5), (BATCH, 3, 6, 5)),
        concat(0, (BATCH, 3), (5, 3)),
        concat(1, (BATCH, 7), (BATCH, 9)),
    ],
    "conv3d": [
        conv(3, 3, 4, 3, (5, 6, 7)),
        conv(3, 3, 4, 2, (5, 6, 7), stride=2),
        conv(3, 3, 4, (1, 3, 2), (5, 6, 7), stride=(1, 2, 1), padding=(0, 1, 1)),
        conv(3, 4, 8, 3, (5, 6, 7), groups=2, dilation=(1, 2, 1), bias=False),
        conv(3, 4, 4, 3, (5, 6, 7), groups=4, padding=1),  # depthwise
        conv(3, 3, 4, 3, (5, 6, 7), padding="same"),
        conv(3, 3, 4, (2, 3, 3), (5, 6, 7), padding="same"),  # one more on the right in depth
        conv(3, 3, 4, 1, (5, 6, 7)),
    ],
    **{
        f"{kind}pool3d": [
            pool(kind, 3, k, size, **kw)
            for k, size, kw in (
                (2, (4, 6, 8), {}),
                (3, (5, 6, 7), {"stride": 2, "padding": 1}),
                ((1, 2, 3), (5, 6, 7), {"stride": (1, 2, 2)}),
                (2, (5, 6, 7), {"ceil_mode": True}),
                (3, (6, 7, 8), {"stride": 2, "padding": 1, "ceil_mode": True}),
            )
        ]
        for kind in ("max", "avg")
    },
    "adaptive_avgpool1d": [
        case(
            call("adaptive_avgpool1d", s), (BATCH, 3, n), module=lambda s=s: nn.AdaptiveAvgPool1d(s)
        )
        for s, n in ((1, 9), (3, 9), (4, 10), (7, 5))
    ],
    "adaptive_maxpool2d": [
        case(
            call("adaptive_maxpool2d", s),
            (BATCH, 3, *hw),
            module=lambda s=s: nn.AdaptiveMaxPool2d(s),
        )
        for s, hw in (
            (1, (7, 9)),
            (3, (7, 9)),
            ((2, 4), (7, 9)),
            ((7, 7), (5, 6)),
            ((1, 3), (6, 7)),
        )
    ],
    "groupnorm": [
        case(
            call("groupnorm", g, **kw),
            s,
            module=lambda g=g, s=s, kw=kw: nn.GroupNorm(g, s[1], **kw),
        )
        for g, s, kw in (
            (2, (BATCH, 6, 9), {}),
            (3, (BATCH, 6, 5, 7), {}),
            (1, (BATCH, 4, 5, 7), {}),
            (6, (BATCH, 6, 5, 7), {}),
            (2, (BATCH, 4, 5, 7), {"eps": 1e-3, "affine": False}),
            (2, (BATCH, 4), {}),
            (2, (BATCH, 4, 3, 4, 5), {}),
        )
    ],
    "instancenorm": [
        case(
            call("instancenorm", **kw) if kw else "instancenorm",
            s,
            module=lambda s=s, kw=kw: getattr(nn, f"InstanceNorm{len(s) - 2}d")(s[1], **kw),
        )
        for s, kw in (
            ((BATCH, 4, 9), {}),
            ((BATCH, 4, 5, 7), {}),
            ((BATCH, 4, 5, 7), {"affine": True}),
            ((BATCH, 4, 9), {"eps": 1e-3, "affine": True}),
            ((BATCH, 3, 4, 5, 6), {}),
        )
    ],
    "rmsnorm": [
        case(
            call("rmsnorm", **kw) if kw else "rmsnorm",
            s,
            module=lambda s=s, kw=kw: nn.RMSNorm(s[-1], **kw),
        )
        for s, kw in (
            ((BATCH, 16), {}),
            ((BATCH, 5, 16), {}),
            ((BATCH, 5, 16), {"eps": 1e-6}),
            ((BATCH, 3, 5, 7), {}),
        )
    ],
    "channel_shuffle": [
        case(call("channel_shuffle", g), s, module=lambda g=g: nn.ChannelShuffle(g))
        for g, s in (
            (2, (BATCH, 6, 9)),
            (3, (BATCH, 6, 4, 5)),
            (4, (BATCH, 8, 2, 3, 4)),
            (1, (BATCH, 3, 5)),
            (6, (BATCH, 6, 5)),
        )
    ],
    "pixel_shuffle": [
        case(call("pixel_shuffle", r), s, module=lambda r=r: nn.PixelShuffle(r))
        for r, s in (
            (2, (BATCH, 8, 3, 5)),
            (3, (BATCH, 9, 4, 2)),
            (1, (BATCH, 3, 4, 5)),
            (2, (BATCH, 4, 1, 1)),
        )
    ],
}

ALL = [pytest.param(op, c, id=f"{op}-{c}") for op, cases in CASES.items() for c in cases]


# --------------------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------------------
def source(c: Case) -> str:
    decls = "\n".join(
        f"  input x{i}: {dt}[{', '.join(map(str, s))}]" for i, (dt, s) in enumerate(c.inputs)
    )
    return f"network T() {{\n{decls}\n  y = {c.call}\n}}\n"


def random_input(dtype: str, shape: tuple[int, ...]):
    if dtype.startswith("int"):
        return torch.randint(0, 10, shape, dtype=getattr(torch, dtype))
    return torch.randn(shape)


def run_torch(c: Case):
    """(module or None, inputs, output, FLOPs counted by FlopCounterMode)."""
    torch.manual_seed(0)
    m = c.module() if c.module is not None else None
    xs = [random_input(dt, s) for dt, s in c.inputs]
    forward = c.forward or (lambda m, *xs: m(*xs))
    with FlopCounterMode(display=False) as counter:
        y = forward(m, *xs)
    return m, xs, y, counter.get_total_flops()


def torch_dtype(t) -> str:
    return str(t.dtype).removeprefix("torch.")


@pytest.mark.parametrize("op, c", ALL)
def test_op_matches_torch(op, c):
    m, xs, y, flops = run_torch(c)
    try:
        net = load_source(source(c))
    except DlcError as exc:
        pytest.fail(
            f"dlc rejects a layer that torch runs (giving {tuple(y.shape)}):\n{exc}", pytrace=False
        )
    node = net.graph.node("y")
    assert node.op == op

    # The output type.
    assert net.outputs["y"].shape == tuple(y.shape), source(c)
    assert net.outputs["y"].dtype == torch_dtype(y)

    # Parameters and buffers: names, shapes, dtypes, which are buffers, the counts.
    state = m.state_dict() if m is not None else {}
    ours = {k.removeprefix("y."): p for k, p in node.param_items()}  # a param is "y" itself
    assert {k: tuple(p.shape) for k, p in ours.items()} == {
        k: tuple(v.shape) for k, v in state.items()
    }
    assert {k: p.dtype for k, p in ours.items()} == {k: torch_dtype(v) for k, v in state.items()}
    buffers = {k for k, _ in m.named_buffers()} if m is not None else set()
    assert {k for k, p in ours.items() if p.buffer} == buffers
    assert net.params == (sum(p.numel() for p in m.parameters()) if m is not None else 0)
    assert net.buffers == (sum(b.numel() for b in m.buffers()) if m is not None else 0)

    # MACs per example.
    if c.macs == FLOPS:
        assert flops > 0, "FlopCounterMode counted nothing: give a hand formula"
        expected = flops // 2 // BATCH
    elif callable(c.macs):
        expected = c.macs(m, xs, y) // BATCH
    else:
        expected = c.macs
        assert flops == 0, "torch counts matmul FLOPs here: give the case a MAC rule"
    assert net.macs == expected


# --------------------------------------------------------------------------------------
# MACs against the hand formulas
# --------------------------------------------------------------------------------------
def macs_of(src: str) -> int:
    return load_source(src).macs


def test_macs_hand_formulas():
    # conv: output elements per example * Cin/groups * kernel area.
    src = "network T() {\n input x: float32[2, 8, 17, 19]\n conv2d(16, 3, stride=2, groups=4)\n}"
    out = CONV[2](8, 16, 3, stride=2, groups=4)(torch.randn(2, 8, 17, 19))
    assert macs_of(src) == out[0].numel() * (8 // 4) * 9
    # conv1d, causal and dilated: the output length is L.
    src = "network T() {\n input x: float32[2, 4, 30]\n conv1d(6, 3, dilation=4, causal=true)\n}"
    assert macs_of(src) == 6 * 30 * 4 * 3
    # linear: output elements per example * in_features.
    src = "network T() {\n input x: float32[2, 5, 16]\n dense(10)\n}"
    assert macs_of(src) == 5 * 10 * 16
    # rnn: T * sum over layers and directions of gates*h*(in + h).
    src = "network T() {\n input x: float32[2, 6, 5]\n lstm(7, layers=2, bidirectional=true)\n}"
    assert macs_of(src) == 6 * 2 * 4 * 7 * ((5 + 7) + (14 + 7))
    src = "network T() {\n input x: float32[2, 6, 5]\n gru(7, layers=3)\n}"
    assert macs_of(src) == 6 * 3 * 7 * ((5 + 7) + 2 * (7 + 7))
    # attention: 2*T*D*D + 2*S*Dm*D + 2*T*S*D.
    t, d, s, dm = 5, 16, 7, 12
    src = (
        "network T() {\n input q: float32[2, 5, 16]\n input mem: float32[2, 7, 12]\n"
        " y = attention(q, mem, heads=4)\n}"
    )
    assert macs_of(src) == 2 * t * d * d + 2 * s * dm * d + 2 * t * s * d
    # A network sums its layers.
    src = (
        "network T() {\n input x: float32[2, 3, 8, 8]\n conv2d(4, 3, padding=1); relu\n"
        " global_avgpool\n dense(10)\n}"
    )
    assert macs_of(src) == 4 * 64 * 3 * 9 + 10 * 4


# --------------------------------------------------------------------------------------
# Symbolic dims
# --------------------------------------------------------------------------------------
def test_symbolic_conv1d_length():
    net = load_source(
        "network T() {\n  input x: float32[N, 16, T]\n  conv1d(8, 3, stride=2, padding=1)\n}"
    )
    (out,) = net.outputs.values()
    n, c, length = out.shape
    assert str(n) == "N" and c == 8
    assert str(length) == "(T - 1) // 2 + 1"
    layer = nn.Conv1d(16, 8, 3, stride=2, padding=1)
    with torch.no_grad():
        for t in (1, 2, 3, 4, 5, 16, 17, 37, 64, 101):
            y = layer(torch.randn(1, 16, t))
            assert evaluate(length, {"T": t}) == y.shape[2], t
            assert evaluate(net.macs, {"T": t}) == y[0].numel() * 16 * 3, t


SYMBOLIC_1D = [
    (call("conv1d", 6, 3), lambda: nn.Conv1d(4, 6, 3), None),
    (
        call("conv1d", 6, 5, stride=3, padding=2, dilation=2),
        lambda: nn.Conv1d(4, 6, 5, stride=3, padding=2, dilation=2),
        None,
    ),
    (
        call("conv1d", 6, 4, padding="same", dilation=3),
        lambda: nn.Conv1d(4, 6, 4, padding="same", dilation=3),
        None,
    ),
    (
        call("conv1d", 6, 3, dilation=4, causal=True),
        lambda: nn.Conv1d(4, 6, 3, dilation=4),
        lambda m, x: m(F.pad(x, (8, 0))),
    ),
    (
        call("conv1d", 6, 3, stride=2, causal=True),
        lambda: nn.Conv1d(4, 6, 3, stride=2),
        lambda m, x: m(F.pad(x, (2, 0))),
    ),
    (
        call("conv_transpose1d", 6, 3, stride=2, padding=1, output_padding=1),
        lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1),
        None,
    ),
    (call("maxpool1d", 2), lambda: nn.MaxPool1d(2), None),
    (call("avgpool1d", 3, stride=2, padding=1), lambda: nn.AvgPool1d(3, stride=2, padding=1), None),
    (
        call("maxpool1d", 3, stride=2, ceil_mode=True),
        lambda: nn.MaxPool1d(3, stride=2, ceil_mode=True),
        None,
    ),
    (
        call("maxpool1d", 4, stride=3, padding=1, ceil_mode=True),
        lambda: nn.MaxPool1d(4, stride=3, padding=1, ceil_mode=True),
        None,
    ),
    (
        call("upsample", scale=3, mode="linear"),
        lambda: nn.Upsample(scale_factor=3, mode="linear"),
        None,
    ),
]


@pytest.mark.parametrize(
    "dl_call, module, forward", SYMBOLIC_1D, ids=[c for c, _, _ in SYMBOLIC_1D]
)
def test_symbolic_length_matches_torch(dl_call, module, forward):
    net = load_source(f"network T() {{\n  input x: float32[N, 4, T]\n  y = {dl_call}\n}}")
    length = net.outputs["y"].shape[2]
    layer = module()
    forward = forward or (lambda m, x: m(x))
    with torch.no_grad():
        for t in (9, 10, 11, 12, 13, 16, 29, 64):
            assert evaluate(length, {"T": t}) == forward(layer, torch.randn(1, 4, t)).shape[2], t


# --------------------------------------------------------------------------------------
# What torch rejects, dlc rejects at compile time
# --------------------------------------------------------------------------------------
REJECTED = [
    ("conv2d(8, 3, groups=2)", [(2, 3, 9, 9)], lambda x: nn.Conv2d(3, 8, 3, groups=2)(x)),
    ("conv2d(8, 3, groups=3)", [(2, 6, 9, 9)], lambda x: nn.Conv2d(6, 8, 3, groups=3)(x)),
    ("conv2d(8, 5)", [(2, 3, 4, 9)], lambda x: nn.Conv2d(3, 8, 5)(x)),
    ("conv1d(8, 3, dilation=4)", [(2, 3, 8)], lambda x: nn.Conv1d(3, 8, 3, dilation=4)(x)),
    (
        'conv1d(8, 3, stride=2, padding="same")',
        [(2, 3, 9)],
        lambda x: nn.Conv1d(3, 8, 3, stride=2, padding="same")(x),
    ),
    (
        "conv_transpose1d(4, 3, stride=2, output_padding=2)",
        [(2, 3, 9)],
        lambda x: nn.ConvTranspose1d(3, 4, 3, stride=2, output_padding=2)(x),
    ),
    (
        "conv_transpose2d(4, 3, groups=2)",
        [(2, 3, 9, 9)],
        lambda x: nn.ConvTranspose2d(3, 4, 3, groups=2)(x),
    ),
    ("maxpool1d(3, padding=2)", [(2, 3, 9)], lambda x: nn.MaxPool1d(3, padding=2)(x)),
    ("avgpool2d(4, padding=3)", [(2, 3, 9, 9)], lambda x: nn.AvgPool2d(4, padding=3)(x)),
    ("maxpool2d(5)", [(2, 3, 4, 9)], lambda x: nn.MaxPool2d(5)(x)),
    (
        "maxpool1d(3, stride=1, ceil_mode=true)",
        [(2, 3, 2)],
        lambda x: nn.MaxPool1d(3, stride=1, ceil_mode=True)(x),
    ),
    ("attention(3)", [(2, 5, 16)], lambda x: nn.MultiheadAttention(16, 3)(x, x, x)),
    (
        'upsample(mode="bilinear")',
        [(2, 3, 9)],
        lambda x: nn.Upsample(scale_factor=2, mode="bilinear")(x),
    ),
    ("batchnorm", [(2, 3, 4, 5, 6)], lambda x: nn.BatchNorm2d(3)(x)),
    ("embedding(10, 4)", [(2, 3)], lambda x: nn.Embedding(10, 4)(x)),
    ("softmax(axis=3)", [(2, 3, 4)], lambda x: x.softmax(3)),
    ("flatten(start=3)", [(2, 3, 4)], lambda x: torch.flatten(x, 3)),
    ("transpose(1, 3)", [(2, 3, 4)], lambda x: x.transpose(1, 3)),
    ("permute(0, 1, 1)", [(2, 3, 4)], lambda x: x.permute(0, 1, 1)),
    ("permute(0, 2)", [(2, 3, 4)], lambda x: x.permute(0, 2)),
    ("mean(axis=3)", [(2, 3, 4)], lambda x: x.mean(dim=3)),
    ("mean(axis=(1, 1))", [(2, 3, 4)], lambda x: x.mean(dim=(1, 1))),
    ("mean(axis=(1, -2))", [(2, 3, 4)], lambda x: x.mean(dim=(1, -2))),
    ("reshape(5, -1)", [(2, 3, 4)], lambda x: x.reshape(2, 5, -1)),
    ("reshape(5, 2)", [(2, 3, 4)], lambda x: x.reshape(2, 5, 2)),
    ("add(x0, x1)", [(2, 3, 4), (2, 5, 4)], lambda a, b: a + b),
    ("mul(x0, x1)", [(2, 3, 4), (3,)], lambda a, b: a * b),
    ("concat(x0, x1)", [(2, 3, 4), (2, 3, 5)], lambda a, b: torch.cat([a, b], 1)),
    ("concat(x0, x1, axis=3)", [(2, 3, 4), (2, 3, 4)], lambda a, b: torch.cat([a, b], 3)),
]


@pytest.mark.parametrize(
    "dl_call, inputs, reference",
    REJECTED,
    ids=[f"{c}@{s}".replace(" ", "") for c, s, _ in REJECTED],
)
def test_rejected_like_torch(dl_call, inputs, reference):
    xs = [torch.randn(s) for s in inputs]
    with pytest.raises((RuntimeError, ValueError, IndexError, AssertionError, NotImplementedError)):
        reference(*xs)
    with pytest.raises(DlcError):
        load_source(source(case(dl_call, *inputs)))

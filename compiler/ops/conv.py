"""Convolutions: conv1d, conv2d (causal is a padding mode of conv1d) and their transposes."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import Param, TensorType
from ..symbolic import Dim, floordiv, product
from .base import (
    BOOL,
    INIT_ARGS,
    Arg,
    ArgError,
    InferCtx,
    Op,
    integer,
    ints,
    padding,
    per_example,
    register,
)

SPATIAL = {1: ("length",), 2: ("height", "width")}
LAYOUT = {1: "[N, C, L]", 2: "[N, C, H, W]"}


def out_size(op: str, what: str, n: Dim, k: int, s: int, lo: int, hi: int, d: int) -> Dim:
    """PyTorch's convolution/pooling output size, with the arithmetic in the error."""
    out = floordiv(n + lo + hi - d * (k - 1) - 1, s) + 1
    if isinstance(out, int) and out <= 0:
        pad = f"2*{lo}" if lo == hi else f"{lo} + {hi}"
        span = f"{d}*({k} - 1)" if d != 1 else f"({k} - 1)"
        raise ShapeError(
            f"{op}: output {what} ({n} + {pad} - {span} - 1) // {s} + 1 = {out} is not positive: "
            f"the kernel ({k}, dilation {d}) does not fit in the padded input ({n} + {lo + hi})"
        )
    return out


class ConvNd(Op):
    """Convolution over the last ``rank`` axes, exactly as ``nn.Conv1d/2d``.

    ``L' = (L + pad_lo + pad_hi - dilation*(kernel-1) - 1) // stride + 1``. ``causal=true``
    (conv1d) pads ``(kernel-1)*dilation`` on the left only; ``"same"`` pads
    ``dilation*(kernel-1)`` in total, the extra one on the right, as PyTorch does.
    """

    def __init__(self, rank: int):
        self.rank = rank
        self.name = f"conv{rank}d"
        self.layout = LAYOUT[rank]
        self.signature = (
            Arg("filters", integer(1), doc="output channels"),
            Arg("kernel", ints(rank, 1)),
            Arg("stride", ints(rank, 1), 1),
            Arg("padding", padding(rank), 0),
            Arg("dilation", ints(rank, 1), 1),
            Arg("groups", integer(1), 1),
            Arg("bias", BOOL, True),
            *((Arg("causal", BOOL, False, "pad on the left only"),) if rank == 1 else ()),
            *INIT_ARGS,
        )

    def normalize(self, a):
        k, d = a["kernel"], a["dilation"]
        pad = a["padding"]
        if a.get("causal"):
            if pad not in (0, (0,) * self.rank, "valid"):
                raise ArgError("padding: must be 0 when causal=true (causal padding is implied)")
            pads = tuple(((ki - 1) * di, 0) for ki, di in zip(k, d))
        elif pad == "same":
            if any(s != 1 for s in a["stride"]):
                raise ArgError('padding: "same" needs stride=1 (as in PyTorch)')
            pads = tuple((t // 2, t - t // 2) for t in (di * (ki - 1) for ki, di in zip(k, d)))
        elif pad == "valid":
            pads = ((0, 0),) * self.rank
        else:
            pads = tuple((p, p) for p in pad)
        a["padding"] = pads
        if a["filters"] % a["groups"]:
            raise ArgError(
                f"groups: filters={a['filters']} is not divisible by groups={a['groups']}"
            )
        return a

    def infer(self, ctx: InferCtx, a, x: TensorType) -> TensorType:
        self.expect_rank(x, self.rank + 2)
        self.expect_float(x)
        c = self.known(x.shape[1], "channel count (axis 1)")
        if c % a["groups"]:
            raise ShapeError(
                f"{self.name}: input channels {c} are not divisible by groups={a['groups']}"
            )
        spatial = tuple(
            out_size(self.name, what, n, k, s, lo, hi, d)
            for what, n, k, s, (lo, hi), d in zip(
                SPATIAL[self.rank],
                x.shape[2:],
                a["kernel"],
                a["stride"],
                a["padding"],
                a["dilation"],
            )
        )
        return TensorType(x.dtype, (x.shape[0], a["filters"], *spatial))

    def params(self, a, x):
        p = {
            "weight": Param(
                (a["filters"], x.shape[1] // a["groups"], *a["kernel"]), "weight", init=a["init"]
            )
        }
        if a["bias"]:
            p["bias"] = Param((a["filters"],), "bias", init=a["bias_init"])
        return p

    def macs(self, a, y, x):
        return per_example(y.shape) * (x.shape[1] // a["groups"]) * product(a["kernel"])


class ConvTransposeNd(Op):
    """Transposed convolution, exactly as ``nn.ConvTranspose1d/2d``.

    ``L' = (L - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1``.
    """

    def __init__(self, rank: int):
        self.rank = rank
        self.name = f"conv_transpose{rank}d"
        self.layout = LAYOUT[rank]
        pos = integer(1)
        self.signature = (
            Arg("filters", pos, doc="output channels"),
            Arg("kernel", ints(rank, 1)),
            Arg("stride", ints(rank, 1), 1),
            Arg("padding", ints(rank, 0), 0),
            Arg("output_padding", ints(rank, 0), 0),
            Arg("dilation", ints(rank, 1), 1),
            Arg("groups", pos, 1),
            Arg("bias", BOOL, True),
            *INIT_ARGS,
        )

    def normalize(self, a):
        for op, s, d in zip(a["output_padding"], a["stride"], a["dilation"]):
            if op >= max(s, d):
                raise ArgError(f"output_padding: must be smaller than stride or dilation, got {op}")
        if a["filters"] % a["groups"]:
            raise ArgError(
                f"groups: filters={a['filters']} is not divisible by groups={a['groups']}"
            )
        return a

    def infer(self, ctx, a, x):
        self.expect_rank(x, self.rank + 2)
        self.expect_float(x)
        c = self.known(x.shape[1], "channel count (axis 1)")
        if c % a["groups"]:
            raise ShapeError(
                f"{self.name}: input channels {c} are not divisible by groups={a['groups']}"
            )
        spatial = []
        for what, n, k, s, p, op, d in zip(
            SPATIAL[self.rank],
            x.shape[2:],
            a["kernel"],
            a["stride"],
            a["padding"],
            a["output_padding"],
            a["dilation"],
        ):
            out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            if isinstance(out, int) and out <= 0:
                raise ShapeError(
                    f"{self.name}: output {what} ({n} - 1)*{s} - 2*{p} + {d}*({k} - 1) "
                    f"+ {op} + 1 = {out} is not positive"
                )
            spatial.append(out)
        return TensorType(x.dtype, (x.shape[0], a["filters"], *spatial))

    def params(self, a, x):
        p = {
            "weight": Param(
                (x.shape[1], a["filters"] // a["groups"], *a["kernel"]), "weight", init=a["init"]
            )
        }
        if a["bias"]:
            p["bias"] = Param((a["filters"],), "bias", init=a["bias_init"])
        return p

    def macs(self, a, y, x):
        return per_example(x.shape) * (a["filters"] // a["groups"]) * product(a["kernel"])


for _rank in (1, 2):
    register(ConvNd(_rank))
    register(ConvTransposeNd(_rank))

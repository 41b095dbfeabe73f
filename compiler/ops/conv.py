"""Convolutions: conv1d, conv2d, conv3d (causal is a padding mode of conv1d) and the 1-d and
2-d transposes."""

from __future__ import annotations

import contextvars
import functools
import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from ..errors import ShapeError
from ..ir.graph import Param, TensorType
from ..ir.symbolic import Dim, floordiv, product
from ..lazy import lazy_function
from ..lazy import numpy as np
from .base import (
    BOOL,
    INIT_ARGS,
    Arg,
    ArgError,
    InferCtx,
    Op,
    given,
    integer,
    ints,
    literal,
    padding,
    per_example,
    register,
    short,
)

as_strided = lazy_function("numpy.lib.stride_tricks", "as_strided")

SPATIAL = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
LAYOUT = {1: "[N, C, L]", 2: "[N, C, H, W]", 3: "[N, C, D, H, W]"}


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


def torch_pad(padding: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """``F.pad``'s argument for padding that PyTorch's conv layers cannot do themselves (the
    two sides of an axis differ: causal, or "same" with an even span); () if there is none."""
    if all(lo == hi for lo, hi in padding):
        return ()
    return tuple(p for pair in reversed(padding) for p in pair)  # F.pad: last axis first


# PyTorch's defaults of the keyword arguments of nn.Conv*d and nn.ConvTranspose*d.
TORCH_DEFAULTS = {
    "stride": 1,
    "padding": 0,
    "output_padding": 0,
    "dilation": 1,
    "groups": 1,
    "bias": True,
}


def torch_conv(cls: str, a, x: TensorType, **kwargs) -> tuple[str, dict, dict]:
    """``nn.Conv*d`` or ``nn.ConvTranspose*d``, as ``Op.torch_layer`` describes a layer."""
    size = {"in_channels": x.shape[1], "out_channels": a["filters"]}
    size["kernel_size"] = short(a["kernel"])
    return cls, size, given(TORCH_DEFAULTS, **kwargs, groups=a["groups"], bias=a["bias"])


# -- NumPy: images are computed channels-last -----------------------------------------------
# A kernel returns its channels-last result as a [N, C, *S] view, so the next convolution or
# pooling gets its channels-last operand back without a copy.
def channels_last(x: np.ndarray, pads=()) -> np.ndarray:
    """``[N, C, *S] -> [N, *S, C]``: a view, or a new array when ``pads`` (a (lo, hi) per
    spatial axis) pads it with zeros."""
    x = np.moveaxis(x, 1, -1)
    if not any(lo or hi for lo, hi in pads):
        return x
    size = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads))
    out = np.zeros((x.shape[0], *size, x.shape[-1]), x.dtype)
    out[(slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[1:-1], pads)))] = x
    return out


def windows(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """The sliding windows of a channels-last ``[N, *S, C]`` as a read-only view
    ``[N, *S', *kernel, C]``: no copy until a GEMM operand is made of it."""
    n, *size, c = x.shape
    sn, *steps, sc = x.strides
    out = [(s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(size, kernel, stride, dilation)]
    return as_strided(
        x,
        (n, *out, *kernel, c),
        (
            sn,
            *(s * st for s, st in zip(steps, stride)),
            *(s * d for s, d in zip(steps, dilation)),
            sc,
        ),
        writeable=False,
    )


# -- NumPy: GEMMs shared out by Python threads ---------------------------------------------
# OpenBLAS splits each GEMM statically among its threads, which wait on one another many times
# a call: when another process takes a core, every call goes at the pace of the thread that
# shares it. Independent tasks, each taken by whichever thread comes free, keep both cores'
# worth of work going (NumPy releases the GIL in copies and matmul) and share out the window
# copies too. That needs threadpoolctl, to run the BLAS single-threaded meanwhile; without it
# the tasks run in turn on the BLAS's own threads.
@functools.cache
def _blas() -> Any:
    """threadpoolctl's controller of this process's BLAS libraries, or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


# Whether this call shares its GEMMs out (backends/numpy.py times both ways and keeps the
# faster: on an idle machine the BLAS's own threads win, when another process holds a core
# the shared-out tasks do). The results are the same to the bit: only whole output rows and
# columns move between threads.
SHARE_GEMMS: contextvars.ContextVar[bool] = contextvars.ContextVar("share_gemms", default=True)


def blas_threads() -> int:
    """The threads to share GEMMs out among now: the BLAS's limit (as threadpoolctl sets
    it); 1, leaving the work to the BLAS's own threads, without threadpoolctl or where this
    call does not share (``SHARE_GEMMS``)."""
    blas = _blas()
    if blas is None or not SHARE_GEMMS.get():
        return 1
    return max(c.num_threads for c in blas.lib_controllers)


@functools.cache
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """The worker threads of process ``pid``: a forked child gets its own, as its parent's
    threads do not exist there."""
    return ThreadPoolExecutor(threads - 1, thread_name_prefix="dlc-numpy")


def parallel(task: Callable[..., None], tasks: list[tuple], threads: int) -> None:
    """``task(worker, *args)`` for each ``args`` in ``tasks``, on up to ``threads`` threads
    (this one included, ``worker`` numbering them) with the BLAS single-threaded meanwhile."""
    if threads <= 1 or len(tasks) == 1:
        for args in tasks:
            task(0, *args)
        return
    queue = iter(tasks)  # shared: next() on a list iterator is atomic under the GIL

    def work(worker: int) -> None:
        for args in queue:
            task(worker, *args)

    with _blas().limit(limits=1):
        pool = _pool(threads, os.getpid())
        futures = [pool.submit(work, i) for i in range(1, min(threads, len(tasks)))]
        try:
            work(0)
        finally:
            wait(futures)  # none may run past the limit's end
        for f in futures:
            f.result()  # re-raise a worker's exception


# im2col copies the windows this many elements at a time, each block multiplied while it is
# still in cache: one copy of every window (9x a 3x3 conv's input) would not fit.
IM2COL_BLOCK = 1 << 20
# Output channels of a column block: wide enough for the GEMM kernel, split only when there
# are fewer row blocks than twice the threads (deep layers have few output positions).
MIN_COLUMNS = 64


def im2col_gemm(
    win: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, relu: bool = False
) -> np.ndarray:
    """``win`` [N, *S', *k, C] (``windows``) times ``weight`` [k*C, Cout], plus ``bias``, then
    relu if asked: the channels-last output [N, *S', Cout], in blocks of whole images or
    output rows by blocks of output channels, shared out among the BLAS's threads
    (``parallel``)."""
    n, rows = win.shape[:2]
    per_row = math.prod(win.shape[2:])  # elements of one output row's windows
    cout = weight.shape[1]
    y = np.empty((*win.shape[: win.ndim // 2], cout), weight.dtype)
    if rows * per_row <= IM2COL_BLOCK:
        step = IM2COL_BLOCK // (rows * per_row)
        blocks = [(slice(i, i + step),) for i in range(0, n, step)]
        size = min(n, step) * rows * per_row
    else:
        step = max(1, IM2COL_BLOCK // per_row)
        blocks = [(i, slice(r, r + step)) for i in range(n) for r in range(0, rows, step)]
        size = min(rows, step) * per_row
    threads = blas_threads()
    split = min(-(-2 * threads // len(blocks)), max(1, cout // MIN_COLUMNS))
    width = -(-cout // split)
    tasks = [(b, slice(j, j + width)) for b in blocks for j in range(0, cout, width)]
    scratch = [np.empty(size, win.dtype) for _ in range(min(threads, len(tasks)))]

    def task(worker: int, block: tuple, cols: slice) -> None:
        src = win[block]
        a = scratch[worker][: src.size].reshape(src.shape)
        np.copyto(a, src)
        out = y[block].reshape(-1, cout)[:, cols]  # rows of the contiguous y: a view
        np.matmul(a.reshape(len(out), -1), weight[:, cols], out=out)
        if bias is not None:
            out += bias[cols]
        if relu:
            np.maximum(out, 0, out=out)

    parallel(task, tasks, threads)
    return y


def fold_affine(w, scale: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    """Weights whose output channel is axis 0 of ``weight``, followed by ``y * scale + shift``
    per channel, as one weight and bias (computed in float64)."""
    weight, bias = w["weight"], w.get("bias")
    return {
        "weight": (weight * scale.reshape(-1, *(1,) * (weight.ndim - 1))).astype(weight.dtype),
        "bias": ((0 if bias is None else bias) * scale + shift).astype(weight.dtype),
    }


def windowed(a, field: int, jump: int) -> tuple[int, int]:
    """A sliding window along the last axis widens the receptive field by (kernel - 1)
    dilated steps of the input's jump, and multiplies the jump by the stride."""
    dilation = a.get("dilation", (1,))[-1]
    return field + (a["kernel"][-1] - 1) * dilation * jump, jump * a["stride"][-1]


class ConvNd(Op):
    """Convolution over the last ``rank`` axes, exactly as ``nn.Conv1d/2d/3d``.

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

    lengths = "spatial"

    def macs(self, a, y, x):
        return per_example(y.shape) * (x.shape[1] // a["groups"]) * product(a["kernel"])

    def receptive(self, a, field, jump, *xs):
        return windowed(a, field, jump)

    def torch_layer(self, a, params, x):
        pad = 0 if torch_pad(a["padding"]) else tuple(lo for lo, _ in a["padding"])
        return torch_conv(
            f"Conv{self.rank}d", a, x, stride=a["stride"], padding=pad, dilation=a["dilation"]
        )

    def torch_source(self, a, m, x, lit=literal):
        pad = torch_pad(a["padding"])
        if not pad:
            return f"{m}({x})"
        return f"{m}(F.pad({x}, ({', '.join(lit(p, 'pad') for p in pad)})))"

    def onnx(self, g, a, node, x):
        # ONNX pads are all the begins, then all the ends: a causal conv pads (k-1)*d, 0.
        pads = [lo for lo, _ in a["padding"]] + [hi for _, hi in a["padding"]]
        weights = [g.param("weight")] + ([g.param("bias")] if a["bias"] else [])
        return g.op(
            "Conv",
            [x, *weights],
            kernel_shape=a["kernel"],
            strides=a["stride"],
            pads=pads,
            dilations=a["dilation"],
            group=a["groups"],
        )

    def numpy_prepare(self, a, w):
        # [Cout, C/g, *k] -> [g, k*C/g, Cout/g]: rows in the order of a window's elements.
        weight, g = w["weight"], a["groups"]
        cout, cg = weight.shape[:2]
        m = weight.reshape(g, cout // g, cg, -1).transpose(0, 3, 2, 1).reshape(g, -1, cout // g)
        return {"weight": np.ascontiguousarray(m[0] if g == 1 else m), "bias": w.get("bias")}

    numpy_relu = True

    def numpy(self, a, w, x, relu=False):
        k, s, g, bias = a["kernel"], a["stride"], a["groups"], w["bias"]
        x = channels_last(x, a["padding"])
        if g == 1 and (any(ki != 1 for ki in k) or any(si != 1 for si in s)):
            y = im2col_gemm(windows(x, k, s, a["dilation"]), w["weight"], bias, relu)
            return np.moveaxis(y, -1, 1)  # relu done, block by block
        if g == 1:
            y = x.reshape(-1, x.shape[-1]) @ w["weight"]  # a plain GEMM, no copy of x
            if bias is not None:
                y += bias
            y = y.reshape(*x.shape[:-1], -1)
        else:  # per group: the windows' channels split in g, one batched GEMM
            win = windows(x, k, s, a["dilation"])
            lead = win.shape[: self.rank + 1]
            cols = np.moveaxis(win.reshape(*win.shape[:-1], g, -1), -2, 0)
            y = np.matmul(cols.reshape(g, math.prod(lead), -1), w["weight"])
            y = y.transpose(1, 0, 2).reshape(*lead, -1)
            if bias is not None:
                y += bias
        if relu:
            np.maximum(y, 0, out=y)
        return np.moveaxis(y, -1, 1)

    def numpy_fold(self, a, w, scale, shift, rank):
        return fold_affine(w, scale, shift)


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

    lengths = "spatial"

    def macs(self, a, y, x):
        return per_example(x.shape) * (a["filters"] // a["groups"]) * product(a["kernel"])

    def torch_layer(self, a, params, x):
        return torch_conv(
            f"ConvTranspose{self.rank}d",
            a,
            x,
            stride=a["stride"],
            padding=a["padding"],
            output_padding=a["output_padding"],
            dilation=a["dilation"],
        )

    def onnx(self, g, a, node, x):
        # onnxruntime rejects output_padding >= stride, which PyTorch allows when the
        # dilation is larger. Those extra positions are the full transposed convolution's
        # cropped end padding (pad less at the end) and, past its end, zeros plus the bias
        # (Pad, then add the bias).
        hi, out_pad, extra = [], [], []
        for p, op, s in zip(a["padding"], a["output_padding"], a["stride"]):
            take = 0 if op < s else min(op, p)
            hi.append(p - take)
            out_pad.append(op if op < s else 0)
            extra.append(0 if op < s else op - take)
        bias = [g.param("bias")] if a["bias"] else []
        y = g.op(
            "ConvTranspose",
            [x, g.param("weight"), *([] if any(extra) else bias)],
            kernel_shape=a["kernel"],
            strides=a["stride"],
            pads=[*a["padding"], *hi],
            output_padding=out_pad,
            dilations=a["dilation"],
            group=a["groups"],
        )
        if not any(extra):
            return y
        y = g.op("Pad", [y, g.const([0] * (self.rank + 2) + [0, 0, *extra])])
        if bias:
            axes = g.const(list(range(1, self.rank + 1)))
            y = g.op("Add", [y, g.op("Unsqueeze", [bias[0], axes])])  # [C, 1, ...]
        return y

    def numpy_prepare(self, a, w):
        # [C, Cout/g, *k] -> [g, C/g, k*Cout/g]: an input pixel times it is its contribution
        # to the kernel-sized patch of the output it touches.
        weight, g = w["weight"], a["groups"]
        c, coutg = weight.shape[:2]
        m = weight.reshape(g, c // g, coutg, -1).transpose(0, 1, 3, 2).reshape(g, c // g, -1)
        return {"weight": np.ascontiguousarray(m[0] if g == 1 else m), "bias": w.get("bias")}

    def numpy(self, a, w, x):
        x = channels_last(x)
        n, *size, c = x.shape
        rows, g, k = math.prod(x.shape[:-1]), a["groups"], a["kernel"]
        if g == 1:
            cols = x.reshape(rows, c) @ w["weight"]
        else:
            cols = np.matmul(x.reshape(rows, g, c // g).transpose(1, 0, 2), w["weight"])
            cols = cols.reshape(g, rows, math.prod(k), -1).transpose(1, 2, 0, 3)
        cols = cols.reshape(n, *size, *k, -1)
        s, d, p, op = a["stride"], a["dilation"], a["padding"], a["output_padding"]
        span = [(m - 1) * si + di * (ki - 1) + 1 for m, si, di, ki in zip(size, s, d, k)]
        full = [sp + max(o - pi, 0) for sp, o, pi in zip(span, op, p)]  # output_padding past it
        y = np.zeros((n, *full, cols.shape[-1]), cols.dtype)
        every = (slice(None),) * (self.rank + 1)
        for tap in itertools.product(*map(range, k)):  # col2im: one strided add per tap
            dst = (
                slice(t * di, t * di + (m - 1) * si + 1, si)
                for t, di, m, si in zip(tap, d, size, s)
            )
            y[(slice(None), *dst)] += cols[(*every, *tap)]
        y = y[(slice(None), *(slice(pi, sp - pi + o) for pi, sp, o in zip(p, span, op)))]
        if w["bias"] is not None:
            y += w["bias"]
        return np.moveaxis(y, -1, 1)


for _rank in (1, 2):
    register(ConvNd(_rank))
    register(ConvTransposeNd(_rank))
register(ConvNd(3))

"""Dense layers, embeddings, positional encoding and dropout."""

from __future__ import annotations

import functools

from ..errors import ShapeError
from ..ir.graph import INT_DTYPES, Param, TensorType
from ..lazy import numpy as np
from .base import (
    BOOL,
    INIT_ARGS,
    Arg,
    Op,
    Require,
    given,
    integer,
    literal,
    per_example,
    real,
    register,
)
from .conv import fold_affine


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

    def torch_layer(self, a, params, x):
        size = {"in_features": x.shape[-1], "out_features": a["units"]}
        return "Linear", size, given({"bias": True}, bias=a["bias"])

    def onnx(self, g, a, node, x):
        bias = [g.param("bias")] if a["bias"] else []
        if g.type(x).rank == 2:
            return g.op("Gemm", [x, g.param("weight"), *bias], transB=1)
        w = g.derived("weight_t", g.weight("weight").T, "weight transposed to [in, out]")
        y = g.op("MatMul", [x, w])  # Gemm takes matrices only
        return g.op("Add", [y, *bias]) if bias else y

    def numpy_prepare(self, a, w):
        return {"weight": np.ascontiguousarray(w["weight"].T), "bias": w.get("bias")}

    def numpy(self, a, w, x):
        y = x.reshape(-1, x.shape[-1]) @ w["weight"]  # one GEMM over every leading axis
        if w["bias"] is not None:
            y += w["bias"]
        return y.reshape(*x.shape[:-1], -1)

    def numpy_fold(self, a, w, scale, shift, rank):
        return fold_affine(w, scale, shift) if rank == 2 else None  # units must be axis 1


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

    def requires(self, a, x):
        return (Require(0, None, 0, a["vocab"] - 1, "token id", f"vocab={a['vocab']}"),)

    def torch_layer(self, a, params, x):
        return "Embedding", {"num_embeddings": a["vocab"], "embedding_dim": a["dim"]}, {}

    def onnx(self, g, a, node, ids):
        return g.op("Gather", [g.param("weight"), ids], axis=0)

    def numpy(self, a, w, ids):
        lo, hi = (ids.min(), ids.max()) if ids.size else (0, 0)
        if lo < 0 or hi >= a["vocab"]:  # NumPy would wrap a negative id around
            bad = lo if lo < 0 else hi
            raise ValueError(f"token id {bad} is out of range for vocab={a['vocab']}")
        return np.take(w["weight"], ids, axis=0)


def sinusoid(length: int, d: int) -> np.ndarray:
    """The positional encoding table [length, d] (float64)."""
    angle = np.arange(length)[:, None] * np.exp(np.arange(0, d, 2) * (-np.log(10000.0) / d))
    pe = np.zeros((length, d))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)[:, : d // 2]
    return pe


# The torch lowering, as emitted source (see ``Op.torch_helpers``).
_PE_TORCH = '''
def sinusoid_table(length: int, d: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...), as a [length, d] table."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    angle = pos * 10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32, device=device) / -d)
    return torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(1)[:, :d].to(dtype)


def positional_encoding(x: torch.Tensor, max_len: int) -> torch.Tensor:
    """x + the sinusoidal encoding of its steps (at most ``max_len``)."""
    if x.shape[1] > max_len:
        raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={max_len}")
    return x + sinusoid_table(x.shape[1], x.shape[2], x.device, x.dtype)
'''


@register
class PositionalEncoding(Op):
    """Adds the sinusoidal table ``PE[t, 2i] = sin(t / 10000^(2i/D))``, ``PE[t, 2i+1] =
    cos(t / 10000^(2i/D))`` to ``[N, T, D]``; no parameters. ``T`` may not exceed
    ``max_len``."""

    name = "positional_encoding"
    layout = "[N, T, D]"
    lengths = "sequence"
    pointwise = True  # adds a constant per position
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

    def requires(self, a, x):
        limit = a["max_len"]
        return (Require(0, 1, 1, limit, "sequence length", f"max_len={limit}"),)

    torch_helpers = {"positional_encoding": _PE_TORCH}

    def torch_source(self, a, m, x, lit=literal):
        return f"positional_encoding({x}, {lit(a['max_len'], 'max_len')})"

    def onnx(self, g, a, node, x):
        t, d = g.type(x).shape[1:]
        if isinstance(t, int):
            return g.op("Add", [x, g.const(sinusoid(t, d))])
        # A symbolic T: the whole table, sliced to the first T rows at run time.
        table = g.const(sinusoid(a["max_len"], d))
        rows = g.op("Slice", [table, g.const([0]), g.dim(x, 1), g.const([0])])
        return g.op("Add", [x, rows])

    numpy_inplace = True

    def numpy(self, a, w, x, out=None):
        t, d = x.shape[1:]
        if t > a["max_len"]:
            raise ValueError(f"sequence length {t} exceeds max_len={a['max_len']}")
        return np.add(x, _sinusoid32(t, d), out=out)


@functools.lru_cache(maxsize=16)
def _sinusoid32(length: int, d: int) -> np.ndarray:
    return sinusoid(length, d).astype(np.float32)


@register
class Dropout(Op):
    """``nn.Dropout(p)``: zeroes elements with probability ``p`` in training, identity at
    inference."""

    pointwise = True

    name = "dropout"
    layout = "any"
    signature = (Arg("p", real(0, 1, hi_open=True), 0.5),)

    def infer(self, ctx, a, x):
        self.expect_float(x)
        return x

    def torch_layer(self, a, params, x):
        return "Dropout", {"p": a["p"]}, {}

    def onnx(self, g, a, node, x):
        return x  # identity at inference: no node at all

    numpy_view = True

    def numpy(self, a, w, x):
        return x


# Torchvision's stochastic_depth(mode="row"), in plain torch, drawing the mask as it does.
_DROP_PATH_TORCH = '''
def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """In training, each example zeroed with probability p, the rest scaled by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
    mask.bernoulli_(keep)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask
'''


@register
class DropPath(Dropout):
    """Stochastic depth as ``torchvision.ops.stochastic_depth(mode="row")``, zeroing whole
    examples with probability ``p`` in training and scaling the rest by ``1 / (1 - p)``, an
    identity at inference."""

    name = "drop_path"
    signature = (Arg("p", real(0, 1)),)
    torch_helpers = {"drop_path": _DROP_PATH_TORCH}

    def torch_layer(self, a, params, x):
        return None  # a function of the module's training flag, not a layer

    def torch_source(self, a, m, x, lit=literal):
        return f"drop_path({x}, {lit(a['p'], 'p')}, self.training)"

"""Multi-head attention, exactly as ``nn.MultiheadAttention(batch_first=True)``."""

from __future__ import annotations

import functools
import math

from ..errors import ShapeError
from ..ir.graph import Init, Param
from ..lazy import numpy as np
from .base import (
    BOOL,
    INIT_ARGS,
    ROLE_DEFAULTS,
    Arg,
    Op,
    given,
    integer,
    literal,
    real,
    register,
)


@register
class Attention(Op):
    """Self-attention over ``[N, T, D]`` (``attention(heads)``), or cross-attention of a
    query over a memory ``[N, S, Dm]`` (``attention(query, memory, heads=...)``):
    ``[N, T, D] -> [N, T, D]``. ``causal=true`` masks the future (query step t sees key
    steps <= t). With ``Dm == D`` the projections are packed in ``in_proj_weight``
    ``[3D, D]``; otherwise they are ``q_proj_weight``, ``k_proj_weight`` and
    ``v_proj_weight``, as in PyTorch.
    """

    name = "attention"
    layout = "[N, T, D]"
    lengths = "sequence"
    n_inputs = (1, 2)
    signature = (
        Arg("heads", integer(1)),
        Arg("causal", BOOL, False),
        Arg("dropout", real(0, 1, hi_open=True), 0.0, "on the attention weights, in training"),
        Arg("bias", BOOL, True),
        *INIT_ARGS,
    )

    def infer(self, ctx, a, q, mem=None):
        mem = mem or q
        for role, t in (("query", q), ("memory", mem)):
            if t.rank != 3:
                raise ShapeError(f"attention expects a rank-3 {role} [N, T, D], got {t}")
            self.expect_float(t)
        d = self.known(q.shape[2], "model width (last axis of the query)")
        self.known(mem.shape[2], "memory width (last axis of the memory)")
        if d % a["heads"]:
            raise ShapeError(f"attention: model width {d} is not divisible by heads={a['heads']}")
        ctx.same(q.shape[0], mem.shape[0], "attention: batch of query and memory")
        if a["causal"] and mem is not q:
            ctx.same(q.shape[1], mem.shape[1], "attention: causal cross-attention needs T == S")
        return q

    def params(self, a, q, mem=None):
        d, dm = q.shape[2], (mem or q).shape[2]
        w, b = a["init"], a["bias_init"]
        if dm == d:
            p = {"in_proj_weight": Param((3 * d, d), "weight", init=w)}
        else:
            p = {
                "q_proj_weight": Param((d, d), "weight", init=w),
                "k_proj_weight": Param((d, dm), "weight", init=w),
                "v_proj_weight": Param((d, dm), "weight", init=w),
            }
        if a["bias"]:
            p["in_proj_bias"] = Param((3 * d,), "bias", init=b)
        p["out_proj.weight"] = Param((d, d), "weight", init=w)
        if a["bias"]:
            p["out_proj.bias"] = Param((d,), "bias", init=b)
        return p

    def default_inits(self, a, params):
        """``nn.MultiheadAttention._reset_parameters``: xavier_uniform input projections,
        zero biases; ``out_proj.weight`` keeps ``nn.Linear``'s kaiming_uniform(a=sqrt(5))."""
        out = {
            name: Init("zeros") if p.role == "bias" else Init("xavier_uniform")
            for name, p in params.items()
        }
        out["out_proj.weight"] = ROLE_DEFAULTS["weight"]
        return out

    def macs(self, a, y, q, mem=None):
        mem = mem or q
        d, t, s, dm = q.shape[2], q.shape[1], mem.shape[1], mem.shape[2]
        projections = t * d * d + 2 * s * dm * d + t * d * d
        return projections + 2 * t * s * d  # scores and the weighted sum of values

    torch_helpers = {
        "causal_mask": '''
def causal_mask(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """True where query step t would see key steps after t, which attention may not."""
    return torch.ones(q.shape[1], k.shape[1], dtype=torch.bool, device=q.device).triu(1)
'''
    }

    def torch_layer(self, a, params, q, mem=None):
        d, dm = q.shape[2], (mem or q).shape[2]
        kwargs = given({"dropout": 0.0, "bias": True}, dropout=a["dropout"], bias=a["bias"])
        if dm != d:
            kwargs.update(kdim=dm, vdim=dm)
        kwargs["batch_first"] = True
        return "MultiheadAttention", {"embed_dim": d, "num_heads": a["heads"]}, kwargs

    def torch_source(self, a, m, q, mem=None, lit=literal):
        kv = mem or q
        mask = f"attn_mask=causal_mask({q}, {kv}), " if a["causal"] else ""
        return f"{m}({q}, {kv}, {kv}, {mask}need_weights=False)[0]"

    def onnx(self, g, a, node, q, mem=None):
        d, heads = g.type(q).shape[2], a["heads"]
        mem = mem or q
        packed = "in_proj_weight" in node.params
        if packed:
            ws = np.split(g.weight("in_proj_weight"), 3)
        else:
            ws = [g.weight(f"{role}_proj_weight") for role in "qkv"]
        bs = np.split(g.weight("in_proj_bias"), 3) if a["bias"] else [None] * 3
        scale = 1 / math.sqrt(d // heads)

        def project(i: int, x: str) -> str:
            """x @ W_i^T + b_i; the softmax scale is folded into the query projection."""
            role, rows = "qkv"[i], f"[{i * d}:{(i + 1) * d}]"
            k, note = (scale, ", scaled by 1/sqrt(head dim)") if i == 0 else (1.0, "")
            src = f"in_proj_weight{rows}" if packed else f"{role}_proj_weight"
            w = g.derived(f"{role}_proj.weight_t", ws[i].T * k, f"{src} transposed{note}")
            y = g.op("MatMul", [x, w])
            if bs[i] is None:
                return y
            b = g.derived(f"{role}_proj.bias", bs[i] * k, f"in_proj_bias{rows}{note}")
            return g.op("Add", [y, b])

        def split_heads(x: str, perm: tuple[int, ...]) -> str:
            """[N, T, D] -> [N, T, heads, D/heads], then ``perm``."""
            x = g.op("Reshape", [x, g.const([0, 0, heads, d // heads])])
            return g.op("Transpose", [x], perm=perm)

        qh = split_heads(project(0, q), (0, 2, 1, 3))  # [N, heads, T, dh]
        kh = split_heads(project(1, mem), (0, 2, 3, 1))  # [N, heads, dh, S]
        vh = split_heads(project(2, mem), (0, 2, 1, 3))  # [N, heads, S, dh]
        scores = g.op("MatMul", [qh, kh])  # [N, heads, T, S]
        if a["causal"]:  # query step t sees key steps <= t; the mask is built from T and S
            rows = g.op("Range", [g.const(0), g.dim(q, 1, scalar=True), g.const(1)])
            cols = g.op("Range", [g.const(0), g.dim(mem, 1, scalar=True), g.const(1)])
            future = g.op("Greater", [cols, g.op("Unsqueeze", [rows, g.const([1])])])
            scores = g.op("Where", [future, g.const(-np.inf), scores])
        out = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), vh])
        out = g.op("Reshape", [g.op("Transpose", [out], perm=(0, 2, 1, 3)), g.const([0, 0, d])])
        w = g.weight("out_proj.weight").T
        y = g.op("MatMul", [out, g.derived("out_proj.weight_t", w, "out_proj.weight transposed")])
        return g.op("Add", [y, g.param("out_proj.bias")]) if a["bias"] else y

    def numpy_prepare(self, a, w):
        """The projections as [in, out] GEMM operands, q, k and v side by side (one GEMM for
        self-attention); the softmax scale 1/sqrt(head dim) is folded into q's."""
        d = w["out_proj.weight"].shape[0]
        scale = 1 / math.sqrt(d // a["heads"])
        if "in_proj_weight" in w:
            wq, wk, wv = np.split(w["in_proj_weight"], 3)
        else:
            wq, wk, wv = (w[f"{role}_proj_weight"] for role in "qkv")
        qkv = np.concatenate([wq.T * scale, wk.T, wv.T], axis=1) if wk.shape[1] == d else None
        out = {
            "qkv": qkv,
            "q": qkv[:, :d] if qkv is not None else np.ascontiguousarray(wq.T * scale),
            "kv": qkv[:, d:] if qkv is not None else np.concatenate([wk.T, wv.T], axis=1),
            "qkv_bias": None,
            "out": np.ascontiguousarray(w["out_proj.weight"].T),
            "out_bias": w.get("out_proj.bias"),
        }
        if "in_proj_bias" in w:
            bias = w["in_proj_bias"].copy()
            bias[:d] *= scale
            out.update(qkv_bias=bias, q_bias=bias[:d], kv_bias=bias[d:])
        return out

    def numpy(self, a, w, q, mem=None):
        n, t, d = q.shape
        heads, bias = a["heads"], w["qkv_bias"]
        if mem is None or mem is q:  # self-attention: q, k and v in one GEMM
            qkv = q.reshape(n * t, d) @ w["qkv"]
            if bias is not None:
                qkv += bias
            qkv = qkv.reshape(n, t, 3, heads, -1)
            qh, kh, vh = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # [N, h, T, dh]
        else:
            qp = q.reshape(n * t, d) @ w["q"]
            kv = mem.reshape(-1, mem.shape[2]) @ w["kv"]
            if bias is not None:
                qp += w["q_bias"]
                kv += w["kv_bias"]
            qh = qp.reshape(n, t, heads, -1).transpose(0, 2, 1, 3)
            kv = kv.reshape(n, mem.shape[1], 2, heads, -1)
            kh, vh = (kv[:, :, i].transpose(0, 2, 1, 3) for i in range(2))
        scores = np.matmul(qh, kh.transpose(0, 1, 3, 2))  # [N, h, T, S]
        if a["causal"]:
            scores += _future_mask(t, scores.shape[-1])
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        ctx = np.matmul(scores, vh)
        ctx /= scores.sum(axis=-1, keepdims=True)  # the softmax's division, on [T, dh] not [T, S]
        y = ctx.transpose(0, 2, 1, 3).reshape(n * t, d) @ w["out"]
        if w["out_bias"] is not None:
            y += w["out_bias"]
        return y.reshape(n, t, d)


@functools.lru_cache(maxsize=16)
def _future_mask(t: int, s: int) -> np.ndarray:
    """-inf where key step > query step: query t sees keys <= t."""
    return np.triu(np.full((t, s), -np.inf, np.float32), 1)

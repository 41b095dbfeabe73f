"""Multi-head attention, exactly as ``nn.MultiheadAttention(batch_first=True)``."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import Init, Param
from .base import BOOL, INIT_ARGS, ROLE_DEFAULTS, Arg, Op, integer, real, register


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

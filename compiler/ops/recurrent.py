"""Recurrent layers: rnn, lstm and gru over batch-first sequences, as ``nn.RNN/LSTM/GRU``."""

from __future__ import annotations

import math

from ..ir import Init, Param, TensorType
from .base import BOOL, INIT_ARGS, Arg, ArgError, Op, choice, integer, real, register

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class Recurrent(Op):
    """``nn.RNN/LSTM/GRU(D, hidden, layers, batch_first=True, dropout, bidirectional)``:
    ``[N, T, D] -> [N, T, hidden * directions]`` (the full output sequence).

    Parameters per layer ``l`` and direction (suffix ``_reverse``): ``weight_ih_l{l}``
    ``[gates*hidden, in]``, ``weight_hh_l{l}`` ``[gates*hidden, hidden]`` and the biases
    ``bias_ih_l{l}``, ``bias_hh_l{l}``, with PyTorch's gate order (LSTM i, f, g, o; GRU
    r, z, n). ``dropout`` applies between layers in training.
    """

    layout = "[N, T, D]"

    def __init__(self, name: str):
        self.name = name
        self.gates = GATES[name]
        self.signature = (
            Arg("hidden", integer(1)),
            Arg("layers", integer(1), 1),
            Arg("bidirectional", BOOL, False),
            Arg("dropout", real(0, 1), 0.0, "between layers, in training"),
            *((Arg("nonlinearity", choice("tanh", "relu"), "tanh"),) if name == "rnn" else ()),
            Arg("bias", BOOL, True),
            *INIT_ARGS,
        )

    def normalize(self, a):
        if a["dropout"] >= 1:
            raise ArgError(f"dropout: must be in [0, 1), got {a['dropout']}")
        return a

    def directions(self, a) -> int:
        return 2 if a["bidirectional"] else 1

    def infer(self, ctx, a, x):
        self.expect_rank(x, 3)
        self.expect_float(x)
        self.known(x.shape[2], "input size (last axis)")
        return TensorType(x.dtype, (x.shape[0], x.shape[1], a["hidden"] * self.directions(a)))

    def params(self, a, x):
        h, g = a["hidden"], self.gates * a["hidden"]
        p = {}
        for layer in range(a["layers"]):
            size = x.shape[2] if layer == 0 else h * self.directions(a)
            for suffix in ("", "_reverse")[: self.directions(a)]:
                tag = f"l{layer}{suffix}"
                p[f"weight_ih_{tag}"] = Param((g, size), "weight", init=a["init"])
                p[f"weight_hh_{tag}"] = Param((g, h), "weight", init=a["init"])
                if a["bias"]:
                    p[f"bias_ih_{tag}"] = Param((g,), "bias", init=a["bias_init"])
                    p[f"bias_hh_{tag}"] = Param((g,), "bias", init=a["bias_init"])
        return p

    def default_inits(self, a, params):
        """``nn.RNNBase.reset_parameters``: every tensor uniform(+-1/sqrt(hidden))."""
        bound = 1 / math.sqrt(a["hidden"])
        return dict.fromkeys(params, Init("uniform", (("a", -bound), ("b", bound))))

    def macs(self, a, y, x):
        h, g, dirs = a["hidden"], self.gates * a["hidden"], self.directions(a)
        per_step = (
            sum(g * ((x.shape[2] if layer == 0 else h * dirs) + h) for layer in range(a["layers"]))
            * dirs
        )
        return x.shape[1] * per_step


for _name in GATES:
    register(Recurrent(_name))

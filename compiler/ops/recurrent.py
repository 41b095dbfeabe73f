"""Recurrent layers: rnn, lstm and gru over batch-first sequences, as ``nn.RNN/LSTM/GRU``."""

from __future__ import annotations

import math

from ..ir.graph import Init, Param, TensorType
from ..lazy import numpy as np
from .base import (
    BOOL,
    INIT_ARGS,
    OPS,
    Arg,
    ArgError,
    Op,
    choice,
    given,
    integer,
    literal,
    real,
    register,
)

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# PyTorch's gate blocks in ONNX's order: LSTM i, f, g, o -> i, o, f, c; GRU r, z, n -> z, r, h.
ONNX_GATES = {"rnn": ["i"], "lstm": ["i", "o", "f", "g"], "gru": ["z", "r", "n"]}
TORCH_GATES = {"rnn": ["i"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}
# The NumPy kernel's gate blocks: PyTorch's reordered so that the sigmoid gates come first, and
# how many are sigmoids (LSTM i, f, o, g; GRU r, z, n).
NUMPY_GATES = {"rnn": ((0,), 0), "lstm": ((0, 1, 3, 2), 3), "gru": ((0, 1, 2), 2)}


class Recurrent(Op):
    """``nn.RNN/LSTM/GRU(D, hidden, layers, batch_first=True, dropout, bidirectional)``:
    ``[N, T, D] -> [N, T, hidden * directions]`` (the full output sequence).

    Parameters per layer ``l`` and direction (suffix ``_reverse``): ``weight_ih_l{l}``
    ``[gates*hidden, in]``, ``weight_hh_l{l}`` ``[gates*hidden, hidden]`` and the biases
    ``bias_ih_l{l}``, ``bias_hh_l{l}``, with PyTorch's gate order (LSTM i, f, g, o; GRU
    r, z, n). ``dropout`` applies between layers in training.
    """

    layout = "[N, T, D]"
    lengths = "sequence"

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

    def torch_layer(self, a, params, x):
        defaults = {"num_layers": 1, "nonlinearity": "tanh", "bias": True, "dropout": 0.0}
        kwargs = given(
            {**defaults, "bidirectional": False},
            num_layers=a["layers"],
            nonlinearity=a.get("nonlinearity", "tanh"),
            bias=a["bias"],
            batch_first=True,
            dropout=a["dropout"],
            bidirectional=a["bidirectional"],
        )
        return self.name.upper(), {"input_size": x.shape[2], "hidden_size": a["hidden"]}, kwargs

    def torch_source(self, a, m, x, lit=literal):
        return f"{m}({x})[0]"

    def onnx(self, g, a, node, x):
        h, dirs, layers = a["hidden"], self.directions(a), a["layers"]
        order = [TORCH_GATES[self.name].index(gate) for gate in ONNX_GATES[self.name]]

        def stacked(kind: str, layer: int) -> np.ndarray:
            """``kind`` of every direction, gates in ONNX's order: [dirs, gates*h, ...]."""
            out = []
            for suffix in ("", "_reverse")[:dirs]:
                w = g.weight(f"{kind}_l{layer}{suffix}")
                out.append(w.reshape(self.gates, h, *w.shape[1:])[order].reshape(w.shape))
            return np.stack(out)

        attrs = {"hidden_size": h, "direction": "bidirectional" if dirs == 2 else "forward"}
        if self.name == "gru":
            attrs["linear_before_reset"] = 1  # PyTorch applies r to (W_hn h + b_hn)
        if self.name == "rnn":
            attrs["activations"] = [a["nonlinearity"].capitalize()] * dirs
        how = f"stacked by direction, gates in ONNX's order {', '.join(ONNX_GATES[self.name])}"
        # onnxruntime runs recurrent ops only time-major (layout=0): [T, N, D].
        seq = g.op("Transpose", [x], perm=(1, 0, 2))
        for layer in range(layers):
            inputs = [
                seq,
                g.derived(f"W_l{layer}", stacked("weight_ih", layer), f"weight_ih_l{layer} {how}"),
                g.derived(f"R_l{layer}", stacked("weight_hh", layer), f"weight_hh_l{layer} {how}"),
            ]
            if a["bias"]:
                b = np.concatenate([stacked("bias_ih", layer), stacked("bias_hh", layer)], axis=1)
                doc = f"bias_ih_l{layer} then bias_hh_l{layer}, {how}"
                inputs.append(g.derived(f"B_l{layer}", b, doc))
            y = g.op(self.name.upper(), inputs, **attrs)  # [T, dirs, N, h]
            # The next layer reads [T, N, dirs*h]; the last one's output is batch-first.
            last = layer == layers - 1
            seq = g.op("Transpose", [y], perm=(2, 0, 1, 3) if last else (0, 2, 1, 3))
            seq = g.op("Reshape", [seq, g.const([0, 0, -1])])
        return seq

    def numpy_prepare(self, a, w):
        """Per layer: every direction's input weights as one GEMM operand [dirs*G, in], the
        biases that do not depend on h, and the hidden weights as [dirs, G, H]. Gate blocks
        are reordered (``NUMPY_GATES``) and the sigmoid gates' rows halved, so that one tanh
        serves every gate: sigmoid(x) = (1 + tanh(x/2)) / 2, and halving is exact."""
        h, dirs = a["hidden"], self.directions(a)
        order, sigmoids = NUMPY_GATES[self.name]
        scale = np.ones(self.gates * h)
        scale[: sigmoids * h] = 0.5

        def gates(m):
            m = m.reshape(self.gates, h, *m.shape[1:])[list(order)].reshape(m.shape)
            return (m * scale.reshape(-1, *(1,) * (m.ndim - 1))).astype(np.float32)

        zeros = np.zeros(self.gates * h, np.float32)
        layers = []
        for layer in range(a["layers"]):
            tags = [f"l{layer}{suffix}" for suffix in ("", "_reverse")[:dirs]]
            b_ih = [gates(w.get(f"bias_ih_{t}", zeros)) for t in tags]
            b_hh = [gates(w.get(f"bias_hh_{t}", zeros)) for t in tags]
            b_hn = None
            if self.name == "gru":  # b_hn stays inside r * (W_hn h + b_hn)
                b_hn = np.stack([b[2 * h :] for b in b_hh])[:, :, None]
                b_hh = [np.concatenate([b[: 2 * h], zeros[:h]]) for b in b_hh]
            b = np.stack(b_ih) + np.stack(b_hh)
            layers.append(
                {
                    "w_ih": np.concatenate([gates(w[f"weight_ih_{t}"]) for t in tags]),
                    "b": b[:, :, None, None],
                    "w_hh": np.stack([gates(w[f"weight_hh_{t}"]) for t in tags]),
                    "b_hn": b_hn,
                }
            )
        return {"layers": layers}

    def numpy(self, a, w, x):
        # The recurrence runs transposed, h^T [H, N] = W_hh @ h^T: a GEMM with the long side
        # first, which BLAS does faster for a small batch, and each gate is contiguous rows.
        n, t, _ = x.shape
        dirs = self.directions(a)
        seq = x.transpose(2, 1, 0).reshape(-1, t * n)  # x^T [D, T*N], time-major columns
        for layer in w["layers"]:
            # Every step's input projection, for every direction, in one GEMM.
            p = (layer["w_ih"] @ seq).reshape(dirs, -1, t, n)
            p += layer["b"]
            p = p.transpose(2, 0, 1, 3)  # [T, dirs, G, N]
            if dirs == 2:  # the reverse direction reads its steps backwards
                p = np.stack((p[:, 0], p[::-1, 1]), axis=1)
            hs = SCANS[self.name](a, layer, p)  # [T, dirs, H, N]
            seq = np.empty((dirs, hs.shape[2], t, n), hs.dtype)
            seq[0] = hs[:, 0].transpose(1, 0, 2)
            if dirs == 2:
                seq[1] = hs[::-1, 1].transpose(1, 0, 2)
            seq = seq.reshape(-1, t * n)
        return seq.reshape(-1, t, n).transpose(2, 1, 0)


# -- NumPy scans: the recurrence of every direction at once, one step at a time ----------------
# ``p`` [T, dirs, G, N] holds each step's input projection; the result is h [T, dirs, H, N].
def _scan_buffers(layer, p):
    hidden = layer["w_hh"].shape[2]
    hs = np.empty((len(p), p.shape[1], hidden, p.shape[3]), p.dtype)
    return hs, hidden, np.zeros(hs.shape[1:], p.dtype)


def _rnn_scan(a, layer, p):
    hs, _, h = _scan_buffers(layer, p)
    act = OPS[a["nonlinearity"]]  # relu or tanh: the elementwise op's own kernel
    for i in range(len(p)):
        z = np.matmul(layer["w_hh"], h, out=hs[i])
        z += p[i]
        h = act.numpy({}, {}, z, out=z)
    return hs


def _lstm_scan(a, layer, p):
    hs, n, h = _scan_buffers(layer, p)
    c, tmp, z = np.zeros_like(h), np.empty_like(h), np.empty(p.shape[1:], p.dtype)
    for i in range(len(p)):
        np.matmul(layer["w_hh"], h, out=z)
        z += p[i]
        np.tanh(z, out=z)
        sig = z[:, : 3 * n]  # i, f, o from their halved rows
        sig += 1
        sig *= 0.5
        c *= z[:, n : 2 * n]
        c += np.multiply(z[:, :n], z[:, 3 * n :], out=tmp)
        np.tanh(c, out=tmp)
        h = np.multiply(z[:, 2 * n : 3 * n], tmp, out=hs[i])
    return hs


def _gru_scan(a, layer, p):
    hs, n, h = _scan_buffers(layer, p)
    tmp, z = np.empty_like(h), np.empty(p.shape[1:], p.dtype)
    for i in range(len(p)):
        np.matmul(layer["w_hh"], h, out=z)
        rz, hn = z[:, : 2 * n], z[:, 2 * n :]
        rz += p[i][:, : 2 * n]
        np.tanh(rz, out=rz)  # r, z from their halved rows
        rz += 1
        rz *= 0.5
        hn += layer["b_hn"]
        hn *= rz[:, :n]  # r * (W_hn h + b_hn), as nn.GRU
        hn += p[i][:, 2 * n :]
        np.tanh(hn, out=hn)
        np.subtract(h, hn, out=tmp)  # h' = (1 - z) n + z h = n + z (h - n)
        tmp *= rz[:, n:]
        h = np.add(hn, tmp, out=hs[i])
    return hs


SCANS = {"rnn": _rnn_scan, "lstm": _lstm_scan, "gru": _gru_scan}


for _name in GATES:
    register(Recurrent(_name))

"""The ONNX backend against PyTorch: every op, every bundled spec, run by onnxruntime.

Each op case of tests/test_ops_torch.py is exported once with its batch dim symbolic (and
its sequence or spatial dims, where the front end allows), then run at the case's shapes
and at a larger batch and length, against the torch layer with the same (perturbed) weights.
Each spec is exported once and run at two batch sizes (and two lengths of each symbolic
dim) against its hand-written model in tests/reference_models.py, whose state_dict takes
dlc's weights by order and shape.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlc.compiler import DlcError, load, load_source
from dlc.compiler.ops import OPS
from dlc.runtime.weights import init_weights, save_weights

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from reference_models import REFERENCES  # noqa: E402  (needs torch)
from test_ops_torch import BATCH, CASES, Case  # noqa: E402  (needs torch)

from dlc.backends import onnx as backend  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
NEWEST = onnx.defs.onnx_opset_version()


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about unused initializers and the like
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def close(ours: np.ndarray, ref: np.ndarray, what: str, tol: float = 1e-4) -> None:
    assert ours.shape == ref.shape, what
    scale = max(1.0, float(np.abs(ref).max(initial=0)))
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * scale, err_msg=what)


# --------------------------------------------------------------------------------------
# Every op
# --------------------------------------------------------------------------------------
SPATIAL_NAMES = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}


def symbolic_dims(op: str, c: Case, lengths: bool) -> list[list]:
    """The case's input shapes with the batch dim named N and, if ``lengths``, the
    sequence (T, S) or spatial (L, H, W) dims named too."""
    out = []
    for i, (_, shape) in enumerate(c.inputs):
        dims: list = list(shape)
        if dims and dims[0] == BATCH:
            dims[0] = "N"
        if lengths and OPS[op].lengths == "sequence" and len(dims) == 3:
            dims[1] = "TS"[i]
        if lengths and OPS[op].lengths == "spatial" and len(dims) > 2:
            dims[2:] = SPATIAL_NAMES[len(dims) - 2]
        out.append(dims)
    return out


def case_source(c: Case, dims: list[list]) -> str:
    decls = "\n".join(
        f"  input x{i}: {dt}[{', '.join(map(str, d))}]"
        for i, ((dt, _), d) in enumerate(zip(c.inputs, dims))
    )
    return f"network T() {{\n{decls}\n  y = {c.call}\n}}\n"


def compile_case(op: str, c: Case):
    """The case compiled with symbolic dims: lengths too where the front end allows it
    (a ceil_mode pool whose stride + padding exceeds its kernel needs a known length)."""
    dims = symbolic_dims(op, c, lengths=True)
    try:
        return load_source(case_source(c, dims)), dims
    except DlcError:
        dims = symbolic_dims(op, c, lengths=False)
        return load_source(case_source(c, dims)), dims


def torch_module(c: Case):
    """The case's torch layer with every float tensor of its state perturbed, so that
    scales, shifts and running statistics are not the identity they start as."""
    torch.manual_seed(0)
    m = c.module() if c.module is not None else None
    if m is not None:
        with torch.no_grad():
            for name, t in m.state_dict().items():
                if name.endswith("running_var"):
                    t.uniform_(0.5, 1.5)
                elif t.is_floating_point():
                    t.add_(0.1 * torch.randn_like(t))
        m.eval()
    return m


def grown(shape: tuple[int, ...], dims: list, growth: int) -> tuple[int, ...]:
    """``shape`` with the batch at BATCH + 1 and every named length grown by ``growth``."""
    return tuple(
        n if isinstance(d, int) else BATCH + 1 if d == "N" else n + growth
        for n, d in zip(shape, dims)
    )


def random_input(dtype: str, shape: tuple[int, ...], gen: torch.Generator):
    if dtype.startswith("int"):
        return torch.randint(0, 10, shape, dtype=getattr(torch, dtype), generator=gen)
    return torch.randn(shape, generator=gen)


ALL = [pytest.param(op, c, id=f"{op}-{c}") for op, cases in CASES.items() for c in cases]


@pytest.mark.parametrize("opset", sorted({17, NEWEST}))
@pytest.mark.parametrize("op, c", ALL)
def test_op_matches_torch(op, c, opset, tmp_path):
    net, dims = compile_case(op, c)
    m = torch_module(c)
    state = m.state_dict() if m else {}
    weights = {("y" if k == "y" else f"y.{k}"): v.numpy() for k, v in state.items()}
    path = backend.export(net, weights, tmp_path / "op.onnx", opset=opset)
    run = session(path)
    forward = c.forward or (lambda m, *xs: m(*xs))
    # Only the batch grows where the reference's causal mask is built for the case's length
    # or where the length is at max_len already.
    growth = 0 if "causal=true" in c.call or "max_len" in c.call else 3
    gen = torch.Generator().manual_seed(1)
    bigger = [grown(s, d, growth) for (_, s), d in zip(c.inputs, dims)]
    for shapes in ([s for _, s in c.inputs], bigger):
        xs = [random_input(dt, s, gen) for (dt, _), s in zip(c.inputs, shapes)]
        with torch.no_grad():
            ref = forward(m, *xs).numpy()
        (out,) = run.run(None, {f"x{i}": x.numpy() for i, x in enumerate(xs)})
        close(out, ref, f"{c} at {shapes}")


# --------------------------------------------------------------------------------------
# Every spec
# --------------------------------------------------------------------------------------
LENGTHS = {"T": (7, 12), "S": (9, 5), "L": (50, 33), "H": (32, 48), "W": (48, 32)}


def spec_inputs(net, batch: int, which: int, gen: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs: token ids below the vocabulary of the embedding that reads them."""
    feeds = {}
    for name, t in net.inputs.items():
        shape = [
            batch if str(d) == "N" else LENGTHS[str(d)][which] if not isinstance(d, int) else d
            for d in t.shape
        ]
        if t.dtype.startswith("int"):
            vocab = min(n.attrs["vocab"] for n in net.graph.nodes if name in n.inputs)
            feeds[name] = gen.integers(0, vocab, shape).astype(t.dtype)
        else:
            feeds[name] = gen.standard_normal(shape).astype(t.dtype)
    return feeds


def spec_weights(net) -> dict[str, np.ndarray]:
    """Initial weights with normalisation scales, shifts and statistics perturbed."""
    weights = init_weights(net, seed=0)
    gen = np.random.default_rng(0)
    for name, p in net.graph.params():
        w = weights[name]
        if p.role == "stat_var":
            weights[name] = gen.uniform(0.5, 1.5, w.shape).astype(w.dtype)
        elif p.role in ("scale", "shift", "stat_mean"):
            weights[name] = (w + 0.1 * gen.standard_normal(w.shape)).astype(w.dtype)
    return weights


def reference_with(name: str, net, weights: dict[str, np.ndarray]):
    """The hand-written model with dlc's weights, matched by order and shape."""
    factory, _ = REFERENCES[name]
    model = factory().eval()
    state = model.state_dict()
    ours = [weights[k] for k, _ in net.graph.params()]
    assert len(ours) == len(state), "parameter lists differ in length"
    for (key, ref), w in zip(state.items(), ours):
        assert tuple(ref.shape) == w.shape, f"{key}: {tuple(ref.shape)} vs {w.shape}"
    model.load_state_dict({k: torch.from_numpy(w) for k, w in zip(state, ours)})
    return model


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_spec_matches_reference(name, tmp_path):
    net = load(SPECS / name)
    weights = spec_weights(net)
    model = reference_with(name, net, weights)
    run = session(backend.export(net, weights, tmp_path / "spec.onnx"))
    gen = np.random.default_rng(1)
    for batch, which in ((1, 0), (3, 1)):
        feeds = spec_inputs(net, batch, which, gen)
        with torch.no_grad():
            ref = model(*(torch.from_numpy(v) for v in feeds.values())).numpy()
        (out,) = run.run(None, feeds)
        close(out, ref, f"{name} at {[v.shape for v in feeds.values()]}", tol=2e-4)


# --------------------------------------------------------------------------------------
# The file: names, dims, determinism, checks, opsets, external data, the CLI
# --------------------------------------------------------------------------------------
def test_graph_names_dims_and_source_lines(tmp_path):
    net = load(SPECS / "tcn.dl")
    model = onnx.load(backend.export(net, init_weights(net), tmp_path / "tcn.onnx"))
    g = model.graph
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in g.input]
    assert [v.name for v in g.input] == ["x"] and dims == [["N", 1, "L"]]
    assert [v.name for v in g.output] == list(net.graph.outputs)
    weights = {k for k, p in net.graph.params() if not p.buffer}
    assert {t.name for t in g.initializer if "/" not in t.name} == weights
    layers = {n.name for n in net.graph.nodes}
    for node in g.node:
        assert node.name.split("/")[0] in layers, node.name
        assert re.fullmatch(r"tcn\.dl:\d+", node.doc_string), node.doc_string
    assert g.node[0].doc_string == "tcn.dl:4"  # the first causal conv of tcn_block
    # A derived length stays symbolic: the conv output keeps L.
    types = {v.name: v.type.tensor_type for v in g.value_info}
    conv = types["tcn_block_0.conv1d_0"].shape.dim
    assert [d.dim_param or d.dim_value for d in conv] == ["N", 32, "L"]


def test_outputs_keep_their_names(tmp_path):
    src = """network Two() {
  input x: float32[N, 4]
  h = dense(8)
  y = h | relu | dropout(0.5)
  output y, h, x
}"""
    net = load_source(src)
    model = backend.to_model(net, init_weights(net))
    assert [o.name for o in model.graph.output] == ["y", "h", "x"]
    assert [n.op_type for n in model.graph.node if n.output[0] in ("y", "h")] == [
        "Gemm",
        "Identity",
    ]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    path = backend.export(net, init_weights(net), tmp_path / "two.onnx")
    y, h, x_out = session(path).run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(h, 0))
    np.testing.assert_array_equal(x_out, x)


def test_recurrent_initializers_are_documented(tmp_path):
    net = load_source(
        "network R() {\n  input x: float32[N, T, 3]\n  lstm(4, bidirectional=true)\n}"
    )
    model = backend.to_model(net, init_weights(net))
    docs = {t.name: (list(t.dims), t.doc_string) for t in model.graph.initializer}
    assert docs["lstm_0.W_l0"][0] == [2, 16, 3]
    assert "i, o, f, g" in docs["lstm_0.W_l0"][1]
    assert docs["lstm_0.B_l0"][0] == [2, 32]


def test_same_spec_and_weights_give_the_same_bytes(tmp_path):
    net = load(SPECS / "gru_seq2seq.dl")
    a = backend.export(net, init_weights(net, 3), tmp_path / "a.onnx")
    again = load(SPECS / "gru_seq2seq.dl")
    b = backend.export(again, init_weights(again, 3), tmp_path / "b.onnx")
    assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]  # no temporaries


HALF = """network Half() {
  input x: float16[N, 40]
  dense(48); relu; dense(3)
}"""


@pytest.mark.parametrize("spec", ["lenet5.dl", "sentiment_lstm.dl", "half"])
def test_export_writes_the_protobuf_serialisation(spec, tmp_path):
    # export streams the weights between protobuf pieces; the result must be exactly what
    # protobuf writes (lstm: derived, documented initializers; half: float16 values).
    net = load_source(HALF) if spec == "half" else load(SPECS / spec)
    weights = init_weights(net, 1)
    path = backend.export(net, weights, tmp_path / "m.onnx")
    model = backend.to_model(net, weights)
    assert path.read_bytes() == model.SerializeToString(deterministic=True)


def test_external_data_holds_the_values(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "EXTERNAL_DATA_BYTES", 0)
    net = load(SPECS / "sentiment_lstm.dl")
    weights = init_weights(net, 2)
    path = backend.export(net, weights, tmp_path / "m.onnx")
    loaded = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    expected = backend.to_model(net, weights).graph.initializer
    assert list(loaded) == [t.name for t in expected]
    for t in expected:
        np.testing.assert_array_equal(loaded[t.name], onnx.numpy_helper.to_array(t), t.name)


def test_shape_check_catches_a_frozen_dim():
    net = load_source("network F() {\n  input x: float32[N, 4, T]\n  flatten\n}")
    model = backend.to_model(net, {})
    backend.check(model, net.graph)
    (target,) = model.graph.initializer
    target.CopyFrom(onnx.numpy_helper.from_array(np.array([2, -1]), target.name))
    with pytest.raises(DlcError, match=r"internal error: ONNX shape inference gives dim 0 = 2"):
        backend.check(model, net.graph)


SMALL = """network Small() {
  input tokens: int64[N, T]
  embedding(50, 16)
  positional_encoding
  residual { layernorm; attention(2, causal=true) }
  dense(32); gelu; dense(16)
  mean(axis=1)
  dense(3)
}"""


@pytest.mark.parametrize("opset", sorted({17, 18, 20, NEWEST}))
def test_opsets(opset, tmp_path):
    net = load_source(SMALL)
    weights = init_weights(net, 0)
    ref = backend.export(net, weights, tmp_path / "ref.onnx", opset=17)
    path = backend.export(net, weights, tmp_path / "m.onnx", opset=opset)
    assert onnx.load(path).opset_import[0].version == opset
    tokens = np.random.default_rng(0).integers(0, 50, (2, 9))
    expected = session(ref).run(None, {"tokens": tokens})[0]
    close(session(path).run(None, {"tokens": tokens})[0], expected, f"opset {opset}", tol=1e-5)


def test_opset_too_low_names_the_op_and_the_minimum(tmp_path):
    net = load_source(SMALL)
    with pytest.raises(DlcError) as err:
        backend.export(net, init_weights(net), tmp_path / "m.onnx", opset=16)
    text = str(err.value)
    assert "layernorm (layernorm_0)" in text and "LayerNormalization" in text
    assert "opset >= 17" in text and "<string>:5" in text
    with pytest.raises(DlcError, match=f"supports opsets 14 to {NEWEST} .*; got 13"):
        backend.export(net, init_weights(net), tmp_path / "m.onnx", opset=13)
    conv = load_source("network C() {\n  input x: float32[N, 3, 8, 8]\n  conv2d(4, 3); relu\n}")
    backend.export(conv, init_weights(conv), tmp_path / "c.onnx", opset=14)
    assert not (tmp_path / "m.onnx").exists()


def test_large_models_use_external_data(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "EXTERNAL_DATA_BYTES", 0)
    net = load(SPECS / "lenet5.dl")
    weights = init_weights(net)
    path = backend.export(net, weights, tmp_path / "lenet.onnx")
    data = tmp_path / "lenet.onnx.data"
    size = data.stat().st_size
    assert size >= sum(w.nbytes for w in weights.values() if w.nbytes > 1024)  # 1 KiB: inline
    backend.export(net, weights, path)  # again: the data file is replaced, not appended to
    assert data.stat().st_size == size
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    monkeypatch.undo()
    small = backend.export(net, weights, tmp_path / "small.onnx")
    close(session(path).run(None, {"x": x})[0], session(small).run(None, {"x": x})[0], "lenet")


def test_cli_compile(tmp_path):
    spec = SPECS / "lenet5.dl"
    weights = save_weights(init_weights(load(spec), 5), tmp_path / "w.safetensors")

    def dlc(*args):
        cmd = [sys.executable, "-m", "dlc.compiler.cli", "compile", str(spec), *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True)

    out = dlc("--target", "onnx", "--weights", weights, "-o", tmp_path / "a.onnx")
    assert out.returncode == 0, out.stderr
    assert "a.onnx" in out.stdout
    out = dlc("--target", "onnx", "--seed", "5", "--opset", "18", "-o", tmp_path / "b.onnx")
    assert out.returncode == 0, out.stderr
    a, b = onnx.load(tmp_path / "a.onnx"), onnx.load(tmp_path / "b.onnx")
    assert a.graph.initializer == b.graph.initializer and b.opset_import[0].version == 18
    out = dlc("--target", "onnx", "--opset", "9", "-o", tmp_path / "c.onnx")
    assert out.returncode == 2 and "supports opsets" in out.stderr

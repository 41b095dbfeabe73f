"""``expand`` to symbolic dims (the ViT class token) through every backend.

The op grid (test_ops_torch.py) runs ``expand`` one layer at a time; here whole networks
whose symbolic dims reach an attribute run at several input sizes, so each backend must
find the dim's value at run time: NumPy binds the symbols from the inputs, the torch source
reads them off a tensor in scope, the ONNX graph computes them from ``Shape``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlc.backends.numpy import compile
from dlc.compiler import DlcError, load, load_source
from dlc.runtime.weights import init_weights

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from dlc.backends import onnx as onnx_backend  # noqa: E402  (needs onnx)
from dlc.backends.torch import build  # noqa: E402
from dlc.backends.torch_source import emit  # noqa: E402

ROOT = Path(__file__).parent.parent
VIT_TINY = ROOT.parent / "shared" / "examples" / "v2" / "vit_tiny.dl"

# A block whose expand reads N and H // 2 off its input; called twice, it is one class.
TOKENS = """
block tokens(d) {
  t = param(1, 1, d, init=normal(0, 1))
  e = t | expand(input.shape[0], input.shape[2] // 2, -1)
  e + input[:, 0, 1::2]
}

network TwoTokens() {
  input x: float32[N, 3, H, 4]
  a = tokens(4)
  b = x | tokens(4)
  a + b
}
"""


def random_weights(net, seed: int = 0) -> dict[str, np.ndarray]:
    """Every weight random, so that a class token left at zero cannot hide a mistake."""
    rng = np.random.default_rng(seed)
    return {
        k: (0.1 * rng.standard_normal(v.shape)).astype(v.dtype)
        for k, v in init_weights(net).items()
    }


def agree(net, shapes: list[tuple[int, ...]], tmp_path: Path) -> None:
    """NumPy, the built torch module and onnxruntime give the same output at each shape of
    the one input."""
    weights = random_weights(net)
    numpy_forward = compile(net, weights)
    model = build(net, weights).eval()
    path = onnx_backend.export(net, weights, tmp_path / "net.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = net.graph.inputs
    rng = np.random.default_rng(1)
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(numpy_forward(x), ref, rtol=1e-4, atol=1e-5)
        (out,) = session.run(None, {name: x})
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not VIT_TINY.exists(), reason="the shared examples are not here")
def test_vit_tiny_runs_alike_in_every_backend_at_two_batch_sizes(tmp_path):
    net = load(VIT_TINY, layers=2, classes=10)
    agree(net, [(1, 3, 224, 224), (3, 3, 224, 224)], tmp_path)


def test_vit_b16_class_token_at_two_batch_sizes(tmp_path):
    net = load(
        ROOT / "specs" / "vit_b16.dl",
        image_size=32,
        patch=8,
        layers=1,
        d=16,
        heads=2,
        mlp=32,
        classes=5,
    )
    agree(net, [(1, 3, 32, 32), (4, 3, 32, 32)], tmp_path)


def test_symbolic_dims_computed_from_the_inputs(tmp_path):
    net = load_source(TOKENS)
    assert net.outputs["add_0"].shape[1:] == (net.graph.node("x").type.shape[2] // 2, 4)
    agree(net, [(2, 3, 6, 4), (3, 3, 9, 4), (1, 3, 2, 4)], tmp_path)
    source = emit(net)
    assert source.count("class Tokens(") == 1  # both calls read the dims the same way
    assert "t.expand(x.shape[0], x.shape[2] // 2, -1)" in source


def test_torch_export_with_a_dynamic_batch():
    net = load_source(TOKENS)
    model = build(net, random_weights(net)).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    x = torch.randn(2, 3, 6, 4)
    program = torch.export.export(model, (x,), dynamic_shapes=(({0: batch},),))
    y = torch.randn(5, 3, 6, 4)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(y), model(y))


def test_a_symbol_no_tensor_in_scope_has_is_a_located_error():
    src = """
block grow(n) {
  expand(n, -1, -1)
}

network Grow() {
  input x: float32[N, 4]
  t = param(1, 1, 4)
  t | grow(x.shape[0])
}
"""
    net = load_source(src, path="grow.dl")
    with pytest.raises(DlcError, match="no tensor in scope there has N") as info:
        emit(net)
    assert "grow.dl:3" in str(info.value)
    x = np.ones((3, 4), np.float32)
    assert compile(net, init_weights(net))(x).shape == (3, 1, 4)  # NumPy needs no tensor

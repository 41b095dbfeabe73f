"""Unusual programs in the style of LANGUAGE.md (not the bundled specs) give the same
outputs in the three backends: our NumPy kernels against PyTorch's stock layers and
onnxruntime, which share none of our code."""

import numpy as np
import pytest

from dlc.compiler import load_source
from dlc.runtime.weights import init_weights

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from dlc.backends import numpy as dnp  # noqa: E402
from dlc.backends.onnx import to_model  # noqa: E402
from dlc.backends.torch import build  # noqa: E402

PROGRAMS = {
    "squeeze_excite": (
        """
block se(r = 4) {
  let c = input.shape[1]
  s = input | global_avgpool | dense(c // r) | relu | dense(c) | sigmoid | reshape(c, 1, 1)
  input * s
}
block stage(c, n, first_stride = 2) {
  for i in range(n) {
    residual {
      conv2d(filters=c, kernel=3, stride=first_stride if i == 0 else 1, padding=1, bias=false)
      batchnorm; relu6
      conv2d(c, (3, 3), padding="same", bias=false); batchnorm
      se()
    } shortcut if i == 0 {
      conv2d(c, 1, stride=first_stride, bias=false); batchnorm
    }
    relu
  }
}
network Net(widths = [8, 16]) {
  input img: float32[N, 3, H, W]
  conv2d(widths[0], 3, padding=1)
  for c in widths { stage(c, 2) }
  feat = mean(axis=(2, 3))
  logits = feat | dense(5)
  output logits, softmax(logits)
}""",
        {"img": (2, 3, 16, 12)},
    ),
    "cross_attention": (
        """
network Net(d = 16) {
  input a: float32[N, T, 6]
  input b: float32[N, S, 10]
  q = a | dense(d)
  m = b | gru(d // 2, bidirectional=true, layers=2)
  ctx = attention(q, m, heads=4)
  y = concat(q, ctx, axis=-1) | layernorm | dense(8) | transpose(1, 2)
  y = y | conv1d(8, 3, causal=true, dilation=2) | permute(0, 2, 1) | last
  output y + y * y
}""",
        {"a": (2, 7, 6), "b": (2, 5, 10)},
    ),
    "tokens_and_pools": (
        """
block head(k) {
  h = transpose(1, 2)
  p = h | maxpool1d(2, ceil_mode=true) | avgpool1d(3, stride=1, padding=1)
  output p | upsample(scale=k, mode="linear") | leaky_relu(0.2) | elu(alpha=0.5)
}
network Net() {
  input t: int64[N, T]
  embedding(40, 8)
  positional_encoding
  rnn(6, nonlinearity="relu", layers=2)
  head(2)
  repeat 0 { relu }
  log_softmax(axis=1)
}""",
        {"t": (3, 9)},
    ),
    "unet_like": (
        """
block down(c) { maxpool2d(2); conv2d(c, 3, padding=1); batchnorm; relu }
block up(skip, c) {
  u = conv_transpose2d(c, 2, stride=2)
  concat(skip, u, axis=1)
  conv2d(c, 3, padding=1); relu
}
network Net() {
  input x: float32[N, 2, H, W]
  e1 = conv2d(4, 3, padding=1)
  e2 = down(8)
  b = e2 | down(16)
  d2 = b | up(e2, 8)
  d1 = d2 | up(e1, 4)
  conv2d(3, 1)
  upsample(2); adaptive_avgpool2d((3, 5)); flatten; dense(4); dropout(0.2)
}""",
        {"x": (2, 2, 16, 24)},
    ),
}


def _inputs(net, shapes, rng):
    out = {}
    for name, shape in shapes.items():
        dtype = net.inputs[name].dtype
        if dtype.startswith("int"):
            out[name] = rng.integers(0, 40, shape).astype(dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_numpy_torch_and_onnxruntime_agree(name):
    src, shapes = PROGRAMS[name]
    net = load_source(src, path=f"{name}.dl")
    rng = np.random.default_rng(0)
    weights = init_weights(net, seed=1)
    for key in weights:  # batchnorm statistics that are not the identity
        if key.endswith("running_mean"):
            weights[key] = rng.normal(0, 0.2, weights[key].shape).astype(np.float32)
        elif key.endswith("running_var"):
            weights[key] = rng.uniform(0.5, 2, weights[key].shape).astype(np.float32)
    xs = _inputs(net, shapes, rng)

    ours = dnp.run(net, weights, **xs)
    ours = ours if isinstance(ours, tuple) else (ours,)
    with torch.no_grad():
        theirs = build(net, weights).eval()(**{k: torch.from_numpy(v) for k, v in xs.items()})
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    session = ort.InferenceSession(
        to_model(net, weights).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    runtime = session.run(list(net.outputs), xs)

    assert len(ours) == len(theirs) == len(runtime) == len(net.outputs)
    for a, b, c, t in zip(ours, theirs, runtime, net.outputs.values()):
        assert a.shape == tuple(b.shape) == c.shape and a.ndim == t.rank
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(c, b.numpy(), rtol=1e-4, atol=1e-5)

"""The NumPy backend (backends/numpy.py) against PyTorch, op by op and spec by spec.

Every case of the op grid in test_ops_torch.py (one table for every backend) runs through
the NumPy backend with ``init_weights`` weights, normalisation statistics and affine
parameters randomised so that they matter, and through the same torch layer with those
weights loaded; the outputs must agree at float32 precision. Every bundled spec runs against
its hand-written model in reference_models.py the same way. Then the driver: batchnorm
folding, in-place kernels and views against an unplanned walk, and input validation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dlc.backends.numpy import compile, run
from dlc.compiler import DlcError, load, load_source
from dlc.compiler.ops import OPS, conv
from dlc.compiler.ops.activation import erf
from dlc.runtime.weights import init_weights, save_weights

torch = pytest.importorskip("torch")

from reference_models import REFERENCES  # noqa: E402  (needs torch)
from test_ops_torch import CASES, random_input, source  # noqa: E402  (the op grid)
from test_torch_backend import spec_inputs  # noqa: E402

SPECS = Path(__file__).parent.parent / "specs"
RTOL, ATOL = 1e-4, 1e-5  # float32: the sums are ordered differently from torch's

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def weights_for(net, seed: int = 0) -> dict[str, np.ndarray]:
    """``init_weights``, with every constant float tensor (batchnorm statistics, norm scales
    and shifts, attention biases) replaced by random values, so that a kernel that ignores
    one fails."""
    rng = np.random.default_rng(seed + 1)
    w = init_weights(net, seed)
    for name, p in net.graph.params():
        v = w[name]
        if p.dtype != "float32" or v.size == 0 or v.min() != v.max():
            continue
        if p.role == "stat_var":
            w[name] = rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
        else:
            w[name] = (v + rng.normal(0.0, 0.5, v.shape)).astype(np.float32)
    return w


def assert_close(got, expected, what=""):
    assert got.shape == expected.shape, what
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=what)


# --------------------------------------------------------------------------------------
# Every op, every case of the grid
# --------------------------------------------------------------------------------------
ALL = [pytest.param(op, c, id=f"{op}-{c}") for op, cases in CASES.items() for c in cases]


@pytest.mark.parametrize("op, c", ALL)
def test_op_matches_torch(op, c):
    net = load_source(source(c))
    w = weights_for(net)
    torch.manual_seed(0)
    xs = [random_input(dt, s) for dt, s in c.inputs]
    m = c.module() if c.module is not None else None
    if m is not None:
        m.load_state_dict({k.removeprefix("y."): torch.from_numpy(v) for k, v in w.items()})
        m.eval()
    with torch.no_grad():
        expected = (c.forward or (lambda m, *xs: m(*xs)))(m, *xs).numpy()
    arrays = [x.numpy() for x in xs]
    copies = [a.copy() for a in arrays]
    got = run(net, w, *arrays)
    assert got.dtype == expected.dtype
    assert_close(got, expected, source(c))
    for a, b in zip(arrays, copies):
        np.testing.assert_array_equal(a, b, "the backend wrote into an input")


def test_erf_to_double_precision():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 1e-300, 0.84375, 1.25, 1 / 0.35, 6.0]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=4e-16, atol=4e-16)
    assert np.isnan(erf(np.nan)) and erf(np.inf) == 1 and erf(-np.inf) == -1


# --------------------------------------------------------------------------------------
# Every spec against its hand-written PyTorch model
# --------------------------------------------------------------------------------------
def reference_with(name: str, w: dict[str, np.ndarray]):
    """The reference model of spec ``name`` in eval mode with the dlc weights ``w``: both
    list their tensors in declaration order, so the i-th state_dict entry is the i-th IR
    parameter (checked shape by shape)."""
    model = REFERENCES[name][0]().eval()
    state = model.state_dict()
    assert len(state) == len(w), f"{name}: {len(state)} tensors in torch, {len(w)} in dlc"
    loaded = {}
    for (key, ref), (dlc_name, value) in zip(state.items(), w.items()):
        assert tuple(ref.shape) == value.shape, f"{name}: {key} {ref.shape} vs {dlc_name}"
        loaded[key] = torch.from_numpy(value)
    model.load_state_dict(loaded)
    return model


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_spec_matches_reference_model(name):
    net = load(str(SPECS / name))
    w = weights_for(net)
    model = reference_with(name, w)
    xs = spec_inputs(net, name)  # the reference's, at the size the spec fixes
    with torch.no_grad():
        expected = model(*xs).numpy()
    assert_close(compile(net, w)(*(x.numpy() for x in xs)), expected, name)


# --------------------------------------------------------------------------------------
# The plan: batchnorm folding, in-place kernels, views, dead code
# --------------------------------------------------------------------------------------
def unplanned(net, w, *xs):
    """Each node's kernel on copies of its inputs: no folding, no in-place, no liveness."""
    env = dict(zip(net.graph.inputs, xs))
    for n in net.graph.nodes:
        if n.op != "input":
            op = OPS[n.op]
            prepared = op.numpy_prepare(n.attrs, {k: w[f"{n.name}.{k}"] for k in n.params})
            env[n.name] = op.numpy(n.attrs, prepared, *(env[i].copy() for i in n.inputs))
    outs = tuple(env[o] for o in net.graph.outputs)
    return outs[0] if len(outs) == 1 else outs


def planned_ops(f) -> list[str]:
    return [step.node.op for step in f.steps]


FOLDING = """
network T() {
  input x: float32[N, 3, 9, 9]
  a = conv2d(8, 3, padding=1, bias=false) | batchnorm | relu
  b = a | conv2d(8, 1) | batchnorm
  c = a | conv2d(8, 3, stride=2)
  cb = c | batchnorm                      # c feeds two layers: not folded
  s = add(cb, c) | global_avgpool
  v = s | dense(6) | batchnorm            # [N, 6]: folded
  u = b | flatten | reshape(8, 81) | dense(5) | batchnorm    # [N, 8, 5]: axis 1 is not units
  output v, u, b
}
"""


def test_batchnorm_folds_where_exact():
    net = load_source(FOLDING)
    w = weights_for(net)
    f = compile(net, w)
    assert planned_ops(f).count("batchnorm") == 2  # cb and the one after the rank-3 dense
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 9)).astype(np.float32)
    for got, expected in zip(f(x), unplanned(net, w, x)):
        assert_close(got, expected)


RELU = """
network T() {
  input x: float32[N, 3, 9, 9]
  a = x | conv2d(8, 3, padding=1) | batchnorm | relu    # fused, after folding
  b = a | conv2d(8, 3, stride=2)
  c = b | relu                                          # b feeds two: not fused
  s = add(b, c)
  output s
}
"""


def test_relu_fuses_into_the_conv_before_where_it_alone_reads_it():
    net = load_source(RELU)
    w = weights_for(net)
    f = compile(net, w)
    assert planned_ops(f) == ["conv2d", "conv2d", "relu", "add"]
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 9)).astype(np.float32)
    assert_close(f(x), unplanned(net, w, x))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("block", [1 << 12, 1 << 20])  # row blocks; one, split by columns
def test_im2col_gemm_shares_out_tasks_exactly(monkeypatch, threads, block):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(conv, "blas_threads", lambda: threads)
    monkeypatch.setattr(conv, "IM2COL_BLOCK", block)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 10, 16)).astype(np.float32)
    weight = rng.normal(size=(144, 130)).astype(np.float32)  # 130: uneven column blocks
    bias = rng.normal(size=130).astype(np.float32)
    win = conv.windows(x, (3, 3), (1, 1), (1, 1))
    expected = np.maximum(win.reshape(-1, 144) @ weight + bias, 0).reshape(2, 8, 8, 130)
    assert_close(conv.im2col_gemm(win, weight, bias, relu=True), expected)


ALIASING = """
network T() {
  input x: float32[N, 4, 6]
  a = x | relu                      # x is the caller's: never written
  t = a | transpose(1, 2)           # a view of a, alive after a's last direct read
  s = a | sigmoid
  d = t | tanh | transpose(1, 2)
  e0 = add(s, d)
  e = mul(e0, e0)
  m = add(t, t)
  f = add(e, m | transpose(1, 2), x) | dropout | identity | softmax(axis=1)
  z = x | permute(0, 2, 1) | elu | last
  unused = f | dense(3)
  output f, t, z
}
"""


def test_inplace_kernels_respect_views_and_outputs():
    net = load_source(ALIASING)
    w = weights_for(net)
    f = compile(net, w)
    assert "dense" not in planned_ops(f)  # nothing needs it
    assert any(step.inplace is not None for step in f.steps)
    x = np.random.default_rng(0).normal(size=(3, 4, 6)).astype(np.float32)
    before = x.copy()
    got, expected = f(x), unplanned(net, w, x)
    for g, e in zip(got, expected):
        assert_close(g, e)
        assert g.flags.c_contiguous
    np.testing.assert_array_equal(x, before)
    for g, e in zip(f(x), expected):  # a second run of the same plan
        assert_close(g, e)


def test_resnet_plan_folds_every_batchnorm_and_runs_in_place():
    f = compile(load(str(SPECS / "resnet18.dl")), weights_for(load(str(SPECS / "resnet18.dl"))))
    ops = planned_ops(f)
    assert "batchnorm" not in ops
    inplace = [s.node.op for s in f.steps if s.inplace is not None]
    assert inplace.count("relu") == ops.count("relu") and inplace.count("add") == ops.count("add")


def test_inputs_in_any_memory_layout():
    net = load(str(SPECS / "lenet5.dl"))
    f = compile(net, weights_for(net))
    x = np.random.default_rng(0).normal(size=(2, 1, 32, 64)).astype(np.float32)
    expected = f(np.ascontiguousarray(x[..., ::2]))
    for view in (x[..., ::2], np.asfortranarray(x[..., ::2]), x[..., -2::-2][..., ::-1]):
        np.testing.assert_allclose(f(view), expected, rtol=1e-6, atol=1e-7)


def test_weights_from_a_safetensors_file(tmp_path):
    pytest.importorskip("safetensors")
    net = load(str(SPECS / "lenet5.dl"))
    w = weights_for(net)
    path = save_weights(w, tmp_path / "lenet5.safetensors")
    x = np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(run(net, path, x), run(net, w, x))


def test_float16_values_are_rounded_after_each_op():
    net = load_source("network T() {\n  input x: float16[N, 8]\n  relu; dense(4)\n}")
    w = weights_for(net)
    x = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float16)
    y = run(net, w, x)
    assert y.dtype == np.float16
    expected = np.maximum(x.astype(np.float32), 0) @ w["dense_0.weight"].T + w["dense_0.bias"]
    np.testing.assert_allclose(y, expected, rtol=2e-3, atol=2e-3)


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------
SEQ2SEQ = """
network S() {
  input src: int64[N, S]
  input tgt: int64[N, T]
  enc = src | embedding(50, 8)
  dec = tgt | embedding(50, 8)
  y = attention(dec, enc, heads=2)
}
"""


@pytest.fixture(scope="module")
def seq2seq():
    net = load_source(SEQ2SEQ)
    return compile(net, weights_for(net))


def ids(*shape, dtype=np.int64):
    return np.arange(math.prod(shape), dtype=dtype).reshape(shape) % 50


def error(f, *args, **kwargs) -> str:
    with pytest.raises(DlcError) as info:
        f(*args, **kwargs)
    return str(info.value)


def test_inputs_by_position_and_by_name(seq2seq):
    y = seq2seq(ids(2, 5), ids(2, 3))
    np.testing.assert_array_equal(seq2seq(tgt=ids(2, 3), src=ids(2, 5)), y)
    np.testing.assert_array_equal(seq2seq(ids(2, 5, dtype=np.int32), tgt=ids(2, 3)), y)
    assert y.shape == (2, 3, 8)


@pytest.mark.parametrize(
    "args, kwargs, words",
    [
        ((ids(2, 5),), {}, ["missing input tgt"]),
        ((ids(2, 5), ids(2, 3), ids(2, 3)), {}, ["takes 2 inputs (src, tgt)", "3 positional"]),
        ((ids(2, 5),), {"tgts": ids(2, 3)}, ["unknown input 'tgts'", "did you mean 'tgt'"]),
        ((ids(2, 5), ids(2, 3)), {"src": ids(2, 5)}, ["input src is given twice"]),
        ((ids(2, 5), ids(2, 3, 1)), {}, ["input tgt", "rank 2", "int64[N, T]", "[2, 3, 1]"]),
        ((ids(2, 5), ids(2, 3).astype(np.float32)), {}, ["input tgt", "expected int64", "float32"]),
        ((ids(2, 5), ids(3, 3)), {}, ["input tgt", "axis 0 is N", "src (axis 0) binds to 2", "3"]),
        ((ids(2, 5), [[1, 2, 3], [4, 5, 60]]), {}, ["embedding", "token id 60", "vocab=50"]),
    ],
)
def test_input_errors(seq2seq, args, kwargs, words):
    message = error(seq2seq, *args, **kwargs)
    for word in words:
        assert word in message, message


def test_wrong_dtype_static_dim_and_rank():
    net = load(str(SPECS / "lenet5.dl"))
    f = compile(net, weights_for(net))
    x = np.zeros((2, 1, 32, 32), np.float32)
    message = error(f, x.astype(np.float64))
    assert "input x: expected float32" in message and "float64" in message
    assert "x.astype(np.float32)" in message
    message = error(f, np.zeros((2, 1, 32, 31), np.float32))
    assert "input x: axis 3 must be 32" in message and "got 31" in message
    assert "expected rank 4" in error(f, x[0])
    assert "axis 0 (N) must be >= 1" in error(f, x[:0])


UNET_LIKE = """
network U() {
  input x: float32[N, 2, H, W]
  e = conv2d(4, 3, padding=1)
  d = e | maxpool2d(2) | conv2d(4, 3, padding=1) | conv_transpose2d(4, 2, stride=2)
  concat(e, d, axis=1)
}
"""


def test_constraint_violation_names_the_constraint():
    net = load_source(UNET_LIKE, path="unet_like.dl")
    assert net.graph.constraints
    f = compile(net, weights_for(net))
    assert f(np.zeros((1, 2, 8, 6), np.float32)).shape == (1, 8, 8, 6)
    message = error(f, np.zeros((1, 2, 7, 6), np.float32))
    assert "H=7" in message and "break a constraint of U" in message, message
    assert "concat" in message and "unet_like.dl:6" in message, message


def test_inputs_too_small_for_the_network():
    net = load(str(SPECS / "unet.dl"))
    f = compile(net, weights_for(net))
    message = error(f, np.zeros((1, 3, 8, 16), np.float32))
    assert "H=8" in message and "too small" in message and "would output" in message, message


def test_gemm_tuner_tries_both_ways_keeps_the_faster_and_both_give_the_same_bits():
    pytest.importorskip("threadpoolctl")
    from dlc.backends.numpy import _GemmTuner

    tuner, ways = _GemmTuner(), []
    for _ in range(4):  # alternate at first
        way = tuner.choose()
        ways.append(way)
        tuner.record(way, 1.0 if way else 2.0)  # sharing out is the faster here
    assert ways == [True, False, True, False]
    later = [tuner.choose() for _ in range(2 * _GemmTuner.PROBE)]  # calls 5 to 36
    assert [call for call, way in enumerate(later, 5) if not way] == [16, 32]  # probes only
    net = load(str(SPECS / "unet.dl"))
    w = weights_for(net)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    f = compile(net, w)
    first, second = f(x), f(x)  # one call each way
    assert f._tuner.times[True] and f._tuner.times[False]
    np.testing.assert_array_equal(first, second)

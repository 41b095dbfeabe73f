"""Language v2 (LANGUAGE.md §10): tensor expressions, learnable tensors, indexing, several
results, compile-time functions and built-ins, loop bindings, follow-on errors.

Shapes are checked against PyTorch running the same expression; values of compile-time
functions against the same formulas written in Python here.
"""

from __future__ import annotations

import math

import pytest

from dlc.compiler import DlcError, load_source
from dlc.compiler.ir.symbolic import Sym

torch = pytest.importorskip("torch")


def net(*lines: str, shape: str = "float32[N, 8, 6, 6]", header: str = "") -> str:
    body = "".join(f"  {line}\n" for line in lines)
    return f"{header}network A() {{\n  input x: {shape}\n{body}}}\n"


def errors(text: str) -> list[DlcError]:
    with pytest.raises(DlcError) as info:
        load_source(text, path="spec.dl")
    return info.value.errors


def ops(n) -> list[tuple[str, str]]:
    return [(node.name, node.op) for node in n.graph.nodes if node.op != "input"]


# -- arithmetic ---------------------------------------------------------------------------------
def test_arithmetic_makes_layers_named_by_binding_or_op():
    n = load_source(net("y = x * 0.5 * (1.0 + x)", "z = -y / 2 - y ** 2", "w = 3 - z"))
    assert ops(n) == [
        ("mul_0", "mul"),
        ("add_0", "add"),
        ("y", "mul"),
        ("neg_0", "neg"),
        ("div_0", "div"),
        ("pow_0", "pow"),
        ("z", "sub"),
        ("w", "sub"),
    ]
    w = n.graph.node("w")
    assert dict(w.attrs) == {"scalar": 3, "left": True}


def test_integer_tensors_promote_as_torch():
    n = load_source(net("a = x + 1", "b = x * 0.5", "c = x / 2", shape="int64[N, 4]"))
    types = {k: n.graph.node(k).type.dtype for k in "abc"}
    x = torch.zeros(2, 4, dtype=torch.int64)
    assert types == {k: str(v.dtype)[6:] for k, v in zip("abc", (x + 1, x * 0.5, x / 2))}


def test_matmul_shapes_are_torch_matmul():
    n = load_source(net("q = x @ transpose(x, 2, 3)"))
    assert n.graph.node("q").type.shape[1:] == tuple(
        (torch.zeros(1, 8, 6, 6) @ torch.zeros(1, 8, 6, 6).transpose(2, 3)).shape[1:]
    )


# -- param --------------------------------------------------------------------------------------
def test_param_is_named_by_its_binding_and_created_where_written():
    src = """
block scaled() {
  gamma = param(input.shape[1], 1, 1, init=constant(0.5))
  gamma * input
}
network A() {
  input x: float32[N, 8, 6, 6]
  init param = normal(0, 0.02)
  t = param(1, 8)
  x | scaled
  param(2) + 1
}
"""
    n = load_source(src)
    assert [name for name, _ in n.graph.params()] == ["t", "scaled_0.gamma", "param_0"]
    assert n.params == 8 + 8 + 2
    inits = {name: p.init.name for name, p in n.graph.params()}
    assert inits == {"t": "normal", "scaled_0.gamma": "constant", "param_0": "normal"}
    from dlc.backends.torch import build

    # A module lists its own parameters before its children's (the names are the contract).
    assert list(build(n).state_dict()) == ["t", "param_0", "scaled_0.gamma"]


# -- indexing -----------------------------------------------------------------------------------
S = slice(None)


@pytest.mark.parametrize(
    "text, index",
    [
        ("[:, 0]", (S, 0)),
        ("[:, -1, 2:]", (S, -1, slice(2, None))),
        ("[..., ::2]", (Ellipsis, slice(None, None, 2))),
        ("[:, 1:7:3, ..., 0]", (S, slice(1, 7, 3), Ellipsis, 0)),
        ("[:, :, -4:-1]", (S, S, slice(-4, -1))),
        ("[:, 9:]", (S, slice(9, None))),
    ],
)
def test_index_shapes_follow_torch(text, index):
    n = load_source(net(f"y = x{text}", shape="float32[2, 8, 6, 7]"))
    assert n.graph.node("y").type.shape == tuple(torch.zeros(2, 8, 6, 7)[index].shape)


def test_slices_of_symbolic_dims_stay_symbolic():
    n = load_source(net("y = x[:, 1:]", "z = x[:, :, ::2]", shape="float32[N, T, L]"))
    t, length = Sym.var("T"), Sym.var("L")
    assert n.graph.node("y").type.shape[1] == t - 1
    assert n.graph.node("z").type.shape[2] == (length - 1) // 2 + 1


@pytest.mark.parametrize(
    "line, col, words",
    [
        ("y = x[0]", 7, "batch axis can only be taken whole"),
        ("y = x[:, 8]", 7, "index 8 is out of range for an axis of size 8"),
        ("y = x[:, ..., ...]", 7, "one `...`"),
        ("y = x[:, ::0]", 14, "slice step must be positive"),
        ("y = x[:, :, :, :, 0]", 7, "5 indices for a rank-4 tensor"),
        ("y = x[:, ::x.shape[0]]", 14, "a step must be an integer, got N"),
    ],
)
def test_index_errors(line, col, words):
    (err,) = errors(net(line))
    assert (err.span.line, err.span.col) == (3, col) and words in err.message, str(err)


# -- several results ----------------------------------------------------------------------------
def test_destructuring_names_results_and_makes_the_first_current():
    src = """
block unit(c) {
  a, b = chunk(2, axis=1)
  output b | conv2d(c, 1), a
}
network A() {
  input x: float32[N, 8, 6, 6]
  p, q = unit(4)
  parts = split((1, 3), axis=1)
  r = parts[1] | relu
  output p, q, r
}
"""
    n = load_source(src)
    names = [name for name, _ in ops(n)]
    assert names[:3] == ["unit_0.a", "unit_0.b", "unit_0.conv2d_0"]
    assert "parts_0" in names and "parts_1" in names
    assert n.graph.node("parts_1").inputs == ("unit_0.conv2d_0",)  # p was current
    assert [n.outputs[k].shape[1] for k in n.outputs] == [4, 4, 3]


def test_chunk_gives_as_many_pieces_as_torch():
    for size, k in ((6, 4), (5, 4), (7, 3), (1, 2)):
        n = load_source(net(f"parts = chunk(x, {k}, axis=1)", shape=f"float32[N, {size}]"))
        pieces = [node for node in n.graph.nodes if node.op == "chunk"]
        expected = torch.chunk(torch.zeros(1, size), k, dim=1)
        assert [p.type.shape[1] for p in pieces] == [t.shape[1] for t in expected]


# -- fn and built-ins ---------------------------------------------------------------------------
FNS = """fn round_to(v, d) = max(d, int(v + d / 2) // d * d)
fn make_divisible(v, d = 8) = round_to(v, d) + d if round_to(v, d) < 0.9 * v else round_to(v, d)
"""


def make_divisible(v: float, d: int = 8) -> int:
    """torchvision's rule, as its models write it."""
    new_v = max(d, int(v + d / 2) // d * d)
    return new_v + d if new_v < 0.9 * v else new_v


@pytest.mark.parametrize("v", [3, 8, 16, 17.5, 24 * 0.75, 100, 150 / 4, 1000 * 1.3])
def test_fn_values(v):
    n = load_source(net(f"conv2d(make_divisible({v}), 1)", header=FNS))
    assert n.graph.nodes[-1].attrs["filters"] == make_divisible(v)


def test_builtins_on_numbers_follow_python():
    exprs = ["round(2.5)", "round(3.5)", "floor(-2.5)", "ceil(2.1)", "int(-2.7)", "sum([1, 2, 3])"]
    exprs += ["int(sqrt(16))", "int(log(exp(3)))", "int(float(7) / 2)", "abs(-4)"]
    python = [round(2.5), round(3.5), math.floor(-2.5), math.ceil(2.1), int(-2.7)]
    python += [sum([1, 2, 3]), int(math.sqrt(16)), int(math.log(math.exp(3)))]
    python += [int(float(7) / 2), abs(-4)]  # the same expressions, evaluated by Python
    n = load_source(net(*(f"dense({e} + 10)" for e in exprs), shape="float32[N, 3]"))
    assert [node.attrs["units"] - 10 for node in n.graph.nodes[1:]] == python


def test_fn_errors_are_located_with_their_chain():
    (err,) = errors(net("dense(f(1))", header="fn f(x) = g(x)\nfn g(x) = f(x)\n"))
    assert "fn 'f' calls itself (f -> g -> f)" in err.message
    (err,) = errors(net("dense(f(-1))", header="fn f(x) = int(sqrt(x))\n"))
    assert err.span.line == 1 and "sqrt(): math domain error" in err.message
    assert "in fn f, called at" in str(err)
    (err,) = errors(net("dense(f(1, y=2))", header="fn f(x) = x\n"))
    assert "f has no argument 'y'" in err.message
    (err,) = errors(net("dense(f(x))", header="fn f(v) = v\n"))
    assert "takes compile-time values, not tensors" in err.message


# -- loops bind in the enclosing scope ----------------------------------------------------------
def test_running_totals_across_loop_passes():
    src = """
block unit(c, d) {
  h = conv1d(c, 2, dilation=d, causal=true) | tanh
  output h, conv1d(h, c, 1)
}
network A() {
  input x: float32[N, 4, L]
  let k = 0
  for d in [1, 2, 4] {
    h, s = unit(4, d)
    if k == 0 { total = s } else { total = total + s }
    h
    let k = k + 1
  }
  total | relu
}
"""
    n = load_source(src)
    adds = [node for node in n.graph.nodes if node.op == "add"]
    assert [a.name for a in adds] == ["total", "total_1"]  # the first `total = s` adds none
    assert n.counts.receptive_field == 1 + 1 + 2 + 4


# -- follow-on errors ---------------------------------------------------------------------------
def test_a_failed_statement_is_reported_once():
    (err,) = errors(net("let c = undefined_name", "conv2d(c, 3)", "dense(c * 2)"))
    assert "unknown op or name 'undefined_name'" in err.message
    (err,) = errors(net("conv2e(8, 3)", "let d = max(input.shape[1], 8)", "conv2d(d, 3)"))
    assert "unknown op or name 'conv2e'" in err.message
    (err,) = errors(net("a, b = nope(2)", "concat(a, b)", "y = a[:, 0] + 1"))
    assert "nope" in err.message


def test_every_bad_keyword_of_a_call_is_reported():
    errs = errors(net("conv2d(8, 3, strid=2, paddin=1)"))
    assert [e.message.split(";")[0] for e in errs] == [
        "conv2d has no argument 'strid'",
        "conv2d has no argument 'paddin'",
    ]


# -- unused layers --------------------------------------------------------------------------------
def test_a_layer_that_reaches_no_output_is_a_located_warning(tmp_path, capsys):
    src = (
        "network T() {\n  input a: float32[N, 4]\n  s = a | dense(4)\n"
        "  unused = a | tanh | relu\n  p, q = chunk(s, 2, axis=1)\n  output p\n}\n"
    )
    n = load_source(src, path="spec.dl")
    (w,) = n.warnings  # q is not reported: p, another result of the call, is used
    assert str(w).startswith("spec.dl:4:23: warning: layer 'unused' (relu) reaches no output")
    assert n.params == 4 * 4 + 4  # still counted
    from dlc.compiler.cli import main

    (tmp_path / "t.dl").write_text(src)
    assert main(["check", str(tmp_path / "t.dl")]) == 0
    assert "warning: layer 'unused' (relu)" in capsys.readouterr().err


# -- every backend --------------------------------------------------------------------------------
def test_v2_expressions_agree_in_every_backend():
    """Arithmetic, param, indexing and several results, with outputs that come from a
    several-result block call: NumPy, torch (built) and onnxruntime at two batch sizes."""
    import numpy as np

    ort = pytest.importorskip("onnxruntime")
    from dlc.backends import numpy as dnp
    from dlc.backends.onnx import to_model
    from dlc.backends.torch import build
    from dlc.runtime.weights import init_weights

    src = """
block unit(c) {
  a, b = chunk(2, axis=1)
  y = b | conv2d(c // 2, 1) | relu
  output concat(a, y, axis=1), y
}
network V2() {
  input x: float32[N, 16, 8, 8]
  h = conv2d(16, 1)
  g = param(16, 1, 1, init=normal(0, 1))
  h = -(h * g + 1) / 2.0 - h ** 2
  t = h[:, 0] @ h[:, 1]
  p, q = h | unit(16)
  parts = split((4, 12), axis=1)
  output p, q, parts[1], t, h[..., 1:, ::2]
}
"""
    n = load_source(src)
    w = init_weights(n, 0)
    model = build(n, w).eval()
    session = ort.InferenceSession(to_model(n, w).SerializeToString())
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 16, 8, 8)).astype(np.float32)
        ours = dnp.run(n, w, x)
        with torch.no_grad():
            theirs = [t.numpy() for t in model(torch.from_numpy(x))]
        onnx = session.run(None, {"x": x})
        for a, b, c in zip(ours, theirs, onnx, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


def test_symbolic_slice_bounds_in_every_backend():
    """``x[:, :x.shape[1] - 1]``: the bound is read at run time by NumPy, torch and ONNX."""
    import numpy as np

    ort = pytest.importorskip("onnxruntime")
    from dlc.backends import numpy as dnp
    from dlc.backends.onnx import to_model
    from dlc.backends.torch import build
    from dlc.runtime.weights import init_weights

    n = load_source(
        net(
            "a = x[:, :x.shape[1] - 1] | dense(4)",
            "b = x[:, x.shape[1] // 2:, ::2]",
            "output a, b",
            shape="float32[N, T, 6]",
        )
    )
    t = Sym.var("T")
    assert n.outputs["a"].shape[1] == t - 1 and n.outputs["b"].shape[1] == t - t // 2
    w = init_weights(n, 0)
    model = build(n, w).eval()
    session = ort.InferenceSession(to_model(n, w).SerializeToString())
    for steps in (5, 8):
        x = np.random.default_rng(steps).standard_normal((2, steps, 6)).astype(np.float32)
        expected = (x[:, : steps - 1] @ w["a.weight"].T + w["a.bias"], x[:, steps // 2 :, ::2])
        with torch.no_grad():
            built = [y.numpy() for y in model(torch.from_numpy(x))]
        for got in (dnp.run(n, w, x), built, session.run(None, {"x": x})):
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_none_leaves_an_optional_argument_at_its_default():
    n = load_source(
        net(
            "a = clamp(x, min=none, max=1.0)",
            "b = rmsnorm(x, eps=none)",
            "output a, b",
            shape="float32[N, 8]",
        )
    )
    assert dict(n.graph.node("a").attrs) == dict(
        load_source(net("a = clamp(x, max=1.0)", shape="float32[N, 8]")).graph.node("a").attrs
    )
    assert n.graph.node("b").attrs["eps"] is None
    (err,) = errors(net("dense(none)", shape="float32[N, 8]"))
    assert "argument 'units' must be a positive integer, got none" in err.message

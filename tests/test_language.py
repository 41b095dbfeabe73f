"""Every construct of the language (LANGUAGE.md §1-§6), checked against hand-worked results."""

from pathlib import Path

import pytest

from dlc.compiler import DlcError, load, load_source
from dlc.compiler.ir.symbolic import evaluate


def ops(net):
    return [n.op for n in net.graph.nodes if n.op != "input"]


def shape(net, name=None):
    outs = net.outputs
    t = outs[name] if name else next(iter(outs.values()))
    return tuple(d if isinstance(d, int) else str(d) for d in t.shape)


def test_statements_newlines_semicolons_and_optional_parentheses():
    net = load_source("""
# a comment
network Net() {   # trailing comment
  input x: float32[N, 8]
  dense(4); relu
  tanh()

  identity
}
""")
    assert ops(net) == ["dense", "relu", "tanh", "identity"]
    assert shape(net) == ("N", 4)


def test_an_empty_parameter_list_may_be_dropped():
    net = load_source(
        "block mlp { dense(4); relu }\nnetwork Net {\n  input x: float32[N, 3]\n  mlp\n}"
    )
    assert net.name == "Net" and net.params == 3 * 4 + 4


def test_multiline_calls_pipelines_and_braces():
    net = load_source("""
network Net()
{
  input x: float32[N, 8]
  y = x
    | dense(
        16,
        bias=false,
      )
    | relu
  residual { dense(16) }
  shortcut { dense(16) }
}
""")
    assert ops(net) == ["dense", "relu", "dense", "dense", "add"]
    assert net.params == 8 * 16 + (16 * 16 + 16) * 2


def test_expressions_are_evaluated_by_the_compiler():
    net = load_source(
        """
network Net(a = 7, flag = true) {
  input x: float32[N, 3]
  let t = (1, 2, 3)
  let l = [(64, 1), (128, 2)]
  let v = a // 2 + a % 2 * 10 + 2 ** 3 - -1          # 3 + 10 + 8 + 1 = 22
  let w = 4 if flag and not (a < 3 or a == 7 and false) else 5
  let z = t[-1] * l[1][0] + len(l) + min(3, 9) + max(range(4)) + abs(-2)  # 384 + 2 + 3 + 3 + 2
  dense(v); dense(w); dense(z)
  dense(int_div_check) if false else identity
}
""".replace("  dense(int_div_check) if false else identity\n", "")
    )
    assert [n.attrs["units"] for n in net.graph.nodes if n.op == "dense"] == [22, 4, 394]


def test_max_min_abs_are_builtins_on_numbers_and_ops_on_tensors():
    net = load_source("""
block widen(c) { conv1d(max(c, 8), 1) }
network Net() {
  input x: float32[N, 6, 5]
  let c = max(3, 4) + min(2, 7) + abs(-1)   # 4 + 2 + 1 = 7
  widen(c)                                  # 8 filters
  conv1d(max(x.shape[1], c), 1)             # 7 filters
  a = max(axis=1)                           # the current tensor
  b = x | max(axis=(1, 2), keepdims=true)
  m = min(x, axis=-1)
  s = abs(x) | sum(1)
  n = x | abs
  output a, b, m, s, n
}
""")
    assert ops(net) == ["conv1d", "conv1d", "max", "max", "min", "abs", "sum", "abs"]
    assert [n.attrs["filters"] for n in net.graph.nodes if n.op == "conv1d"] == [8, 7]
    assert [shape(net, k) for k in "abmsn"] == [
        ("N", 5),
        ("N", 1, 1),
        ("N", 6),
        ("N", 5),
        ("N", 6, 5),
    ]
    with pytest.raises(DlcError, match="tensor inputs come first"):
        load_source("network Net() {\n  input x: float32[N, 6]\n  dense(max(4, x))\n}")
    with pytest.raises(DlcError, match="axis"):
        load_source("network Net() {\n  input x: float32[N, 6]\n  y = max(x)\n}")


def test_shapes_are_visible_to_expressions():
    net = load_source("""
network Net() {
  input x: float32[N, 12, T]
  let c = x.shape[1] * 2
  conv1d(c, 1)
  conv1d(input.shape[1] + x.rank, 1)     # the first input's channel count 12 + rank 3
}
""")
    assert shape(net) == ("N", 15, "T")


def test_symbolic_dims_flow_through_shapes():
    net = load_source("""
network Net() {
  input x: float32[N, 16, T]
  conv1d(8, 3, stride=2, padding=1)
  maxpool1d(2)
}
""")
    n, c, t = net.outputs["maxpool1d_0"].shape
    assert str(n) == "N" and c == 8
    for length in (1, 2, 9, 100, 101):
        assert evaluate(t, {"T": length}) == ((length - 1) // 2 + 1) // 2


def test_named_values_make_a_dag_and_name_layers():
    net = load_source("""
block double_conv(c) {
  conv2d(c, 3, padding=1); relu
}
network Net() {
  input img: float32[N, 3, 32, 32]
  e1 = double_conv(8)
  e2 = e1 | maxpool2d(2) | double_conv(16)
  d = concat(e1, e2 | upsample(2), axis=1)
  output d, e2
}
""")
    names = [n.name for n in net.graph.nodes]
    assert "e1.conv2d_0" in names and "e2.conv2d_0" in names and "d" in names
    assert shape(net, "d") == ("N", 24, 32, 32)
    assert shape(net, "e2.relu_0") == ("N", 16, 16, 16)
    assert list(net.outputs) == ["d", "e2.relu_0"]


def test_blocks_with_defaults_tensor_parameters_and_nesting():
    net = load_source("""
block proj(c, k = c * 2) { dense(k) }
block up(skip, c) {
  u = proj(c)
  concat(skip, u, axis=1)
}
network Net() {
  input x: float32[N, 4]
  s = dense(3)
  up(s, 5)
}
""")
    assert shape(net) == ("N", 13)  # 3 + 2*5
    assert net.params == (4 * 3 + 3) + (3 * 10 + 10)


def test_residual_forms():
    src = """
block basic(c, stride = 1) {
  residual {
    conv2d(c, 3, stride=stride, padding=1, bias=false); batchnorm; relu
    conv2d(c, 3, padding=1, bias=false); batchnorm
  } shortcut if stride != 1 or input.shape[1] != c {
    conv2d(c, 1, stride=stride, bias=false); batchnorm
  }
  relu
}
network Net() {
  input x: float32[N, 16, 8, 8]
  basic(16)
  basic(32, stride=2)
}
"""
    net = load_source(src)
    # first call: no shortcut (identity); second: the projection shortcut
    first = [n.op for n in net.graph.nodes if n.name.startswith("basic_0.")]
    second = [n.op for n in net.graph.nodes if n.name.startswith("basic_1.")]
    assert first.count("conv2d") == 2 and second.count("conv2d") == 3
    assert shape(net) == ("N", 32, 4, 4)
    # parameters: hand-counted conv + batchnorm weights
    p1 = 2 * (16 * 16 * 9 + 32)
    p2 = 16 * 32 * 9 + 32 * 32 * 9 + 16 * 32 + 3 * 64
    assert net.params == p1 + p2


def test_control_flow_unrolls():
    net = load_source("""
network Net(use_dropout = false, levels = 3) {
  input x: float32[N, 2, L]
  repeat 2 { conv1d(4, 1) }
  for i in range(levels) { conv1d(4, 3, dilation=2 ** i, causal=true) }
  for c, k in [(8, 1), (6, 3)] { conv1d(c, k, padding=k // 2) }
  if use_dropout { dropout(0.5) } else if levels > 2 { relu } else { tanh }
}
""")
    assert ops(net) == ["conv1d"] * 7 + ["relu"]
    dil = [n.attrs["dilation"][0] for n in net.graph.nodes if n.attrs.get("causal")]
    assert dil == [1, 2, 4]
    assert net.counts.receptive_field == 1 + 2 * (1 + 2 + 4) + 2  # causal stack, then k=3
    assert shape(net) == ("N", 6, "L")


def test_overrides_and_several_networks():
    src = """
network A(classes = 10) { input x: float32[N, 4]; dense(classes) }
network B() { input x: float32[N, 4]; dense(2) }
"""
    assert shape(load_source(src, "A", classes=3)) == ("N", 3)
    assert shape(load_source(src, "B")) == ("N", 2)
    with pytest.raises(DlcError, match="several networks"):
        load_source(src)


def test_imports_resolve_relative_to_the_importing_file(tmp_path: Path):
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "mlp.dl").write_text("block mlp(h) { dense(h); relu }\n")
    (tmp_path / "net.dl").write_text(
        'import "blocks/mlp.dl"\nnetwork Net() {\n  input x: float32[N, 3]\n  mlp(5)\n}\n'
    )
    assert load(tmp_path / "net.dl").params == 3 * 5 + 5


def test_init_statements_and_per_layer_overrides():
    net = load_source("""
network Net() {
  init weight = kaiming_normal(mode="fan_out", nonlinearity="relu"), bias = zeros
  input x: float32[N, 3, 8, 8]
  conv2d(4, 3); batchnorm
  flatten
  dense(10, init=xavier_uniform, bias_init=constant(0.1))
}
""")
    p = dict(net.graph.params())
    assert str(p["conv2d_0.weight"].init) == "kaiming_normal(mode='fan_out', nonlinearity='relu')"
    assert p["conv2d_0.bias"].init.name == "zeros"
    assert p["batchnorm_0.weight"].init is None  # norm layers keep their default
    assert p["dense_0.weight"].init.name == "xavier_uniform"
    assert p["dense_0.bias"].init.args == (("value", 0.1),)


def test_tensor_arithmetic_lowers_to_merge_ops():
    net = load_source("""
network Net() {
  input a: float32[N, 4]
  input b: float32[N, 1]
  y = a * b + a
}
""")
    assert ops(net) == ["mul", "add"]
    assert shape(net) == ("N", 4)


def test_undecidable_equalities_become_constraints():
    net = load_source("""
network Net() {
  input x: float32[N, 4, H, W]
  e = conv2d(4, 3, padding=1)
  d = e | maxpool2d(2) | maxpool2d(2) | upsample(4)
  concat(e, d, axis=1)
}
""")
    texts = [str(c) for c in net.graph.constraints]
    assert any("H == 4*(H // 4)" in t for t in texts) and len(texts) == 2


def test_dims_binding_makes_counts_concrete():
    src = "network Net() { input t: int64[N, T]; embedding(100, 8); lstm(16) }"
    symbolic = load_source(src).macs
    bound = load_source(src, dims={"T": 10}).macs
    assert str(symbolic) == f"{4 * 16 * (8 + 16)}*T"
    assert bound == 10 * 4 * 16 * (8 + 16)


def test_replayed_block_calls_give_exactly_the_elaborated_ir(monkeypatch):
    """Repeated block calls are replayed from the first; switching that off must not change
    a single node, name, span, call chain, scope or constraint of any bundled spec."""
    from dlc.compiler.elaborate import memo
    from dlc.compiler.elaborate.elaborator import Elaborator

    def key(g):
        def sp(s):
            return None if s is None else (s.line, s.col, s.end_line, s.end_col)

        return (
            [
                (
                    n.name,
                    n.op,
                    n.inputs,
                    tuple(n.attrs.items()),
                    n.type,
                    tuple(n.params.items()),
                    sp(n.span),
                    tuple((b, sp(c)) for b, c in n.chain),
                )
                for n in g.nodes
            ],
            [(s.prefix, s.block, s.args, sp(s.span), s.inputs) for s in g.scopes],
            [(c.a, c.b, c.what, sp(c.span)) for c in g.constraints],
            g.inputs,
            g.outputs,
        )

    replays = []
    real = Elaborator._replay
    monkeypatch.setattr(Elaborator, "_replay", lambda self, *a: replays.append(a) or real(self, *a))
    for spec in sorted((Path(__file__).parent.parent / "specs").glob("*.dl")):
        replayed = load(spec).graph
        monkeypatch.setattr(memo, "MEMOIZE_BLOCKS", False)
        elaborated = load(spec).graph
        monkeypatch.setattr(memo, "MEMOIZE_BLOCKS", True)
        assert key(replayed) == key(elaborated), spec.name
    assert len(replays) >= 10  # resnet50 replays 8 of its 16 blocks, resnet18 1 of 8

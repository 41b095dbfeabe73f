"""Symbolic dims against plain integer arithmetic (the reference is Python's own ints)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dlc.compiler.ir.symbolic import Sym, ceildiv, equal, evaluate, floordiv, substitute

T, H = Sym.var("T"), Sym.var("H")

# Random expression trees over T and H built from the operations shape rules use.
leaf = st.one_of(st.just(T), st.just(H), st.integers(-5, 9))


def _combine(children):
    return st.one_of(
        st.tuples(children, children).map(lambda ab: ab[0] + ab[1]),
        st.tuples(children, children).map(lambda ab: ab[0] - ab[1]),
        st.tuples(children, st.integers(-3, 4)).map(lambda ab: ab[0] * ab[1]),
        st.tuples(children, st.integers(1, 5)).map(lambda ab: floordiv(ab[0], ab[1])),
        st.tuples(children, st.integers(1, 5)).map(lambda ab: ceildiv(ab[0], ab[1])),
    )


exprs = st.recursive(leaf, _combine, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 300), st.integers(0, 300))
def test_expression_trees_evaluate_like_python_ints(data, t, h):
    ops = data.draw(st.lists(st.tuples(st.sampled_from("+-*/c"), st.integers(1, 6)), max_size=6))
    sym, ref = T, t
    for op, k in ops:
        other_sym, other_ref = (H, h) if k % 2 else (k, k)
        if op == "+":
            sym, ref = sym + other_sym, ref + other_ref
        elif op == "-":
            sym, ref = sym - other_sym, ref - other_ref
        elif op == "*":
            sym, ref = sym * k, ref * k
        elif op == "/":
            sym, ref = floordiv(sym, k), ref // k
        else:
            sym, ref = ceildiv(sym, k), -(-ref // k)
    assert evaluate(sym, {"T": t, "H": h}) == ref


@settings(max_examples=200, deadline=None)
@given(exprs, st.integers(0, 200), st.integers(0, 200))
def test_canonical_forms_are_consistent(e, t, h):
    env = {"T": t, "H": h}
    value = evaluate(e, env)
    # substitution agrees with evaluation, and an expression minus itself is exactly 0
    assert substitute(e, env) == value
    assert e - e == 0
    assert equal(e, e) is True
    assert equal(e, e + 1) is False


def test_conv_output_size_prints_as_pytorch_formula():
    # nn.Conv1d(k=3, stride=2, padding=1) over T: (T + 2 - 2 - 1) // 2 + 1
    out = floordiv(T + 2 * 1 - 1 * (3 - 1) - 1, 2) + 1
    assert str(out) == "(T - 1) // 2 + 1"
    pooled = floordiv(out + 2 - 2 - 1, 2) + 1  # and a second stride-2 window folds in
    assert str(pooled) == "(T - 1) // 4 + 1"
    assert [evaluate(pooled, {"T": t}) for t in (1, 7, 8, 9, 100)] == [
        ((t - 1) // 2 + 1 - 1) // 2 + 1 for t in (1, 7, 8, 9, 100)
    ]


def test_simplifications():
    assert floordiv(2 * T + 4, 2) == T + 2
    assert str(floordiv(H - 2, 2) + 1) == "H // 2"
    assert str(H * 4 * 256 + 3 * T * T) == "3*T**2 + 1024*H"
    assert floordiv(floordiv(H, 2), 2) == floordiv(H, 4)
    # undecidable equalities stay undecided: U-Net's skip connection
    assert equal(floordiv(H, 2), floordiv(H, 4) * 2) is None
    assert equal(T, T + 1) is False
    assert hash(floordiv(T + 1, 2)) == hash(floordiv(T - 1, 2) + 1)

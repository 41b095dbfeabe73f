"""Error messages (LANGUAGE.md §8): every mistake gets a located message, never a traceback.

Each test compiles a small wrong spec and checks the line and column of the (first) error
and the key words of its message. Positions are 1-based; `net(...)` puts the statements
on line 3 onwards, after `network A() {` and `input x: float32[N, 3, 32, 32]`.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlc.compiler import DlcError, load, load_source

PATH = "spec.dl"


def net(*lines: str, header: str = "network A() {", shape: str = "float32[N, 3, 32, 32]") -> str:
    """A one-network spec: the header on line 1, the input on line 2, `lines` from line 3."""
    body = "".join(f"  {line}\n" for line in lines)
    return f"{header}\n  input x: {shape}\n{body}}}\n"


def compile_error(text: str, **kw) -> DlcError:
    with pytest.raises(DlcError) as info:
        load_source(text, path=PATH, **kw)
    return info.value


def expect(text: str, line: int, col: int, *words: str, **kw) -> DlcError:
    """Compile `text`; the first error must be at line:col and mention every word."""
    err = compile_error(text, **kw)
    assert err.span is not None, str(err)
    assert (err.span.line, err.span.col) == (line, col), str(err)
    for word in words:
        assert word in err.message or word in str(err), f"{word!r} not in:\n{err}"
    assert_well_formed(err)
    return err


def assert_well_formed(err: DlcError) -> None:
    """`file:line:col: error: message`, the source line, a caret under the span."""
    text = str(err)
    assert "Traceback" not in text
    first = err.errors[0]
    lines = first.format().splitlines()
    span = first.span
    assert lines[0] == f"{span.source.path}:{span.line}:{span.col}: error: {first.message}"
    # lines as the lexer counts them; control characters are shown as spaces
    source_line = span.source.text.split("\n")[span.line - 1].rstrip("\r")
    shown = "".join(c if c.isprintable() else " " for c in source_line)
    assert lines[1].endswith(shown) or not source_line
    caret = lines[2]
    assert re.fullmatch(r" +\| +\^~*", caret), caret
    # the caret sits under the error's column
    assert caret.index("^") - caret.index("|") - 2 == span.col - 1


# ---- syntax ------------------------------------------------------------------------------


def test_missing_close_paren_first_statement():
    err = expect("network A() {\n  conv2d(16, 3\n  relu\n}\n", 3, 3, "missing ')'", "'relu'")
    assert any("2:9" in n for n in err.notes), str(err)


def test_missing_close_paren():
    err = expect(net("conv2d(16, 3", "relu"), 4, 3, "missing ')'", "'relu'")
    assert any("3:9" in n for n in err.notes), str(err)


def test_missing_close_paren_note_points_at_the_users_paren():
    err = expect("network A() {\n      dense(3, 3\n  relu\n}\n", 3, 3, "missing ')'")
    assert any("2:12" in n for n in err.notes), str(err)


def test_missing_close_brace_first_statement():
    expect("network A() {\n  relu\n", 2, 7, "missing '}'", "end of file")


def test_missing_close_brace():
    expect("network A() {\n  input x: float32[N, 3]\n  relu\n", 3, 7, "missing '}'", "end of file")


def test_missing_close_bracket_in_input_shape():
    err = expect("network A() {\n  input x: float32[N, 3\n  relu\n}\n", 3, 3, "missing ']'")
    assert any("2:19" in n for n in err.notes), str(err)


def test_equals_instead_of_colon_in_input():
    expect(
        "network A() {\n  input x = float32[N, 3]\n}\n", 2, 11, "':'", "'='", "input NAME: DTYPE"
    )


def test_equals_instead_of_colon_in_second_input():
    expect(
        "network A(k = 1) {\n  input x: float32[N, 3]\n  input y = float32[N, 3]\n}\n",
        3,
        11,
        "input NAME: DTYPE",
    )


def test_missing_comma_between_arguments():
    expect(net("conv2d(16 3)"), 3, 13, "missing ','", "'3'")


def test_missing_comma_between_arguments_first_statement():
    expect("network A() {\n  conv2d(16 3)\n}\n", 2, 13, "missing ','", "'3'")


def test_single_equals_in_condition():
    expect(net("if a = 1 { relu }", header="network A(a = 1) {"), 3, 8, "'=='")


def test_two_values_in_an_assignment_is_a_syntax_error_not_a_crash():
    expect(net("y = 1 2"), 3, 9, "'2'")


def test_statements_need_a_separator_first_statement():
    expect("network A() {\n  relu relu\n}\n", 2, 8, "newline or ';'", "'relu'")


def test_statements_need_a_separator():
    expect(net("relu relu"), 3, 8, "newline or ';'", "'relu'")


def test_stray_character():
    expect(net("conv2d(16, 3) ? relu"), 3, 17, "unexpected character '?'")


def test_stray_character_at_end_of_statement():
    expect(net("relu $"), 3, 8, "unexpected character '$'")


def test_unterminated_string():
    expect(net('conv2d(16, 3, padding="same)'), 3, 25, "unterminated string")


def test_block_without_name():
    expect("block (c) { relu }\n", 1, 7, "needs a name")


# ---- names -------------------------------------------------------------------------------


def test_unknown_op_suggests_closest():
    expect(net("conv2(16, 3)"), 3, 3, "unknown op", "'conv2'", "did you mean 'conv2d'?")


def test_unknown_keyword_argument_suggests_closest():
    expect(
        net("conv2d(16, 3, strid=2)"),
        3,
        17,
        "conv2d",
        "no argument 'strid'",
        "did you mean 'stride'?",
    )


def test_unknown_name():
    expect(net("conv2d(filters, 3)"), 3, 10, "unknown", "'filters'")


def test_unknown_capitalised_name_explains_symbolic_dims():
    expect(net("dense(Foo)"), 3, 9, "unknown name 'Foo'", "symbolic dim")


def test_unknown_dtype_suggests_closest():
    expect(
        "network A() {\n  input x: float23[N, 3]\n}\n",
        2,
        12,
        "unknown dtype 'float23'",
        "did you mean 'float32'?",
    )


def test_network_called_as_a_layer():
    expect(net("A"), 3, 3, "'A' is a network")


# ---- argument values ---------------------------------------------------------------------


def test_stride_zero():
    expect(net("conv2d(16, 3, stride=0)"), 3, 17, "conv2d", "'stride'", "positive integer", "got 0")


def test_dropout_probability_out_of_range():
    expect(net("dropout(1.5)"), 3, 11, "dropout", "'p'", "[0, 1)", "got 1.5")


def test_float_where_an_integer_is_needed():
    expect(net("flatten", "dense(3.5)"), 4, 9, "dense", "'units'", "positive integer", "got 3.5")


def test_padding_string_not_a_choice():
    expect(
        net('conv2d(16, 3, padding="sam")'),
        3,
        17,
        "conv2d",
        "'padding'",
        '"same"',
        '"valid"',
        'got "sam"',
    )


def test_negative_kernel_in_a_tuple():
    expect(net("conv2d(8, (3, -1))"), 3, 13, "'kernel'", "(3, -1)")


def test_too_many_positional_arguments():
    expect(net("dropout(0.1, 0.2)"), 3, 16, "dropout", "at most 1 positional", "got 2")


def test_argument_to_an_op_without_arguments():
    expect(net("relu(1)"), 3, 8, "relu takes no arguments")


def test_missing_required_argument():
    expect(net("conv2d(16)"), 3, 3, "conv2d", "missing", "'kernel'")


def test_keyword_argument_given_twice():
    expect(net("conv2d(8, 3, stride=1, stride=2)"), 3, 26, "'stride'", "twice")


def test_argument_given_by_position_and_name():
    expect(net("conv2d(8, 3, filters=2)"), 3, 16, "'filters'", "position", "name")


def test_groups_must_divide_filters():
    expect(net("conv2d(8, 3, groups=3)"), 3, 3, "groups", "8", "3")


# ---- shapes and dtypes -------------------------------------------------------------------


def test_rank_mismatch_names_the_producer():
    err = expect(net("flatten", "conv2d(64, 3)"), 4, 3, "conv2d", "rank-4", "[N, 3072]")
    assert any("produced by flatten" in n and "3:3" in n for n in err.notes), str(err)


def test_conv_kernel_bigger_than_input_shows_the_arithmetic():
    err = expect(net("conv2d(8, 5)", shape="float32[N, 3, 4, 4]"), 3, 3, "conv2d")
    assert "(4 + 2*0 - (5 - 1) - 1) // 1 + 1 = 0" in err.message, err.message


def test_pool_window_bigger_than_input():
    err = expect(net("maxpool2d(64)"), 3, 3, "maxpool2d")
    assert "// 64 + 1 = 0" in err.message, err.message


def test_residual_shape_mismatch():
    expect(
        net("residual { conv2d(8, 3, padding=1) }"),
        3,
        3,
        "residual",
        "[N, 8, 32, 32]",
        "[N, 3, 32, 32]",
        "shortcut",
    )


def test_residual_shortcut_shape_mismatch():
    expect(
        net("residual { conv2d(8, 3, padding=1) } shortcut { conv2d(4, 1) }"),
        3,
        3,
        "residual",
        "[N, 8, 32, 32]",
        "[N, 4, 32, 32]",
    )


def test_concat_mismatch():
    err = expect(
        net("a = conv2d(8, 3)", "b = x | conv2d(8, 1)", "concat(a, b, axis=1)"), 5, 3, "concat"
    )
    assert "30" in err.message and "32" in err.message, err.message


def test_add_of_incompatible_shapes():
    err = expect(
        net("a = conv2d(8, 1)", "b = x | conv2d(4, 1)", "add(a, b)"),
        5,
        3,
        "add",
        "[N, 8, 32, 32]",
        "[N, 4, 32, 32]",
        "broadcast",
    )
    assert len([n for n in err.notes if "produced by conv2d" in n]) == 2, str(err)


def test_tensor_plus_of_incompatible_shapes():
    expect(net("a = conv2d(8, 1)", "b = x | conv2d(4, 1)", "c = a + b"), 5, 7, "broadcast")


def test_embedding_on_float_input():
    expect(net("embedding(100, 16)"), 3, 3, "embedding", "int", "float32")


def test_dense_on_int_input():
    expect(
        net("dense(4)", shape="int64[N, 8]"), 3, 3, "dense", "floating-point", "int64", "embedding"
    )


def test_reshape_that_does_not_divide():
    expect(net("reshape(7, -1)"), 3, 3, "reshape", "3072", "(7, -1)")


def test_permute_that_is_not_a_permutation():
    expect(net("permute(0, 1, 1, 2)"), 3, 3, "permute", "(0, 1, 1, 2)")


def test_axis_out_of_range():
    expect(net("softmax(axis=7)"), 3, 3, "softmax", "axis 7", "rank-4")


def test_attention_on_an_image():
    expect(net("attention(3)"), 3, 3, "attention", "rank-3")


def test_sequence_longer_than_positional_encoding():
    expect(
        net("positional_encoding(max_len=5)", shape="float32[N, 10, 8]"), 3, 3, "max_len=5", "10"
    )


# ---- blocks ------------------------------------------------------------------------------


def test_self_recursive_block_names_the_cycle():
    text = "block b(c) {\n  conv2d(c, 1)\n  b(c)\n}\n" + net("b(8)")
    err = expect(text, 3, 3, "block 'b' calls itself", "b -> b")
    assert err.chain and err.chain[0][0] == "b"


def test_mutually_recursive_blocks_name_the_cycle():
    text = "block a1(c) {\n  a2(c)\n}\nblock a2(c) {\n  a1(c)\n}\n" + net("a1(8)")
    err = expect(text, 5, 3, "calls itself", "a1 -> a2 -> a1")
    assert [name for name, _ in err.chain] == ["a2", "a1"]


def test_error_inside_a_block_gives_the_call_chain():
    text = "block bb(c) {\n  flatten\n  conv2d(c, 3)\n}\n" + net("bb(8)")
    err = expect(text, 3, 3, "rank-4")
    assert err.chain[0][0] == "bb"
    call = err.chain[0][1]
    assert (call.line, call.col) == (7, 3)
    assert "in block bb, called at spec.dl:7:3" in str(err)


def test_nested_block_chain_innermost_first():
    text = "block inner(c) {\n  dense(c)\n}\nblock outer(c) {\n  inner(c)\n}\n" + net("outer(0)")
    err = expect(text, 2, 9, "dense", "'units'")
    assert [name for name, _ in err.chain] == ["inner", "outer"]
    text_lines = str(err).splitlines()
    assert text_lines[-2] == "  in block inner, called at spec.dl:5:3"
    assert text_lines[-1] == "  in block outer, called at spec.dl:9:3"


def test_block_missing_parameter():
    expect("block b(c) {\n  dense(c)\n}\n" + net("b"), 6, 3, "block b", "missing", "'c'")


def test_input_declared_inside_a_block():
    err = expect("block b() {\n  input y: float32[N]\n}\n" + net("b"), 2, 3, "inputs are declared")
    assert err.chain[0][0] == "b"


def test_several_results_used_as_a_statement():
    two = "block b() {\n  output input, input\n}\n"
    expect(two + net("b"), 6, 3, "gives 2 results: bind them (`a, b = ...`)")
    expect(net("chunk(3, axis=1)"), 3, 3, "gives 3 results")
    expect(two + net("a, b, c = b"), 6, 3, "cannot unpack (a tensor")
    expect(net("a, b = relu"), 3, 10, "relu gives one result, not 2")
    expect(net("a, b = split((1, 1), axis=1)"), 3, 10, "sizes [1, 1] sum to 2, not 3")


# ---- files and imports -------------------------------------------------------------------


def test_import_cycle(tmp_path: Path):
    (tmp_path / "a.dl").write_text('import "b.dl"\n' + net("relu"))
    (tmp_path / "b.dl").write_text('\nimport "a.dl"\nblock bb() {\n  relu\n}\n')
    with pytest.raises(DlcError) as info:
        load(tmp_path / "a.dl")
    err = info.value
    assert Path(err.span.source.path).name == "b.dl"
    assert (err.span.line, err.span.col) == (2, 1)
    assert "import cycle" in err.message and "a.dl -> b.dl -> a.dl" in err.message
    assert_well_formed(err)


def test_self_import(tmp_path: Path):
    (tmp_path / "a.dl").write_text('import "a.dl"\n' + net("relu"))
    with pytest.raises(DlcError) as info:
        load(tmp_path / "a.dl")
    assert (info.value.span.line, info.value.span.col) == (1, 1)
    assert "import cycle" in info.value.message


def test_missing_import_file(tmp_path: Path):
    (tmp_path / "m.dl").write_text('import "nope.dl"\n' + net("relu"))
    with pytest.raises(DlcError) as info:
        load(tmp_path / "m.dl")
    err = info.value
    assert (err.span.line, err.span.col) == (1, 1)
    assert "cannot import 'nope.dl'" in err.message and "no such file" in err.message
    assert_well_formed(err)


def test_error_in_an_imported_file_names_that_file(tmp_path: Path):
    (tmp_path / "lib.dl").write_text("block bb() {\n  conv2(3, 3)\n}\n")
    (tmp_path / "main.dl").write_text('import "lib.dl"\n' + net("bb"))
    with pytest.raises(DlcError) as info:
        load(tmp_path / "main.dl")
    err = info.value
    assert Path(err.span.source.path).name == "lib.dl"
    assert (err.span.line, err.span.col) == (2, 3)
    assert "did you mean 'conv2d'?" in err.message


def test_missing_file():
    with pytest.raises(DlcError) as info:
        load("/nonexistent/dir/x.dl")
    assert info.value.span is None
    assert str(info.value).startswith("error: cannot read /nonexistent/dir/x.dl")


def test_duplicate_block():
    expect(
        "block b() {\n  relu\n}\nblock b() {\n  tanh\n}\n" + net("b"),
        4,
        7,
        "block 'b' is already defined at spec.dl:1:7",
    )


def test_duplicate_network():
    expect(net("relu") + net("tanh"), 5, 9, "network 'A' is already defined at spec.dl:1:9")


def test_duplicate_input():
    expect(net("input x: float32[N, 3]"), 3, 3, "'x' is already defined")


# ---- network parameters and selection ----------------------------------------------------


def test_set_unknown_network_parameter():
    text = "network A(classes = 10) {\n  input x: float32[N, 3]\n  dense(classes)\n}\n"
    err = compile_error(text, clases=5)
    assert err.span is None  # the mistake is in the caller's overrides, not in the spec
    assert str(err).startswith(
        "error: network A has no parameter 'clases'; did you mean 'classes'?"
    )


def test_set_parameter_to_a_bad_value_points_at_the_use():
    text = "network A(classes = 10) {\n  input x: float32[N, 3]\n  dense(classes)\n}\n"
    expect(text, 3, 9, "'units'", "got 0", classes=0)


def test_network_parameter_without_default_not_set():
    text = "network A(classes) {\n  input x: float32[N, 3]\n  dense(classes)\n}\n"
    expect(text, 1, 11, "'classes'", "no default", "--set classes=")


def test_several_networks_without_choice():
    err = compile_error(net("relu") + net("relu", header="network B() {"))
    assert err.span is None
    assert "several networks" in err.message and "A, B" in err.message
    assert str(err).startswith("error: ")


def test_unknown_network_choice():
    err = compile_error(net("relu"), network="Aa")
    assert err.span is None and "no network 'Aa'" in err.message


def test_network_without_input():
    expect("network A() {\n}\n", 1, 9, "declares no input")


def test_layer_before_any_input():
    expect("network A() {\n  relu\n}\n", 2, 3, "relu", "no input")


# ---- several errors at once --------------------------------------------------------------


def test_independent_errors_are_reported_together():
    err = compile_error(net("conv2(8, 3)", "relu", "flatten", "dense(3.5)", "dropout(2.0)", "foo"))
    where = [(e.span.line, e.span.col) for e in err.errors]
    assert len(err.errors) >= 3
    assert where == [(3, 3), (6, 9), (7, 11), (8, 3)]
    text = str(err)
    for line, col in where:
        assert f"spec.dl:{line}:{col}: error:" in text
    assert "Traceback" not in text


def test_errors_in_two_blocks_calls_are_both_reported():
    text = "block b(c) {\n  dense(c)\n}\n" + net("flatten", "b(0)", "b(-1)")
    err = compile_error(text)
    assert [(e.span.line, e.span.col) for e in err.errors] == [(2, 9), (2, 9)]
    assert [e.chain[0][1].line for e in err.errors] == [7, 8]


def test_a_value_that_depends_on_an_error_is_not_reported_again():
    err = compile_error(net("y = conv2(8, 3)", "relu", "z = y | dense(4)"))
    assert len(err.errors) == 1 and (err.span.line, err.span.col) == (3, 7)


# ---- control and expressions -------------------------------------------------------------


def test_repeat_with_a_float_count():
    expect(net("repeat 2.5 { relu }"), 3, 10, "repeat", "integer", "2.5")


def test_repeat_with_a_string_count():
    expect(net('repeat "x" { relu }'), 3, 10, "repeat", "integer", '"x"')


def test_for_unpacking_mismatch():
    expect(
        net("for a, b in [(1, 2), (3, 4, 5)] { relu }"),
        3,
        15,
        "cannot unpack",
        "(3, 4, 5)",
        "2 names",
    )


def test_for_over_a_number():
    expect(net("for i in 3 { relu }"), 3, 12, "for", "list", "3")


def test_undecidable_symbolic_comparison():
    text = "network A() {\n  input x: float32[N, 3, H, W]\n  if input.shape[2] > 3 { relu }\n}\n"
    expect(text, 3, 6, "cannot decide", "H")


def test_index_out_of_range():
    expect(
        net("let t = (1, 2, 3)", "flatten", "dense(t[5])"),
        5,
        11,
        "index 5",
        "out of range",
        "length 3",
    )


def test_negative_index_out_of_range():
    expect(net("let t = (1, 2)", "flatten", "dense(t[-3])"), 5, 11, "index -3", "out of range")


def test_shape_index_out_of_range():
    expect(net("flatten", "dense(x.shape[9])"), 4, 17, "index 9", "out of range")


def test_tensor_as_a_condition():
    expect(net("if x { relu }"), 3, 6, "condition", "tensor")


def test_tensor_in_a_conditional_expression():
    expect(net("let k = 1 if x else 2", "relu"), 3, 16, "condition", "tensor")


def test_unknown_tensor_attribute():
    expect(net("flatten", "dense(x.foo)"), 4, 9, "no attribute 'foo'")


def test_division_by_zero():
    expect(net("let k = 3 // 0", "relu"), 3, 16, "division by zero")


def test_symbolic_dim_true_division():
    expect(net("let k = x.shape[0] / 2", "relu"), 3, 11, "'//'")


def test_tensor_arithmetic_that_has_no_meaning():
    expect(net("y = x // 2"), 3, 7, "cannot apply '//'", "tensors combine with + - * /")
    expect(net("y = x ** x"), 3, 12, "a tensor's power must be a number")
    expect(net("y = 2 ** x"), 3, 7, "a number cannot be raised to a tensor's power")
    expect(net("y = x * x.shape[0]"), 3, 11, "a tensor combines with a number, not a symbolic")
    expect(net("y = x + (1, 2)"), 3, 11, "a tensor combines with a number, not (1, 2)")
    expect(net("y = x @ 2"), 3, 7, "cannot apply '@'")
    expect(net("let k = 2 @ 3"), 3, 11, "'@' multiplies tensors")


def test_pipe_into_a_constant():
    expect(net("let k = 3", "y = x | k"), 4, 11, "'k'", "not a layer")


def test_constant_statement_does_nothing():
    expect(net('"hello"'), 3, 3, "does nothing", "let")


def test_output_of_a_constant():
    expect(net("output 3"), 3, 10, "output", "tensor", "3")


def test_input_dim_must_be_an_integer():
    expect("network A() {\n  input x: float32[N, 2.5]\n}\n", 2, 23, "dimension", "2.5")


def test_unknown_init_target_suggests_closest():
    expect(
        net("init wieght = zeros", "flatten", "dense(3)"),
        3,
        8,
        "'wieght'",
        "did you mean 'weight'?",
    )


def test_init_that_is_not_an_initialiser():
    expect(net("init weight = 3", "flatten", "dense(3)"), 3, 17, "initialiser", "got 3")


def test_negating_a_tuple_is_an_error_not_a_crash():
    expect(net("let k = -(1, 2)", "relu"), 3, 12, "negate", "(1, 2)")


def test_negating_a_string():
    expect(net('let k = -"a"', "relu"), 3, 12, "negate", '"a"')


def test_builtin_overflow_is_an_error_not_a_crash():
    expect(net("let k = len(range(10 ** 30))", "relu"), 3, 11, "len")


def test_builtin_with_a_bad_argument():
    expect(net('for i in range("a") { relu }'), 3, 12, "range()")


def test_huge_exponent():
    expect(net("let k = 9 ** 9 ** 9", "relu"), 3, 16, "exponent", "too large")


def test_huge_list_repetition_is_an_error_not_a_crash():
    expect(net("let k = [1] * 2 ** 62", "relu"), 3, 11, "[1]")


def test_huge_repeat_count_is_an_error_not_a_hang():
    def on_alarm(signum, frame):
        raise TimeoutError("still compiling after 2 s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        expect(net("repeat 10 ** 9 { relu }"), 3, 10, "repeat")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_block_with_the_name_of_an_op_is_not_silently_ignored():
    text = "block relu() {\n  tanh\n}\n" + net("relu")
    try:
        network = load_source(text, path=PATH)
    except DlcError as err:
        assert (err.span.line, err.span.col) == (1, 7) and "relu" in err.message, str(err)
    else:
        assert "tanh" in [node.op for node in network.graph.nodes]


def test_form_feed_in_a_comment_does_not_shift_the_quoted_line():
    err = expect("# page\x0cbreak\n" + net("conv2(3)"), 4, 3, "conv2")
    assert err.format().splitlines()[1].endswith("|   conv2(3)"), str(err)


# ---- the command line --------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlc.compiler.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ok.dl").write_text("network A(k = 2) {\n  input x: float32[N, 3]\n  dense(k)\n}\n")
    (tmp_path / "bad.dl").write_text(net("conv2(8, 3)", "relu", "dropout(2.0)"))
    (tmp_path / "two.dl").write_text(
        net("flatten", "dense(4)") + net("flatten", "dense(5)", header="network B() {")
    )
    (tmp_path / "syntax.dl").write_text(net("conv2d(16, 3) ? relu"))
    return tmp_path


def test_cli_check_ok(files: Path):
    r = run_cli("check", "ok.dl", cwd=files)
    assert r.returncode == 0, r.stderr
    assert "ok.dl: ok" in r.stdout and r.stderr == ""


def test_cli_check_spec_errors(files: Path):
    r = run_cli("check", "bad.dl", cwd=files)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "bad.dl:3:3: error: unknown op or name 'conv2'; did you mean 'conv2d'?"
    assert lines[1].endswith("|   conv2(8, 3)")
    assert re.fullmatch(r" +\|   \^~~~~", lines[2]), lines[2]
    assert "bad.dl:5:11: error: dropout: argument 'p'" in r.stderr  # reported together


def test_cli_check_syntax_error(files: Path):
    r = run_cli("check", "syntax.dl", cwd=files)
    assert r.returncode == 1
    assert r.stderr.startswith("syntax.dl:3:17: error: unexpected character '?'")
    assert "^" in r.stderr and "Traceback" not in r.stderr


def test_cli_check_several_files_keeps_going(files: Path):
    r = run_cli("check", "ok.dl", "bad.dl", "two.dl", cwd=files)
    assert r.returncode == 1
    assert "ok.dl: ok" in r.stdout and "two.dl: ok (2 networks: A, B)" in r.stdout
    assert "bad.dl:3:3: error:" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check", "missing.dl"),
        ("summary", "missing.dl"),
        ("summary", "two.dl"),  # several networks, no --network
        ("summary", "two.dl", "--network", "C"),
        ("ir", "ok.dl", "--set", "k"),
        ("summary", "ok.dl", "--set", "k=foo"),
        ("summary", "ok.dl", "--dim", "N=x"),
        ("frobnicate", "ok.dl"),
    ],
)
def test_cli_usage_errors_exit_2(files: Path, args):
    r = run_cli(*args, cwd=files)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "error" in r.stderr and "Traceback" not in r.stderr


def test_cli_several_networks_message(files: Path):
    r = run_cli("summary", "two.dl", cwd=files)
    assert r.returncode == 2
    assert "several networks" in r.stderr and "--network" in r.stderr


def test_cli_set_unknown_parameter_is_a_usage_error(files: Path):  # like --network C
    r = run_cli("summary", "ok.dl", "--set", "q=1", cwd=files)
    assert r.returncode == 2
    assert "no parameter 'q'" in r.stderr


def test_cli_set_unknown_parameter_suggests_closest(files: Path):
    r = run_cli("summary", "ok.dl", "--set", "kk=1", cwd=files)
    assert r.returncode == 2
    assert "no parameter 'kk'" in r.stderr and "did you mean 'k'?" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_set_value_error_points_at_the_use(files: Path):
    r = run_cli("summary", "ok.dl", "--set", "k=0", cwd=files)
    assert r.returncode == 1
    assert r.stderr.startswith("ok.dl:3:9: error: dense: argument 'units'")


@pytest.mark.parametrize("command", ["summary", "ir"])
def test_cli_spec_error_in_summary_and_ir(files: Path, command: str):
    r = run_cli(command, "bad.dl", cwd=files)
    assert r.returncode == 1
    assert r.stderr.startswith("bad.dl:3:3: error:")
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_cli_summary_ok(files: Path):
    r = run_cli("summary", "two.dl", "--network", "B", "--format", "json", cwd=files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("{")


def test_an_op_short_of_tensor_inputs():
    expect(net("matmul"), 3, 3, "matmul takes 2 tensor inputs, got 1")
    expect(net("sub(scalar=2, left=true) | add"), 3, 30, "add takes two or more tensors, or")


# ---- hostile inputs (issue 9): files that are not text, deep nesting, runaway unrolling --


def file_error(tmp_path: Path, data: bytes) -> DlcError:
    path = tmp_path / "spec.dl"
    path.write_bytes(data)
    with pytest.raises(DlcError) as info:
        load(path)
    return info.value


def test_a_latin1_file_is_located_at_the_first_bad_byte(tmp_path: Path):
    err = file_error(tmp_path, net("# café", "relu").encode("latin-1"))
    assert (err.span.line, err.span.col) == (3, 8), str(err)
    assert "spec.dl is not UTF-8 text: byte 0xe9" in err.message
    assert_well_formed(err)


def test_a_binary_file_is_not_text(tmp_path: Path):
    err = file_error(tmp_path, b"\x7fELF\x02\x01\x01\x00\xd0\xff" * 50)
    assert (err.span.line, err.span.col) == (1, 8), str(err)
    assert "NUL byte" in err.message
    err = file_error(tmp_path, b"\xff\xfe" + net("relu").encode("utf-16-le"))
    assert (err.span.line, err.span.col) == (1, 1) and "byte 0xff" in err.message


def test_a_byte_order_mark_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.dl"
    path.write_bytes(b"\xef\xbb\xbf" + net("dense(3)", shape="float32[N, 4]").encode())
    assert load(path).params == 15
    # columns on the first line do not count the mark
    expect("\ufeffnetwork A( {\n}\n", 1, 12, "unexpected")


def test_crlf_line_endings_keep_the_columns():
    err = expect(net("relu", "dense(0)").replace("\n", "\r\n"), 4, 9, "units")
    assert not str(err).splitlines()[1].endswith("\r")


def test_nul_and_control_characters_in_source():
    expect(net("relu\x00"), 3, 7, "unexpected character '\\x00'")
    expect(net("relu \x1b[0m"), 3, 8, "unexpected character '\\x1b'")


def test_a_directory_is_not_a_source_file(tmp_path: Path):
    with pytest.raises(DlcError, match="is a directory, not a .dl file"):
        load(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.dl").write_text('import "sub"\n' + net("relu"))
    with pytest.raises(DlcError) as info:
        load(tmp_path / "main.dl")
    assert "cannot import 'sub': it is a directory" in str(info.value)
    assert (info.value.span.line, info.value.span.col) == (1, 1)


def test_two_statements_on_one_line_after_a_call():
    for line in ("dense(2) relu", "h = dense(2) relu", "relu dense(3)"):
        err = compile_error(net(line))
        assert "statements are separated by a newline or ';'" in err.message, str(err)


def test_long_left_associative_chains_are_evaluated_not_refused():
    terms = " + ".join(["1"] * 2000)
    assert load_source(net(f"dense({terms})", shape="float32[N, 1]")).params == 4000
    ors = " or ".join(["false"] * 2000)
    load_source(net(f"if {ors} {{ relu }}"))


DEEP = [  # (what, statement): each far past the parser's depth limit
    ("unary minus", "let k = " + "-" * 1000 + "1"),
    ("parentheses", "let k = " + "(" * 1000 + "1" + ")" * 1000),
    ("lists", "let k = " + "[" * 1000 + "1" + "]" * 1000),
    ("calls", "let k = " + "max(" * 1000 + "1" + ", 2)" * 1000),
    ("not", "let k = " + "not " * 1000 + "true"),
    ("conditional expressions", "let k = " + "1 if false else " * 1000 + "2"),
    ("if blocks", "if true { " * 1000 + "relu" + " }" * 1000),
    ("else if chains", "if false { relu } " + "else if false { relu } " * 1000),
    ("powers", "let k = " + "1 ** " * 1000 + "1"),
]


@pytest.mark.parametrize("what, line", DEEP, ids=[w for w, _ in DEEP])
def test_deep_nesting_is_a_located_error(what: str, line: str):
    err = compile_error(net(line))
    assert "nested too deeply" in err.message, str(err)
    assert err.span.line == 3 and 9 < err.span.col < len(line), str(err)
    assert len(str(err).splitlines()[1]) < 200  # the long line is shown around the caret


def test_nesting_within_the_limit_compiles():
    load_source(net("let k = " + "[" * 150 + "1" + "]" * 150, "relu"))
    load_source(net("if true { " * 50 + "relu" + " }" * 50))


def test_nested_repeats_fail_at_once_at_the_innermost():
    t0 = time.perf_counter()
    err = expect(
        net("repeat 1000 { repeat 1000 { repeat 1000 { relu } } }"),
        3,
        38,
        "repeat 1,000 inside loops that run 1,000,000 times exceeds the unrolling limit",
    )
    assert len(err.errors) == 1 and time.perf_counter() - t0 < 1.0, str(err)


def test_the_unrolling_limit_counts_loops_in_blocks_with_the_chain():
    text = "block b() {\n  repeat 1000 { repeat 1000 { relu } }\n}\n" + net("repeat 10 { b }")
    t0 = time.perf_counter()
    err = expect(text, 2, 24, "inside loops that run 10,000 times")
    assert "in block b, called at spec.dl:6:15" in str(err)
    assert time.perf_counter() - t0 < 1.0


def test_the_unrolling_limit_bounds_the_total_work():
    t0 = time.perf_counter()
    err = expect(net(*["repeat 400000 { }"] * 3), 5, 10, "unrolls to more than 1,000,000")
    assert len(err.errors) == 1 and time.perf_counter() - t0 < 1.0, str(err)


def test_block_calls_nested_too_deep():
    blocks = "".join(f"block b{i}() {{ b{i + 1} }}\n" for i in range(100)) + "block b100() {}\n"
    err = compile_error(blocks + net("b0"))
    assert "calls nest more than 40 deep" in err.message and len(err.chain) == 40
    assert_well_formed(err)


def test_fn_calls_that_double_hit_the_unrolling_limit(monkeypatch):
    monkeypatch.setattr("dlc.compiler.elaborate.statements.MAX_UNROLL", 10_000)
    fns = "".join(f"fn f{i}(x) = f{i + 1}(x) + f{i + 1}(x)\n" for i in range(20))
    err = compile_error(fns + "fn f20(x) = x\n" + net("let k = f0(1)", "relu"))
    assert "unrolls to more than 10,000" in err.message and err.chain, str(err)


def test_values_nested_in_loops_too_deep_to_elaborate():
    err = expect(
        net("let t = 1", "repeat 5000 { let t = [t] }", "let u = t + 1"), 5, 3, "nested too deeply"
    )
    assert len(err.errors) == 1


@pytest.mark.parametrize(
    "lines, at, words",
    [
        (["let k = " + "9" * 5000], (3, 11), "5,000 digits is too large"),
        (["let k = 2", "repeat 40 { let k = k * k }"], (4, 23), "more than 4,300 digits"),
        (["let k = x.shape[0] + 1", "repeat 40 { let k = k * k }"], (4, 23), "symbolic dim"),
        (["let l = [1]", "repeat 40 { let l = l + l }"], (4, 23), "more than 1,000,000 items"),
        (["let k = sum(range(10 ** 18))"], (3, 11), "sum(): a range of more than 1,000,000"),
        (["for i in range(10 ** 30, 0, -1) { relu }"], (3, 12), "exceeds the unrolling limit"),
    ],
)
def test_compile_time_values_stay_bounded(lines, at, words):
    t0 = time.perf_counter()
    err = compile_error(net(*lines, "relu"))
    assert (err.span.line, err.span.col) == at and words in err.message, str(err)
    assert time.perf_counter() - t0 < 1.0


def test_huge_dims_are_counted_exactly():
    spec = net("dense(3)", shape="float32[N, 10 ** 18]")
    assert load_source(spec).params == 3 * 10**18 + 3
    assert load_source(net("relu", shape="float32[N, " + "9" * 40 + "]")).params == 0


def test_a_very_long_line_is_shown_around_the_caret():
    line = "relu; " * 5000 + "dense(0)"
    err = compile_error(net(line))
    shown = str(err).splitlines()
    assert err.span.col == len(line) + 1 and "units" in err.message  # at the 0
    assert len(shown[1]) < 200 and shown[1].endswith("dense(0)")
    assert shown[1][shown[2].index("^")] == "0"

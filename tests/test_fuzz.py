"""Fuzzing the front end: whatever the text, `load_source` either compiles it or raises a
`DlcError` whose message is located (`path:line:col: error: ...`, or `error: ...` when there
is no span). Any other exception is a compiler bug, and so is a hang.

(a) random text and random mixes of the language's tokens; (b) the bundled specs with a
token or character deleted, duplicated, swapped or replaced, a number changed or an
identifier renamed; (c) random but well-formed programs of real op calls, which reach the
shape rules and the counting.
"""

from __future__ import annotations

import os
import re
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlc.compiler import DlcError, load_source
from dlc.compiler.ir.initializers import INITIALIZERS
from dlc.compiler.ops import OPS
from dlc.compiler.ops.base import REQUIRED

PATH = "fuzz.dl"
SPEC_DIR = Path(__file__).parent.parent / "specs"
SPECS = {p.name: p.read_text() for p in sorted(SPEC_DIR.glob("*.dl"))}
TIME_LIMIT = 10.0  # seconds for one compile: far more than any of these inputs needs

# DLC_FUZZ_SCALE=20 pytest tests/test_fuzz.py explores 20 times as many inputs.
SCALE = float(os.environ.get("DLC_FUZZ_SCALE", "1"))
FUZZ = settings(
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

# Inputs that crashed the compiler with another exception: the first three were found by
# these tests and are fixed (kept as regressions); the last still raises MemoryError.
KNOWN_CRASHES = [
    "network A() {\n  input x: float32[N, 3]\n  y = 1 2\n}\n",  # TypeError in lark's matcher
    "network A() {\n  input x: float32[N, 3]\n  let k = -(1, 2)\n  relu\n}\n",  # unary minus
    "network A() {\n  input x: float32[N, 3]\n  let k = len(range(10 ** 30))\n}\n",  # Overflow
    "network A() {\n  input x: float32[N, 3]\n  let k = [1] * 2 ** 62\n}\n",  # MemoryError
]


def n(examples: int) -> int:
    return max(1, int(examples * SCALE))


class Hang(BaseException):
    """A compile that ran past TIME_LIMIT (a BaseException, so no `except Exception` eats it)."""


@contextmanager
def time_limit(seconds: float):
    if not hasattr(signal, "setitimer"):  # pragma: no cover - not on Windows
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"compiling took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_located(err: DlcError, text: str) -> None:
    """Every error of the run: `path:line:col: error: message` (a position inside the text)
    with the source line and a caret, or `error: message` without a span."""
    full = str(err)
    assert "Traceback" not in full
    lines = text.split("\n")  # lines as the lexer counts them (only "\n" ends a line)
    for e in err.errors:
        assert isinstance(e, DlcError) and isinstance(e.message, str) and e.message, repr(e)
        shown = e.format().splitlines()
        if e.span is None:
            assert shown[0] == f"error: {e.message}", full
            continue
        span = e.span
        assert shown[0] == f"{span.source.path}:{span.line}:{span.col}: error: {e.message}", full
        if span.source.path == PATH:
            assert 1 <= span.line <= len(lines), full
            assert 1 <= span.col <= len(lines[span.line - 1]) + 1, full
        assert len(shown) >= 3 and "^" in shown[2], full
        assert shown[0] in full


def check(text: str, *, deep: bool = False) -> None:
    """Compile `text`: success, or a located DlcError; with `deep`, also count and print."""
    with time_limit(TIME_LIMIT):
        try:
            net = load_source(text, path=PATH)
        except DlcError as err:
            assert_located(err, text)
            return
        if deep:
            net.params, net.buffers, net.macs  # noqa: B018 - counting must not crash either
            net.ir()
            net.summary(format="json")


# ---- (a) random text and token soup ------------------------------------------------------

KEYWORDS = [
    "import",
    "block",
    "network",
    "input",
    "output",
    "residual",
    "shortcut",
    "if",
    "else",
    "repeat",
    "for",
    "in",
    "let",
    "fn",
    "init",
    "true",
    "false",
    "none",
    "and",
    "or",
    "not",
]
NAMES = [
    *sorted(OPS),
    *INITIALIZERS,
    "range",
    "len",
    "min",
    "max",
    "abs",
    "x",
    "y",
    "c",
    "N",
    "T",
    "H",
    "W",
    "float32",
    "int64",
    "bool",
    "shape",
    "rank",
    "dtype",
    "weight",
    "bias",
]
PUNCT = [
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ";",
    "=",
    "|",
    ".",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "**",
    "@",
    "...",
    "<",
    ">",
    "<=",
    ">=",
    "==",
    "!=",
    "#",
    '"',
    "'",
]
NUMBERS = ["0", "1", "2", "3", "7", "64", "-1", "0.5", "1e-3", "1e309", ".5", "3."]
STRINGS = ['"same"', '"valid"', '"x.dl"', "'tanh'", '""']
TOKENS = KEYWORDS + NAMES + PUNCT + NUMBERS + STRINGS + ["\n", "\n", ";"]

token_soup = st.lists(
    st.tuples(st.sampled_from(TOKENS), st.sampled_from([" ", " ", "", "\n"])), max_size=60
).map(lambda pairs: "".join(t + s for t, s in pairs))


@settings(FUZZ, max_examples=n(500))
@given(st.text(max_size=200))
def test_random_text(text):
    check(text)


@settings(FUZZ, max_examples=n(500))
@given(
    st.text(
        alphabet="network A(){}input x:float32[N,3]\n relu;=|.0123456789\"'#-+*/<>", max_size=120
    )
)
def test_random_text_from_the_languages_characters(text):
    check(text)


@settings(FUZZ, max_examples=n(1000))
@given(token_soup)
def test_token_soup(text):
    check(text)


@settings(FUZZ, max_examples=n(1000))
@given(token_soup)
def test_token_soup_in_a_network(soup):
    check(f"network A(k = 2) {{\n  input x: float32[N, 3, 8, 8]\n{soup}\n}}\n")


@settings(FUZZ, max_examples=n(400))
@given(token_soup, token_soup)
def test_token_soup_in_a_block(params, soup):
    check(
        f"block b({params}) {{\n{soup}\n}}\n"
        f"network A() {{\n  input x: float32[N, 3, 8, 8]\n  b(4)\n}}\n"
    )


# ---- (b) mutated specs -------------------------------------------------------------------

TOKEN_RE = re.compile(
    r'"[^"\n]*"|(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?'
    r"|[A-Za-z_]\w*|//|\*\*|==|!=|<=|>=|\n|[^\s]"
)
NUMBER_RE = re.compile(r"\d|\.\d")
NEW_NUMBERS = st.one_of(
    st.integers(-3, 1024).map(str),
    st.sampled_from(["0.0", "0.5", "2.5", "1e-3", "1e309", "-0.5", "3."]),
)
NEW_NAMES = st.one_of(
    st.sampled_from(KEYWORDS + NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
)


@st.composite
def mutated_spec(draw):
    text = draw(st.sampled_from(sorted(SPECS.values())))
    for _ in range(draw(st.integers(1, 3))):
        tokens = [m.span() for m in TOKEN_RE.finditer(text)]
        i = draw(st.integers(0, len(tokens) - 1))
        start, end = tokens[i]
        tok = text[start:end]
        how = draw(
            st.sampled_from(
                [
                    "delete",
                    "duplicate",
                    "swap",
                    "number",
                    "rename",
                    "rename_all",
                    "insert",
                    "char_delete",
                    "char_insert",
                ]
            )
        )
        if how == "delete":
            text = text[:start] + text[end:]
        elif how == "duplicate":
            text = text[:end] + " " + tok + text[end:]
        elif how == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            (a, b), (c, d) = sorted([tokens[i], tokens[j]])
            if b <= c:
                text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
        elif how == "number":
            numbers = [s for s in tokens if NUMBER_RE.match(text[s[0] : s[1]])]
            if numbers:
                a, b = draw(st.sampled_from(numbers))
                text = text[:a] + draw(NEW_NUMBERS) + text[b:]
        elif how in ("rename", "rename_all"):
            names = sorted(
                {text[a:b] for a, b in tokens if re.fullmatch(r"[A-Za-z_]\w*", text[a:b])}
            )
            old, new = draw(st.sampled_from(names)), draw(NEW_NAMES)
            if how == "rename_all":
                text = re.sub(rf"\b{re.escape(old)}\b", new, text)
            else:
                spots = [(a, b) for a, b in tokens if text[a:b] == old]
                a, b = draw(st.sampled_from(spots))
                text = text[:a] + new + text[b:]
        elif how == "insert":
            text = text[:start] + draw(st.sampled_from(TOKENS)) + " " + text[start:]
        elif how == "char_delete":
            k = draw(st.integers(0, len(text) - 1))
            text = text[:k] + text[k + 1 :]
        else:
            k = draw(st.integers(0, len(text)))
            text = text[:k] + draw(st.sampled_from(list("()[]{},:;=|.+-*/<>\n\"'#0a_ "))) + text[k:]
    return text


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bundled_specs_compile(name):
    check(SPECS[name], deep=True)


@settings(FUZZ, max_examples=n(1500))
@given(mutated_spec())
def test_mutated_specs(text):
    check(text)


# ---- (c) well-formed programs of real op calls -------------------------------------------

POSITIVE = st.integers(1, 8) | st.sampled_from([16, 32, 64])
WRONG = st.sampled_from(
    [
        "0",
        "-1",
        "2.5",
        "true",
        '"x"',
        "(1, 2, 3)",
        "x.shape[1]",
        "input.shape[-1]",
        "x.rank",
        "k",
        "k * 2",
        "x.shape[0]",
        "[]",
    ]
)


def _value(kind: str):
    """Values for an argument of this kind: mostly plausible, sometimes wrong."""
    if kind.startswith("one of"):
        base = st.sampled_from(re.findall(r'"[^"]*"', kind))
    elif kind in ("an integer", "integers"):
        base = st.integers(-3, 3).map(str)
    elif kind == "true or false":
        base = st.sampled_from(["true", "false"])
    elif kind == "a number":
        base = st.sampled_from(["0.1", "1.0", "0.01", "2"])
    elif "number" in kind:
        base = st.sampled_from(["0.0", "0.1", "0.5", "1e-5", "1.0"])
    elif "initialiser" in kind:
        base = st.sampled_from(
            [
                "xavier_uniform",
                "zeros",
                "normal(0, 0.02)",
                "orthogonal",
                'kaiming_normal(mode="fan_out", nonlinearity="relu")',
            ]
        )
    else:  # a positive / non-negative integer, maybe a tuple of 2, maybe "same"
        low = st.integers(0, 3) if "non-negative" in kind else POSITIVE
        base = low.map(str)
        if "tuple of 2" in kind:
            base = base | st.tuples(low, low).map(lambda t: f"({t[0]}, {t[1]})")
        if "same" in kind:
            base = base | st.sampled_from(['"same"', '"valid"'])
    return st.one_of(base, base, base, base, WRONG)


@st.composite
def op_call(draw, names: list[str]):
    op = OPS[draw(st.sampled_from(sorted(OPS)))]
    args: list[str] = []
    lo, hi = op.n_inputs
    if lo >= 2 or (hi is not None and hi >= 2 and draw(st.booleans())):
        args += draw(st.lists(st.sampled_from([*names, "x", "input"]), min_size=1, max_size=3))
    sig = [a for a in op.signature if not a.variadic]
    if any(a.variadic for a in op.signature):
        args += [str(v) for v in draw(st.lists(st.integers(-1, 4), max_size=4))]
    else:
        required = sum(a.default is REQUIRED for a in sig)
        n = draw(st.integers(required, min(len(sig), required + 2)) | st.integers(0, len(sig)))
        args += [draw(_value(a.kind.describe)) for a in sig[:n]]
        for a in (
            draw(st.lists(st.sampled_from(sig[n:]), unique_by=lambda a: a.name, max_size=2))
            if sig[n:]
            else []
        ):
            args.append(f"{a.name}={draw(_value(a.kind.describe))}")
    if not args and draw(st.booleans()):
        return op.name
    return f"{op.name}({', '.join(args)})"


@st.composite
def statements(draw, names: list[str], depth: int = 0) -> list[str]:
    out = []
    for _ in range(draw(st.integers(1, 5 if depth == 0 else 2))):
        kind = draw(
            st.sampled_from(
                ["call", "call", "call", "bind", "pipe", "residual", "repeat", "if", "let"]
                + ["arith", "index", "param", "parts", "fn"]
                if depth < 2
                else ["call", "arith"]
            )
        )
        if kind == "call":
            out.append(draw(op_call(names)))
        elif kind in ("bind", "pipe"):
            name = draw(st.sampled_from(["a", "b", "c"]))
            source = f"{draw(st.sampled_from([*names, 'x']))} | " if kind == "pipe" else ""
            out.append(f"{name} = {source}{draw(op_call(names))}")
            names.append(name)
        elif kind == "residual":
            body = "; ".join(draw(statements(names, depth + 1)))
            short = draw(
                st.sampled_from(
                    [
                        "",
                        " shortcut { conv2d(8, 1) }",
                        " shortcut if input.shape[1] != 8 { dense(8) }",
                    ]
                )
            )
            out.append(f"residual {{ {body} }}{short}")
        elif kind == "repeat":
            out.append(
                f"repeat {draw(st.integers(0, 3))} {{ "
                + "; ".join(draw(statements(names, depth + 1)))
                + " }"
            )
        elif kind == "if":
            cond = draw(
                st.sampled_from(
                    ["true", "k > 1", "x.rank == 4", "input.shape[1] != 3", "x.shape[-1] > 2"]
                )
            )
            out.append(
                f"if {cond} {{ "
                + "; ".join(draw(statements(names, depth + 1)))
                + " } else { "
                + "; ".join(draw(statements(names, depth + 1)))
                + " }"
            )
        elif kind in V2:
            line, bound = draw(V2[kind](names))
            out.append(line)
            names.extend(bound)
        else:
            out.append(f"let k = {draw(st.sampled_from(['3', 'x.shape[1]', 'x.rank * 2']))}")
    return out


# Language v2 statements (LANGUAGE §10): each gives its line and the names it binds.
TENSORS = ["x", "input", "a", "b", "g", "p", "q"]
OPERANDS = [*TENSORS, "0.5", "3", "-1", "x.shape[1]", "(1, 2)", "true"]


@st.composite
def _arith(draw, names):
    terms = draw(st.lists(st.sampled_from(OPERANDS), min_size=1, max_size=4))
    ops = draw(st.lists(st.sampled_from(["+", "-", "*", "/", "@", "**", "//"]), min_size=3))
    expr = terms[0]
    for op, term in zip(ops, terms[1:]):
        expr = f"{expr} {op} {term}"
    if draw(st.booleans()):
        expr = f"-({expr})"
    return f"a = {expr}", ["a"]


@st.composite
def _index(draw, names):
    item = st.sampled_from(
        [":", "0", "-1", "1:", ":2", "::2", "...", "x.shape[1] - 1", ":x.shape[-1] // 2", "::0"]
    )
    items = draw(st.lists(item, min_size=1, max_size=4))
    return f"b = {draw(st.sampled_from(TENSORS))}[{', '.join(items)}]", ["b"]


@st.composite
def _param(draw, names):
    dims = draw(st.lists(st.sampled_from(["1", "8", "x.shape[1]", "0", "-1"]), max_size=3))
    init = draw(st.sampled_from(["", ", init=normal(0, 0.02)", ", init=trunc_normal(std=1)"]))
    return f"g = param({', '.join(dims)}{init})", ["g"]


@st.composite
def _parts(draw, names):
    call = draw(
        st.sampled_from(
            ["chunk(2, axis=1)", "chunk(3, axis=-1)", "split((1, 2), axis=1)", "split(2)"]
        )
    )
    if draw(st.booleans()):
        return f"p, q = {call}", ["p", "q"]
    return f"parts = {call}; b = parts[{draw(st.integers(-2, 2))}]", ["b"]


@st.composite
def _fn_call(draw, names):
    arg = draw(st.sampled_from(["13", "2.5", "x.shape[1]", "-3", "(1, 2)", "x"]))
    return f"conv2d(f({arg}), 1)", []


V2 = {"arith": _arith, "index": _index, "param": _param, "parts": _parts, "fn": _fn_call}
FNS = "fn f(v, d = 8) = max(d, int(v + d / 2) // d * d)\nfn g(v) = f(v) + sqrt(abs(v))\n"


@st.composite
def program(draw) -> str:
    dtype = draw(st.sampled_from(["float32", "float32", "float16", "int64", "bool"]))
    dims = draw(
        st.sampled_from(
            [
                ["N", "3", "32", "32"],
                ["N", "8", "H", "W"],
                ["N", "T", "16"],
                ["N", "4", "L"],
                ["N", "16"],
                ["N", "T"],
            ]
        )
        | st.lists(
            st.sampled_from(["N", "T", "H", "1", "2", "3", "8", "16", "32"]), min_size=1, max_size=5
        )
    )
    names: list[str] = []
    body = draw(statements(names))
    block = ""
    if draw(st.booleans()):
        inner = draw(statements([]))
        if draw(st.booleans()):  # a block with several results
            inner.append(draw(st.sampled_from(["output input, input | relu", "output a, b"])))
            body.append(f"p, q = blk({draw(_value('a positive integer'))})")
        else:
            body.append(f"blk({draw(_value('a positive integer'))})")
        block = "block blk(c, s = 1) {\n" + "".join(f"  {s}\n" for s in inner) + "}\n"
    if names and draw(st.booleans()):
        body.append(f"output {', '.join(sorted(set(names)))}")
    lines = "".join(f"  {s}\n" for s in body)
    return f"{FNS}{block}network A(k = 2) {{\n  input x: {dtype}[{', '.join(dims)}]\n{lines}}}\n"


@settings(FUZZ, max_examples=n(1000))
@given(program())
def test_generated_programs(text):
    check(text, deep=True)


# ---- (d) deep nesting and large repeats: located errors, in bounded time -----------------

OPENERS = {  # a prefix that nests an expression, and what closes it
    "(": ")",
    "[": "]",
    "-": "",
    "not ": "",
    "max(": ", 1)",
    "(1, ": ")",
    "1 if true else ": "",
    "2 ** ": "",
    "x.shape[": "]",
}
BLOCK_OPENERS = [
    "if true {",
    "repeat 1 {",
    "residual {",
    "if false { relu } else {",
    "for i in [1] {",
]


@st.composite
def deep_program(draw) -> str:
    """A spec nested up to twice past the parser's limit: a pattern of nesting prefixes
    repeated, a long left-associative chain, or nested blocks."""
    times = draw(st.integers(1, 400))
    kind = draw(st.sampled_from(["expr", "chain", "blocks"]))
    if kind == "expr":
        pattern = draw(st.lists(st.sampled_from(sorted(OPENERS)), min_size=1, max_size=3))
        atom = draw(st.sampled_from(["1", "true", "x.rank", "[1]"]))
        opens = "".join(pattern) * times
        closes = "".join(OPENERS[o] for o in reversed(pattern)) * times
        lines = [f"let k = {opens}{atom}{closes}", "relu"]
    elif kind == "chain":
        ops = draw(st.lists(st.sampled_from(["+", "-", "*", "//", "and", "or", "|"]), min_size=1))
        terms = [draw(st.sampled_from(["1", "2", "true", "relu", "k"])) for _ in range(5)]
        chain = " ".join(f"{terms[i % 5]} {ops[i % len(ops)]}" for i in range(times * 8))
        lines = ["let k = 1", f"let j = {chain} 1", "relu"]
    else:
        pattern = draw(st.lists(st.sampled_from(BLOCK_OPENERS), min_size=1, max_size=2))
        lines = [" ".join(pattern) * times + " relu " + "}" * (len(pattern) * times)]
    body = "".join(f"  {line}\n" for line in lines)
    return f"network A() {{\n  input x: float32[N, 3, 8, 8]\n{body}}}\n"


@st.composite
def large_repeats(draw) -> str:
    """Nested and consecutive repeats, some far past the unrolling limit, some in a block
    called in a loop; those within it unroll at most 8,000 layers, to stay quick."""
    counts = st.sampled_from([0, 2, 20, 10**7, 10**12])
    stmts = []
    for _ in range(draw(st.integers(1, 3))):
        inner = draw(st.sampled_from(["", "relu", "blk", "let k = k + 1"]))
        nest = [draw(counts) for _ in range(draw(st.integers(1, 3)))]
        if inner == "" and draw(st.booleans()):
            nest[-1] = 600_000  # empty iterations count against the limit too
        text = inner
        for count in reversed(nest):
            text = f"repeat {count} {{ {text} }}"
        stmts.append(text)
    block = f"block blk() {{ repeat {draw(counts)} {{ relu }} }}\n"
    body = "".join(f"  {s}\n" for s in stmts)
    return f"{block}network A(k = 1) {{\n  input x: float32[N, 4]\n{body}}}\n"


@settings(FUZZ, max_examples=n(200))
@given(deep_program())
def test_deep_nesting(text):
    check(text)


@settings(FUZZ, max_examples=n(150))
@given(large_repeats())
def test_large_repeats(text):
    check(text)


# ---- the crashes found so far, as plain tests --------------------------------------------


@pytest.mark.parametrize("text", KNOWN_CRASHES)
def test_known_crash(text):
    check(text)

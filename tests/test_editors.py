"""Editor support: the VS Code extension's files (editors/vscode/) and the Pygments lexer
(compiler/frontend/highlight.py), checked without VS Code, npm or the network."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pygments.token import Error, Keyword, Name

from dlc.compiler.frontend import dl_tables
from dlc.compiler.frontend.highlight import DlLexer, highlight_error, print_error
from dlc.compiler.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
SPECS = sorted((ROOT / "specs").glob("*.dl"))
KEYWORDS = sorted(dl_tables.KEYWORDS)


def _gen_grammar():
    spec = importlib.util.spec_from_file_location("gen_grammar", VSCODE / "gen_grammar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen_grammar()
GRAMMAR = GEN.grammar()


def _rules(patterns: list[dict]) -> list[dict]:
    """``patterns`` with their ``include``s resolved (one level: regions resolve their own)."""
    out = []
    for p in patterns:
        if p.get("include") == "$self":
            out += _rules(GRAMMAR["patterns"])
        elif "include" in p:
            out += _rules([GRAMMAR["repository"][p["include"][1:]]])
        else:
            out.append(p)
    return out


def tokenize(line: str) -> list[tuple[str, str]]:
    """(text, scope) of each named match and capture in ``line``: a small TextMate engine
    (the earliest match wins, ties by order, a region's end first; begin/end regions nest)."""
    stack: list[tuple[list[dict], dict | None]] = [(_rules(GRAMMAR["patterns"]), None)]
    pos, tokens = 0, []
    while pos < len(line):
        rules, region = stack[-1]
        candidates = [(region, region["end"])] if region else []
        candidates += [(r, r.get("match") or r["begin"]) for r in rules]
        best = None
        for rule, regex in candidates:
            m = re.compile(regex).search(line, pos)
            if m and (best is None or m.start() < best[1].start()):
                best = (rule, m)
        if best is None:
            break
        rule, m = best
        if rule is region and m.re.pattern == region["end"]:
            captures = region.get("endCaptures", {})
            stack.pop()
        elif "begin" in rule:
            captures = rule.get("beginCaptures", {})
            stack.append((_rules(rule["patterns"]), rule))
        else:
            captures = rule.get("captures", {})
            if "name" in rule:
                tokens.append((m[0], rule["name"]))
        tokens += [(m[int(k)], c["name"]) for k, c in captures.items() if m[int(k)]]
        pos = max(m.end(), pos + (m.end() == m.start()))
    return tokens


# ---- the VS Code extension ----


def test_grammar_is_up_to_date():
    assert GEN.OUT.read_text(encoding="utf-8") == GEN.render(), (
        "the ops, keywords or functions changed: run `python editors/vscode/gen_grammar.py`"
    )


def test_grammar_patterns_are_portable():
    """Every regex compiles with Python's re and avoids Oniguruma-only or re-only syntax."""
    rules = [*GRAMMAR["repository"].values()]
    regexes = [r[k] for r in rules for k in ("match", "begin", "end") if k in r]
    assert len(regexes) >= len(rules)
    for regex in regexes:
        re.compile(regex)
        assert not re.search(r"\(\?>|\(\?P|[*+?}]\+|\\[hHGKRX]", regex), regex


def test_grammar_tokenises_every_keyword():
    scopes = {"true": "constant.language.dl", "false": "constant.language.dl"}
    scopes |= {"none": "constant.language.dl"}
    scopes |= {k: "keyword.operator.logical.dl" for k in ("and", "or", "not")}
    for word in KEYWORDS:
        scope = scopes.get(word, "keyword.control.dl")
        assert (word, scope) in tokenize(f"{word} x"), word
        assert (word, scope) in tokenize(f"  y = 1 {word} z {{"), word


def test_grammar_tokenises_every_op():
    for op in OPS:
        assert (op, "support.function.dl") in tokenize(f"x = {op}(3)"), op
        assert (op, "support.function.dl") in tokenize(f"  y | {op} | z"), op
        assert (op, "support.function.dl") in tokenize(f"f(a = {op}(1), b = {op})"), op


def test_grammar_tokenises_constructs():
    tokens = tokenize('network ResNet(width = 64) { conv2d(3, padding = 1) # x = "y"')
    assert ("network", "keyword.control.dl") in tokens
    assert ("ResNet", "entity.name.type.dl") in tokens
    assert ("width", "variable.parameter.dl") in tokens
    assert ("padding", "variable.parameter.dl") in tokens
    assert ("64", "constant.numeric.dl") in tokens
    assert ('# x = "y"', "comment.line.number-sign.dl") in tokens
    tokens = tokenize('fn double(x) = 2 * x; data = npz("a.npz", lr = 1.5e-3) | x2')
    assert ("double", "entity.name.function.dl") in tokens
    assert ('"a.npz"', "string.quoted.dl") in tokens
    assert ("1.5e-3", "constant.numeric.dl") in tokens
    assert ("npz", "support.function.builtin.dl") in tokens
    assert [t for t in tokens if "2" in t[0]] == [("2", "constant.numeric.dl")]  # not x2's
    assert ("x", "variable.parameter.dl") not in tokenize("if x == 1 { y }")


def test_package_json():
    pkg = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    assert pkg["name"] == "dlc-dl" and pkg["displayName"]
    assert pkg["main"] == "./extension.js" and (VSCODE / pkg["main"]).is_file()
    assert pkg["activationEvents"] == ["onLanguage:dl"]
    assert pkg["dependencies"]["vscode-languageclient"].startswith("^9")
    (language,) = pkg["contributes"]["languages"]
    assert language["id"] == "dl" and language["extensions"] == [".dl"] and language["aliases"]
    assert (VSCODE / language["configuration"]).is_file()
    (grammar,) = pkg["contributes"]["grammars"]
    assert grammar["language"] == "dl" and grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (VSCODE / grammar["path"]).resolve() == GEN.OUT
    setting = pkg["contributes"]["configuration"]["properties"]["dl.server.command"]
    assert setting["default"] == ["dlc", "lsp"]


def test_language_configuration():
    conf = json.loads((VSCODE / "language-configuration.json").read_text(encoding="utf-8"))
    assert conf["comments"] == {"lineComment": "#"}
    assert sorted(map(tuple, conf["brackets"])) == [("(", ")"), ("[", "]"), ("{", "}")]
    assert {p["open"] for p in conf["autoClosingPairs"]} >= {"(", "[", "{", '"'}
    rules = {k: re.compile(v) for k, v in conf["indentationRules"].items()}
    assert rules["increaseIndentPattern"].search("network N(a = 1) {  # net")
    assert rules["increaseIndentPattern"].search("  x = concat(a,")
    assert not rules["increaseIndentPattern"].search("  conv2d(3) | relu")
    assert rules["decreaseIndentPattern"].search("  }")


def test_extension_js():
    text = (VSCODE / "extension.js").read_text(encoding="utf-8")
    assert 'require("vscode-languageclient/node")' in text
    assert '"server.command"' in text and "activate" in text
    assert 'pip install "dlc[lsp]"' in text and 'pip install -e ".[lsp]"' in text
    assert "node_modules/" in (VSCODE / ".gitignore").read_text(encoding="utf-8")
    if shutil.which("node"):
        subprocess.run(["node", "--check", str(VSCODE / "extension.js")], check=True)


# ---- the Pygments lexer ----


def _tokens(text: str) -> list[tuple]:
    return [(t, v) for t, v in DlLexer().get_tokens(text) if v.strip()]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_lexer_reads_every_spec(spec):
    text = spec.read_text(encoding="utf-8")
    tokens = list(DlLexer().get_tokens(text))
    assert [v for t, v in tokens if t in Error] == []
    assert "".join(v for _, v in tokens).rstrip("\n") == text.rstrip("\n")


def test_lexer_types_ops_and_keywords():
    for op in OPS:
        assert (Name.Builtin, op) in _tokens(f"x = {op}(3) | {op}"), op
    for word in KEYWORDS:
        (token,) = [t for t, v in _tokens(f"{word} Net") if v == word]
        assert token in Keyword, word
    assert (Name.Class, "Net") in _tokens("network Net(a = 1) {")
    assert (Name.Class, "Adam") in _tokens("train Adam {")
    assert (Name, "images") in _tokens("input images: float32[N, 3]")
    assert (Name.Function, "cosine") in _tokens("schedule = cosine(warmup = 1)")


def test_lexer_entry_point():
    names = [ep.name for ep in importlib.metadata.entry_points(group="pygments.lexers")]
    if "dl" not in names:
        pytest.skip("the pygments.lexers entry point `dl` needs a reinstall: pip install -e .")
    from pygments.lexers import find_lexer_class_by_name, get_lexer_for_filename

    assert find_lexer_class_by_name("dl") is DlLexer
    assert isinstance(get_lexer_for_filename("x.dl"), DlLexer)


def test_highlighted_error_keeps_the_text():
    message = (
        "net.dl:3:12: error: dense has no argument 'foo'\n"
        "    3 |   dense(4, foo = 2)  # a comment\n"
        "      |            ^~~\n"
        "  in block B, called at 9:3"
    )
    text = highlight_error(message)
    assert text.plain == message
    styles = {message[s.start : s.end]: str(s.style) for s in text.spans}
    assert "red" in styles["error"] and "red" in styles["           ^~~"]
    assert styles["dense"] and styles["4"] and styles["# a comment"]
    out = io.StringIO()  # not a terminal: plain text
    print_error(message, out)
    assert out.getvalue() == message + "\n"

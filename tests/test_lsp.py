"""`dlc lsp`: the real server, spoken to over stdio by a small JSON-RPC client.

Diagnostics are compared with `dlc check`'s positions for the same file, hover shapes with
`dlc summary --format json`'s, both read through the CLI (an independent path).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dlc.compiler.cli import main

TIMEOUT = 20.0

BLOCKS = """\
block unit(c, p = 0.1) {
  dense(c); relu; dropout(p)
}

block broken(c) {
  conv2d(c, 3, dilate=2)
}
"""

# Mistakes in Bad, Broken (through the imported block) and Fit; a warning in Good.
NET = """\
import "blocks.dl"

block basic(c, stride = 1) {
  residual {
    conv2d(c, 3, stride=stride, padding=1); batchnorm; relu
    conv2d(c, 3, padding=1); batchnorm
  } shortcut if stride != 1 or input.shape[1] != c {
    conv2d(c, 1, stride=stride); batchnorm
  }
  relu
}

network Good(classes = 10) {
  input x: float32[N, 3, 32, 32]
  stem = conv2d(16, 3, padding=1)
  side = stem | conv2d(4, 1)  # reaches no output: a warning
  stem
  for c, s in [(16, 1), (32, 2)] { basic(c, s) }
  global_avgpool
  h = unit(64)
  dense(classes)
}

network Bad {
  input x: float32[N, 3, 32, 32]
  let s = "😀 wide"; conv2d(8, 3, strid=2)
  dense2(10)
}

network Broken {
  input x: float32[N, 3, 8, 8]
  broken(4)
}

train Fit(lr = 0.1) {
  model = Good()
  data = npz("data.npz")
  loss = cross_entropy
  optimizer = sgd(lr)
  batchsize = 3
}
"""

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Client:
    """A language client: Content-Length framed JSON-RPC over the server's stdin/stdout;
    responses by id, notifications collected."""

    def __init__(self, cwd: Path):
        self.stderr = open(cwd / "lsp-stderr.txt", "w+b")  # closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dlc", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=cwd,
        )
        self.next_id = 0
        self.token_types: list[str] = []  # the semantic tokens legend
        self.responses: dict[int, dict] = {}
        self.notifications: list[dict] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            msg = json.loads(out.read(length))
            with self.cond:
                if "id" in msg and "method" not in msg:
                    self.responses[msg["id"]] = msg
                else:
                    self.notifications.append(msg)
                    if "id" in msg:  # a request from the server: answer it plainly
                        self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                self.cond.notify_all()

    def _send(self, msg: dict) -> None:
        body = json.dumps(msg).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict | None = None):
        self.next_id += 1
        rid = self.next_id
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        with self.cond:
            ok = self.cond.wait_for(lambda: rid in self.responses, TIMEOUT)
        assert ok, f"no answer to {method} (server stderr: {self.server_log()})"
        msg = self.responses.pop(rid)
        assert "error" not in msg, msg["error"]
        return msg["result"]

    def diagnostics(self, uri: str, version: int) -> list[dict]:
        """The diagnostics published for ``uri`` at ``version``."""

        def found():
            for m in reversed(self.notifications):
                p = m.get("params") or {}
                if m.get("method") == "textDocument/publishDiagnostics" and p.get("uri") == uri:
                    if p.get("version") == version:
                        return p["diagnostics"]
            return None

        with self.cond:
            ok = self.cond.wait_for(lambda: found() is not None, TIMEOUT)
        assert ok, f"no diagnostics for {uri} v{version} (stderr: {self.server_log()})"
        return found()

    def server_log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def start(cwd: Path) -> Client:
    client = Client(cwd)
    caps = client.request(
        "initialize", {"processId": None, "rootUri": cwd.as_uri(), "capabilities": {}}
    )["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"]
    client.token_types = caps["semanticTokensProvider"]["legend"]["tokenTypes"]
    client.notify("initialized", {})
    return client


def open_doc(client: Client, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "dl", "version": version, "text": text}},
    )
    return uri


def change(client: Client, uri: str, text: str, version: int) -> None:
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
    )


def utf16(line: str, col: int) -> int:
    """The UTF-16 offset of code-point column ``col`` (0-based) of ``line``."""
    return len(line[:col].encode("utf-16-le")) // 2


def at(text: str, needle: str, offset: int = 0, nth: int = 0) -> dict:
    """The LSP position of ``needle`` (its ``nth`` occurrence) plus ``offset`` characters."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    pos += offset
    line = text.count("\n", 0, pos)
    start = text.rfind("\n", 0, pos) + 1
    return {"line": line, "character": utf16(text[start:], pos - start)}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("lsp")
    (root / "blocks.dl").write_text(BLOCKS, encoding="utf-8")
    path = root / "net.dl"
    path.write_text(NET, encoding="utf-8")
    client = start(root)
    uri = open_doc(client, path, NET)
    yield client, root, path, uri
    client.close()


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, ANSI.sub("", err)


def test_diagnostics_are_at_the_cli_positions(session, capsys):
    client, root, path, uri = session
    diags = client.diagnostics(uri, 1)
    code, _, err = cli(capsys, "check", str(path))
    assert code == 1
    lines = NET.split("\n")
    expected, elsewhere = set(), []
    for m in map(LOCATED.match, err.splitlines()):
        if m is None:
            continue
        line, col = int(m["line"]) - 1, int(m["col"]) - 1
        if Path(m["file"]).resolve() == path.resolve():
            expected.add((line, utf16(lines[line], col), m["sev"]))
        else:
            elsewhere.append(m)
    severity = {1: "error", 2: "warning"}
    here = [d for d in diags if not d["message"].startswith("in imported file")]
    got = {(d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in here}
    placed = {
        (d["range"]["start"]["line"], d["range"]["start"]["character"], severity[d["severity"]])
        for d in here
    }
    assert placed == expected
    assert len(got) >= 4  # Bad's two, Fit's key, Good's unused layer
    # The error after the emoji: its UTF-16 column is one more than its code-point column.
    strid = next(d for d in here if "strid" in d["message"])
    assert strid["range"] == {
        "start": at(NET, "strid="),
        "end": at(NET, "strid=", len("strid")),
    }
    assert strid["range"]["start"]["character"] == lines[25].index("strid") + 1
    # The error inside blocks.dl: one diagnostic at the import line, naming the file.
    assert [m["file"] for m in elsewhere] and all(
        m["file"].endswith("blocks.dl") for m in elsewhere
    )
    imported = [d for d in diags if d["message"].startswith("in imported file")]
    assert len(imported) == len(elsewhere)
    assert all(d["range"]["start"]["line"] == 0 for d in imported)
    assert "blocks.dl" in imported[0]["message"] and "dilate" in imported[0]["message"]


def test_syntax_error_mid_typing_keeps_completion(session, capsys):
    client, root, _, _ = session
    text = NET.replace("  global_avgpool\n", "  global_avgpool\n  y = conv2d(\n")
    path = root / "typing.dl"
    path.write_text(text, encoding="utf-8")
    uri = open_doc(client, path, text)
    diags = client.diagnostics(uri, 1)
    code, _, err = cli(capsys, "check", str(path))
    first = LOCATED.match(err.splitlines()[0])
    assert code == 1 and first is not None
    line, col = int(first["line"]) - 1, int(first["col"]) - 1
    assert [(d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in diags] == [
        (line, utf16(text.split("\n")[line], col))
    ]
    items = client.request(
        "textDocument/completion",
        {"textDocument": {"uri": uri}, "position": at(text, "conv2d(\n", len("conv2d("))},
    )["items"]
    labels = {i["label"] for i in items}
    assert {"filters", "kernel", "stride", "padding", "dilation", "groups"} <= labels
    assert {"conv2d", "dense", "stem", "classes", "basic", "unit"} <= labels
    stride = next(i for i in items if i["label"] == "stride")
    assert stride["insertText"] == "stride=" and stride["sortText"] < "1"


def _hover(client: Client, uri: str, position: dict) -> str:
    result = client.request(
        "textDocument/hover", {"textDocument": {"uri": uri}, "position": position}
    )
    assert result is not None, position
    return result["contents"]["value"]


def test_hover_shapes_are_the_summary_shapes(session, capsys):
    client, _, path, uri = session
    code, out, err = cli(capsys, "summary", str(path), "--network", "Good", "--format", "json")
    assert code == 0, err
    layers = {layer["name"]: layer for layer in json.loads(out)["layers"]}

    def shape(name: str) -> str:
        return "[" + ", ".join(str(d) for d in layers[name]["shape"]) + "]"

    stem = _hover(client, uri, at(NET, "conv2d(16"))
    assert f"`{shape('stem')}`" in stem and "conv2d(filters, kernel" in stem
    assert f"params {layers['stem']['params']:,}" in stem
    assert f"MACs {layers['stem']['macs']:,}" in stem
    assert f"`{shape('dense_0')}`" in _hover(client, uri, at(NET, "dense(classes)", 2))
    assert f"`{shape('global_avgpool_0')}`" in _hover(client, uri, at(NET, "global_avgpool"))
    # A bound name: the layer it names.
    assert f"`{shape('stem')}`" in _hover(client, uri, at(NET, "  stem\n", 3))
    # A block call: its last layer's shape, as the summary's row for the call.
    unit = _hover(client, uri, at(NET, "unit(64)", 1))
    assert f"`{shape('h.dropout_0')}`" in unit and "block unit(c, p=0.1)" in unit
    # A call in a loop made two layers: the first shown, and how many.
    basic = _hover(client, uri, at(NET, "basic(c, s)", 1))
    assert "×2" in basic and f"`{shape('basic_0.relu_1')}`" in basic
    # An op inside a block's body: the layers every call of it made.
    inner = _hover(client, uri, at(NET, "conv2d(c, 3, padding=1)", 1))
    first = [n for n in layers if n.startswith("basic_") and n.endswith("conv2d_1")][0]
    assert f"`{shape(first)}`" in inner and "×2" in inner
    # An op outside any compiled network: its signature and doc from the registry.
    blocks_uri = (path.parent / "blocks.dl").as_uri()
    open_doc(client, path.parent / "blocks.dl", BLOCKS)
    op = _hover(client, blocks_uri, at(BLOCKS, "conv2d(c, 3"))
    assert "conv2d(filters, kernel, stride=1" in op


def test_completion_offers_ops_names_and_recipe_words(session):
    client, _, _, uri = session

    def labels(position: dict) -> dict[str, dict]:
        result = client.request(
            "textDocument/completion", {"textDocument": {"uri": uri}, "position": position}
        )
        return {i["label"]: i for i in result["items"]}

    body = labels(at(NET, "  global_avgpool", 2))
    assert {"conv2d", "dense", "basic", "unit", "stem", "classes", "residual", "let"} <= set(body)
    assert body["conv2d"]["detail"].startswith("conv2d(filters, kernel")
    assert "Convolution" in body["conv2d"]["documentation"]["value"]
    assert "filters" not in body  # keyword arguments only inside a call
    assert {"strid", "stride"} & set(labels(at(NET, "strid=2", 0))) == {"stride"}
    top = labels(at(NET, "network Bad"))
    assert {"network", "block", "train", "import"} <= set(top) and "conv2d" not in top
    recipe = labels(at(NET, "  batchsize", 2))
    assert {"epochs", "batch", "optimizer", "early_stop"} <= set(recipe)
    optimizers = labels(at(NET, "sgd(lr)"))
    assert {"sgd", "adam", "adamw"} <= set(optimizers) and "cross_entropy" not in optimizers
    assert {"momentum", "nesterov"} <= set(labels(at(NET, "lr)", 0)))
    assert {"shape", "rank", "dtype"} == set(labels(at(NET, "shape[1]", 0)))
    assert labels(at(NET, "😀")) == {}  # inside a string


def test_definition_jumps_to_blocks_imports_and_bindings(session):
    client, root, path, uri = session

    def goto(position: dict) -> list[dict]:
        result = client.request(
            "textDocument/definition", {"textDocument": {"uri": uri}, "position": position}
        )
        return result if isinstance(result, list) else [result]

    (basic,) = goto(at(NET, "basic(c, s)", 2))
    assert basic["uri"] == uri and basic["range"]["start"] == at(NET, "basic(c, stride")
    (unit,) = goto(at(NET, "unit(64)", 1))
    assert unit["uri"] == (root / "blocks.dl").as_uri()
    assert unit["range"]["start"] == at(BLOCKS, "unit")
    (imported,) = goto(at(NET, '"blocks.dl"', 3))
    assert imported["uri"] == (root / "blocks.dl").as_uri()
    (stem,) = goto(at(NET, "  stem\n", 2))
    assert stem["range"]["start"] == at(NET, "stem = conv2d")
    (param,) = goto(at(NET, "dense(classes)", len("dense(")))
    assert param["range"]["start"] == at(NET, "classes = 10")
    (network,) = goto(at(NET, "model = Good", len("model = ")))
    assert network["range"]["start"] == at(NET, "Good(classes")


def test_document_symbols_and_semantic_tokens(session):
    client, _, _, uri = session
    syms = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    by_name = {s["name"]: s for s in syms}
    assert {"basic", "Good", "Bad", "Broken", "Fit"} <= set(by_name)
    assert by_name["Good"]["detail"] == "network" and by_name["basic"]["detail"] == "block"
    assert by_name["Good"]["range"]["start"] == at(NET, "network Good")
    assert {"x", "stem", "side", "h"} <= {c["name"] for c in by_name["Good"]["children"]}
    data = client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})[
        "data"
    ]
    assert data and len(data) % 5 == 0
    # Decode: the absolute positions must land on the tokens' text.
    lines = NET.split("\n")
    line = char = 0
    found = {}
    for i in range(0, len(data), 5):
        dl, dc, length, kind, _ = data[i : i + 5]
        line, char = line + dl, (char + dc if dl == 0 else dc)
        units = lines[line].encode("utf-16-le")
        word = units[2 * char : 2 * (char + length)].decode("utf-16-le")
        found.setdefault(word, set()).add(kind)
    names = {w: {client.token_types[k] for k in ks} for w, ks in found.items()}
    assert names["network"] == {"keyword"} and names["conv2d"] == {"function"}
    assert "class" in names["basic"] and names["16"] == {"number"}
    assert names['"😀 wide"'] == {"string"} and names["float32"] == {"type"}
    assert names["stride"] == {"parameter"} and names["strid"] == {"parameter"}
    assert names["batchsize"] == {"variable"} and names["optimizer"] == {"property"}
    assert names["# reaches no output: a warning"] == {"comment"}


def test_fuzzed_edits_never_kill_the_server(tmp_path):
    (tmp_path / "blocks.dl").write_text(BLOCKS, encoding="utf-8")
    path = tmp_path / "fuzz.dl"
    path.write_text(NET, encoding="utf-8")
    client = start(tmp_path)
    try:
        uri = open_doc(client, path, NET)
        rng = random.Random(13)
        alphabet = "abcxyz_019 \n\t(){}[]|=,.:;#\"'+-*/<>é😀"
        text = NET
        for version in range(2, 202):
            pos = rng.randrange(len(text) + 1)
            if rng.random() < 0.5 and text:
                text = text[:pos] + text[pos + rng.randrange(1, 4) :]
            else:
                text = (
                    text[:pos] + "".join(rng.choices(alphabet, k=rng.randrange(1, 4))) + text[pos:]
                )
            change(client, uri, text, version)
        client.diagnostics(uri, 201)
        middle = {"line": text.count("\n") // 2, "character": 3}
        client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": middle})
        items = client.request(
            "textDocument/completion", {"textDocument": {"uri": uri}, "position": middle}
        )
        assert isinstance(items["items"], list)
        client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
        client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})
        change(client, uri, NET, 202)  # back to the original: the same diagnostics again
        assert len(client.diagnostics(uri, 202)) >= 5
        logged = [
            m["params"]["message"]
            for m in client.notifications
            if m.get("method") == "window/logMessage"
        ]
        assert not [m for m in logged if "internal error" in m], logged[:3]
        assert "Traceback" not in client.server_log()
        assert client.request("shutdown") is None
        client.notify("exit")
        assert client.proc.wait(timeout=TIMEOUT) == 0
    finally:
        client.close()


def test_errors_of_an_imported_files_networks_show_at_the_import(tmp_path):
    from dlc.lsp.analysis import analyze

    (tmp_path / "b.dl").write_text("network Bad { input x: float32[N, 4]\n conv2d(3, 3) }\n")
    text = 'import "b.dl"\nnetwork A { input x: float32[N, 4]\n dense(2) }\n'
    (tmp_path / "a.dl").write_text(text)
    diags = analyze((tmp_path / "a.dl").as_uri(), text).diagnostics
    assert [(d.range.start.line, d.message.split(":")[0]) for d in diags] == [
        (0, "in imported file b.dl")
    ]
    assert "conv2d expects a rank-4 input" in diags[0].message

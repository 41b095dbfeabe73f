"""One document compiled: its diagnostics, its syntax tree and program, and the compiled
networks indexed by the source spans their layers came from (for hover).

The compile is what ``dlc check`` does for the file (parse and follow imports, elaborate
every network of the file, every ``train`` recipe and ``search`` section), so the
diagnostics are the CLI's errors and warnings, at the same places.
"""

from __future__ import annotations

import os
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lsprotocol import types
from pygls import uris

from ..compiler.analysis.counting import LayerCount
from ..compiler.elaborate.elaborator import Elaborator
from ..compiler.errors import DlcError, DlcWarning, Span
from ..compiler.frontend import ast
from ..compiler.frontend.parser import parse
from ..compiler.frontend.program import Program, load_program, read_source
from ..compiler.ir.graph import Graph, Node, Scope
from ..compiler.network import Network, _compile
from ..compiler.recipe.elaborate import load_recipe
from ..compiler.recipe.search import elaborate_search
from .positions import LineIndex, whole_line
from .syntax import extents
from .tokens import Token, lex, sections

SpanKey = tuple[int, int, int, int]


def key(span: Span) -> SpanKey:
    return (span.line, span.col, span.end_line, span.end_col)


@dataclass
class Compiled:
    """A network of the file: complete, or (``partial``) the layers made before its errors
    stopped it, so that hover still shows their shapes."""

    network: Network
    partial: bool = False


@dataclass
class Analysis:
    """Everything the server knows about one version of a document."""

    uri: str
    path: str  # the file system path, as the compiler names the root file
    text: str
    index: LineIndex
    tokens: list[Token]
    module: ast.Module | None = None  # None: the text does not parse
    program: Program | None = None  # None: it or an import has errors
    # Without a program: what the files the text imports define (for completion).
    imported: Program | None = None
    networks: list[Compiled] = field(default_factory=list)
    diagnostics: list[types.Diagnostic] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unexpected exceptions, to log
    layers: dict[SpanKey, list[tuple[Network, Node]]] = field(default_factory=dict)
    scopes: dict[SpanKey, list[tuple[Network, Scope]]] = field(default_factory=dict)
    counts: dict[int, dict[int, LayerCount] | None] = field(default_factory=dict)
    extents: dict[int, Span] = field(default_factory=dict)  # definitions' extents, by id

    def layer_count(self, net: Network, node: Node) -> LayerCount | None:
        """A layer's params and MACs (counted on first use; None if they cannot be)."""
        table = self.counts.get(id(net), {})
        if id(net) not in self.counts:
            try:
                table = {id(lc.node): lc for lc in net.counts.layers}
            except Exception:  # a partial network's graph may not count
                table = None
            self.counts[id(net)] = table
        return table.get(id(node)) if table else None

    def here(self, span: Span | None) -> bool:
        """Whether ``span`` lies in this document (not in an imported file)."""
        return span is not None and _same_file(span.source.path, self.path)


def _same_file(a: str, b: str) -> bool:
    return a == b or _real(a) == _real(b)


@lru_cache(maxsize=1024)
def _real(path: str) -> str:
    # cached: asked for every layer of every network, and a syscall each time otherwise
    return os.path.realpath(path)


def document_path(uri: str) -> str:
    """The file system path of a document (a made-up one for a URI that is not a file, so
    that imports resolve relative to the working folder)."""
    path = uris.to_fs_path(uri) if uri.startswith("file:") else None
    return str(Path(path)) if path else str(Path.cwd() / "untitled.dl")


def analyze(uri: str, text: str, encoding: str = "utf-16") -> Analysis:
    """Compile the document ``text`` and collect its diagnostics; never raises."""
    path = document_path(uri)
    a = Analysis(uri, path, text, LineIndex(text, encoding), lex(text))
    errors: list[DlcError] = []
    try:
        a.module = parse(text, path)
    except DlcError as err:
        errors += err.errors
    except Exception:  # a failure no check foresaw: logged, and the server goes on
        a.problems.append(traceback.format_exc())
    if a.module is not None:
        a.extents = extents(a.module, sections(a.tokens))
        try:
            a.program = load_program(path, text)
        except DlcError as err:
            errors += err.errors
        except Exception:
            a.problems.append(traceback.format_exc())
    if a.program is not None:
        errors += _compile_all(a)
    else:
        a.imported = _imported(a)
    a.diagnostics = _diagnostics(a, errors)
    _index(a)
    return a


def _compile_all(a: Analysis) -> list[DlcError]:
    """Elaborate what ``dlc check`` does: each network of the file, then those of the
    files it imports (their errors show at the import line), then each recipe and search
    section; the errors (warnings included), in that order."""
    program = a.program
    assert program is not None
    out: list[DlcError] = []
    for name in program.root_networks:
        try:
            compiled, errors = _network(program, name)
        except Exception:
            a.problems.append(traceback.format_exc())
            continue
        a.networks.append(compiled)
        out += errors
        if not compiled.partial:
            try:
                out += compiled.network.warnings
            except Exception:
                a.problems.append(traceback.format_exc())
    for name in program.networks:  # the imported files' networks: their errors only
        if name not in program.root_networks:
            out += _guard(a, lambda n=name: _compile(program, n, None, {}))
    for name in program.root_recipes:
        out += _guard(a, lambda n=name: load_recipe(program, n))
    for name in program.root_searches:
        out += _guard(a, lambda n=name: elaborate_search(program, n))
    return out


def _guard(a: Analysis, run) -> list[DlcError]:
    try:
        run()
    except DlcError as err:
        return err.errors
    except Exception:
        a.problems.append(traceback.format_exc())
    return []


def _network(program: Program, name: str) -> tuple[Compiled, list[DlcError]]:
    """``network._compile(program, name, None, {})``, keeping the layers elaborated before
    an error (the elaborator checks every statement it can, and poisons the rest)."""
    elab = Elaborator(program, None)
    try:
        graph = elab.network(program.networks[name], {})
    except DlcError as err:
        partial = Graph(name, {}, tuple(elab.nodes), tuple(elab.inputs), (), (), tuple(elab.scopes))
        return Compiled(Network(partial, program), partial=True), err.errors
    return Compiled(Network(graph, program)), []


def _index(a: Analysis) -> None:
    layers: dict[SpanKey, list] = defaultdict(list)
    scopes: dict[SpanKey, list] = defaultdict(list)
    for c in a.networks:
        graph = c.network.graph
        for node in graph.nodes:
            if a.here(node.span):
                layers[key(node.span)].append((c.network, node))
        for scope in graph.scopes:
            if a.here(scope.span):
                scopes[key(scope.span)].append((c.network, scope))
    a.layers, a.scopes = dict(layers), dict(scopes)


def _imported(a: Analysis) -> Program | None:
    """The definitions of the files the import lines name, each loaded on its own (the
    text itself does not load)."""
    out = Program(a.path)
    base = Path(a.path).parent
    for sec in sections(a.tokens):
        if sec.kind != "import" or sec.name is None:
            continue
        try:
            loaded = load_program(base / sec.name.value[1:-1])
        except Exception:  # a broken import offers nothing
            continue
        for table in ("blocks", "functions", "networks", "recipes", "searches"):
            for name, d in getattr(loaded, table).items():
                getattr(out, table).setdefault(name, d)
    return out


# ---- diagnostics ---------------------------------------------------------------------


def _diagnostics(a: Analysis, errors: list[DlcError]) -> list[types.Diagnostic]:
    out: list[types.Diagnostic] = []
    seen: set = set()
    imports = _ImportAnchors(a)
    for err in errors:
        try:
            d = _diagnostic(a, err, imports)
        except Exception:
            a.problems.append(traceback.format_exc())
            continue
        r = d.range
        mark = (r.start.line, r.start.character, r.end.line, r.end.character, d.message)
        if mark not in seen:  # a block called by two networks reports its error twice
            seen.add(mark)
            out.append(d)
    return out


def _message(a: Analysis, err: DlcError) -> str:
    lines = [err.message, *err.notes]
    for name, where in err.chain:
        shown = where.short if a.here(where) else str(where)
        lines.append(f"in {'' if name.startswith('fn ') else 'block '}{name}, called at {shown}")
    return "\n".join(lines)


def _diagnostic(a: Analysis, err: DlcError, imports: _ImportAnchors) -> types.Diagnostic:
    severity = (
        types.DiagnosticSeverity.Warning
        if isinstance(err, DlcWarning)
        else types.DiagnosticSeverity.Error
    )
    span = err.span
    message = _message(a, err)
    related = None
    if span is None:
        rng = whole_line(a.index, 0)
    elif a.here(span):
        rng = a.index.span_range(span)
    else:
        # An error in an imported file: at the import that brings the file in, saying
        # where it is; the exact place goes in the related information.
        rng = imports.anchor(span.source.path)
        shown = os.path.relpath(span.source.path, os.path.dirname(a.path))
        message = f"in imported file {shown}:{span.line}:{span.col}: {message}"
        other = LineIndex(span.source.text, a.index.encoding)
        related = [
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=uris.from_fs_path(os.path.abspath(span.source.path)) or span.source.path,
                    range=other.span_range(span),
                ),
                message=err.message,
            )
        ]
    return types.Diagnostic(
        range=rng,
        message=message,
        severity=severity,
        source="dlc",
        related_information=related,
    )


class _ImportAnchors:
    """Which import line of the document brings in a given file (directly or through
    the files it imports)."""

    def __init__(self, a: Analysis):
        self.a = a
        self.closures: list[tuple[ast.Import, set[str]]] | None = None

    def anchor(self, path: str) -> types.Range:
        target = os.path.realpath(path)
        for imp, files in self._closures():
            if target in files:
                return self.a.index.span_range(imp.span)
        return whole_line(self.a.index, 0)

    def _closures(self) -> list[tuple[ast.Import, set[str]]]:
        if self.closures is None:
            module = self.a.module
            base = Path(self.a.path).parent
            imports = module.imports if module is not None else ()
            self.closures = [(imp, _reachable(base / imp.path)) for imp in imports]
        return self.closures


def _reachable(path: Path, limit: int = 1000) -> set[str]:
    """The real paths of ``path`` and every file it imports, transitively."""
    seen: set[str] = set()
    todo = [path]
    while todo and len(seen) < limit:
        p = todo.pop()
        real = os.path.realpath(p)
        if real in seen:
            continue
        seen.add(real)
        try:
            module = parse(read_source(p), str(p))
        except Exception:  # unreadable or not parsing: the file itself is still reached
            continue
        todo += [p.parent / imp.path for imp in module.imports]
    return seen

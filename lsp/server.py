"""The pygls wiring of ``dlc lsp``: document sync, the features, and ``serve()``.

Every handler is guarded: an exception no check foresaw is logged to the client
(window/logMessage) and the request gets an empty answer, so the server never dies of one.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..compiler.frontend.program import Program
from .analysis import Analysis, analyze
from .complete import complete
from .hover import hover
from .navigate import definition, symbols
from .semantic import LEGEND, semantic_tokens

F = TypeVar("F", bound=Callable[..., Any])


class DlcLanguageServer(LanguageServer):
    """The server and what it knows of each open document."""

    def __init__(self) -> None:
        super().__init__(
            "dlc", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full
        )
        self.analyses: dict[str, Analysis] = {}
        # The last program each document loaded: completion, definitions and highlighting
        # use it while the text does not parse (the user is typing).
        self.programs: dict[str, Program] = {}

    def log(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=message))
        except Exception:  # the client is gone: nothing to tell
            pass

    def encoding(self) -> str:
        """The position encoding agreed with the client (UTF-16 unless it chose another)."""
        try:
            encoding = self.workspace.position_encoding
        except Exception:  # not initialised yet
            return "utf-16"
        return str(getattr(encoding, "value", encoding) or "utf-16")

    def refresh(self, uri: str) -> Analysis:
        """Compile the document again and publish its diagnostics."""
        doc = self.workspace.get_text_document(uri)
        a = analyze(uri, doc.source, self.encoding())
        self.analyses[uri] = a
        if a.program is not None:
            self.programs[uri] = a.program
        for problem in a.problems:
            self.log(f"dlc lsp: internal error while compiling {uri}:\n{problem}")
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=a.diagnostics, version=doc.version)
        )
        return a

    def program(self, uri: str) -> Program | None:
        """The last program the document loaded (or what its imports define), for features
        that work while the text does not parse."""
        a = self.analyses.get(uri)
        return self.programs.get(uri) or (a.imported if a is not None else None)

    def analysis(self, uri: str) -> Analysis:
        """The document's current analysis (made now if the text changed since)."""
        a = self.analyses.get(uri)
        doc = self.workspace.get_text_document(uri)
        if a is None or a.text != doc.source:
            a = self.refresh(uri)
        return a


def guarded(default: Any = None) -> Callable[[F], F]:
    """Run a handler; on an unexpected exception, log it and answer ``default``."""

    def wrap(f: F) -> F:
        @functools.wraps(f)
        def run(ls: DlcLanguageServer, params: Any) -> Any:
            try:
                return f(ls, params)
            except Exception:
                ls.log(f"dlc lsp: internal error in {f.__name__}:\n{traceback.format_exc()}")
                return default

        return run  # type: ignore[return-value]

    return wrap


def make_server() -> DlcLanguageServer:
    """A server with every feature registered."""
    server = DlcLanguageServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guarded()
    def did_open(ls: DlcLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guarded()
    def did_change(ls: DlcLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @guarded()
    def did_save(ls: DlcLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        # A saved file may be imported by the others: compile every open document again.
        for uri in list(ls.analyses):
            try:
                ls.refresh(uri)
            except Exception:
                ls.log(f"dlc lsp: cannot refresh {uri}:\n{traceback.format_exc()}")

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guarded()
    def did_close(ls: DlcLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.analyses.pop(uri, None)
        ls.programs.pop(uri, None)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded()
    def on_hover(ls: DlcLanguageServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        return hover(ls.analysis(uri), params.position, ls.program(uri))

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "(", ","]),
    )
    @guarded(types.CompletionList(is_incomplete=False, items=[]))
    def on_completion(ls: DlcLanguageServer, params: types.CompletionParams):
        uri = params.text_document.uri
        return complete(ls.analysis(uri), params.position, ls.program(uri))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @guarded()
    def on_definition(ls: DlcLanguageServer, params: types.DefinitionParams):
        uri = params.text_document.uri
        return definition(ls.analysis(uri), params.position, ls.program(uri))

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded([])
    def on_symbols(ls: DlcLanguageServer, params: types.DocumentSymbolParams):
        return symbols(ls.analysis(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, LEGEND)
    @guarded(types.SemanticTokens(data=[]))
    def on_tokens(ls: DlcLanguageServer, params: types.SemanticTokensParams):
        uri = params.text_document.uri
        return semantic_tokens(ls.analysis(uri), ls.program(uri))

    return server


def serve() -> None:
    """Run the server over stdin/stdout until the client exits."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything printed by mistake goes to stderr: stdout carries the protocol only.
    saved, sys.stdout = sys.stdout, sys.stderr
    try:
        make_server().start_io(stdin, stdout)
    finally:
        sys.stdout = saved

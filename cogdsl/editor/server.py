"""``cogdsl lsp``: the Language Server Protocol server, over standard input and output, with pygls.

This module is only the wiring: which LSP requests and notifications the server answers, positions between
LSP (0-based, UTF-16) and cogdsl (1-based, code points; :mod:`cogdsl.editor.positions`), and when
diagnostics are published. What the answers hold comes from :mod:`cogdsl.editor.analysis` (diagnostics,
the index of names), :mod:`~cogdsl.editor.hover`, :mod:`~cogdsl.editor.completion` and
:mod:`~cogdsl.editor.formatting`.

Diagnostics are published when a document opens or is saved, and :data:`DEBOUNCE_SECONDS` after the last of
a burst of changes: each change cancels the check it would have started, so typing a line checks it once.
A check runs in a worker thread, so hovers and completions are answered meanwhile, and a check whose
document has changed since it started publishes nothing (the newer one will). Every handler is guarded: an
exception is logged and answered with nothing (for a check, with an E900 diagnostic), never a crash.

YAML documents that are not cogdsl specs (no top-level ``cogdsl:``) get no diagnostics, so an editor may
send every YAML file of a project to the server.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from cogdsl import __version__
from cogdsl.editor import catalog
from cogdsl.editor.analysis import Analysis, Occurrence, analyse, form_of, looks_like_spec
from cogdsl.editor.completion import Suggestion, complete
from cogdsl.editor.formatting import format_text
from cogdsl.editor.hover import hover_text
from cogdsl.editor.positions import from_lsp, lines_of, to_lsp, token_end
from cogdsl.errors import Diagnostic

DEBOUNCE_SECONDS = 0.3
"""How long after the last change the server checks a document."""

TRIGGERS = [" ", "(", ",", "|", "+", ":", "=", "@", "[", "{", '"', "-"]
"""Characters after which the client asks for completions without being told to."""

log = logging.getLogger("cogdsl.lsp")
F = TypeVar("F", bound=Callable[..., Any])


def guarded(function: F) -> F:
    """A handler that logs an exception and answers None instead of raising it into pygls."""

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception:
            log.exception("cogdsl lsp: %s failed", function.__name__)
            return None

    return run  # type: ignore[return-value]


class CogdslServer(LanguageServer):
    """The server: pygls's LanguageServer, with the analyses of the open documents and their pending checks."""

    def __init__(self, delay: float = DEBOUNCE_SECONDS) -> None:
        super().__init__("cogdsl", __version__)
        self.delay = delay
        self.checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cogdsl-check")
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.light: dict[str, tuple[int | None, str, Analysis]] = {}

    # -- documents --------------------------------------------------------------------------------------

    def document(self, uri: str) -> tuple[str, str, str | None, int | None] | None:
        """(text, file path, form, version) of an open document; None for one that is not a spec."""
        doc = self.workspace.get_text_document(uri)
        path = to_fs_path(uri) or uri
        form = form_of(path, doc.language_id)
        text = doc.source
        if form is None or not looks_like_spec(text, form):
            return None
        return text, path, form, doc.version

    def analysis(self, uri: str) -> Analysis | None:
        """The analysis of a document's current text, without validation (for hover, completion, names):
        made once per version, in this thread (reading takes milliseconds)."""
        found = self.document(uri)
        if found is None:
            return None
        text, path, form, version = found
        cached = self.light.get(uri)
        if cached is not None and cached[0] == version and cached[1] == text:
            return cached[2]
        result = analyse(text, path, form, validate=False)
        self.light[uri] = (version, text, result)
        return result

    def schedule(self, uri: str, delay: float) -> None:
        """Check ``uri`` after ``delay`` seconds, cancelling the check already waiting for it."""
        waiting = self.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._check_later(uri, delay))

    async def _check_later(self, uri: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            await self.check(uri)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("cogdsl lsp: checking %s failed", uri)

    async def check(self, uri: str) -> None:
        """Analyse ``uri`` in the worker thread and publish its diagnostics, unless it changed meanwhile."""
        found = self.document(uri)
        if found is None:
            self.publish(uri, None, [], "")
            return
        text, path, form, version = found
        result = await asyncio.get_running_loop().run_in_executor(self.checker, analyse, text, path, form)
        now = self.document(uri)
        if now is None or now[3] != version or now[0] != text:
            return  # a newer text is waiting for its own check
        log.info("checked %s (version %s) in %.3f s: %d problem(s)", path, version, result.seconds,
                 len(result.diagnostics))
        self.publish(uri, version, result.diagnostics, text)

    def publish(self, uri: str, version: int | None, diagnostics: list[Diagnostic], text: str) -> None:
        lines = lines_of(text)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[lsp_diagnostic(d, lines) for d in diagnostics]))

    def warm_up(self) -> None:
        """Check a small spec in the worker thread, so that the imports the first check needs (seconds of
        them: shape inference, the memory budget) are done before a document is opened."""
        text = "model warm_up\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstm c(hidden=4) <- x\n"
        self.checker.submit(analyse, text, "<warm-up>", "cog")


# -- conversions ---------------------------------------------------------------------------------------------


def lsp_range(lines: list[str], line: int, col: int, end: int) -> lsp.Range:
    """The LSP range of columns ``col`` to ``end`` (exclusive) of ``line``, all 1-based in code points."""
    start = to_lsp(lines, line, col)
    stop = to_lsp(lines, line, end)
    return lsp.Range(lsp.Position(*start), lsp.Position(*stop))


def lsp_diagnostic(diagnostic: Diagnostic, lines: list[str]) -> lsp.Diagnostic:
    """A cogdsl diagnostic as LSP shows it: its code, its message and hint, the token at its span."""
    span = diagnostic.span
    line, col = (span.line, span.col) if span.line else (1, 1)
    end = token_end(lines, line, col) if span.line else 1
    message = diagnostic.message + (f"\nhint: {diagnostic.hint}" if diagnostic.hint else "")
    severity = lsp.DiagnosticSeverity.Error if diagnostic.severity == "error" else lsp.DiagnosticSeverity.Warning
    return lsp.Diagnostic(range=lsp_range(lines, line, col, end), message=message, severity=severity,
                          code=diagnostic.code, source="cogdsl")


_ITEM_KINDS = {
    "kind": lsp.CompletionItemKind.Class, "keyword": lsp.CompletionItemKind.Keyword,
    "param": lsp.CompletionItemKind.Property, "field": lsp.CompletionItemKind.Field,
    "stage": lsp.CompletionItemKind.Function, "name": lsp.CompletionItemKind.Reference,
    "value": lsp.CompletionItemKind.EnumMember, "setting": lsp.CompletionItemKind.Property,
    "section": lsp.CompletionItemKind.Module, "task": lsp.CompletionItemKind.Module,
    "optimizer": lsp.CompletionItemKind.Module, "schedule": lsp.CompletionItemKind.Module,
}

_SYMBOL_KINDS = {
    "input": lsp.SymbolKind.Variable, "output": lsp.SymbolKind.Event, "controller": lsp.SymbolKind.Class,
    "memory": lsp.SymbolKind.Struct, "head": lsp.SymbolKind.Method, "attention": lsp.SymbolKind.Function,
    "reasoning": lsp.SymbolKind.Function, "encoder": lsp.SymbolKind.Module,
}


def completion_item(suggestion: Suggestion) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=suggestion.label, kind=_ITEM_KINDS.get(suggestion.what, lsp.CompletionItemKind.Text),
        detail=suggestion.detail or None,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=suggestion.doc) if suggestion.doc
        else None, insert_text=suggestion.insert, sort_text=suggestion.sort)


def _location(uri: str, lines: list[str], occurrence: Occurrence) -> lsp.Location:
    return lsp.Location(uri=uri, range=lsp_range(lines, occurrence.line, occurrence.col, occurrence.end))


# -- the server ----------------------------------------------------------------------------------------------


def build_server(delay: float = DEBOUNCE_SECONDS) -> CogdslServer:
    """The server with every feature registered."""
    server = CogdslServer(delay)

    @server.feature(lsp.INITIALIZED)
    @guarded
    def initialized(ls: CogdslServer, params: lsp.InitializedParams) -> None:
        ls.warm_up()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(ls: CogdslServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0.0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(ls: CogdslServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, ls.delay)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    @guarded
    def did_save(ls: CogdslServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0.0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(ls: CogdslServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        waiting = ls.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        ls.light.pop(uri, None)
        ls.publish(uri, None, [], "")

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    @guarded
    def hover(ls: CogdslServer, params: lsp.HoverParams) -> lsp.Hover | None:
        analysis = ls.analysis(params.text_document.uri)
        if analysis is None:
            return None
        lines = lines_of(analysis.text)
        line, col = from_lsp(lines, params.position.line, params.position.character)
        found = hover_text(analysis, line, col)
        if found is None:
            return None
        text, (at, start, end) = found
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text),
                         range=lsp_range(lines, at, start, end))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=TRIGGERS))
    @guarded
    def completion(ls: CogdslServer, params: lsp.CompletionParams) -> lsp.CompletionList | None:
        analysis = ls.analysis(params.text_document.uri)
        if analysis is None:
            return None
        line, col = from_lsp(lines_of(analysis.text), params.position.line, params.position.character)
        items = [completion_item(s) for s in complete(analysis, line, col)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    @guarded
    def definition(ls: CogdslServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        analysis = ls.analysis(params.text_document.uri)
        if analysis is None:
            return None
        lines = lines_of(analysis.text)
        occurrence = analysis.at(*from_lsp(lines, params.position.line, params.position.character))
        if occurrence is None or occurrence.role not in ("definition", "reference"):
            return None
        found = analysis.definition(occurrence.name)
        return _location(params.text_document.uri, lines, found) if found else None

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    @guarded
    def references(ls: CogdslServer, params: lsp.ReferenceParams) -> list[lsp.Location] | None:
        analysis = ls.analysis(params.text_document.uri)
        if analysis is None:
            return None
        lines = lines_of(analysis.text)
        occurrence = analysis.at(*from_lsp(lines, params.position.line, params.position.character))
        if occurrence is None or occurrence.role not in ("definition", "reference"):
            return None
        uses = analysis.uses(occurrence.name, params.context.include_declaration)
        return [_location(params.text_document.uri, lines, o) for o in uses]

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded
    def symbols(ls: CogdslServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol] | None:
        analysis = ls.analysis(params.text_document.uri)
        if analysis is None:
            return None
        lines = lines_of(analysis.text)
        found = []
        for name, what in analysis.names().items():
            occurrence = analysis.definition(name)
            assert occurrence is not None
            entry = catalog.kinds().get(what)
            family = entry.extra["family"] if entry else what
            whole = lsp_range(lines, occurrence.line, 1, len(lines[occurrence.line - 1]) + 1)
            found.append(lsp.DocumentSymbol(
                name=name, detail=what, kind=_SYMBOL_KINDS.get(family, lsp.SymbolKind.Object), range=whole,
                selection_range=lsp_range(lines, occurrence.line, occurrence.col, occurrence.end)))
        return found

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    @guarded
    def formatting(ls: CogdslServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        found = ls.document(params.text_document.uri)
        if found is None:
            return None
        text, path, form, _ = found
        assert form is not None
        formatted, reason = format_text(text, path, form)
        if formatted is None:
            ls.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"cogdsl: {reason}"))
            return []
        if formatted == text:
            return []
        lines = lines_of(text)
        end = lsp.Position(*to_lsp(lines, len(lines), len(lines[-1]) + 1))
        return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), end), new_text=formatted)]

    return server


def serve() -> None:
    """Serve over standard input and output until the client exits. Anything printed by mistake goes to
    standard error, never into the protocol's stream."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="cogdsl lsp: %(message)s")
    build_server().start_io(stdin, stdout)

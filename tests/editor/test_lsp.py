"""``cogdsl lsp`` end to end: a real LSP client (pytest-lsp, on pygls) speaks JSON-RPC over standard input and
output to ``python -m cogdsl lsp`` in a subprocess. One server serves the whole module (it starts in about
three seconds, torch being imported); each test opens its own documents.

Positions in assertions are LSP's: 0-based lines, characters in UTF-16 code units.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, make_test_lsp_client  # noqa: E402

from cogdsl.editor.formatting import count_comments  # noqa: E402
from cogdsl.language.emit import to_cog, to_yaml  # noqa: E402
from cogdsl.language.parse_cog import parse_cog  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0  # seconds for one publication: the first check imports what shape inference needs


def _recording_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics it receives, in order (``client.published``)."""
    client = make_test_lsp_client()
    published: list[lsp.PublishDiagnosticsParams] = []
    features = client.protocol.fm.features
    handler = features[lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def record(params: lsp.PublishDiagnosticsParams) -> None:
        published.append(params)
        handler(params)

    features[lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = record
    client.published = published  # type: ignore[attr-defined]
    return client


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "cogdsl", "lsp"], client_factory=_recording_client))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("editor")


# -- helpers ----------------------------------------------------------------------------------------------


def _open(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    language = "cog" if path.suffix == ".cog" else "yaml"
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))
    return uri


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def _diagnostics(client: LanguageClient, uri: str, version: int | None) -> list[lsp.Diagnostic]:
    """The diagnostics the server publishes for ``uri`` at ``version`` (waiting for them)."""
    published: list[lsp.PublishDiagnosticsParams] = client.published  # type: ignore[attr-defined]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for params in published:
            if params.uri == uri and params.version == version:
                return list(params.diagnostics)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no diagnostics for {uri} version {version} in {TIMEOUT} s")


def _where(diagnostic: lsp.Diagnostic) -> tuple[int, int, int, int]:
    r = diagnostic.range
    return r.start.line, r.start.character, r.end.line, r.end.character


def _position(text: str, marker: str, offset: int = 0) -> lsp.Position:
    """The LSP position of ``marker``'s first occurrence in ``text`` (plus ``offset`` characters; ASCII lines)."""
    before = text[:text.index(marker) + offset]
    return lsp.Position(line=before.count("\n"), character=len(before) - (before.rfind("\n") + 1))


NTM = (ROOT / "specs" / "ntm_copy.cog").read_text()
NTM_YAML = (ROOT / "specs" / "ntm_copy.yaml").read_text()

SEVERAL_ERRORS = """model several
input x: 3
output y: 2 = sigmoid(c, zz)
lstn c(hidden=4) <- x
lstm d(hidden=-3, foo=1) <- x, q
"""


# -- diagnostics ------------------------------------------------------------------------------------------


async def test_every_error_of_a_file_is_published_located_with_its_code_and_hint(client: LanguageClient,
                                                                                 folder: Path) -> None:
    uri = _open(client, folder / "several.cog", SEVERAL_ERRORS)
    found = await _diagnostics(client, uri, 1)
    assert sorted((d.code, _where(d)) for d in found) == [
        ("E201", (3, 0, 3, 4)),      # lstn
        ("E202", (4, 18, 4, 21)),    # foo
        ("E205", (4, 14, 4, 16)),    # -3
        ("E301", (2, 25, 2, 27)),    # zz
        ("E301", (4, 31, 4, 32)),    # q
    ]
    unknown_kind = next(d for d in found if d.code == "E201")
    assert unknown_kind.source == "cogdsl" and unknown_kind.severity == lsp.DiagnosticSeverity.Error
    assert "unknown block kind 'lstn'" in unknown_kind.message and "hint: did you mean 'lstm'?" in unknown_kind.message


async def test_several_syntax_errors_are_each_published(client: LanguageClient, folder: Path) -> None:
    text = "model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstm c(hidden=4 <- x\nmemory mem(slots=\n"
    uri = _open(client, folder / "syntax.cog", text)
    found = await _diagnostics(client, uri, 1)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in found] == [
        ("E001", 3, 16), ("E001", 4, 17)]
    assert "unexpected '<-'" in found[0].message and "hint: expected one of ')'" in found[0].message


async def test_yaml_errors_are_located_in_the_yaml(client: LanguageClient, folder: Path) -> None:
    text = NTM_YAML.replace("kind: lstm, hidden: 100", "kind: lstn, hidden: 100").replace("slots: 128", "slotz: 128")
    uri = _open(client, folder / "bad.yaml", text)
    found = await _diagnostics(client, uri, 1)
    lines = text.split("\n")
    assert sorted(str(d.code) for d in found) == ["E201", "E202", "E203"]  # E203: mem lacks its slots
    for diagnostic in found:
        start = diagnostic.range.start
        word = lines[start.line][start.character:diagnostic.range.end.character]
        assert word == {"E201": "lstn", "E202": "slotz", "E203": "mem"}[str(diagnostic.code)]


async def test_a_file_being_typed_gets_diagnostics_at_each_pause_and_none_when_done(client: LanguageClient,
                                                                                    folder: Path) -> None:
    uri = _open(client, folder / "typing.cog", NTM)
    assert await _diagnostics(client, uri, 1) == []
    line = "read   r2 on mem by ctrl: content(cosine) | sharpen"
    lines = NTM.split("\n")
    at = next(k for k, text in enumerate(lines) if text.startswith("write"))
    version = 1
    for cut in (4, 10, 17, 30, 34, 45, len(line)):  # pauses while the line is typed
        version += 1
        typed = "\n".join([*lines[:at + 1], line[:cut], *lines[at + 1:]])
        _change(client, uri, typed, version)
        found = await _diagnostics(client, uri, version)
        if cut == len(line):  # a whole head that nothing reads yet: a warning, no error
            assert [(d.code, d.severity, d.range.start.line) for d in found] == [
                ("W301", lsp.DiagnosticSeverity.Warning, at + 1)], found
        else:  # 'read', 'read   r2 ' (no memory, no controller), '... content(': each located on the typed line
            assert found and {d.range.start.line for d in found} == {at + 1}, (line[:cut], found)


async def test_a_burst_of_changes_publishes_once_for_the_final_text(client: LanguageClient, folder: Path) -> None:
    uri = _open(client, folder / "burst.cog", NTM)
    await _diagnostics(client, uri, 1)
    published: list[lsp.PublishDiagnosticsParams] = client.published  # type: ignore[attr-defined]
    before = len(published)
    texts = [NTM.replace("lstm   ctrl", "lst" + "m" * k + " ctrl") for k in range(10)]  # lst, lstm, lstmm ...
    for version, text in enumerate(texts, start=2):
        _change(client, uri, text, version)
    final = await _diagnostics(client, uri, 11)
    await asyncio.sleep(1.0)  # more than the debounce delay: nothing else comes
    mine = [p for p in published[before:] if p.uri == uri]
    assert [p.version for p in mine] == [11]
    assert [d.code for d in final] == ["E201"] and "'lstmmmmmmmmm'" in final[0].message


async def test_a_large_spec(client: LanguageClient, folder: Path) -> None:
    count = 150
    blocks = [f"mlp c{k}(hidden=4) <- " + ("x" if k == 0 else f"c{k - 1}") for k in range(count)]
    heads = [f"memory m{k}(slots=8, width=4)\nread r{k} on m{k} by c{k}: content(cosine)\n"
             f"write w{k} on m{k} by c{k}: content(cosine)" for k in range(0, count, 10)]
    reads = ", ".join(f"r{k}" for k in range(0, count, 10))
    text = "\n".join(["model large", "input x: 3", f"output y: 2 = sigmoid(c{count - 1}, {reads})", *blocks, *heads,
                      "train {\n  task copy(bits=2)\n}", ""])
    assert len(text.split("\n")) > 200
    started = time.monotonic()
    uri = _open(client, folder / "large.cog", text)
    assert await _diagnostics(client, uri, 1) == []
    assert time.monotonic() - started < 30
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert len(symbols) == 2 + count + 3 * len(heads)
    last = _position(text, f"c{count - 1}, r0")
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=last))
    assert found.range.start.line == text.split("\n").index(f"mlp c{count - 1}(hidden=4) <- c{count - 2}")


async def test_binary_and_garbage_documents_get_located_errors(client: LanguageClient, folder: Path) -> None:
    garbage = "\x00\x01\x02\ufffd\ufffd\x7fELF\x00" * 40
    uri = _open(client, folder / "binary.cog", garbage)
    found = await _diagnostics(client, uri, 1)
    assert found and found[0].code == "E001" and found[0].range.start.line == 0
    uri = _open(client, folder / "binary.yaml", "cogdsl: 1\nmodel: \x00\x07\ufffd\n" + garbage)
    found = await _diagnostics(client, uri, 1)
    assert found and all(d.code and d.code.startswith("E") for d in found)
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=9999, character=9999)))
    assert hover is None  # and the server still answers


async def test_a_yaml_file_that_is_not_a_spec_is_left_alone(client: LanguageClient, folder: Path) -> None:
    uri = _open(client, folder / "workflow.yaml", "name: CI\non: [push]\njobs: {test: {runs-on: x}}\n")
    assert await _diagnostics(client, uri, None) == []


async def test_positions_count_utf16_code_units(client: LanguageClient, folder: Path) -> None:
    text = 'model m\ndoc "\U0001F600\U0001F600"; lstn c(hidden=4) <- x\ninput x: 3\noutput y: 2 = sigmoid(c)\n'
    uri = _open(client, folder / "emoji.cog", text)
    found = await _diagnostics(client, uri, 1)
    # 'lstn' is the 11th character of its line (column 11 for cogdsl), after two characters that are two UTF-16
    # units each: LSP's characters 12 to 16
    assert [(d.code, _where(d)) for d in found] == [("E201", (1, 12, 1, 16))]
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=1, character=17)))
    assert hover is not None and hover.contents.value.startswith("**c**")  # 'c' at units 17 to 18
    assert (hover.range.start.character, hover.range.end.character) == (17, 18)


# -- hover, completion, navigation ------------------------------------------------------------------------


async def test_hover_shows_the_registry_docs(client: LanguageClient, folder: Path) -> None:
    uri = _open(client, folder / "hover.cog", NTM)

    async def hover(marker: str, offset: int = 1) -> str:
        found = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=_position(NTM, marker, offset)))
        assert found is not None, marker
        return found.contents.value

    assert (await hover("lstm ")).startswith("**lstm** (kind)") and "`hidden`: integer" in await hover("lstm ")
    assert "`hidden`: integer, required" in await hover("hidden=")
    assert "units per layer" in await hover("hidden=")
    shift = await hover("shift(")
    assert shift.startswith("**shift** (addressing stage)") and "`s`: integer" in shift
    assert (await hover("copy(")).startswith("**copy** (task)")
    assert "`bits`" in await hover("bits=") and "task `copy`" in await hover("bits=")
    assert "rmsprop" in await hover("rmsprop(") and "`momentum`" in await hover("momentum=")
    assert "sequences per training step" in await hover("batch ")
    assert "a `memory` block (memory), defined at line" in await hover("mem by")
    yaml_uri = _open(client, folder / "hover.yaml", NTM_YAML)
    found = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=yaml_uri), position=_position(NTM_YAML, "slots:", 1)))
    assert found is not None and "`slots`: integer" in found.contents.value


async def _labels(client: LanguageClient, uri: str, position: lsp.Position) -> dict[str, lsp.CompletionItem]:
    found = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=position))
    items = found.items if isinstance(found, lsp.CompletionList) else found
    return {item.label: item for item in items}


async def test_completion_of_kinds_parameters_stages_and_names(client: LanguageClient, folder: Path) -> None:
    text = NTM + "\nlstm c2(hid\nread r2 on \nread r3 on mem by ctrl: content(cosine) | \n"
    uri = _open(client, folder / "complete.cog", text)
    lines = text.split("\n")
    start = len(lines) - 5
    kinds = await _labels(client, uri, lsp.Position(line=start, character=0))
    assert {"lstm", "dnc_memory", "read", "model", "train"} <= set(kinds)
    params = await _labels(client, uri, lsp.Position(line=start + 1, character=len(lines[start + 1])))
    assert {"hidden", "layers", "clip", "zoneout"} == set(params)
    assert params["hidden"].detail == "integer, required" and params["hidden"].insert_text == "hidden="
    assert params["layers"].detail == "integer, default 1"
    names = await _labels(client, uri, lsp.Position(line=start + 2, character=len(lines[start + 2])))
    assert {"mem", "ctrl", "x"} <= set(names) and min(names, key=lambda n: names[n].sort_text or n) == "mem"
    stages = await _labels(client, uri, lsp.Position(line=start + 3, character=len(lines[start + 3])))
    assert {"content", "gate", "shift", "sharpen"} <= set(stages) and "allocate" not in stages  # not on an NTM memory
    yaml_text = NTM_YAML.replace("{kind: read,  memory: mem,", "{kind: read,  memory: ")
    yaml_uri = _open(client, folder / "complete.yaml", yaml_text)
    names = await _labels(client, yaml_uri, _position(yaml_text, "memory: ", len("memory: ")))
    assert {"mem", "ctrl"} <= set(names)


async def test_definition_and_references_of_block_names(client: LanguageClient, folder: Path) -> None:
    for name, text in (("nav.cog", NTM), ("nav.yaml", NTM_YAML)):
        uri = _open(client, folder / name, text)
        identifier = lsp.TextDocumentIdentifier(uri=uri)
        use = _position(text, "by ctrl" if name.endswith(".cog") else "by: ctrl", 4)  # the first head's controller
        found = await client.text_document_definition_async(lsp.DefinitionParams(text_document=identifier,
                                                                                  position=use))
        defined = _position(text, "ctrl(" if name.endswith(".cog") else "ctrl:")
        assert (found.range.start.line, found.range.start.character) == (defined.line, defined.character)
        uses = await client.text_document_references_async(lsp.ReferenceParams(
            text_document=identifier, position=use, context=lsp.ReferenceContext(include_declaration=True)))
        assert len(uses) == 4  # defined, the output reads it, two heads are driven by it
        only = await client.text_document_references_async(lsp.ReferenceParams(
            text_document=identifier, position=use, context=lsp.ReferenceContext(include_declaration=False)))
        assert len(only) == 3
        symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=identifier))
        assert [s.name for s in symbols] == ["x", "y", "ctrl", "mem", "r", "w"]
        assert next(s for s in symbols if s.name == "mem").kind == lsp.SymbolKind.Struct


async def test_formatting_is_cogdsl_fmt_and_keeps_comments_safe(client: LanguageClient, folder: Path) -> None:
    spec = parse_cog(NTM)
    messy = to_cog(spec).replace("lstm ctrl(hidden=100)", "lstm    ctrl( hidden = 100 )")
    uri = _open(client, folder / "messy.cog", messy)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(tab_size=2,
                                                                                         insert_spaces=True)))
    assert len(edits) == 1 and edits[0].new_text == to_cog(spec) and edits[0].range.start == lsp.Position(0, 0)
    uri = _open(client, folder / "tidy.yaml", to_yaml(spec))
    assert not await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(2, True)))
    commented = NTM.replace("lstm   ctrl", "lstm ctrl")  # the library spec has comments: they come along
    assert commented != NTM and "#" in commented
    uri = _open(client, folder / "commented.cog", commented)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(2, True)))
    assert len(edits) == 1 and edits[0].new_text == to_cog(parse_cog(commented, str(folder / "commented.cog")))
    assert count_comments(edits[0].new_text, "cog") == count_comments(commented, "cog") > 0
    uri = _open(client, folder / "broken.cog", NTM.replace("memory mem", "memory mem("))  # errors: left alone
    shown = len(client.messages)
    assert not await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), options=lsp.FormattingOptions(2, True)))
    await asyncio.sleep(0.2)
    assert any("error(s) to fix first" in m.message for m in client.messages[shown:])

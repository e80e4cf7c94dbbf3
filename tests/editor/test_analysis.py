"""The editor's reading of a spec (cogdsl.editor.analysis, positions, hover, completion), called directly: the
recoveries that keep a half-typed file useful, the positions between cogdsl and LSP, and a front end that never
raises into the server, whatever the text (the whole corpus of bad specs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogdsl.editor.analysis as analysis_module
from cogdsl.editor.analysis import analyse, blank_statement, read_cog, statements
from cogdsl.editor.completion import complete, lexical_names, yaml_path
from cogdsl.editor.hover import hover_text
from cogdsl.editor.positions import from_lsp, lines_of, to_lsp, token_end, utf16_length

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p for p in (ROOT / "specs").iterdir() if p.suffix in (".cog", ".yaml"))
BAD = sorted(p for p in (ROOT / "tests" / "bad_specs").iterdir() if p.suffix in (".cog", ".yaml", ".yml"))


# -- positions --------------------------------------------------------------------------------------------


def test_positions_go_between_code_points_and_utf16_units() -> None:
    lines = lines_of('a = "\U0001F600é"; b\r\nnext')
    assert lines == ['a = "\U0001F600é"; b', "next"]  # a CR before the new line belongs to the line end
    assert utf16_length("\U0001F600é") == 3
    assert to_lsp(lines, 1, 11) == (0, 11)  # 'b': the 11th character, after 10 characters of 11 UTF-16 units
    assert from_lsp(lines, 0, 11) == (1, 11)
    assert to_lsp(lines, 1, 6) == (0, 5) and to_lsp(lines, 1, 7) == (0, 7)  # the emoji is two units wide
    assert from_lsp(lines, 0, 7) == (1, 7)
    for col in range(1, len(lines[0]) + 2):
        assert from_lsp(lines, *to_lsp(lines, 1, col)) == (1, col)
    assert to_lsp(lines, 0, 0) == (0, 0)  # a whole-file span: the start
    assert to_lsp(lines, 99, 5) == (1, 4)  # past the end: clamped to it
    assert token_end(lines, 1, 1) == 2 and token_end(lines, 1, 5) == 9 and token_end(lines, 1, 99) == 99


# -- reading, with recovery -------------------------------------------------------------------------------


def test_statements_split_at_new_lines_and_semicolons_but_not_inside_tables_strings_or_comments() -> None:
    text = 'model m; doc "a;b"\n# c;d\ntrain {\n  batch 1; steps 2\n}\nlstm c(hidden=4)'
    pieces = [text[s:e] for s, e in statements(text)]
    assert pieces == ["model m", ' doc "a;b"', "# c;d", "train {\n  batch 1; steps 2\n}", "lstm c(hidden=4)"]
    table = "train {\n  batch 1; steps 2\n}"
    blanked = "\n".join(" " * len(line) for line in table.split("\n"))
    assert blank_statement(text, text.index("steps")) == text.replace(table, blanked)


def test_each_broken_statement_is_one_error_and_the_rest_is_read() -> None:
    text = ("model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstm c(hidden=4 <- x\nmemory mem(slots=\n"
            "lstm d(hidden=3) <- x\n")
    spec, problems = read_cog(text, "t.cog")
    assert [(d.code, d.span.line) for d in problems] == [("E001", 4), ("E001", 5)]
    assert spec is not None and [b.name for b in spec.blocks] == ["d"]


def test_a_file_without_its_model_statement_yet_is_read() -> None:
    spec, problems = read_cog("input x: 3\nlstm c(hidden=4) <- x\n", "t.cog")
    assert [d.code for d in problems] == ["E007"] and spec is not None and spec.blocks[0].name == "c"


def test_an_unclosed_train_table_takes_the_rest_of_the_file() -> None:
    text = "model m\ninput x: 3\noutput y: 2 = sigmoid(c)\nlstm c(hidden=4) <- x\ntrain {\n  task copy(bits=\n"
    result = analyse(text, "t.cog", "cog")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("E001", 6)]
    assert result.definition("c") is not None  # the blocks are still known


def test_yaml_with_a_syntax_error_shows_it_and_still_knows_the_other_blocks() -> None:
    text = (ROOT / "specs" / "ntm_copy.yaml").read_text().replace("  w:    {kind: write,", "  w:    {kind: wri")
    result = analyse(text, "t.yaml", "yaml")
    assert [d.code for d in result.diagnostics] == ["E001"]
    assert {"ctrl", "mem", "r", "x", "y"} <= set(result.names())


def test_yaml_with_reader_errors_keeps_the_blocks_it_could_build() -> None:
    text = (ROOT / "specs" / "ntm_copy.yaml").read_text().replace("train:", "trian:")
    result = analyse(text, "t.yaml", "yaml")
    assert [d.code for d in result.diagnostics] == ["E006"] and "ctrl" in result.names()


def test_an_exception_in_the_front_end_is_an_e900_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(spec: object) -> list[object]:
        raise KeyError("half-typed")

    monkeypatch.setattr(analysis_module, "check_spec", broken)
    result = analyse((ROOT / "specs" / "ntm_copy.cog").read_text(), "t.cog", "cog")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "E900" and "KeyError" in diagnostic.message and diagnostic.span.line == 1


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_library_spec_has_no_diagnostics_and_its_names_are_indexed(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    result = analyse(text, str(path), "cog" if path.suffix == ".cog" else "yaml")
    assert result.diagnostics == []
    assert result.spec is not None and set(result.names()) == {
        *(i.name for i in result.spec.inputs), *(o.name for o in result.spec.outputs),
        *(b.name for b in result.spec.blocks)}
    lines = lines_of(text)
    for occurrence in result.occurrences:  # each one is where its word is written
        assert lines[occurrence.line - 1][occurrence.col - 1:occurrence.end - 1] == occurrence.name


def test_every_bad_spec_gives_located_diagnostics_and_never_raises() -> None:
    for path in BAD:
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace")  # as an editor shows a file that is not UTF-8
        result = analyse(text, str(path), "cog" if path.suffix == ".cog" else "yaml")
        data_file = "error[E604]" in text.split("\n", 1)[0]  # the editor reads no data files (as --no-data)
        assert result.diagnostics or text.encode() != data or data_file, path.name
        lines = lines_of(text)
        for diagnostic in result.diagnostics:
            assert diagnostic.code != "E900", (path.name, diagnostic.headline())
            assert diagnostic.span.file == str(path)
            assert 0 <= diagnostic.span.line <= len(lines), (path.name, diagnostic.headline())


# -- hover and completion ---------------------------------------------------------------------------------


def _at(text: str, marker: str) -> tuple[str, int, int]:
    """``text`` without ``marker``, and the marker's 1-based line and column."""
    before = text[:text.index(marker)]
    return text.replace(marker, "", 1), before.count("\n") + 1, len(before) - before.rfind("\n")


def _labels(text: str, form: str) -> list[str]:
    clean, line, col = _at(text, "^^")
    return [s.label for s in complete(analyse(clean, f"t.{form}", form, validate=False), line, col)]


def test_completion_in_a_cog_file() -> None:
    base = (ROOT / "specs" / "ntm_copy.cog").read_text()
    assert "layers" in _labels(base.replace("lstm   ctrl(hidden=100)", "lstm   ctrl(hidden=100, ^^)"), "cog")
    assert "hidden" not in _labels(base.replace("lstm   ctrl(hidden=100)", "lstm   ctrl(hidden=100, ^^)"), "cog")
    assert _labels(base.replace("content(cosine) | gate", "content(^^) | gate", 1), "cog") == ["cosine", "dot"]
    assert _labels(base.replace("x, r@prev", "x, r@^^"), "cog") == ["prev"]
    assert {"x", "mem", "r", "w"} <= set(_labels(base.replace("x, r@prev", "x, ^^"), "cog"))
    assert "copy" in _labels(base.replace("copy(bits=8", "^^copy(bits=8"), "cog")
    assert set(_labels(base.replace("copy(bits=8,", "copy(bits=8, ^^"), "cog")) == {"min_len", "max_len"}
    assert {"adam", "sgd"} <= set(_labels(base.replace("rmsprop(", "^^rmsprop("), "cog"))
    assert "seed" in _labels(base.replace("  batch 16", "  ^^batch 16"), "cog")
    assert _labels(base.replace("  task ", "  # a comment ^^\n  task "), "cog") == []
    dnc = (ROOT / "specs" / "dnc_repeat_copy.cog").read_text()
    stages = _labels(dnc.replace("+ allocate", "+ ^^"), "cog")
    assert "allocate" in stages and "shift" not in stages  # the stages a dnc_memory takes


def test_completion_in_a_yaml_spec() -> None:
    base = (ROOT / "specs" / "ntm_copy.yaml").read_text()
    assert "dnc_memory" in _labels(base.replace("{kind: lstm,", "{kind: ^^"), "yaml")
    assert set(_labels(base.replace("hidden: 100,", "hidden: 100, ^^"), "yaml")) == {"layers", "clip", "zoneout"}
    assert "gate" in _labels(base.replace('"content(cosine) | gate', '"content(cosine) | ^^', 1), "yaml")
    assert "clip_norm" in _labels(base.replace("  batch: 16", "  ^^"), "yaml")
    assert "repeat_copy" in _labels(base.replace("{name: copy,", "{name: ^^"), "yaml")
    block_style = base.replace("  ctrl: {kind: lstm, hidden: 100, from: [x, r@prev]}",
                               "  ctrl:\n    kind: lstm\n    ^^\n    from: [x]")
    assert set(_labels(block_style, "yaml")) == {"hidden", "layers", "clip", "zoneout"}


def test_yaml_path_reads_block_and_flow_structure() -> None:
    lines = ["blocks:", "  ctrl: {kind: lstm, from: [x, ", "train:", "  task:", "    name: co"]
    assert yaml_path(lines, 2, len(lines[1]) + 1) == (["blocks", "ctrl"], "from", " ")
    assert yaml_path(lines, 2, len("  ctrl: {kind: ") + 1) == (["blocks", "ctrl"], "kind", " ")
    assert yaml_path(lines, 5, len(lines[4]) + 1) == (["train", "task"], "name", " co")


def test_names_are_found_in_text_that_cannot_be_read() -> None:
    assert lexical_names("model m\ninput x: 3\nlstm c(hid\nmemory mem(", "cog") == {
        "x": "input", "c": "lstm", "mem": "memory"}
    assert lexical_names("blocks:\n  c: {kind: lstm\n  m: {kind: memory}\ninputs:\n  x: 3\n", "yaml") == {
        "c": "lstm", "m": "memory", "x": "input"}


def test_hover_knows_kinds_and_stages_even_in_text_that_cannot_be_read() -> None:
    result = analyse("\x00 lstm content", "t.cog", "cog", validate=False)
    found = hover_text(result, 1, 4)
    assert found is not None and found[0].startswith("**lstm** (kind)") and found[1] == (1, 3, 7)
    assert hover_text(result, 1, 10)[0].startswith("**content** (addressing stage)")  # type: ignore[index]


@pytest.mark.parametrize("name", ["ntm_copy.cog", "dnc_repeat_copy.cog", "ntm_copy.yaml", "kvmemnn_babi.yaml"])
def test_every_prefix_of_a_spec_being_typed_is_read_without_an_internal_error(name: str) -> None:
    """A file as it is typed, cut every few characters: located diagnostics, never an E900 (the front end never
    raises; were it to, the E900 test above shows where it would end up)."""
    text = (ROOT / "specs" / name).read_text()
    form = "cog" if name.endswith(".cog") else "yaml"
    for cut in range(0, len(text) + 1, 11):
        result = analyse(text[:cut], name, form)
        lines = lines_of(text[:cut])
        for diagnostic in result.diagnostics:
            assert diagnostic.code != "E900", (cut, diagnostic.headline())
            assert diagnostic.span.line <= len(lines), (cut, diagnostic.headline())

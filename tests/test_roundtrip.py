"""``cogdsl fmt`` converts without loss: every spec in specs/ round-trips to an identical IR, its comments with it."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogdsl
from cogdsl.cli.command import main
from cogdsl.editor.formatting import format_text
from cogdsl.language import comments
from cogdsl.language.comments import text_comments
from cogdsl.language.emit import to_cog, to_yaml
from cogdsl.language.parse_cog import parse_cog
from cogdsl.language.parse_yaml import parse_yaml

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.*"))


def test_there_are_specs() -> None:
    assert len(SPECS) >= 5


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_round_trip_through_both_forms(path: Path) -> None:
    spec = cogdsl.load(path)
    as_cog = parse_cog(to_cog(spec), "x.cog")
    as_yaml = parse_yaml(to_yaml(spec), "x.yaml")
    assert as_cog == spec
    assert as_yaml == spec
    assert parse_yaml(to_yaml(as_cog), "y.yaml") == spec
    assert parse_cog(to_cog(as_yaml), "y.cog") == spec


def _comments(text: str, form: str) -> list[str]:
    return sorted(comment for _, _, comment in text_comments(text, form))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_comments_come_along_both_ways(path: Path) -> None:
    written = _comments(path.read_text(encoding="utf-8"), "cog" if path.suffix == ".cog" else "yaml")
    assert written or path.name not in ("ntm_copy.cog", "ntm_copy.yaml")  # the library's specs have comments
    spec = cogdsl.load(path)
    for form, text, parse, back in (("cog", to_cog(spec), parse_cog, to_yaml),
                                    ("yaml", to_yaml(spec), parse_yaml, to_cog)):
        assert _comments(text, form) == written, text
        again = parse(text, f"x.{form}")
        assert again == spec
        assert _comments(back(again), "yaml" if form == "cog" else "cog") == written


def test_the_editor_formats_only_when_every_comment_comes_along(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (SPECS[0].parent / "ntm_copy.cog").read_text()
    formatted, reason = format_text(text, "ntm_copy.cog", "cog")
    assert reason is None and formatted is not None and "# 8 data bits + delimiter" in formatted
    monkeypatch.setattr(comments, "spec_comments", lambda spec: comments.Comments())  # comments lost
    monkeypatch.setattr("cogdsl.language.emit.spec_comments", comments.spec_comments)
    formatted, reason = format_text(text, "ntm_copy.cog", "cog")
    assert formatted is None and reason is not None and "cogdsl fmt would write 0" in reason


def test_a_comment_stays_with_its_entry() -> None:
    spec = parse_cog("# the header\ncogdsl 1\nmodel m\ninput x: 3  # three\noutput y: 2 = ctrl\n"
                     "# the controller\n# of two lines\nlstm ctrl(hidden=4) <- x\n"
                     "train {\n  # how long\n  steps 10; seed 1  # the seed\n}\n# the end\n", "c.cog")
    assert to_yaml(spec).splitlines() == [
        "# the header", "cogdsl: 1", "model: m", "inputs:", "  x: 3  # three", "outputs:",
        "  y: {size: 2, from: [ctrl]}", "blocks:", "  # the controller", "  # of two lines",
        "  ctrl: {kind: lstm, hidden: 4, from: [x]}", "train:", "  # how long", "  steps: 10", "  seed: 1  # the seed",
        "# the end"]
    quoted = parse_cog("cogdsl 1\nmodel m\ninput x: 3\noutput y: 2 = on\n# the block\nlstm on(hidden=4) <- x  # on\n",
                       "q.cog")  # a name PyYAML writes in quotes
    assert "  # the block\n  'on': {kind: lstm, hidden: 4, from: [x]}  # on\n" in to_yaml(quoted)
    long = parse_yaml("cogdsl: 1\nmodel: m\ndoc: " + "word " * 40 + " # long\ninputs: {x: 3}\n"
                      "outputs: {y: {size: 2, from: [x]}}\nblocks: {}\n", "l.yaml")
    text = to_yaml(long)  # PyYAML wraps the doc: its comment goes before it, where it cannot cut it
    assert text.splitlines()[2] == "# long" and text.splitlines()[3].startswith("doc: word")
    assert text.splitlines()[4].startswith("  word")
    assert parse_yaml(text, "m.yaml") == long


def test_round_trip_detects_a_difference() -> None:
    spec = cogdsl.load(SPECS[0].parent / "ntm_copy.yaml")
    text = to_cog(spec)
    assert "slots=128" in text
    changed = parse_cog(text.replace("slots=128", "slots=64"), "x.cog")
    assert changed != spec


def test_yaml_and_cog_copy_specs_are_the_same_model() -> None:
    root = SPECS[0].parent
    assert cogdsl.load(root / "ntm_copy.yaml") == cogdsl.load(root / "ntm_copy.cog")


def test_fmt_cli_prints_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = SPECS[0].parent / "ntm_copy.yaml"
    assert main(["fmt", "--to", "cog", str(source)]) == 0
    printed = capsys.readouterr().out
    assert parse_cog(printed, "p.cog") == cogdsl.load(source)
    target = tmp_path / "out.cog"
    target.write_text("mine")
    assert main(["fmt", "--to", "cog", str(source), "-o", str(target)]) == 1
    assert target.read_text() == "mine"
    assert main(["fmt", "--to", "cog", str(source), "-o", str(target), "--force"]) == 0
    assert cogdsl.load(target) == cogdsl.load(source)


def test_strings_with_quotes_and_newlines_round_trip() -> None:
    spec = parse_yaml('cogdsl: 1\nmodel: m\ndoc: "say \\"hi\\"\\nand \\\\ bye"\ninputs: {x: 1}\n'
                      "outputs: {y: {size: 1, from: [c]}}\nblocks: {c: {kind: mlp, hidden: 2, from: [x]}}\n", "d.yaml")
    assert parse_cog(to_cog(spec), "d.cog") == spec

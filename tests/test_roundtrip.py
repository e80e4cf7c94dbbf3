"""``cogdsl fmt`` converts without loss: every spec in specs/ round-trips to an identical IR."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogdsl
from cogdsl.cli.command import main
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

"""The TextMate grammar of .cog files (editors/vscode/syntaxes/cog.tmLanguage.json) and the VS Code extension
folder: the grammar's expressions compile, and on every .cog spec of the library they find each block's kind,
its name and its addressing stages where the scopes say; the extension's manifest names files that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cogdsl.compiler.pipeline import read_spec_file

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "cog.tmLanguage.json").read_text())
COG_SPECS = sorted((ROOT / "specs").glob("*.cog"))


def _expressions(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node[k] for k in ("match", "begin", "end") if isinstance(node.get(k), str)]
        return found + [e for value in node.values() for e in _expressions(value)]
    if isinstance(node, list):
        return [e for value in node for e in _expressions(value)]
    return []


def test_every_expression_compiles() -> None:
    expressions = _expressions(GRAMMAR)
    assert len(expressions) > 15
    for expression in expressions:
        re.compile(expression, re.MULTILINE)  # the grammar keeps to what Oniguruma and Python's re share


def _rule(name: str) -> re.Pattern[str]:
    return re.compile(GRAMMAR["repository"][name]["match"])


@pytest.mark.parametrize("path", COG_SPECS, ids=lambda p: p.name)
def test_kinds_names_and_stages_get_their_scopes(path: Path) -> None:
    spec = read_spec_file(path)
    lines = path.read_text().split("\n")
    stage_rule = next(p for p in GRAMMAR["repository"]["expression"]["patterns"]
                      if "support.function.stage.cog" in json.dumps(p))
    stage = re.compile(stage_rule["match"])
    for block in spec.blocks:
        line = lines[block.kind_span.line - 1]
        assert not _rule("header").match(line) and not _rule("io").match(line)
        found = _rule("block").match(line[line.rfind(";", 0, block.kind_span.col - 1) + 1:])  # its statement
        assert found is not None and found.groups() == (block.kind, block.name), line
        if block.address is not None and block.address.span.line == block.kind_span.line:
            assert [m.group(1) for m in stage.finditer(line)] == [s.name for s in block.address.stages]
    assert GRAMMAR["repository"]["block"]["captures"]["1"]["name"].startswith("entity.name.type")


def test_the_extension_manifest_names_its_files() -> None:
    manifest = json.loads((VSCODE / "package.json").read_text())
    assert (VSCODE / manifest["main"]).is_file()
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".cog"] and (VSCODE / language["configuration"]).is_file()
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] and (VSCODE / grammar["path"]).is_file()
    assert manifest["contributes"]["configuration"]["properties"]["cogdsl.server"]["default"] == ["cogdsl", "lsp"]
    assert "cogdsl schema" in manifest["scripts"]["schema"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_extension_is_javascript_that_parses() -> None:
    done = subprocess.run(["node", "--check", str(VSCODE / "extension.js")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

"""``cogdsl schema``: the JSON Schema of YAML specs, generated from the registries, checked with jsonschema: every
spec of the library passes it, and the bad specs it can judge fail it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cogdsl.cli.command import main
from cogdsl.compiler.pipeline import read_spec_file
from cogdsl.editor.schema import schema_text, spec_schema
from cogdsl.language.emit import to_yaml
from cogdsl.language.parse_yaml import PositionLoader

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p for p in (ROOT / "specs").iterdir() if p.suffix in (".cog", ".yaml"))

# The codes of the bad-spec corpus that a field-by-field schema judges: a kind, a parameter, its type and range,
# a field, a section, a stage, a task (not names, cycles, sizes, or NaN and inf, which JSON has no words for).
SCHEMA_CODES = {"E004", "E006", "E201", "E202", "E203", "E204", "E205", "E206", "E305", "E307", "E308", "E401",
                "E601", "E602"}
NOT_JUDGED = ("nan", "inf", "address")  # file names of the corpus whose problem is one of those


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _data(text: str) -> Any:
    """A YAML spec's data as the YAML language server reads it (YAML 1.2 floats such as 1e-4 included)."""
    return yaml.load(text, Loader=PositionLoader)  # a SafeLoader subclass: no object is constructed


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_library_spec_passes(validator: Any, path: Path) -> None:
    text = path.read_text(encoding="utf-8") if path.suffix == ".yaml" else to_yaml(read_spec_file(path))
    assert [e.message for e in validator.iter_errors(_data(text))] == []


def _judged() -> list[tuple[Path, str]]:
    found = []
    for path in sorted((ROOT / "tests" / "bad_specs").glob("*.yaml")):
        first = path.read_bytes().decode("utf-8", errors="replace").split("\n", 1)[0]
        code = re.search(r"error\[(E\d{3})\]", first)
        if code and code.group(1) in SCHEMA_CODES and not any(word in path.name for word in NOT_JUDGED):
            found.append((path, code.group(1)))
    return found


def test_the_bad_specs_it_can_judge_fail(validator: Any) -> None:
    judged = _judged()
    assert len(judged) >= 30
    passed = []
    for path, code in judged:
        try:
            data = _data(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue  # not YAML at all: no schema is asked
        if validator.is_valid(data):
            passed.append(f"{path.name} ({code})")
    assert passed == []


GOOD = {"cogdsl": 1, "model": "m", "inputs": {"x": 3}, "outputs": {"y": {"size": 2, "from": ["c", "r"]}},
        "blocks": {"c": {"kind": "lstm", "hidden": 8, "from": ["x", "r@prev"]},
                   "mem": {"kind": "memory", "slots": 8, "width": 4},
                   "r": {"kind": "read", "memory": "mem", "by": "c", "address": "content(cosine) | sharpen"},
                   "w": {"kind": "write", "memory": "mem", "by": "c", "address": "content(cosine)"}},
        "train": {"task": {"name": "copy", "bits": 2}, "optimizer": "adam", "batch": 4}}


@pytest.mark.parametrize(("where", "value"), [
    (("blocks", "c", "kind"), "lstn"),                  # unknown kind
    (("blocks", "c", "hidden"), 0),                     # out of range
    (("blocks", "c", "hidden"), "8"),                   # wrong type
    (("blocks", "c", "hiden"), 8),                      # unknown parameter
    (("blocks", "mem", "memory"), "x"),                 # a field the kind does not take
    (("blocks", "r", "address"), "content(cosine) | sharpn"),  # unknown stage
    (("blocks", "r", "by"), "c@prev"),                  # a delay where none is taken
    (("blocks", "c", "from"), ["x", "r@next"]),         # unknown delay
    (("outputs", "y", "activation"), "sigmoyd"),
    (("inputs", "x"), {"kind": "sentences", "size": 3}),  # sentences take a vocab
    (("train", "task", "name"), "cpy"),
    (("train", "task", "bits"), -1),
    (("train", "optimizer"), {"name": "adam", "lr": "fast"}),
    (("train", "batchsize"), 4),
    (("cogdsl",), 2),
    (("extra",), 1),
])
def test_known_bad_specs_fail(validator: Any, where: tuple[str, ...], value: Any) -> None:
    assert validator.is_valid(GOOD)
    bad = json.loads(json.dumps(GOOD))
    place = bad
    for key in where[:-1]:
        place = place[key]
    place[where[-1]] = value
    assert not validator.is_valid(bad)


def test_a_block_without_its_required_fields_fails(validator: Any) -> None:
    bad = json.loads(json.dumps(GOOD))
    del bad["blocks"]["r"]["memory"]
    assert not validator.is_valid(bad)
    del bad["blocks"]["r"]
    del bad["blocks"]["mem"]["slots"]
    assert not validator.is_valid(bad)


def test_descriptions_defaults_and_ranges_come_from_the_registry() -> None:
    lstm = spec_schema()["$defs"]["kind_lstm"]
    hidden = lstm["properties"]["hidden"]
    assert hidden["type"] == "integer" and hidden["minimum"] == 1 and "units per layer" in hidden["description"]
    assert lstm["properties"]["layers"]["default"] == 1 and "hidden" in lstm["required"]
    content = spec_schema()["$defs"]["kind_read"]["properties"]["address"]
    assert "sharpen" in content["pattern"] and "sharpen" in content["description"]
    train = spec_schema()["$defs"]["train"]["properties"]
    assert train["batch"]["default"] == 16 and {"$ref": "#/$defs/task_copy"} in train["task"]["oneOf"]


def test_the_schema_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "spec.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert main(["schema", "-o", str(out)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["schema", "-o", str(out), "--force"]) == 0
    assert main(["schema", "-o", str(tmp_path)]) == 1
    capsys.readouterr()
    assert main(["schema"]) == 0 and capsys.readouterr().out == schema_text() == out.read_text()

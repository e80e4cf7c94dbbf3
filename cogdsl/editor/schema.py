"""``cogdsl schema``: a JSON Schema (draft 2020-12) of the YAML form of a spec, generated from the registries.

Every block kind is one alternative of a block (``oneOf``, told apart by its ``kind``), with its parameters
(type, range or allowed values, default, description) and the wiring fields it accepts (``from``,
``memory``, ``by``, ``address``), those it requires required; an ``address`` must be a pipe or a mixture of
the registered addressing stages. The ``train:`` section has its settings, and ``task``, ``optimizer`` and
``schedule`` each one alternative per registered task, optimizer and schedule with its parameters.

The schema checks what a spec says field by field; what needs the whole spec (names that are defined,
cycles, which stages a memory takes, sizes) is ``cogdsl validate``'s, and the language server's. With the
schema, the YAML language server (VS Code's YAML extension, Neovim's yamlls) completes and checks a spec
that starts with ``# yaml-language-server: $schema=PATH``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cogdsl.editor import catalog
from cogdsl.language.spec import SUPPORTED_VERSIONS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
SOURCE_PATTERN = r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(@\s*prev\s*)?$"
MAX_SIZE = 2**31 - 1


def _param(param: catalog.ParamDoc) -> dict[str, Any]:
    """One parameter's schema: its JSON type, range or allowed values, default and description."""
    found: dict[str, Any] = {"type": catalog.JSON_TYPES[param.type]}
    if param.choices is not None:
        found["enum"] = list(param.choices)
    if param.minimum is not None:
        found["minimum"] = param.minimum
    if param.maximum is not None:
        found["maximum"] = param.maximum
    if not param.required:
        found["default"] = param.default
    found["description"] = (param.doc + ". " if param.doc else "") + f"{param.summary()}; {param.allowed()}"
    return found


def _params(entry: catalog.Entry) -> dict[str, Any]:
    return {p.name: _param(p) for p in entry.params}


def address_pattern() -> str:
    """A regular expression that an addressing expression matches: registered stages, each with an optional
    argument list, joined by ``|`` (a pipe) and ``+`` (a mixture)."""
    names = "|".join(sorted((re.escape(s) for s in catalog.stages()), key=len, reverse=True))
    stage = rf"\s*({names})\s*(\([^()]*\))?\s*"
    return rf"^{stage}([|+]{stage})*$"


def _source() -> dict[str, Any]:
    return {"type": "string", "pattern": SOURCE_PATTERN, "description": "a block or input, 'name' or "
            "'name@prev' (its value at the previous step)"}


def _sources() -> dict[str, Any]:
    return {"oneOf": [_source(), {"type": "array", "items": _source()}],
            "description": "the values it reads: a list of names (name@prev: at the previous step)"}


def _wiring(field: str) -> dict[str, Any]:
    from cogdsl.compiler.validate import FIELD_SPELLING

    if field == "from":
        return _sources()
    if field == "address":
        stages = ", ".join(catalog.stages())
        return {"type": "string", "pattern": address_pattern(), "description": "the addressing expression: stages "
                f"piped with '|' or mixed with '+' ({stages})"}
    return {"type": "string", "pattern": NAME_PATTERN, "description": FIELD_SPELLING.get(field, field)}


def _kind(entry: catalog.Entry) -> dict[str, Any]:
    properties: dict[str, Any] = {"kind": {"const": entry.name, "description": entry.doc}}
    properties.update({field: _wiring(field) for field in sorted(entry.extra["accepts"])})
    properties.update(_params(entry))
    required = ["kind", *sorted(entry.extra["requires"]), *(p.name for p in entry.params if p.required)]
    return {"type": "object", "title": entry.name, "description": entry.doc, "properties": properties,
            "required": required, "additionalProperties": False}


def _named(entry: catalog.Entry) -> dict[str, Any]:
    """A task, optimizer or schedule table: ``{name: copy, bits: 8}``."""
    properties: dict[str, Any] = {"name": {"const": entry.name, "description": entry.doc}}
    properties.update(_params(entry))
    return {"type": "object", "title": entry.name, "description": entry.doc, "properties": properties,
            "required": ["name"], "additionalProperties": False}


def _table(name: str) -> dict[str, Any]:
    entries = catalog.table(name)
    return {"description": catalog.TRAIN_TABLES[name], "oneOf": [
        {"type": "string", "enum": list(entries), "description": f"a {name} with its default parameters"},
        *({"$ref": f"#/$defs/{name}_{key}"} for key in entries)]}


def _input() -> dict[str, Any]:
    kinds = catalog.input_kinds()
    words = sorted(k for k, key in kinds.items() if key != "size")
    size = {"type": "integer", "minimum": 1, "maximum": MAX_SIZE}
    return {"description": "an input: its size (x: 9), nothing (the task's size), or its kind and size",
            "anyOf": [size | {"description": "a vector of this many channels"}, {"type": "null"},
                      {"type": "object", "additionalProperties": False,
                       "properties": {"kind": {"enum": list(kinds), "description": catalog.INPUT_FIELDS["kind"]},
                                      "size": size | {"description": catalog.INPUT_FIELDS["size"]},
                                      "vocab": size | {"description": catalog.INPUT_FIELDS["vocab"]}},
                       "if": {"properties": {"kind": {"enum": words}}, "required": ["kind"]},
                       "then": {"not": {"required": ["size"]}}, "else": {"not": {"required": ["vocab"]}}}]}


def _output() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["from"], "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE, "description": catalog.OUTPUT_FIELDS["size"]},
        "from": _sources() | {"description": catalog.OUTPUT_FIELDS["from"]},
        "activation": {"enum": list(catalog.activations()), "description": catalog.OUTPUT_FIELDS["activation"]}}}


def _train() -> dict[str, Any]:
    properties: dict[str, Any] = {name: _table(name) for name in catalog.TRAIN_TABLES}
    properties.update({name: _param(p) for name, p in catalog.settings().items()})
    return {"type": "object", "description": catalog.SECTIONS["train"], "properties": properties,
            "additionalProperties": False}


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a YAML spec, as a dict."""
    defs: dict[str, Any] = {f"kind_{name}": _kind(entry) for name, entry in catalog.kinds().items()}
    for table in catalog.TRAIN_TABLES:
        defs.update({f"{table}_{name}": _named(entry) for name, entry in catalog.table(table).items()})
    defs["input"] = _input()
    defs["output"] = _output()
    defs["block"] = {"description": "a block: its kind, its wiring and its parameters",
                     "type": "object", "required": ["kind"],
                     "properties": {"kind": {"enum": list(catalog.kinds()), "description": "the block's kind"}},
                     "oneOf": [{"$ref": f"#/$defs/kind_{name}"} for name in catalog.kinds()]}
    defs["train"] = _train()

    def section(what: str) -> dict[str, Any]:
        return {"type": ["object", "null"], "description": catalog.SECTIONS[f"{what}s"],
                "propertyNames": {"pattern": NAME_PATTERN}, "additionalProperties": {"$ref": f"#/$defs/{what}"}}

    return {
        "$schema": DRAFT,
        "$id": "urn:cogdsl:spec",
        "title": "cogdsl spec",
        "description": "A cogdsl spec in its YAML form (generated by 'cogdsl schema' from cogdsl's registries)",
        "type": "object",
        "required": ["cogdsl", "model"],
        "additionalProperties": False,
        "properties": {
            "cogdsl": {"enum": list(SUPPORTED_VERSIONS), "description": catalog.SECTIONS["cogdsl"]},
            "model": {"type": "string", "pattern": NAME_PATTERN, "description": catalog.SECTIONS["model"]},
            "doc": {"type": "string", "description": catalog.SECTIONS["doc"]},
            "inputs": section("input"),
            "outputs": section("output"),
            "blocks": section("block"),
            "train": {"$ref": "#/$defs/train"},
        },
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as the JSON ``cogdsl schema`` writes (two-space indents, a final new line)."""
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"

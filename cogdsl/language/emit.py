"""Write a Spec back out as .cog text or YAML, without loss: parsing the output gives an equal Spec, and the
comments of the text it was read from come along (:mod:`cogdsl.language.comments`).

``cogdsl fmt --to cog|yaml FILE`` uses these. Comments are not part of the IR: they are read again from the
spec's source text, so a spec built in Python has none.
"""

from __future__ import annotations

from typing import Any

import yaml

from cogdsl.language.comments import Entry, spec_comments, with_yaml_comments
from cogdsl.language.spec import SIZE_KEYS, Block, Input, Output, Ref, Spec, Value


def quote(text: str) -> str:
    """A .cog string literal; the inverse of :func:`cogdsl.language.parse_cog.unquote`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _scalar_cog(data: Any) -> str:
    if isinstance(data, bool):
        return "true" if data else "false"
    if data is None:
        return "none"
    if isinstance(data, str):
        keywords = {"true", "false", "none", "on", "by", "model", "input", "output", "train", "doc", "cogdsl"}
        if data.isidentifier() and data not in keywords:
            return data
        return quote(data)
    if isinstance(data, float):
        return repr(data)
    return str(data)


def _value_cog(value: Value) -> str:
    if isinstance(value.data, list):
        return "[" + ", ".join(_value_cog(v) for v in value.data) + "]"
    return _scalar_cog(value.data)


def _params_cog(params: dict[str, Value]) -> str:
    return ", ".join(f"{k}={_value_cog(v)}" for k, v in params.items())


def _refs_cog(refs: tuple[Ref, ...]) -> str:
    return ", ".join(str(r) for r in refs)


def _table_cog(table: dict[str, Value], indent: str) -> list[str]:
    lines = []
    for key, value in table.items():
        if isinstance(value.data, dict):
            fields = dict(value.data)
            name = fields.pop("name", None)
            nested = any(isinstance(v.data, dict) for v in fields.values())
            if name is not None and isinstance(name.data, str) and not nested:
                lines.append(f"{indent}{key} {_scalar_cog(name.data)}({_params_cog(fields)})")
            else:
                lines.append(f"{indent}{key} {{")
                lines += _table_cog(value.data, indent + "  ")
                lines.append(f"{indent}}}")
        else:
            lines.append(f"{indent}{key} {_value_cog(value)}")
    return lines


def _block_cog(block: Block) -> str:
    text = f"{block.kind} {block.name}"
    if block.params:
        text += f"({_params_cog(block.params)})"
    if block.memory is not None:
        text += f" on {block.memory}"
    if block.by is not None:
        text += f" by {block.by}"
    if block.sources:
        text += f" <- {_refs_cog(block.sources)}"
    if block.address is not None:
        text += f": {block.address}"
    return text


def _output_cog(output: Output) -> str:
    sources = _refs_cog(output.sources)
    body = f"{output.activation.data}({sources})" if output.activation is not None else sources
    size = f": {output.size.data}" if output.size.data is not None else ""
    return f"output {output.name}{size} = {body}"


def _input_cog(item: Input) -> str:
    """What follows ``input NAME``: ``: 9``, ``: sentences(vocab=69)``, ``: sentences`` or nothing (the task's
    sizes)."""
    if item.size.data is None:
        return "" if item.is_vector else f": {item.kind.data}"
    return f": {item.size.data}" if item.is_vector else f": {item.kind.data}({_size_key(item)}={item.size.data})"


def _size_key(item: Input) -> str:
    return SIZE_KEYS.get(str(item.kind.data), "vocab")


def _input_yaml(item: Input) -> Any:
    if item.size.data is None:
        return _FlowMap(kind=item.kind.data)
    return item.size.data if item.is_vector else _FlowMap(kind=item.kind.data, **{_size_key(item): item.size.data})


def to_cog(spec: Spec) -> str:
    """The spec as .cog text, with the comments of the text it was read from (:mod:`cogdsl.language.comments`)."""
    comments = spec_comments(spec)
    lines: list[str] = []

    def entry(key: Entry, text: str, indent: str = "") -> None:
        lines.extend(comments.before(key, indent))
        lines.append(comments.after(key, text))

    entry(("header", "cogdsl"), f"cogdsl {spec.version.data}")
    entry(("header", "model"), f"model {spec.name}")
    if spec.doc is not None:
        entry(("header", "doc"), f"doc {quote(str(spec.doc.data))}")
    lines.append("")
    for i in spec.inputs:
        entry(("inputs", i.name), f"input  {i.name}{_input_cog(i)}")
    for o in spec.outputs:
        entry(("outputs", o.name), _output_cog(o))
    lines.append("")
    for b in spec.blocks:
        entry(("blocks", b.name), _block_cog(b))
    if spec.train is not None:
        lines += ["", "train {"]
        for key, value in spec.train.data.items():
            first, *rest = _table_cog({key: value}, "  ")
            entry(("train", key), first, "  ")
            lines += rest
        lines.append("}")
    return "\n".join(lines + comments.end) + "\n"


class _Flow(list):
    """A list YAML writes in flow style: [x, r@prev]."""


class _FlowMap(dict):
    """A mapping YAML writes in flow style: {kind: lstm, hidden: 100}."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(_FlowMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True))


def to_yaml(spec: Spec) -> str:
    """The spec as YAML in the documented schema."""
    doc: dict[str, Any] = {"cogdsl": spec.version.data, "model": spec.name}
    if spec.doc is not None:
        doc["doc"] = spec.doc.data
    doc["inputs"] = {i.name: _input_yaml(i) for i in spec.inputs}
    outputs = {}
    for o in spec.outputs:
        entry = _FlowMap(**({"size": o.size.data} if o.size.data is not None else {}),
                         **{"from": _Flow(str(r) for r in o.sources)})
        if o.activation is not None:
            entry["activation"] = o.activation.data
        outputs[o.name] = entry
    doc["outputs"] = outputs
    blocks = {}
    for b in spec.blocks:
        entry = _FlowMap(kind=b.kind)
        entry.update({k: v.plain() for k, v in b.params.items()})
        if b.sources:
            entry["from"] = _Flow(str(r) for r in b.sources)
        if b.memory is not None:
            entry["memory"] = str(b.memory)
        if b.by is not None:
            entry["by"] = str(b.by)
        if b.address is not None:
            entry["address"] = str(b.address)
        blocks[b.name] = entry
    doc["blocks"] = blocks
    if spec.train is not None:
        doc["train"] = {k: _FlowMap(v) if isinstance(v, dict) else v for k, v in spec.train.plain().items()}
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)
    return with_yaml_comments(text, spec_comments(spec))

"""Read the YAML form of a spec into the IR, keeping the line and column of every key and value.

The text is *composed* (not constructed) with a subclass of PyYAML's SafeLoader, so no
tag can build a Python object: a tag outside YAML's standard scalar and collection tags
(``!!python/object``, ``!custom``) is reported as an error at its position. Duplicate
keys, which ``yaml.safe_load`` silently drops, are errors. The ``address:`` and ``from:``
strings are parsed by the .cog grammar (:mod:`cogdsl.parse_cog`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from cogdsl.errors import Diagnostic, DiagnosticSink, Span, SpecError, SpecSyntaxError, hint_for
from cogdsl.parse_cog import parse_address, parse_source
from cogdsl.spec import SIZE_KEYS, Address, Block, Input, Output, Ref, Spec, Value

_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}

TOP_LEVEL = ("cogdsl", "model", "doc", "inputs", "outputs", "blocks", "train")
BLOCK_FIELDS = ("kind", "from", "memory", "by", "address")
OUTPUT_FIELDS = ("size", "from", "activation")


# What a value with a refused tag becomes: already reported, so later checks stay quiet.
REPORTED: Any = type("Reported", (), {"__repr__": lambda self: "<refused tag>"})()
NODE_BUDGET = 100_000


class PositionLoader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``1e-4`` (YAML 1.1 wants ``1.0e-4``)."""


PositionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _Reader:
    def __init__(self, file: str, sink: DiagnosticSink):
        self.file = file
        self.sink = sink
        self.loader = PositionLoader("")
        self.budget = NODE_BUDGET

    def span(self, node: yaml.Node) -> Span:
        return Span(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def text_span(self, node: yaml.ScalarNode) -> Span:
        """Where the characters of a scalar start: after an opening quote, or on the line after '|' or '>'."""
        span = self.span(node)
        if node.style in ("|", ">"):
            buffer, pointer = node.start_mark.buffer, node.start_mark.pointer
            if buffer is not None:
                line_end = buffer.find("\n", pointer)
                first = line_end + 1
                while first < len(buffer) and buffer[first] == " ":
                    first += 1
                return Span(span.file, span.line + 1, first - line_end)
        return Span(span.file, span.line, span.col + (1 if node.style in ("'", '"') else 0))

    def value(self, node: yaml.Node) -> Value:
        """A node as a located value; tags that would construct objects are reported."""
        span = self.span(node)
        self.budget -= 1
        if self.budget < 0:
            raise SpecError([Diagnostic("E005", f"the spec expands to more than {NODE_BUDGET:,} YAML nodes", span,
                                        "aliases (*name) that refer to each other multiply; write the values out")])
        if node.tag not in _STANDARD_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.sink.error("E002", f"YAML tag '{tag}' is not allowed", span,
                            "specs hold plain data: strings, numbers, lists and mappings")
            return _Node(REPORTED, span, node)
        if isinstance(node, yaml.MappingNode):
            return _Node(self.mapping(node), span, node)
        if isinstance(node, yaml.SequenceNode):
            return _Node([self.value(item) for item in node.value], span, node)
        data = self.loader.construct_object(node, deep=True)
        if node.tag.endswith(":timestamp"):
            data = node.value
        return _Node(data, span, node)

    def mapping(self, node: yaml.MappingNode) -> dict[str, Value]:
        result: dict[str, Value] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key.data, str):
                self.sink.error("E005", f"keys must be names, found {key.data!r}", key.span)
                continue
            if key.data in result:
                first = result[key.data].span
                self.sink.error("E003", f"duplicate key '{key.data}'", key.span,
                                f"it is first given at line {first.line}; remove one of them")
                continue
            value = self.value(value_node)
            object.__setattr__(value, "key_span", key.span)
            result[key.data] = value
        return result


class _Node(Value):
    """A value still holding its YAML node, and (for a mapping entry) where its key is."""

    def __init__(self, data: Any, span: Span, node: yaml.Node):
        super().__init__(data, span)
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "key_span", span)


def _strip(value: Value) -> Value:
    """Plain Values (no YAML bookkeeping), so the IR compares equal whichever form it came from."""
    if isinstance(value.data, dict):
        return Value({k: _strip(v) for k, v in value.data.items()}, value.span,
                     {k: getattr(v, "key_span", v.span) for k, v in value.data.items()})
    if isinstance(value.data, list):
        return Value([_strip(v) for v in value.data], value.span)
    return Value(None if value.data is REPORTED else value.data, value.span)


def _type_name(data: Any) -> str:
    if isinstance(data, dict):
        return "a mapping"
    if isinstance(data, list):
        return "a list"
    if data is None:
        return "nothing"
    return f"{type(data).__name__} {data!r}"


def parse_yaml(text: str, file: str = "<string>") -> Spec:
    """Parse a YAML spec into a :class:`Spec`; raises SpecSyntaxError or SpecError with every problem found."""
    sink = DiagnosticSink()
    try:
        root = yaml.compose(text, Loader=PositionLoader)
    except yaml.MarkedYAMLError as err:
        raise SpecSyntaxError([_yaml_syntax_error(err, file)], {file: text}) from None
    if root is None:
        raise SpecError([_diag("E007", "the spec is empty", Span(file, 1, 1),
                               "a spec needs at least 'cogdsl: 1' and 'model: NAME'")], {file: text})
    reader = _Reader(file, sink)
    top = reader.value(root)
    spec = None
    if not isinstance(top.data, dict):
        sink.error("E005", f"a spec is a mapping of sections, found {_type_name(top.data)}", top.span)
    else:
        spec = _build(top.data, reader, sink, text)
    if sink or spec is None:
        # a value whose tag was refused is reported once, not again as the wrong type
        refused = {d.span for d in sink.items if d.code == "E002"}
        items = [d for d in sink.items if d.code == "E002" or d.span not in refused]
        raise SpecError(items, {file: text})
    return spec


def _yaml_syntax_error(err: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    """PyYAML's parser error in words about the spec rather than about the parser."""
    mark = err.problem_mark or err.context_mark
    span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
    problem = err.problem or "invalid YAML"
    context = err.context or ""
    hint = None
    if "'\\t'" in problem or "\\t" in problem:
        problem, hint = "a tab character", "YAML indents with spaces, not tabs"
    elif "expected <block end>" in problem:
        problem, hint = "the indentation does not line up", "keys of one mapping must start in the same column"
    elif "flow mapping" in context or "flow sequence" in context:
        opener = "{" if "mapping" in context else "["
        where = err.context_mark
        problem = f"'{opener}' is not closed" if "expected ','" in problem or "end of" in problem else problem
        if where is not None:
            hint = f"the '{opener}' opened at line {where.line + 1}, column {where.column + 1}"
    elif context:
        hint = context
    return Diagnostic("E001", f"YAML syntax error: {problem}", span, hint)


def _diag(code: str, message: str, span: Span, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, span, hint)


def _build(top: dict[str, Value], reader: _Reader, sink: DiagnosticSink, text: str) -> Spec | None:
    file = reader.file
    for key, value in top.items():
        if key not in TOP_LEVEL:
            sink.error("E006", f"unknown section '{key}'", value.key_span, hint_for(key, TOP_LEVEL, "sections"))
    version = top.get("cogdsl")
    if version is None:
        sink.error("E007", "missing 'cogdsl:' format version", Span(file, 1, 1), "add 'cogdsl: 1' as the first line")
        version = Value(1)
    model = top.get("model")
    if model is None:
        sink.error("E007", "missing 'model:' name", Span(file, 1, 1), "add 'model: NAME'")
        return None
    if model.data is not REPORTED and (not isinstance(model.data, str) or not model.data.isidentifier()):
        sink.error("E005", f"'model' must be a name, found {_type_name(model.data)}", model.span)
    doc = top.get("doc")
    if doc is not None and doc.data is not REPORTED and not isinstance(doc.data, str):
        sink.error("E005", f"'doc' must be a string, found {_type_name(doc.data)}", doc.span)

    inputs = [_input(name, value, sink) for name, value in _section(top, "inputs", reader, sink).items()]
    outputs = [
        _output(name, value, reader, sink) for name, value in _section(top, "outputs", reader, sink).items()
    ]
    blocks = [_block(name, value, reader, sink) for name, value in _section(top, "blocks", reader, sink).items()]
    train = top.get("train")
    if train is not None and not isinstance(train.data, dict):
        sink.error("E005", f"'train' must be a mapping, found {_type_name(train.data)}", train.span)
        train = None
    return Spec(
        model=Value(model.data, model.span),
        version=Value(version.data, version.span),
        doc=_strip(doc) if doc is not None else None,
        inputs=tuple(inputs),
        outputs=tuple(o for o in outputs if o is not None),
        blocks=tuple(b for b in blocks if b is not None),
        train=_strip(train) if train is not None else None,
        file=file,
        source=text,
    )


def _section(top: dict[str, Value], name: str, reader: _Reader, sink: DiagnosticSink) -> dict[str, Value]:
    value = top.get(name)
    if value is None or value.data is None:
        return {}
    if not isinstance(value.data, dict):
        sink.error("E005", f"'{name}' must be a mapping of names, found {_type_name(value.data)}", value.span)
        return {}
    return value.data


def _refs(value: Value, reader: _Reader, sink: DiagnosticSink) -> tuple[Ref, ...]:
    items = value.data if isinstance(value.data, list) else [value]
    refs = []
    for item in items:
        if not isinstance(item.data, str):
            sink.error("E005", f"a source must be a name such as 'x' or 'r@prev', found {_type_name(item.data)}",
                       item.span)
            continue
        ref = _expression(parse_source, item, reader, sink)
        if ref is not None:
            refs.append(ref)
    return tuple(refs)


_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}


def _char_positions(node: yaml.ScalarNode, file: str) -> list[Span] | None:
    """Where each character of a scalar's text stands in the file, for the scalars whose text is
    not a plain slice of one line: double-quoted strings with escapes, and '|' or '>' blocks."""
    buffer, start, end = node.start_mark.buffer, node.start_mark.pointer, node.end_mark.pointer
    if buffer is None:
        return None
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    positions: list[Span] = []
    if node.style == '"' and "\\" in buffer[start:end]:
        i, col = start + 1, col + 1
        while i < end - 1:
            step = _ESCAPE_LENGTHS.get(buffer[i + 1], 2) if buffer[i] == "\\" else 1
            positions.append(Span(file, line, col))
            i, col = i + step, col + step
        return positions
    if node.style in ("|", ">"):
        for offset, text in enumerate(buffer[start:end].split("\n")[1:], start=1):
            stripped = text.lstrip(" ")
            if not stripped:
                continue
            first = len(text) - len(stripped) + 1
            positions += [Span(file, line + offset, first + k) for k in range(len(stripped) + 1)]
        return positions
    return None


def _expression(parse, value: Value, reader: _Reader, sink: DiagnosticSink):
    node = getattr(value, "node", None)
    span = reader.text_span(node) if isinstance(node, yaml.ScalarNode) else value.span
    try:
        return parse(value.data, span)
    except SpecError as err:
        positions = _char_positions(node, reader.file) if isinstance(node, yaml.ScalarNode) else None
        for diagnostic in err.diagnostics:
            if positions and diagnostic.span.line == span.line:
                offset = diagnostic.span.col - span.col
                offset -= len(value.data) - len(value.data.lstrip()) if node.style in ("|", ">") else 0
                diagnostic.span = positions[min(max(offset, 0), len(positions) - 1)]
            sink.items.append(diagnostic)
        return None


def _ref(value: Value | None, reader: _Reader, sink: DiagnosticSink) -> Ref | None:
    if value is None:
        return None
    if not isinstance(value.data, str):
        sink.error("E005", f"expected a block name, found {_type_name(value.data)}", value.span)
        return None
    return _expression(parse_source, value, reader, sink)


def _input(name: str, value: Value, sink: DiagnosticSink) -> Input:
    """``x: 9`` (a vector input), ``story: {kind: sentences, vocab: 69}`` (word ids) or
    ``src: {kind: sequence, size: 10}`` (a whole sequence). A size left out (``x: {kind: vector}``,
    ``x:`` with no value, ``story: {kind: sentences}``) is the size the train section's task gives."""
    key_span = getattr(value, "key_span", value.span)
    if not isinstance(value.data, dict):
        return Input(name, _strip(value) if value.data is not None else Value(None, key_span), key_span)
    fields = value.data
    kind = fields.get("kind")
    kind_name = kind.data if kind is not None and isinstance(kind.data, str) else "vector"
    size_key = SIZE_KEYS.get(kind_name, "size")
    unknown = [key for key in fields if key not in ("kind", size_key)]
    for key in unknown:
        sink.error("E006", f"unknown field '{key}' in input '{name}'", fields[key].key_span,
                   hint_for(key, ("kind", size_key), "input fields"))
    size = fields.get(size_key)
    return Input(name, _strip(size) if size is not None else Value(None, key_span), key_span,
                 _strip(kind) if kind is not None else Value("vector", key_span))


def _output(name: str, value: Value, reader: _Reader, sink: DiagnosticSink) -> Output | None:
    key_span = getattr(value, "key_span", value.span)
    if not isinstance(value.data, dict):
        sink.error("E005", f"output '{name}' must be a mapping such as {{size: 8, from: [ctrl]}}, "
                   f"found {_type_name(value.data)}", value.span)
        return None
    fields = value.data
    for key, item in fields.items():
        if key not in OUTPUT_FIELDS:
            sink.error("E006", f"unknown field '{key}' in output '{name}'", item.key_span,
                       hint_for(key, OUTPUT_FIELDS, "output fields"))
    size = fields.get("size", Value(None, key_span))  # left out: the task's output size
    sources = _refs(fields["from"], reader, sink) if "from" in fields else ()
    activation = fields.get("activation")
    return Output(name, _strip(size), sources, _strip(activation) if activation is not None else None, key_span)


def _block(name: str, value: Value, reader: _Reader, sink: DiagnosticSink) -> Block | None:
    key_span = getattr(value, "key_span", value.span)
    if not isinstance(value.data, dict):
        sink.error("E005", f"block '{name}' must be a mapping such as {{kind: lstm, hidden: 100}}, "
                   f"found {_type_name(value.data)}", value.span)
        return None
    fields = value.data
    kind = fields.get("kind")
    if kind is None:
        sink.error("E007", f"block '{name}' has no 'kind'", key_span, "add 'kind: KIND', e.g. 'kind: lstm'")
        return None
    if not isinstance(kind.data, str):
        sink.error("E005", f"'kind' must be a name, found {_type_name(kind.data)}", kind.span)
        return None
    address: Address | None = None
    if "address" in fields:
        item = fields["address"]
        if isinstance(item.data, str):
            address = _expression(parse_address, item, reader, sink)
        else:
            sink.error("E005", f"'address' must be a string such as \"content(cosine) | sharpen\", "
                       f"found {_type_name(item.data)}", item.span)
    params = {key: _strip(v) for key, v in fields.items() if key not in BLOCK_FIELDS}
    return Block(
        name=name,
        kind=kind.data,
        params=params,
        sources=_refs(fields["from"], reader, sink) if "from" in fields else (),
        memory=_ref(fields.get("memory"), reader, sink),
        by=_ref(fields.get("by"), reader, sink),
        address=address,
        span=key_span,
        kind_span=kind.span,
        param_spans={key: v.key_span for key, v in fields.items() if key not in BLOCK_FIELDS},
    )

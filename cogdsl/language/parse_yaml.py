"""Read the YAML form of a spec into the IR, keeping the line and column of every key and value.

The text is *composed* (not constructed) with a subclass of PyYAML's SafeLoader, so no
tag can build a Python object: a tag outside YAML's standard scalar and collection tags
(``!!python/object``, ``!custom``) is reported as an error at its position, and so is a
standard tag on a value it does not fit (``!!int x``, ``!!map x``). Duplicate keys, which
``yaml.safe_load`` silently drops, are errors. The ``address:`` and ``from:`` strings are
parsed by the .cog grammar (:mod:`cogdsl.language.parse_cog`), and errors inside them point at the
character in the file, however the YAML string is written (quoted, escaped, folded, over
several lines).

Any text at all is either a :class:`~cogdsl.language.spec.Spec` or a :class:`~cogdsl.errors.SpecError`
whose every diagnostic points inside the text: control characters, tags, numbers too large to
convert, aliases that contain themselves, deep nesting and sheer size are reported, never raised
as something else. The budgets below are checked while the YAML events arrive, so a hostile file
is refused as soon as it exceeds one, before the rest of it is read.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from cogdsl.errors import Diagnostic, DiagnosticSink, Span, SpecError, SpecSyntaxError, escape, hint_for
from cogdsl.language.parse_cog import looks_like_cog, parse_address, parse_source
from cogdsl.language.spec import SIZE_KEYS, Address, Block, Input, Output, Pipe, Ref, Spec, Stage, Value

MAX_TEXT_CHARS = 1_000_000
"""The longest spec text read, in characters (1 MB of ASCII). The library's specs are under 1,000;
reading stops, and the spec is refused, at the first character past this."""

MAX_NODES = 10_000
"""The most YAML values (scalars, lists, mappings; keys included) a spec may hold, counting each
alias (``*name``) as the values it repeats. The library's specs hold about 100. PyYAML reads some
30,000 values a second, so this bounds the reading time to a fraction of a second, and it stops
aliases that multiply (a "billion laughs") at the alias that goes past it."""

NODE_BUDGET = MAX_NODES
"""The name this budget had before; kept for code that imports it."""

MAX_DEPTH = 64
"""How deeply lists and mappings may nest, in YAML and inside an ``address:`` expression. A spec
nests four or five levels (train, task, parameters); this keeps every recursive pass far from
Python's recursion limit."""

MAX_NUMBER_DIGITS = 4_000
"""The most digits a number literal may have (Python refuses to convert integers of more than
4,300 decimal digits to and from text). Integers are also held below 10**4000 whatever their base,
and below the largest float (about 1.8e308), which a float parameter converts them to."""

MAX_EXPRESSION_CHARS = 10_000
"""The most characters of ``address:`` and ``from:`` expressions a spec may hold in all, counting
those parsed by the grammar (a plain name such as ``ctrl`` or ``r@prev`` is read without it). The
grammar reads about 100,000 characters a second; a real spec's expressions total a few hundred."""

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A model, input, output or block name: the same rule as NAME in the .cog grammar."""

_NAME_HINT = "a name starts with a letter or '_' and holds only letters, digits and '_' (as in .cog files)"

_YAML_TAG = "tag:yaml.org,2002:"
_STANDARD_TAGS = {_YAML_TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}
_TAG_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false", "null": "null",
              "timestamp": "a timestamp", "map": "a mapping", "seq": "a list"}
_TAG_EXAMPLES = {"str": '"text"', "int": "8", "float": "0.5", "bool": "true", "null": "null",
                 "timestamp": "2024-01-31", "map": "{size: 8}", "seq": "[x, y]"}
_NULLS = ("", "~", "null", "Null", "NULL")
_BOOL_WORDS = ("yes", "no", "on", "off", "y", "n", "true", "false")

TOP_LEVEL = ("cogdsl", "model", "doc", "inputs", "outputs", "blocks", "train")
BLOCK_FIELDS = ("kind", "from", "memory", "by", "address")
OUTPUT_FIELDS = ("size", "from", "activation")


# What a value with a refused tag becomes: already reported, so later checks stay quiet.
REPORTED: Any = type("Reported", (), {"__repr__": lambda self: "<refused tag>"})()

# Line breaks as YAML reads them inside a scalar (a CR LF pair is one).
_YAML_BREAKS = "\n\r\x85\u2028\u2029"
_BLANKS = " \t"
_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}
_SIMPLE_SOURCE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(@prev)?")


class PositionLoader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``1e-4`` (YAML 1.1 wants ``1.0e-4``), and
    remembers where each scalar's own text starts (an anchor or a tag before it moves the event's mark)."""

    def __init__(self, stream: str) -> None:
        self.scalar_starts: dict[int, yaml.Mark] = {}  # the end of a scalar token -> its start
        super().__init__(stream)

    def _remember(self, token: yaml.ScalarToken) -> yaml.ScalarToken:
        self.scalar_starts[token.end_mark.pointer] = token.start_mark
        return token

    def scan_plain(self) -> yaml.ScalarToken:
        return self._remember(super().scan_plain())

    def scan_flow_scalar(self, style: str) -> yaml.ScalarToken:
        return self._remember(super().scan_flow_scalar(style))

    def scan_block_scalar(self, style: str) -> yaml.ScalarToken:
        return self._remember(super().scan_block_scalar(style))


PositionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _shown(text: str, limit: int = 40) -> str:
    """``text`` for a message: control characters escaped (:func:`cogdsl.errors.escape`), cut short when long."""
    return escape(text if len(text) <= limit else text[:limit] + "...")


def _tag_name(tag: str) -> str:
    return _shown(tag.replace(_YAML_TAG, "!!"), 60)


class _Source:
    """A spec's text and file name: turns marks and offsets into spans that lie inside the text.

    Lines are counted as every parser of cogdsl counts them and as errors show them
    (:func:`cogdsl.errors.source_line`): only a new line ends one (a CR before it belongs to the line end);
    a form feed, NEL or U+2028 does not, although PyYAML's own marks would count some of these. So
    spans are made from a mark's offset in the text, never from its line and column."""

    def __init__(self, text: str, file: str) -> None:
        self.text, self.file = text, file
        self.last: yaml.Mark | None = None  # the last place read, for a failure nothing else explains
        self._starts: list[int] | None = None  # where each line starts

    def offset(self, offset: int) -> Span:
        """The span of character ``offset`` (the end of the text for one past it)."""
        if self._starts is None:
            self._starts = [0, *(match.end() for match in re.finditer("\n", self.text))]
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        return Span(self.file, line + 1, offset - self._starts[line] + 1)

    def mark(self, mark: yaml.Mark | None) -> Span:
        return Span(self.file, 1, 1) if mark is None else self.offset(mark.pointer)


class _Refused(Exception):
    """Reading stops here: one located diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Composer:
    """PyYAML's composer, without recursion, counting the budgets as the events arrive.

    Aliases are kept as references to the node they name (as PyYAML does); each one counts as the
    number of values it repeats, and an alias inside the value it names is refused where it stands."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.nodes = 0

    def span(self, mark: yaml.Mark | None) -> Span:
        return self.source.mark(mark)

    def refuse(self, code: str, message: str, mark: yaml.Mark | None, hint: str | None = None) -> NoReturn:
        raise _Refused(Diagnostic(code, message, self.span(mark), hint))

    def count(self, added: int, event: yaml.Event, alias: str | None = None) -> None:
        self.nodes += added
        if self.nodes <= MAX_NODES:
            return
        if alias is not None:
            self.refuse("E005", f"the alias '*{_shown(alias)}' makes the spec more than {MAX_NODES:,} YAML values",
                        event.start_mark, "aliases (*name) that refer to each other multiply; write the values out")
        self.refuse("E005", f"the spec has more than {MAX_NODES:,} YAML values", event.start_mark,
                    "a spec is a short text; data belongs in the files its task reads")

    def compose(self, loader: PositionLoader) -> yaml.Node | None:
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # document start
        root = self.document(loader)
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            self.refuse("E001", "YAML syntax error: a second YAML document", event.start_mark,
                        "a spec is one YAML document; remove the '---' line and what follows it")
        return root

    def document(self, loader: PositionLoader) -> yaml.Node:
        anchors: dict[str, yaml.Node] = {}
        sizes: dict[int, int] = {}  # id of a finished, anchored collection -> the values it holds
        depths: dict[int, int] = {}  # id of a finished collection -> how deeply it nests (a list of scalars: 1)
        open_nodes: set[int] = set()  # ids of the collections still being read
        stack: list[tuple[yaml.Node, list[Any]]] = []  # a collection and [its size, a key waiting for its value]
        while True:
            event = loader.get_event()
            self.source.last = event.start_mark
            node: yaml.Node
            if isinstance(event, yaml.AliasEvent):
                anchor = event.anchor
                if anchor not in anchors:
                    self.refuse("E001", f"YAML syntax error: the alias '*{_shown(anchor)}' names no anchor",
                                event.start_mark, f"mark the value it repeats with '&{_shown(anchor)}' before it")
                node = anchors[anchor]
                if id(node) in open_nodes:
                    self.refuse("E005", f"the alias '*{_shown(anchor)}' is inside the value it names", event.start_mark,
                                "a value cannot contain itself; write the inner value out")
                size, depth = sizes.get(id(node), 1), depths.get(id(node), 0)
                self.count(size, event, anchor)
                if len(stack) + depth > MAX_DEPTH:
                    self.refuse("E005", f"the alias '*{_shown(anchor)}' nests the YAML deeper than {MAX_DEPTH} levels",
                                event.start_mark, "a spec nests a few levels deep (train: task: parameters)")
                node = _located(node, event.start_mark)
                depths[id(node)] = depth
            elif isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self.count(1, event)
                if event.anchor is not None and event.anchor in anchors:
                    first = self.span(anchors[event.anchor].start_mark)
                    self.refuse("E001", f"YAML syntax error: the anchor '&{_shown(event.anchor)}' is defined twice",
                                event.start_mark, f"it is first defined at line {first.line}, column {first.col}; "
                                "give each anchor its own name")
                tag = event.tag
                if isinstance(event, yaml.ScalarEvent):
                    if tag is None or tag == "!":
                        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
                    node.text_mark = loader.scalar_starts.get(event.end_mark.pointer, event.start_mark)
                    node.explicit_tag = event.tag not in (None, "!")
                    size = 1
                else:
                    if len(stack) >= MAX_DEPTH:
                        self.refuse("E005", f"the YAML nests deeper than {MAX_DEPTH} levels", event.start_mark,
                                    "a spec nests a few levels deep (train: task: parameters)")
                    kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
                    if tag is None or tag == "!":
                        tag = loader.resolve(kind, None, event.implicit)
                    node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
                    if event.anchor is not None:
                        anchors[event.anchor] = node
                    open_nodes.add(id(node))
                    stack.append((node, [1, None, 0]))
                    continue
                if event.anchor is not None:
                    anchors[event.anchor] = node
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                node, (size, _, inner) = stack.pop()
                depth = inner + 1
                depths[id(node)] = depth
                node.end_mark = event.end_mark
                open_nodes.discard(id(node))
                sizes[id(node)] = size
            else:  # the parser yields nothing else inside a document
                self.refuse("E001", f"YAML syntax error: unexpected {type(event).__name__}", event.start_mark)
            if not stack:
                return node
            parent, state = stack[-1]
            state[0] += size
            state[2] = max(state[2], depths.get(id(node), 0))
            if isinstance(parent, yaml.SequenceNode):
                parent.value.append(node)
            elif state[1] is None:
                state[1] = node
            else:
                parent.value.append((state[1], node))
                state[1] = None


def _located(node: yaml.Node, mark: yaml.Mark) -> yaml.Node:
    """The value an alias repeats, located where the alias stands (a duplicate key or name written as an
    alias is reported there); the characters of a scalar are still found in the anchored text."""
    copy = type(node).__new__(type(node))
    copy.__dict__.update(node.__dict__)
    copy.start_mark = mark
    return copy


def _compose(source: _Source) -> yaml.Node | None:
    """The YAML node tree of the text; raises _Refused (located) for anything that is not a spec's YAML."""
    if len(source.text) > MAX_TEXT_CHARS:
        raise _Refused(Diagnostic("E005", f"the spec is longer than {MAX_TEXT_CHARS:,} characters",
                                  source.offset(MAX_TEXT_CHARS), "a spec is a short text; data belongs in the "
                                  "files its task reads"))
    try:
        loader = PositionLoader(source.text)
    except yaml.reader.ReaderError as err:
        raise _Refused(_reader_error(err, source)) from None
    try:
        return _Composer(source).compose(loader)
    except yaml.MarkedYAMLError as err:
        raise _Refused(_yaml_syntax_error(err, source)) from None
    finally:
        loader.dispose()


def _reader_error(err: yaml.reader.ReaderError, source: _Source) -> Diagnostic:
    """A character YAML does not allow, named and located."""
    code = err.character if isinstance(err.character, int) else ord(err.character)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        what = "a NUL character (U+0000)" if code == 0 else f"a control character (U+{code:04X})"
        hint = ("is this a binary file? a spec is UTF-8 text" if code == 0
                else "YAML allows tabs and line breaks, but no other control characters, even in a comment")
    else:
        what = f"the character U+{code:04X}"
        hint = "YAML does not allow this character anywhere, even in a comment; remove it"
    return Diagnostic("E001", f"YAML syntax error: {what} is not allowed in YAML", source.offset(err.position), hint)


class _Reader:
    """Turns the composed nodes into located values, reporting what does not fit as it goes."""

    def __init__(self, source: _Source, sink: DiagnosticSink):
        self.source = source
        self.file = source.file
        self.sink = sink
        self.loader = PositionLoader("")
        self.refused: set[int] = set()  # ids of the diagnostics of refused values
        self.refused_spans: set[Span] = set()
        self.expression_chars = 0

    def span(self, node: yaml.Node) -> Span:
        return self.source.mark(node.start_mark)

    def refuse(self, code: str, message: str, span: Span, hint: str | None = None) -> Any:
        """Report a value that cannot be read; it becomes REPORTED, and nothing else is said at its place."""
        diagnostic = Diagnostic(code, message, span, hint)
        self.sink.items.append(diagnostic)
        self.refused.add(id(diagnostic))
        self.refused_spans.add(span)
        return REPORTED

    def value(self, node: yaml.Node) -> Value:
        """A node as a located value; tags that would construct objects, or that do not fit, are reported."""
        span = self.span(node)
        self.source.last = node.start_mark
        if node.tag not in _STANDARD_TAGS:
            return _Node(self.refuse("E002", f"YAML tag '{_tag_name(node.tag)}' is not allowed", span,
                                     "specs hold plain data: strings, numbers, lists and mappings"), span, node)
        short = node.tag.removeprefix(_YAML_TAG)
        kind = {"map": yaml.MappingNode, "seq": yaml.SequenceNode}.get(short, yaml.ScalarNode)
        if not isinstance(node, kind):
            what = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
            if isinstance(node, yaml.ScalarNode):
                what = f"'{_shown(node.value)}'"
            return _Node(self._wrong_tag(what, short, span, node), span, node)
        if isinstance(node, yaml.MappingNode):
            return _Node(self.mapping(node), span, node)
        if isinstance(node, yaml.SequenceNode):
            return _Node([self.value(item) for item in node.value], span, node)
        return _Node(self.scalar(node, short, span), span, node)

    def _wrong_tag(self, what: str, short: str, span: Span, node: yaml.Node) -> Any:
        if not getattr(node, "explicit_tag", True):  # YAML took it for a number by its look alone
            return self.refuse("E005", f"{what} looks like {_TAG_WORDS[short]} but is not one", span,
                               f"quote it if it is a string: \"{_shown(node.value)}\"")
        return self.refuse("E002", f"{what} is not {_TAG_WORDS[short]} (tag !!{short})", span,
                           f"remove the tag, or write {_TAG_WORDS[short]} such as {_TAG_EXAMPLES[short]}")

    def scalar(self, node: yaml.ScalarNode, short: str, span: Span) -> Any:
        """The Python value of a scalar with a standard tag; REPORTED (and an error) when it does not convert."""
        text = node.value
        shown = f"'{_shown(text)}'"
        if short == "str":
            return text
        if short == "null":
            return None if text in _NULLS else self._wrong_tag(shown, short, span, node)
        if short == "bool":
            data = yaml.SafeLoader.bool_values.get(text.lower())
            return data if data is not None else self._wrong_tag(shown, short, span, node)
        if short == "timestamp":  # kept as written: a spec has no use for dates
            return text if yaml.SafeLoader.timestamp_regexp.match(text) else self._wrong_tag(shown, short, span, node)
        digits = sum(c.isalnum() for c in text)
        if digits > MAX_NUMBER_DIGITS:
            return self.refuse("E005", f"a number of {digits:,} digits is too long (at most {MAX_NUMBER_DIGITS:,})",
                               span, "no setting needs such a number; check the value")
        try:
            if not text.strip():
                raise ValueError(text)
            if short == "int":
                data = self.loader.construct_yaml_int(node)
            else:
                data = self.loader.construct_yaml_float(node)
        except OverflowError:
            return self.refuse("E005", f"{shown} is too large for a number", span,
                               "numbers go up to about 1.8e308; check the value")
        except Exception:  # int(), float() and the sexagesimal forms fail in several ways
            return self._wrong_tag(shown, short, span, node)
        if isinstance(data, int) and abs(data).bit_length() > MAX_NUMBER_DIGITS * 3.32:
            return self.refuse("E005", f"{shown} is too large (at most {MAX_NUMBER_DIGITS:,} digits)", span,
                               "no setting needs such a number; check the value")
        if isinstance(data, float) and math.isinf(data) and "inf" not in text.lower():
            return self.refuse("E005", f"{shown} is too large for a number", span,
                               "numbers go up to about 1.8e308; write .inf for infinity")
        if isinstance(data, float) and data == 0 and re.search("[1-9]", re.split("[eE]", text)[0]):
            return self.refuse("E005", f"{shown} is too small for a number (it would be 0)", span,
                               "numbers other than 0 go down to about 2.2e-308; write 0 if 0 is meant")
        if isinstance(data, int) and abs(data) > sys.float_info.max:  # float() of it would overflow
            return self.refuse("E005", f"{shown} is too large for a number", span,
                               "numbers go up to about 1.8e308; check the value")
        return data

    def mapping(self, node: yaml.MappingNode) -> dict[str, Value]:
        result: dict[str, Value] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if key.data is REPORTED:
                continue
            if not isinstance(key.data, str):
                hint = None
                if isinstance(key.data, bool) and isinstance(key_node, yaml.ScalarNode) and key_node.style is None:
                    hint = f"YAML reads {key_node.value} as {str(key.data).lower()}; quote it: \"{key_node.value}\""
                found = _type_name(key.data) if isinstance(key.data, (dict, list)) else _shown(repr(key.data))
                self.sink.error("E005", f"keys must be names, found {found}", key.span, hint)
                continue
            if key.data in result:
                first = result[key.data].key_span
                self.sink.error("E003", f"duplicate key '{_shown(key.data)}'", key.span,
                                f"it is first given at line {first.line}; remove one of them")
                continue
            value = self.value(value_node)
            object.__setattr__(value, "key_span", key.span)
            result[key.data] = value
        return result

    # -- the text of a scalar, character by character -------------------------------------------------

    def text_positions(self, node: yaml.ScalarNode) -> list[Span]:
        """Where each character of a scalar's value stands in the file, and one more place for its end.

        The value of a YAML string is not always a slice of one line: quotes, escapes (``\\x63``, ``''``),
        and lines folded into spaces ('>' blocks, plain and quoted strings over several lines) all move it.
        Every character that shows (not a blank) is matched to the one it comes from; a blank that a line
        break became stands where that break is."""
        start = getattr(node, "text_mark", node.start_mark)
        buffer, end = start.buffer, node.end_mark.pointer
        if buffer is None:
            return [self.span(node)]
        i = start.pointer
        style = node.style

        def step(count: int = 1) -> None:
            nonlocal i
            for _ in range(count):
                if i < end:
                    i += 2 if buffer[i] == "\r" and i + 1 < end and buffer[i + 1] == "\n" else 1

        def escaped_break() -> bool:
            return style == '"' and buffer[i] == "\\" and i + 1 < end and buffer[i + 1] in _YAML_BREAKS

        if style in ("'", '"'):
            step()  # the opening quote
        elif style in ("|", ">"):
            while i < end and buffer[i] not in _YAML_BREAKS:  # the header: '|', '>-', '|2 # comment'
                step()
            step()
        offsets: list[int] = []
        for char in node.value:
            if char in " \t\n\u2028\u2029":
                offsets.append(i)
                if i < end and buffer[i] in _BLANKS + _YAML_BREAKS:
                    step()
                elif style == '"' and i + 1 < end and buffer[i] == "\\" and not escaped_break():
                    step(_ESCAPE_LENGTHS.get(buffer[i + 1], 2))
                # else a line break folded into a space, or the leading blanks of a block: nothing to pass
                continue
            while i < end and (buffer[i] in _BLANKS + _YAML_BREAKS or escaped_break()):
                step()
            offsets.append(i)
            if style == '"' and i + 1 < end and buffer[i] == "\\":
                step(_ESCAPE_LENGTHS.get(buffer[i + 1], 2))
            elif style == "'" and buffer[i : i + 2] == "''":
                step(2)
            else:
                step()
        offsets.append(i)
        return [self.source.offset(offset) for offset in offsets]


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
    if data is REPORTED:
        return "a refused value"
    return f"{type(data).__name__} {_shown(repr(data))}"


def parse_yaml(text: str, file: str = "<string>") -> Spec:
    """Parse a YAML spec into a :class:`Spec`; raises SpecSyntaxError or SpecError with every problem found.

    Whatever the text, nothing else is raised, and every diagnostic points inside the text."""
    return _guarded(text, file, None)


def parse_yaml_partial(text: str, file: str = "<string>") -> tuple[Spec | None, list[Diagnostic]]:
    """The spec and every problem found, never raising: the spec as far as it could be built despite the
    problems (what was refused left out), or None when the text is not a mapping of sections at all. For
    an editor, which shows the problems and still finds the blocks of a spec that has some."""
    built: list[Spec] = []
    try:
        return _guarded(text, file, built), []
    except SpecError as err:
        return (built[-1] if built else None), list(err.diagnostics)


def _guarded(text: str, file: str, built: list[Spec] | None) -> Spec:
    """:func:`parse_yaml`; a spec built in spite of problems is appended to ``built`` before they are raised."""
    source = _Source(text, file)
    try:
        return _parse_yaml(source, built)
    except _Refused as refused:
        kind = SpecSyntaxError if refused.diagnostic.code == "E001" else SpecError
        raise kind([refused.diagnostic], {file: text}) from None
    except SpecError:
        raise
    except RecursionError:
        raise SpecError([Diagnostic("E005", "the spec nests too deeply to read", source.mark(source.last),
                                    f"a spec nests a few levels deep (at most {MAX_DEPTH})")], {file: text}) from None
    except Exception as err:  # the last guard: bad input is a located error, never a traceback
        raise SpecError([Diagnostic("E005", f"this YAML cannot be read ({type(err).__name__})",
                                    source.mark(source.last), "please report this spec to the cogdsl developers")],
                        {file: text}) from None


def _parse_yaml(source: _Source, built: list[Spec] | None = None) -> Spec:
    text, file = source.text, source.file
    sink = DiagnosticSink()
    root = _compose(source)
    if root is None:
        raise SpecError([_diag("E007", "the spec is empty", Span(file, 1, 1),
                               "a spec needs at least 'cogdsl: 1' and 'model: NAME'")], {file: text})
    reader = _Reader(source, sink)
    top = reader.value(root)
    spec = None
    if top.data is REPORTED:
        pass
    elif not isinstance(top.data, dict):
        sink.error("E005", f"a spec is a mapping of sections, found {_type_name(top.data)}", top.span)
    else:
        spec = _build(top.data, reader, sink, text)
    if spec is not None and built is not None:
        built.append(spec)
    if sink or spec is None:
        # a refused value is reported once, not again as the wrong type
        items = [d for d in sink.items if id(d) in reader.refused or d.span not in reader.refused_spans]
        raise SpecError(items, {file: text})
    return spec


def _yaml_syntax_error(err: yaml.MarkedYAMLError, source: _Source) -> Diagnostic:
    """PyYAML's parser error in words about the spec rather than about the parser."""
    span = source.mark(err.problem_mark or err.context_mark)
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
    if looks_like_cog(source.text):
        name = Path(source.file).with_suffix(".cog").name
        hint = (f"this looks like a .cog spec: save it as a .cog file (the suffix says which form a file is in), "
                f"or convert it with 'cogdsl fmt --to yaml {name}'")
    return Diagnostic("E001", f"YAML syntax error: {_shown(problem, 200)}", span, hint and _shown(hint, 200))


def _diag(code: str, message: str, span: Span, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, span, hint)


def _check_name(name: str, what: str, span: Span, sink: DiagnosticSink) -> None:
    """Report a model, input, output or block name that the .cog grammar would not read as a name."""
    if not NAME.fullmatch(name):
        sink.error("E005", f"'{_shown(name)}' is not a valid {what} name", span, _NAME_HINT)


def _build(top: dict[str, Value], reader: _Reader, sink: DiagnosticSink, text: str) -> Spec | None:
    file = reader.file
    for key, value in top.items():
        if key not in TOP_LEVEL:
            sink.error("E006", f"unknown section '{_shown(key)}'", value.key_span, hint_for(key, TOP_LEVEL, "sections"))
    version = top.get("cogdsl")
    if version is None:
        sink.error("E007", "missing 'cogdsl:' format version", Span(file, 1, 1), "add 'cogdsl: 1' as the first line")
        version = Value(1)
    model = top.get("model")
    if model is None:
        sink.error("E007", "missing 'model:' name", Span(file, 1, 1), "add 'model: NAME'")
        return None
    if model.data is not REPORTED and not isinstance(model.data, str):
        sink.error("E005", f"'model' must be a name, found {_type_name(model.data)}", model.span)
    elif isinstance(model.data, str):
        _check_name(model.data, "model", model.span, sink)
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
        if train.data is not REPORTED:
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


_SECTION_WHAT = {"inputs": "input", "outputs": "output", "blocks": "block"}


def _section(top: dict[str, Value], name: str, reader: _Reader, sink: DiagnosticSink) -> dict[str, Value]:
    """The entries of the inputs, outputs or blocks section; each name must be a name of the .cog grammar."""
    value = top.get(name)
    if value is None or value.data is None or value.data is REPORTED:
        return {}
    if not isinstance(value.data, dict):
        sink.error("E005", f"'{name}' must be a mapping of names, found {_type_name(value.data)}", value.span)
        return {}
    for key, item in value.data.items():
        _check_name(key, _SECTION_WHAT[name], getattr(item, "key_span", item.span), sink)
    return value.data


def _refs(value: Value, reader: _Reader, sink: DiagnosticSink) -> tuple[Ref, ...]:
    items = value.data if isinstance(value.data, list) else [value]
    refs = []
    for item in items:
        if item.data is REPORTED:
            continue
        if not isinstance(item.data, str):
            sink.error("E005", f"a source must be a name such as 'x' or 'r@prev', found {_type_name(item.data)}",
                       item.span)
            continue
        ref = _expression(parse_source, item, reader, sink)
        if ref is not None:
            refs.append(ref)
    return tuple(refs)


def _nesting(text: str) -> int | None:
    """Where brackets in an expression first nest deeper than MAX_DEPTH (outside strings), or None."""
    depth, quoted, escaped = 0, False, False
    for index, char in enumerate(text):
        if quoted:
            quoted, escaped = (escaped or char != '"'), (not escaped and char == "\\")
        elif char == '"':
            quoted = True
        elif char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                return index
        elif char in ")]}":
            depth = max(depth - 1, 0)
    return None


def _respan(item: Any, move: Callable[[Span], Span]) -> Any:
    """An expression's IR (Address, Pipe, Stage, Ref, Value) with every span moved by ``move``."""
    if isinstance(item, Value):
        data = [_respan(v, move) for v in item.data] if isinstance(item.data, list) else item.data
        return Value(data, move(item.span), item.key_spans)
    if isinstance(item, Address):
        return dataclasses.replace(item, terms=tuple(_respan(t, move) for t in item.terms), span=move(item.span))
    if isinstance(item, Pipe):
        return dataclasses.replace(item, stages=tuple(_respan(s, move) for s in item.stages), span=move(item.span))
    if isinstance(item, Stage):
        return dataclasses.replace(item, args=tuple(_respan(a, move) for a in item.args), span=move(item.span))
    if isinstance(item, Ref):
        return dataclasses.replace(item, span=move(item.span))
    return item


def _expression(parse: Callable[[str, Span], Any], value: Value, reader: _Reader, sink: DiagnosticSink) -> Any:
    """Parse an ``address:`` or ``from:`` string with the .cog grammar; every span it gives (in the result or
    in its errors) points at the character of the file it stands for."""
    text: str = value.data
    node = getattr(value, "node", None)
    positions = reader.text_positions(node) if isinstance(node, yaml.ScalarNode) else [value.span]
    lead = len(text) - len(text.lstrip())

    def at(index: int) -> Span:
        return positions[max(0, min(index, len(positions) - 1))]

    if parse is parse_source:
        simple = _SIMPLE_SOURCE.fullmatch(text.strip())
        if simple:  # the usual 'x' or 'r@prev', without the grammar's time
            return Ref(simple[1], 1 if simple[2] else 0, at(lead))
    deep = _nesting(text)
    if deep is not None:
        sink.error("E005", f"the expression nests deeper than {MAX_DEPTH} levels", at(deep),
                   "an addressing expression nests a level or two: content(cosine) | shift(1)")
        return None
    reader.expression_chars += len(text)
    if reader.expression_chars > MAX_EXPRESSION_CHARS:
        if reader.expression_chars - len(text) <= MAX_EXPRESSION_CHARS:  # say it once
            sink.error("E005", f"the spec's 'address:' and 'from:' expressions are longer than "
                       f"{MAX_EXPRESSION_CHARS:,} characters in all", at(lead),
                       "an expression is a short line such as 'content(cosine) | gate | shift(1) | sharpen'")
        return None

    def move(span: Span) -> Span:
        """A span from parsing ``text`` at line 1, column 1, moved to its place in the file."""
        if span.line <= 1:
            return at(span.col - 1)
        start = lead
        for _ in range(span.line - 1):
            start = text.find("\n", start) + 1 or len(text)
        return at(start + span.col - 1)

    try:
        return _respan(parse(text, Span(reader.file, 1, 1)), move)
    except SpecError as err:
        # An unquoted value inside { } or [ ] ends at its first comma: content(cosine, dot) arrives cut short.
        cut = isinstance(node, yaml.ScalarNode) and node.style is None and text.count("(") > text.count(")")
        for diagnostic in err.diagnostics:
            diagnostic.span = move(diagnostic.span)
            if cut:
                diagnostic.hint = (f"YAML ends an unquoted value at a comma inside {{ }} or [ ]: quote the whole "
                                   f"expression, \"{text.strip()}, ...)\"")
            sink.items.append(diagnostic)
        return None


def _ref(value: Value | None, reader: _Reader, sink: DiagnosticSink) -> Ref | None:
    if value is None or value.data is REPORTED:
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

"""Parse the .cog text form (and the expression fields of YAML specs) with the Lark grammar.

``parse_cog(text, file) -> Spec`` reads a whole file; ``parse_address`` and
``parse_source`` read the expression strings that YAML specs hold in ``address:`` and
``from:``, so both spellings go through one grammar. Syntax errors become
:class:`~cogdsl.errors.SpecSyntaxError` with what the parser expected.
"""

from __future__ import annotations

import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import lark

from cogdsl.errors import Diagnostic, Span, SpecError, SpecSyntaxError, quoted
from cogdsl.language.spec import SIZE_KEYS, Address, Block, Input, Output, Pipe, Ref, Spec, Stage, Value

# Budgets for hostile text: the most brackets ('[', '(', '{') open at once, checked before the parser and the
# tree walk (which recurses once per level) see the text; the most characters a spec may have; the largest
# integer a spec may write (a 64-bit one: no size, count or step number comes near it).
MAX_DEPTH = 64
MAX_SPEC_CHARS = 1_000_000
MAX_INT = 2**63 - 1

# How the parser's terminal names read in "expected ..." messages.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "SIGNED_NUMBER": "a number",
    "STRING": 'a "string"',
    "_NL": "a new line",
    "$END": "the end of the input",
}


@cache
def _parser() -> lark.Lark:
    grammar = resources.files("cogdsl.language").joinpath("grammar.lark").read_text()
    return lark.Lark(
        grammar,
        parser="lalr",
        start=["spec", "address", "source"],
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _expected_words(expected: set[str]) -> list[str]:
    parser = _parser()
    terminals = {t.name: t for t in parser.terminals}
    words = set()
    for name in expected:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            words.add(f"'{terminals[name].pattern.value}'")
        else:
            words.add(name.lower())
    return sorted(words)


# Terminals that can occur in each expression start rule; LALR states shared with the
# statement grammar would otherwise offer statement tokens (';', '<-', 'by') in hints.
_START_TERMINALS = {
    "address": {"NAME", "SIGNED_NUMBER", "STRING", "LPAR", "RPAR", "COMMA", "VBAR", "PLUS", "LSQB", "RSQB",
                "TRUE", "FALSE", "NONE", "$END"},
    "source": {"NAME", "AT", "$END"},
}


def _syntax_error(err: lark.exceptions.LarkError, text: str, file: str, line_offset: int, col_offset: int,
                  what: str, start: str = "spec") -> Diagnostic:
    line = getattr(err, "line", 1)
    col = getattr(err, "column", 1)
    line = line if isinstance(line, int) and line >= 1 else 1
    col = col if isinstance(col, int) and col >= 1 else 1
    if line == 1:
        col += col_offset
    span = Span(file, line + line_offset, col)
    if isinstance(err, lark.exceptions.UnexpectedToken):
        token = err.token
        if token.type == "$END":
            found = "end of input"
        elif token.type == "_NL":
            found = "new line"
        else:
            found = quoted(str(token))
        if token.type == "$END" and getattr(token, "line", None) is None:
            span = Span(file, line_offset + 1, col_offset + 1)
        expected = _expected_words(_only(err.expected, start))
        hint = _expect_hint(expected)
        lines = text.splitlines()
        written = lines[line - 1] if line_offset == 0 and line <= len(lines) else ""
        swapped = re.match(r"\s*(\w+)\s+(\w+)\s+by\s+(\w+)\s+on\s+(\w+)", written)
        if str(token) == "on" and swapped:
            kind, name, by, memory = swapped.groups()
            hint = f"a head names its memory first, then its controller: '{kind} {name} on {memory} by {by}'"
        return Diagnostic("E001", f"{what}: unexpected {found}", span, hint)
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        if err.char == '"':
            return _string_error(text, err.pos_in_stream, span, what)
        found = "new line" if err.char == "\n" else f"character {quoted(err.char)}"
        expected = _expected_words(_only(set(err.allowed or ()), start))
        hint = _expect_hint(expected)
        if err.char == "\r":
            hint = "a line ends with '\\n' or '\\r\\n', not with a carriage return alone: save the file with those"
        return Diagnostic("E001", f"{what}: unexpected {found}", span, hint)
    if isinstance(err, lark.exceptions.UnexpectedEOF):
        expected = _expected_words(_only(set(err.expected), start))
        return Diagnostic("E001", f"{what}: unexpected end of input", span, _expect_hint(expected))
    return Diagnostic("E001", f"{what}: {quoted(str(err), 80)}", span)


def _string_error(text: str, pos: int, span: Span, what: str) -> Diagnostic:
    """The string at ``text[pos]``, which the lexer did not take: one that is not closed on its line, or one
    that holds a control character (a string holds one line of printable text; `\\n` writes a new line)."""
    k = pos + 1
    while k < len(text):
        c = text[k]
        if c == "\\" and k + 1 < len(text) and not _ends_line(text, k + 1):
            c, k = text[k + 1], k + 1  # an escaped character: it may not be a control character either
        elif c == '"' or _ends_line(text, k):
            break
        if _STRING_BANNED.match(c):
            at = Span(span.file, span.line, span.col + k - pos)
            return Diagnostic("E001", f"{what}: a string cannot hold the control character {quoted(c)}", at,
                              "remove it: a string holds printable text, and '\\n' writes a new line")
        k += 1
    return Diagnostic("E001", f"{what}: a string that is not closed", span, 'close it with \'"\' on the same line')


# What the grammar's STRING leaves out: control characters (a tab aside) and the line and paragraph separators.
_STRING_BANNED = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _ends_line(text: str, k: int) -> bool:
    return text[k] == "\n" or text.startswith("\r\n", k) or (text[k] == "\r" and k + 1 == len(text))


def _only(expected: set[str], start: str) -> set[str]:
    allowed = _START_TERMINALS.get(start)
    return expected if allowed is None else {t for t in expected if t in allowed}


def _expect_hint(expected: list[str]) -> str | None:
    if not expected:
        return None
    if len(expected) == 1:
        return f"expected {expected[0]}"
    return "expected one of " + ", ".join(expected)


# What the depth scan steps over: strings and comments as the grammar reads them, and brackets.
_SCAN = re.compile(r'"(?:\\.|[^"\\\n])*"?|#[^\n]*|[\[\](){}]')


def _check_depth(text: str, file: str, line_offset: int, col_offset: int, what: str) -> None:
    """Refuse text with more than MAX_DEPTH brackets open at once, at the first bracket over the budget, in one
    pass over the text and before the parser sees it (the tree walk recurses once per level)."""
    depth = 0
    for match in _SCAN.finditer(text):
        c = match.group()
        if c in "[({":
            depth += 1
            if depth > MAX_DEPTH:
                pos = match.start()
                line = text.count("\n", 0, pos) + 1
                col = pos - text.rfind("\n", 0, pos)
                if line == 1:
                    col += col_offset
                span = Span(file, line + line_offset, col)
                raise SpecSyntaxError([Diagnostic(
                    "E001", f"{what}: nested too deeply (more than {MAX_DEPTH} brackets open at once)", span,
                    f"a spec needs a few levels of '[', '(' and '{{' at most: {MAX_DEPTH} are allowed")])
        elif c in "])}":
            depth = max(depth - 1, 0)


def _parse(text: str, start: str, file: str, line_offset: int = 0, col_offset: int = 0,
           what: str = "syntax error") -> lark.Tree:
    _check_depth(text, file, line_offset, col_offset, what)
    try:
        return _parser().parse(text, start=start)
    except lark.exceptions.UnexpectedInput as err:
        raise SpecSyntaxError([_syntax_error(err, text, file, line_offset, col_offset, what, start)]) from None


class _Builder:
    """Turns the Lark tree of one file into IR nodes, giving each its span."""

    def __init__(self, file: str, line_offset: int = 0, col_offset: int = 0):
        self.file = file
        self.line_offset = line_offset
        self.col_offset = col_offset

    def span(self, item: lark.Tree | lark.Token) -> Span:
        if isinstance(item, lark.Token):
            line, col = item.line or 1, item.column or 1
        else:
            line, col = item.meta.line, item.meta.column
        if line == 1:
            col += self.col_offset
        return Span(self.file, line + self.line_offset, col)

    # -- numbers --------------------------------------------------------
    def integer(self, token: lark.Token) -> int:
        """An INT or SIGNED_NUMBER token's integer; E205 past MAX_INT, before Python's conversion (which
        refuses strings of more than 4300 digits) sees it."""
        text = str(token)
        digits = text.lstrip("+-").lstrip("0") or "0"
        if len(digits) <= len(str(MAX_INT)) and int(digits) <= MAX_INT:
            return -int(digits) if text.startswith("-") else int(digits)
        raise SpecError([Diagnostic("E205", f"the integer {_number_text(text)} is too large", self.span(token),
                                    f"the allowed integers are -{MAX_INT} to {MAX_INT} (2**63 - 1)")])

    def number(self, token: lark.Token) -> int | float:
        """A SIGNED_NUMBER token's value: an integer, or a float that is finite and, when written
        other than zero, not rounded to zero."""
        text = str(token)
        if not any(c in text for c in ".eE"):
            return self.integer(token)
        value = float(text)
        mantissa = re.split("[eE]", text)[0]
        if math.isfinite(value) and (value != 0 or not any(c in "123456789" for c in mantissa)):
            return value
        what = "large" if not math.isfinite(value) else "small"
        raise SpecError([Diagnostic("E205", f"the number {_number_text(text)} is too {what} for a float "
                                    f"(it would be {value})", self.span(token),
                                    "the allowed numbers are finite floats, about 2.2e-308 to 1.8e308 in size")])

    # -- values -------------------------------------------------------
    def value(self, tree: lark.Tree) -> Value:
        kind = tree.data
        span = self.span(tree)
        if kind == "number":
            return Value(self.number(tree.children[0]), span)
        if kind == "string":
            return Value(unquote(str(tree.children[0])), span)
        if kind == "true":
            return Value(True, span)
        if kind == "false":
            return Value(False, span)
        if kind == "none":
            return Value(None, span)
        if kind == "word":
            return Value(str(tree.children[0]), span)
        if kind == "list":
            return Value([self.value(child) for child in tree.children], span)
        raise AssertionError(f"unexpected value node {kind}")

    def params(self, trees: list[lark.Tree], spans: dict[str, Span] | None = None) -> dict[str, Value]:
        params: dict[str, Value] = {}
        for param in trees:
            name_token, value_tree = param.children
            name = str(name_token)
            if name in params:
                raise SpecError([Diagnostic("E003", f"parameter '{name}' is given twice", self.span(name_token),
                                            "remove one of them")])
            params[name] = self.value(value_tree)
            if spans is not None:
                spans[name] = self.span(name_token)
        return params

    # -- references and addressing ---------------------------------------
    def source(self, tree: lark.Tree) -> Ref:
        name = tree.children[0]
        delay = 0
        if len(tree.children) > 1:
            marker = tree.children[1]
            if str(marker) != "prev":
                raise SpecError([Diagnostic("E307", f"unknown delay '@{marker}' on '{name}'", self.span(marker),
                                            "the only delay is '@prev' (the value at the previous step)")])
            delay = 1
        return Ref(str(name), delay, self.span(name))

    def sources(self, tree: lark.Tree) -> tuple[Ref, ...]:
        return tuple(self.source(child) for child in tree.children)

    def address(self, tree: lark.Tree) -> Address:
        pipes = []
        for pipe in tree.children:
            stages = []
            for stage in pipe.children:
                name, *args = stage.children
                stages.append(Stage(str(name), tuple(self.value(a) for a in args), self.span(name)))
            pipes.append(Pipe(tuple(stages), self.span(pipe)))
        return Address(tuple(pipes), self.span(tree))

    # -- train tables -------------------------------------------------------
    def table(self, tree: lark.Tree) -> Value:
        entries: dict[str, Value] = {}
        key_spans: dict[str, Span] = {}
        for entry in tree.children:
            key = entry.children[0]
            key_spans[str(key)] = self.span(key)
            if str(key) in entries:
                raise SpecError([Diagnostic("E003", f"'{key}' is given twice in this table", self.span(key),
                                            "remove one of them")])
            if entry.data == "call_entry":
                call_name = entry.children[1]
                fields = {"name": Value(str(call_name), self.span(call_name))}
                field_spans = {"name": self.span(call_name)}
                fields.update(self.params(entry.children[2:], field_spans))
                entries[str(key)] = Value(fields, self.span(call_name), field_spans)
            elif entry.data == "value_entry":
                entries[str(key)] = self.value(entry.children[1])
            else:
                entries[str(key)] = self.table(entry.children[1])
        return Value(entries, self.span(tree), key_spans)

    # -- statements -------------------------------------------------------------
    def spec(self, tree: lark.Tree, source: str) -> Spec:
        fields: dict[str, Any] = {}
        inputs: list[Input] = []
        outputs: list[Output] = []
        blocks: list[Block] = []
        for stmt in tree.children:
            kind = stmt.data
            if kind in ("version_stmt", "model_stmt", "doc_stmt", "train_stmt"):
                key = kind.removesuffix("_stmt")
                if key in fields:
                    raise SpecError([Diagnostic("E003", f"'{key}' is given twice", self.span(stmt),
                                                "keep one statement")])
                token = stmt.children[0]
                if key == "version":
                    fields[key] = Value(self.integer(token), self.span(token))
                elif key == "model":
                    fields[key] = Value(str(token), self.span(token))
                elif key == "doc":
                    fields[key] = Value(unquote(str(token)), self.span(token))
                else:
                    fields[key] = self.table(token)
            elif kind == "input_stmt":
                inputs.append(self.input(stmt))
            elif kind == "output_stmt":
                name, *size, body = stmt.children  # `output y: 8 = ...`, or `output y = ...` (the task's size)
                activation = None
                if body.data == "activated":
                    act_token, body = body.children
                    activation = Value(str(act_token), self.span(act_token))
                written = Value(self.integer(size[0]), self.span(size[0])) if size else Value(None, self.span(name))
                outputs.append(Output(str(name), written, self.sources(body), activation, self.span(name)))
            elif kind == "block_stmt":
                blocks.append(self.block(stmt))
            else:
                raise AssertionError(f"unexpected statement {kind}")
        if "model" not in fields:
            span = Span(self.file, 1, 1)
            raise SpecError([Diagnostic("E007", "the spec has no 'model' statement", span,
                                        "start the file with 'model NAME'")])
        return Spec(
            model=fields["model"],
            version=fields.get("version", Value(1)),
            doc=fields.get("doc"),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            blocks=tuple(blocks),
            train=fields.get("train"),
            file=self.file,
            source=source,
        )

    def input(self, stmt: lark.Tree) -> Input:
        name, *rest = stmt.children
        if not rest:  # `input x`: a vector of the size the task gives
            return Input(str(name), Value(None, self.span(name)), self.span(name))
        (body,) = rest
        if not isinstance(body, lark.Tree):  # `x: 9`
            return Input(str(name), Value(self.integer(body), self.span(body)), self.span(name))
        if len(body.children) == 1:  # `story: sentences`, `story: sentences()`: the task's vocabulary
            (kind,) = body.children
            return Input(str(name), Value(None, self.span(kind)), self.span(name), Value(str(kind), self.span(kind)))
        kind, key, size = body.children  # `story: sentences(vocab=69)`, `src: sequence(size=10)`
        wanted = SIZE_KEYS.get(str(kind), "vocab")
        if str(key) != wanted:
            what = {"sequence": "N channels per element", "image": "the side, N pixels"}.get(
                str(kind), "N word ids, 0 being padding")
            raise SpecError([Diagnostic("E202", f"input '{name}': unknown parameter '{key}'", self.span(key),
                                        f"write '{kind}({wanted}=N)': {what}")])
        return Input(str(name), Value(self.integer(size), self.span(size)), self.span(name),
                     Value(str(kind), self.span(kind)))

    def block(self, stmt: lark.Tree) -> Block:
        kind_token, name_token, *clauses = stmt.children
        params: dict[str, Value] = {}
        param_spans: dict[str, Span] = {}
        memory = by = None
        sources: tuple[Ref, ...] = ()
        address = None
        for clause in clauses:
            if clause.data == "params":
                params = self.params(clause.children, param_spans)
            elif clause.data == "on_clause":
                memory = self.source(clause.children[0])
            elif clause.data == "by_clause":
                by = self.source(clause.children[0])
            elif clause.data == "from_clause":
                sources = self.sources(clause.children[0])
            elif clause.data == "address":
                address = self.address(clause)
        return Block(str(name_token), str(kind_token), params, sources, memory, by, address,
                     self.span(name_token), self.span(kind_token), param_spans)


def _number_text(text: str) -> str:
    """A number as a message names it: cut to its first digits and its length when it is long."""
    return text if len(text) <= 30 else f"{text[:20]}... ({len(text)} characters)"


def unquote(text: str) -> str:
    """The text of a .cog string literal: ``\\"``, ``\\\\`` and ``\\n`` are escapes."""
    escapes = {'"': '"', "\\": "\\", "n": "\n"}
    return re.sub(r'\\(.)', lambda m: escapes.get(m.group(1), m.group(0)), text[1:-1])


_YAML_KEY = re.compile(r"^(cogdsl|model|doc|inputs|outputs|blocks|train)\s*:", re.MULTILINE)


_COG_LINE = re.compile(r"^(model|input|output)\s+[A-Za-z_]\w*(?:\s|:|=|$)", re.MULTILINE)


def looks_like_cog(text: str) -> bool:
    """Whether ``text`` has the lines a .cog spec starts with (``model NAME``, ``input x: 9``, ``output y: 8 =
    ...``), which no YAML spec has: a .cog spec saved, or pasted, under a .yaml name."""
    return len(set(_COG_LINE.findall(text))) >= 2


def looks_like_yaml(text: str) -> bool:
    """Whether ``text`` has the top-level keys of a YAML spec (``model: ...``, ``blocks:``), which a .cog file
    never has: a YAML spec saved, or pasted, under a .cog name."""
    return len(set(_YAML_KEY.findall(text))) >= 2


def parse_cog(text: str, file: str = "<string>") -> Spec:
    """Parse a whole .cog file into a :class:`Spec`; raises SpecSyntaxError or SpecError, whatever the text.

    A byte order mark at the start is read past. Text over MAX_SPEC_CHARS is refused (E008), brackets nested
    over MAX_DEPTH (E001), integers past MAX_INT and floats that overflow (E205)."""
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_SPEC_CHARS:
        raise SpecSyntaxError([too_large(file, f"{len(text)} characters")])
    try:
        return _Builder(file).spec(_parse(text, "spec", file), text)
    except SpecError as err:
        diagnostics = err.diagnostics
        if isinstance(err, SpecSyntaxError) and looks_like_yaml(text):
            first = diagnostics[0]
            hint = (f"this looks like a YAML spec: save it as a .yaml file (the suffix says which form a file is "
                    f"in), or convert it with 'cogdsl fmt --to cog {Path(file).with_suffix('.yaml').name}'")
            diagnostics = [Diagnostic(first.code, first.message, first.span, hint), *diagnostics[1:]]
        raise type(err)(diagnostics, {file: text}) from None


def too_large(file: str, size: str) -> Diagnostic:
    """E008 for a spec over the size budget (MAX_SPEC_CHARS); ``size`` says how large it is."""
    return Diagnostic("E008", f"the file is too large to be a spec ({size}; at most {MAX_SPEC_CHARS} characters "
                      "are read)", Span(file, 1, 1), "a spec is a few kilobytes: is this the right file?")


def _expression(text: str, span: Span, start: str, what: str) -> tuple[lark.Tree, _Builder]:
    stripped = text.strip()
    col = span.col + len(text) - len(text.lstrip())  # blanks before the expression
    tree = _parse(stripped, start, span.file, span.line - 1, col - 1, what)
    return tree, _Builder(span.file, span.line - 1, col - 1)


def parse_address(text: str, span: Span) -> Address:
    """Parse an addressing expression that starts at ``span`` (e.g. inside a YAML string)."""
    tree, builder = _expression(text, span, "address", "invalid addressing expression")
    return builder.address(tree)


def parse_source(text: str, span: Span) -> Ref:
    """Parse one wire source, ``name`` or ``name@prev``, that starts at ``span``."""
    tree, builder = _expression(text, span, "source", "invalid source")
    return builder.source(tree)

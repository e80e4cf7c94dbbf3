"""Completion: what may be written at the cursor, read from the text before it and from the registries.

In a .cog file: a block's kind (or a statement's keyword) at the start of a statement; a kind's parameters
inside its parentheses (with their types and defaults), and their allowed values after ``=``; block names
after ``on``, ``by``, ``<-`` and in an output's sources (memories first after ``on``, controllers first
after ``by``); addressing stages after ``:``, ``|`` and ``+`` (those the memory the block is ``on`` takes);
in the train table, its settings, tasks, optimizers and schedules and their parameters. In a YAML spec the
same, found from the keys above the cursor: a block's fields and parameters, ``kind:`` values, names in
``from:``, ``memory:`` and ``by:``, stages in ``address:``, the sections of ``train:``.

The text is read as it is being typed: nothing here needs it to parse. Block names come from the analysis
(the spec as read, or recovered); when nothing could be read, from a look at the lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cogdsl.editor import catalog
from cogdsl.editor.analysis import Analysis, statements
from cogdsl.editor.positions import lines_of


@dataclass(frozen=True)
class Suggestion:
    """One completion item: its label, what it is (``kind``, ``keyword``, ``param``, ``stage``, ``name``,
    ``value``, ``task`` ...), a short detail, Markdown documentation, and the text to insert."""

    label: str
    what: str
    detail: str = ""
    doc: str = ""
    insert: str | None = None
    sort: str | None = None  # the order among the items (the client sorts by label without it)


def complete(analysis: Analysis, line: int, col: int) -> list[Suggestion]:
    """What may be written at (line, col), 1-based, in the analysed text."""
    lines = lines_of(analysis.text)
    if line < 1 or line > len(lines):
        return []
    names = analysis.names() or lexical_names(analysis.text, analysis.form)
    if analysis.form == "cog":
        return _cog(analysis.text, lines, line, col, names, analysis)
    return _yaml(lines, line, col, names, analysis)


# -- suggestions from the registries --------------------------------------------------------------------------


def _kinds() -> list[Suggestion]:
    return [Suggestion(name, "kind", entry.extra["family"], entry.markdown())
            for name, entry in catalog.kinds().items()]


def _params(entry: catalog.Entry | None, given: set[str], separator: str) -> list[Suggestion]:
    if entry is None:
        return []
    return [Suggestion(p.name, "param", p.summary(), p.markdown(), p.name + separator)
            for p in entry.params if p.name not in given]


def _values(param: catalog.ParamDoc | None) -> list[Suggestion]:
    if param is None:
        return []
    if param.choices is not None:
        return [Suggestion(str(c), "value", f"{param.name}", param.markdown()) for c in param.choices]
    if param.type is bool:
        return [Suggestion(word, "value", param.name, param.markdown()) for word in ("true", "false")]
    return []


def _stages(memory_kind: str | None) -> list[Suggestion]:
    allowed = catalog.kinds()[memory_kind].extra["stages"] if memory_kind in catalog.kinds() else ()
    return [Suggestion(name, "stage", "addressing stage", entry.markdown())
            for name, entry in catalog.stages().items() if not allowed or name in allowed]


def _stage_values(stage: str) -> list[Suggestion]:
    entry = catalog.stages().get(stage)
    return _values(entry.params[0]) if entry is not None and entry.params else []


def _entries(table: str) -> list[Suggestion]:
    return [Suggestion(name, table, table, entry.markdown()) for name, entry in catalog.table(table).items()]


def _settings(given: set[str], separator: str) -> list[Suggestion]:
    found = [Suggestion(name, "setting", "train section", doc, name + separator)
             for name, doc in catalog.TRAIN_TABLES.items() if name not in given]
    found += [Suggestion(name, "setting", p.summary(), p.markdown(), name + separator)
              for name, p in catalog.settings().items() if name not in given]
    return found


def _family(kind: str) -> str:
    entry = catalog.kinds().get(kind)
    return entry.extra["family"] if entry else kind


def _names(names: dict[str, str], first: str | None, exclude: set[str], outputs: bool = False) -> list[Suggestion]:
    """Names to wire, those of family ``first`` first (by sort text: the client sorts by label otherwise)."""
    found = []
    for name, what in names.items():
        if name in exclude or (what == "output" and not outputs):
            continue
        family = what if what in ("input", "output") else _family(what)
        rank = "0" if family == first else "1"
        found.append(Suggestion(name, "name", what, f"`{name}`: {what}", sort=rank + name))
    return found


def _chunk(text: str) -> str:
    """The part of a list being written after its last comma."""
    return text.rsplit(",", 1)[-1]


# -- .cog ---------------------------------------------------------------------------------------------------

_COG_BLOCK = re.compile(r"\s*([A-Za-z_]\w*)\s+([A-Za-z_]\w*)(.*)", re.S)


def _cog(text: str, lines: list[str], line: int, col: int, names: dict[str, str],
         analysis: Analysis) -> list[Suggestion]:
    offset = sum(len(t) + 1 for t in text.split("\n")[:line - 1]) + min(col - 1, len(lines[line - 1]))
    start, _ = next(((s, e) for s, e in statements(text) if s <= offset <= e), (offset, offset))
    statement = text[start:offset]
    if "#" in statement.rsplit("\n", 1)[-1] and not statement.rsplit("\n", 1)[-1].count('"') % 2:
        return []  # in a comment
    opened = re.match(r"\s*train\s*\{", statement)
    if opened:
        segment = re.split(r"[\n;{]", statement[opened.end():])[-1]
        return _cog_train(segment)
    if re.fullmatch(r"\s*\w*", statement):
        keywords = [Suggestion(k, "keyword", "statement") for k in catalog.KEYWORDS]
        return _kinds() + keywords
    if match := re.fullmatch(r"\s*input\s+\w+\s*:\s*\w*", statement):
        return [Suggestion(kind, "value", "input kind", f"`{kind}({key}=N)`") for kind, key
                in catalog.input_kinds().items()]
    if match := re.fullmatch(r"\s*output\s+(\w+)\s*(?::\s*\d*\s*)?=\s*\w*", statement):
        activations = [Suggestion(a, "value", "activation", insert=a + "(") for a in catalog.activations()]
        return activations + _names(names, "controller", {match.group(1)})
    if match := re.fullmatch(r"\s*output\s+(\w+)[^=]*=\s*\w+\s*\(([^)]*)", statement):
        return _names(names, "controller", {match.group(1)}) if "@" not in _chunk(match.group(2)) else _prev()
    match = _COG_BLOCK.fullmatch(statement)
    if match is None or match.group(1) in catalog.KEYWORDS:
        return []
    kind, name, rest = match.groups()
    return _cog_block(kind, name, rest, names)


def _prev() -> list[Suggestion]:
    return [Suggestion("prev", "keyword", "the value at the previous step")]


def _cog_block(kind: str, name: str, rest: str, names: dict[str, str]) -> list[Suggestion]:
    entry = catalog.kinds().get(kind)
    params = re.match(r"\s*\(([^)]*)(\))?", rest)
    if params and params.group(2) is None:  # inside the parentheses
        chunk = _chunk(params.group(1))
        given = set(re.findall(r"(\w+)\s*=", params.group(1)))
        if "=" in chunk:
            return _values(entry.param(chunk.split("=")[0].strip()) if entry else None)
        return _params(entry, given, "=")
    after = rest[params.end():] if params else rest
    if ":" in after:  # the addressing expression
        address = after.split(":", 1)[1]
        piece = re.split(r"[|+]", address)[-1]
        if arguments := re.fullmatch(r"\s*(\w+)\s*\(([^)]*)", piece):
            return _stage_values(arguments.group(1))
        on = re.search(r"\bon\s+(\w+)", after.split(":", 1)[0])
        return _stages(names.get(on.group(1)) if on else None)
    if "<-" in after:
        chunk = _chunk(after.split("<-", 1)[1])
        return _prev() if "@" in chunk else _names(names, "input", {name})
    if re.search(r"\bon\s+\w*$", after):
        return _names(names, "memory", {name})
    if re.search(r"\bby\s+\w*$", after):
        return _names(names, "controller", {name})
    if entry is not None and re.fullmatch(r"(\s+\w+\s+\w+)*\s+\w*", after or " "):
        clauses = {"memory": "on", "by": "by", "from": "<-"}
        return [Suggestion(word, "keyword", f"its {field}") for field, word in clauses.items()
                if field in entry.extra["accepts"] and not re.search(rf"(^|\s){re.escape(word)}\s", after)]
    return []


def _cog_train(segment: str) -> list[Suggestion]:
    if re.fullmatch(r"\s*\w*", segment):
        return _settings(set(), " ")
    if match := re.fullmatch(r"\s*(task|optimizer|schedule)\s+\w*", segment):
        return _entries(match.group(1))
    if match := re.fullmatch(r"\s*(task|optimizer|schedule)\s+(\w+)\s*\(([^)]*)", segment):
        entry = catalog.table(match.group(1)).get(match.group(2))
        chunk = _chunk(match.group(3))
        if "=" in chunk:
            return _values(entry.param(chunk.split("=")[0].strip()) if entry else None)
        return _params(entry, set(re.findall(r"(\w+)\s*=", match.group(3))), "=")
    if match := re.fullmatch(r"\s*(\w+)\s+\w*", segment):
        return _values(catalog.settings().get(match.group(1)))
    return []


# -- YAML ---------------------------------------------------------------------------------------------------

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*)\s*:")


def yaml_path(lines: list[str], line: int, col: int) -> tuple[list[str], str | None, str] | None:
    """Where the cursor is in a YAML spec: the keys above it (``["blocks", "ctrl"]``), the key whose value is
    being written (None at a key's place) and the text of that value so far (or of the key); None in a
    comment."""
    prefix = lines[line - 1][:col - 1]
    path = _ancestors(lines, line, len(prefix) - len(prefix.lstrip()) if prefix.strip() else len(prefix))
    own = _KEY.match(prefix)
    flows: list[tuple[str, int]] = []
    quote = None
    for i, c in enumerate(prefix):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or prefix[i - 1] in " \t"):
            return None
        elif c in "{[":
            flows.append((c, i))
        elif c in "}]" and flows:
            flows.pop()
    if not flows:
        segment = prefix.lstrip()
        if own and prefix.strip() and ":" in segment:
            return path, own.group(2), segment.split(":", 1)[1]
        return path, None, segment
    # flow collections: each '{' after 'key:' adds the key to the path
    for bracket, at in flows:
        before = prefix[:at]
        key = re.search(r"([A-Za-z_][\w-]*)\s*:\s*$", before)
        if bracket == "{" and key:
            path.append(key.group(1))
    bracket, at = flows[-1]
    segment = re.split(r"[,{\[]", prefix[at:])[-1]
    if bracket == "[":
        key = re.search(r"([A-Za-z_][\w-]*)\s*:\s*$", prefix[:at])
        if key and path and path[-1] == key.group(1):
            path.pop()
        return path, key.group(1) if key else None, segment
    if ":" in segment:
        return path, segment.split(":", 1)[0].strip(), segment.split(":", 1)[1]
    return path, None, segment


def _ancestors(lines: list[str], line: int, indent: int) -> list[str]:
    """The block-style keys above ``line`` that hold a line indented by ``indent``, outermost first."""
    found: list[str] = []
    for k in range(line - 2, -1, -1):
        text = lines[k]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        key = _KEY.match(text)
        depth = len(text) - len(text.lstrip())
        if key and depth < indent:
            found.append(key.group(2))
            indent = depth
            if depth == 0:
                break
    return found[::-1]


def _yaml(lines: list[str], line: int, col: int, names: dict[str, str], analysis: Analysis) -> list[Suggestion]:
    where = yaml_path(lines, line, col)
    if where is None:
        return []
    path, key, partial = where
    given = _given_keys(lines, line, col)
    if not path:
        if key is None:
            return [Suggestion(s, "section", "section", doc, s + ": ") for s, doc in catalog.SECTIONS.items()
                    if s not in given]
        return []
    section = path[0]
    if section == "blocks" and len(path) == 2:
        return _yaml_block(path[1], key, partial, names, given, analysis)
    if section == "inputs" and len(path) == 2:
        if key is None:
            return [Suggestion(f, "field", "input field", d, f + ": ") for f, d in catalog.INPUT_FIELDS.items()
                    if f not in given]
        if key == "kind":
            return [Suggestion(k, "value", "input kind") for k in catalog.input_kinds()]
        return []
    if section == "outputs" and len(path) == 2:
        if key is None:
            return [Suggestion(f, "field", "output field", d, f + ": ") for f, d in catalog.OUTPUT_FIELDS.items()
                    if f not in given]
        if key == "activation":
            return [Suggestion(a, "value", "activation") for a in catalog.activations()]
        if key == "from":
            return _prev() if "@" in partial else _names(names, "controller", {path[1]})
        return []
    if section == "train":
        if len(path) == 1:
            if key is None:
                return _settings(given, ": ")
            if key in catalog.TRAIN_TABLES:
                return _entries(key)
            return _values(catalog.settings().get(key))
        if len(path) == 2 and path[1] in catalog.TRAIN_TABLES:
            table = path[1]
            chosen = _table_name(lines, line, table)
            entry = catalog.table(table).get(chosen or "")
            if key is None:
                head = [] if "name" in given else [Suggestion("name", "field", f"the {table}", insert="name: ")]
                return head + _params(entry, given, ": ")
            if key == "name":
                return _entries(table)
            return _values(entry.param(key) if entry else None)
    return []


def _yaml_block(name: str, key: str | None, partial: str, names: dict[str, str], given: set[str],
                analysis: Analysis) -> list[Suggestion]:
    kind = names.get(name)
    entry = catalog.kinds().get(kind or "")
    if key is None:
        fields = [Suggestion("kind", "field", "the block's kind", insert="kind: ")] if "kind" not in given else []
        if entry is not None:
            from cogdsl.compiler.validate import FIELD_SPELLING

            fields += [Suggestion(f, "field", "wiring", FIELD_SPELLING.get(f, ""), f + ": ")
                       for f in sorted(entry.extra["accepts"]) if f not in given]
        return fields + _params(entry, given, ": ")
    if key == "kind":
        return _kinds()
    if key == "memory":
        return _names(names, "memory", {name})
    if key == "by":
        return _names(names, "controller", {name})
    if key == "from":
        return _prev() if "@" in _chunk(partial) else _names(names, "input", {name})
    if key == "address":
        piece = re.split(r"[|+\"']", partial)[-1]
        if arguments := re.fullmatch(r"\s*(\w+)\s*\(([^)]*)", piece):
            return _stage_values(arguments.group(1))
        block = analysis.spec.block(name) if analysis.spec is not None else None
        memory = block.memory.name if block is not None and block.memory is not None else None
        return _stages(names.get(memory) if memory else None)
    return _values(entry.param(key) if entry else None)


def _given_keys(lines: list[str], line: int, col: int) -> set[str]:
    """Keys already written in the mapping the cursor is in: in its flow mapping (``{kind: lstm, ``), or in
    the block-style lines around it at the same indentation."""
    prefix = lines[line - 1][:col - 1]
    text = lines[line - 1]
    if "{" in prefix:
        inner = text[text.rfind("{", 0, len(prefix)) + 1:]
        inner = inner.split("}", 1)[0]
        return set(re.findall(r"([A-Za-z_][\w-]*)\s*:", inner))
    indent = len(prefix) - len(prefix.lstrip()) if prefix.strip() else len(prefix)
    found: set[str] = set()
    for step in (-1, 1):
        k = line - 1 + step
        while 0 <= k < len(lines):
            other = lines[k]
            if other.strip() and not other.lstrip().startswith("#"):
                depth = len(other) - len(other.lstrip())
                if depth < indent:
                    break
                key = _KEY.match(other)
                if depth == indent and key:
                    found.add(key.group(2))
            k += step
    return found


def _table_name(lines: list[str], line: int, table: str) -> str | None:
    """The name a ``task:`` / ``optimizer:`` / ``schedule:`` table gives, on the cursor's line or the lines
    of the table (``name: copy``)."""
    here = re.search(rf"\b{table}\s*:\s*\{{[^}}]*\bname\s*:\s*([\w-]+)", lines[line - 1])
    if here:
        return here.group(1)
    for k in range(line - 1, max(line - 30, -1), -1):
        found = re.match(r"\s*name\s*:\s*([\w-]+)", lines[k])
        if found:
            return found.group(1)
        if re.match(rf"\s*{table}\s*:", lines[k]):
            break
    for k in range(line, min(line + 30, len(lines))):
        found = re.match(r"\s*name\s*:\s*([\w-]+)", lines[k])
        if found:
            return found.group(1)
    return None


# -- names without a spec -----------------------------------------------------------------------------------


def lexical_names(text: str, form: str) -> dict[str, str]:
    """Names defined in a text that could not be read at all, found line by line: for each, ``input``,
    ``output`` or its block's kind."""
    found: dict[str, str] = {}
    if form == "cog":
        for line in text.split("\n"):
            match = re.match(r"\s*(\w+)\s+(\w+)", line)
            if not match:
                continue
            head, name = match.groups()
            if head in ("input", "output"):
                found.setdefault(name, head)
            elif head not in catalog.KEYWORDS:
                found.setdefault(name, head)
        return found
    section = None
    for line in text.split("\n"):
        top = re.match(r"([A-Za-z_]\w*)\s*:", line)
        if top:
            section = top.group(1)
            continue
        entry = re.match(r"(\s+)([A-Za-z_]\w*)\s*:(.*)", line)
        if entry and section in ("inputs", "outputs", "blocks") and len(entry.group(1)) <= 2:
            kind = re.search(r"\bkind\s*:\s*(\w+)", entry.group(3))
            found.setdefault(entry.group(2), {"inputs": "input", "outputs": "output"}.get(
                section, kind.group(1) if kind else ""))
    return found

"""One spec's text as the editor sees it: its diagnostics, and where each name, kind, parameter and stage is.

:func:`analyse` runs cogdsl's own front end on the text (the .cog or YAML reader, then the passes up to the
memory budget, as ``cogdsl validate --no-data`` does: a task's data files are not read while typing) and
never raises: an exception from the front end becomes an E900 diagnostic at the top of the file.

A file being typed rarely parses. Two recoveries keep the editor useful meanwhile:

- **.cog**: a statement the parser refuses is blanked out (every character but new lines becomes a blank,
  so every position stays where it was) and the rest is parsed again, up to :data:`MAX_RECOVERIES` times.
  Each refused statement gives its own diagnostic, so a file with three broken lines shows three errors.
  A file with no ``model`` statement yet is parsed as if it had one at its end.
- **YAML**: the reader reports every problem it can itself (duplicate keys, unknown sections ...); a YAML
  syntax error stops it, and only that one is shown (PyYAML finds one), but the lines around it are
  blanked for the *index*, so that go-to-definition and completion still know the other blocks.

While the text has errors of its own (syntax, structure), the later passes (names, kinds, parameters,
cycles, sizes) are not run on the recovered spec: their findings about a spec with lines missing would be
noise (every use of a block whose line is broken would be "undefined"). Once it parses, every error of
the first pass that finds any is shown, as ``cogdsl validate`` shows them.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from cogdsl.errors import Diagnostic, Span, SpecError
from cogdsl.language.spec import SPEC_SUFFIXES, Spec

MAX_RECOVERIES = 50
"""The most statements of a .cog file blanked out to read the rest (each one is one more error shown)."""

RECOVERY_SECONDS = 2.0
"""The longest the recoveries of one text may take, in all."""

_YAML_SPEC = re.compile(r"^(cogdsl|model|blocks)\s*:", re.MULTILINE)


def form_of(path: str, language_id: str | None = None) -> str | None:
    """"cog" or "yaml" for a document (by its suffix, else the editor's language id), None for neither."""
    form = SPEC_SUFFIXES.get(Path(path).suffix.lower())
    if form is None and language_id in ("cog", "yaml"):
        form = language_id
    return form


def looks_like_spec(text: str, form: str) -> bool:
    """Whether a document is a cogdsl spec: every .cog file is; a YAML file is when it has a top-level
    ``cogdsl:`` (or both ``model:`` and ``blocks:``), so that other YAML files in a project are left alone."""
    if form == "cog":
        return True
    keys = set(_YAML_SPEC.findall(text))
    return "cogdsl" in keys or {"model", "blocks"} <= keys


@dataclass(frozen=True)
class Occurrence:
    """A word of the spec that means something: where it is (1-based line, columns in code points, the end
    exclusive), what it is (``role``), and its owner (a parameter's kind, task, optimizer or schedule; a
    definition's kind, or "input" / "output")."""

    line: int
    col: int
    end: int
    role: str  # definition, reference, kind, param, stage, setting, task, optimizer, schedule, {table}_param
    name: str
    owner: str | None = None


@dataclass
class Analysis:
    """What the editor knows of one text."""

    file: str
    form: str
    text: str
    spec: Spec | None  # as parsed, or as recovered from a text with errors; None when nothing could be read
    diagnostics: list[Diagnostic] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    seconds: float = 0.0

    def at(self, line: int, col: int) -> Occurrence | None:
        """The occurrence under (line, col), 1-based; a position just after a word counts as on it."""
        for occurrence in self.occurrences:
            if occurrence.line == line and occurrence.col <= col <= occurrence.end:
                return occurrence
        return None

    def definition(self, name: str) -> Occurrence | None:
        """Where ``name`` (an input, an output or a block) is defined: its first definition."""
        return next((o for o in self.occurrences if o.role == "definition" and o.name == name), None)

    def uses(self, name: str, declaration: bool = True) -> list[Occurrence]:
        """Every occurrence of the name ``name`` (its definition too, with ``declaration``), in order."""
        roles = ("definition", "reference") if declaration else ("reference",)
        return sorted((o for o in self.occurrences if o.name == name and o.role in roles),
                      key=lambda o: (o.line, o.col))

    def names(self) -> dict[str, str]:
        """Every defined name and what it is: ``input``, ``output`` or its block kind, in order."""
        found: dict[str, str] = {}
        for o in self.occurrences:
            if o.role == "definition" and o.name not in found:
                found[o.name] = o.owner or ""
        return found


def analyse(text: str, file: str, form: str, validate: bool = True) -> Analysis:
    """Read ``text`` (the contents of ``file``, in ``form`` "cog" or "yaml"): the spec as far as it can be
    read, its occurrences and, with ``validate``, every diagnostic. Never raises for any text."""
    started = time.perf_counter()
    try:
        spec, problems = (read_cog if form == "cog" else read_yaml)(text, file)
        diagnostics = problems
        if validate and not problems and spec is not None:
            diagnostics = check_spec(spec)
        occurrences = index(spec, text) if spec is not None else []
        analysis = Analysis(file, form, text, spec, diagnostics, occurrences)
    except Exception as err:  # a bug of cogdsl's: one located diagnostic, never a crash of the server
        analysis = Analysis(file, form, text, None, [internal_error(file, err)])
    analysis.diagnostics = [_in_file(d, file) for d in analysis.diagnostics]
    analysis.seconds = time.perf_counter() - started
    return analysis


def internal_error(file: str, err: BaseException) -> Diagnostic:
    """E900 at the top of ``file`` for an exception no check foresaw (``COGDSL_DEBUG=1`` prints its traceback)."""
    if os.environ.get("COGDSL_DEBUG"):
        traceback.print_exception(err, file=sys.stderr)
    reason = " ".join(str(err).split())[:200] or "no message"
    return Diagnostic("E900", f"internal error while checking this file: {type(err).__name__}: {reason}",
                      Span(file, 1, 1), "this is a bug in cogdsl, not in your spec: please report it with the file")


def _in_file(diagnostic: Diagnostic, file: str) -> Diagnostic:
    """A diagnostic located in another file (a data file a task reads) is shown at the top of this one, with
    where it is in its message."""
    if diagnostic.span.file == file:
        return diagnostic
    where = f" (at {diagnostic.span})" if diagnostic.span.line else f" ({diagnostic.span.file})"
    return Diagnostic(diagnostic.code, diagnostic.message + where, Span(file, 1, 1), diagnostic.hint,
                      diagnostic.severity)


# -- reading, with recovery --------------------------------------------------------------------------------


def read_cog(text: str, file: str) -> tuple[Spec | None, list[Diagnostic]]:
    """A .cog text's spec and the problems of reading it: each statement the reader refuses is reported and
    blanked out, and the rest read again (the module docstring); the spec is the one read in the end."""
    from cogdsl.language.parse_cog import parse_cog

    problems: list[Diagnostic] = []
    current = text.removeprefix("\ufeff")
    shift = len(text) - len(current)  # a BOM is read past: it is no character of the first line
    deadline = time.perf_counter() + RECOVERY_SECONDS
    model_added = False
    for _ in range(MAX_RECOVERIES + 1):
        try:
            return parse_cog(current + ("\nmodel _" if model_added else ""), file), problems
        except SpecError as err:
            found = [d for d in err.diagnostics if d not in problems]
            problems.extend(found)
            if not found or time.perf_counter() > deadline:
                return None, problems
            first = found[0]
            if first.code == "E008":  # too large to read at all
                return None, problems
            if first.code == "E007" and "model" in first.message and not model_added:
                model_added = True  # read what there is as if the model statement were there
                continue
            blanked = blank_statement(current, offset_of(current, first.span, shift))
            if blanked is None:
                return None, problems
            current = blanked
    return None, problems


def read_yaml(text: str, file: str) -> tuple[Spec | None, list[Diagnostic]]:
    """A YAML text's spec (as far as the reader builds it) and every problem the reader reports. After a YAML
    syntax error the problems shown are the text's own, and the spec is that of the text with the line of the
    error (or the last line with something on it before it) blanked, a few times over: for the index only."""
    from cogdsl.language.parse_yaml import parse_yaml_partial

    spec, shown = parse_yaml_partial(text, file)
    current: str | None = text
    problems = shown
    for _ in range(6):
        if spec is not None or not problems or problems[0].code != "E001" or not problems[0].span.line:
            break
        current = _blank_line(current, problems[0].span.line) if current is not None else None
        if current is None:
            break
        spec, problems = parse_yaml_partial(current, file)
    return spec, shown


def _blank_line(text: str, line: int) -> str | None:
    """``text`` with line ``line`` (1-based), or the last line before it with something on it, blanked."""
    lines = text.split("\n")
    target = min(line, len(lines)) - 1
    while target > 0 and not lines[target].strip():
        target -= 1
    if target < 0 or not lines[target].strip():
        return None
    lines[target] = " " * len(lines[target])
    return "\n".join(lines)


def offset_of(text: str, span: Span, shift: int = 0) -> int:
    """The offset in ``text`` of a span's line and column (1-based; lines end at ``\\n``)."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    line = min(max(span.line, 1), len(starts))
    column = span.col - 1 - (shift if line == 1 else 0)
    return min(starts[line - 1] + max(column, 0), len(text))


def statements(text: str) -> list[tuple[int, int]]:
    """The .cog statements of ``text`` as (start, end) offsets, the separator excluded: a statement ends at a
    new line or ';' outside strings, comments and ``{ }`` (a train table is one statement, lines and all)."""
    ranges: list[tuple[int, int]] = []
    start = depth = i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':  # a string runs to its closing quote or the end of its line
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" and j + 1 < n and text[j + 1] != "\n" else 1
            i = j + 1 if j < n and text[j] == '"' else j
            continue
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(depth - 1, 0)
        elif c in "\n;" and depth == 0:
            ranges.append((start, i))
            start = i + 1
        i += 1
    ranges.append((start, n))
    return ranges


def _has_code(text: str) -> bool:
    return bool(re.sub(r"#[^\n]*", "", text).strip())


def blank_statement(text: str, offset: int) -> str | None:
    """``text`` with the statement at ``offset`` (or, when that one holds nothing, the last one before it that
    does) blanked: every character but a new line becomes a blank. None when there is nothing to blank."""
    ranges = statements(text)
    found = [k for k, (start, end) in enumerate(ranges) if start <= offset <= end]
    chosen = next((k for k in found if _has_code(text[ranges[k][0]:ranges[k][1]])), None)
    if chosen is None:
        before = [k for k, (start, _) in enumerate(ranges) if start <= offset]
        chosen = next((k for k in reversed(before) if _has_code(text[ranges[k][0]:ranges[k][1]])), None)
    if chosen is None:
        return None
    start, end = ranges[chosen]
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


# -- checking -----------------------------------------------------------------------------------------------


def check_spec(spec: Spec) -> list[Diagnostic]:
    """Every problem of the first pass that finds any (graph, validate, sizes, infer, footprint), as
    ``cogdsl validate --no-data`` reports them, or with none, the warnings: a task that reads data files
    stops the check after validation."""
    from cogdsl.compiler.pipeline import PASSES, Compilation
    from cogdsl.compiler.task_sizes import task_of

    compilation = Compilation(spec, sizes_may_wait=True)
    try:
        for step in PASSES:
            if step.name == "lower":
                break
            if step.name == "sizes":
                assert compilation.validated is not None
                task = task_of(spec, compilation.validated.train)
                if task is not None and task.reads_files:
                    break
            step.run(compilation)
            if compilation.sink:
                return list(compilation.sink.items)
    except SpecError as err:  # a pass that raises its problems (a size left to a task that has none)
        return list(err.diagnostics)
    return list(compilation.sink.warnings)


# -- the index ----------------------------------------------------------------------------------------------


def index(spec: Spec, text: str) -> list[Occurrence]:
    """Every located name, kind, parameter, stage and train entry of ``spec`` (read from ``text``), in order."""
    from cogdsl.editor.catalog import TRAIN_TABLES
    from cogdsl.editor.positions import lines_of

    lines = lines_of(text)
    found: list[Occurrence] = []

    def add(span: Span, name: str, role: str, owner: str | None = None) -> None:
        col = _locate(lines, span, name)
        if col is not None:
            found.append(Occurrence(span.line, col, col + len(name), role, name, owner))

    for item in spec.inputs:
        add(item.span, item.name, "definition", "input")
    for output in spec.outputs:
        add(output.span, output.name, "definition", "output")
        for ref in output.sources:
            add(ref.span, ref.name, "reference")
    for block in spec.blocks:
        add(block.span, block.name, "definition", block.kind)
        add(block.kind_span, block.kind, "kind")
        for name, span in block.param_spans.items():
            add(span, name, "param", block.kind)
        for ref in (*block.sources, block.memory, block.by):
            if ref is not None:
                add(ref.span, ref.name, "reference")
        if block.address is not None:
            for stage in block.address.stages:
                add(stage.span, stage.name, "stage")
    train = spec.train
    if train is not None and isinstance(train.data, dict):
        for key, value in train.data.items():
            add(train.key_span(key), key, "setting")
            if key not in TRAIN_TABLES:
                continue
            if isinstance(value.data, str):
                add(value.span, value.data, key)
            elif isinstance(value.data, dict):
                name = value.data.get("name")
                chosen = name.data if name is not None and isinstance(name.data, str) else None
                if chosen is not None and name is not None:
                    add(name.span, chosen, key)
                for param in value.data:
                    if param != "name":
                        add(value.key_span(param), param, f"{key}_param", chosen)
    found.sort(key=lambda o: (o.line, o.col))
    return found


def _locate(lines: list[str], span: Span, name: str) -> int | None:
    """The column where ``name`` is written at or after ``span`` on its line (past a quote that opens it),
    or None when it is not there (a span the reader made up)."""
    if not name or span.line < 1 or span.line > len(lines):
        return None
    text = lines[span.line - 1]
    start = max(span.col - 1, 0)
    if text.startswith(name, start):
        return start + 1
    if start < len(text) and text[start] in "'\"" and text.startswith(name, start + 1):
        return start + 2
    match = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])").search(text, start)
    return match.start() + 1 if match else None

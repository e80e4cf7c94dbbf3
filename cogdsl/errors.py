"""One error hierarchy for everything user input can cause.

Every spec problem is a :class:`Diagnostic`: a source location, a stable code, a
message, and a hint. Rendered, it reads like a compiler error::

    specs/bad.yaml:7:12: error[E201]: unknown block kind 'lstn'
        ctrl: {kind: lstn, hidden: 100}
                     ^
      hint: did you mean 'lstm'?

The codes are listed in :data:`CODES`; tools match on them, so they never change meaning.
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Stable error codes. Grouped by the pass that raises them.
CODES: dict[str, str] = {
    # reading the file
    "E001": "syntax error",
    "E002": "YAML tag that would construct an object",
    "E003": "duplicate key",
    "E004": "unsupported cogdsl format version",
    "E005": "wrong structure (a section or field has the wrong shape)",
    "E006": "unknown top-level section or field",
    "E007": "missing required section or field",
    "E008": "file cannot be read",
    # blocks and parameters
    "E201": "unknown block kind",
    "E202": "unknown parameter",
    "E203": "missing parameter",
    "E204": "parameter has the wrong type",
    "E205": "parameter out of range or not an allowed value",
    "E206": "field not accepted by this kind",
    # references and graph
    "E301": "reference to an undefined name",
    "E302": "duplicate name",
    "E303": "reference to a block of the wrong kind",
    "E304": "cycle with no delay",
    "E305": "head without a memory or a controller",
    "E306": "memory that no head touches",
    "E307": "unsupported delay",
    "E308": "block has no inputs",
    "E309": "heads on one memory that cannot run together",
    "E310": "a wire carries the wrong type of value (word ids where a vector is read, or the reverse)",
    # addressing expressions
    "E401": "unknown addressing stage",
    "E402": "addressing stages in an invalid order or combination",
    "E403": "addressing stage argument invalid",
    # shapes
    "E501": "size mismatch",
    "E502": "the model is over the memory limit (parameters and the state of a training batch)",
    # training section
    "E601": "unknown task",
    "E602": "invalid task parameter",
    "E603": "invalid training setting",
    "E604": "a data file the task reads is missing or malformed",
    # cogdsl itself
    "E900": "internal error: a bug in cogdsl, not in the spec (reported per file; the check goes on)",
    # warnings: the spec compiles and trains, but part of it does nothing or less than it says
    "W301": "a block that no output or loss term depends on (it is computed for nothing)",
    "W401": "a shift wider than its memory needs (a narrower one already reaches every slot)",
}


@dataclass(frozen=True)
class Span:
    """A location in a source file; line and column are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<unknown>", 0, 0)


def escape(text: str) -> str:
    """``text`` with every character that is not printable (control characters, line and paragraph separators,
    format characters such as a BOM or a bidi override, tabs) written as a Python escape, ``\\x07``,
    ``\\u2028``: what is shown is one line of visible characters."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped_char(c) for c in text)


def _escaped_char(c: str) -> str:
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
    if c in named:
        return named[c]
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quoted(text: str, limit: int = 40) -> str:
    """Found text as a message quotes it: ``'text'``, escaped (:func:`escape`), and cut to ``limit`` characters
    with its length named when it is longer, so that a headline stays one short line."""
    if len(text) > limit:
        return f"'{escape(text[:limit - 10])}...' ({len(text)} characters)"
    return f"'{escape(text)}'"


def _width(c: str) -> int:
    """Terminal columns of one (printable) character: 2 for a wide East Asian one, 0 for a combining mark."""
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def source_line(source: str, line: int) -> str | None:
    """Line ``line`` (1-based) of ``source`` as the parsers count lines: only ``\\n`` ends a line (a ``\\r``
    before it belongs to the line end), never a form feed, a vertical tab, NEL, U+2028 or U+2029 as
    :meth:`str.splitlines` would have it. None past the last line."""
    if line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return None
    end = source.find("\n", start)
    if end < 0 and start == len(source):
        return None  # the nothing after a last new line
    text = source[start:] if end < 0 else source[start:end]
    return text.removesuffix("\r")


def shown_line(text: str, col: int) -> tuple[str, int]:
    """A source line as it is shown under a headline, and the terminal column (0-based) of character ``col``
    (1-based) in it: a tab is one blank, other characters that are not printable are escaped."""
    text = text.replace("\t", " ")
    if text.isascii() and text.isprintable():
        return text, max(col - 1, 0)
    shown: list[str] = []
    caret = None
    width = 0
    for k, c in enumerate(text, start=1):
        if k == col:
            caret = width
        piece = c if c.isprintable() else _escaped_char(c)
        shown.append(piece)
        width += len(piece) if len(piece) > 1 else _width(piece)
    if caret is None:  # at or past the end of the line
        caret = width + max(col - 1 - len(text), 0)
    return "".join(shown), caret


@dataclass
class Diagnostic:
    """One located problem in a spec."""

    code: str
    message: str
    span: Span = NO_SPAN
    hint: str | None = None
    severity: str = "error"

    def __post_init__(self) -> None:
        assert self.code in CODES, f"unregistered diagnostic code {self.code}"
        # one line each, whatever text they quote
        self.message = escape(self.message)
        if self.hint is not None:
            self.hint = escape(self.hint)

    def headline(self) -> str:
        """``path:line:col: error[CODE]: message`` (the first line of the rendering)."""
        where = str(self.span) if self.span.line else self.span.file
        return f"{escape(where)}: {self.severity}[{self.code}]: {escape(self.message)}"

    def render(self, source: str | None = None) -> str:
        """The headline, the offending source line with a caret, and the hint.

        The line is found as the parsers count lines (:func:`source_line`), and shown escaped
        (:func:`shown_line`), with the caret under the column's character."""
        lines = [self.headline()]
        text = source_line(source, self.span.line) if source is not None else None
        if text is not None:
            shown, caret = shown_line(text, self.span.col)
            lines.append(f"    {shown}")
            lines.append("    " + " " * caret + "^")
        if self.hint:
            lines.append(f"  hint: {escape(self.hint)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class CogdslError(Exception):
    """Base of every error cogdsl raises for bad input."""


class SpecError(CogdslError):
    """A spec has one or more problems; ``diagnostics`` holds them all, in the order the checks found them, not
    sorted by place: a check runs after those whose product it reads, so a cause comes before the problems it
    leads to (an attention's unknown ``output=`` value, then the output that reads it as a pointer)."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.sources.get(d.span.file)) for d in self.diagnostics)

    def to_json(self) -> str:
        return json.dumps([d.to_json() for d in self.diagnostics], indent=2)


class SpecSyntaxError(SpecError):
    """The text could not be parsed (YAML or .cog syntax)."""


class ShapeError(SpecError):
    """Sizes that do not fit together."""


class SpecWarning(UserWarning):
    """A W-coded :class:`Diagnostic`, issued through Python's :mod:`warnings` when a spec compiles: filter it
    as any warning (``warnings.simplefilter("error", SpecWarning)`` turns it into an exception); its text is
    the rendered diagnostic, with the source line and the hint."""

    def __init__(self, diagnostic: Diagnostic, source: str | None = None):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.render(source))


class CheckpointError(CogdslError):
    """A checkpoint is missing, corrupt, or belongs to another spec."""


class UsageError(CogdslError):
    """Wrong command-line use: a missing file, a bad option, an existing output folder."""


class DataFileError(CogdslError):
    """A data file (bAbI text, sequence arrays, your own inputs) is missing or malformed.

    ``str(err)`` is ``path:line: message`` (``path: message`` when the whole file is meant, line 0),
    so an editor or a terminal can jump to the line."""

    def __init__(self, path: str | object, message: str, line: int = 0) -> None:
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A ``did you mean 'x'?`` hint for the closest choice, or None if nothing is close."""
    listed = sorted(choices)
    same = [c for c in listed if c.lower() == str(name).lower()]  # `kind: LSTM` means lstm
    close = same or difflib.get_close_matches(name, listed, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def one_of(choices: Iterable[str]) -> str:
    """``'a', 'b' or 'c'``."""
    items = [f"'{c}'" for c in sorted(choices)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def hint_for(name: str, choices: Iterable[str], what: str) -> str:
    """A did-you-mean hint, or failing that the list of allowed values."""
    choices = list(choices)
    return did_you_mean(name, choices) or f"{what} are {one_of(choices)}"


@dataclass
class DiagnosticSink:
    """Collects diagnostics; passes report into one and keep going, so every error is found."""

    items: list[Diagnostic] = field(default_factory=list)
    # Kept apart from ``items``: a warning never stops the passes, and ``bool(sink)`` counts errors only.
    warnings: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span = NO_SPAN, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def warn(self, code: str, message: str, span: Span = NO_SPAN, hint: str | None = None) -> None:
        """A W code: the spec compiles, but part of it does nothing or less than it says."""
        assert code.startswith("W"), f"{code} is an error code, not a warning's"
        self.warnings.append(Diagnostic(code, message, span, hint, "warning"))

    def __bool__(self) -> bool:
        return bool(self.items)

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
    # training section
    "E601": "unknown task",
    "E602": "invalid task parameter",
    "E603": "invalid training setting",
    "E604": "a data file the task reads is missing or malformed",
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

    def headline(self) -> str:
        """``path:line:col: error[CODE]: message`` (the first line of the rendering)."""
        where = str(self.span) if self.span.line else self.span.file
        return f"{where}: {self.severity}[{self.code}]: {self.message}"

    def render(self, source: str | None = None) -> str:
        """The headline, the offending source line with a caret, and the hint."""
        lines = [self.headline()]
        if source is not None and self.span.line >= 1:
            text_lines = source.splitlines()
            if self.span.line <= len(text_lines):
                text = text_lines[self.span.line - 1].expandtabs(1)
                lines.append(f"    {text}")
                lines.append("    " + " " * max(self.span.col - 1, 0) + "^")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
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
    """A spec has one or more problems; ``diagnostics`` holds them all, in order."""

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

    def error(self, code: str, message: str, span: Span = NO_SPAN, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def __bool__(self) -> bool:
        return bool(self.items)

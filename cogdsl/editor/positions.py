"""Positions between cogdsl and the Language Server Protocol.

cogdsl's spans are 1-based: line ``n`` is the n-th line as every cogdsl parser counts lines (only ``\\n`` ends
one, a ``\\r`` before it belongs to the line end, :func:`cogdsl.errors.source_line`), and column ``c`` is the
c-th character (code point) of that line. LSP positions are 0-based, and their ``character`` counts UTF-16
code units: a character outside the Basic Multilingual Plane (an emoji, U+1F600) is two of them. So
``x = "😀"; y`` has ``y`` at cogdsl column 10 and LSP character 10 (0-based 9, plus one for the emoji's
second unit).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def lines_of(text: str) -> list[str]:
    """The lines of ``text`` as cogdsl counts them (only ``\\n`` ends a line; a ``\\r`` before it is dropped)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def utf16_length(text: str) -> int:
    """How many UTF-16 code units ``text`` is."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def to_lsp(lines: list[str], line: int, col: int) -> tuple[int, int]:
    """cogdsl's (line, column), 1-based in code points, as LSP's (line, character), 0-based in UTF-16 units.

    A span with line 0 (a whole file) is the start of the file; a line or column past the text is clamped to
    its end."""
    if line < 1 or not lines:
        return 0, 0
    index = min(line, len(lines)) - 1
    text = lines[index]
    chars = min(max(col - 1, 0), len(text)) if line <= len(lines) else len(text)
    return index, utf16_length(text[:chars])


def from_lsp(lines: list[str], line: int, character: int) -> tuple[int, int]:
    """LSP's (line, character), 0-based in UTF-16 units, as cogdsl's (line, column), 1-based in code points."""
    if not lines:
        return 1, 1
    index = min(max(line, 0), len(lines) - 1)
    text = lines[index]
    units = 0
    for k, c in enumerate(text):
        if units >= character:
            return index + 1, k + 1
        units += 2 if ord(c) > 0xFFFF else 1
    return index + 1, len(text) + 1


def token_end(lines: list[str], line: int, col: int) -> int:
    """The column (1-based, exclusive) where the token at (line, col) ends: a name or a number runs to its
    last character, a string to its closing quote; anything else is one character wide. A column at or past
    the end of the line gives the column itself (an empty range)."""
    if line < 1 or line > len(lines):
        return col
    text = lines[line - 1]
    start = col - 1
    if start < 0 or start >= len(text):
        return col
    match = re.compile(r"[A-Za-z0-9_.@+-]+|\"(?:\\.|[^\"\\])*\"?|'[^']*'?").match(text, start)
    return col + (len(match.group()) if match else 1)


def word_at(lines: list[str], line: int, col: int) -> tuple[str, int, int] | None:
    """The name (``[A-Za-z_][A-Za-z0-9_]*``) under or just before (line, col), with its start and end columns
    (1-based, the end exclusive); None when there is none."""
    if line < 1 or line > len(lines):
        return None
    text = lines[line - 1]
    for match in _WORD.finditer(text):
        if match.start() + 1 <= col <= match.end() + 1:
            return match.group(), match.start() + 1, match.end() + 1
    return None

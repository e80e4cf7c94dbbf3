"""Rewrite the README's generated reference block: ``python -m cogdsl.docs_sync README.md``."""

from __future__ import annotations

import sys
from pathlib import Path

from cogdsl.docs import reference

START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def with_reference(text: str) -> str:
    """``text`` with everything between the reference markers replaced by the generated tables."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference()}\n{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(with_reference(path.read_text(encoding="utf-8")), encoding="utf-8")

"""Rewrite the generated blocks of Markdown files: ``python -m cogdsl.docs_sync docs/reference.md`` (the
reference tables), ``python -m cogdsl.docs_sync docs/tasks.md`` (the task reference), or with no argument
both (:data:`GENERATED`, relative to the current folder, the repository root)."""

from __future__ import annotations

import sys
from pathlib import Path

from cogdsl.docs import reference, task_reference

START, END = "<!-- reference:start -->", "<!-- reference:end -->"
TASKS_START, TASKS_END = "<!-- tasks:start -->", "<!-- tasks:end -->"

GENERATED = ("docs/reference.md", "docs/tasks.md")
"""The files that hold generated blocks; ``tests/test_docs.py`` and ``tests/test_task_reference.py`` keep
them in sync with the registries."""


def _replace_between(text: str, start: str, end: str, generated: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{generated}\n{end}{tail}"


def with_reference(text: str) -> str:
    """``text`` with everything between the reference markers replaced by the generated tables."""
    return _replace_between(text, START, END, reference())


def with_task_reference(text: str) -> str:
    """``text`` with everything between the task markers replaced by :func:`cogdsl.docs.task_reference`."""
    return _replace_between(text, TASKS_START, TASKS_END, task_reference())


def synced(text: str) -> str:
    """``text`` with each generated block it holds rewritten; a file with no task block is given the
    reference tables (and, as before, one with neither block is an error)."""
    if TASKS_START in text:
        text = with_task_reference(text)
    if START in text or TASKS_START not in text:
        text = with_reference(text)
    return text


def sync(path: Path) -> None:
    """Rewrite the generated blocks of the file at ``path`` in place."""
    path.write_text(synced(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    for name in sys.argv[1:] or GENERATED:
        sync(Path(name))

"""What a hover shows: the registry's documentation of the kind, parameter, stage, task, optimizer, schedule
or train setting under the cursor, and for a block name what the block is and where it is defined.

The word under the cursor is looked up in the analysis's index (:mod:`cogdsl.editor.analysis`); in a text
that could not be read at all, a word that names a kind, a stage or a task still shows its documentation.
"""

from __future__ import annotations

from cogdsl.editor import catalog
from cogdsl.editor.analysis import Analysis, Occurrence
from cogdsl.editor.positions import lines_of, word_at


def hover_text(analysis: Analysis, line: int, col: int) -> tuple[str, tuple[int, int, int]] | None:
    """Markdown for the word at (line, col) (1-based) and the word's (line, start, end) columns; None when
    there is nothing to say."""
    occurrence = analysis.at(line, col)
    if occurrence is not None:
        text = describe(occurrence, analysis)
        return (text, (occurrence.line, occurrence.col, occurrence.end)) if text else None
    word = word_at(lines_of(analysis.text), line, col)
    if word is None:
        return None
    name, start, end = word
    for entries in (catalog.kinds(), catalog.stages(), catalog.tasks()):
        if name in entries:
            return entries[name].markdown(), (line, start, end)
    return None


def describe(occurrence: Occurrence, analysis: Analysis) -> str | None:
    """The Markdown of one occurrence."""
    role, name, owner = occurrence.role, occurrence.name, occurrence.owner
    if role == "kind":
        entry = catalog.kinds().get(name)
        return entry.markdown() if entry else f"**{name}**: not a block kind of cogdsl"
    if role == "param":
        entry = catalog.kinds().get(owner or "")
        param = entry.param(name) if entry else None
        return f"{param.markdown()}\n\n(a parameter of `{owner}`)" if param else None
    if role == "stage":
        entry = catalog.stages().get(name)
        return entry.markdown() if entry else f"**{name}**: not an addressing stage of cogdsl"
    if role in ("task", "optimizer", "schedule"):
        entry = catalog.table(role).get(name)
        return entry.markdown() if entry else f"**{name}**: not a {role} of cogdsl"
    if role.endswith("_param"):
        entry = catalog.table(role.removesuffix("_param")).get(owner or "")
        param = entry.param(name) if entry else None
        return f"{param.markdown()}\n\n(a parameter of {entry.what} `{owner}`)" if param and entry else None
    if role == "setting":
        if name in catalog.TRAIN_TABLES:
            return f"**{name}**: {catalog.TRAIN_TABLES[name]}"
        setting = catalog.settings().get(name)
        return f"{setting.markdown()}\n\n(a setting of the train section)" if setting else None
    if role in ("definition", "reference"):
        return _name(name, analysis)
    return None


def _name(name: str, analysis: Analysis) -> str:
    """A block, input or output name: what it is and where it is defined."""
    definition = analysis.definition(name)
    if definition is None:
        return f"**{name}**: not defined in this spec"
    what = definition.owner or ""
    where = f"defined at line {definition.line}"
    if what in ("input", "output"):
        return f"**{name}**: an {what}, {where}"
    entry = catalog.kinds().get(what)
    if entry is None:
        return f"**{name}**: a block of kind `{what}`, {where}"
    first = entry.doc.split(". ")[0].rstrip(".")
    return f"**{name}**: a `{what}` block ({entry.extra['family']}), {where}\n\n{first}."

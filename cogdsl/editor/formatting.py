"""Formatting a spec in the editor: what ``cogdsl fmt`` writes, in the document's own form.

``cogdsl fmt`` reads a spec, validates it without its data, and writes it out with
:func:`cogdsl.language.emit.to_cog` or :func:`~cogdsl.language.emit.to_yaml`; here the same three steps
run on the editor's text. Two texts are left as they are, with the reason: one with errors (there is no
spec to write), and one with comments, which the IR does not keep, so ``cogdsl fmt`` would drop them.
"""

from __future__ import annotations

import re

import yaml

from cogdsl.errors import SpecError


def count_comments(text: str, form: str) -> int:
    """How many comments ``text`` holds (a ``#`` outside strings, to the end of its line)."""
    if form == "cog":
        from cogdsl.language.parse_cog import _SCAN

        return sum(1 for match in _SCAN.finditer(text) if match.group().startswith("#"))
    try:
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return text.count("#")
    spans = [(t.start_mark.pointer, t.end_mark.pointer) for t in tokens if isinstance(t, yaml.ScalarToken)]
    count = 0
    for match in re.finditer("#", text):
        at = match.start()
        starts_comment = at == 0 or text[at - 1] in " \t\n"
        if starts_comment and not any(start <= at < end for start, end in spans):
            count += 1
    return count


def format_text(text: str, file: str, form: str) -> tuple[str | None, str | None]:
    """``(formatted text, None)``, or ``(None, why not)``: the text has errors or comments."""
    from cogdsl.compiler.pipeline import parse_text, validate_spec
    from cogdsl.language.emit import to_cog, to_yaml

    comments = count_comments(text, form)
    if comments:
        plural = "s" if comments != 1 else ""
        return None, (f"not formatted: cogdsl fmt writes the spec from its parsed form, which keeps no comments, "
                      f"and this file has {comments} comment{plural} (the 'doc' field is kept)")
    try:
        spec = parse_text(text.removeprefix("\ufeff"), file, form)
        validate_spec(spec)
    except SpecError as err:
        return None, f"not formatted: the spec has {len(err.diagnostics)} error(s) to fix first"
    return (to_cog(spec) if form == "cog" else to_yaml(spec)), None

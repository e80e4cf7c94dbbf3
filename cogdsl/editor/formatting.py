"""Formatting a spec in the editor: what ``cogdsl fmt`` writes, in the document's own form.

``cogdsl fmt`` reads a spec, validates it without its data, and writes it out with
:func:`cogdsl.language.emit.to_cog` or :func:`~cogdsl.language.emit.to_yaml`; here the same three steps
run on the editor's text, comments and all. A text with errors is left as it is, with the reason (there is no
spec to write), and so would be one whose comments did not all come along.
"""

from __future__ import annotations

from cogdsl.errors import SpecError


def count_comments(text: str, form: str) -> int:
    """How many comments ``text`` holds (a ``#`` outside strings, to the end of its line)."""
    from cogdsl.language.comments import comment_starts

    return len(comment_starts(text, form))


def format_text(text: str, file: str, form: str) -> tuple[str | None, str | None]:
    """``(formatted text, None)``, or ``(None, why not)``: the text has errors, or a comment would not come
    along (:mod:`cogdsl.language.comments` carries each to its entry; this is the check that none is lost)."""
    from cogdsl.compiler.pipeline import parse_text, validate_spec
    from cogdsl.language.emit import to_cog, to_yaml

    try:
        spec = parse_text(text.removeprefix("\ufeff"), file, form)
        validate_spec(spec)
    except SpecError as err:
        return None, f"not formatted: the spec has {len(err.diagnostics)} error(s) to fix first"
    formatted = to_cog(spec) if form == "cog" else to_yaml(spec)
    before, after = count_comments(text, form), count_comments(formatted, form)
    if after != before:
        return None, (f"not formatted: the file has {before} comment(s) and cogdsl fmt would write {after}; "
                      "please report the file to the cogdsl developers")
    return formatted, None

"""A spec's comments, attached to the entries they describe, so that ``cogdsl fmt`` carries them from one form
to the other.

An entry is a line of the spec that either form writes as one line: the header's ``cogdsl``, ``model`` and
``doc``, each input, output and block, and each key of the train section. A comment on a line of its own goes
before the next entry (with any comments between them, in order); a comment after an entry, on its line, stays
after it (after the last entry of a line that holds several, as ``batch 16; steps 500  # ...`` does); comments
after the last entry stay at the end. Comments are found as each form's reader finds them
(:func:`comment_starts`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from cogdsl.language.parse_cog import looks_like_cog
from cogdsl.language.spec import Spec

Entry = tuple[str, str]  # (section, name): ("header", "model"), ("inputs", "x"), ("blocks", "ctrl"), ("train", "seed")


@dataclass
class Comments:
    """A spec's comments by the entry they belong to; each comment's text is as written, ``#`` included."""

    leading: dict[Entry, list[str]] = field(default_factory=dict)
    trailing: dict[Entry, str] = field(default_factory=dict)
    end: list[str] = field(default_factory=list)

    def before(self, entry: Entry, indent: str = "") -> list[str]:
        """The comment lines to write before ``entry``."""
        return [indent + text for text in self.leading.get(entry, [])]

    def after(self, entry: Entry, line: str) -> str:
        """``line`` (the entry written out) with its trailing comment."""
        text = self.trailing.get(entry)
        return f"{line}  {text}" if text else line


def comment_starts(text: str, form: str) -> list[int]:
    """Where each comment of ``text`` starts (the offset of its ``#``; it runs to the end of its line), as the
    form's own reader sees them: in .cog a ``#`` outside a string; in YAML a ``#`` at a line's start or after a
    blank and outside every scalar (a text PyYAML cannot scan: every such ``#``)."""
    if form == "cog":
        from cogdsl.language.parse_cog import _SCAN

        return [match.start() for match in _SCAN.finditer(text) if match.group().startswith("#")]
    try:
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        tokens = []
    scalars = [(t.start_mark.pointer, t.end_mark.pointer) for t in tokens if isinstance(t, yaml.ScalarToken)]
    return [match.start() for match in re.finditer("#", text)
            if (match.start() == 0 or text[match.start() - 1] in " \t\n")
            and not any(start <= match.start() < end for start, end in scalars)]


def text_comments(text: str, form: str) -> list[tuple[int, bool, str]]:
    """Each comment of ``text`` as (its line, from 1; whether code stands before it on that line; its text)."""
    found = []
    for start in comment_starts(text, form):
        line_start = text.rfind("\n", 0, start) + 1
        end = text.find("\n", start)
        found.append((text.count("\n", 0, start) + 1, bool(text[line_start:start].strip()),
                      text[start:end if end >= 0 else len(text)].rstrip()))
    return found


def entries(spec: Spec) -> list[tuple[int, Entry]]:
    """Every entry of ``spec`` with the line it starts on in the text it was read from (entries with no known
    line left out), in the order the spec holds them."""
    found: list[tuple[int, Entry]] = [(spec.version.span.line, ("header", "cogdsl")),
                                      (spec.model.span.line, ("header", "model"))]
    if spec.doc is not None:
        found.append((spec.doc.span.line, ("header", "doc")))
    found += [(item.span.line, ("inputs", item.name)) for item in spec.inputs]
    found += [(item.span.line, ("outputs", item.name)) for item in spec.outputs]
    found += [(block.span.line, ("blocks", block.name)) for block in spec.blocks]
    if spec.train is not None and isinstance(spec.train.data, dict):
        found += [(spec.train.key_span(key).line, ("train", key)) for key in spec.train.data]
    return [(line, entry) for line, entry in found if line > 0]


def spec_comments(spec: Spec) -> Comments:
    """The comments of the text ``spec`` was read from (none for a spec made in Python)."""
    comments = Comments()
    if not spec.source:
        return comments
    by_line: dict[int, list[Entry]] = {}
    for line, entry in sorted(entries(spec), key=lambda item: item[0]):
        by_line.setdefault(line, []).append(entry)
    form = "cog" if spec.file.endswith(".cog") or (not spec.file.endswith((".yaml", ".yml"))
                                                   and looks_like_cog(spec.source)) else "yaml"
    lines = sorted(by_line)
    waiting: list[str] = []
    for line, after_code, text in text_comments(spec.source, form):
        while lines and lines[0] < line:  # entries before this comment take the comments waiting for them
            if waiting:
                comments.leading.setdefault(by_line[lines[0]][0], []).extend(waiting)
                waiting = []
            lines.pop(0)
        if after_code and lines and lines[0] == line:
            comments.trailing[by_line[line][-1]] = text
        else:  # on its own line, or after a line that is no entry (`train {`, `blocks:`): before the next entry
            waiting.append(text)
    if waiting and lines:
        comments.leading.setdefault(by_line[lines[0]][0], []).extend(waiting)
        waiting = []
    comments.end = waiting
    return comments


def with_yaml_comments(text: str, comments: Comments) -> str:
    """YAML that :func:`cogdsl.language.emit.to_yaml` wrote, with ``comments`` put back at their entries: the
    header's keys at the top level, inputs, outputs, blocks and train keys two spaces in. A trailing comment of an
    entry that PyYAML wrapped over several lines goes before it instead."""
    if not (comments.leading or comments.trailing or comments.end):
        return text
    lines = text.splitlines()
    out: list[str] = []
    section = "header"
    for index, line in enumerate(lines):
        entry: Entry | None = None
        indent = ""
        if line and not line.startswith(" "):
            key = line.split(":", 1)[0]
            if key in ("inputs", "outputs", "blocks", "train"):
                section = key
            else:
                section, entry = "header", ("header", key)
        elif line.startswith("  ") and not line.startswith("   ") and section != "header":
            entry, indent = (section, line[2:].split(":", 1)[0].strip("'\"")), "  "  # 'on': PyYAML quotes some names
        if entry is None:
            out.append(line)
            continue
        out += comments.before(entry, indent)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        # the entry goes on over the next line (a long flow mapping, a long doc string): a comment at its end
        # would cut it, so it goes before; after `key:` with its mapping below, the comment may stay.
        wrapped = len(following) - len(following.lstrip(" ")) > len(indent) and not line.rstrip().endswith(":")
        if wrapped and entry in comments.trailing:
            out += [indent + comments.trailing[entry], line]
        else:
            out.append(comments.after(entry, line))
    out += comments.end
    return "\n".join(out) + "\n"

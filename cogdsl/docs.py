"""Reference tables generated from the registries: block kinds, addressing stages, error codes, tasks.

``python -m cogdsl.docs`` prints the first three as Markdown; ``docs/reference.md`` holds this output between
``<!-- reference:start -->`` and ``<!-- reference:end -->``, and a test keeps the two equal.
``python -m cogdsl.docs tasks`` prints the task reference (:func:`task_reference`), which
``docs/tasks.md`` holds between ``<!-- tasks:start -->`` and ``<!-- tasks:end -->``.
"""

from __future__ import annotations

import json
import re
import sys

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import STAGES
from cogdsl.blocks.base import Param
from cogdsl.errors import CODES
from cogdsl.language.spec import SIZE_KEYS
from cogdsl.tasks import TASKS, Task, TaskParam


def _param(param: Param) -> str:
    text = f"`{param.name}`"
    if param.required:
        text += " (required"
    else:
        text += f" (default `{param.default}`"
    if param.choices is not None:
        text += f"; one of {', '.join(f'`{c}`' for c in param.choices)}"
    elif param.minimum is not None or param.maximum is not None:
        low = "" if param.minimum is None else f"{param.minimum} ≤ "
        high = "" if param.maximum is None else f" ≤ {param.maximum}"
        text += f"; {low}{param.name}{high}"
    return text + ")"


def reference() -> str:
    lines = ["## Block kinds", "", "| kind | family | what it is | parameters |", "|---|---|---|---|"]
    for kind in sorted(REGISTRY.values(), key=lambda k: (k.catalogued_as or k.family, k.kind)):
        params = "<br>".join(_param(p) for p in kind.params) or "—"
        lines.append(f"| `{kind.kind}` | {kind.catalogued_as or kind.family} | {kind.doc} | {params} |")
    lines += ["", "## Addressing stages", "",
              "| stage | arguments | works on | what it does | interface fields per head |", "|---|---|---|---|---|"]
    for stage in STAGES.values():
        args = ", ".join(_param(p) for p in stage.args) or "—"
        defaults = {p.name: p.default for p in stage.args}
        memories = sorted(k for k, kind in REGISTRY.items() if stage.name in getattr(kind, "stages", ()))
        per_memory = {m: ", ".join(f"`{f.name}` ({f.activation})" for f in stage.fields(defaults, 1, m))
                      for m in memories}
        if len(set(per_memory.values())) == 1:
            fields = per_memory[memories[0]]
        else:
            fields = "; ".join(f"on `{m}`: {text}" for m, text in per_memory.items())
        works_on = ", ".join(f"`{m}`" for m in memories)
        lines.append(f"| `{stage.name}` | {args} | {works_on} | {stage.doc} | {fields} |")
    lines += ["", "## Error codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| {code} | {meaning} |" for code, meaning in CODES.items()]
    return "\n".join(lines)


# -- the task reference ----------------------------------------------------------------------------

LOSSES = {
    "bce": "binary cross-entropy of the output logits with targets in [0, 1]",
    "ce": "cross-entropy of the output logits with the target class",
    "mse": "squared error of the raw output against the target value",
}
"""Each task ``loss`` in words."""


def _plain(text: str) -> str:
    """A docstring fragment as Markdown: ``x`` becomes `x`, :class:`~a.B` becomes `B`."""
    text = re.sub(r":\w+:`~?([^`]*\.)?([^`.]+)`", r"`\2`", text)
    return text.replace("``", "`")


def _summary(cls: type[Task]) -> str:
    """The first paragraph of the class docstring, on one line."""
    doc = (cls.__doc__ or "").strip()
    if not doc:
        return ""
    paragraph = doc.split("\n\n", 1)[0]
    return _plain(" ".join(line.strip() for line in paragraph.splitlines()))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _value(value: object) -> str:
    """A parameter value as a spec writes it: ``8``, ``true``, ``"a"``."""
    return json.dumps(value, ensure_ascii=False)


def default_sizes(cls: type[Task]) -> tuple[dict[str, int], int] | None:
    """``(input_kinds, output_size)`` of the task built with its default parameters, or ``None`` if it
    cannot be built that way (e.g. a task whose sizes come from data files it cannot find)."""
    try:
        task = cls()
        return dict(task.input_kinds), int(task.output_size)
    except Exception:  # any failure means: no defaults to show, only the sizes in words
        return None


def spec_declaration(kind: str, size: int) -> str:
    """How a spec declares an input of ``kind`` and ``size``: ``9`` or ``sentences(vocab=69)``."""
    return str(size) if kind == "vector" else f"{kind}({SIZE_KEYS.get(kind, 'size')}={size})"


def length_text(cls: type[Task]) -> str:
    """What ``--len L`` means for the task: its ``length_doc``, with what the registry says about lengths."""
    text = cls.length_doc.rstrip(".")
    if cls.length_params is None:
        return (text or "no lengths: --len is refused") + "."
    lo, hi = cls.length_params
    if not text:
        text = f"the length bounded by `{lo}` and `{hi}` in training"
    return (f"{text}. Training draws it from [`{lo}`, `{hi}`]; `cogdsl eval` and `cogdsl trace` use `{hi}` "
            f"unless `--len` is given, which must be at least {cls.min_length}.")


def _param_row(param: TaskParam) -> str:
    return (f"| `{param.name}` | {param.type_name} | `{_value(param.default)}` | {_cell(param.describe_allowed())} "
            f"| {_cell(_plain(param.doc))} |")


def task_section(cls: type[Task]) -> list[str]:
    """The Markdown lines of one task's entry."""
    lines = [f"### `{cls.name}`", "", f"{_summary(cls)} (`{cls.__module__}.{cls.__qualname__}`)", ""]
    loss = LOSSES.get(cls.loss, cls.loss)
    lines.append(f"- **Loss:** `{cls.loss}`, the {loss}. **Errors:** {cls.error_unit}, counted per sequence.")
    sizes = f"- **Sizes:** {_plain(cls.sizes_doc).rstrip('.') or 'not documented'}."
    found = default_sizes(cls)
    if found is not None:
        kinds, output = found
        inputs = ", ".join(f"`input NAME: {spec_declaration(kind, size)}`" for kind, size in kinds.items())
        output_text = (f"`output NAME = pointer(P)` (or `output NAME: {output}`, position classes)"
                       if cls.points is True else f"`output NAME: {output}`")
        sizes += f" With the default parameters: {inputs}, {output_text}."
    lines.append(sizes)
    lines.append(f"- **--len L:** {_plain(length_text(cls))}")
    if cls.constraints:
        pairs = ", ".join(f"`{lo}` <= `{hi}`" for lo, hi in cls.constraints)
        lines.append(f"- **Constraints:** {pairs}.")
    lines += ["", "| parameter | type | default | allowed | what it is |", "|---|---|---|---|---|"]
    lines += [_param_row(p) for p in cls.params] or ["| — | | | | |"]
    return lines


def task_order() -> list[type[Task]]:
    """The registered tasks grouped by module, modules and tasks in the order they were registered."""
    tasks = list(TASKS.values())
    first: dict[str, int] = {}
    for index, cls in enumerate(tasks):
        first.setdefault(cls.__module__, index)
    return sorted(tasks, key=lambda cls: (first[cls.__module__], tasks.index(cls)))


def task_reference() -> str:
    """Markdown for every registered task: what it is, its loss and errors, the sizes a model needs,
    what ``--len`` means, its parameters and constraints."""
    ordered = task_order()
    lines = ["| task | module | what it is |", "|---|---|---|"]
    lines += [f"| [`{cls.name}`](#{cls.name}) | `{cls.__module__}` | {_cell(_summary(cls))} |" for cls in ordered]
    for cls in ordered:
        lines += ["", *task_section(cls)]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["tasks"]:
        print(task_reference())
    elif sys.argv[1:]:
        sys.exit(f"usage: python -m cogdsl.docs [tasks]; got {' '.join(sys.argv[1:])}")
    else:
        print(reference())

"""Reference tables generated from the registries: block kinds, addressing stages, error codes.

``python -m cogdsl.docs`` prints them as Markdown; the README holds this output between
``<!-- reference:start -->`` and ``<!-- reference:end -->``, and a test keeps the two equal.
"""

from __future__ import annotations

from cogdsl.blocks import REGISTRY
from cogdsl.blocks.addressing import STAGES
from cogdsl.blocks.base import Param
from cogdsl.errors import CODES


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
    lines = ["### Block kinds", "", "| kind | family | what it is | parameters |", "|---|---|---|---|"]
    for kind in sorted(REGISTRY.values(), key=lambda k: (k.catalogued_as or k.family, k.kind)):
        params = "<br>".join(_param(p) for p in kind.params) or "—"
        lines.append(f"| `{kind.kind}` | {kind.catalogued_as or kind.family} | {kind.doc} | {params} |")
    lines += ["", "### Addressing stages", "",
              "| stage | arguments | works on | what it does | interface fields per head |", "|---|---|---|---|---|"]
    for stage in STAGES.values():
        args = ", ".join(_param(p) for p in stage.args) or "—"
        defaults = {p.name: p.default for p in stage.args}
        memories = sorted(stage.memories)
        per_memory = {m: ", ".join(f"`{f.name}` ({f.activation})" for f in stage.fields(defaults, 1, m))
                      for m in memories}
        if len(set(per_memory.values())) == 1:
            fields = per_memory[memories[0]]
        else:
            fields = "; ".join(f"on `{m}`: {text}" for m, text in per_memory.items())
        works_on = ", ".join(f"`{m}`" for m in memories)
        lines.append(f"| `{stage.name}` | {args} | {works_on} | {stage.doc} | {fields} |")
    lines += ["", "### Error codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| {code} | {meaning} |" for code, meaning in CODES.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())

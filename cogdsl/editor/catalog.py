"""What the registries say, read once into plain descriptions that hover, completion and the JSON Schema share.

Block kinds (:data:`cogdsl.blocks.REGISTRY`), addressing stages (:data:`cogdsl.blocks.addressing.STAGES`),
tasks (:data:`cogdsl.tasks.TASKS`, plugins included), optimizers, schedules and the ``train:`` settings
(:mod:`cogdsl.training.config`) each become an :class:`Entry` with its :class:`ParamDoc` parameters: type,
default, range, choices and doc, as declared. Nothing here knows a kind by name; a new kind, stage or task
shows up in the editor and the schema with no change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cogdsl.language.spec import INPUT_KINDS, SIZE_KEYS

TYPE_WORDS = {int: "integer", float: "number", str: "name", bool: "true or false"}
JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}

KEYWORDS = ("cogdsl", "model", "doc", "input", "output", "train")
"""The words that start a .cog statement other than a block's kind."""

SECTIONS = {
    "cogdsl": "the format version: 1",
    "model": "the model's name",
    "doc": "one line about the model",
    "inputs": "the model's inputs by name: a size (`x: 9`), or `{kind: sentences, vocab: 69}`",
    "outputs": "the model's outputs by name: `{size: 8, from: [ctrl, r], activation: sigmoid}`",
    "blocks": "the blocks by name: `{kind: lstm, hidden: 100, from: [x, r@prev]}`",
    "train": "the training run: task, optimizer, schedule and settings",
}
"""The top-level sections of a YAML spec (the statements of a .cog file), in words."""

OUTPUT_FIELDS = {
    "size": "the output's size (left out: the task's)",
    "from": "the values a linear layer reads (`[ctrl, r]`)",
    "activation": "applied after the linear layer",
}
INPUT_FIELDS = {"kind": "what the input carries: " + ", ".join(INPUT_KINDS), "size": "its size", "vocab":
                "its vocabulary: word ids 0 .. vocab - 1, 0 padding"}
TRAIN_TABLES = {
    "task": "the task to train on, and its parameters",
    "optimizer": "the optimizer and its parameters (default rmsprop)",
    "schedule": "the learning-rate schedule and its parameters (default constant)",
}


@dataclass(frozen=True)
class ParamDoc:
    """One declared parameter (of a kind, a stage, a task, an optimizer, a schedule or the train section)."""

    name: str
    type: type
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    @property
    def type_word(self) -> str:
        return TYPE_WORDS[self.type]

    def allowed(self) -> str:
        """The allowed values in words: ``one of 'cosine', 'dot'``, ``an integer, 1 <= hidden``."""
        if self.choices is not None:
            return "one of " + ", ".join(f"`{_spelled(c)}`" for c in self.choices)
        low = "" if self.minimum is None else f"{_number(self.minimum)} <= "
        high = "" if self.maximum is None else f" <= {_number(self.maximum)}"
        return self.type_word + (f", {low}{self.name}{high}" if low or high else "")

    def summary(self) -> str:
        """``integer, default 100`` (or ``required``): what a completion item shows beside the name."""
        given = "required" if self.required else f"default {_spelled(self.default)}"
        return f"{self.type_word}, {given}"

    def markdown(self) -> str:
        """One line of Markdown: the name, the type and default, what is allowed, the doc."""
        text = f"`{self.name}`: {self.summary()}; {self.allowed()}"
        return text + (f". {self.doc}" if self.doc else "")


@dataclass(frozen=True)
class Entry:
    """A kind, a stage, a task, an optimizer or a schedule: its name, what it is, its parameters."""

    what: str  # "kind", "stage", "task", "optimizer", "schedule"
    name: str
    doc: str
    params: tuple[ParamDoc, ...] = ()
    facts: tuple[str, ...] = ()  # further lines: the family, the fields it takes, the memories a stage works on
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def param(self, name: str) -> ParamDoc | None:
        return next((p for p in self.params if p.name == name), None)

    def markdown(self) -> str:
        """The entry as a hover shows it."""
        lines = [f"**{self.name}** ({self.what})", "", self.doc]
        if self.facts:
            lines += ["", *self.facts]
        if self.params:
            lines += ["", "Parameters:", "", *(f"- {p.markdown()}" for p in self.params)]
        return "\n".join(lines).strip()


def _spelled(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def param_doc(param: Any) -> ParamDoc:
    """A :class:`~cogdsl.blocks.base.Param` or a :class:`~cogdsl.tasks.TaskParam` as a :class:`ParamDoc`."""
    required = bool(getattr(param, "required", False))
    return ParamDoc(param.name, param.type, None if required else param.default, required, param.minimum,
                    param.maximum, tuple(param.choices) if param.choices is not None else None, param.doc)


@cache
def kinds() -> dict[str, Entry]:
    """Every registered block kind, by name."""
    from cogdsl.blocks import REGISTRY
    from cogdsl.compiler.validate import FIELD_SPELLING

    found = {}
    for name, kind in sorted(REGISTRY.items()):
        family = kind.catalogued_as or kind.family
        facts = [f"family: {family}"]
        for wiring in sorted(kind.accepts):
            need = "required" if wiring in kind.requires else "optional"
            facts.append(f"- `{wiring}` ({need}): {FIELD_SPELLING.get(wiring, wiring)}")
        stages = sorted(getattr(kind, "stages", ()) or ())
        if stages:
            facts.append("addressing stages: " + ", ".join(f"`{s}`" for s in stages))
        found[name] = Entry("kind", name, kind.doc, tuple(param_doc(p) for p in kind.params), tuple(facts),
                            {"family": family, "accepts": frozenset(kind.accepts), "requires":
                             frozenset(kind.requires), "has_output": kind.has_output, "stages": tuple(stages)})
    return found


@cache
def stages() -> dict[str, Entry]:
    """Every addressing stage, by name, with the memory kinds it works on."""
    from cogdsl.blocks import REGISTRY
    from cogdsl.blocks.addressing import STAGES

    found = {}
    for name, stage in STAGES.items():
        memories = sorted(k for k, kind in REGISTRY.items() if name in (getattr(kind, "stages", ()) or ()))
        facts = ("works on: " + ", ".join(f"`{m}`" for m in memories),) if memories else ()
        found[name] = Entry("addressing stage", name, stage.doc, tuple(param_doc(p) for p in stage.args), facts,
                            {"memories": tuple(memories)})
    return found


@cache
def tasks() -> dict[str, Entry]:
    """Every registered task (plugins too), by name."""
    from cogdsl.docs import _summary
    from cogdsl.tasks import TASKS

    return {name: Entry("task", name, _summary(cls), tuple(param_doc(p) for p in cls.params),
                        (f"loss: `{cls.loss}`",)) for name, cls in sorted(TASKS.items())}


@cache
def optimizers() -> dict[str, Entry]:
    from cogdsl.training.config import OPTIMIZERS

    return {name: Entry("optimizer", name, f"the {name} optimizer", tuple(param_doc(p) for p in params))
            for name, params in OPTIMIZERS.items()}


@cache
def schedules() -> dict[str, Entry]:
    from cogdsl.training.schedule import SCHEDULES

    return {name: Entry("schedule", name, f"the {name} learning-rate schedule", tuple(param_doc(p) for p in params))
            for name, params in SCHEDULES.items()}


@cache
def settings() -> dict[str, ParamDoc]:
    """The ``train:`` section's own settings (batch, steps, clip ...), by name."""
    from cogdsl.training.config import SETTINGS

    return {p.name: param_doc(p) for p in SETTINGS}


def activations() -> tuple[str, ...]:
    from cogdsl.compiler.validate import ACTIVATIONS

    return ACTIVATIONS


def input_kinds() -> dict[str, str]:
    """Each input kind and the key that spells its size (``size`` or ``vocab``)."""
    return {kind: SIZE_KEYS.get(kind, "size") for kind in INPUT_KINDS}


def table(name: str) -> dict[str, Entry]:
    """The entries a ``train:`` table names: ``task`` tasks, ``optimizer`` optimizers, ``schedule`` schedules."""
    return {"task": tasks, "optimizer": optimizers, "schedule": schedules}[name]()

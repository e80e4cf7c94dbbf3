"""The spec IR: what both spellings (YAML and .cog) parse into.

Every node carries the :class:`~cogdsl.errors.Span` it came from. Spans are excluded
from equality, so a spec read from YAML and the same spec read from .cog compare equal:
that is what ``cogdsl fmt`` round-trip tests check.

Values (block parameters and the ``train:`` section) are :class:`Value` trees: a
scalar, a list of Values or a dict of Values, each located.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cogdsl.errors import NO_SPAN, Span

SUPPORTED_VERSIONS = (1,)
SPEC_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".cog": "cog"}
"""The suffixes of spec files, and the form each is written in."""


@dataclass(frozen=True)
class Value:
    """A located value: a scalar (int, float, str, bool, None), a list of Values or a dict of Values."""

    data: Any
    span: Span = field(default=NO_SPAN, compare=False)
    # for a dict: where each key is written, so errors about a key can point at it
    key_spans: dict[str, Span] | None = field(default=None, compare=False, repr=False)

    def key_span(self, key: str) -> Span:
        """Where ``key`` of this table is written (its value's span if unknown)."""
        if self.key_spans and key in self.key_spans:
            return self.key_spans[key]
        return self.data[key].span

    def plain(self) -> Any:
        """The value with every location stripped (nested dicts and lists of scalars)."""
        if isinstance(self.data, dict):
            return {key: value.plain() for key, value in self.data.items()}
        if isinstance(self.data, list):
            return [value.plain() for value in self.data]
        return self.data


@dataclass(frozen=True)
class Ref:
    """A wire's source: a block or input by name, read now (delay 0) or at the previous step (``@prev``, delay 1)."""

    name: str
    delay: int = 0
    span: Span = field(default=NO_SPAN, compare=False)

    def __str__(self) -> str:
        return f"{self.name}@prev" if self.delay else self.name


@dataclass(frozen=True)
class Stage:
    """One addressing stage, e.g. ``content(cosine)`` or ``shift(1)``."""

    name: str
    args: tuple[Value, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(_scalar_text(a.data) for a in self.args)})"


@dataclass(frozen=True)
class Pipe:
    """Stages applied one after another: ``content(cosine) | gate | shift(1) | sharpen``."""

    stages: tuple[Stage, ...]
    span: Span = field(default=NO_SPAN, compare=False)

    def __str__(self) -> str:
        return " | ".join(str(s) for s in self.stages)


@dataclass(frozen=True)
class Address:
    """An addressing expression: one pipe, or a learned gated mixture ``a + b + c`` of pipes."""

    terms: tuple[Pipe, ...]
    span: Span = field(default=NO_SPAN, compare=False)

    def __str__(self) -> str:
        return " + ".join(str(t) for t in self.terms)

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(s for term in self.terms for s in term.stages)


@dataclass(frozen=True)
class Block:
    """A block: ``kind name(params) [on memory] [by controller] [<- sources] [: address]``."""

    name: str
    kind: str
    params: dict[str, Value] = field(default_factory=dict)
    sources: tuple[Ref, ...] = ()
    memory: Ref | None = None
    by: Ref | None = None
    address: Address | None = None
    span: Span = field(default=NO_SPAN, compare=False)
    kind_span: Span = field(default=NO_SPAN, compare=False)
    param_spans: dict[str, Span] = field(default_factory=dict, compare=False, repr=False)

    def param_span(self, name: str) -> Span:
        """Where parameter ``name`` is written (its key), falling back to the block's name."""
        return self.param_spans.get(name, self.span)


INPUT_KINDS = ("vector", "words", "sentences", "sequence", "image")
"""What an input carries: at each step a float vector of ``size`` channels (the default);
``words``, one sentence of word ids, (B, T, L); ``sentences``, a story of word ids,
(B, T, S, L); for these two ``size`` is the vocabulary (ids ``0 .. size - 1``, 0 padding).
``sequence`` is a whole sequence of ``size``-channel vectors, (B, S, size), with no time
axis: every step sees all of it (an encoder reads it, attention looks over it). ``image``
is a whole square greyscale image, (B, size, size), also seen by every step: visual
attention (glimpses, spatial transformers) looks at it, a ``conv`` encoder reads it, and
a controller or output wired to it reads its size x size pixels as one vector."""

SIZE_KEYS = {"vector": "size", "words": "vocab", "sentences": "vocab", "sequence": "size", "image": "size"}
"""How each input kind spells its size: ``sentences(vocab=69)``, ``sequence(size=10)``,
``image(size=40)`` (the side in pixels); a vector's is its number (``x: 9``, or ``{kind: vector, size: 9}``).
A size left out is derived from the train section's task (:mod:`cogdsl.compiler.task_sizes`)."""

WHOLE_KINDS = ("sequence", "image")
"""Input kinds given whole, with no time axis: every step sees all of it."""


@dataclass(frozen=True)
class Input:
    """A model input: ``x: 9`` (a vector of 9 channels) or ``story: sentences(vocab=69)``; ``size`` holds
    None when the spec leaves it to the task."""

    name: str
    size: Value
    span: Span = field(default=NO_SPAN, compare=False)
    kind: Value = Value("vector")

    @property
    def is_vector(self) -> bool:
        return self.kind.data == "vector"


@dataclass(frozen=True)
class Output:
    """A model output: a linear layer over its sources, then an optional activation; or, written
    ``pointer(NAME)``, the distribution of a pointer block over the source positions (no layer, no size)."""

    name: str
    size: Value
    sources: tuple[Ref, ...] = ()
    activation: Value | None = None
    span: Span = field(default=NO_SPAN, compare=False)

    @property
    def points(self) -> bool:
        """Whether it is a pointer output, ``pointer(NAME)``: as many values as the source has positions."""
        return self.activation is not None and self.activation.data == "pointer"


@dataclass(frozen=True)
class Spec:
    """A whole spec. Names share one namespace: inputs, outputs and blocks."""

    model: Value
    version: Value = Value(1)
    doc: Value | None = None
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    blocks: tuple[Block, ...] = ()
    train: Value | None = None
    file: str = field(default="<string>", compare=False)
    source: str | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.model.data)

    def block(self, name: str) -> Block | None:
        return next((b for b in self.blocks if b.name == name), None)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def train_config(self) -> dict[str, Any]:
        """The ``train:`` section as plain Python values (empty if absent)."""
        return self.train.plain() if self.train is not None else {}


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.isidentifier() else '"' + value.replace('"', '\\"') + '"'
    return repr(value)

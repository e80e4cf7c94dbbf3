"""What every block kind declares: its parameters (as data), the fields it accepts, its family.

A kind is one class in one file of ``cogdsl/blocks/``, registered with :func:`register`.
The validator, ``cogdsl compile --explain``, the docs table and the contract tests read
these declarations; nothing else needs to know about a new kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from cogdsl.blocks.runtime import Build, ModuleUnit, Step, StepOut, Unit
from cogdsl.errors import DiagnosticSink, Span, hint_for, one_of
from cogdsl.language.spec import Block, Spec, Value
from cogdsl.reinforce import Decision

if TYPE_CHECKING:
    from cogdsl.compiler.shapes import Shapes

REQUIRED: Any = object()

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a name", bool: "true or false"}

INT_LIMIT = 2**63 - 1
"""The largest integer a parameter may have in size (as in a .cog file, whose parser refuses larger ones): torch's
int64. A parameter with no declared maximum still never reaches torch as a number it cannot hold."""


@dataclass(frozen=True)
class Param:
    """One declared parameter: type, default (or REQUIRED), allowed range or choices, doc."""

    name: str
    type: type
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def allowed(self) -> str:
        """The allowed values in words, for error hints and docs."""
        if self.choices is not None:
            return one_of(str(c) for c in self.choices)
        low = "" if self.minimum is None else f"{self.minimum} <= "
        high = "" if self.maximum is None else f" <= {self.maximum}"
        return f"{_TYPE_NAMES[self.type]}" + (f" with {low}{self.name}{high}" if low or high else "")

    def check(self, value: Value, span: Span, owner: str, sink: DiagnosticSink) -> Any:
        """The value converted to the declared type, or None after reporting why it is not allowed."""
        given = value.data
        # an integer past the largest float (a spec built in Python) is infinite here, and refused below
        data = (float(given) if abs(given) < 2**1023 else (math.inf if given > 0 else -math.inf)) \
            if self.type is float and type(given) is int else given
        if not isinstance(data, self.type) or (self.type is int and isinstance(data, bool)):
            sink.error("E204", f"{owner}: parameter '{self.name}' must be {_TYPE_NAMES[self.type]}, "
                       f"found {spelled(given)}", value.span, f"allowed: {self.allowed()}")
            return None
        if self.type is float and not math.isfinite(data):
            sink.error("E205", f"{owner}: parameter '{self.name}' must be a finite number, found {spelled(given)}",
                       value.span, f"allowed: {self.allowed()}")
            return None
        if self.type is int and abs(data) > INT_LIMIT:
            sink.error("E205", f"{owner}: parameter '{self.name}' is {spelled(given)}, too large for an integer",
                       value.span, f"allowed: {self.allowed()}, at most {INT_LIMIT} (2**63 - 1) in size")
            return None
        if self.choices is not None and data not in self.choices:
            sink.error("E205", f"{owner}: '{data}' is not an allowed value of '{self.name}'", value.span,
                       hint_for(str(data), [str(c) for c in self.choices], "allowed values"))
            return None
        if (self.minimum is not None and data < self.minimum) or (self.maximum is not None and data > self.maximum):
            sink.error("E205", f"{owner}: parameter '{self.name}' is {spelled(given)}, out of range", value.span,
                       f"allowed: {self.allowed()}")
            return None
        return data


def spelled(data: Any) -> str:
    """A value as a spec would spell it: true/false, none, "text", 3."""
    if isinstance(data, bool):
        return "true" if data else "false"
    if data is None:
        return "nothing"
    if isinstance(data, str):
        return f'"{data}"' if len(data) <= 40 else f'"{data[:30]}..." ({len(data):,} characters)'
    if isinstance(data, dict | list):
        return "a mapping" if isinstance(data, dict) else "a list"
    if isinstance(data, int) and abs(data) >= 10**30:
        digits = len(str(abs(data)))
        return f"{str(data)[:20]}... ({digits:,} digits)"
    return str(data)


def recode(sink: DiagnosticSink, start: int, code: str) -> None:
    """Give the diagnostics reported since ``start`` one code (e.g. E403 for a stage's arguments)."""
    for diagnostic in sink.items[start:]:
        diagnostic.code = code


def check_params(declared: tuple[Param, ...], given: dict[str, Value], spans: Callable[[str], Span],
                 owner: str, owner_span: Span, sink: DiagnosticSink) -> dict[str, Any]:
    """Check given parameters against declarations; return every declared parameter resolved.

    Unknown, missing, mistyped and out-of-range parameters are each reported.
    """
    by_name = {p.name: p for p in declared}
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in by_name:
            sink.error("E202", f"{owner}: unknown parameter '{name}'", spans(name),
                       hint_for(name, by_name, "its parameters") if by_name else f"{owner} takes no parameters")
    for param in declared:
        if param.name in given:
            resolved[param.name] = param.check(given[param.name], spans(param.name), owner, sink)
        elif param.required:
            sink.error("E203", f"{owner}: missing parameter '{param.name}'", owner_span,
                       f"add '{param.name}' ({param.allowed()}){': ' + param.doc if param.doc else ''}")
            resolved[param.name] = None
        else:
            resolved[param.name] = param.default
    return resolved


class BlockKind:
    """Base of all block kinds. Subclasses set the class attributes and the lowering hooks."""

    kind: ClassVar[str]
    family: ClassVar[str]  # "controller", "memory", "head", "reasoning", "encoder" or "attention"
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    # Which of the wiring fields a kind accepts: "from", "memory", "by", "address".
    accepts: ClassVar[frozenset[str]] = frozenset()
    # The accepted fields that must be given.
    requires: ClassVar[frozenset[str]] = frozenset()
    # Whether other blocks may take this block's value as a source (controllers, read heads).
    has_output: ClassVar[bool] = False
    # What each of its sources must carry: "vector", "words", "sentences", "sequence" or "image"
    # (see cogdsl.language.spec.INPUT_KINDS); an image is read as a vector of its pixels where a vector is taken.
    takes: ClassVar[tuple[str, ...]] = ("vector",)
    # The most sources it reads (None: any number, concatenated); an embed block reads one sentence.
    max_sources: ClassVar[int | None] = None
    # What its value carries when wired: "vector", or "sequence" (a whole sequence, (B, S, d)).
    carries: ClassVar[str] = "vector"
    # An attention-family block's ``on``: what it may look over ("sequence", "memory", "image").
    looks_over: ClassVar[tuple[str, ...]] = ("sequence", "memory")
    # Whether an output that reads only this block takes its value as the output's logits, with no
    # linear layer of its own (a canvas that is already the picture): the sizes must then agree.
    gives_logits: ClassVar[bool] = False
    # The family the block catalogue shows, where it differs from the one the passes route by (a
    # stack is lowered like the blocks that look at something, but it is a memory).
    catalogued_as: ClassVar[str | None] = None
    # A memory's readers: "head" (read and write heads, driven by a controller) or "reasoning"
    # (hops and episodes, which read a memory built from a story).
    read_by: ClassVar[str] = "head"
    # A small spec around one block of this kind, in the .cog form, with "{params}" where the block's
    # parameters go ("{kind}" for its kind, "{canvas}" for size²): the contract tests over every kind
    # (tests/test_extremes.py, the fuzzer) build their specs on it, so a new kind brings its own.
    example: ClassVar[str] = ""
    # Small values of the parameters the example's block needs (the required ones, and sizes whose
    # defaults are large).
    example_params: ClassVar[dict[str, Any]] = {}


    @classmethod
    def noun(cls) -> str:
        """How messages name a block of this kind: "memory", "dnc_memory memory"."""
        return cls.family if cls.kind == cls.family else f"{cls.kind} {cls.family}"

    @classmethod
    def conflicts(cls, params: dict[str, Any]) -> list[tuple[str, str, str]]:
        """Constraints between parameters that each passed its own check: (parameter, message, hint) for
        each one broken (e.g. a hidden size its modules must divide). None here."""
        return []

    @classmethod
    def check_shapes(cls, block: Block, shapes: Shapes, sink: DiagnosticSink) -> None:
        """Report (E501) where the sizes inferred around ``block`` do not fit this kind, once every size is
        known (e.g. a dot score needs a query as wide as its keys). None here."""

    @classmethod
    def check_target(cls, block: Block, target_kind: type[BlockKind] | None, sink: DiagnosticSink) -> bool:
        """Rules of this kind on what its ``on`` names (``target_kind``: that block's kind, None for an input),
        checked by the validator; True when the kind decided (reported a problem or accepted it). None here."""
        return False

    @classmethod
    def adds_loss(cls, params: dict[str, Any]) -> bool:
        """Whether a block of this kind with ``params`` adds a term of its own to the training loss (a KL, a cost
        per update, a penalty), so that it does work even when no output reads it. False here."""
        return False

    @classmethod
    def points(cls, block: Block) -> bool:
        """Whether ``block`` (of this kind) is a pointer, whose distribution an output ``pointer(NAME)`` gives.
        False here."""
        return False

    @classmethod
    def attended_value_size(cls, spec: Spec, block: Block, params: dict[str, dict[str, Any]],
                            sizes: dict[str, int]) -> int | None:
        """The size of the value of an attention-family block that looks over something (``on``): heads x D, D
        the size of one element of what it looks over (None while that is not known yet)."""
        size = attended_size(params, sizes, block)
        return None if size is None else params[block.name].get("heads", 1) * size

    @classmethod
    def trace_panels(cls, name: str, trace: dict[str, Any]) -> dict[str, tuple[Any, tuple[str, ...] | None]]:
        """What ``cogdsl trace`` draws of the block over time, from one sequence's trace (time first, keys as
        its unit wrote them): title -> (image (rows, T), row labels or None). None here."""
        return {}

    @classmethod
    def trace_places(cls, name: str, seen: Any, side: int, module: Any, trace: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """What ``cogdsl trace`` draws of the block on an image task's pictures, from its trace entry ``seen``
        (N, T, ...) on images of ``side`` pixels: by layer, "paths" (N, T, 2) and "widths" (pixels), "regions"
        (N, T, corners, 2), "weights" (N, T, grid, grid), "canvases" (N, T, side, side). None here."""
        return {}

    @classmethod
    def build(cls, b: Build) -> Unit | None:
        """The unit that runs the block ``b.block`` at each step, its modules registered in ``b.model``
        (:mod:`cogdsl.blocks.runtime`); None for a block run by another's unit (heads, by their group)."""
        raise NotImplementedError(f"block kind '{cls.kind}' has no runtime")


REGISTRY: dict[str, type[BlockKind]] = {}

WAITING = -1
"""A size not known yet, while shape inference goes round the blocks that depend on each other's sizes."""


def looked_at_size(block: Block, sizes: dict[str, int], sides: dict[str, int]) -> int | None:
    """What a LookKind block's module is built for: an image's side, a sequence's element size, None when it
    looks at nothing, or WAITING while that size is not known yet (never once all sizes are inferred)."""
    if block.memory is None:
        return None
    target = block.memory.name
    return sides[target] if target in sides else sizes.get(target, WAITING)


def attended_size(params: dict[str, dict[str, Any]], sizes: dict[str, int], block: Block) -> int | None:
    """D, the size of one element of what an attention block looks over: a memory's width, or a
    sequence's element size (None while that is not known yet)."""
    assert block.memory is not None
    target = block.memory.name
    return params[target]["width"] if "width" in params.get(target, {}) else sizes.get(target)


def register(cls: type[BlockKind]) -> type[BlockKind]:
    """Class decorator: add a kind to the registry."""
    assert cls.kind not in REGISTRY, f"block kind {cls.kind} registered twice"
    REGISTRY[cls.kind] = cls
    return cls


class LookModule(nn.Module):
    """The module of a :class:`LookKind`, and what it may report after each step, which its unit reads:
    ``decision``, a sample to learn by REINFORCE (training only; ``samples``: it makes them); ``penalty``,
    (B,) added to the loss (``penalizes``: it has one); and :meth:`traced_state`, what ``cogdsl trace``
    shows of a state that is not one tensor."""

    samples: ClassVar[bool] = False
    penalizes: ClassVar[bool] = False
    decision: Decision | None = None
    penalty: torch.Tensor | None = None

    @staticmethod
    def traced_state(state: Any) -> Any:
        return state


class LookKind(BlockKind):
    """Attention-family kinds with one module protocol: at every step, from its query (the block's
    sources, concatenated) and what it looks at (``on``: an image, a sequence, or nothing)::

        module(query, seen) -> (value, where)                           (stateless)
        module(query, seen, previous) -> (value, where, state)          (``stateful``)

    ``where`` is what ``cogdsl trace`` draws (a location, a window, a transform). A stateful
    module also has ``initial_state(batch, like)``; the compiled model keeps its state.
    """

    family = "attention"
    accepts = frozenset({"from", "memory"})
    requires = frozenset({"from", "memory"})
    has_output = True
    stateful: ClassVar[bool] = False

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        """The size of its value; ``target_size``: an image's side, a sequence's element size, or None."""
        raise NotImplementedError

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> LookModule:
        """The module, as the protocol above describes it."""
        raise NotImplementedError

    @classmethod
    def build(cls, b: Build) -> Unit:
        module = cls.make(b.params, b.shapes.input_sizes[b.name],
                          looked_at_size(b.block, b.shapes.sizes, b.shapes.sides))
        return LookUnit(b, cls, b.add("attentions", b.name, module))

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        """One line for ``cogdsl compile --explain``: what the block does each step and its value's size."""
        looked = f" on {target}" if target else ""
        return f"{cls.kind} {name}: from [{sources}]{looked} -> {size}" + (" (keeps a state)" if cls.stateful else "")


class LookUnit(ModuleUnit):
    """A :class:`LookKind` block's step: ``module(query, seen[, previous])``; a stateful one keeps its state
    under ``look:NAME``. Trace: ``NAME`` its ``where``, ``NAME:state`` its state (or what its module's
    ``traced_state`` shows of it)."""

    def __init__(self, b: Build, kind: type[LookKind], module: LookModule):
        assert b.block is not None
        self.name, self.kind, self.module = b.name, kind, module
        self.target = b.block.memory.name if b.block.memory is not None else None
        self.key = f"look:{b.name}" if kind.stateful else None
        self.penalizes, self.samples = module.penalizes, module.samples
        self.line = kind.describe(b.name, b.params, b.sources(), self.target, b.shapes.sizes[b.name])

    def initial_state(self, batch: int, like: Any) -> dict[str, Any]:
        return {self.key: self.module.initial_state(batch, like)} if self.key is not None else {}

    def step(self, step: Step) -> StepOut:
        target = self.target
        seen = None if target is None else step.values[target] if target in step.values else step.state[target]
        query = step.gather(self.name)
        out = StepOut()
        if self.key is not None:
            out.value, where, new = self.module(query, seen, step.state[self.key])
            out.state[self.key] = new
            if step.tracing:
                out.trace[f"{self.name}:state"] = self.module.traced_state(new)
        else:
            out.value, where = self.module(query, seen)
        out.trace[self.name] = where
        if self.module.decision is not None:
            out.decisions.append(self.module.decision)
        if self.module.penalty is not None:
            out.penalties.append(self.module.penalty)
        return out


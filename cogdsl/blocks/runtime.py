"""The runtime protocol every block kind follows: a kind builds *units*, and a step runs them in order.

A unit is what one step runs for one block (a controller, a memory's writes, an attention block), for a
head group, or for an output. Each kind makes its units in :meth:`~cogdsl.blocks.base.BlockKind.build`
from a :class:`Build` (the block, its parameters, the inferred shapes, and where to put its modules), and
each unit provides::

    initial_state(batch, like) -> dict      its state entries at t = 0, under keys it owns
    step(step) -> StepOut                   one time step, reading a :class:`Step`
    describe() -> str | None                its line in ``cogdsl compile --explain``
    parameter_counts() -> dict[str, int]    its parameters by spec block, for ``--explain``

:class:`StepOut` carries everything a step makes: the unit's value, the values of other names it
computes (a head group's reads, by read block), its new state entries, what ``cogdsl trace`` shows,
the REINFORCE decisions of blocks that sample, and penalties added to the loss. The compiled model's
step is a loop over its units that merges these; it never asks what kind a unit is.

Units of one step talk through :meth:`Step.post` and :meth:`Step.taken`: a controller posts its
interface vector for the head groups it drives, a head group posts its writes for its memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cogdsl.language.spec import Block, Spec
from cogdsl.reinforce import Decision

if TYPE_CHECKING:
    from cogdsl.compiler.shapes import Shapes

State = dict[str, Any]


@dataclass
class StepOut:
    """What one unit made in one step."""

    value: torch.Tensor | None = None  # the unit's own value (None: it has none, or gives it in ``values``)
    values: dict[str, torch.Tensor] = field(default_factory=dict)  # values of other names (a group's reads)
    state: State = field(default_factory=dict)  # its new state entries, by the keys it owns
    trace: dict[str, torch.Tensor] = field(default_factory=dict)  # panel key -> what cogdsl trace shows
    decisions: list[Decision] = field(default_factory=list)  # samples to learn by REINFORCE (training only)
    penalties: list[torch.Tensor] = field(default_factory=list)  # (B,) each, added to the loss


class Step:
    """One time step in progress: what a unit reads.

    ``values``: the inputs and every value made so far this step, by name; ``state``: the state the
    previous step left; ``raw``: outputs give logits (no activation); ``tracing``: someone records the
    trace (a unit may skip computing what only a trace shows otherwise); ``fresh``: a whole input
    (sequence, image) differs from the one in the state, so what was computed from it is computed again.
    """

    def __init__(self, values: dict[str, torch.Tensor], state: State, gather: Callable[[str, Step], torch.Tensor],
                 *, raw: bool, tracing: bool, fresh: bool):
        self.values = values
        self.state = state
        self.raw, self.tracing, self.fresh = raw, tracing, fresh
        self._gather = gather
        self._posts: dict[tuple[str, str], list[Any]] = {}

    def gather(self, name: str) -> torch.Tensor:
        """The sources of ``name`` this step, concatenated on the last axis (``x@prev`` from the state)."""
        return self._gather(name, self)

    def post(self, topic: str, name: str, message: Any) -> None:
        """Leave ``message`` for the units that run later this step (e.g. topic "writes", name a memory)."""
        self._posts.setdefault((topic, name), []).append(message)

    def taken(self, topic: str, name: str) -> list[Any]:
        """Every message posted under (topic, name) this step, in order; empty when none."""
        return self._posts.get((topic, name), [])


class Unit:
    """One thing a step runs. Subclasses set ``name`` and override what they need.

    ``samples``: it makes REINFORCE decisions (for the spec blocks :meth:`blocks` names); ``penalizes``: it
    adds a penalty to the loss at every step; ``target``: the name it looks over (``on``), if any."""

    name: str
    samples: bool = False
    penalizes: bool = False
    target: str | None = None

    def blocks(self) -> tuple[str, ...]:
        """The spec blocks it runs: its own, or a head group's head blocks."""
        return (self.name,)

    def initial_values(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """The values of names it gives before the first step, for blocks that read them with ``@prev``
        (a read head's learned r_0); names it leaves out start at zero."""
        return {}

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        """Its state entries before the first step (``like``: dtype and device)."""
        return {}

    def step(self, step: Step) -> StepOut:
        raise NotImplementedError

    def describe(self) -> str | None:
        """Its line in ``cogdsl compile --explain``; None: it has none (it does nothing visible)."""
        return None

    def parameter_counts(self) -> dict[str, int]:
        """The parameters it owns, by spec block (a head group: each of its head blocks), for ``--explain``."""
        return {}


class ModuleUnit(Unit):
    """A unit that runs its block's one module (and perhaps a few more): its ``--explain`` line is fixed when
    it is built (``line``), and its parameters are its module's, unless it counts its own."""

    module: nn.Module
    line: str | None = None

    def describe(self) -> str | None:
        return self.line

    def parameter_counts(self) -> dict[str, int]:
        return {self.name: count(self.module)}


@dataclass
class Build:
    """What a kind builds its units from: the block, its resolved parameters, the shapes of the whole spec,
    and the model that holds every module.

    Modules go into the model's containers by name (``add``), so that a checkpoint's parameter names are
    ``<container>.<block>.<...>``: ``controllers``, ``interfaces``, ``memories``, ``layers``, ``encoders``,
    ``attentions``, ``groups`` (by group index) and ``outputs``.
    """

    spec: Spec
    shapes: Shapes
    model: nn.Module
    block: Block | None = None

    @property
    def name(self) -> str:
        assert self.block is not None
        return self.block.name

    @property
    def params(self) -> dict[str, Any]:
        return self.shapes.params[self.name]

    def add(self, container: str, name: str, module: nn.Module) -> nn.Module:
        """Register ``module`` as ``<container>.<name>`` in the model; returns it."""
        getattr(self.model, container)[name] = module
        return module

    def container(self, container: str) -> Any:
        """One of the model's containers, for a unit that looks up another block's module when it steps
        (build order does not matter then; keep the container, never a function, so copies stay whole)."""
        return getattr(self.model, container)

    def sources(self, name: str | None = None) -> str:
        """The sources of a block as the spec writes them, for descriptions: "x, r@prev"."""
        block = self.block if name is None else self.spec.block(name)
        assert block is not None
        return ", ".join(str(r) for r in block.sources)


def count(module: nn.Module) -> int:
    """Parameters of a module."""
    return sum(p.numel() for p in module.parameters())


# -- strong supervision ---------------------------------------------------------------------------------
_SUPERVISION: ContextVar[Mapping[str, Any] | None] = ContextVar("cogdsl_supervision", default=None)


@contextlib.contextmanager
def supervision(info: Mapping[str, Any] | None) -> Iterator[None]:
    """While a model runs on a batch: what the batch knows besides its inputs (``Batch.info``; a QA task's
    ``supporting`` facts, (B, S) bool over the story's rows), for blocks trained with strong supervision
    (``memnn``). The training loop and the evaluations run every batch inside one; in your own loop::

        with supervision({"supporting": supporting}):
            logits = model(inputs, raw=True, penalties=penalties)
    """
    token = _SUPERVISION.set(info)
    try:
        yield
    finally:
        _SUPERVISION.reset(token)


def supervised() -> Mapping[str, Any] | None:
    """The batch information of the innermost :func:`supervision`, or None outside every one."""
    return _SUPERVISION.get()

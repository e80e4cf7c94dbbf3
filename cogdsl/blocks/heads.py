"""Read and write heads on an NTM memory, and the group that runs them together.

Heads that share a memory, a controller and an addressing pipe form a *head group*: one
call of each op addresses all of them at once (H = every head of every read and write
block in the group), one call reads, and the group hands its write weights, erase and add
vectors to the memory, which applies every write of the step in one call.

Interface fields and their activations, per head (the controller's interface vector
is clamped to [-clip, clip] first, as Collier & Beel 2018 and the DNC clip controller
outputs):

    key       W      identity        (A + W on a memory with address_width A: see cogdsl.blocks.dntm)
    strength  1      softplus        (beta > 0)
    lru_gamma 1      sigmoid         (in [0, 1])
    gate      1      sigmoid         (in [0, 1])
    shift     2s+1   softmax         (a distribution over offsets -s..s)
    gamma     1      1 + softplus    (gamma >= 1)
    erase     W      sigmoid         (write heads; in [0, 1])
    add       W      identity        (write heads)

The layout groups a field across heads (all keys, then all strengths, ...), so each field
is one view of the interface vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cogdsl import ops
from cogdsl.blocks.addressing import ResolvedStage, address_fields, content_similarity, spelled_pipe
from cogdsl.blocks.base import BlockKind, Param, register
from cogdsl.blocks.dntm import lru_address, sample_slots, slot_decision
from cogdsl.blocks.named import NamedParameters
from cogdsl.blocks.runtime import Build, Step, StepOut, Unit
from cogdsl.errors import DiagnosticSink, Span
from cogdsl.reinforce import Decision

_HEADS = Param("heads", int, 1, minimum=1, maximum=64, doc="number of heads this block has")


class HeadKind(BlockKind):
    family = "head"
    params = (_HEADS,)
    accepts = frozenset({"memory", "by", "address"})
    requires = frozenset({"memory", "by"})
    writes = False
    extra_fields: tuple[tuple[str, str], ...] = ()  # (field, activation), each of size W

    @classmethod
    def build(cls, b: Build) -> None:
        """Heads run in their group's unit (:class:`GroupUnit`), which their memory's kind builds."""
        return None


@register
class ReadKind(HeadKind):
    kind = "read"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c, r)\n"
        "lstm c(hidden=6) <- x, r@prev\n"
        "memory mem(slots=4, width=3)\n"
        "read r({params}) on mem by c\n"
        "write w on mem by c\n")
    doc = "Read heads: r = sum_i w_i M_i for each head; the block's value is the heads' reads, (B, heads * W)."
    has_output = True


@register
class WriteKind(HeadKind):
    kind = "write"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c, r)\n"
        "lstm c(hidden=6) <- x, r@prev\n"
        "memory mem(slots=4, width=3)\n"
        "read r on mem by c\n"
        "write w({params}) on mem by c\n")
    doc = "Write heads: erase then add, M <- M o (1 - w e^T) + w a^T for each head."
    writes = True
    extra_fields = (("erase", "sigmoid"), ("add", "identity"))


@dataclass
class GroupStep:
    """What one head group's step makes, for every kind of group (NTM, fused NTM, DNC).

    weights: (B, H, N), every head's weighting, reads first; reads: (B, H_read, width) or None;
    writes: (weights (B, H_write, N), erase, add (B, H_write, W)) for the memory to apply, or None when
    the group wrote the memory itself; memory: the new memory (B, N, W) when it did (a fused NTM group,
    a dnc_memory), else None; state: its other new state by the keys it owns (an lru group's moving
    averages, the DNC's usage and links); shown: what pictures draw (the DNC's usage and read modes).
    """

    weights: torch.Tensor
    reads: torch.Tensor | None = None
    writes: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    memory: torch.Tensor | None = None
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    shown: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadUse:
    """One head block as its memory kind sees it when grouping heads."""

    name: str
    controller: str
    writes: bool
    heads: int
    stages: tuple[ResolvedStage, ...]
    span: Span


@dataclass(frozen=True)
class GroupPlan:
    """Which head blocks form a group: reads first, then writes, each with its head count.

    ``stages`` is the group's addressing; on a ``dnc_memory``, where reads and writes are
    addressed differently, ``stages`` is the read heads' mixture and ``write_stages`` the
    write heads'. ``kind`` is the memory's kind.
    """

    memory: str
    controller: str
    stages: tuple[ResolvedStage, ...]
    reads: tuple[tuple[str, int], ...]
    writes: tuple[tuple[str, int], ...]
    write_stages: tuple[ResolvedStage, ...] = ()
    kind: str = "memory"

    @property
    def read_heads(self) -> int:
        return sum(n for _, n in self.reads)

    @property
    def write_heads(self) -> int:
        return sum(n for _, n in self.writes)

    @property
    def heads(self) -> int:
        return self.read_heads + self.write_heads


@dataclass(frozen=True)
class FieldSlice:
    """Where one field of a group lies in the controller's interface vector."""

    name: str
    offset: int
    heads: int
    size: int
    activation: str
    first_head: int  # index, within the group, of the first head that has this field
    # One number per head (a strength, a gate): activated as (B, heads). Every other field is a
    # vector per head, (B, heads, size), whatever its size (a key or erase vector of width 1).
    scalar: bool = False

    @property
    def stop(self) -> int:
        return self.offset + self.heads * self.size


LaidOut = tuple[str, int, int, str, int, bool]
"""A field to lay out: name, heads, size per head, activation, first head, whether it is one number per head."""


def lay_out(fields: list[LaidOut], offset: int) -> list[FieldSlice]:
    """Consecutive slices from ``offset`` for each (name, heads, size, activation, first head, scalar) in order."""
    slices = []
    for name, heads, size, activation, first_head, scalar in fields:
        assert size == 1 or not scalar, f"field {name}: one number per head has size 1"
        slices.append(FieldSlice(name, offset, heads, size, activation, first_head, scalar))
        offset = slices[-1].stop
    return slices


def group_layout(plan: GroupPlan, width: int, offset: int = 0, address_width: int = 0) -> list[FieldSlice]:
    """Lay the group's fields out from ``offset``: each addressing field for all heads, then erase, add.

    Keys span a whole slot, its learned address (``address_width``) and its content (``width``);
    erase and add vectors span the content only."""
    fields: list[LaidOut] = [(f.name, plan.heads, f.size, f.activation, 0, f.scalar)
                             for f in address_fields(plan.stages, width + address_width)]
    if plan.writes:
        fields += [(name, plan.write_heads, width, activation, plan.read_heads, False)
                   for name, activation in WriteKind.extra_fields]
    return lay_out(fields, offset)


def read_init_parameters(plan: GroupPlan, width: int) -> NamedParameters:
    """r@prev at t = 0: a learned vector per read block, as Collier & Beel 2018 recommend."""
    return NamedParameters({name: nn.Parameter(torch.randn(heads * width) * 0.01) for name, heads in plan.reads})


_ACTIVATIONS = {
    "identity": lambda x: x,
    "softplus": F.softplus,
    "oneplus": lambda x: 1 + F.softplus(x),
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=-1),
}


def activate_fields(layout: list[FieldSlice], interface: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each field of ``layout`` sliced from ``interface`` (B, I) and activated: (B, heads, size), or
    (B, heads) for fields of one number per head (``scalar``: strengths, gates). A vector field keeps
    its size axis even when it is 1 (the key, erase and add vectors of a memory of width 1)."""
    batch = interface.shape[0]
    out = {}
    for f in layout:
        raw = interface[:, f.offset:f.stop]
        raw = raw.view(batch, f.heads) if f.scalar else raw.view(batch, f.heads, f.size)
        out[f.name] = _ACTIVATIONS[f.activation](raw)
    return out


def ntm_groups(memory: str, heads: list[HeadUse], sink: DiagnosticSink) -> tuple[GroupPlan, ...]:
    """NTM heads group by (controller, addressing): each group is one call of each op per step."""
    groups: dict[tuple[str, tuple[ResolvedStage, ...]], tuple[list, list]] = {}
    for head in heads:
        reads, writes = groups.setdefault((head.controller, head.stages), ([], []))
        (writes if head.writes else reads).append((head.name, head.heads))
    return tuple(GroupPlan(memory, c, s, tuple(r), tuple(w)) for (c, s), (r, w) in groups.items())


class HeadGroup(nn.Module):
    """Runs one group's addressing, reads and write preparation for one step.

    A group with an ``lru`` stage keeps each head's moving average of its content logits as
    state under :attr:`average_key` (:meth:`initial_average`); a group with a ``hard`` stage samples
    its slots and records a :class:`~cogdsl.reinforce.Decision` in :attr:`decision` while training.
    """

    # The group does its memory's whole step (a dnc_memory) rather than hand writes to it.
    owns_memory = False

    def __init__(self, plan: GroupPlan, width: int, offset: int, address_width: int = 0,
                 average_key: str = "lru:0"):
        super().__init__()
        self.plan = plan
        self.width = width
        self.address_width = address_width
        self.layout = group_layout(plan, width, offset, address_width)
        self.stage_names = tuple(s.name for s in plan.stages)
        self.similarity = content_similarity(plan.stages)
        self.read_init = read_init_parameters(plan, width + address_width)
        stages = {s.name: s for s in plan.stages}
        self.lru_decay: float | None = stages["lru"].arg("decay") if "lru" in stages else None
        self.average_key = average_key if self.lru_decay is not None else None
        self.samples = "hard" in stages
        self.entropy_weight: float = stages["hard"].arg("entropy") if self.samples else 0.0
        # REINFORCE's baseline b: one learned number, since the reward is already centred on the batch.
        self.baseline = nn.Parameter(torch.zeros(1)) if self.samples else None
        self.decision: Decision | None = None

    def fields(self, interface: torch.Tensor) -> dict[str, torch.Tensor]:
        """Slice and activate each field: (B, heads, size), or (B, heads) for one number per head."""
        return activate_fields(self.layout, interface)

    def forward(self, interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor,
                state: dict[str, torch.Tensor] | None = None) -> GroupStep:
        """One step for every head of the group: address, read, and hand the writes to the memory.

        Args:
            interface: (B, I) the controller's clamped interface vector.
            memory: (B, N, A + W) the memory before this step's writes, each slot's address (if
                any) before its content.
            previous: (B, H, N) the group's weightings at the previous step.
            state: for an ``lru`` group, its moving average of content logits (B, H, N) under
                :attr:`average_key`.
        """
        f = self.fields(interface)
        names = self.stage_names
        result = GroupStep(previous)
        if self.average_key is None and not self.samples:  # any pipeline of content, gate, shift, sharpen: one op
            weights = ops.address(memory, previous, f.get("key"), f.get("strength"), f.get("gate"), f.get("shift"),
                                  f.get("gamma"), similarity=self.similarity)
        else:
            weights = previous
            if self.average_key is not None:
                assert self.lru_decay is not None and state is not None
                weights, result.state[self.average_key] = lru_address(
                    memory, f["key"], f["strength"], state[self.average_key], f["lru_gamma"], self.lru_decay,
                    self.similarity)
            elif "content" in names:
                weights = ops.content_weights(memory, f["key"], f["strength"], self.similarity)
            if "gate" in names:
                weights = ops.interpolate(weights, previous, f["gate"])
            if "shift" in names:
                weights = ops.shift(weights, f["shift"])
            if "sharpen" in names:
                weights = ops.sharpen(weights, f["gamma"])
            if self.samples:
                weights = self._sample(weights)
        plan = self.plan
        result.weights = weights
        result.reads = ops.read(memory, weights[:, :plan.read_heads]) if plan.reads else None
        result.writes = (weights[:, plan.read_heads:], f["erase"], f["add"]) if plan.writes else None
        return result

    def _sample(self, weights: torch.Tensor) -> torch.Tensor:
        """The ``hard`` stage: one slot per head (:func:`~cogdsl.blocks.dntm.sample_slots`); while
        training, the choice is recorded as :attr:`decision`."""
        one_hot, log_prob, entropy = sample_slots(weights, self.training)
        self.decision = None
        if self.training:
            assert self.baseline is not None
            self.decision = slot_decision([(log_prob, entropy, self.entropy_weight)], self.baseline, weights)
        return one_hot

    def initial_average(self, batch: int, slots: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """An ``lru`` group's moving average of content logits at t = 0, zeros (B, H, N) by its key."""
        if self.average_key is None:
            return {}
        return {self.average_key: like.new_zeros(batch, self.plan.heads, slots)}

    @property
    def fusable(self) -> bool:
        """Whether :meth:`address_read_write` can run this group: NTM addressing (any pipeline of content, gate,
        shift and sharpen; not ``lru`` or ``hard``), at least one write head, and slots that are all content
        (no address vectors)."""
        return (bool(self.plan.writes) and self.average_key is None and not self.samples
                and not self.address_width)

    def address_read_write(self, interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor
                           ) -> GroupStep:
        """One step for every head of a :attr:`fusable` group, the write included: one ``ops.memory_step`` call.

        The same as :meth:`forward` followed by ``ops.write`` of its writes, for a group that
        is its memory's only writer; on CUDA it is one kernel launch.

        The result's ``memory`` is the new memory (B, N, W); it has no ``writes``.
        """
        f = self.fields(interface)
        weights, reads, new_memory = ops.memory_step(
            memory, previous, f.get("key"), f.get("strength"), f.get("gate"), f.get("shift"), f.get("gamma"),
            f["erase"], f["add"], similarity=self.similarity)
        return GroupStep(weights, reads if self.plan.reads else None, memory=new_memory)

    def initial_weights(self, batch: int, slots: int, like: torch.Tensor) -> torch.Tensor:
        """Every head starts focused on slot 0, (B, H, N), so location addressing has a place to move from."""
        weights = like.new_zeros(batch, self.plan.heads, slots)
        weights[:, :, 0] = 1.0
        return weights


def head_slices(plan: GroupPlan) -> tuple[tuple[str, int, int], ...]:
    """(block, start, stop) of each head block among its group's heads: reads first, then writes."""
    slices, start = [], 0
    for block, heads in plan.reads + plan.writes:
        slices.append((block, start, start + heads))
        start += heads
    return tuple(slices)


class GroupUnit(Unit):
    """What every head group's unit shares: its weightings as state (``weights:INDEX``), the reads it gives
    its read blocks, each head block's weightings in the trace, and the learned r@prev at t = 0.

    ``step_group`` runs the group's own step and returns (weights (B, H, N), reads (B, H_read, width) or
    None, the StepOut to fill)."""

    def __init__(self, b: Build, index: int, group: nn.Module, slots: int):
        self.index, self.name = index, f"group:{index}"
        self.group = group
        b.container("groups").append(group)
        self.plan: GroupPlan = group.plan
        self.key = f"weights:{index}"
        self.slots = slots
        self.slices = head_slices(self.plan)

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.key: self.group.initial_weights(batch, self.slots, like)}

    @property
    def samples(self) -> bool:  # type: ignore[override]
        """Whether its heads sample slots (``hard``), learned by REINFORCE."""
        return bool(self.group.samples)

    def blocks(self) -> tuple[str, ...]:
        return tuple(block for block, _ in self.plan.reads + self.plan.writes)

    def initial_values(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """What its read blocks read "at t = 0", for a block that reads them with @prev: learned vectors."""
        return {name: p.to(like.dtype).expand(batch, -1) for name, p in self.group.read_init.items()}

    def step_group(self, step: Step, interface: torch.Tensor, out: StepOut
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def step(self, step: Step) -> StepOut:
        (interface,) = step.taken("interface", self.plan.controller)
        out = StepOut()
        weights, reads = self.step_group(step, interface, out)
        out.state[self.key] = weights
        if reads is not None:
            for block, start, stop in self.slices[:len(self.plan.reads)]:
                out.values[block] = reads[:, start:stop].reshape(reads.shape[0], -1)
        for block, start, stop in self.slices:
            out.trace[block] = weights[:, start:stop]
        if self.group.decision is not None:
            out.decisions.append(self.group.decision)
        return out

    def heads_text(self) -> str:
        plan = self.plan
        heads = ", ".join(f"{b} x{n}" for b, n in plan.reads + plan.writes)
        return f"heads {heads} on {plan.memory} by {plan.controller}"

    def parameter_counts(self) -> dict[str, int]:
        read_init = self.group.read_init
        return {block: read_init[block].numel() if block in read_init else 0
                for block, _ in self.plan.reads + self.plan.writes}


class MemoryStepUnit(GroupUnit):
    """The unit of a group that runs its memory's whole step in its place (a ``dnc_memory``, a
    ``sam_memory``): the group's ``step(interface, memory, weights, state) -> GroupStep`` gives the new
    memory and its other state. Trace: the memory's ``MEMORY:usage`` (B, N), and each read block's read
    modes ``BLOCK:modes`` (B, heads, modes) where the group shows them."""

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {**super().initial_state(batch, like), **self.group.initial_state(batch, like)}

    def step_group(self, step: Step, interface: torch.Tensor, out: StepOut
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        memory = self.plan.memory
        result = self.group.step(interface, step.state[memory], step.state[self.key], step.state)
        assert result.memory is not None
        out.state[memory] = result.memory
        out.state.update(result.state)
        out.trace[f"{memory}:usage"] = result.shown["usage"]
        if "modes" in result.shown:
            for block, start, stop in self.slices[:len(self.plan.reads)]:
                out.trace[f"{block}:modes"] = result.shown["modes"][:, start:stop]
        return result.weights, result.reads


def check_one_controller(kind: str, memory: str, heads: list[HeadUse], sink: DiagnosticSink) -> None:
    """E309 for each head driven by another controller than the first: the heads of a memory that runs as
    one group (a ``dnc_memory``, a ``sam_memory``) share one controller."""
    first = heads[0]
    for head in heads[1:]:
        if head.controller != first.controller:
            sink.error("E309", f"{kind} '{memory}': '{head.name}' is driven by '{head.controller}' but "
                       f"'{first.name}' by '{first.controller}'; the heads of a {kind} share one controller",
                       head.span, f"drive it by '{first.controller}'")


def whole_memory_group(kind: str, memory: str, heads: list[HeadUse]) -> tuple[GroupPlan, ...]:
    """The one group of all a memory's heads (reads first, then writes), addressed as its first read and
    first write head are."""
    reads = tuple((h.name, h.heads) for h in heads if not h.writes)
    writers = [h for h in heads if h.writes]
    read_stages = next((h.stages for h in heads if not h.writes), ())
    return (GroupPlan(memory, heads[0].controller, read_stages, reads, tuple((h.name, h.heads) for h in writers),
                      writers[0].stages if writers else (), kind),)


class NTMGroupUnit(GroupUnit):
    """An NTM head group's step: address the memory as the previous step left it, read, and post the writes
    for the memory's unit (topic "writes"); an ``lru`` group keeps its moving average as ``lru:INDEX``.
    A ``fused`` group, its memory's only writer with NTM addressing, does all of it in one
    ``ops.memory_step`` call and posts the new memory (topic "memory")."""

    group: HeadGroup

    def __init__(self, b: Build, index: int, group: HeadGroup, slots: int, fused: bool):
        super().__init__(b, index, group, slots)
        self.fused = fused
        self._memories = b.container("memories")

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {**super().initial_state(batch, like), **self.group.initial_average(batch, self.slots, like)}

    def step_group(self, step: Step, interface: torch.Tensor, out: StepOut
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        memory, previous = self.plan.memory, step.state[self.key]
        if self.fused:
            result = self.group.address_read_write(interface, step.state[memory], previous)
        else:
            if not step.taken("addressed", memory):  # the memory as heads see it, [addresses ; contents]: once
                step.post("addressed", memory, self._memories[memory].addressed(step.state[memory]))
            (addressed,) = step.taken("addressed", memory)
            result = self.group(interface, addressed, previous, step.state)
        out.state.update(result.state)
        if result.memory is not None:
            step.post("memory", memory, result.memory)
        if result.writes is not None:
            step.post("writes", memory, result.writes)
        return result.weights, result.reads

    def describe(self) -> str:
        group, plan = self.group, self.plan
        text = f"{self.heads_text()}: address ({spelled_pipe(plan.stages)})"
        if group.address_width:
            text += f" over each slot's learned address ({group.address_width}) and content ({group.width})"
        if group.lru_decay is not None:
            text += ", keeping the moving average of its content logits"
        if group.samples:
            text += ", one sampled slot per head (REINFORCE)"
        if plan.reads:
            text += ", read the memory as of the previous step"
        if self.fused:
            text += "; one memory_step call with the write (a fused kernel on CUDA)"
        return text

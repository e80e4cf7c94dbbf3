"""The NTM memory matrix (Graves et al. 2014): N slots of width W, one per sequence in the batch.

Step order: every head addresses, and every read head reads, the memory as it was at the
end of the previous step; then all of the memory's write heads write at once,
M_t = M_{t-1} o prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T (see :func:`cogdsl.ops.write`).
So reads never see this step's writes, as in the NTM paper.

With ``address_width: A`` each slot also has a learned address vector of A numbers beside
its W numbers of content, as in the Dynamic NTM (see :mod:`cogdsl.blocks.dntm`): heads
address and read [address ; content], A + W wide, and write the content only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl import ops
from cogdsl.blocks.addressing import ResolvedStage, resolve_ntm_address
from cogdsl.blocks.base import BlockKind, Param, register
from cogdsl.blocks.heads import (
    FieldSlice,
    GroupPlan,
    GroupUnit,
    HeadGroup,
    HeadUse,
    NTMGroupUnit,
    group_layout,
    ntm_groups,
)
from cogdsl.blocks.runtime import Build, Step, StepOut, Unit, count
from cogdsl.errors import DiagnosticSink
from cogdsl.language.spec import Address

_MEMORY_PARAMS = (
    Param("slots", int, minimum=1, maximum=1_048_576, doc="number of memory slots N"),
    Param("width", int, minimum=1, maximum=65536, doc="width W of each slot"),
    Param("init", str, "constant", choices=("constant", "learned", "random"),
          doc="initial contents: a small constant (Collier & Beel 2018 found it trains best), "
              "a learned matrix, or fresh Gaussian noise per sequence"),
    # Contents of 1e6 keep a slot's squared norm within float32 at any width (a squared norm past
    # 3.4e38, from contents near 1e19, makes similarities and their gradients inf, then NaN).
    Param("init_value", float, 1e-6, minimum=-1e6, maximum=1e6, doc="the constant for init=constant"),
    Param("init_std", float, 0.1, minimum=0.0, maximum=1e6, doc="standard deviation for init=learned or random"),
)
_ADDRESS_WIDTH = Param("address_width", int, 0, minimum=0, maximum=65536,
                       doc="A, the size of each slot's learned address vector (Dynamic NTM); 0 for none")


@register
class MemoryKind(BlockKind):
    kind = "memory"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c, r)\n"
        "lstm c(hidden=6) <- x, r@prev\n"
        "memory mem({params})\n"
        "read r on mem by c\n"
        "write w on mem by c\n")
    example_params: ClassVar[dict[str, Any]] = {"slots": 4, "width": 3}
    family = "memory"
    doc = "NTM memory matrix of `slots` x `width`, read and written by `read`/`write` heads."
    params = (*_MEMORY_PARAMS, _ADDRESS_WIDTH)
    # Whether the memory's head group runs the memory's whole step (write included) in its place.
    owns_step = False
    # The addressing stages (cogdsl.blocks.addressing.STAGES) its heads use as declared there (the reference
    # tables list them), and the activation of a content strength on it.
    stages: ClassVar[frozenset[str]] = frozenset({"content", "lru", "gate", "shift", "sharpen", "hard"})
    strength: ClassVar[str] = "softplus"

    # -- what a memory kind tells the passes about the heads on it -------------------------
    @classmethod
    def default_address(cls, writes: bool) -> str:
        """The address a read (``writes=False``) or write head gets when it gives none."""
        return "content(cosine) | gate | shift(1) | sharpen"

    @classmethod
    def resolve_address(cls, address: Address, owner: str, sink: DiagnosticSink,
                        writes: bool) -> tuple[ResolvedStage, ...] | None:
        """A head's addressing stages checked for this memory kind, or None after reporting why not."""
        return resolve_ntm_address(address, owner, sink)

    @classmethod
    def plan_groups(cls, memory: str, heads: list[HeadUse], sink: DiagnosticSink) -> tuple[GroupPlan, ...]:
        """The memory's head groups; problems with the heads as a whole are reported to ``sink``."""
        return ntm_groups(memory, heads, sink)

    @classmethod
    def read_width(cls, params: dict[str, Any]) -> int:
        """The size of what one read head reads: a whole slot, its address (if any) and its content."""
        return params["width"] + params.get("address_width", 0)

    @classmethod
    def layout(cls, plan: GroupPlan, params: dict[str, Any], offset: int) -> list[FieldSlice]:
        """Where a group's fields lie in its controller's interface vector, from ``offset``."""
        return group_layout(plan, params["width"], offset, params["address_width"])

    @classmethod
    def group_unit(cls, b: Build, index: int, plan: GroupPlan, offset: int) -> GroupUnit:
        """The unit that runs one head group's step (``offset``: where its fields start in the interface)."""
        params = b.shapes.params[plan.memory]
        group = HeadGroup(plan, params["width"], offset, params["address_width"], average_key=f"lru:{index}")
        writers = [other.memory for other in b.shapes.groups if other.writes]
        # A memory's only writer, with NTM addressing, runs addressing, reads and write as one op.
        return NTMGroupUnit(b, index, group, params["slots"], group.fusable and writers.count(plan.memory) == 1)

    @classmethod
    def make(cls, params: dict[str, Any]) -> NTMMemory:
        return NTMMemory(params["slots"], params["width"], params["init"], params["init_value"], params["init_std"],
                         params.get("address_width", 0))

    @classmethod
    def build(cls, b: Build) -> Unit:
        writers = [block for plan in b.shapes.groups if plan.memory == b.name for block, _ in plan.writes]
        return MemoryUnit(b, cls.make(b.params), writers)


class MemoryUnit(Unit):
    """A memory's step, after every head has read it: all of this step's writes at once, M_t =
    ``ops.write(M_{t-1}, ...)`` of every write head (topic "writes"), or the new memory a fused group
    computed (topic "memory"); a memory nothing wrote stays as it was. Its state: ``NAME``, (B, N, W)."""

    def __init__(self, b: Build, module: NTMMemory, writers: list[str]):
        self.name, self.module, self.writers = b.name, b.add("memories", b.name, module), writers

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.name: self.module.initial_state(batch, like)}

    def step(self, step: Step) -> StepOut:
        fused = step.taken("memory", self.name)
        if fused:
            return StepOut(state={self.name: fused[0]})
        writes = step.taken("writes", self.name)
        if not writes:
            return StepOut(state={self.name: step.state[self.name]})
        weights, erase, add = writes[0] if len(writes) == 1 else (
            torch.cat(parts, dim=1) for parts in zip(*writes, strict=True))
        return StepOut(state={self.name: ops.write(step.state[self.name], weights, erase, add)})

    def describe(self) -> str | None:
        if not self.writers:
            return None
        return f"write {self.name}: erase and add of {', '.join(self.writers)} (seen by reads from the next step)"

    def parameter_counts(self) -> dict[str, int]:
        return {self.name: count(self.module)}


class NTMMemory(nn.Module):
    """Holds how a memory starts; the memory itself lives in the model's state."""

    def __init__(self, slots: int, width: int, init: str, init_value: float, init_std: float,
                 address_width: int = 0):
        super().__init__()
        self.slots, self.width, self.init, self.init_value, self.init_std = slots, width, init, init_value, init_std
        if init == "learned":
            self.initial = nn.Parameter(torch.randn(slots, width) * init_std)
        # Each address about unit length, so that at first (the content near zero) cosine keys
        # tell slots apart by where they are.
        self.addresses = (nn.Parameter(torch.randn(slots, address_width) / address_width ** 0.5)
                          if address_width else None)

    def addressed(self, contents: torch.Tensor) -> torch.Tensor:
        """What heads address and read: each slot's address before its content, (B, N, W) → (B, N, A + W)."""
        if self.addresses is None:
            return contents
        return torch.cat([self.addresses.to(contents.dtype).expand(contents.shape[0], -1, -1), contents], dim=-1)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The memory at t = 0, (B, N, W)."""
        shape = (batch, self.slots, self.width)
        if self.init == "learned":
            return self.initial.to(like.dtype).expand(shape)
        if self.init == "random":
            return torch.randn(shape, dtype=like.dtype, device=like.device) * self.init_std
        return like.new_full(shape, self.init_value)

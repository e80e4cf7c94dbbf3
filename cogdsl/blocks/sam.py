"""Sparse Access Memory (Rae et al. 2016, "Scaling Memory-Augmented Neural Networks with Sparse Reads
and Writes", arXiv 1610.09027, §3 and supplement A.3).

A ``sam_memory`` is an N x W matrix whose read heads read K slots each and whose write head writes to
the slots read at the previous step and to the least recently accessed slot::

    sam_memory mem(slots=128, width=20, k=4)
    write      w on mem by ctrl                  # the default address: lru
    read       r on mem by ctrl                  # the default address: content(cosine)

All heads of a ``sam_memory`` run as one group, driven by one controller, with at most one write
head (R read heads). One step, t this step and t-1 the previous one (shapes: B batch, N slots,
W width, R read heads, K slots read per head):

1. LRU slot: I^U_t = one-hot of argmax_i U_{t-1}(i), the slot accessed longest ago (eq. 6;
   :func:`cogdsl.ops.sam.sam_lru`), (B, N);
2. write weights: w^W_t = alpha (gamma mean_h w^R_{t-1,h} + (1 - gamma) I^U_t) (eq. 5;
   :func:`cogdsl.ops.sam_write_weights`), (B, N);
3. write: M_t = (1 - I^U_t 1^T) o M_{t-1} + w^W_t a^T: the LRU row is erased whole, every other row
   is added to (eq. 3; :func:`cogdsl.ops.sam_write`), (B, N, W);
4. sparse read of the *new* memory, per head: the K slots of largest cosine K(q_h, M_t(i))
   (:func:`cogdsl.ops.sam.sam_top_k`, ties to the lowest index), w^R_{t,h} = softmax over those K of
   beta_h K(q_h, M_t(i)), zero elsewhere; r_h = sum_k w^R_{t,h}(i_k) M_t(i_k) (eq. 4;
   :func:`cogdsl.ops.sam_read`), weights (B, R, N), reads (B, R, W);
5. usage U^(2): U_t(i) = 0 where w^W_t(i) + sum_h w^R_{t,h}(i) > delta, else U_{t-1}(i) + 1: the steps
   since slot i was last accessed (:func:`cogdsl.ops.sam.sam_usage`), (B, N); U_0 = 0, so a slot never
   accessed is the oldest.

So, as in the DNC and unlike an NTM ``memory``, reads see this step's write. Gradients pass through
the K rows each head read, the write's gates and word, and the previous read weights in eq. 5; the
choices of slots (top-K, LRU, the delta threshold) are index sets and pass none. This is the dense
form (O(N W) a step to find the K best slots): the paper's speed needs an approximate nearest-neighbour
index and in-place sparse writes, which it does not have.

**Interface fields and activations** (the controller's interface vector clamped to [-clip, clip]
first), R·W + R + W + 2 numbers:

    key       R x W   identity                  the read keys q
    strength  R x 1   oneplus = 1 + softplus    beta >= 1 (``strengths: false``: none, beta = 1)
    add       1 x W   identity                  the word written, a
    alpha     1 x 1   sigmoid                   the write gate
    gamma     1 x 1   sigmoid                   previous reads (gamma) or the LRU slot (1 - gamma)

The paper's controller emits (q, a, alpha, gamma) and no strength; with cosine in [-1, 1] and K = 4,
softmax weights then differ by at most e^2, so a read stays blurred. A strength does not change which
K slots are read (top-K of beta cos is top-K of cos), only how sharply they are weighted; it is
oneplus, as the DNC's, and ``strengths: false`` gives the paper's reads.

**State** (keys this memory's group owns): ``MEM`` the memory (B, N, W); ``usage:MEM`` U^(2)
(B, N); ``weights:INDEX`` the group's weightings, read heads then the write head (B, R + 1, N): the
previous read weights of eq. 5. **Trace:** each head block's weightings (B, heads, N), and
``MEM:usage``, the recency 1 / (1 + U^(2)) in (0, 1] (1: accessed this step; the darkest slot is the
one the next write erases).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from cogdsl import ops
from cogdsl.blocks.addressing import ResolvedStage, resolve_stage
from cogdsl.blocks.base import Param, register
from cogdsl.blocks.heads import (
    FieldSlice,
    GroupPlan,
    GroupStep,
    GroupUnit,
    HeadUse,
    LaidOut,
    MemoryStepUnit,
    activate_fields,
    check_one_controller,
    lay_out,
    read_init_parameters,
    whole_memory_group,
)
from cogdsl.blocks.memory import _MEMORY_PARAMS, MemoryKind
from cogdsl.blocks.runtime import Build
from cogdsl.errors import DiagnosticSink
from cogdsl.ops.sam import sam_lru, sam_top_k, sam_usage

if TYPE_CHECKING:  # a type only: the IR's module moves with the package layout
    from cogdsl.language.spec import Address

READ_ADDRESS = "content(cosine)"
WRITE_ADDRESS = "lru"


@register
class SAMMemoryKind(MemoryKind):
    kind = "sam_memory"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c, r)\n"
        "lstm c(hidden=6) <- x, r@prev\n"
        "sam_memory mem({params})\n"
        "write w on mem by c\n"
        "read r on mem by c\n")
    example_params: ClassVar[dict[str, Any]] = {"slots": 6, "width": 3}
    doc = ("Sparse Access Memory (Rae et al. 2016) of `slots` x `width`: each `read` head reads the `k` slots "
           "most similar to its key (`content(cosine)`), the one `write` head writes to the slots read at the "
           "previous step and to the least recently accessed slot, which it erases first (`lru`).")
    params = (
        *_MEMORY_PARAMS,
        Param("k", int, 4, minimum=1, maximum=1_048_576,
              doc="K, the slots each read head reads (at most `slots`; k = slots reads every slot, a dense read)"),
        Param("delta", float, 0.005, minimum=0.0, maximum=1.0,
              doc="a slot whose read and write weights sum to more than delta counts as accessed"),
        Param("strengths", bool, True,
              doc="a learned key strength (oneplus) per read head; false: the paper's reads, which have none"),
    )

    owns_step = True
    # Its reads follow the content stage's declaration (fields, equation, then top-K); its write, spelled
    # "lru", is SAM's own least-recently-accessed write (below), not the Dynamic NTM's lru stage.
    stages: ClassVar[frozenset[str]] = frozenset({"content"})
    strength: ClassVar[str] = "oneplus"

    @classmethod
    def conflicts(cls, params: dict[str, Any]) -> list[tuple[str, str, str]]:
        if params["k"] > params["slots"]:
            return [("k", f"k is {params['k']} but the memory has {params['slots']} slots",
                     f"allowed: 1 <= k <= slots ({params['slots']}); k = slots reads every slot")]
        return []

    # -- addressing: one fixed address per role -------------------------------------------------
    @classmethod
    def default_address(cls, writes: bool) -> str:
        return WRITE_ADDRESS if writes else READ_ADDRESS

    @classmethod
    def resolve_address(cls, address: Address, owner: str, sink: DiagnosticSink,
                        writes: bool) -> tuple[ResolvedStage, ...] | None:
        """The role's one address: reads ``content(cosine)`` (sparse, over the k best slots), writes ``lru``
        (the previously read slots and the least recently accessed one). Anything else is refused (E402,
        or E403 for arguments) where it is written."""
        wanted = WRITE_ADDRESS if writes else READ_ADDRESS
        what = ("write heads write to the slots read at the previous step and to the least recently "
                "accessed slot" if writes else "read heads read by cosine similarity, from the k best slots")
        stages = address.stages
        for position, stage in enumerate(stages):
            if position > 0 or stage.name != wanted.partition("(")[0]:
                sink.error("E402", f"{owner}: '{stage.name}' does not address a sam_memory: its {what}",
                           stage.span, f"write '{wanted}' alone, or leave the address out")
                return None
        stage = stages[0]
        if writes:
            if stage.args:
                sink.error("E403", f"{owner}: stage 'lru' takes no argument on a sam_memory: its usage is the "
                           "steps since each slot's last access, not a moving average", stage.span,
                           "write 'lru' without parentheses")
                return None
            return (ResolvedStage("lru", ()),)
        resolved = resolve_stage(stage, owner, sink)
        if resolved is None:
            return None
        if resolved.arg("similarity") != "cosine":
            sink.error("E402", f"{owner}: a sam_memory reads by cosine similarity, not "
                       f"'{resolved.arg('similarity')}'", stage.span, f"write '{READ_ADDRESS}'")
            return None
        return (resolved,)

    @classmethod
    def plan_groups(cls, memory: str, heads: list[HeadUse], sink: DiagnosticSink) -> tuple[GroupPlan, ...]:
        """One group for all heads: one controller, and at most one write head."""
        problems = len(sink.items)
        check_one_controller(cls.kind, memory, heads, sink)
        writers = [h for h in heads if h.writes]
        if sum(h.heads for h in writers) > 1:
            extra = writers[1] if len(writers) > 1 else writers[0]
            sink.error("E309", f"sam_memory '{memory}': '{extra.name}' makes {sum(h.heads for h in writers)} write "
                       "heads; a sam_memory has one (its write mixes the slots all read heads read)", extra.span,
                       "keep one write block with one head")
        if len(sink.items) > problems:
            return ()
        return whole_memory_group(cls.kind, memory, heads)

    @classmethod
    def layout(cls, plan: GroupPlan, params: dict[str, Any], offset: int) -> list[FieldSlice]:
        return sam_layout(plan, params["width"], params["strengths"], offset)

    @classmethod
    def read_width(cls, params: dict[str, Any]) -> int:
        """A read head reads one word, W."""
        return params["width"]

    @classmethod
    def group_unit(cls, b: Build, index: int, plan: GroupPlan, offset: int) -> GroupUnit:
        params = b.shapes.params[plan.memory]
        group = SAMGroup(plan, params["width"], params["slots"], params["k"], params["delta"], params["strengths"],
                         offset)
        return SAMGroupUnit(b, index, group, params["slots"])

    # make and build are MemoryKind's: an NTMMemory holds how the matrix starts (``init``), a MemoryUnit
    # keeps it in the state under the memory's name; this group's unit writes it (``owns_step``).


def sam_layout(plan: GroupPlan, width: int, strengths: bool, offset: int) -> list[FieldSlice]:
    """The group's interface fields: the read heads' keys (and strengths), then the write head's add,
    alpha and gamma (gamma only when there are read heads to interpolate with)."""
    reads, writes = plan.read_heads, plan.write_heads
    fields: list[LaidOut] = []  # name, heads, size, activation, first head, one number per head
    if reads:
        fields.append(("key", reads, width, "identity", 0, False))
        if strengths:
            fields.append(("strength", reads, 1, "oneplus", 0, True))
    if writes:
        fields += [("add", writes, width, "identity", reads, False), ("alpha", writes, 1, "sigmoid", reads, True)]
        if reads:
            fields.append(("gamma", writes, 1, "sigmoid", reads, True))
    return lay_out(fields, offset)


class SAMGroup(nn.Module):
    """Every head of one ``sam_memory``: the memory's whole step (LRU, write, sparse reads, usage)."""

    owns_memory = True
    fusable = False
    samples = False
    decision = None
    modes: tuple[str, ...] = ()  # no read modes: a SAM head reads by content only

    def __init__(self, plan: GroupPlan, width: int, slots: int, k: int, delta: float, strengths: bool,
                 offset: int):
        super().__init__()
        self.plan = plan
        self.width, self.slots, self.k, self.delta, self.strengths = width, slots, min(k, slots), delta, strengths
        self.layout = sam_layout(plan, width, strengths, offset)
        self.usage_key = f"usage:{plan.memory}"
        self.read_init = read_init_parameters(plan, width)

    def fields(self, interface: torch.Tensor) -> dict[str, torch.Tensor]:
        return activate_fields(self.layout, interface)

    def initial_weights(self, batch: int, slots: int, like: torch.Tensor) -> torch.Tensor:
        """Nothing read or written yet: zeros (B, R + 1, N), so the first write goes to the LRU slot only."""
        return like.new_zeros(batch, self.plan.heads, slots)

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """U^(2) = 0 for every slot, (B, N): none accessed yet, all older than any slot accessed later."""
        return {self.usage_key: like.new_zeros(batch, self.slots)}

    def step(self, interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor,
             state: dict[str, torch.Tensor]) -> GroupStep:
        """One step of the memory and all its heads.

        Args:
            interface: (B, I) the controller's clamped interface vector.
            memory: (B, N, W) M_{t-1}.
            previous: (B, R + 1, N) last step's read weights, then write weights (R + 0 with no writer).
            state: U^(2)_{t-1} (B, N) under :attr:`usage_key`.

        Returns:
            weights (B, R + 1, N) (reads, then the write); reads (B, R, W) or None; the memory M_t;
            state: U^(2)_t by :attr:`usage_key`; shown: ``usage``, the recency 1 / (1 + U^(2)_t).
        """
        f = self.fields(interface)
        plan = self.plan
        reads_n = plan.read_heads
        usage = state[self.usage_key]
        previous_read = previous[:, :reads_n]  # (B, R, N)
        accessed = previous_read.new_zeros(memory.shape[0], memory.shape[1])  # (B, N)
        parts = []
        new_memory = memory
        if plan.writes:
            lru = sam_lru(usage)  # (B, N)
            alpha = f["alpha"][:, 0]  # (B,)
            if reads_n:
                write_weights = ops.sam_write_weights(previous_read, lru, alpha, f["gamma"][:, 0])
            else:  # nothing was read: the write goes to the LRU slot, gated by alpha
                write_weights = alpha.unsqueeze(-1) * lru
            new_memory = ops.sam_write(memory, write_weights, f["add"][:, 0], lru)
            accessed = accessed + write_weights
            parts.append(write_weights.unsqueeze(1))
        reads = None
        if reads_n:
            keys = f["key"]  # (B, R, W)
            strengths = f["strength"] if self.strengths else keys.new_ones(keys.shape[:2])
            slots = sam_top_k(new_memory, keys, self.k)  # (B, R, K)
            read_weights, reads = ops.sam_read(new_memory, keys, strengths, slots)
            accessed = accessed + read_weights.sum(dim=1)
            parts.insert(0, read_weights)
        usage = sam_usage(usage, accessed, self.delta)
        return GroupStep(torch.cat(parts, dim=1), reads, memory=new_memory, state={self.usage_key: usage},
                         shown={"usage": 1 / (1 + usage)})


class SAMGroupUnit(MemoryStepUnit):
    """A ``sam_memory``'s step, in its group's place (:meth:`SAMGroup.step`). Its state: the memory (``MEM``),
    U^(2) (``usage:MEM``) and the weightings (``weights:INDEX``). Trace: each head block's weightings, and
    ``MEM:usage``, the recency 1 / (1 + U^(2)) of each slot (B, N)."""

    group: SAMGroup

    def describe(self) -> str:
        group, plan = self.group, self.plan
        parts = []
        if plan.writes:
            parts.append("write (lru: " + ("the slots read last step and " if plan.reads else "")
                         + "the least recently accessed slot, erased first)")
        if plan.reads:
            strength = "" if group.strengths else ", no strength"
            parts.append(f"read the new memory sparsely (content(cosine): the {group.k} most similar slots per "
                         f"head{strength})")
        return (f"{self.heads_text()}: {', then '.join(parts)}; usage: steps since each slot's last access "
                f"(weight > {group.delta:g})")

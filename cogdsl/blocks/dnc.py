"""The Differentiable Neural Computer's memory (Graves et al. 2016, Nature 538, Methods).

A ``dnc_memory`` is an N x W matrix with a usage vector u (B, N), one temporal link matrix
L (B, N, N) and precedence p (B, N) per write head. Its heads are written as mixtures::

    write w on mem by ctrl: content(cosine) + allocate
    read  r(heads=4) on mem by ctrl: backward + content(cosine) + forward

All heads of a ``dnc_memory`` run as one group, driven by one controller; one step is
(t is this step, t-1 the previous one; every weighting is (B, heads, N)):

1. usage:  u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o prod_r (1 - f_r w^r_{t-1,r})
   (:func:`cogdsl.ops.dnc_usage`), with free gates f_r from this step's interface;
2. allocation a = :func:`cogdsl.ops.dnc_allocation` (u_t): the least-used slots;
3. write weights: w^w = g_w (g_a a + (1 - g_a) c^w), c^w = content weights of the write key
   on M_{t-1} (with only ``allocate``: w^w = g_w a; with only ``content``: w^w = g_w c^w);
4. write: M_t = M_{t-1} o prod_k (1 - w^w_k e_k^T) + sum_k w^w_k v_k^T (:func:`cogdsl.ops.write`);
5. links: L_t[i, j] = (1 - w_i - w_j) L[i, j] + w_i p[j], zero diagonal; p_t = (1 - sum w) p + w
   (:func:`cogdsl.ops.dnc_link`);
6. reads from the *new* memory M_t: forward f = L_t w^r_{t-1} and backward b = L_t^T w^r_{t-1}
   (:func:`cogdsl.ops.dnc_directional`), content c^r on M_t, mixed by the read modes
   pi (a softmax over the terms): w^r = pi_b b + pi_c c^r + pi_f f; r = M_t^T w^r.

So, unlike an NTM ``memory``, reads see this step's write, as in the DNC paper.

**Several write heads** (the paper has one; this follows DeepMind's reference code). The
usage update sees the write heads' combined weighting 1 - prod_k (1 - w^w_{t-1,k}). Head k's
allocation is computed from a usage that already counts heads 0..k-1 as written,
u <- u + (1 - u) g_w g_a a_k, so two heads never allocate the same free slot; the state keeps
u_t itself. Each write head has its own link matrix and precedence, so ``forward`` and
``backward`` give one read mode per write head: a read head has K backward modes, one
content mode and K forward modes (1 + 2K with all three terms).

**Interface fields and activations** (per head; the controller's interface vector is
clamped to [-clip, clip] first, the controller's ``clip`` parameter, as the paper clips):

    read_key         W   identity
    read_strength    1   oneplus = 1 + softplus   (beta >= 1)
    free_gate        1   sigmoid
    read_mode        M   softmax over the modes
    write_key        W   identity
    write_strength   1   oneplus
    erase            W   sigmoid
    add              W   identity                 (the paper's write vector v)
    allocation_gate  1   sigmoid                  (when both content and allocate are given)
    write_gate       1   sigmoid

Strengths are oneplus, as in the paper, rather than softplus as on an NTM memory: a DNC
head has no sharpening stage, so a strength of at least 1 keeps a content weighting at
least as sharp as softmax(similarity) and never lets it fade into the uniform weighting,
which would smear reads and writes over every slot.

**Dynamic NTM stages** (Gulcehre et al. 2016; the equations are in :mod:`cogdsl.blocks.dntm`).
A content term, read or write, may be piped into ``lru`` and then ``hard``::

    write w on mem by ctrl: content(cosine) | lru + allocate
    read  r on mem by ctrl: backward + content(cosine) | hard(0.01) + forward

``lru`` takes the content term of softmax(z - gamma v), z = beta K(k, M), with v the head's
moving average of its own content logits (state ``lru_read:MEM`` / ``lru_write:MEM``, per
head, zero at t = 0) and gamma a sigmoid field (``read_lru_gamma``, ``write_lru_gamma``).
``hard`` replaces the content term by the one-hot of a slot drawn from it (its argmax in
evaluation); the rest of the mixture stays soft (a read mixes the sampled slot with the
link-following modes; a write gates it and mixes it with allocation), and the choice learns
by REINFORCE. Reads' and writes' samples make one decision per step: their log-probabilities
add. Allocation and the link modes take no pipe: they are already computed from usage and
links, not from a key, so there is nothing for the stages to act on.

``stop_usage_gradient: true`` stops the gradient into the previous write weights in the usage
update, as DeepMind's reference code does; the default follows the paper's equations and
differentiates through everything.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl import ops
from cogdsl.blocks.addressing import (
    CONTENT_MODIFIERS,
    DNC_READ_TERMS,
    DNC_WRITE_TERMS,
    STAGES,
    ResolvedStage,
    content_similarity,
    resolve_stage,
    spelled_stage,
)
from cogdsl.blocks.base import Param, register
from cogdsl.blocks.dntm import lru_address, sample_slots, slot_decision
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
from cogdsl.language.spec import Address
from cogdsl.reinforce import Decision

READ_TERMS = DNC_READ_TERMS  # backward, content, forward: from the stages' declarations (addressing.py)
WRITE_TERMS = DNC_WRITE_TERMS  # content, allocate


@register
class DNCMemoryKind(MemoryKind):
    kind = "dnc_memory"
    example = (
        "input x: 3\n"
        "output y: 2 = sigmoid(c, r)\n"
        "lstm c(hidden=6) <- x, r@prev\n"
        "dnc_memory mem({params})\n"
        "write w on mem by c\n"
        "read r on mem by c\n")
    example_params: ClassVar[dict[str, Any]] = {"slots": 4, "width": 3}
    doc = ("DNC memory of `slots` x `width` with usage, allocation by sorted usage and temporal links; "
           "written by `write` heads (`content(cosine) + allocate`), then read by `read` heads "
           "(`backward + content(cosine) + forward`).")
    params = (
        *_MEMORY_PARAMS,
        Param("stop_usage_gradient", bool, False,
              doc="no gradient into the previous write weights in the usage update (as DeepMind's code); "
                  "the default follows the paper"),
    )

    owns_step = True
    stages: ClassVar[frozenset[str]] = frozenset({"content", "lru", "hard", "allocate", "forward", "backward"})
    strength: ClassVar[str] = "oneplus"  # the DNC paper's: beta >= 1

    @classmethod
    def default_address(cls, writes: bool) -> str:
        return " + ".join(WRITE_TERMS if writes else READ_TERMS).replace("content", "content(cosine)")

    @classmethod
    def resolve_address(cls, address: Address, owner: str, sink: DiagnosticSink,
                        writes: bool) -> tuple[ResolvedStage, ...] | None:
        """A mixture of distinct terms: write heads mix content and allocate, read heads backward,
        content and forward. Each term is one weighting, except that content may be piped on to
        the Dynamic NTM's ``lru`` and then ``hard``: ``content(cosine) | lru | hard``.

        The stages come back flat, in the order written (e.g. backward, content, lru, forward);
        an ``lru`` or ``hard`` belongs to the content term before it."""
        allowed = WRITE_TERMS if writes else READ_TERMS
        role = "write" if writes else "read"
        example = cls.default_address(writes)
        stages: list[ResolvedStage] = []
        for term in address.terms:
            resolved = [resolve_stage(stage, owner, sink) for stage in term.stages]
            if any(r is None for r in resolved):
                return None
            weighting, *modifiers = [r for r in resolved if r is not None]
            span = term.stages[0].span
            if weighting.name in CONTENT_MODIFIERS:
                sink.error("E402", f"{owner}: '{weighting.name}' is not a {role} weighting of a dnc_memory; it "
                           "reshapes a content weighting piped into it", span,
                           f"pipe content into it: 'content(cosine) | {weighting.name}'")
                return None
            if weighting.name not in allowed:
                sink.error("E402", f"{owner}: '{weighting.name}' is not a {role} weighting of a dnc_memory", span,
                           f"{role} heads on a dnc_memory mix {', '.join(allowed)}, e.g. '{example}'")
                return None
            if any(s.name == weighting.name for s in stages):
                sink.error("E402", f"{owner}: '{weighting.name}' appears twice in the mixture", span,
                           "use each weighting once")
                return None
            last = -1
            for stage, modifier in zip(term.stages[1:], modifiers, strict=True):
                if weighting.name != "content" or modifier.name not in CONTENT_MODIFIERS:
                    sink.error("E402", f"{owner}: '{weighting.name} | {modifier.name}': on a dnc_memory a term "
                               "is one weighting, and only content pipes on, into "
                               f"{' and then '.join(CONTENT_MODIFIERS)}", stage.span,
                               f"write '{example}', or 'content(cosine) | lru | hard' for the content term")
                    return None
                position = CONTENT_MODIFIERS.index(modifier.name)
                if position <= last:
                    sink.error("E402", f"{owner}: after content, 'lru' comes first and 'hard' last, each once",
                               stage.span, "write 'content(cosine) | lru | hard'")
                    return None
                last = position
            stages += [weighting, *modifiers]
        return tuple(stages)

    @classmethod
    def plan_groups(cls, memory: str, heads: list[HeadUse], sink: DiagnosticSink) -> tuple[GroupPlan, ...]:
        """One group for all heads: one controller, one read mixture and one write mixture."""
        problems = len(sink.items)
        check_one_controller(cls.kind, memory, heads, sink)
        for writes in (False, True):
            same_role = [h for h in heads if h.writes == writes]
            for head in same_role[1:]:
                if head.stages != same_role[0].stages:
                    role = "write" if writes else "read"
                    sink.error("E309", f"dnc_memory '{memory}': '{head.name}' and '{same_role[0].name}' are "
                               f"{role} heads with different addresses", head.span,
                               f"give every {role} head of '{memory}' the same address, or one block "
                               "with heads: n")
        writers = [h for h in heads if h.writes]
        for head in heads:
            directional = [s.name for s in head.stages if s.name in ("forward", "backward")]
            if not head.writes and directional and not writers:
                sink.error("E309", f"dnc_memory '{memory}': '{head.name}' follows the temporal links "
                           f"('{directional[0]}') but no write head makes them", head.span,
                           f"add a write head on '{memory}', or read by content only")
        if len(sink.items) > problems:
            return ()
        return whole_memory_group(cls.kind, memory, heads)

    @classmethod
    def layout(cls, plan: GroupPlan, params: dict[str, Any], offset: int) -> list[FieldSlice]:
        return dnc_layout(plan, params["width"], offset)

    @classmethod
    def group_unit(cls, b: Build, index: int, plan: GroupPlan, offset: int) -> GroupUnit:
        params = b.shapes.params[plan.memory]
        group = DNCGroup(plan, params["width"], params["slots"], offset, params["stop_usage_gradient"])
        return DNCGroupUnit(b, index, group, params["slots"])


class DNCGroupUnit(MemoryStepUnit):
    """A ``dnc_memory``'s step, in its group's place: usage, write, links, then reads of the new memory
    (:meth:`DNCGroup.step`). Its state: the memory, usage, links, precedences (and ``lru`` averages); its
    trace shows usage and read modes."""

    group: DNCGroup

    def describe(self) -> str:
        group, plan = self.group, self.plan
        text = f"{self.heads_text()}: usage"
        if plan.writes:
            text += f", write ({spelled_mixture(plan.write_stages)}), temporal links"
        if plan.reads:
            text += f", then read the new memory ({spelled_mixture(plan.stages)}; modes {', '.join(group.modes)})"
        if group.lru_keys:
            text += f"; {' and '.join(group.lru_keys)} content keep the moving average of their logits"
        if group.entropy_weights:
            text += f"; {' and '.join(group.entropy_weights)} content sample one slot per head (REINFORCE)"
        return text


def spelled_mixture(stages: tuple[ResolvedStage, ...]) -> str:
    """A dnc_memory address as written: terms joined by ' + ', and content piped into lru and hard."""
    terms: list[str] = []
    for stage in stages:
        if stage.name in CONTENT_MODIFIERS:
            terms[-1] += " | " + spelled_stage(stage)
        else:
            terms.append(spelled_stage(stage))
    return " + ".join(terms)


def mixture_terms(stages: tuple[ResolvedStage, ...]) -> tuple[str, ...]:
    """The weightings a mixture mixes, in order (e.g. backward, content, forward): its stages
    without the ``lru`` and ``hard`` piped after content."""
    return tuple(s.name for s in stages if s.name not in CONTENT_MODIFIERS)


def read_modes(plan: GroupPlan) -> tuple[str, ...]:
    """The read modes in order, e.g. ('backward', 'content', 'forward'); per write head when there are several."""
    writers = plan.write_heads
    modes: list[str] = []
    for term in mixture_terms(plan.stages):
        if term == "content":
            modes.append("content")
        else:
            modes += [term] if writers == 1 else [f"{term}:{k}" for k in range(writers)]
    return tuple(modes)


def dnc_layout(plan: GroupPlan, width: int, offset: int) -> list[FieldSlice]:
    """The group's interface fields: the read heads' (key, strength, lru gamma, free gate, modes), then the
    write heads'."""
    reads, writes = plan.read_heads, plan.write_heads
    write_terms = {s.name for s in plan.write_stages}
    fields: list[LaidOut] = []  # name, heads, size, activation, first head, one number per head
    if reads:
        fields += _content_term_fields("read", plan.stages, reads, width, 0)
        fields.append(("free_gate", reads, 1, "sigmoid", 0, True))
        modes = len(read_modes(plan))
        if modes > 1:
            fields.append(("read_mode", reads, modes, "softmax", 0, False))
    if writes:
        fields += _content_term_fields("write", plan.write_stages, writes, width, reads)
        fields += [("erase", writes, width, "sigmoid", reads, False), ("add", writes, width, "identity", reads, False)]
        if {"content", "allocate"} <= write_terms:
            fields.append(("allocation_gate", writes, 1, "sigmoid", reads, True))
        fields.append(("write_gate", writes, 1, "sigmoid", reads, True))
    return lay_out(fields, offset)


def _content_term_fields(role: str, stages: tuple[ResolvedStage, ...], heads: int, width: int, first: int
                         ) -> list[LaidOut]:
    """The fields of a role's content term and the stages piped after it (key, strength, lru gamma), as the
    stages declare them for a dnc_memory, each named for its role (``read_key``, ``write_lru_gamma``)."""
    fields: list[LaidOut] = []
    for stage in stages:
        if stage.name == "content" or stage.name in CONTENT_MODIFIERS:
            for f in STAGES[stage.name].fields(dict(stage.args), width, "dnc_memory"):
                fields.append((f"{role}_{f.name}", heads, f.size, f.activation, first, f.scalar))
    return fields


class DNCGroup(nn.Module):
    """Every head of one ``dnc_memory``: the memory's whole step (usage, write, links, reads).

    A content term piped into ``lru`` keeps, per head of its role, the moving average of its
    content logits as state (:attr:`lru_keys`); one piped into ``hard`` samples its slot and,
    while training, records a :class:`~cogdsl.reinforce.Decision` in :attr:`decision`.
    """

    owns_memory = True
    fusable = False

    def __init__(self, plan: GroupPlan, width: int, slots: int, offset: int, stop_usage_gradient: bool):
        super().__init__()
        self.plan = plan
        self.width, self.slots = width, slots
        self.layout = dnc_layout(plan, width, offset)
        self.read_terms = mixture_terms(plan.stages)
        self.write_terms = mixture_terms(plan.write_stages)
        self.modes = read_modes(plan)
        self.stop_usage_gradient = stop_usage_gradient
        self.read_similarity = content_similarity(plan.stages)
        self.write_similarity = content_similarity(plan.write_stages)
        memory = plan.memory
        self.state_keys = (f"usage:{memory}", f"link:{memory}", f"precedence:{memory}")
        self.read_init = read_init_parameters(plan, width)
        # The content term's Dynamic NTM stages, by role ("read", "write"): lru's decay and hard's
        # entropy weight, for the roles that pipe into them.
        roles = {"read": plan.stages, "write": plan.write_stages}
        self.lru_decays = {role: s.arg("decay") for role, stages in roles.items() for s in stages if s.name == "lru"}
        self.entropy_weights = {role: s.arg("entropy") for role, stages in roles.items() for s in stages
                                if s.name == "hard"}
        self.lru_keys = {role: f"lru_{role}:{memory}" for role in self.lru_decays}
        self.samples = bool(self.entropy_weights)
        # REINFORCE's baseline b: one learned number, since the reward is already centred on the batch.
        self.baseline = nn.Parameter(torch.zeros(1)) if self.samples else None
        self.decision: Decision | None = None

    def fields(self, interface: torch.Tensor) -> dict[str, torch.Tensor]:
        return activate_fields(self.layout, interface)

    def initial_weights(self, batch: int, slots: int, like: torch.Tensor) -> torch.Tensor:
        """No head has read or written anything yet: zero weightings, (B, H, N)."""
        return like.new_zeros(batch, self.plan.heads, slots)

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Usage (B, N), links (B, K, N, N) and precedences (B, K, N), all zero; and for an ``lru``
        content term, its heads' moving averages of content logits, (B, R or K, N), zero."""
        usage, link, precedence = self.state_keys
        writers, slots = self.plan.write_heads, self.slots
        state = {usage: like.new_zeros(batch, slots), link: like.new_zeros(batch, writers, slots, slots),
                 precedence: like.new_zeros(batch, writers, slots)}
        heads = {"read": self.plan.read_heads, "write": writers}
        for role, key in self.lru_keys.items():
            state[key] = like.new_zeros(batch, heads[role], slots)
        return state

    def step(self, interface: torch.Tensor, memory: torch.Tensor, previous: torch.Tensor,
             state: dict[str, torch.Tensor]) -> GroupStep:
        """One step of the memory and all its heads.

        Args:
            interface: (B, I) the controller's clamped interface vector.
            memory: (B, N, W) M_{t-1}.
            previous: (B, R + K, N) last step's read weights, then write weights.
            state: the memory's usage, links and precedences by :attr:`state_keys`, and the
                ``lru`` moving averages by :attr:`lru_keys`.

        Returns:
            weights (B, R + K, N) (reads, then writes); reads (B, R, W) or None; the new memory M_t;
            as state, the new usage, links, precedences (and ``lru`` averages) by key; shown, for
            pictures, ``modes`` (B, R, M) and ``usage`` (B, N).
        """
        f = self.fields(interface)
        plan = self.plan
        reads_n, writes_n = plan.read_heads, plan.write_heads
        batch, slots = memory.shape[0], memory.shape[1]
        usage_key, link_key, precedence_key = self.state_keys
        usage, link, precedence = state[usage_key], state[link_key], state[precedence_key]
        previous_read, previous_write = previous[:, :reads_n], previous[:, reads_n:]
        updates: dict[str, torch.Tensor] = {}
        samples: list[tuple[torch.Tensor, torch.Tensor, float]] = []

        if writes_n:
            written = 1 - torch.prod(1 - previous_write, dim=1)  # the write heads together, (B, N)
            if self.stop_usage_gradient:
                written = written.detach()
            if reads_n:
                usage = ops.dnc_usage(usage, written, previous_read, f["free_gate"])
            else:
                usage = usage + written - usage * written
            write_weights = self._write_weights(f, memory, usage, state, updates, samples)
            new_memory = ops.write(memory, write_weights, f["erase"], f["add"])
            flat_link, flat_precedence = ops.dnc_link(link.reshape(batch * writes_n, slots, slots),
                                                      precedence.reshape(batch * writes_n, slots),
                                                      write_weights.reshape(batch * writes_n, slots))
            link = flat_link.view(batch, writes_n, slots, slots)
            precedence = flat_precedence.view(batch, writes_n, slots)
        else:
            write_weights = previous_write
            new_memory = memory

        reads = modes = None
        read_weights = previous_read
        if reads_n:
            read_weights, modes = self._read_weights(f, new_memory, link, previous_read, state, updates, samples)
            reads = ops.read(new_memory, read_weights)
        self._decide(samples, batch, interface)
        weights = torch.cat([read_weights, write_weights], dim=1)
        shown = {"usage": usage}
        if modes is not None:
            shown["modes"] = modes
        updates.update({usage_key: usage, link_key: link, precedence_key: precedence})
        return GroupStep(weights, reads, memory=new_memory, state=updates, shown=shown)

    def _content(self, role: str, f: dict[str, torch.Tensor], memory: torch.Tensor,
                 state: dict[str, torch.Tensor], updates: dict[str, torch.Tensor],
                 samples: list[tuple[torch.Tensor, torch.Tensor, float]]) -> torch.Tensor:
        """The content term of one role's heads, (B, heads, N): c = softmax(z), z = beta K(k, M);
        with ``lru``, c = softmax(z - gamma v) and v <- lambda v + (1 - lambda) z (into ``updates``);
        with ``hard``, the one-hot of a slot drawn from c (argmax in evaluation), its log-probability
        and entropy appended to ``samples``."""
        similarity = self.read_similarity if role == "read" else self.write_similarity
        key, strength = f[f"{role}_key"], f[f"{role}_strength"]
        if role in self.lru_decays:
            lru_key = self.lru_keys[role]
            weights, updates[lru_key] = lru_address(memory, key, strength, state[lru_key], f[f"{role}_lru_gamma"],
                                                    self.lru_decays[role], similarity)
        else:
            weights = ops.content_weights(memory, key, strength, similarity)
        if role in self.entropy_weights:
            weights, log_prob, entropy = sample_slots(weights, self.training)
            samples.append((log_prob, entropy, self.entropy_weights[role]))
        return weights

    def _decide(self, samples: list[tuple[torch.Tensor, torch.Tensor, float]], batch: int,
                like: torch.Tensor) -> None:
        """While training, one :class:`~cogdsl.reinforce.Decision` for this step's samples (reads'
        and writes' together: their log-probabilities add, and each entropy keeps its own weight)."""
        self.decision = None
        if self.training and samples:
            assert self.baseline is not None
            self.decision = slot_decision(samples, self.baseline, like)

    def _write_weights(self, f: dict[str, torch.Tensor], memory: torch.Tensor, usage: torch.Tensor,
                       state: dict[str, torch.Tensor], updates: dict[str, torch.Tensor],
                       samples: list[tuple[torch.Tensor, torch.Tensor, float]]) -> torch.Tensor:
        """w^w_k = g_w (g_a a_k + (1 - g_a) c_k), (B, K, N); a_k sees heads 0..k-1 as written."""
        write_gate = f["write_gate"].unsqueeze(-1)  # (B, K, 1)
        content = allocation = None
        if "content" in self.write_terms:
            content = self._content("write", f, memory, state, updates, samples)
        if "allocate" in self.write_terms:
            # g_a, (B, K): 1 when allocation is the only term
            allocation_gate = f["allocation_gate"] if content is not None else torch.ones_like(f["write_gate"])
            free = usage
            allocations = []
            for k in range(self.plan.write_heads):
                allocations.append(ops.dnc_allocation(free))
                if k + 1 < self.plan.write_heads:
                    claimed = (f["write_gate"][:, k] * allocation_gate[:, k]).unsqueeze(-1) * allocations[-1]
                    free = free + (1 - free) * claimed
            allocation = torch.stack(allocations, dim=1)  # (B, K, N)
            if content is not None:
                mix = allocation_gate.unsqueeze(-1)
                return write_gate * (mix * allocation + (1 - mix) * content)
        chosen = allocation if allocation is not None else content
        assert chosen is not None
        return write_gate * chosen

    def _read_weights(self, f: dict[str, torch.Tensor], memory: torch.Tensor, link: torch.Tensor,
                      previous_read: torch.Tensor, state: dict[str, torch.Tensor], updates: dict[str, torch.Tensor],
                      samples: list[tuple[torch.Tensor, torch.Tensor, float]]) -> tuple[torch.Tensor, torch.Tensor]:
        """w^r = sum_m pi_m (mode m's weighting), (B, R, N); and the modes pi (B, R, M)."""
        batch, reads_n, slots = previous_read.shape
        writes_n = self.plan.write_heads
        forward = backward = None
        if "forward" in self.read_terms or "backward" in self.read_terms:
            # each write head's links, followed from every read head's previous weighting
            repeated = previous_read.unsqueeze(1).expand(batch, writes_n, reads_n, slots)
            flat_forward, flat_backward = ops.dnc_directional(link.reshape(batch * writes_n, slots, slots),
                                                              repeated.reshape(batch * writes_n, reads_n, slots))
            forward = flat_forward.view(batch, writes_n, reads_n, slots).transpose(1, 2)  # (B, R, K, N)
            backward = flat_backward.view(batch, writes_n, reads_n, slots).transpose(1, 2)
        parts = []
        for term in self.read_terms:
            if term == "content":
                parts.append(self._content("read", f, memory, state, updates, samples).unsqueeze(2))
            else:
                parts.append(forward if term == "forward" else backward)
        candidates = torch.cat(parts, dim=2)  # (B, R, M, N)
        if "read_mode" in f:
            modes = f["read_mode"]
        else:
            modes = candidates.new_ones(batch, reads_n, 1)
        return (modes.unsqueeze(-1) * candidates).sum(dim=2), modes

"""``memnn``: the memory network of Weston, Chopra and Bordes (2015, "Memory Networks", ICLR), MemNN.

The model MemN2N was made to replace: *hard* addressing (an argmax over the memories) trained
with *strong supervision* (the supporting facts of every training question)::

    episodic_memory mem(embedding=50, encoding=bag, temporal=false) <- story
    memnn reason(hops=2, margin=0.1, time_features=true) on mem <- question
    output answer: 69 = softmax(reason)

**G and I.** Each story sentence is stored in the next memory slot as a bag of words (the
``episodic_memory``, one slot per sentence, ``encoding=bag``).

**O: k supporting memories** (k = ``hops``, the paper's k = 2 by default). With
``s(x, y) = Φ_x(x)ᵀ Uᵀ U Φ_y(y)`` and bag-of-words features::

    o_1 = argmax_i s_O(x, m_i)
    o_h = argmax_i s_O([x, m_o1, .., m_o(h-1)], m_i)

U_O's columns are three word tables of the memory (the paper's D = 3|W|: one for the question's
words, one for the words of the memories already found, one for the candidate's), so
``U_O Φ_x([x, m_o1]) = O_x(x) + O_m(m_o1)`` and ``U_O Φ_y(m_i) = O_y(m_i)``, each (B, d).

**R: the answer** ``r = argmax_w s_R([x, m_o1, .., m_ok], w)`` with U_R's tables R_x, R_m: the block's
value is ``u_R = R_x(x) + Σ_h R_m(m_oh)``, (B, d), and the spec's output layer W (vocab, d) is U_R's
answer-word part, so its logits are ``s_R(·, w) = W[w] · u_R`` (plus the layer's bias).

**Time features** (``time_features=true``, the paper's section 3.4, "modeling write time"). Memories
are compared in pairs::

    s_Ot(x, y, y') = Φ_x(x)ᵀ U_Otᵀ U_Ot (Φ_y(y) - Φ_y(y') + Φ_t(x, y, y'))

with three 0/1 features Φ_t: x older than y, x older than y', y older than y' (three learned
columns t_1, t_2, t_3 of U_Ot, so ``u · (O_y(y) - O_y(y')) + Σ_k Φ_t,k u · t_k``). The argmax becomes a
loop over the memories in story order that keeps a winner y and compares it with the next memory
y' = m_i: y stays when ``s_Ot(x, y, y') > 0``, else m_i wins. The input's time: hop 1's input is the
question, newer than every memory (so "x older than y" is always 0); hop h's is that of m_o(h-1), the
memory the hop before found (our reading: the paper does not say which part of [x, m_o1] dates the input). Without time
features the argmax is over ``s_O`` alone; an ``episodic_memory(temporal=true)`` then adds its
learned recency embedding to every memory table (the "relative time" variant, simpler).

**Training: margin ranking with strong supervision** (γ = ``margin``, 0.1 in the paper), given the
true supporting facts f_1 .. f_k (teacher forcing: hop h's input holds the *true* facts before it)::

    Σ_{f̄ ≠ f_1} max(0, γ - s_O(x, f_1) + s_O(x, f̄))
  + Σ_{f̄ ≠ f_2} max(0, γ - s_O([x, f_1], f_2) + s_O([x, f_1], f̄))     (and so on to f_k)

over the kept memories f̄; with time features each term is the paper's pair
``max(0, γ - s_Ot(x, f, f̄)) + max(0, γ + s_Ot(x, f̄, f))``. It is added to the loss as the block's
penalty (B,). R learns, from the true facts ``u_R = R_x(x) + Σ_h R_m(f_h)``, by the task's loss (a
softmax cross-entropy over the same scores s_R): the paper ranks the answer with a margin too;
cogdsl trains every output with its task's loss.

**Which fact is f_1.** The tasks give each question's supporting facts as a set (the generator's and
the bAbI reader's ``supporting`` are story rows, in story order), not in the order the hops should
find them; in task 2 the object's pick-up may come before or after its holder's last move. The loss
takes, for each question, the order of its facts with the lowest loss (a minimum over the k!
orders; the latent order of the supporting facts). A question with fewer facts than k trains its
first hops only (use k = the facts a task needs: 1 for tasks 1 and 6, 2 for 2 and 15, 3 for 3
and 16); one whose facts all fell out of the memory's ``slots`` trains R on the question alone.

The supporting facts come from the batch (``Batch.info["supporting"]``, (B, S) bool over the story's
rows), which the training loop hands to the model through :func:`cogdsl.blocks.runtime.supervision`.
Training on data without them (a run on your own data with no ``supporting``, bAbI files whose
questions list none) is error E603, located at the block. Evaluation (``model.eval()``) and any
forward outside a supervision context answer by the hard argmax chain.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cogdsl.blocks.base import Param, register
from cogdsl.blocks.memnet import (
    EMBEDDING_STD,
    EpisodicMemoryKind,
    ReadPlan,
    ReasoningKind,
    ReasoningUnit,
    SentenceMemory,
    Stored,
    StoryMemoryKind,
)
from cogdsl.blocks.runtime import Build, Step, StepOut, Unit, supervised
from cogdsl.errors import Diagnostic, DiagnosticSink, SpecError
from cogdsl.language.spec import Block

if TYPE_CHECKING:
    from cogdsl.compiler.shapes import Shapes

# The memory's word tables: U_O's three parts and U_R's two (U_R's answer part is the output layer).
O_QUESTION, O_FOUND, O_CANDIDATE, R_QUESTION, R_FOUND = range(5)
PLAN = ReadPlan(5, O_QUESTION, (O_CANDIDATE,), (R_FOUND,), "memnn")


@dataclass
class MemNNOut:
    """One pass of the block: ``value`` u_R (B, d); ``chosen`` the slot of each hop (B, k), -1 for a hop
    with no fact (teacher forcing); ``penalty`` the margin ranking loss (B,) when trained, else None."""

    value: torch.Tensor
    chosen: torch.Tensor
    penalty: torch.Tensor | None


def older(recency_a: torch.Tensor, recency_b: torch.Tensor) -> torch.Tensor:
    """Whether a was written before b: its recency (0 for the story's last sentence) is larger."""
    return recency_a > recency_b


def pair_scores(u: torch.Tensor, candidates: torch.Tensor, recency: torch.Tensor, times: torch.Tensor,
                anchor: torch.Tensor | None) -> torch.Tensor:
    """The paper's ``s_Ot(x, m_i, m_j)`` for every pair of slots, (B, M, M).

    Args:
        u: (B, d), ``U_Ot Φ_x(x)``.
        candidates: (B, M, d), ``U_Ot Φ_y(m_i)``.
        recency: (B, M) long, each slot's recency (0 the newest).
        times: (3, d), the time features' columns t_1, t_2, t_3.
        anchor: (B,) long, the recency of the input x; None for the question (newer than every slot).

    ``S[b, i, j] = u·(c_i - c_j) + [x older than m_i] u·t_1 + [x older than m_j] u·t_2 + [m_i older than m_j] u·t_3``.
    """
    a = torch.einsum("bmd,bd->bm", candidates, u)  # (B, M)
    weights = torch.einsum("kd,bd->bk", times, u)  # (B, 3)
    dtype = a.dtype
    if anchor is None:
        x_older = torch.zeros_like(a)
    else:
        x_older = older(anchor.unsqueeze(1), recency).to(dtype)  # (B, M)
    i_older_j = older(recency.unsqueeze(2), recency.unsqueeze(1)).to(dtype)  # (B, M, M)
    return (a.unsqueeze(2) - a.unsqueeze(1)
            + (x_older * weights[:, :1]).unsqueeze(2) + (x_older * weights[:, 1:2]).unsqueeze(1)
            + i_older_j * weights[:, 2, None, None])


def tournament(pairs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's loop over memories: the winner y starts at slot 0 and is compared with the next memory
    y' = m_i (i = 1 .. M-1, story order), kept when ``s_Ot(x, y, y') > 0`` ("prefers y over y'"), else
    replaced by m_i. pairs (B, M, M), mask (B, M) → winners (B,) long.

    The winner is always the older of the two, so the feature "y older than y'" takes part in every
    comparison: a negative ``u · t_3`` prefers the newer memory when their words score alike."""
    batch, slots = mask.shape
    rows = torch.arange(batch, device=mask.device)
    winner = torch.zeros(batch, dtype=torch.long, device=mask.device)
    for i in range(1, slots):
        better = mask[:, i] & ~(pairs[rows, winner, i] > 0)
        winner = torch.where(better, torch.full_like(winner, i), winner)
    return winner


def ranking_loss(scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, margin: float) -> torch.Tensor:
    """``Σ_{j kept, j ≠ f} max(0, γ - a_f + a_j)``: scores a (B, M), target f (B,) (-1: no fact, loss 0) → (B,)."""
    rows = torch.arange(scores.shape[0], device=scores.device)
    positive = scores[rows, target.clamp(min=0)].unsqueeze(1)  # (B, 1)
    negatives = mask & (torch.arange(scores.shape[1], device=scores.device) != target.unsqueeze(1))
    hinge = torch.relu(margin - positive + scores) * negatives
    return hinge.sum(-1) * (target >= 0)


def pair_ranking_loss(pairs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, margin: float) -> torch.Tensor:
    """With time features: ``Σ_{j kept, j ≠ f} max(0, γ - S[f, j]) + max(0, γ + S[j, f])`` → (B,)."""
    rows = torch.arange(pairs.shape[0], device=pairs.device)
    f = target.clamp(min=0)
    negatives = mask & (torch.arange(pairs.shape[1], device=pairs.device) != target.unsqueeze(1))
    hinge = torch.relu(margin - pairs[rows, f, :]) + torch.relu(margin + pairs[rows, :, f])  # (B, M)
    return (hinge * negatives).sum(-1) * (target >= 0)


def fact_slots(supporting: torch.Tensor, stored: Stored) -> tuple[torch.Tensor, torch.Tensor]:
    """The slots that hold supporting facts: supporting (B, S) bool over story rows → (slots (B, F) long in
    story order, -1 padded; counts (B,)), F the most facts a question of the batch has in memory."""
    rows = stored.rows
    facts = supporting.to(rows.device).gather(1, rows.clamp(min=0)) & (rows >= 0)  # (B, M)
    counts = facts.sum(-1)
    most = int(counts.max()) if counts.numel() else 0
    order = torch.sort((~facts).to(torch.int8), dim=-1, stable=True).indices[:, :most]  # facts first
    slots = torch.where(torch.arange(most, device=rows.device) < counts.unsqueeze(1), order, -1)
    return slots, counts


class MemNN(nn.Module):
    """MemNN's O and R modules over a story memory (see the module docstring)."""

    def __init__(self, hops: int, dim: int, margin: float, time_features: bool):
        super().__init__()
        self.hops, self.margin = hops, margin
        self.times = nn.Parameter(torch.randn(3, dim) * EMBEDDING_STD) if time_features else None

    def hop_scores(self, u: torch.Tensor, candidates: torch.Tensor, stored: Stored,
                   anchor: torch.Tensor | None) -> torch.Tensor:
        """s_O(x, m_i) (B, M), or with time features s_Ot(x, m_i, m_j) (B, M, M)."""
        if self.times is None:
            return torch.einsum("bmd,bd->bm", candidates, u)
        return pair_scores(u, candidates, stored.recency, self.times, anchor)

    def choose(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The hop's memory (B,): the argmax of s_O over the kept slots, or the time features' loop."""
        if self.times is None:
            return scores.masked_fill(~mask, float("-inf")).argmax(-1)
        return tournament(scores, mask)

    def loss(self, scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.times is None:
            return ranking_loss(scores, target, mask, self.margin)
        return pair_ranking_loss(scores, target, mask, self.margin)

    def forward(self, question: torch.Tensor, memory: SentenceMemory, stored: Stored,
                supporting: torch.Tensor | None = None) -> MemNNOut:
        """question (B, L) word ids; ``supporting`` (B, S) bool over the story's rows to train with (teacher
        forcing and the margin ranking loss), or None to answer by the argmax chain."""
        x_o = memory.query(question, O_QUESTION)  # (B, d)
        found_o = memory.keys(stored, O_FOUND)  # (B, M, d)
        candidates = memory.keys(stored, O_CANDIDATE)  # (B, M, d)
        found_r = memory.keys(stored, R_FOUND)  # (B, M, d)
        rows = torch.arange(question.shape[0], device=question.device)
        if supporting is None:
            u, anchor, chosen = x_o, None, []
            for _ in range(self.hops):
                o = self.choose(self.hop_scores(u, candidates, stored, anchor), stored.mask)  # (B,)
                u, anchor = u + found_o[rows, o], stored.recency[rows, o]
                chosen.append(o)
            picked, penalty = torch.stack(chosen, 1), None
        else:
            picked, penalty = self._supervised(x_o, found_o, candidates, stored, supporting)
        value = memory.query(question, R_QUESTION)
        for h in range(self.hops):
            o = picked[:, h]
            value = value + found_r[rows, o.clamp(min=0)] * (o >= 0).unsqueeze(1).to(value.dtype)
        return MemNNOut(value, picked, penalty)

    def _supervised(self, x_o: torch.Tensor, found_o: torch.Tensor, candidates: torch.Tensor, stored: Stored,
                    supporting: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher-forced hops' margin ranking loss, minimised over the orders of each question's facts:
        (the facts of the best order, (B, k), -1 past a question's facts; the loss (B,))."""
        slots, counts = fact_slots(supporting, stored)
        batch, most = slots.shape
        rows = torch.arange(batch, device=x_o.device)
        n = min(self.hops, most)
        if n == 0:
            return slots.new_full((batch, self.hops), -1), x_o.new_zeros(batch)
        losses, orders = [], []
        for order in itertools.permutations(range(most), n):
            # Admissible for a question with c facts: its first min(n, c) hops take distinct facts of it.
            index = torch.tensor(order, device=x_o.device)
            usable = (index.unsqueeze(0) < counts.unsqueeze(1))  # (B, n)
            admissible = (usable | (torch.arange(n, device=x_o.device) >= counts.unsqueeze(1))).all(1)
            targets = torch.where(usable, slots[:, index], -1)  # (B, n)
            total, u, anchor = x_o.new_zeros(batch), x_o, None
            for h in range(n):
                f = targets[:, h]
                total = total + self.loss(self.hop_scores(u, candidates, stored, anchor), f, stored.mask)
                on = (f >= 0)
                u = u + found_o[rows, f.clamp(min=0)] * on.unsqueeze(1).to(u.dtype)  # the TRUE fact: teacher forcing
                recency = stored.recency[rows, f.clamp(min=0)]
                anchor = torch.where(on, recency, anchor) if anchor is not None else torch.where(
                    on, recency, torch.full_like(recency, -1))
            losses.append(torch.where(admissible, total, torch.full_like(total, float("inf"))))
            orders.append(targets)
        stacked = torch.stack(losses, 1)  # (B, orders)
        best = stacked.argmin(1)
        loss = stacked[rows, best]
        picked = torch.stack(orders, 1)[rows, best]  # (B, n)
        if n < self.hops:
            picked = torch.cat([picked, picked.new_full((batch, self.hops - n), -1)], 1)
        return picked, torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss))


class MemNNUnit(ReasoningUnit):
    """A ``memnn`` block's step: trained with the batch's supporting facts inside a supervision context (its
    penalty the margin ranking loss), else the argmax chain. Trace: ``NAME`` each hop's chosen slot, one-hot
    (B, k, M); ``MEMORY:rows`` the story row of each slot."""

    penalizes = True

    def __init__(self, b: Build, module: nn.Module, line: str):
        super().__init__(b, module, line)
        assert b.block is not None
        self.span = b.block.span

    def _supporting(self) -> torch.Tensor | None:
        info = supervised()
        if info is None or not self.module.training:
            return None  # evaluation, or a forward outside the training loop: the argmax chain
        supporting = info.get("supporting")
        if supporting is None:
            raise SpecError([Diagnostic(
                "E603", f"memnn '{self.name}' is trained with strong supervision, and the training data has no "
                "supporting facts (no 'supporting' in the batch)", self.span,
                "train on a task that gives them (babi, babi_joint, babi_files), or give your data's batches "
                "info={'supporting': (B, sentences) bool}")])
        if supporting.dim() != 2 or supporting.dtype != torch.bool:
            raise ValueError(f"supporting facts must be (B, sentences) bool, got {tuple(supporting.shape)} "
                             f"{supporting.dtype}")
        missing = ~supporting.any(-1)
        if bool(missing.any()):
            raise SpecError([Diagnostic(
                "E603", f"memnn '{self.name}' is trained with strong supervision, and {int(missing.sum())} of the "
                f"{supporting.shape[0]} questions of a training batch have no supporting facts", self.span,
                "give every training question its supporting line numbers (bAbI files: "
                "'question?<TAB>answer<TAB>line numbers'), or use a weakly supervised block (hops)")])
        return supporting

    def step(self, step: Step) -> StepOut:
        stored = step.values[self.memory]
        out = self.module(step.values[self.source], self._layers[self.memory], stored, self._supporting())
        slots = stored.mask.shape[1]
        shown = torch.nn.functional.one_hot(out.chosen.clamp(min=0), slots).to(out.value.dtype)
        shown = shown * (out.chosen >= 0).unsqueeze(-1)  # (B, k, M)
        return StepOut(out.value, trace={self.name: shown, f"{self.memory}:rows": stored.rows},
                       penalties=[out.penalty] if out.penalty is not None else [])


@register
class MemNNKind(ReasoningKind):
    kind = "memnn"
    example = (
        "input story: sentences(vocab=9)\n"
        "input q: words(vocab=9)\n"
        "output a: 9 = softmax(h)\n"
        "episodic_memory m(embedding=6, slots=4, encoding=bag, temporal=false) <- story\n"
        "memnn h({params}) on m <- q\n")
    doc = ("MemNN (Weston et al. 2015): hard addressing, o_h = argmax_i s_O([x, m_o1..], m_i) for k hops, "
           "s = Φ_xᵀ Uᵀ U Φ_y over bags of words, time features; trained by a margin ranking loss on the "
           "supporting facts (strong supervision; needs data that gives them); the value is R's u_R.")
    params = (Param("hops", int, 2, minimum=1, maximum=4,
                    doc="k, the supporting memories found per question (the paper's k = 2)"),
              Param("margin", float, 0.1, minimum=1e-6, maximum=100.0, doc="γ of the margin ranking loss"),
              Param("time_features", bool, True,
                    doc="compare memories in pairs with the paper's three write-time features (x older than y, "
                        "x older than y', y older than y') and find the argmax by a loop over the memories"))

    @classmethod
    def adds_loss(cls, params: dict[str, Any]) -> bool:
        return True  # the margin ranking loss on the supporting facts

    @classmethod
    def check_shapes(cls, block: Block, shapes: Shapes, sink: DiagnosticSink) -> None:
        """It reads an ``episodic_memory`` (one bag of words per sentence), not a key-value memory (told apart by
        its parameters: the validator has already checked that ``on`` names a story memory)."""
        super().check_shapes(block, shapes, sink)
        memory = block.memory.name if block.memory is not None else None
        if memory is None or memory not in shapes.params:
            return
        if set(shapes.params[memory]) != {param.name for param in EpisodicMemoryKind.params}:
            sink.error("E303", f"memnn '{block.name}' reads an episodic_memory, and '{memory}' is another story "
                       "memory", block.memory.span,  # type: ignore[union-attr]
                       "read an 'episodic_memory mem(encoding=bag, temporal=false) <- story'")

    @classmethod
    def read_plan(cls, params: dict[str, Any], memory_kind: type[StoryMemoryKind]) -> ReadPlan:
        return PLAN

    @classmethod
    def make(cls, params: dict[str, Any], plan: ReadPlan, dim: int) -> nn.Module:
        return MemNN(params["hops"], dim, params["margin"], params["time_features"])

    @classmethod
    def build(cls, b: Build) -> Unit:
        assert b.block is not None and b.block.memory is not None
        module = cls.make(b.params, b.shapes.read_plans[b.name], b.shapes.params[b.block.memory.name]["embedding"])
        return MemNNUnit(b, module, cls.describe(b))

    @classmethod
    def describe(cls, b: Build) -> str:
        assert b.block is not None and b.block.memory is not None
        p = b.params
        time = "time features, loop over memories" if p["time_features"] else "argmax of s_O"
        return (f"memnn {b.name} on {b.block.memory.name}: question {b.block.sources[0].name}, {p['hops']} hard hops "
                f"({time}; tables O_x 0, O_m 1, O_y 2), answer u_R = R_x(x) + sum R_m(m_o) (tables 3, 4); "
                f"margin ranking loss, gamma {p['margin']:g}, on the supporting facts")

"""Memory networks over stories: ``episodic_memory`` and ``kv_memory``, read by ``hops``.

End-to-end memory networks (Sukhbaatar et al. 2015, "End-To-End Memory Networks", MemN2N)
and key-value memory networks (Miller et al. 2016, "Key-Value Memory Networks for Directly
Reading Documents", KV-MemNN). A story is a set of sentences of word ids, (B, S, L); each
sentence becomes one memory slot, embedded as a vector::

    episodic_memory mem(embedding=20, encoding=position, temporal=true, random_empty=0.1) <- story
    hops reason(count=3, tying=adjacent) on mem <- question
    output answer: 69 = softmax(reason)

**Sentence encoding.** Slot i of table t is ``m_i = sum_j l_j o E_t[x_ij] + T_t(i)``:

- ``encoding=bag``: ``l_j = 1`` (bag of words);
- ``encoding=position``: ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)``, with j = 1..J the word's
  position in its sentence of J words and k = 1..d the embedding dimension (MemN2N, 4.1);
- ``temporal=true`` adds a learned row ``T_t(i)`` of a (slots, d) table, indexed by the
  slot's recency (0 for the story's last sentence), as MemN2N's temporal encoding.

Word id 0 is padding: its embedding is zero and gets no gradient (a hook on each table
zeroes row 0 of its gradient, so a tied answer layer cannot train it either). Only the ``slots`` most
recent sentences are kept (MemN2N keeps 50). ``random_empty=p``: while training, about
``p n`` empty slots (temporal encoding only) are put at random places among a story's n
sentences, which shifts the recency of the sentences before them (MemN2N's "random noise",
a regulariser for the temporal encoding).

**Hops** (:class:`HopsKind`). With a query u_1 (the question, encoded like a sentence by
the query table, without temporal encoding), hop k reads

    p_i = softmax_i(u_k . m_i^k),   o_k = sum_i p_i c_i^k,

with keys m^k and values c^k from the memory's tables, then updates the query:

- on an ``episodic_memory``, ``tying=adjacent`` (A^{k+1} = C^k, B = A^1):
  ``u_{k+1} = u_k + o_k``, tables A^1 .. A^K, C^K (K + 1 of them);
- ``tying=layerwise`` (A^k = A, C^k = C, B its own): ``u_{k+1} = H u_k + o_k`` with one
  learned H, three tables;
- on a ``kv_memory`` (one table A for questions, keys and values, as KV-MemNN):
  ``u_{k+1} = R_k (u_k + o_k)``, a learned R_k per hop.

The block's value is u_{K+1}, (B, d); the answer layer ``a = softmax(W u_{K+1})`` is the
spec's output, whose W is the last value table C^K (MemN2N's ``W^T = C^K``) with
``tie_answer=true``. *Linear start* (MemN2N 4.2, the training setting ``linear_start``) drops the
softmax of every hop (p_i = u_k . m_i on the story's slots) until it is switched back on.
With the softmax on, a hop's read is :func:`cogdsl.ops.hop_read` (the fused Triton kernel on
CUDA, the PyTorch reference elsewhere).

**Key-value split** (``kv_memory(split=...)``): ``sentence`` makes key and value the whole
sentence (KV-MemNN's sentence-level memory: key with temporal encoding, value without);
``last_word`` makes the key the sentence without its last word and the value that last
word's embedding A[x_J] (KV-MemNN's window-level split, with the sentence as the window and its last word,
the place, object or species a bAbI-style fact ends on, as the centre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cogdsl import ops
from cogdsl.blocks.base import BlockKind, Param, register
from cogdsl.blocks.runtime import Build, ModuleUnit, Step, StepOut, Unit
from cogdsl.errors import DiagnosticSink
from cogdsl.language.spec import Block
from cogdsl.ops.attention import masked_softmax

if TYPE_CHECKING:
    from cogdsl.compiler.shapes import Shapes

EMBEDDING_STD = 0.1  # MemN2N 4.2: embeddings drawn from N(0, 0.1)

_EMBEDDING = Param("embedding", int, 20, minimum=1, maximum=65536, doc="embedding size d of words and slots")
_SLOTS = Param("slots", int, 50, minimum=1, maximum=100_000, doc="the most recent sentences kept, one slot each")
ENCODING = Param("encoding", str, "position", choices=("position", "bag"),
                 doc="sentence encoding: position encoding or bag of words")
_TEMPORAL = Param("temporal", bool, True, doc="add a learned embedding of each slot's recency")
_RANDOM_EMPTY = Param("random_empty", float, 0.0, minimum=0.0, maximum=1.0,
                      doc="while training, insert about this fraction of empty slots among a story's sentences")


@dataclass(frozen=True)
class ReadPlan:
    """Which embedding table a reader uses for its query and for each hop's keys and values,
    and how it updates its query: "add" (u + o), "linear" (H u + o) or "rotate" (R_k (u + o))."""

    tables: int
    query_table: int
    key_tables: tuple[int, ...]
    value_tables: tuple[int, ...]
    update: str


@dataclass(frozen=True)
class Stored:
    """A story in memory: the kept slots first, in story order, then padding.

    Attributes:
        words: (B, M, L) word ids of each slot (0 for an empty or padding slot).
        recency: (B, M) long, 0 for the story's last kept slot.
        mask: (B, M) bool, True for the kept slots (sentences and inserted empty slots).
        rows: (B, M) long, the story row each slot holds, -1 for empty and padding slots.
    """

    words: torch.Tensor
    recency: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor


def position_weights(words: torch.Tensor, dim: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """MemN2N's position encoding for word ids (..., L) → weights (..., L, d), in ``dtype``
    (default: torch's default dtype).

    ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)``, j = 1..L the position, k = 1..d, J the
    sentence's number of words (non-zero ids, at least 1).
    """
    dtype = dtype or torch.get_default_dtype()
    length = words.ne(0).sum(-1, keepdim=True).clamp(min=1).unsqueeze(-1).to(dtype)  # (..., 1, 1)
    j = torch.arange(1, words.shape[-1] + 1, device=words.device, dtype=dtype).view(-1, 1)  # (L, 1)
    k = torch.arange(1, dim + 1, device=words.device, dtype=dtype).view(1, -1)  # (1, d)
    return (1 - j / length) - (k / dim) * (1 - 2 * j / length)


def _no_padding_gradient(grad: torch.Tensor) -> torch.Tensor:
    """Row 0 (padding) of a word table stays zero: not even a tied answer layer may train it."""
    return grad.index_fill(0, torch.tensor([0], device=grad.device), 0.0)


def init_word_table(table: nn.Embedding) -> nn.Embedding:
    """A word table (vocab, d) drawn from N(0, 0.1²) (MemN2N 4.2), with row 0 (padding) zero and untrained."""
    nn.init.normal_(table.weight, std=EMBEDDING_STD)
    with torch.no_grad():
        table.weight[0].zero_()
    table.weight.register_hook(_no_padding_gradient)
    return table


def sentence_vectors(table: nn.Embedding, words: torch.Tensor, position: bool) -> torch.Tensor:
    """Sentences of word ids (..., L) → (..., d): ``sum_j l_j o E[x_j]``, with MemN2N's position encoding
    ``l_j`` (:func:`position_weights`) if ``position``, else ``l_j = 1`` (bag of words). Padding (id 0) embeds
    as zero, so it adds nothing."""
    embedded = table(words)  # (..., L, d)
    if position:
        embedded = embedded * position_weights(words, table.embedding_dim, embedded.dtype)
    return embedded.sum(-2)


class SentenceMemory(nn.Module):
    """Embedding tables (and temporal tables) for a story's sentences and the question.

    ``forward(story)`` chooses the slots (:class:`Stored`); :meth:`keys`, :meth:`values` and
    :meth:`query` embed them with one table each.
    """

    def __init__(self, vocab: int, params: dict[str, Any], tables: int):
        super().__init__()
        self.dim, self.slots = params["embedding"], params["slots"]
        self.position = params["encoding"] == "position"
        self.random_empty = params["random_empty"]
        self.words = nn.ModuleList(nn.Embedding(vocab, self.dim, padding_idx=0) for _ in range(tables))
        for table in self.words:
            init_word_table(table)
        self.times = (nn.ParameterList(nn.Parameter(torch.randn(self.slots, self.dim) * EMBEDDING_STD)
                                       for _ in range(tables)) if params["temporal"] else None)

    # -- which sentences become slots ------------------------------------------------------
    def forward(self, story: torch.Tensor) -> Stored:
        """story (B, S, L) word ids → the slots, the ``slots`` most recent sentences."""
        if story.dim() != 3 or story.dtype != torch.long:
            raise ValueError(f"a story is (B, sentences, words) of long word ids, got {tuple(story.shape)} "
                             f"{story.dtype}")
        batch, sentences, _ = story.shape
        real = story.ne(0).any(-1)  # (B, S)
        rows = torch.arange(sentences, device=story.device).expand(batch, -1)
        words, keep = story, real
        if self.training and self.random_empty > 0:
            words, keep, rows = self._insert_empty(story, real)
        recency = keep.flip(-1).long().cumsum(-1).flip(-1) - 1  # kept slots after this one
        keep = keep & (recency < self.slots)
        # The kept slots first, in story order; then trim the padding columns.
        order = torch.sort((~keep).to(torch.int8), dim=-1, stable=True).indices
        # Eager: only as many columns as the fullest story keeps. Compiled: every column, the rest masked (the
        # same reads), so the shapes do not depend on the data and the step stays one graph.
        if torch.compiler.is_compiling():
            used = sentences
        else:
            used = max(int(keep.sum(-1).max()), 1) if keep.numel() else 1
        order = order[:, :used]
        keep = keep.gather(1, order)
        return Stored(
            words=words.gather(1, order.unsqueeze(-1).expand(-1, -1, words.shape[-1])),
            recency=recency.gather(1, order).clamp(0, self.slots - 1) * keep,
            mask=keep,
            rows=torch.where(keep, rows.gather(1, order), -1),
        )

    def _insert_empty(self, story: torch.Tensor, real: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Add round(p n) empty slots at uniformly random places among each story's n sentences."""
        batch, sentences, length = story.shape
        extra = max(1, math.ceil(self.random_empty * sentences))
        count = real.sum(-1, keepdim=True)  # (B, 1)
        wanted = torch.round(self.random_empty * count.to(torch.float32))  # (B, 1)
        # Sentence i sits at i + 1/2; an empty slot at a uniform place in [0, n].
        places = torch.cat([
            torch.arange(sentences, device=story.device, dtype=torch.float32).expand(batch, -1) + 0.5,
            torch.rand(batch, extra, device=story.device) * count,
        ], dim=1)
        empty_kept = torch.arange(extra, device=story.device).expand(batch, -1) < wanted
        keep = torch.cat([real, empty_kept], dim=1)
        places = torch.where(keep, places, float(sentences + 1))
        order = places.argsort(dim=-1, stable=True)
        words = torch.cat([story, story.new_zeros(batch, extra, length)], dim=1)
        rows = torch.cat([torch.arange(sentences, device=story.device).expand(batch, -1),
                          story.new_full((batch, extra), -1)], dim=1)
        return (words.gather(1, order.unsqueeze(-1).expand(-1, -1, length)), keep.gather(1, order),
                rows.gather(1, order))

    # -- embedding ---------------------------------------------------------------------------
    def encode(self, words: torch.Tensor, table: int) -> torch.Tensor:
        """Sentences of word ids (..., L) → (..., d): ``sum_j l_j o E[x_j]``."""
        return sentence_vectors(self.words[table], words, self.position)

    def word_vectors(self, words: torch.Tensor, table: int) -> torch.Tensor:
        """Word ids (..., L) → their embeddings (..., L, d), for readers that run over words."""
        return self.words[table](words)

    def temporal(self, stored: Stored, table: int) -> torch.Tensor | float:
        """``T_t(recency)`` of each slot, (B, M, d), or 0 without temporal encoding."""
        if self.times is None:
            return 0.0
        return self.times[table][stored.recency] * stored.mask.unsqueeze(-1)

    def query(self, words: torch.Tensor, table: int) -> torch.Tensor:
        """The question (B, L) → u_1 (B, d), encoded like a sentence, without time."""
        return self.encode(words, table)

    def keys(self, stored: Stored, table: int) -> torch.Tensor:
        """The slots' keys m_i (B, M, d)."""
        return self.encode(stored.words, table) + self.temporal(stored, table)

    def values(self, stored: Stored, table: int) -> torch.Tensor:
        """The slots' values c_i (B, M, d)."""
        return self.keys(stored, table)

    # Whether values(t) is keys(t), so a reader can embed a table once for both roles.
    values_are_keys = True


class KeyValueMemory(SentenceMemory):
    """A key-value memory: keys carry the temporal encoding; values are the sentence or its last word."""

    values_are_keys = False

    def __init__(self, vocab: int, params: dict[str, Any], tables: int):
        super().__init__(vocab, params, tables)
        self.split = params["split"]

    def _last_word(self, words: torch.Tensor) -> torch.Tensor:
        """(..., L) → (..., L) bool, True at each sentence's last word."""
        last = words.ne(0).sum(-1, keepdim=True) - 1
        return torch.arange(words.shape[-1], device=words.device) == last

    def keys(self, stored: Stored, table: int) -> torch.Tensor:
        words = stored.words
        if self.split == "last_word":
            words = words.masked_fill(self._last_word(words), 0)
        return self.encode(words, table) + self.temporal(stored, table)

    def values(self, stored: Stored, table: int) -> torch.Tensor:
        if self.split == "last_word":  # the last word's embedding, A[x_J]
            return self.words[table](stored.words * self._last_word(stored.words)).sum(-2)
        return self.encode(stored.words, table)


class StoryMemoryKind(BlockKind):
    """A memory built from a story at every step, read by reasoning blocks."""

    family = "memory"
    read_by = "reasoning"
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    takes = ("sentences",)
    module: type[SentenceMemory] = SentenceMemory

    @classmethod
    def read_plan(cls, count: int, tying: str) -> ReadPlan:
        """The tables a reader of ``count`` hops with ``tying`` uses (see the module docstring)."""
        if tying == "adjacent":
            return ReadPlan(count + 1, 0, tuple(range(count)), tuple(range(1, count + 1)), "add")
        return ReadPlan(3, 2, (0,) * count, (1,) * count, "linear")

    @classmethod
    def make(cls, params: dict[str, Any], vocab: int, tables: int) -> SentenceMemory:
        return cls.module(vocab, params, tables)

    @classmethod
    def build(cls, b: Build) -> Unit:
        return StoryMemoryUnit(b, cls.make(b.params, b.shapes.vocabs[b.name], b.shapes.tables[b.name]),
                               cls.describe(b))

    @classmethod
    def describe(cls, b: Build) -> str:
        assert b.block is not None
        p, name = b.params, b.name
        encoding = p["encoding"] + (" + temporal" if p["temporal"] else "")
        empty = f", {p['random_empty']:g} random empty slots while training" if p["random_empty"] else ""
        return (f"{cls.kind} {name}: the {p['slots']} most recent sentences of {b.block.sources[0].name}, one slot "
                f"each, {encoding} encoding, {b.shapes.tables[name]} table(s) of {b.shapes.vocabs[name]} x "
                f"{p['embedding']}{empty}")


class StoryMemoryUnit(ModuleUnit):
    """A story memory's step: its slots from the story read so far, value a :class:`Stored`."""

    def __init__(self, b: Build, module: SentenceMemory, line: str):
        assert b.block is not None
        self.name, self.module = b.name, b.add("layers", b.name, module)
        self.source = b.block.sources[0].name
        self.line = line

    def step(self, step: Step) -> StepOut:
        return StepOut(self.module(step.values[self.source]))



@register
class EpisodicMemoryKind(StoryMemoryKind):
    kind = "episodic_memory"
    example = (
        "input story: sentences(vocab=9)\n"
        "input q: words(vocab=9)\n"
        "output a: 9 = softmax(h)\n"
        "episodic_memory m({params}) <- story\n"
        "hops h on m <- q\n")
    doc = ("MemN2N memory: one slot per story sentence, embedded by tables A and C (bag of words or position "
           "encoding, temporal encoding, random empty slots while training).")
    params = (_EMBEDDING, _SLOTS, ENCODING, _TEMPORAL, _RANDOM_EMPTY)


@register
class KVMemoryKind(StoryMemoryKind):
    kind = "kv_memory"
    example = (
        "input story: sentences(vocab=9)\n"
        "input q: words(vocab=9)\n"
        "output a: 9 = softmax(h)\n"
        "kv_memory m({params}) <- story\n"
        "hops h on m <- q\n")
    doc = ("KV-MemNN memory: each sentence a (key, value) pair, one embedding A for questions, keys and values; "
           "hops update the query by R_k(u + o).")
    params = (_EMBEDDING, _SLOTS, ENCODING, _TEMPORAL, _RANDOM_EMPTY,
              Param("split", str, "sentence", choices=("sentence", "last_word"),
                    doc="sentence: key and value are the sentence; last_word: the key is the sentence without "
                        "its last word, the value that word"))
    module = KeyValueMemory

    @classmethod
    def read_plan(cls, count: int, tying: str) -> ReadPlan:
        return ReadPlan(1, 0, (0,) * count, (0,) * count, "rotate")


def masked_attention(scores: torch.Tensor, mask: torch.Tensor, linear: bool) -> torch.Tensor:
    """softmax over the kept slots of ``scores`` (B, M) (0 elsewhere); with ``linear``, the scores themselves."""
    if linear:
        return scores * mask
    return masked_softmax(scores, mask)


class Hops(nn.Module):
    """K hops of attention over a story memory (see the module docstring for the equations)."""

    def __init__(self, count: int, plan: ReadPlan, dim: int):
        super().__init__()
        self.count, self.plan = count, plan
        self.linear = False  # linear start: no softmax in the hops
        if plan.update == "linear":
            self.mapping = nn.Linear(dim, dim, bias=False)
        elif plan.update == "rotate":
            self.rotations = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(count))

    def forward(self, question: torch.Tensor, memory: SentenceMemory, stored: Stored
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """question (B, L) word ids → u_{K+1} (B, d) and each hop's attention p, (B, K, M)."""
        plan = self.plan
        u = memory.query(question, plan.query_table)  # (B, d)
        # Each table embedded once: adjacent tying reads C^k again as A^{k+1}, layerwise and kv every hop.
        keys = {t: memory.keys(stored, t) for t in set(plan.key_tables)}  # (B, M, d) each
        values = {t: keys[t] if memory.values_are_keys and t in keys else memory.values(stored, t)
                  for t in set(plan.value_tables)}
        attention = []
        for hop in range(self.count):
            keys_k, values_k = keys[plan.key_tables[hop]], values[plan.value_tables[hop]]
            if self.linear:
                p = masked_attention(torch.einsum("bmd,bd->bm", keys_k, u), stored.mask, linear=True)
                o = torch.einsum("bm,bmd->bd", p, values_k)
            else:
                o, p = ops.hop_read(u, keys_k, values_k, stored.mask)
            if plan.update == "add":
                u = u + o
            elif plan.update == "linear":
                u = self.mapping(u) + o
            else:
                u = self.rotations[hop](u + o)
            attention.append(p)
        return u, torch.stack(attention, dim=1)


class ReasoningKind(BlockKind):
    """A block that reads a story memory with a question and gives a vector."""

    family = "reasoning"
    accepts = frozenset({"memory", "from"})
    requires = frozenset({"memory", "from"})
    takes = ("words",)
    has_output = True

    @classmethod
    def read_plan(cls, params: dict[str, Any], memory_kind: type[StoryMemoryKind]) -> ReadPlan:
        raise NotImplementedError

    @classmethod
    def check_shapes(cls, block: Block, shapes: Shapes, sink: DiagnosticSink) -> None:
        """It embeds its question's words with its story memory's word tables, so the question's vocabulary
        fits in the story's: a word id past it would index no row."""
        if block.memory is None or block.memory.name not in shapes.vocabs:
            return
        vocab = shapes.vocabs[block.memory.name]
        for ref in block.sources:
            if shapes.input_kinds.get(ref.name) == "words" and shapes.sizes[ref.name] > vocab:
                sink.error("E501", f"size mismatch: {block.kind} '{block.name}' embeds the question '{ref.name}' "
                           f"({shapes.sizes[ref.name]} words) with the word tables of '{block.memory.name}', whose "
                           f"story has {vocab}", ref.span,
                           f"give both inputs the same vocab ({max(vocab, shapes.sizes[ref.name])})")

    @classmethod
    def make(cls, params: dict[str, Any], plan: ReadPlan, dim: int) -> nn.Module:
        """The module: ``module(question, memory module, stored) -> (value, attention (B, passes, M))``."""
        raise NotImplementedError

    @classmethod
    def build(cls, b: Build) -> Unit:
        assert b.block is not None and b.block.memory is not None
        memory = b.block.memory.name
        module = cls.make(b.params, b.shapes.read_plans[b.name], b.shapes.params[memory]["embedding"])
        return ReasoningUnit(b, module, cls.describe(b))

    @classmethod
    def describe(cls, b: Build) -> str:
        raise NotImplementedError


class ReasoningUnit(ModuleUnit):
    """A reasoning block's step: its question against the story memory's slots. Trace: ``NAME`` each pass's
    attention over the slots (B, passes, M), ``MEMORY:rows`` the story row of each slot (B, M)."""

    def __init__(self, b: Build, module: nn.Module, line: str):
        assert b.block is not None and b.block.memory is not None
        self.name, self.module = b.name, b.add("layers", b.name, module)
        self.memory, self.source = b.block.memory.name, b.block.sources[0].name
        self._layers = b.container("layers")  # the story memory's module, looked up when used
        self.line = line

    def step(self, step: Step) -> StepOut:
        stored = step.values[self.memory]
        value, attention = self.module(step.values[self.source], self._layers[self.memory], stored)
        return StepOut(value, trace={self.name: attention, f"{self.memory}:rows": stored.rows})

    def tie_answer(self, answer: nn.Linear, table: int) -> None:
        """Make ``answer``'s weight the story memory's word table ``table`` (MemN2N's W^T = C^K): one parameter."""
        answer.weight = self._layers[self.memory].words[table].weight



_UPDATES = {"add": "u <- u + o", "linear": "u <- H u + o", "rotate": "u <- R_k(u + o)"}


@register
class HopsKind(ReasoningKind):
    kind = "hops"
    example = (
        "input story: sentences(vocab=9)\n"
        "input q: words(vocab=9)\n"
        "output a: 9 = softmax(h)\n"
        "episodic_memory m(embedding=6, slots=4) <- story\n"
        "hops h({params}) on m <- q\n")
    doc = ("MemN2N / KV-MemNN multi-hop reading: p = softmax(u . m), o = sum p c, u <- u + o (adjacent), "
           "H u + o (layerwise) or R_k(u + o) (kv_memory); the value is u_{K+1}.")
    params = (Param("count", int, 3, minimum=1, maximum=32, doc="number of hops K"),
              Param("tying", str, "adjacent", choices=("adjacent", "layerwise"),
                    doc="adjacent: A^{k+1} = C^k, B = A^1; layerwise: one A, one C, u <- H u + o"),
              Param("tie_answer", bool, False,
                    doc="the answer layer W of the output that reads this block alone is the last value table "
                        "(W^T = C^K, MemN2N's adjacent tying)"))

    @classmethod
    def read_plan(cls, params: dict[str, Any], memory_kind: type[StoryMemoryKind]) -> ReadPlan:
        return memory_kind.read_plan(params["count"], params["tying"])

    @classmethod
    def make(cls, params: dict[str, Any], plan: ReadPlan, dim: int) -> nn.Module:
        return Hops(params["count"], plan, dim)

    @classmethod
    def describe(cls, b: Build) -> str:
        assert b.block is not None and b.block.memory is not None
        p, plan, name = b.params, b.shapes.read_plans[b.name], b.name
        tied = [output for output, reader in b.shapes.tied_answers.items() if reader == name]
        return (f"hops {name} on {b.block.memory.name}: question {b.block.sources[0].name} by table "
                f"{plan.query_table}, {p['count']} hops (keys by tables {','.join(map(str, plan.key_tables))}, "
                f"values by tables {','.join(map(str, plan.value_tables))}), {_UPDATES[plan.update]}"
                + (f"; output {tied[0]}'s weight is table {plan.value_tables[-1]}" if tied else ""))

"""``episodes``: the episodic memory module of a dynamic memory network (DMN).

Kumar et al. 2016, "Ask Me Anything: Dynamic Memory Networks for Natural Language
Processing", with the facts and attention of DMN+ (Xiong et al. 2016, "Dynamic Memory
Networks for Visual and Textual Question Answering")::

    episodic_memory facts(embedding=40, encoding=position) <- story
    episodes reason(count=3) on facts <- question
    output answer: 69 = softmax(reason)

- **Facts** c_t, (B, M, d): the memory's sentence encodings (table 0, position encoding and
  temporal encoding as the memory says); with ``fusion=true`` a bidirectional GRU runs over
  them and its two directions are summed (DMN+'s input fusion layer).
- **Question** q, (B, d): a GRU over the question's word embeddings (the same table), its
  last state.
- **Episode i** (i = 1..count), with memory m_{i-1} (m_0 = q): a gate for each fact from
  ``z_t = [c_t o q, c_t o m, |c_t - q|, |c_t - m|]``,
  ``g_t = w_2 . tanh(W_1 z_t + b_1) + b_2``, normalised by a softmax over the facts
  (``gate=softmax``, DMN+) or a sigmoid (``gate=sigmoid``, DMN); then the attention-gated
  GRU ``h_t = g_t GRU(c_t, h_{t-1}) + (1 - g_t) h_{t-1}`` over the facts, and the episode
  ``e_i = h_M``.
- **Memory**: ``m_i = GRU(e_i, m_{i-1})``, a second GRU across episodes (``update=gru``, DMN);
  or DMN+'s untied ReLU layer ``m_i = ReLU(W_i [m_{i-1}; e_i; q] + b_i)``, one W_i per
  episode (``update=relu``), which Xiong et al. found more accurate. The block's value is
  m_count, (B, d); the answer layer is the spec's output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from cogdsl.blocks.base import Param, register
from cogdsl.blocks.memnet import ReadPlan, ReasoningKind, SentenceMemory, Stored, StoryMemoryKind, masked_attention
from cogdsl.blocks.runtime import Build


class Episodes(nn.Module):
    """The DMN episodic memory module (see the module docstring)."""

    def __init__(self, count: int, dim: int, gate: str, fusion: bool, update: str = "gru"):
        super().__init__()
        self.count, self.gate_kind, self.update = count, gate, update
        self.question_gru = nn.GRU(dim, dim, batch_first=True)
        self.fusion = nn.GRU(dim, dim, batch_first=True, bidirectional=True) if fusion else None
        self.gate = nn.Sequential(nn.Linear(4 * dim, dim), nn.Tanh(), nn.Linear(dim, 1))
        self.attention_cell = nn.GRUCell(dim, dim)
        if update == "relu":
            self.memory_layers = nn.ModuleList(nn.Linear(3 * dim, dim) for _ in range(count))
        else:
            self.memory_cell = nn.GRUCell(dim, dim)

    def forward(self, question: torch.Tensor, memory: SentenceMemory, stored: Stored
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """question (B, L) word ids → m_count (B, d) and each episode's gates, (B, count, M)."""
        facts = memory.keys(stored, 0)  # (B, M, d)
        counts = stored.mask.sum(-1).clamp(min=1).cpu()
        if self.fusion is not None:
            packed = pack_padded_sequence(facts, counts, batch_first=True, enforce_sorted=False)
            fused, _ = pad_packed_sequence(self.fusion(packed)[0], batch_first=True, total_length=facts.shape[1])
            facts = fused[..., :facts.shape[-1]] + fused[..., facts.shape[-1]:]
        words = memory.word_vectors(question, 0)  # (B, L, d)
        lengths = question.ne(0).sum(-1).clamp(min=1).cpu()
        _, last = self.question_gru(pack_padded_sequence(words, lengths, batch_first=True, enforce_sorted=False))
        q = last[0]  # (B, d)
        m = q
        gates = []
        for episode in range(self.count):
            qe, me = q.unsqueeze(1), m.unsqueeze(1)
            z = torch.cat([facts * qe, facts * me, (facts - qe).abs(), (facts - me).abs()], dim=-1)
            scores = self.gate(z).squeeze(-1)  # (B, M)
            if self.gate_kind == "softmax":
                g = masked_attention(scores, stored.mask, linear=False)
            else:
                g = torch.sigmoid(scores) * stored.mask
            h = torch.zeros_like(q)
            for t in range(facts.shape[1]):
                g_t = g[:, t:t + 1]
                h = g_t * self.attention_cell(facts[:, t], h) + (1 - g_t) * h
            if self.update == "relu":
                m = torch.relu(self.memory_layers[episode](torch.cat([m, h, q], dim=-1)))
            else:
                m = self.memory_cell(h, m)
            gates.append(g)
        return m, torch.stack(gates, dim=1)


@register
class EpisodesKind(ReasoningKind):
    kind = "episodes"
    example = (
        "input story: sentences(vocab=9)\n"
        "input q: words(vocab=9)\n"
        "output a: 9 = softmax(h)\n"
        "episodic_memory m(embedding=6, slots=4) <- story\n"
        "episodes h({params}) on m <- q\n")
    doc = ("DMN episodic memory module: attention-gated GRU over the facts for each episode, "
           "m_i = GRU(e_i, m_{i-1}) or DMN+'s ReLU(W_i [m_{i-1}; e_i; q] + b_i); the value is the last memory m.")
    params = (Param("count", int, 3, minimum=1, maximum=16, doc="number of episodes (passes over the facts)"),
              Param("gate", str, "softmax", choices=("softmax", "sigmoid"),
                    doc="normalise the fact gates by a softmax over facts (DMN+) or a sigmoid each (DMN)"),
              Param("fusion", bool, True, doc="run a bidirectional GRU over the facts first (DMN+ input fusion)"),
              Param("update", str, "gru", choices=("gru", "relu"),
                    doc="memory update: m_i = GRU(e_i, m_{i-1}) (DMN), or ReLU(W_i [m_{i-1}; e_i; q] + b_i) with "
                        "one W_i per episode (DMN+)"))

    @classmethod
    def read_plan(cls, params: dict[str, Any], memory_kind: type[StoryMemoryKind]) -> ReadPlan:
        return ReadPlan(1, 0, (0,), (0,), "gru")

    @classmethod
    def make(cls, params: dict[str, Any], plan: ReadPlan, dim: int) -> nn.Module:
        return Episodes(params["count"], dim, params["gate"], params["fusion"], params["update"])

    @classmethod
    def describe(cls, b: Build) -> str:
        assert b.block is not None and b.block.memory is not None
        p = b.params
        return (f"episodes {b.name} on {b.block.memory.name}: question {b.block.sources[0].name} through a GRU, "
                f"{p['count']} episodes of {p['gate']} fact gates and an attention GRU, "
                + ("memory GRU across episodes" if p["update"] == "gru"
                   else "memory m <- ReLU(W_i [m; e_i; q] + b_i), one layer per episode"))

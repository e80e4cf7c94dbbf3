"""``embed``: one sentence of word ids per step, as a vector a controller can read.

A recurrent model that reads a story one sentence per step (the LSTM baseline of Sukhbaatar
et al. 2015, "End-To-End Memory Networks", and the D-NTM of Gulcehre et al. 2016 on bAbI)
needs each sentence as a vector. The block embeds the sentence of its one ``words`` source,
x (B, L) word ids with 0 for padding, as MemN2N embeds a memory slot::

    input  s: words(vocab=69)                   # (B, T, L): a sentence per step
    embed  e(dim=32, encoding=position) <- s    # (B, 32) at each step
    lstm   ctrl(hidden=64) <- e

    v = sum_j l_j o E[x_j]                      E: (vocab, d), row 0 (padding) zero and untrained

- ``encoding=position``: ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)``, j = 1..J the word's position,
  J the sentence's number of words, k = 1..d (MemN2N 4.1; :func:`~cogdsl.blocks.memnet.position_weights`);
- ``encoding=bag``: ``l_j = 1``, a bag of words.

Padding adds nothing, so an all-padding sentence embeds as the zero vector. The block has no
state: it runs at every step, in its place in the order, from its source at that step.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from cogdsl.blocks.base import LookKind, LookModule, Param, register
from cogdsl.blocks.memnet import ENCODING, init_word_table, sentence_vectors


class SentenceEmbedding(LookModule):
    """words (B, L) long → v (B, d), ``sum_j l_j o E[x_j]``; ``where`` is v too (the trace shows it)."""

    def __init__(self, vocab: int, dim: int, position: bool):
        super().__init__()
        self.position = position
        self.words = init_word_table(nn.Embedding(vocab, dim, padding_idx=0))

    def forward(self, words: torch.Tensor, seen: None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if words.dim() != 2 or words.dtype != torch.long:
            raise ValueError(f"an embed block reads one sentence per step, (B, words) of long word ids; got "
                             f"{words.dtype} {tuple(words.shape)}")
        vector = sentence_vectors(self.words, words, self.position)  # (B, d)
        return vector, vector


@register
class EmbedKind(LookKind):
    kind = "embed"
    example = (
        "input s: words(vocab=7)\n"
        "output y: 2 = sigmoid(c)\n"
        "embed e({params}) <- s\n"
        "lstm c(hidden=6) <- e\n")
    catalogued_as = "embedding"
    doc = ("A sentence of word ids (a `words` input, one sentence per step) as a vector, (B, dim): "
           "sum_j l_j E[x_j], with MemN2N's position encoding l_j or a bag of words; padding adds nothing. "
           "How a controller reads word ids.")
    params: ClassVar = (Param("dim", int, 20, minimum=1, maximum=65536, doc="embedding size d"), ENCODING)
    accepts = frozenset({"from"})
    requires = frozenset({"from"})
    takes = ("words",)
    max_sources = 1

    @classmethod
    def value_size(cls, params: dict[str, Any], target_size: int | None) -> int:
        return params["dim"]

    @classmethod
    def make(cls, params: dict[str, Any], query_size: int, target_size: int | None) -> nn.Module:
        # Its one source is a words input, whose size is its vocabulary.
        return SentenceEmbedding(query_size, params["dim"], params["encoding"] == "position")

    @classmethod
    def describe(cls, name: str, params: dict[str, Any], sources: str, target: str | None, size: int) -> str:
        encoding = "position-encoded" if params["encoding"] == "position" else "bag of words"
        return f"embed {name}: the sentence {sources}, {encoding}, sum_j l_j E[x_j] -> {size}"

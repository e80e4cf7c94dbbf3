"""Answers that are positions in the source sequence: the loss, errors and metrics of the tasks a
pointer network solves (Vinyals, Fortunato and Jaitly 2015), ``sort(answer=positions)`` and
``convex_hull``.

The targets are source positions, (B, T) long, 0 .. n - 1 for a source of n elements. A model
answers with logits over positions, (B, T, C):

- a pointer output (``output y = pointer(ptr)``) has C = n, whatever n is;
- an output of position *classes* (``output y: 10 = softmax(dec, ctx)``, the sequence-to-sequence
  baseline of the paper, whose dictionary of positions is fixed) has C = its size. A source longer
  than C has positions it cannot name: their logits are taken as -inf (probability 0), so such
  a target costs an infinite loss and is always wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cogdsl.tasks.base import Batch, ce_per_sequence, wrong_classes


def source_length(batch: Batch) -> int:
    """n, the number of positions of the batch's source sequence (B, n, size)."""
    assert isinstance(batch.inputs, dict) and "sequence" in batch.inputs
    return int(batch.inputs["sequence"].shape[1])


def named_positions(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """logits (B, T, C) → (B, T, max(C, n)): positions past C, which the output cannot name, at -inf."""
    missing = source_length(batch) - logits.shape[-1]
    return F.pad(logits, (0, missing), value=float("-inf")) if missing > 0 else logits


def position_losses(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy of the target positions summed over the scored steps, per sequence, (B,):
    ``sum_t mask[b, t] (-log p(C_t = target[b, t]))`` (the negative log-likelihood of eq. 1 of the paper)."""
    return ce_per_sequence(named_positions(logits, batch), batch)


def position_errors(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Wrong positions per sequence, (B,): scored steps where argmax over positions != the target."""
    return wrong_classes(logits, batch)


def position_accuracy(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The fraction of each sequence's scored steps that point at the right position, (B,)."""
    scored = batch.mask.sum(-1).clamp_min(1)
    return 1 - wrong_classes(logits, batch) / scored

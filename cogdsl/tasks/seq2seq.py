"""Sequence-to-sequence problems for attention models: reverse a sequence of symbols, sort it, or
write each symbol twice.

The model reads the source whole, as a ``sequence`` input (B, L, symbols) of one-hot rows,
and writes the answer one symbol per step for L steps (``times`` · L for stutter), as logits
over the symbols (B, T, symbols); the loss is cross-entropy and an error is a wrong symbol::

    source   3 1 4 1 5        (one-hot rows)
    reverse  5 1 4 1 3
    sort     1 1 3 4 5        (ascending, repeats kept)
    stutter  3 3 1 1 4 4 1 1 5 5   (each symbol ``times`` times: 2 L steps)

An encoder-decoder with attention learns to look at source position L - 1 - t at step t
(reverse), at the next-smallest symbol (sort), or at position t // times (stutter, an alignment
that only moves forward, as Graves' ``window`` assumes); its alignment matrix shows it. All
sequences of a batch have one length, drawn uniformly from ``min_len .. max_len``; an
evaluation at ``length`` greater than ``max_len`` tests generalisation to longer sequences.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from cogdsl.tasks.base import MAX_LEN, Batch, Task, TaskParam, ce_per_sequence, wrong_classes


class SequenceToSequenceTask(Task):
    """Base of the tasks that map a whole source sequence of symbols to a target sequence."""

    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("symbols", int, 8, minimum=2, maximum=1024, doc="alphabet size (one-hot width)"),
        TaskParam("min_len", int, 1, minimum=1, maximum=MAX_LEN, doc="shortest sequence drawn in training"),
        TaskParam("max_len", int, 10, minimum=1, maximum=MAX_LEN, doc="longest sequence drawn in training"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_len", "max_len"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    loss = "ce"
    error_unit = "wrong symbols"
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its batches itself
    symbols: int

    @property
    def input_size(self) -> int:
        return self.symbols

    @property
    def output_size(self) -> int:
        return self.symbols

    @property
    def input_kinds(self) -> dict[str, int]:
        """One whole sequence of one-hot symbols."""
        return {"sequence": self.symbols}

    def target_of(self, source: torch.Tensor) -> torch.Tensor:
        """The answer to each source, (B, L) long → (B, L) long."""
        raise NotImplementedError

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        source = torch.randint(0, self.symbols, (batch, length), generator=generator, device=generator.device)
        one_hot = F.one_hot(source, self.symbols).float()  # (B, L, symbols)
        target = self.target_of(source)
        mask = torch.ones(target.shape, device=generator.device)
        return Batch({"sequence": one_hot}, target, mask)

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return wrong_classes(logits, batch)


class ReverseTask(SequenceToSequenceTask):
    """Write the source sequence backwards."""

    name = "reverse"
    length_doc: ClassVar[str] = "L, the length of the source sequence; the answer has T = L steps"
    sizes_doc: ClassVar[str] = "sequence input of symbols (one-hot rows, given whole); output symbols"

    def target_of(self, source: torch.Tensor) -> torch.Tensor:
        return source.flip(1)


class SortTask(SequenceToSequenceTask):
    """Write the source's symbols in ascending order (repeats kept)."""

    name = "sort"
    length_doc: ClassVar[str] = "L, the length of the source sequence; the answer has T = L steps"
    sizes_doc: ClassVar[str] = "sequence input of symbols (one-hot rows, given whole); output symbols"

    def target_of(self, source: torch.Tensor) -> torch.Tensor:
        return source.sort(dim=1).values


class StutterTask(SequenceToSequenceTask):
    """Write each source symbol ``times`` times in a row: a monotonic alignment, T = times · L."""

    name = "stutter"
    params: ClassVar[tuple[TaskParam, ...]] = (
        *SequenceToSequenceTask.params,
        TaskParam("times", int, 2, minimum=1, maximum=8, doc="how many times each symbol is written"),
    )
    length_doc: ClassVar[str] = "L, the length of the source sequence; the answer has T = times·L steps"
    sizes_doc: ClassVar[str] = "sequence input of symbols (one-hot rows, given whole); output symbols"
    times: int

    def target_of(self, source: torch.Tensor) -> torch.Tensor:
        return source.repeat_interleave(self.times, dim=1)

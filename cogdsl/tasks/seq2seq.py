"""Sequence-to-sequence problems for attention models: reverse a sequence of symbols, sort it, or
write each symbol twice.

The model reads the source whole, as a ``sequence`` input (B, L, symbols) of one-hot rows,
and writes the answer one symbol per step for L steps (``times`` · L for stutter), as logits
over the symbols (B, T, symbols); the loss is cross-entropy and an error is a wrong symbol::

    source   3 1 4 1 5        (one-hot rows)
    reverse  5 1 4 1 3
    sort     1 1 3 4 5        (ascending, repeats kept; answer=positions: 1 3 0 2 4, see SortTask)
    stutter  3 3 1 1 4 4 1 1 5 5   (each symbol ``times`` times: 2 L steps)

An encoder-decoder with attention learns to look at source position L - 1 - t at step t
(reverse), at the next-smallest symbol (sort), or at position t // times (stutter, an alignment
that only moves forward, as Graves' ``window`` assumes); its alignment matrix shows it. All
sequences of a batch have one length, drawn uniformly from ``min_len .. max_len``; an
evaluation at ``length`` greater than ``max_len`` tests generalisation to longer sequences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F

from cogdsl.tasks.base import (
    MAX_LEN,
    Batch,
    ParamValue,
    Task,
    TaskParam,
    TaskParamError,
    ce_per_sequence,
    wrong_classes,
)
from cogdsl.tasks.positions import position_accuracy, position_losses


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
    """Write the source's symbols in ascending order (repeats kept), or point at them in that order.

    ``answer=positions`` answers with the source positions in ascending order of their values
    (ties in source order), as pointer networks sort (Vinyals et al. 2015, 4.1); with
    ``numbers=true`` the source is L numbers drawn uniformly from [0, 1), one per row (size 1)::

        source   0.62 0.13 0.87 0.40          (B, L, 1)
        answer   1    3    0    2             the positions of 0.13, 0.40, 0.62, 0.87

    A pointer output (``output y = pointer(ptr)``) points at the positions whatever L is; an output
    of ``max_len`` classes names them (the paper's sequence-to-sequence baseline).
    """

    name = "sort"
    params: ClassVar[tuple[TaskParam, ...]] = (
        *SequenceToSequenceTask.params,
        TaskParam("answer", str, "symbols", choices=("symbols", "positions"),
                  doc="symbols: write the sorted symbols; positions: the source positions in sorted order, "
                      "for a pointer output (or an output of max_len position classes)"),
        TaskParam("numbers", bool, False,
                  doc="the source is numbers uniform in [0, 1), one per row (size 1), not one-hot symbols; "
                      "needs answer=positions"),
    )
    length_doc: ClassVar[str] = "L, the length of the source sequence; the answer has T = L steps"
    sizes_doc: ClassVar[str] = ("sequence input of symbols (one-hot rows, given whole), or of size 1 with "
                                "numbers=true; output symbols, or positions with answer=positions (a pointer, or "
                                "max_len classes)")
    answer: str
    numbers: bool

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        positions = self.answer == "positions"
        self.points = positions  # type: ignore[misc]
        self.output_size_exact = not positions  # type: ignore[misc]  # position classes: at least max_len
        self.error_unit = "wrong positions" if positions else "wrong symbols"  # type: ignore[misc]

    @classmethod
    def validate_params(cls, params: Mapping[str, object]) -> dict[str, ParamValue]:
        """The declarations' checks, and: numbers have no symbols to write, so they need answer=positions."""
        values = super().validate_params(params)
        if values["numbers"] and values["answer"] != "positions":
            raise TaskParamError(f"task '{cls.name}': numbers=true has no symbols to write: it needs "
                                 "answer=positions (the positions of the numbers in ascending order)", cls.name,
                                 "numbers")
        return values

    @property
    def input_size(self) -> int:
        return 1 if self.numbers else self.symbols

    @property
    def output_size(self) -> int:
        return self.max_len if self.points else self.symbols

    @property
    def input_kinds(self) -> dict[str, int]:
        return {"sequence": self.input_size}

    def target_of(self, source: torch.Tensor) -> torch.Tensor:
        return source.sort(dim=1, stable=True).indices if self.points else source.sort(dim=1).values

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        if not self.numbers:
            return super()._sample(batch, length, generator)
        numbers = torch.rand((batch, length), generator=generator, device=generator.device)
        mask = torch.ones((batch, length), device=generator.device)
        return Batch({"sequence": numbers.unsqueeze(-1)}, self.target_of(numbers), mask)

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return position_losses(logits, batch) if self.points else super().sequence_losses(logits, batch)

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """With answer=positions: the fraction of steps that point at the right position."""
        return {"position_accuracy": position_accuracy(logits, batch)} if self.points else {}


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

"""Repeat copy (Graves et al. 2014, section 4.2): read a sequence and a repeat count ``n``,
then write the sequence ``n`` times followed by an end marker.

Encoding, for a sequence of length ``L`` (here ``L = 2``, ``bits = 3``) and, in the same
batch, one sequence with ``n = 2`` and one with ``n = 1``; ``x`` is a random bit, ``.`` is 0,
``c`` the normalised count; rows are channels, columns are time steps::

                          t:  0 | 1 2 | 3 | 4 5 6 7 | 8      (sequence with n = 2)
    inputs  ch 0..bits-1      . | x x | . | . . . . | .      the sequence
            ch bits           1 | . . | . | . . . . | .      start marker
            ch bits+1         . | . . | c | . . . . | .      repeat count, normalised
    targets ch 0..bits-1      . | . . | . | x x x x | .      the sequence, n times
            ch bits           . | . . | . | . . . . | 1      end marker
    mask                      0 | 0 0 | 0 | 1 1 1 1 | 1

                          t:  0 | 1 2 | 3 | 4 5 6 7 | 8      (sequence with n = 1)
    targets ch 0..bits-1      . | . . | . | x x . . | .
            ch bits           . | . . | . | . . 1 . | .      end marker right after one copy
    mask                      0 | 0 0 | 0 | 1 1 1 1 | 1      silent tail is scored too

Steps: ``0`` start marker; ``1..L`` the sequence; ``L+1`` the count; from ``L+2`` the
output phase of ``n_max * L + 1`` steps, where ``n_max`` is the largest count drawn in the
batch, so ``T = L + 3 + n_max * L``.

Repeat counts are drawn per sequence, uniformly from ``[min_repeats, max_repeats]``; the
sequences in a batch share ``L`` but not ``n``, so the shorter answers are padded. **Every
output-phase step is scored**, including the all-zero steps after a sequence's end marker:
the model must learn to stay silent once it has finished, and emitting an extra copy
counts as errors rather than going unseen.

Normalisation of the count (the paper: "normalised to have mean zero and variance one"):
with ``a = min_repeats``, ``b = max_repeats`` and the count uniform on the integers
``a..b``, ``mean = (a + b) / 2`` and ``var = ((b - a + 1)**2 - 1) / 12``, the variance of
that discrete uniform distribution; the channel holds ``(n - mean) / sqrt(var)``, or
``n - mean`` (that is, 0) when ``a == b``. Counts beyond ``b`` (generalisation tests) are
encoded by the same formula.

Input size ``bits + 2``, output size ``bits + 1``. ``sample``'s ``length`` is ``L``; its
extra keyword ``repeats`` fixes ``n`` for the whole batch.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from cogdsl.tasks.base import MAX_BITS, Batch, Task, TaskParam

# The output phase is n·L steps: a sequence of up to 10,000 vectors repeated up to 100 times, T <= about 10**6.
MAX_REPEATED_LEN = 10_000
MAX_REPEATS = 100


class RepeatCopyTask(Task):
    """Copy a random binary sequence a given number of times, then emit an end marker."""

    name: ClassVar[str] = "repeat_copy"
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("bits", int, 8, minimum=1, maximum=MAX_BITS, doc="width of each random bit vector"),
        TaskParam("min_len", int, 1, minimum=1, maximum=MAX_REPEATED_LEN, doc="shortest sequence drawn in training"),
        TaskParam("max_len", int, 10, minimum=1, maximum=MAX_REPEATED_LEN, doc="longest sequence drawn in training"),
        TaskParam("min_repeats", int, 1, minimum=1, maximum=MAX_REPEATS, doc="fewest repeats drawn in training"),
        TaskParam("max_repeats", int, 10, minimum=1, maximum=MAX_REPEATS, doc="most repeats drawn in training"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (
        ("min_len", "max_len"),
        ("min_repeats", "max_repeats"),
    )
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    length_doc: ClassVar[str] = (
        "L, the length of the sequence to repeat (the repeat counts n are still drawn per sequence from "
        "[min_repeats, max_repeats]); T = L + 3 + n_max·L steps, n_max the batch's largest count"
    )
    sizes_doc: ClassVar[str] = (
        "input bits + 2 (the bits, a start marker and the normalised repeat count); output bits + 1 (the bits and "
        "an end marker)"
    )

    bits: int
    min_len: int
    max_len: int
    min_repeats: int
    max_repeats: int

    @property
    def input_size(self) -> int:
        """``bits + 2``: the bits, the start marker and the repeat count."""
        return self.bits + 2

    @property
    def output_size(self) -> int:
        """``bits + 1``: the bits and the end marker."""
        return self.bits + 1

    def repeats_mean_std(self) -> tuple[float, float]:
        """``(mean, std)`` of the count's normalisation (std is 1 when the range is 1)."""
        a, b = self.min_repeats, self.max_repeats
        var = ((b - a + 1) ** 2 - 1) / 12.0
        return (a + b) / 2.0, math.sqrt(var) if var > 0 else 1.0

    def encode_repeats(self, repeats: torch.Tensor) -> torch.Tensor:
        """The count channel's value for each count: ``(n - mean) / std``."""
        mean, std = self.repeats_mean_std()
        return (repeats.float() - mean) / std

    def decode_repeats(self, value: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`encode_repeats`, rounded to the nearest integer (long)."""
        mean, std = self.repeats_mean_std()
        return torch.round(value * std + mean).long()

    def sample(
        self,
        batch: int,
        generator: torch.Generator,
        length: int | None = None,
        repeats: int | None = None,
    ) -> Batch:
        """Like :meth:`Task.sample`; ``repeats`` (>= 1, may exceed ``max_repeats``) fixes
        the count of every sequence instead of drawing one per sequence."""
        batch = self._check_batch(batch)
        length = self._resolve_length(length, generator)
        if repeats is not None and (
            isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1
        ):
            raise ValueError(f"task '{self.name}': repeats must be an int >= 1, got {repeats!r}")
        return self._draw(batch, length, generator, repeats)

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        return self._draw(batch, length, generator, None)

    def _draw(
        self, batch: int, length: int, generator: torch.Generator, repeats: int | None
    ) -> Batch:
        dev = generator.device
        n_len, w = length, self.bits
        if repeats is None:
            reps = torch.randint(
                self.min_repeats, self.max_repeats + 1, (batch,), generator=generator, device=dev
            )
        else:
            reps = torch.full((batch,), repeats, dtype=torch.long, device=dev)
        seq = torch.randint(0, 2, (batch, n_len, w), generator=generator, device=dev).float()
        n_max = int(reps.max())
        out0 = n_len + 2  # first step of the output phase
        steps = out0 + n_max * n_len + 1

        inputs = torch.zeros(batch, steps, w + 2, device=dev)  # (B, T, bits + 2)
        inputs[:, 0, w] = 1.0
        inputs[:, 1 : n_len + 1, :w] = seq
        inputs[:, n_len + 1, w + 1] = self.encode_repeats(reps)

        # Copy k of the output phase reads seq[k % L]; steps past n * L are zeroed.
        k = torch.arange(n_max * n_len, device=dev)  # (n_max * L,)
        tiled = seq[:, k % n_len, :]  # (B, n_max * L, bits)
        live = (k.unsqueeze(0) < (reps * n_len).unsqueeze(1)).float()  # (B, n_max * L)
        targets = torch.zeros(batch, steps, w + 1, device=dev)  # (B, T, bits + 1)
        targets[:, out0 : out0 + n_max * n_len, :w] = tiled * live.unsqueeze(-1)
        targets[torch.arange(batch, device=dev), out0 + reps * n_len, w] = 1.0

        mask = torch.zeros(batch, steps, device=dev)
        mask[:, out0:] = 1.0
        return Batch(inputs, targets, mask)

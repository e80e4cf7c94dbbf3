"""Copy (Graves et al. 2014, section 4.1): read a sequence of random bit vectors, then
write it back after a delimiter.

Encoding, for a sequence of length ``L`` (``T = 2L + 1`` steps, here ``L = 3``, ``bits = 4``;
``x`` is a random bit, ``.`` is 0, rows are channels, columns are time steps)::

                      t:  0 1 2 | 3 | 4 5 6
    inputs  ch 0..bits-1  x x x | . | . . .    the sequence (Bernoulli(0.5) bits)
            ch bits       . . . | 1 | . . .    delimiter flag
    targets ch 0..bits-1  . . . | . | x x x    the same sequence
    mask                  0 0 0 | 0 | 1 1 1    only the copy is scored

Input size ``bits + 1``, output size ``bits``. ``sample``'s ``length`` is ``L``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cogdsl.tasks.base import MAX_BITS, MAX_LEN, Batch, Task, TaskParam


class CopyTask(Task):
    """Copy a random binary sequence after a delimiter."""

    name: ClassVar[str] = "copy"
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its batches itself
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("bits", int, 8, minimum=1, maximum=MAX_BITS, doc="width of each random bit vector"),
        TaskParam("min_len", int, 1, minimum=1, maximum=MAX_LEN, doc="shortest sequence drawn in training"),
        TaskParam("max_len", int, 20, minimum=1, maximum=MAX_LEN, doc="longest sequence drawn in training"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_len", "max_len"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    length_doc: ClassVar[str] = (
        "L, the number of bit vectors to copy; T = 2L + 1 steps (the sequence, the delimiter, the copy)"
    )
    sizes_doc: ClassVar[str] = "input bits + 1 (the bits and a delimiter flag); output bits"

    bits: int
    min_len: int
    max_len: int

    @property
    def input_size(self) -> int:
        """``bits + 1``: the bits and the delimiter flag."""
        return self.bits + 1

    @property
    def output_size(self) -> int:
        """``bits``."""
        return self.bits

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        dev = generator.device
        n, w = length, self.bits
        seq = torch.randint(0, 2, (batch, n, w), generator=generator, device=dev).float()
        steps = 2 * n + 1
        inputs = torch.zeros(batch, steps, w + 1, device=dev)  # (B, T, bits + 1)
        inputs[:, :n, :w] = seq
        inputs[:, n, w] = 1.0
        targets = torch.zeros(batch, steps, w, device=dev)  # (B, T, bits)
        targets[:, n + 1 :] = seq
        mask = torch.zeros(batch, steps, device=dev)
        mask[:, n + 1 :] = 1.0
        return Batch(inputs, targets, mask)

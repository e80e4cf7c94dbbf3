"""Priority sort (Graves et al. 2014, section 4.5): read vectors tagged with priorities,
then write the highest-priority ones sorted by priority, highest first.

Encoding, for ``num_inputs = 3`` vectors ``a``, ``b``, ``c`` with priorities
``pa = -0.2``, ``pb = 0.9``, ``pc = 0.4`` and ``num_outputs = 2``, ``bits = 3``; ``.`` is 0;
rows are channels, columns time steps::

                     t:    0     1     2   | 3 | 4 5
    inputs  ch 0..bits-1   a     b     c   | . | . .    the vectors (Bernoulli(0.5) bits)
            ch bits      -0.2   0.9   0.4  | . | . .    priority, uniform in [-1, 1]
            ch bits+1      .     .     .   | 1 | . .    delimiter: input ends
    targets ch 0..bits-1   .     .     .   | . | b c    top num_outputs, highest first
    mask                   0     0     0   | 0 | 1 1

``T = num_inputs + 1 + num_outputs``. Priorities are continuous, so ties have probability
zero; should one occur, the earlier input comes first (stable sort).

Input size ``bits + 2``, output size ``bits``. The length is fixed at ``num_inputs`` in
training (the paper uses 20 inputs and 16 outputs). ``sample``'s ``length``, if given,
replaces ``num_inputs`` for that batch and the number of outputs becomes
``min(num_outputs, length)``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cogdsl.tasks.base import MAX_BITS, MAX_LEN, Batch, Task, TaskParam


class PrioritySortTask(Task):
    """Sort vectors by a priority given with each, highest first, keeping the top ones."""

    name: ClassVar[str] = "priority_sort"
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its batches itself
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("bits", int, 8, minimum=1, maximum=MAX_BITS, doc="width of each random bit vector"),
        TaskParam("num_inputs", int, 20, minimum=1, maximum=MAX_LEN, doc="vectors presented"),
        TaskParam("num_outputs", int, 16, minimum=1, maximum=MAX_LEN, doc="highest-priority vectors to emit"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("num_outputs", "num_inputs"),)
    length_doc: ClassVar[str] = (
        "no lengths: every sequence has num_inputs vectors (T = num_inputs + 1 + num_outputs) and --len is refused; "
        "from Python, sample's length L replaces num_inputs for one batch, with min(num_outputs, L) vectors to emit"
    )
    sizes_doc: ClassVar[str] = "input bits + 2 (the bits, the priority and a delimiter flag); output bits"

    bits: int
    num_inputs: int
    num_outputs: int

    @property
    def input_size(self) -> int:
        """``bits + 2``: the bits, the priority and the delimiter."""
        return self.bits + 2

    @property
    def output_size(self) -> int:
        """``bits``."""
        return self.bits

    def length_range(self) -> tuple[int, int]:
        """Always ``(num_inputs, num_inputs)``: training uses one fixed length."""
        return self.num_inputs, self.num_inputs

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        dev = generator.device
        n, m, w = length, min(self.num_outputs, length), self.bits
        vecs = torch.randint(0, 2, (batch, n, w), generator=generator, device=dev).float()
        prio = torch.rand(batch, n, generator=generator, device=dev) * 2.0 - 1.0  # (B, N)
        order = torch.sort(prio, dim=1, descending=True, stable=True).indices[:, :m]  # (B, M)
        ranked = torch.gather(vecs, 1, order.unsqueeze(-1).expand(batch, m, w))  # (B, M, bits)

        steps = n + 1 + m
        inputs = torch.zeros(batch, steps, w + 2, device=dev)  # (B, T, bits + 2)
        inputs[:, :n, :w] = vecs
        inputs[:, :n, w] = prio
        inputs[:, n, w + 1] = 1.0
        targets = torch.zeros(batch, steps, w, device=dev)  # (B, T, bits)
        targets[:, n + 1 :] = ranked
        mask = torch.zeros(batch, steps, device=dev)
        mask[:, n + 1 :] = 1.0
        return Batch(inputs, targets, mask)

"""Associative recall (Graves et al. 2014, section 4.3): read a list of items, then a query
item, and answer with the item that followed the query in the list.

An item is ``item_len`` random bit vectors. Encoding, for ``N = 3`` items with
``item_len = 2``, ``bits = 3``, the query being item 1 (so the answer is item 2); ``a``,
``b``, ``c`` are the items' random bits, ``.`` is 0; rows are channels, columns steps::

                     t:  0 1 2 | 3 4 5 | 6 7 8 | 9 | 10 11 | 12 | 13 14
    inputs  ch 0..bits-1 . a a | . b b | . c c | . |  b  b |  . |  .  .   items, query
            ch bits      1 . . | 1 . . | 1 . . | . |  .  . |  . |  .  .   item delimiter
            ch bits+1    . . . | . . . | . . . | 1 |  .  . |  1 |  .  .   query delimiter
    targets ch 0..bits-1 . . . | . . . | . . . | . |  .  . |  . |  c  c   the next item
    mask                 0 0 0 | 0 0 0 | 0 0 0 | 0 |  0  0 |  0 |  1  1

Steps: item ``i`` occupies ``i * (item_len + 1)``: a delimiter step, then its vectors;
then the query delimiter, the query (a copy of item ``q``), the query delimiter again,
and ``item_len`` answer steps. ``T = N * (item_len + 1) + 2 * item_len + 2``.

The query index ``q`` is drawn per sequence, uniformly from ``0..N-2`` (never the last
item, which has no successor). Items are independent Bernoulli(0.5) bits, as in the paper,
so two items may coincide (probability about ``N**2 / 2**(bits * item_len + 1)``); the
target is then the successor of the item the query was copied from.

Input size ``bits + 2``, output size ``bits``. ``sample``'s ``length`` is the number of
items ``N`` (>= 2).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cogdsl.tasks.base import MAX_BITS, Batch, Task, TaskParam

# T = N·(item_len + 1) + 2·item_len + 2: up to 10,000 items of up to 100 vectors, T <= about 10**6.
MAX_ITEM_LEN = 100
MAX_ITEMS = 10_000


class AssociativeRecallTask(Task):
    """Given a list of items and one of them as a query, recall the item after it."""

    name: ClassVar[str] = "associative_recall"
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its batches itself
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("bits", int, 6, minimum=1, maximum=MAX_BITS, doc="width of each random bit vector"),
        TaskParam("item_len", int, 3, minimum=1, maximum=MAX_ITEM_LEN, doc="vectors per item"),
        TaskParam("min_items", int, 2, minimum=2, maximum=MAX_ITEMS, doc="fewest items drawn in training"),
        TaskParam("max_items", int, 6, minimum=2, maximum=MAX_ITEMS, doc="most items drawn in training"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_items", "max_items"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_items", "max_items")
    min_length: ClassVar[int] = 2
    length_doc: ClassVar[str] = (
        "N, the number of items in the list (at least 2); T = N·(item_len + 1) + 2·item_len + 2 steps"
    )
    sizes_doc: ClassVar[str] = "input bits + 2 (the bits, an item delimiter and a query delimiter); output bits"

    bits: int
    item_len: int
    min_items: int
    max_items: int

    @property
    def input_size(self) -> int:
        """``bits + 2``: the bits, the item delimiter and the query delimiter."""
        return self.bits + 2

    @property
    def output_size(self) -> int:
        """``bits``."""
        return self.bits

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        dev = generator.device
        n, k, w = length, self.item_len, self.bits
        items = torch.randint(0, 2, (batch, n, k, w), generator=generator, device=dev).float()
        q = torch.randint(0, n - 1, (batch,), generator=generator, device=dev)  # (B,)
        rows = torch.arange(batch, device=dev)
        query, answer = items[rows, q], items[rows, q + 1]  # (B, item_len, bits) each

        # Each item block is a delimiter step followed by the item: (B, N, item_len + 1, I).
        blocks = torch.zeros(batch, n, k + 1, w + 2, device=dev)
        blocks[:, :, 0, w] = 1.0
        blocks[:, :, 1:, :w] = items
        list_steps = n * (k + 1)
        steps = list_steps + 2 * k + 2

        inputs = torch.zeros(batch, steps, w + 2, device=dev)  # (B, T, bits + 2)
        inputs[:, :list_steps] = blocks.reshape(batch, list_steps, w + 2)
        inputs[:, list_steps, w + 1] = 1.0
        inputs[:, list_steps + 1 : list_steps + 1 + k, :w] = query
        inputs[:, list_steps + 1 + k, w + 1] = 1.0

        targets = torch.zeros(batch, steps, w, device=dev)  # (B, T, bits)
        targets[:, steps - k :] = answer
        mask = torch.zeros(batch, steps, device=dev)
        mask[:, steps - k :] = 1.0
        return Batch(inputs, targets, mask)

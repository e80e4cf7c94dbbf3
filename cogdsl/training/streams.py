"""Where a run's training batches come from, and how they reach the device.

A *stream* hands the loop one :class:`~cogdsl.tasks.Batch` per step, already on the run's
device, and can save and restore its position so that ``--resume`` continues the same data:

- :class:`TaskStream` draws from a task. Tasks that build their batches from tensor operations
  (``Task.samples_on_device``: copy, associative recall, priority sort, adding, digits, the
  sequence-to-sequence tasks) draw them directly on the device, from a generator on that
  device; the one number a batch's shape depends on, its length, is drawn on the host from a
  CPU generator of its own, so drawing a batch never waits for the GPU. Tasks that build
  batches in Python (graphs, formal languages, bAbI, data files) draw on the host and the batch
  is copied from pinned memory without blocking.
- :class:`~cogdsl.training.user_data.DataStream` (``cogdsl.train(spec, data=...)``) reads your
  own Dataset, DataLoader or iterable of batches.

Under ``torchrun`` every process has its own stream: rank r's generators are seeded with
:func:`rank_seed` (``seed`` itself for rank 0, so one process draws what a single run draws).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from cogdsl.tasks.base import Batch, Task

_RANK_STRIDE = 1_000_003


def rank_seed(seed: int, rank: int) -> int:
    """The data seed of process ``rank``: ``seed + 1,000,003 · rank`` (mod 2⁶³)."""
    return (seed + _RANK_STRIDE * rank) % (2**63)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` on ``device``: as it is when it is there already; from pinned memory, without blocking
    the host, when it goes from the CPU to a GPU."""
    if batch.mask.device == device:
        return batch
    if device.type == "cuda" and batch.mask.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


class Stream(Protocol):
    """What the loop needs of a source of training batches."""

    def next(self, task: Task | None, batch: int) -> Batch:
        """The next training batch of ``batch`` sequences, on the run's device."""
        ...

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors that put the stream back where it is now (saved in each checkpoint)."""
        ...

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """Continue from a :meth:`state`."""
        ...

    def reseed(self, seed: int) -> None:
        """Start afresh from ``seed``."""
        ...


class TaskStream:
    """Batches drawn from a task (see the module docstring); ``task`` in :meth:`next` is the task of the
    current step, which a length curriculum changes."""

    def __init__(self, task: Task, device: torch.device, seed: int) -> None:
        self.device = device
        self.on_device = device.type != "cpu" and task.samples_on_device
        self.generator = torch.Generator(device=device if self.on_device else "cpu").manual_seed(seed)
        # Lengths on the host: a batch's shape must be known without reading a GPU tensor.
        self.lengths = torch.Generator().manual_seed(seed) if self.on_device else None

    def next(self, task: Task | None, batch: int) -> Batch:
        assert task is not None
        if self.lengths is not None and task.length_params is not None:
            drawn = task.sample(batch, self.generator, length=task.draw_length(self.lengths))
        else:
            drawn = task.sample(batch, self.generator)
        return to_device(drawn, self.device)

    def state(self) -> dict[str, torch.Tensor]:
        state = {"data": self.generator.get_state()}
        if self.lengths is not None:
            state["lengths"] = self.lengths.get_state()
        return state

    def restore(self, tensors: dict[str, Any]) -> None:
        self.generator.set_state(tensors["data"].to(torch.uint8))
        if self.lengths is not None and "lengths" in tensors:
            self.lengths.set_state(tensors["lengths"].to(torch.uint8))

    def reseed(self, seed: int) -> None:
        """Start a fresh stream from ``seed`` (a checkpoint's stream that cannot continue here)."""
        self.generator.manual_seed(seed)
        if self.lengths is not None:
            self.lengths.manual_seed(seed)

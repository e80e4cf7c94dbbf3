"""The adding problem (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", experiment 4),
in the form used by Le et al. 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
Linear Units" (section 4.1), and by Campos et al. 2018, "Skip RNN: Learning to Skip State
Updates in Recurrent Neural Networks" (ICLR, section 4.1): read T (value, marker) pairs and, at
the last step, write the sum of the two values whose marker is 1.

**Encoding**, for ``T = 10`` (rows are channels, columns are time steps; ``.`` is 0)::

                       t:  0    1    2    3    4  |  5    6    7    8    9
    inputs  ch 0 value    .31  .84  .07  .52  .66 | .18  .95  .40  .73  .29    uniform in [0, 1]
            ch 1 marker    1    .    .    .    .  |  .    .    1    .    .     1 at exactly two steps
    targets ch 0           .    .    .    .    .  |  .    .    .    .   .71    .31 + .40
    mask                   0    0    0    0    0  |  0    0    0    0    1     only the last step

A plain per-step input (B, T, 2); targets (B, T, 1) float, the sum at the last step and 0
elsewhere; mask (B, T), 1 only at the last step. The model's output is a raw value (a spec
output with no activation), scored by the squared error.

**Where the markers go.** As in the Skip RNN paper (its released code, imatge-upc/skiprnn-2017-
telecombcn, ``src/01_adding_task.py``): the first marker is drawn uniformly among the first 10%
of the steps, ``0 .. ⌊T/10⌋ - 1`` (just step 0 when ``T < 10``), and the second uniformly among
the last half, ``⌊T/2⌋ .. T - 1``, so at least 40% of every sequence lies between the two
markers; in the drawing the first marker can only be at step 0 and the second is in 5 .. 9.
The Skip RNN paper draws its values from [-0.5, 0.5]; here they are uniform in [0, 1], as in Le
et al. 2015, so the sum lies in [0, 2] (the two differ only by a shift of the target by 1).
``batch.info["markers"]`` holds the two marked steps of each sequence, (B, 2) long, first then
second.

**What a skip RNN can skip.** A skipped step's input is never read, so a model that gets every
sum must update at each step until it has read the first marker, and from step ``⌊T/2⌋`` until it
has read the second; it may skip the rest (after the first marker until ``⌊T/2⌋``, and after the
second). With the markers uniform in their windows that is (⌊T/10⌋ + 1)/2 + (T - ⌊T/2⌋ + 1)/2
updates on average, 31 of 100 at T = 100: a skip RNN can solve the task skipping about 69% of
its updates, but only by deciding from what it has read, not by a fixed schedule.

**Scores.** :meth:`AddingTask.loss_of` is the squared error at the scored step, averaged over
the batch: the mean squared error the papers report. The constant answer 1, the best one that
ignores the inputs, scores E[(X + Y - 1)²] = Var X + Var Y = 1/12 + 1/12 = 1/6 ≈ 0.167 for X, Y
uniform in [0, 1]; a model must go well below that to have learned anything. A sequence counts
as solved when the absolute error of its sum is below 0.04 (Hochreiter & Schmidhuber's criterion;
they applied it to a target scaled into [0, 1], so here, on the unscaled sum, it is stricter):
:meth:`AddingTask.errors` is 1 for a sequence off by 0.04 or more (or not finite), else 0.

**Lengths.** Training draws one ``T`` per batch uniformly from ``[min_len, max_len]`` (both 100
by default; the Skip RNN paper uses ``T = 50``); ``sample``'s ``length`` is ``T`` and may lie
outside that range (any ``T >= 2``), for evaluations at other lengths.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cogdsl.tasks.base import MAX_LEN, Batch, Task, TaskParam, _check_logits

TOLERANCE = 0.04
"""A sum is right when it is off by less than this (Hochreiter & Schmidhuber 1997)."""


def marker_windows(length: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The half-open step ranges the first and the second marker are drawn from, for ``T = length``:
    the first 10% of the steps (at least one) and the last half."""
    return (0, max(1, length // 10)), (length // 2, length)


class AddingTask(Task):
    """Add the two marked values of a long sequence of (value, marker) pairs."""

    name: ClassVar[str] = "adding"
    samples_on_device: ClassVar[bool] = True  # tensor operations only: a GPU draws its batches itself
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("min_len", int, 100, minimum=2, maximum=MAX_LEN, doc="shortest sequence (T steps) drawn in training"),
        TaskParam("max_len", int, 100, minimum=2, maximum=MAX_LEN, doc="longest sequence (T steps) drawn in training"),
    )
    constraints: ClassVar[tuple[tuple[str, str], ...]] = (("min_len", "max_len"),)
    length_params: ClassVar[tuple[str, str] | None] = ("min_len", "max_len")
    min_length: ClassVar[int] = 2
    length_doc: ClassVar[str] = (
        "T, the number of (value, marker) steps (at least 2); the first marker lies in the first 10% of the steps, "
        "the second in the last half, and only the last step is scored"
    )
    sizes_doc: ClassVar[str] = "input 2 (the value and the marker); output 1 (the sum, a raw value)"
    loss = "mse"
    error_unit = "wrong sums"

    min_len: int
    max_len: int

    @property
    def input_size(self) -> int:
        """2: the value and the marker."""
        return 2

    @property
    def output_size(self) -> int:
        """1: the sum."""
        return 1

    def _sample(self, batch: int, length: int, generator: torch.Generator) -> Batch:
        dev = generator.device
        (lo1, hi1), (lo2, hi2) = marker_windows(length)
        values = torch.rand(batch, length, generator=generator, device=dev)  # (B, T)
        first = torch.randint(lo1, hi1, (batch,), generator=generator, device=dev)
        second = torch.randint(lo2, hi2, (batch,), generator=generator, device=dev)
        markers = torch.stack([first, second], dim=1)  # (B, 2)
        flags = torch.zeros(batch, length, device=dev).scatter_(1, markers, 1.0)  # (B, T)
        inputs = torch.stack([values, flags], dim=-1)  # (B, T, 2)
        targets = torch.zeros(batch, length, 1, device=dev)  # (B, T, 1)
        targets[:, -1, 0] = values.gather(1, markers).sum(1)
        mask = torch.zeros(batch, length, device=dev)
        mask[:, -1] = 1.0
        return Batch(inputs, targets, mask, {"markers": markers})

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The squared error summed over the scored steps (the last), per sequence; the loss is its
        mean over the batch.

        ``loss_b = sum_t mask[b, t] (y[b, t, 0] - target[b, t, 0])²``; ``logits`` are the
        model's raw outputs (B, T, 1) → (B,).
        """
        _check_logits(logits, batch)
        return ((logits - batch.targets).square() * batch.mask.unsqueeze(-1)).sum(dim=(1, 2))

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Wrong sums per sequence, (B,): scored steps whose output is off by 0.04 or more (or is not finite)."""
        _check_logits(logits, batch)
        right = (logits - batch.targets).abs() < TOLERANCE  # NaN compares False: wrong
        return ((~right).float() * batch.mask.unsqueeze(-1)).sum(dim=(1, 2))

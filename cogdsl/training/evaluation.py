"""Evaluation: a model's errors and loss on fixed fresh sequences of a task (``cogdsl eval``, and every
scheduled evaluation of a run)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from cogdsl.blocks.runtime import supervision
from cogdsl.errors import UsageError
from cogdsl.language.spec import WHOLE_KINDS
from cogdsl.reinforce import Decision, standardized
from cogdsl.tasks import Batch, Task
from cogdsl.tasks.base import MAX_LEN

EVAL_SEED = 1234
MAX_EVAL_SEQUENCES = 1_000_000
"""The most test sequences (or questions) one evaluation draws: a larger count is a slip (an extra digit), and
would run for hours before saying anything."""


def test_length_problem(task: Task, length: int) -> str | None:
    """What is wrong with testing ``task`` at sequence ``length`` (None when nothing is): a task whose examples
    come whole has no lengths; a length below the task's shortest, or over :data:`MAX_LEN`, the longest a
    task declares."""
    if task.length_params is None:
        return f"task {task.name} has no sequence lengths (its examples come whole)"
    if length < task.min_length:
        return f"{length} is below task {task.name}'s shortest, {task.min_length}"
    if length > MAX_LEN:
        return f"{length:,} is over the longest a task draws, {MAX_LEN:,}"
    return None


def check_sequences(option: str, sequences: int) -> None:
    """``--sequences N`` (or a plan's ``score: sequences``): a whole number from 1 to :data:`MAX_EVAL_SEQUENCES`.

    Raises:
        UsageError: it is not, named by ``option``."""
    if not 1 <= sequences <= MAX_EVAL_SEQUENCES:
        raise UsageError(f"{option} must be from 1 to {MAX_EVAL_SEQUENCES:,}, got {sequences:,}")


def _num(x: float) -> str:
    """0.12, 12.50, 0.0031: two decimals, or two significant digits below 0.1."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.2g}"


@dataclass(frozen=True)
class EvalResult:
    """Mean bit errors and loss per sequence over fixed fresh sequences, and the fraction with no error."""

    length: int | None
    sequences: int
    bit_errors: float
    loss: float
    perfect: float
    metrics: dict[str, float] = field(default_factory=dict)  # the task's own scores, means over sequences
    unit: str = "bit errors"  # what bit_errors counts: the task's error_unit
    split: str = "test"
    items: str = "sequences"  # what one example is: the task's items ("questions", "images")
    error_rate: bool = False  # one answer per example: the errors are an error rate

    def describe(self, name: str) -> str:
        at = f" at length {self.length}" if self.length is not None else ""
        extra = "".join(f", {metric.replace('_', ' ')} {100 * value:.1f}%" for metric, value in self.metrics.items()
                        if math.isfinite(value))
        if self.error_rate or self.unit == "wrong answers":
            items = self.items if self.items != "sequences" else "questions"
            return (f"{name}: {100 * (1 - self.perfect):.1f}% {self.split} error ({self.sequences} {items})"
                    f"{extra}, loss {_num(self.loss)}")
        return (f"{name}{at}: {_num(self.bit_errors)} {self.unit} per sequence (mean over {self.sequences} "
                f"sequences), {100 * self.perfect:.1f}% sequences perfect{extra}, loss {_num(self.loss)}")




def eval_length(task: Task) -> int | None:
    """The longest length the task trains on (``max_len`` for copy), or None if it has no such range."""
    try:
        return int(task.length_range()[1])
    except (AssertionError, NotImplementedError, KeyError, TypeError):
        return None


def model_inputs(model: torch.nn.Module, inputs: torch.Tensor | dict[str, torch.Tensor]
                 ) -> torch.Tensor | dict[str, torch.Tensor]:
    """A batch's inputs as the model takes them: a task's inputs by kind become the spec's inputs by name."""
    if not isinstance(inputs, dict):
        return inputs
    return {name: inputs[kind] for name, kind in model.input_kinds.items()}


def rewards(task: Task, logits: torch.Tensor, batch: Batch, decisions: list[Decision]) -> dict[str, torch.Tensor]:
    """The rewards the ``decisions`` ask for, by name (:class:`cogdsl.reinforce.Decision`), each (B,):
    the task's 0/1 success, and the standardised log-likelihood of the targets, -loss per sequence."""
    wanted = {decision.reward for decision in decisions}
    out = {}
    if "success" in wanted:
        out["success"] = task.reward(logits, batch)
    if "likelihood" in wanted:
        out["likelihood"] = standardized(-task.sequence_losses(logits, batch))
    return out


def _logits(model: torch.nn.Module, batch: Batch, decisions: list[Decision] | None = None,
            penalties: list[torch.Tensor] | None = None) -> torch.Tensor:
    # A whole input (a sequence, an image) has no time axis: the model is told how many steps to run.
    whole = isinstance(batch.inputs, dict) and any(kind in batch.inputs for kind in WHOLE_KINDS)
    steps = {"steps": batch.steps} if whole else {}
    if decisions is not None:
        steps["decisions"] = decisions
    if penalties is not None:
        steps["penalties"] = penalties
    module = getattr(model, "module", model)  # the compiled model inside a DistributedDataParallel
    with supervision(batch.info):  # a block trained with strong supervision (memnn) reads the supporting facts
        y = model(model_inputs(module, batch.inputs), raw=True, **steps)
    return next(iter(y.values())) if isinstance(y, dict) else y


def evaluate(model: torch.nn.Module, task: Task, *, length: int | None = None, sequences: int = 1000,
             seed: int = EVAL_SEED, batch: int = 100, split: str = "test") -> EvalResult:
    """Mean errors and loss per sequence, and the fraction of perfect sequences, on fresh sequences.

    The sequences come from :meth:`Task.evaluation_batches`: for the algorithmic tasks, a
    generator seeded with ``seed``, drawn ``batch`` at a time, so the same arguments always
    give the same sequences; for the QA tasks, the first ``sequences`` questions of
    ``split``. ``length`` defaults to the task's longest training length. A task metric
    that is NaN for a sequence (a per-task accuracy, for another task's question) is
    averaged over the other sequences.
    """
    if sequences < 1 or batch < 1:
        raise ValueError(f"sequences and batch must be >= 1, got {sequences} and {batch}")
    if length is None:
        length = eval_length(task)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    errors: list[torch.Tensor] = []
    scores: dict[str, list[torch.Tensor]] = {}
    loss_total = torch.zeros((), dtype=torch.float64)
    try:
        with torch.no_grad():
            for data in task.evaluation_batches(sequences, seed, batch, length, split):
                if device.type != "cpu":
                    data = data.to(device)
                logits = _logits(model, data)
                loss_total += task.loss_of(logits, data).double().cpu() * data.batch_size
                errors.append(task.errors(logits, data).cpu())
                for metric, values in task.metrics(logits, data).items():
                    scores.setdefault(metric, []).append(values.cpu())
    finally:
        model.train(was_training)
    if not errors:
        raise UsageError(f"task {task.name} has no {split} {task.items} to evaluate")
    per_sequence = torch.cat(errors)
    counted = per_sequence.numel()
    return EvalResult(length=length, sequences=counted, bit_errors=float(per_sequence.mean()),
                      loss=float(loss_total) / counted, perfect=float((per_sequence == 0).float().mean()),
                      metrics={metric: float(torch.cat(values).nanmean()) for metric, values in scores.items()},
                      unit=task.error_unit, split=split, items=task.items, error_rate=task.error_rate)

"""What a trial measures once it has trained: its checkpoint scored as ``cogdsl eval`` scores it.

The checkpoint is the best validation's (``checkpoints/best.safetensors``) or the last, as the plan's
``score: weights:`` says (``auto``: the best when the spec itself writes ``keep_best: true``, as the results
tables have always been scored). The model is loaded from the run folder by the code ``cogdsl eval`` uses, so
``cogdsl eval RUN/spec.yaml CHECKPOINT --len L --sequences N`` prints the same numbers. The metrics of one
evaluation, named with ``@L`` when the plan gives test lengths (``perfect@60``):

=====================  ==============================================================================
``perfect``            the fraction of test sequences (questions, images) with no error
``error``              1 - perfect: bAbI's test error, the fraction of questions answered wrongly
``wrong``              errors per sequence, in the task's unit (bit errors, wrong symbols, wrong pixels)
``loss``               the task's loss per sequence
``task_N_accuracy``    the task's own scores (a joint bAbI model: each task's), and ``task_N_error``
``updates_skipped``    with ``skipped_updates: true``: the fraction of steps a skip RNN did not update at,
``both_markers_read``  and on the adding problem the fraction of sequences whose two marked steps it read
``corpus_bleu4`` ...   scores a task pools over its whole test set (:meth:`Task.test_set_scores`): a
                       captioning task's corpus BLEU-4
=====================  ==============================================================================
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch

from cogdsl.errors import UsageError, did_you_mean
from cogdsl.sweep.plan import Plan, Score, Trial
from cogdsl.training.callbacks import BEST_CHECKPOINT
from cogdsl.training.checkpoints import CHECKPOINT_DIR, list_checkpoints, read_checkpoint_meta


def chosen_checkpoint(folder: Path, weights: str, spec_keeps_best: bool) -> tuple[Path, str]:
    """The checkpoint a trial is scored with, and which it is (``best`` or ``last``).

    Raises:
        UsageError: the run folder has no checkpoint."""
    best = folder / CHECKPOINT_DIR / BEST_CHECKPOINT
    if (weights == "best" or (weights == "auto" and spec_keeps_best)) and best.is_file():
        return best, "best"
    found = list_checkpoints(folder)
    if not found:
        raise UsageError(f"{folder}: the run wrote no checkpoint to score")
    return found[-1], "last"


def measure(folder: Path, score: Score, spec_keeps_best: bool, device: str = "cpu") -> dict[str, Any]:
    """Score the run in ``folder``: ``{"weights", "step", "checkpoint", "valid_loss", "metrics"}``.

    Raises:
        UsageError: a test length the task does not have; the errors of :func:`cogdsl.train.load_trained`."""
    from cogdsl.training.loop import load_trained

    checkpoint, which = chosen_checkpoint(folder, score.weights, spec_keeps_best)
    _, task, model, loaded = load_trained(str(folder / "spec.yaml"), str(checkpoint), device=device)
    assert task is not None  # a sweep's trials train on a task
    metrics = scores(model, task, score)
    meta = read_checkpoint_meta(checkpoint)
    valid = (meta.get("eval") or {}).get("loss")
    return {"weights": which, "split": score.split, "step": int(loaded.step),
            "checkpoint": str(checkpoint.relative_to(folder)),
            "valid_loss": float(valid) if valid is not None and math.isfinite(float(valid)) else None,
            "unit": task.error_unit, "metrics": metrics}


def check_lengths(task: Any, score: Score) -> None:
    """Raises UsageError for a test length of ``score`` that ``task`` cannot give (:func:`test_length_problem`:
    any, for a task whose examples come whole; one below its shortest or over the longest a task draws), or
    for more test sequences than an evaluation draws."""
    from cogdsl.training.evaluation import check_sequences, test_length_problem

    check_sequences("score: sequences", score.sequences)
    for length in score.lengths:
        problem = test_length_problem(task, length) if length is not None else None
        if problem is not None:
            leave = "; leave lengths out" if task.length_params is None else ""
            raise UsageError(f"score: lengths: {problem}{leave}")


def check_split(task: Any, score: Score) -> None:
    """Raises UsageError where ``score`` asks for the test split of a task that reads data files and was given
    no test file (your own sequences, bAbI files): every trial would fail after its training, when it is
    scored."""
    if score.split != "test":
        return
    try:
        has_test = task.has_split("test")
    except Exception:  # files this machine cannot read (a cluster's workers may): left to the trials
        return
    if not has_test:
        raise UsageError(f"score: split: task {task.name} has no test file to score on: add 'test: PATH' to its "
                         "task (or --set train.task.test=PATH), or score on the validation split (--split valid; "
                         "score: {split: valid} in a plan)")


def scores(model: torch.nn.Module, task: Any, score: Score) -> dict[str, float]:
    """Every metric of ``model`` on ``task`` as ``score`` asks (the table in this module's docstring).

    Raises:
        UsageError: a test length the task does not have."""
    from cogdsl.training.evaluation import evaluate

    check_lengths(task, score)
    metrics: dict[str, float] = {}
    for length in score.lengths:
        at = f"@{length}" if length is not None else ""
        result = evaluate(model, task, length=length, sequences=score.sequences, split=score.split)
        found = {"perfect": result.perfect, "error": 1.0 - result.perfect, "wrong": result.bit_errors,
                 "loss": result.loss}
        for name, value in result.metrics.items():
            found[name] = value
            if name.endswith("_accuracy"):
                found[name.removesuffix("_accuracy") + "_error"] = 1.0 - value
        if score.skipped_updates:
            found.update(skipped_updates(model, task, length, score.sequences) or {})
        if length is None and score.split == "test":
            found.update(task.test_set_scores(model, score.sequences))
        metrics.update({f"{name}{at}": float(value) for name, value in found.items()})
    return metrics


def check_metrics(plan: Plan, trials: list[Trial]) -> None:
    """Check, before anything trains, that each trial can be scored as the plan asks (its test lengths are its
    task's) and that each metric the plan's table names (``table: metrics``, ``each``, ``pick``) is one some
    trial will have: the trials' tasks are built (one per distinct spec and setting) and, when the table names
    metrics, their models compiled untrained and scored on two sequences by :func:`scores`, the code that scores
    them after training, so the names are the ones ``cogdsl table`` will find. A trial that cannot be built
    here is left to fail on its own when it runs (reported with the others).

    Raises:
        UsageError: a test length a trial's task does not have; a metric no trial will have, with the names they
            will have."""
    from cogdsl.sweep.table import LOG_METRICS

    wanted = [m for m in (*plan.table.metrics, plan.table.each, plan.table.pick) if m and m not in LOG_METRICS]
    where = f"{plan.source}: " if plan.source else ""
    names: set[str] = set()
    built = False
    for trial in {t.spec_yaml: t for t in trials}.values():
        try:
            spec, task = _trial_task(trial)
        except Exception:  # whatever stops it here stops the trial too, reported when it runs
            continue
        try:
            check_lengths(task, plan.score)
            check_split(task, plan.score)
        except UsageError as err:
            raise UsageError(f"{where}{err} ({trial.id}); no trial was run") from None
        if not wanted:
            continue
        try:
            names |= set(untrained_scores(trial, plan.score, (spec, task)))
            built = True
        except Exception:
            continue
    missing = [m for m in wanted if m not in names]
    if built and missing:
        known = sorted(names) + list(LOG_METRICS)
        close = did_you_mean(missing[0], known)
        raise UsageError(f"{where}table: no trial of this sweep will have the metric '{missing[0]}'; "
                         f"{close + ' ' if close else ''}they will have {', '.join(known)}")


def _trial_task(trial: Trial) -> tuple[Any, Any]:
    """``trial``'s spec, parsed, and its task, built as training builds it."""
    from cogdsl.compiler.pipeline import parse_text
    from cogdsl.training.config import build_task
    from cogdsl.training.loop import config_from_spec

    spec = parse_text(trial.spec_yaml, trial.spec_name, "yaml")
    config = config_from_spec(spec, trial.spec)
    if not config.task:
        raise UsageError(f"{trial.spec_name} names no task")
    return spec, build_task(config, spec)


def untrained_scores(trial: Trial, score: Score, built: tuple[Any, Any] | None = None) -> dict[str, float]:
    """:func:`scores` of ``trial``'s model as compiled, untrained, on two sequences per test length (``built``:
    its spec and task, when they are at hand)."""
    from cogdsl.compiler.pipeline import compile_spec

    spec, task = built or _trial_task(trial)
    torch.manual_seed(0)
    model = compile_spec(spec, task=task)
    return scores(model, task, dataclasses.replace(score, sequences=2))


@torch.no_grad()
def skipped_updates(model: torch.nn.Module, task: Any, length: int | None, sequences: int = 1000
                    ) -> dict[str, float] | None:
    """How a model's skip RNN controllers updated on ``sequences`` test sequences (None without one):
    ``updates_skipped``, the fraction of steps they skipped, and on the adding problem
    ``both_markers_read``, the fraction of sequences whose two marked steps were both updated at (by some
    unit): the sequences whose sum it could know."""
    from cogdsl.tasks.adding import AddingTask
    from cogdsl.training.evaluation import EVAL_SEED, model_inputs
    from cogdsl.viz.curves import evaluating

    batch = task.sample(sequences, torch.Generator().manual_seed(EVAL_SEED), length=length)
    device = next(model.parameters()).device
    batch = batch.to(device) if device.type != "cpu" else batch
    with evaluating(model):
        _, trace = model(model_inputs(model, batch.inputs), return_weights=True, steps=batch.steps)
    updates = [value for name, value in trace.items() if name.endswith(":updates")]
    if not updates:
        return None
    updated = torch.cat([u.reshape(u.shape[0], u.shape[1], -1) for u in updates], dim=-1)  # (B, T, units)
    fractions = {"updates_skipped": 1 - float(updated.float().mean())}
    if isinstance(task, AddingTask):
        read = updated.amax(-1).gather(1, batch.info["markers"])  # (B, 2): 1 where a marked step was updated
        fractions["both_markers_read"] = float(read.amin(-1).float().mean())
    return fractions

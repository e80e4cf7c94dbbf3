"""The generated bAbI-style tasks (:mod:`cogdsl.tasks.babi`) read one sentence per step, for
recurrent models: the LSTM baseline of Sukhbaatar et al. 2015 (MemN2N) and the D-NTM of
Gulcehre et al. 2016 read bAbI this way. Two registered tasks::

    task: {name: babi_steps, number: 1, train_size: 1000}
    task: {name: babi_joint_steps, train_size: 1000}     # all six tasks at once

A model reads one input, ``words(vocab=69)``, (B, T, L) word ids: step t < n is the story's
sentence t (n sentences), step n is the question, and the answer is scored there only: the
mask is 1 at step n and 0 elsewhere, the target at step n is the answer word (class ids
(B, T); the other steps' targets are 0, padding, and unscored). Loss, errors and splits are
:class:`~cogdsl.tasks.qa.BabiTask`'s: cross-entropy with the answer word, an error is a wrong
answer, training draws from the training questions, the evaluations during training score the
validation split and ``cogdsl eval`` the 1,000 test questions.

**Padding.** Stories in one batch differ in length, so T = (the batch's longest story) + 1 and
the shorter ones are padded *after* their question with empty (all-padding) sentences, each
answered at its own step n. This is chosen over left-padding (empty sentences first, so that
every question is at step T - 1) because a model reads left to right: with the padding after
the question, the answer is exactly what the model gives on the story alone, whatever else is
in the batch, and no empty steps move a recurrent state before the story starts.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cogdsl.tasks.babi import vocabulary
from cogdsl.tasks.base import Batch, TaskParam
from cogdsl.tasks.qa import BabiJointTask, BabiTask


def story_steps(story: torch.Tensor, sentences: torch.Tensor, question: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """A story and its question as one sentence per step.

    Args:
        story: (B, S, L) word ids, sentences in rows ``0 .. n_b - 1``, padding after
            (:func:`~cogdsl.tasks.babi.encode`).
        sentences: (B,) long, n_b, each story's number of sentences.
        question: (B, L) word ids.

    Returns:
        ``(words, at)``: words (B, T, L) with T = max n_b + 1, ``words[b, t] = story[b, t]`` for
        t < n_b, ``words[b, n_b] = question[b]``, padding elsewhere; at (B,) long, n_b, the
        question's step.
    """
    batch, _, length = story.shape
    steps = int(sentences.max()) + 1 if batch else 1
    words = torch.cat([story[:, :steps - 1], story.new_zeros(batch, 1, length)], dim=1)  # (B, T, L)
    words.scatter_(1, sentences.view(-1, 1, 1).expand(-1, 1, length), question.unsqueeze(1))
    return words, sentences


class BabiStepsTask(BabiTask):
    """bAbI-style question answering, one generated task, read one sentence per step (LSTM, D-NTM)."""

    name = "babi_steps"
    length_doc: ClassVar[str] = (
        "no lengths: questions come from fixed train, validation and test splits, T = the batch's longest story "
        "+ 1 steps (a sentence per step, then the question), and --len is refused"
    )
    sizes_doc: ClassVar[str] = (
        "words input (one sentence or the question per step), word ids over the shared vocabulary; output the "
        "vocabulary size (one logit per word)"
    )

    @property
    def input_kinds(self) -> dict[str, int]:
        """One sentence of word ids per step: the story's sentences, then the question."""
        return {"words": len(vocabulary())}

    def batch_of(self, data: dict[str, torch.Tensor], rows: torch.Tensor) -> Batch:
        """The questions at ``rows`` of a split as a batch of T = longest story + 1 steps, each
        scored at its question's step (see the module docstring)."""
        words, at = story_steps(data["story"][rows], data["sentences"][rows], data["question"][rows])
        scored = torch.zeros(words.shape[:2], dtype=torch.float32).scatter_(1, at.unsqueeze(1), 1.0)  # (B, T)
        answers = torch.zeros(words.shape[:2], dtype=torch.long).scatter_(
            1, at.unsqueeze(1), data["answer"][rows].unsqueeze(1))  # (B, T)
        # The supporting facts by step (a story's sentence t is step t); never the question's step.
        supporting = torch.zeros(words.shape[:2], dtype=torch.bool)
        supporting[:, :-1] = data["supporting"][rows][:, :words.shape[1] - 1]
        return Batch({"words": words}, answers, scored, {"task": data["task"][rows], "supporting": supporting})


class BabiJointStepsTask(BabiStepsTask):
    """All six generated bAbI-style tasks at once, read one sentence per step (joint training)."""

    name = "babi_joint_steps"
    length_doc: ClassVar[str] = BabiStepsTask.length_doc
    sizes_doc: ClassVar[str] = BabiStepsTask.sizes_doc
    params: ClassVar[tuple[TaskParam, ...]] = BabiJointTask.params
    numbers = BabiJointTask.numbers

"""Question answering on the generated bAbI-style tasks (:mod:`cogdsl.tasks.babi`).

Two registered tasks::

    task: {name: babi, number: 1, train_size: 1000}     # one task, as MemN2N's per-task models
    task: {name: babi_joint, train_size: 1000}          # all six at once, one shared vocabulary

A model reads two inputs, matched by kind: the story, ``sentences(vocab=69)``, as
(B, 1, S, L) word ids, and the question, ``words(vocab=69)``, as (B, 1, L); it answers with
logits over the vocabulary, (B, 1, 69). The loss is cross-entropy with the answer word,
and an error is a wrong answer (arg-max of the logits), so ``1 - perfect`` is the error
rate the papers report.

Unlike the algorithmic tasks these have fixed data sets, as bAbI has: training batches are
drawn (uniformly, with replacement) from the ``train_size`` training questions; the
evaluations during training score the validation split (a tenth of that size; MemN2N holds
out 10% for validation) and ``cogdsl eval`` the 1,000-question test split of each task.
With ``relabel: true`` each training question's people, places, objects and animals are
renamed at random within their kind as it is drawn (data augmentation; the answer is the
same function of the story whatever the names). Stories are padded to the longest story of
the split (up to 48 sentences in the generated splits; a memory keeps its ``slots`` most
recent) and sentences to :data:`~cogdsl.tasks.babi.MAX_WORDS` words.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import ClassVar

import torch

from cogdsl.tasks.babi import (
    BABI_TASKS,
    MAX_WORDS,
    QA,
    SIZES,
    encode,
    generate_split,
    lengths,
    relabel,
    relabellings,
    vocabulary,
)
from cogdsl.tasks.base import Batch, Task, TaskParam, ce_per_sequence, class_loss, wrong_classes

answer_loss = class_loss  # the names the QA tests and users know
wrong_answers = wrong_classes

_TRAIN_SIZE = TaskParam("train_size", int, 1000, choices=tuple(SIZES.values()),
                        doc="training questions per task (bAbI's 1k and 10k sets)")
_RELABEL = TaskParam("relabel", bool, False,
                     doc="rename the people, places, objects and animals of each training question by a random "
                         "permutation within their kind (data augmentation; evaluation questions are kept)")


@functools.cache
def _encoded(numbers: tuple[int, ...], train_size: int, split: str) -> dict[str, torch.Tensor]:
    """One split of the given tasks as padded tensors, with each question's task number."""
    size = next(name for name, count in SIZES.items() if count == train_size)
    qas, task = [], []
    for number in numbers:
        part = generate_split(number, size, split)  # type: ignore[arg-type]
        qas += part
        task += [number] * len(part)
    sentences, _ = lengths(qas)
    data = encode(qas, vocabulary(), max_sentences=max(sentences, 1), max_words=MAX_WORDS)
    data["task"] = torch.tensor(task, dtype=torch.long)
    return data


class BabiTask(Task):
    """bAbI-style question answering, one generated task (Weston et al. 2015)."""

    name = "babi"
    loss = "ce"
    error_unit = "wrong answers"
    items: ClassVar[str] = "questions"
    fixed_splits: ClassVar[bool] = True
    error_rate: ClassVar[bool] = True  # one answer per question, right or wrong
    length_doc: ClassVar[str] = (
        "no lengths: questions come from fixed train, validation and test splits, one step each, and --len is "
        "refused"
    )
    sizes_doc: ClassVar[str] = (
        "sentences input (the story) and words input (the question), both word ids over the shared vocabulary; "
        "output the vocabulary size (one logit per word)"
    )
    params: ClassVar[tuple[TaskParam, ...]] = (
        TaskParam("number", int, 1, choices=tuple(BABI_TASKS), doc="the bAbI task: " + ", ".join(
            f"{n} {title.replace('_', ' ')}" for n, title in BABI_TASKS.items())),
        _TRAIN_SIZE,
        _RELABEL,
    )

    @property
    def numbers(self) -> tuple[int, ...]:
        """The bAbI tasks this task draws from."""
        return (int(self.config["number"]),)

    @property
    def input_size(self) -> int:
        return len(vocabulary())

    @property
    def output_size(self) -> int:
        return len(vocabulary())

    @property
    def input_kinds(self) -> dict[str, int]:
        """A story of sentences and a question, both word ids over the shared vocabulary."""
        return {"sentences": len(vocabulary()), "words": len(vocabulary())}

    def data(self, split: str) -> dict[str, torch.Tensor]:
        """The whole ``split`` ("train", "valid" or "test") as tensors (see :func:`~cogdsl.tasks.babi.encode`)."""
        return _encoded(self.numbers, int(self.config["train_size"]), split)

    def batch_of(self, data: dict[str, torch.Tensor], rows: torch.Tensor) -> Batch:
        """The questions at ``rows`` of a split (:meth:`data`) as a batch of one step."""
        answers = data["answer"][rows].unsqueeze(1)  # (B, 1)
        return Batch({"sentences": data["story"][rows].unsqueeze(1), "words": data["question"][rows].unsqueeze(1)},
                     answers, torch.ones(answers.shape, dtype=torch.float32),
                     {"task": data["task"][rows], "supporting": data["supporting"][rows]})

    def sample(self, batch: int, generator: torch.Generator, length: int | None = None) -> Batch:
        """``batch`` training questions drawn uniformly with replacement (``length`` is ignored),
        each relabelled at random (:func:`~cogdsl.tasks.babi.relabellings`) when ``relabel`` is on."""
        batch = self._check_batch(batch)
        data = self.data("train")
        rows = torch.randint(data["answer"].shape[0], (batch,), generator=generator, device=generator.device).cpu()
        if self.config["relabel"]:
            data = relabel({name: values[rows] for name, values in data.items()}, relabellings(batch, generator))
            rows = torch.arange(batch)
        return self.batch_of(data, rows).to(generator.device)

    def evaluation_batches(self, sequences: int, seed: int, batch: int, length: int | None,
                           split: str = "test") -> Iterator[Batch]:
        """``sequences`` questions of ``split`` (all of them at most), shared evenly among the tasks:
        the first ``ceil(sequences / tasks)`` of each task, in order, cut to ``sequences``;
        ``seed`` and ``length`` are ignored."""
        data = self.data(split)
        per_task = -(-sequences // len(self.numbers))
        rows = torch.cat([(data["task"] == n).nonzero().flatten()[:per_task] for n in self.numbers])[:sequences]
        for start in range(0, rows.numel(), batch):
            yield self.batch_of(data, rows[start:start + batch])

    def questions_batch(self, qas: list[QA]) -> Batch:
        """New questions (``cogdsl predict``) as a batch over the generated tasks' vocabulary.

        Raises:
            ValueError: a word that is not in the vocabulary, or a sentence longer than it allows."""
        sentences, words = lengths(qas)
        data = encode(qas, vocabulary(), max_sentences=max(sentences, 1), max_words=max(words, MAX_WORDS))
        data["task"] = torch.zeros(len(qas), dtype=torch.long)
        return self.batch_of(data, torch.arange(len(qas)))

    def answer_word(self, index: int) -> str:
        """The word of an id (of an answer, or of any word of a story)."""
        return vocabulary().word(index)

    def split_size(self, split: str) -> int:
        """How many questions ``split`` has."""
        return int(self.data(split)["answer"].shape[0])

    def question_rows(self, split: str, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The questions at ``rows`` of ``split`` as :func:`~cogdsl.tasks.babi.encode` lays them out (story
        (B, S, L), question (B, L), answer (B,), supporting (B, S), sentences (B,), task (B,))."""
        return {name: values[rows] for name, values in self.data(split).items()}

    def sequence_losses(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ce_per_sequence(logits, batch)

    def errors(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return wrong_answers(logits, batch)

    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """With several tasks, each task's accuracy: 1 or 0 for its questions, NaN for the others
        (an evaluation averages over each task's questions only)."""
        if len(self.numbers) == 1:
            return {}
        right = (wrong_answers(logits, batch) == 0).float()
        return {f"task_{n}_accuracy": torch.where(batch.info["task"] == n, right, float("nan")) for n in self.numbers}


class BabiJointTask(BabiTask):
    """All six generated bAbI-style tasks at once, sharing one vocabulary (joint training)."""

    name = "babi_joint"
    length_doc: ClassVar[str] = BabiTask.length_doc
    sizes_doc: ClassVar[str] = BabiTask.sizes_doc
    params: ClassVar[tuple[TaskParam, ...]] = (_TRAIN_SIZE, _RELABEL)

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(BABI_TASKS)

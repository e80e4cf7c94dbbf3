"""The bAbI files themselves, in the official text format: ``task: {name: babi_files, ...}``.

Every memory-network paper reports on Weston et al.'s bAbI files (``tasks_1-20_v1-2/en`` and
``en-10k``); cogdsl reads them as they are (:mod:`cogdsl.tasks.babi_format`)::

    task: {name: babi_files, train: data/en/qa1_single-supporting-fact_train.txt,
                             test: data/en/qa1_single-supporting-fact_test.txt}
    task: {name: babi_files, train: data/en-10k/}             # every task in the folder, jointly
    task: {name: babi_files, train: data/en-10k/, number: 3}  # one task of a folder

- **Files or a folder.** ``train`` is a file, or a folder: then every ``qaN_*_train.txt`` in it
  is read (``number: N`` picks one task), with its ``qaN_*_test.txt`` and, if present,
  ``qaN_*_valid.txt``. Paths are relative to the spec's folder; ``~`` and ``$VARIABLES`` expand.
- **Validation.** ``valid`` (a file), or else the last ``valid_fraction`` (10%, as MemN2N holds
  out) of each task's training questions, which training then never draws.
- **Vocabulary.** Built from the training and validation files: id 0 is padding, id 1 the
  unknown word (words of the test file, or of new questions for ``cogdsl predict``, that training
  never saw), then the words in sorted order; a multi-word answer (``apple,football``) is one
  word. The spec need not state the vocabulary size: ``input story: sentences`` takes it, and
  the output's size is the vocabulary's too (so the answer layer can be tied to the word table).
  It is saved in every checkpoint (``task_state``), so ``eval``, ``trace`` and ``predict`` map
  words to the ids the model learned, even when the training files are not on that machine.
- **Stories.** A question sees the statements of its story before it. Stories are stored once
  and a batch is padded to the split's longest story, sentences first, as the generated tasks
  (:func:`~cogdsl.tasks.babi.encode`) lay them out; a memory keeps the most recent ``slots``
  sentences of a longer story, as MemN2N keeps 50.

``babi_files_steps`` reads the same files one sentence per step, for recurrent models
(:mod:`cogdsl.tasks.qa_steps`): ``input s: words``.

Errors: a missing or malformed file is ``path:line: message`` (E604 when a spec is checked),
never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from cogdsl.errors import DataFileError, UsageError
from cogdsl.tasks.babi import QA
from cogdsl.tasks.babi_format import BABI_FILE, find_babi_files, read_babi_file
from cogdsl.tasks.base import Batch, TaskParam, TaskParamError
from cogdsl.tasks.files import FileParams
from cogdsl.tasks.qa import BabiTask
from cogdsl.tasks.qa_steps import BabiStepsTask

PAD, UNKNOWN = "<pad>", "<unk>"


class FileVocabulary:
    """Words ↔ ids for bAbI files: 0 padding, 1 the unknown word, then ``words`` in the order given."""

    def __init__(self, words: Iterable[str]) -> None:
        listed = [w for w in words if w not in (PAD, UNKNOWN)]
        if len(set(listed)) != len(listed):
            raise ValueError("vocabulary words must be distinct")
        self.words: tuple[str, ...] = (PAD, UNKNOWN, *listed)
        self._ids = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        """The id of ``word``; 1 (unknown) for a word training never saw."""
        return self._ids.get(word, 1) if word != PAD else 1

    def ids(self, words: Sequence[str]) -> list[int]:
        return [self.id(w) for w in words]

    def word(self, i: int) -> str:
        return self.words[i]


@dataclass(frozen=True)
class Split:
    """One split's questions, their stories stored once.

    ``sentences`` (M, L) word ids of every story statement; question q's story is rows
    ``start[q] .. start[q] + length[q] - 1``; ``question`` (N, L); ``answer`` (N,); ``task`` (N,) the
    bAbI task number (0 when the file's name does not say); ``supporting`` (N, K) story indices of the
    supporting statements, -1 padding; ``longest`` the longest story (the S a batch is padded to).
    """

    sentences: torch.Tensor
    start: torch.Tensor
    length: torch.Tensor
    question: torch.Tensor
    answer: torch.Tensor
    task: torch.Tensor
    supporting: torch.Tensor
    longest: int

    def __len__(self) -> int:
        return int(self.answer.shape[0])

    def dense(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The questions at ``rows`` as :func:`~cogdsl.tasks.babi.encode` lays them out: story (B, S, L) with the
        last S sentences in rows 0 .. n-1 then padding, question (B, L), answer (B,), supporting (B, S) bool,
        sentences (B,) the kept count, task (B,)."""
        count, longest = rows.numel(), max(self.longest, 1)
        length, start = self.length[rows], self.start[rows]
        kept = length.clamp(max=longest)
        first = start + length - kept  # the first kept sentence of each story
        offsets = torch.arange(longest).unsqueeze(0)  # (1, S)
        inside = offsets < kept.unsqueeze(1)  # (B, S)
        index = (first.unsqueeze(1) + offsets).clamp(max=max(self.sentences.shape[0] - 1, 0))
        story = self.sentences[index] * inside.unsqueeze(-1)  # (B, S, L)
        supporting = torch.zeros(count, longest, dtype=torch.bool)
        facts = self.supporting[rows]  # (B, K) story indices
        place = facts - (length - kept).unsqueeze(1)  # index among the kept rows
        valid = (facts >= 0) & (place >= 0)
        batch_index = torch.arange(count).unsqueeze(1).expand_as(facts)
        supporting[batch_index[valid], place[valid]] = True
        return {"story": story, "question": self.question[rows], "answer": self.answer[rows],
                "supporting": supporting, "sentences": kept, "task": self.task[rows]}


def encode_split(qas: Sequence[QA], numbers: Sequence[int], vocab: FileVocabulary) -> Split:
    """Questions (and the bAbI task number of each) as a :class:`Split`; consecutive questions whose story
    extends the previous one's share its stored sentences."""
    words = max((len(s) for qa in qas for s in (*qa.story, qa.question)), default=1)
    rows: list[list[int]] = []
    starts, lengths = [], []
    base, current = 0, 0  # where the current story's sentences begin; how many are stored
    previous: tuple[tuple[str, ...], ...] = ()
    for qa in qas:
        extends = len(qa.story) >= len(previous) and qa.story[:len(previous)] == previous and previous
        if not extends:
            base, current = len(rows), 0
        for sentence in qa.story[current:]:
            ids = vocab.ids(sentence)
            rows.append(ids + [0] * (words - len(ids)))
        current = len(qa.story)
        starts.append(base)
        lengths.append(len(qa.story))
        previous = qa.story
    if not rows:  # no question has a story (``3 Where is Mary?`` alone, to predict): one blank row to index
        rows.append([0] * words)
    most = max((len(qa.supporting) for qa in qas), default=0)
    supporting = [list(qa.supporting) + [-1] * (most - len(qa.supporting)) for qa in qas]
    questions = [vocab.ids(qa.question) + [0] * (words - len(qa.question)) for qa in qas]
    return Split(
        sentences=torch.tensor(rows, dtype=torch.long).view(len(rows), words),
        start=torch.tensor(starts, dtype=torch.long),
        length=torch.tensor(lengths, dtype=torch.long),
        question=torch.tensor(questions, dtype=torch.long).view(len(qas), words),
        answer=torch.tensor([vocab.id(qa.answer) if qa.answer else 0 for qa in qas], dtype=torch.long),
        task=torch.tensor(list(numbers), dtype=torch.long),
        supporting=torch.tensor(supporting, dtype=torch.long).view(len(qas), most),
        longest=max(lengths, default=1),
    )


def words_of(qas: Iterable[QA]) -> list[str]:
    """Every word of the stories, questions and answers, sorted."""
    found: set[str] = set()
    for qa in qas:
        for sentence in qa.story:
            found.update(sentence)
        found.update(qa.question)
        if qa.answer:
            found.add(qa.answer)
    return sorted(found - {PAD, UNKNOWN})


def task_number(path: Path) -> int:
    """The bAbI task number in an official file name (``qa3_...``), 0 for another name."""
    match = BABI_FILE.fullmatch(path.name)
    return int(match.group("task")) if match else 0


_FILE_PARAMS: tuple[TaskParam, ...] = (
    TaskParam("train", str, "", doc="the training file, or a folder of official bAbI files (qaN_*_train.txt, "
                                     "qaN_*_test.txt), relative to the spec's folder"),
    TaskParam("test", str, "", doc="the test file (with a folder: its qaN_*_test.txt files)"),
    TaskParam("valid", str, "", doc="the validation file (with a folder: its qaN_*_valid.txt files, if any); "
                                     "without one, the last valid_fraction of each task's training questions"),
    TaskParam("number", int, 0, minimum=0, maximum=1000,
              doc="with a folder: the one task to read (qaN); 0 reads every task in it, for joint training"),
    TaskParam("valid_fraction", float, 0.1, minimum=0.0, maximum=0.5,
              doc="without validation files: the fraction of each task's training questions held out"),
)


class BabiFilesTask(FileParams, BabiTask):
    """bAbI question answering on the official files (one task or a folder of them)."""

    name = "babi_files"
    params: ClassVar[tuple[TaskParam, ...]] = _FILE_PARAMS
    reads_files: ClassVar[bool] = True
    length_doc: ClassVar[str] = ("no lengths: questions come from the files' train, validation and test splits; "
                                 "--len is refused")
    sizes_doc: ClassVar[str] = ("sentences and words inputs, word ids over the vocabulary read from the training "
                                "and validation files (+2: padding and the unknown word); output the vocabulary "
                                "size. Leave both out of the spec: they are derived from the files")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if not self.config["train"]:
            raise TaskParamError(f"task '{self.name}': parameter 'train' is required (a bAbI file, or a folder of "
                                 "them)", self.name, "train")
        self._vocabulary: FileVocabulary | None = None
        self._saved = False  # the vocabulary came from a checkpoint
        self._files: dict[str, list[tuple[int, Path]]] | None = None
        self._splits: dict[str, tuple[tuple[Any, ...], Split]] = {}

    # -- files ---------------------------------------------------------------------------------------------
    def locate(self, folder: Path) -> None:
        super().locate(folder)
        self._files, self._splits = None, {}
        if not self._saved:
            self._vocabulary = None

    def has_split(self, which: str) -> bool:
        """Whether the task has questions for split ``which``: a test split where a test file is given, or the
        training folder holds test files (or may: a training path this machine does not have, which a cluster's
        workers may see as a folder)."""
        if which != "test" or self.config["test"] or not self.path("train").exists():
            return True
        return bool(self.files()["test"])

    def files(self) -> dict[str, list[tuple[int, Path]]]:
        """The files of each split (``train``, ``valid``, ``test``), each with its task number (found once)."""
        if self._files is None:
            self._files = self._find_files()
        return self._files

    def _find_files(self) -> dict[str, list[tuple[int, Path]]]:
        train = self.path("train")
        if train.is_dir():
            for which in ("test", "valid"):
                if self.config[which]:
                    raise DataFileError(self.path(which), f"with a folder for train ({train}), the {which} files are "
                                                          f"that folder's: leave '{which}' out")
            found = find_babi_files(train)
            wanted = int(self.config["number"])
            if wanted:
                if wanted not in found:
                    raise DataFileError(train, f"has no files of task {wanted} (qa{wanted}_*_train.txt); it has "
                                               f"tasks {', '.join(map(str, sorted(found)))}")
                found = {wanted: found[wanted]}
            missing = [n for n, splits in found.items() if "train" not in splits]
            if missing:
                raise DataFileError(train, f"has no training file for task {missing[0]} (qa{missing[0]}_*_train.txt)")
            return {which: [(n, splits[which]) for n, splits in sorted(found.items()) if which in splits]
                    for which in ("train", "valid", "test")}
        if self.config["number"]:
            raise DataFileError(train, "'number' picks a task of a folder; with a file for train, leave it out")
        # One task: every split is the training file's task, whatever the other files are called (a test file
        # not named qaN_... must not become task 0, which the evaluation, by the training task, would skip).
        number = task_number(train)
        return {which: [(number, self.path(which))] if self.config[which] else []
                for which in ("train", "valid", "test")}

    def _questions(self, which: str) -> tuple[list[QA], list[int]]:
        """The questions of a split and the task number of each (train and valid: after the held-out slice)."""
        files = self.files()
        if which == "test" and not files["test"]:
            raise UsageError(f"task {self.name} has no test file: add 'test: PATH' to the task to evaluate on it, "
                             "or evaluate the validation split (cogdsl eval --split valid)")
        qas: list[QA] = []
        numbers: list[int] = []
        for number, path, held_out in self._sources(which):
            read = read_babi_file(path)
            if held_out:  # a task without a validation file: its training questions are split
                held = round(len(read) * float(self.config["valid_fraction"]))
                # held == 0 (no validation asked for): validate on the training questions
                read = read[len(read) - held:] if which == "valid" and held else read[:len(read) - held]
            qas += read
            numbers += [number] * len(read)
        if not qas:
            sources = self._sources(which)
            raise DataFileError(sources[0][1] if sources else self.path("train"), f"leaves no {which} questions")
        return qas, numbers

    def _sources(self, which: str) -> list[tuple[int, Path, bool]]:
        """The files a split reads, each with its task number and whether the held-out slice of a training file
        is taken from it (or left out of it): a task's validation file when it has one, else the last
        ``valid_fraction`` of its training questions -- task by task, so a folder where only some tasks have a
        validation file validates every task, and a task with one trains on all of its training file."""
        files = self.files()
        if which == "test":
            return [(number, path, False) for number, path in files["test"]]
        valid = dict(files["valid"])
        if which == "valid":
            return [(number, valid[number], False) if number in valid else (number, path, True)
                    for number, path in files["train"]]
        return [(number, path, number not in valid) for number, path in files["train"]]

    # -- the vocabulary ---------------------------------------------------------------------------------------
    @property
    def vocabulary(self) -> FileVocabulary:
        """Words of the training and validation files (or the checkpoint's, once loaded)."""
        if self._vocabulary is None:
            files = self.files()
            every = [read_babi_file(path) for which in ("train", "valid") for _, path in files[which]]
            self._vocabulary = FileVocabulary(words_of(qa for part in every for qa in part))
        return self._vocabulary

    def data_state(self) -> dict[str, Any]:
        return {"vocabulary": list(self.vocabulary.words[2:])}

    def load_data_state(self, state: Mapping[str, Any]) -> None:
        words = state.get("vocabulary")
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            self._saved = True
            self._vocabulary = FileVocabulary(words)
            self._splits = {}

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(sorted({n for n, _ in self.files()["train"]}))

    @property
    def input_size(self) -> int:
        return len(self.vocabulary)

    @property
    def output_size(self) -> int:
        return len(self.vocabulary)

    @property
    def input_kinds(self) -> dict[str, int]:
        return {"sentences": len(self.vocabulary), "words": len(self.vocabulary)}

    # -- batches ----------------------------------------------------------------------------------------------
    def data(self, split: str) -> Split:  # type: ignore[override]
        """The split's questions, encoded once while its files are unchanged."""
        stamp = tuple((str(path), os.stat(path).st_mtime_ns, os.stat(path).st_size) if path.exists() else str(path)
                      for _, path, _ in self._sources(split))
        cached = self._splits.get(split)
        if cached is None or cached[0] != stamp:
            qas, numbers = self._questions(split)
            cached = self._splits[split] = (stamp, encode_split(qas, numbers, self.vocabulary))
        return cached[1]

    def batch_of(self, data: Any, rows: torch.Tensor) -> Batch:
        dense = data.dense(rows) if isinstance(data, Split) else {k: v[rows] for k, v in data.items()}
        return self.dense_batch(dense)

    def dense_batch(self, dense: dict[str, torch.Tensor]) -> Batch:
        return BabiTask.batch_of(self, dense, torch.arange(dense["answer"].shape[0]))

    def sample(self, batch: int, generator: torch.Generator, length: int | None = None) -> Batch:
        """``batch`` training questions drawn uniformly with replacement (``length`` is ignored)."""
        batch = self._check_batch(batch)
        data = self.data("train")
        rows = torch.randint(len(data), (batch,), generator=generator, device=generator.device).cpu()
        return self.batch_of(data, rows).to(generator.device)

    def evaluation_batches(self, sequences: int, seed: int, batch: int, length: int | None,
                           split: str = "test") -> Iterator[Batch]:
        data = self.data(split)
        per_task = -(-sequences // max(len(self.numbers), 1))
        rows = torch.cat([(data.task == n).nonzero().flatten()[:per_task] for n in self.numbers])[:sequences]
        for start in range(0, rows.numel(), batch):
            yield self.batch_of(data, rows[start:start + batch])

    def questions_batch(self, qas: Sequence[QA]) -> Batch:  # type: ignore[override]
        """New questions (``cogdsl predict``) as a batch; words training never saw are the unknown word."""
        return self.batch_of(encode_split(qas, [0] * len(qas), self.vocabulary), torch.arange(len(qas)))

    def answer_word(self, index: int) -> str:
        return self.vocabulary.word(index)

    def split_size(self, split: str) -> int:
        return len(self.data(split))

    def question_rows(self, split: str, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.data(split).dense(rows)


class BabiFilesStepsTask(BabiFilesTask):
    """bAbI on the official files, read one sentence per step (for recurrent models)."""

    name = "babi_files_steps"
    sizes_doc: ClassVar[str] = ("words input (a sentence or the question per step), word ids over the files' "
                                "vocabulary; output the vocabulary size; both derived from the files")

    @property
    def input_kinds(self) -> dict[str, int]:
        return {"words": len(self.vocabulary)}

    def dense_batch(self, dense: dict[str, torch.Tensor]) -> Batch:
        return BabiStepsTask.batch_of(self, dense, torch.arange(dense["answer"].shape[0]))  # type: ignore[arg-type]

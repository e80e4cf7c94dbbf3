"""Relabelling bAbI-style questions (``babi(relabel=true)``): a relabelled question is another valid
question of the same task, every name class is really permuted, and only training batches change.

Validity is checked by the independent solver of tests/tasks/test_babi.py: each relabelled training
question, decoded back to words, must have the relabelled answer as the solver's answer.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from cogdsl.tasks import TaskParamError, make_task
from cogdsl.tasks.babi import BABI_TASKS, FEARFUL, RELABEL_CLASSES, relabel, relabellings, vocabulary
from tests.tasks.test_babi import Replay

VOCAB = vocabulary()


def words(ids: torch.Tensor) -> tuple[str, ...]:
    return tuple(VOCAB.word(int(i)) for i in ids if int(i))


@pytest.mark.parametrize("number", sorted(BABI_TASKS))
def test_relabelled_questions_are_answered_by_the_independent_solver(number: int) -> None:
    task = make_task("babi", number=number, relabel=True)
    batch = task.sample(200, torch.Generator().manual_seed(number))
    assert isinstance(batch.inputs, dict)
    changed = 0
    for story, question, answer in zip(batch.inputs["sentences"][:, 0], batch.inputs["words"][:, 0],
                                       batch.targets[:, 0], strict=True):
        sentences = [words(s) for s in story if s.any()]
        assert Replay(sentences).answer(words(question)) == VOCAB.word(int(answer))
        changed += 1
    assert changed == 200
    plain = make_task("babi", number=number).sample(200, torch.Generator().manual_seed(number))
    assert isinstance(plain.inputs, dict)
    # the same questions are drawn (the relabelling draws after the rows), most of them renamed
    assert torch.equal(plain.inputs["sentences"] != 0, batch.inputs["sentences"] != 0)
    renamed = (plain.inputs["sentences"] != batch.inputs["sentences"]).flatten(1).any(1)
    assert renamed.float().mean() > 0.8


def test_every_class_is_permuted_uniformly_and_other_words_are_kept() -> None:
    table = relabellings(6000, torch.Generator().manual_seed(0))
    assert table.shape == (6000, len(VOCAB))
    in_classes = {VOCAB.id(form) for units in RELABEL_CLASSES for unit in units for form in unit}
    for word_id in range(len(VOCAB)):
        if word_id not in in_classes:  # padding, function words, verbs, "sheep"
            assert torch.equal(table[:, word_id], torch.full((6000,), word_id)), VOCAB.word(word_id)
    for units in RELABEL_CLASSES:
        first = VOCAB.id(units[0][0])
        counts = Counter(table[:, first].tolist())
        targets = {VOCAB.id(unit[0]) for unit in units}
        assert set(counts) == targets  # each unit goes to every unit of its kind, and nowhere else
        for count in counts.values():
            assert abs(count / 6000 - 1 / len(units)) < 0.03
        rows = table[:, [VOCAB.id(unit[0]) for unit in units]]
        assert all(len(set(row)) == len(units) for row in rows.tolist())  # a permutation, never a merge


def test_singular_and_plural_move_together_and_sheep_stays() -> None:
    table = relabellings(500, torch.Generator().manual_seed(1))
    plural = {VOCAB.id(one): VOCAB.id(many) for one, many in FEARFUL.items()}
    for one, many in plural.items():
        if one == many:
            assert (table[:, one] == one).all()
            continue
        for row in table.tolist():
            assert row[many] == plural[row[one]]


def test_relabel_maps_story_question_and_answer_row_by_row() -> None:
    data = make_task("babi", number=1).data("train")
    part = {name: values[:3] for name, values in data.items()}
    table = relabellings(3, torch.Generator().manual_seed(2))
    mapped = relabel(part, table)
    for b in range(3):
        assert torch.equal(mapped["story"][b], table[b][part["story"][b]])
        assert torch.equal(mapped["question"][b], table[b][part["question"][b]])
        assert int(mapped["answer"][b]) == int(table[b][part["answer"][b]])
    assert mapped["supporting"] is part["supporting"] and mapped["sentences"] is part["sentences"]


@pytest.mark.parametrize(("name", "params"), [("babi", {"number": 2}), ("babi_joint", {}),
                                              ("babi_steps", {"number": 3})])
def test_evaluation_splits_are_never_relabelled(name: str, params: dict[str, int]) -> None:
    plain, relabelled = make_task(name, **params), make_task(name, **params, relabel=True)
    for split in ("valid", "test"):
        a = next(iter(plain.evaluation_batches(50, 0, 50, None, split)))
        b = next(iter(relabelled.evaluation_batches(50, 0, 50, None, split)))
        assert isinstance(a.inputs, dict) and isinstance(b.inputs, dict)
        for key in a.inputs:
            assert torch.equal(a.inputs[key], b.inputs[key])
        assert torch.equal(a.targets, b.targets)


def test_relabel_must_be_a_bool() -> None:
    with pytest.raises(TaskParamError, match="relabel"):
        make_task("babi", number=1, relabel=3)


def test_relabel_needs_one_relabelling_per_question() -> None:
    data = make_task("babi", number=1).data("train")
    part = {name: values[:4] for name, values in data.items()}
    with pytest.raises(ValueError, match="relabel: 2 relabellings for 4 questions"):
        relabel(part, relabellings(2, torch.Generator().manual_seed(0)))
